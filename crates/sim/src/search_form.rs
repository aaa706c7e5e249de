//! The body of `POST /guilds/{id}/members-search`, checked as `docs/discord-members-search.md`
//! describes it: a route Discord has not documented, so the simulator keeps to what the
//! community's documentation states and refuses what it does not simulate, by name.

use serde_json::{Map, Value};

use crate::rest::ApiError;

/// Most values in one `or_query` / `and_query` array.
const MAX_VALUES: usize = 10;
/// Longest value in such an array, in characters.
const MAX_VALUE_LEN: usize = 100;

/// Member order (`sort`): by when they joined the guild, or by user id (account age).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // each names an order, which is what `sort` chooses
pub(crate) enum Sort {
    NewestJoinFirst,
    OldestJoinFirst,
    NewestAccountFirst,
    OldestAccountFirst,
}

/// An inclusive range; either bound may be missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) gte: Option<i64>,
    pub(crate) lte: Option<i64>,
}

impl Range {
    pub(crate) fn contains(self, value: i64) -> bool {
        self.gte.is_none_or(|gte| value >= gte) && self.lte.is_none_or(|lte| value <= lte)
    }
}

/// The criteria of `and_query` or `or_query` the simulator knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    pub(crate) user_ids: Option<Vec<u64>>,
    pub(crate) user_id_range: Option<Range>,
    pub(crate) joined_at: Option<Range>,
    pub(crate) join_source_types: Option<Vec<i64>>,
    pub(crate) source_invite_codes: Option<Vec<String>>,
}

impl Filter {
    /// Each criterion given, as (member → matches) checks.
    pub(crate) fn criteria(&self, member: &SearchedMember) -> Vec<bool> {
        let mut checks = Vec::new();
        if let Some(ids) = &self.user_ids {
            checks.push(ids.contains(&member.user_id));
        }
        if let Some(range) = self.user_id_range {
            checks.push(range.contains(i64::try_from(member.user_id).unwrap_or(i64::MAX)));
        }
        if let Some(range) = self.joined_at {
            checks.push(range.contains(member.joined_at_ms));
        }
        if let Some(types) = &self.join_source_types {
            checks.push(types.contains(&i64::from(member.join_source_type)));
        }
        if let Some(codes) = &self.source_invite_codes {
            checks.push(
                member
                    .source_invite_code
                    .as_ref()
                    .is_some_and(|code| codes.contains(code)),
            );
        }
        checks
    }
}

/// What a search sees of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchedMember {
    pub(crate) user_id: u64,
    pub(crate) joined_at_ms: i64,
    pub(crate) join_source_type: u8,
    pub(crate) source_invite_code: Option<String>,
    pub(crate) inviter_id: Option<u64>,
}

/// The member to page past: `{user_id, guild_joined_at}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) user_id: u64,
    pub(crate) joined_at_ms: i64,
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MembersSearch {
    pub(crate) limit: usize,
    pub(crate) sort: Sort,
    pub(crate) and_query: Filter,
    pub(crate) or_query: Filter,
    pub(crate) after: Option<Cursor>,
    pub(crate) before: Option<Cursor>,
}

impl MembersSearch {
    /// Whether `member` meets every criterion of `and_query` and, when `or_query` has any, at
    /// least one of those.
    pub(crate) fn matches(&self, member: &SearchedMember) -> bool {
        let any = self.or_query.criteria(member);
        self.and_query.criteria(member).into_iter().all(|ok| ok)
            && (any.is_empty() || any.into_iter().any(|ok| ok))
    }

    /// The key members are ordered by, ascending in the sort's direction.
    pub(crate) fn key(&self, member: &SearchedMember) -> (i128, i128) {
        let (joined, user) = (i128::from(member.joined_at_ms), i128::from(member.user_id));
        match self.sort {
            Sort::NewestJoinFirst => (-joined, -user),
            Sort::OldestJoinFirst => (joined, user),
            Sort::NewestAccountFirst => (-user, -joined),
            Sort::OldestAccountFirst => (user, joined),
        }
    }

    fn cursor_key(&self, cursor: Cursor) -> (i128, i128) {
        self.key(&SearchedMember {
            user_id: cursor.user_id,
            joined_at_ms: cursor.joined_at_ms,
            join_source_type: 0,
            source_invite_code: None,
            inviter_id: None,
        })
    }

    /// Whether `member` lies strictly after `after` and before `before` in the sort's order.
    pub(crate) fn within_cursors(&self, member: &SearchedMember) -> bool {
        let key = self.key(member);
        self.after.is_none_or(|c| key > self.cursor_key(c))
            && self.before.is_none_or(|c| key < self.cursor_key(c))
    }
}

fn form(field: &str, message: &str) -> ApiError {
    ApiError::form(field, "BASE_TYPE_BAD_REQUEST", message)
}

/// Parses and checks a search body.
///
/// # Errors
/// 400 `50109` for a body that is not JSON, 400 `50035` naming the field otherwise.
pub(crate) fn parse(body: &[u8]) -> Result<MembersSearch, ApiError> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|_| {
            ApiError::new(
                actix_web::http::StatusCode::BAD_REQUEST,
                "The request body contains invalid JSON.",
                50109,
            )
        })?
    };
    let Value::Object(fields) = value else {
        return Err(form("_", "the body must be a JSON object"));
    };
    let limit = match fields.get("limit") {
        None | Some(Value::Null) => 25,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=1000) => usize::try_from(n).unwrap_or(1000),
            _ => return Err(form("limit", "an integer from 1 to 1000")),
        },
    };
    let sort = match fields.get("sort") {
        None | Some(Value::Null) => Sort::NewestJoinFirst,
        Some(v) => match v.as_u64() {
            Some(1) => Sort::NewestJoinFirst,
            Some(2) => Sort::OldestJoinFirst,
            Some(3) => Sort::NewestAccountFirst,
            Some(4) => Sort::OldestAccountFirst,
            _ => return Err(form("sort", "one of 1, 2, 3, 4")),
        },
    };
    Ok(MembersSearch {
        limit,
        sort,
        and_query: filter(&fields, "and_query")?,
        or_query: filter(&fields, "or_query")?,
        after: cursor(&fields, "after")?,
        before: cursor(&fields, "before")?,
    })
}

fn cursor(fields: &Map<String, Value>, name: &str) -> Result<Option<Cursor>, ApiError> {
    let Some(value) = fields.get(name).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let user_id = value
        .get("user_id")
        .and_then(snowflake)
        .ok_or_else(|| form(&format!("{name}.user_id"), "a snowflake is required"))?;
    let joined_at_ms = value
        .get("guild_joined_at")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            form(
                &format!("{name}.guild_joined_at"),
                "Unix milliseconds are required",
            )
        })?;
    Ok(Some(Cursor {
        user_id,
        joined_at_ms,
    }))
}

fn snowflake(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
    .filter(|id| *id > 0)
}

/// The operators a key allows, as the community's documentation lists them.
fn operators(key: &str) -> Option<&'static [&'static str]> {
    Some(match key {
        "user_id" => &["or_query", "range"],
        "usernames" | "join_source_type" | "source_invite_code" => &["or_query"],
        "role_ids" => &["or_query", "and_query"],
        "guild_joined_at" => &["range"],
        "is_pending" | "did_rejoin" | "safety_signals" => &[],
        _ => return None,
    })
}

fn filter(fields: &Map<String, Value>, name: &str) -> Result<Filter, ApiError> {
    let mut filter = Filter::default();
    let Some(value) = fields.get(name).filter(|v| !v.is_null()) else {
        return Ok(filter);
    };
    let Value::Object(criteria) = value else {
        return Err(form(name, "an object of member criteria"));
    };
    for (key, query) in criteria {
        let field = format!("{name}.{key}");
        let Some(allowed) = operators(key) else {
            return Err(form(&field, "not a member search criterion"));
        };
        if matches!(
            key.as_str(),
            "usernames" | "role_ids" | "is_pending" | "did_rejoin" | "safety_signals"
        ) {
            return Err(form(&field, "a criterion the simulator does not implement"));
        }
        let Value::Object(ops) = query else {
            return Err(form(&field, "a query object"));
        };
        for (op, operand) in ops {
            let at = format!("{field}.{op}");
            if !allowed.contains(&op.as_str()) {
                return Err(form(&at, "an operator this criterion does not allow"));
            }
            match (key.as_str(), op.as_str()) {
                ("user_id", "or_query") => {
                    filter.user_ids = Some(values(&at, operand, snowflake)?);
                }
                ("user_id", "range") => filter.user_id_range = Some(range(&at, operand)?),
                ("guild_joined_at", "range") => filter.joined_at = Some(range(&at, operand)?),
                ("join_source_type", _) => {
                    filter.join_source_types = Some(values(&at, operand, Value::as_i64)?);
                }
                ("source_invite_code", _) => {
                    filter.source_invite_codes =
                        Some(values(&at, operand, |v| v.as_str().map(str::to_owned))?);
                }
                _ => return Err(form(&at, "an operator this criterion does not allow")),
            }
        }
    }
    Ok(filter)
}

fn values<T>(
    at: &str,
    operand: &Value,
    read: impl Fn(&Value) -> Option<T>,
) -> Result<Vec<T>, ApiError> {
    let Value::Array(items) = operand else {
        return Err(form(at, "an array"));
    };
    if items.is_empty() || items.len() > MAX_VALUES {
        return Err(form(at, "from 1 to 10 values"));
    }
    items
        .iter()
        .map(|item| {
            let len = match item {
                Value::String(s) => s.chars().count(),
                other => other.to_string().len(),
            };
            if !(1..=MAX_VALUE_LEN).contains(&len) {
                return Err(form(at, "each value from 1 to 100 characters"));
            }
            read(item).ok_or_else(|| form(at, "a value of the wrong type"))
        })
        .collect()
}

fn range(at: &str, operand: &Value) -> Result<Range, ApiError> {
    let bound = |name: &str| match operand.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| form(at, "integer bounds")),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| form(at, "integer bounds")),
    };
    let range = Range {
        gte: bound("gte")?,
        lte: bound("lte")?,
    };
    if range.gte.is_none() && range.lte.is_none() {
        return Err(form(at, "a range needs gte or lte"));
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_for_new_members_by_id_parses() {
        let search =
            parse(br#"{"limit": 10, "and_query": {"user_id": {"or_query": ["111", "222"]}}}"#)
                .expect("valid");
        assert_eq!(search.limit, 10);
        assert_eq!(search.sort, Sort::NewestJoinFirst);
        assert_eq!(search.and_query.user_ids, Some(vec![111, 222]));
        assert_eq!(parse(b"").expect("empty").limit, 25);
    }

    #[test]
    fn bodies_outside_the_documented_limits_are_refused_naming_the_field() {
        let eleven: Vec<String> = (1..=11).map(|n| format!("\"{n}\"")).collect();
        for (body, field) in [
            (r#"{"limit": 0}"#.to_owned(), "limit"),
            (r#"{"limit": 1001}"#.to_owned(), "limit"),
            (r#"{"sort": 5}"#.to_owned(), "sort"),
            (
                format!(
                    r#"{{"and_query": {{"user_id": {{"or_query": [{}]}}}}}}"#,
                    eleven.join(",")
                ),
                "and_query.user_id.or_query",
            ),
            (
                r#"{"and_query": {"user_id": {"or_query": []}}}"#.to_owned(),
                "and_query.user_id.or_query",
            ),
            (
                r#"{"and_query": {"guild_joined_at": {"or_query": [1]}}}"#.to_owned(),
                "and_query.guild_joined_at.or_query",
            ),
            (
                r#"{"or_query": {"guild_joined_at": {"range": {}}}}"#.to_owned(),
                "or_query.guild_joined_at.range",
            ),
            (
                r#"{"and_query": {"nickname": {"or_query": ["a"]}}}"#.to_owned(),
                "and_query.nickname",
            ),
            (
                r#"{"after": {"user_id": "1"}}"#.to_owned(),
                "after.guild_joined_at",
            ),
        ] {
            let error = parse(body.as_bytes()).expect_err(&body);
            assert_eq!(error.code, 50035, "{body}");
            let errors = error.errors.expect("field errors").to_string();
            let first = field.split('.').next().unwrap_or(field);
            assert!(errors.contains(first), "{body}: {errors}");
        }
        assert_eq!(parse(b"{not json").expect_err("json").code, 50109);
    }
}
