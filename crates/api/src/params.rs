//! Request parameters, parsed once at the boundary. InviteLogger documents its parameters as a
//! GET body; clients also send them as a query string. Both are accepted, the query string first.

use invitrack_model::{Id, InviteCode, MAX_INVITE_CODE_LEN};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

/// The request body as bytes, read within `API_BODY_TIMEOUT_SECS` (408 past it). Every handler
/// that reads a body takes it this way: actix's `client_request_timeout` covers only the
/// request head, and `web::Bytes` alone waits for a missing body as long as the client keeps
/// the connection open.
pub struct BodyBytes(pub web::Bytes);

impl FromRequest for BodyBytes {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let timeout = req
            .app_data::<web::Data<AppState>>()
            .map(|state| state.body_timeout);
        let read = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let timeout = timeout.ok_or(ApiError::Internal("application state missing"))?;
            match tokio::time::timeout(timeout, read).await {
                Ok(body) => Ok(Self(body?)),
                Err(_) => Err(ApiError::BodyTimeout {
                    secs: timeout.as_secs(),
                }
                .into()),
            }
        })
    }
}

/// The parameters of one request, from its query string and JSON body.
pub struct Params {
    query: HashMap<String, String>,
    body: Option<serde_json::Map<String, Value>>,
}

impl Params {
    /// # Errors
    /// When the query string is malformed or a non-empty body is not a JSON object.
    pub fn from_request(req: &HttpRequest, body: &[u8]) -> Result<Self, ApiError> {
        let query =
            actix_web::web::Query::<HashMap<String, String>>::from_query(req.query_string())
                .map_err(|e| ApiError::InvalidQuery(e.to_string()))?
                .into_inner();
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => Some(map),
                Ok(_) => return Err(ApiError::InvalidBody("expected a JSON object".into())),
                Err(e) => return Err(ApiError::InvalidBody(e.to_string())),
            }
        };
        Ok(Self { query, body })
    }

    fn raw(&self, name: &'static str) -> Result<Option<String>, ApiError> {
        if let Some(v) = self.query.get(name) {
            return Ok(Some(v.clone()));
        }
        match self.body.as_ref().and_then(|b| b.get(name)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            // Snowflakes sent as JSON numbers lose precision above 2^53 in most clients, but an
            // exact integer is still accepted.
            Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
            Some(_) => Err(ApiError::InvalidParameter {
                name,
                problem: "must be a string".into(),
            }),
        }
    }

    /// A required Discord id (a snowflake as a decimal string).
    ///
    /// # Errors
    /// When it is missing or not a snowflake.
    pub fn snowflake<M>(&self, name: &'static str) -> Result<Id<M>, ApiError> {
        let raw = self.raw(name)?.ok_or(ApiError::MissingParameter(name))?;
        parse_snowflake(name, &raw)
    }

    /// A required invite code, without `discord.gg/`.
    ///
    /// # Errors
    /// When it is missing or cannot be an invite code.
    pub fn invite_code(&self, name: &'static str) -> Result<InviteCode, ApiError> {
        let raw = self.raw(name)?.ok_or(ApiError::MissingParameter(name))?;
        let code = InviteCode::parse(raw).map_err(|_| ApiError::InvalidParameter {
            name,
            problem: format!(
                "an invite code is 1 to {MAX_INVITE_CODE_LEN} letters, digits, '-' or '_' \
                 (without discord.gg/)"
            ),
        })?;
        tracing::Span::current().record(name, code.as_str());
        Ok(code)
    }

    /// Parameters from the query string only (endpoints that take a JSON body for writes).
    ///
    /// # Errors
    /// When the query string is malformed.
    pub fn from_query(req: &HttpRequest) -> Result<Self, ApiError> {
        Self::from_request(req, &[])
    }

    /// An optional integer in `min..=max`, `default` when absent.
    ///
    /// # Errors
    /// When present and not such an integer.
    pub fn integer(
        &self,
        name: &'static str,
        min: i64,
        max: i64,
        default: i64,
    ) -> Result<i64, ApiError> {
        match self.raw(name)? {
            None => Ok(default),
            Some(raw) => match raw.parse::<i64>() {
                Ok(v) if (min..=max).contains(&v) => Ok(v),
                _ => Err(ApiError::InvalidParameter {
                    name,
                    problem: format!("{raw:?} is not an integer from {min} to {max}"),
                }),
            },
        }
    }

    /// An optional integer in `min..=max`, `None` when absent.
    ///
    /// # Errors
    /// When present and not such an integer.
    pub fn optional_integer(
        &self,
        name: &'static str,
        min: i64,
        max: i64,
    ) -> Result<Option<i64>, ApiError> {
        match self.raw(name)? {
            None => Ok(None),
            Some(_) => self.integer(name, min, max, min).map(Some),
        }
    }

    /// An optional Discord id.
    ///
    /// # Errors
    /// When present and not a snowflake.
    pub fn optional_snowflake<M>(&self, name: &'static str) -> Result<Option<Id<M>>, ApiError> {
        self.raw(name)?
            .map(|raw| parse_snowflake(name, &raw))
            .transpose()
    }

    /// An optional choice among `options`, `default` when absent.
    ///
    /// # Errors
    /// When present and not one of the options.
    pub fn choice<T: Copy>(
        &self,
        name: &'static str,
        options: &[(&str, T)],
        default: T,
    ) -> Result<T, ApiError> {
        match self.raw(name)? {
            None => Ok(default),
            Some(raw) => options
                .iter()
                .find(|(o, _)| *o == raw)
                .map(|(_, v)| *v)
                .ok_or_else(|| ApiError::InvalidParameter {
                    name,
                    problem: format!(
                        "{raw:?} is not one of {}",
                        options
                            .iter()
                            .map(|(o, _)| *o)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }),
        }
    }
}

/// A Discord id from the URL path (`{bot_id}`, ...): 400 naming it when malformed, never 404.
///
/// # Errors
/// When it is not a snowflake.
pub fn path_snowflake<M>(req: &HttpRequest, name: &'static str) -> Result<Id<M>, ApiError> {
    let raw = req
        .match_info()
        .get(name)
        .ok_or(ApiError::MissingParameter(name))?;
    parse_snowflake(name, raw)
}

/// A positive database id from the URL path (`{reset_id}`).
///
/// # Errors
/// When it is not a positive integer.
pub fn path_id(req: &HttpRequest, name: &'static str) -> Result<i64, ApiError> {
    let raw = req
        .match_info()
        .get(name)
        .ok_or(ApiError::MissingParameter(name))?;
    match raw.parse::<i64>() {
        Ok(id) if id > 0 && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
        _ => Err(ApiError::InvalidParameter {
            name,
            problem: format!("{raw:?} is not a positive integer"),
        }),
    }
}

/// A JSON request body of an admin write, read field by field so every error names its field.
pub struct Body(serde_json::Map<String, Value>);

impl Body {
    /// The JSON object of a write's body (an empty body is an empty object). A body must say it
    /// is JSON (`Content-Type: application/json`, or a `+json` type): a form or text posted by
    /// mistake is answered 415 rather than guessed at.
    ///
    /// # Errors
    /// When the body is not declared as JSON or is not a JSON object.
    pub fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(serde_json::Map::new()));
        }
        let declared_json = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || v.ends_with("+json"));
        if !declared_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        Self::parse_json(body)
    }

    fn parse_json(body: &[u8]) -> Result<Self, ApiError> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::InvalidBody("expected a JSON object".into())),
            Err(e) => Err(ApiError::InvalidBody(e.to_string())),
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// A write's fields from the query string, for `DELETE` (which carries no body).
    ///
    /// # Errors
    /// When the query string is malformed.
    pub fn from_query(req: &HttpRequest) -> Result<Self, ApiError> {
        let query =
            actix_web::web::Query::<HashMap<String, String>>::from_query(req.query_string())
                .map_err(|e| ApiError::InvalidQuery(e.to_string()))?
                .into_inner();
        Ok(Self(
            query
                .into_iter()
                .map(|(name, value)| (name, Value::String(value)))
                .collect(),
        ))
    }

    /// Optional text of at most `max` characters, trimmed.
    ///
    /// # Errors
    /// When present and not a string, or too long.
    pub fn text(&self, name: &'static str, max: usize) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let s = s.trim();
                if s.chars().count() > max || !s.chars().all(is_visible_or_space) {
                    Err(ApiError::InvalidParameter {
                        name,
                        problem: format!(
                            "at most {max} characters, no control, format (invisible or \
                             direction-changing) or unassigned characters"
                        ),
                    })
                } else {
                    Ok(Some(s.to_owned()))
                }
            }
            Some(_) => Err(ApiError::InvalidParameter {
                name,
                problem: "must be a string".into(),
            }),
        }
    }

    /// Required non-empty text of at most `max` characters.
    ///
    /// # Errors
    /// When missing, empty, not a string or too long.
    pub fn required_text(&self, name: &'static str, max: usize) -> Result<String, ApiError> {
        match self.text(name, max)? {
            None => Err(ApiError::MissingParameter(name)),
            Some(s) if s.is_empty() => Err(ApiError::InvalidParameter {
                name,
                problem: "must not be empty".into(),
            }),
            Some(s) => Ok(s),
        }
    }

    /// An optional integer in `min..=max`.
    ///
    /// # Errors
    /// When present and not such an integer.
    pub fn integer(&self, name: &'static str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match json_integer(v) {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(ApiError::InvalidParameter {
                    name,
                    problem: format!("must be an integer from {min} to {max}"),
                }),
            },
        }
    }

    /// An optional boolean.
    ///
    /// # Errors
    /// When present and not a boolean.
    pub fn boolean(&self, name: &'static str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::InvalidParameter {
                name,
                problem: "must be true or false".into(),
            }),
        }
    }

    /// A Discord id that may be cleared: absent = unchanged (`None`), `null` = cleared
    /// (`Some(None)`), a snowflake = set.
    ///
    /// # Errors
    /// When present, not null and not a snowflake.
    pub fn nullable_snowflake<M>(
        &self,
        name: &'static str,
    ) -> Result<Option<Option<Id<M>>>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(_) => self.snowflake(name).map(Some),
        }
    }

    /// A JSON object's entries, when present.
    ///
    /// # Errors
    /// When present and not an object.
    pub fn object(
        &self,
        name: &'static str,
    ) -> Result<Option<&serde_json::Map<String, Value>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(ApiError::InvalidParameter {
                name,
                problem: "must be a JSON object".into(),
            }),
        }
    }

    /// A field as it was sent, `null` counting as absent.
    #[must_use]
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }

    /// An optional Discord id, as a string (or an exact integer).
    ///
    /// # Errors
    /// When present and not a snowflake.
    pub fn snowflake<M>(&self, name: &'static str) -> Result<Option<Id<M>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => parse_snowflake(name, s).map(Some),
            Some(Value::Number(n)) if n.is_u64() => parse_snowflake(name, &n.to_string()).map(Some),
            Some(_) => Err(ApiError::InvalidParameter {
                name,
                problem: "must be a Discord id as a string".into(),
            }),
        }
    }
}

/// An integer as JSON Schema counts them: `5` and also `5.0` (a number with no fraction, which
/// some clients and generators send), within i64.
fn json_integer(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    // Exactly representable and integral: the cast below neither truncates nor saturates.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let whole = (f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0).then_some(f as i64);
    whole
}

/// Whether free text may hold `c`: letters, marks, numbers, punctuation, symbols and spaces;
/// not controls, format characters (zero-width, bidirectional overrides), private-use,
/// surrogates, unassigned code points or line/paragraph separators, which would hide or
/// disguise what an audit entry says.
fn is_visible_or_space(c: char) -> bool {
    use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory as _};
    !matches!(c.general_category_group(), GeneralCategoryGroup::Other)
        && !matches!(
            c.general_category(),
            GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
        )
}

/// Parses a snowflake: a non-zero decimal u64.
///
/// # Errors
/// When `raw` is not one.
pub fn parse_snowflake<M>(name: &'static str, raw: &str) -> Result<Id<M>, ApiError> {
    let id = Id::parse(raw).map_err(|_| ApiError::InvalidParameter {
        name,
        problem: format!("{raw:?} is not a Discord id (a positive integer as a string)"),
    })?;
    // Handlers declare the ids they take as span fields (`fields(inviter_id)`): each is
    // recorded where it is parsed (a name the span does not declare is ignored).
    tracing::Span::current().record(name, id.get());
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use invitrack_model::{UserId, UserMarker};

    #[test]
    fn free_text_is_visible() {
        let body = |author: &str| {
            let mut fields = serde_json::Map::new();
            fields.insert("author".into(), Value::String(author.into()));
            Body(fields)
        };
        for fine in [
            "owner",
            "Zoë (mod)",
            "管理者",
            "أحمد",
            "🙂 team",
            "a\u{3000}b",
        ] {
            assert_eq!(
                body(fine).text("author", 100).ok().flatten().as_deref(),
                Some(fine)
            );
        }
        for hidden in [
            "\u{202e}nimda",     // right-to-left override
            "ad\u{200b}min",     // zero-width space
            "\u{2066}x\u{2069}", // isolates
            "a\u{0007}",         // control
            "\u{e000}",          // private use
            "a\u{2028}b",        // line separator
            "\u{feff}owner",     // byte order mark
        ] {
            assert!(body(hidden).text("author", 100).is_err(), "{hidden:?}");
        }
    }

    #[test]
    fn snowflakes_and_percent_decoding() {
        assert_eq!(
            parse_snowflake::<UserMarker>("x", "417977361011572747").ok(),
            Some(UserId::new(417_977_361_011_572_747))
        );
        for bad in ["0", "+12", "abc", "99999999999999999999999"] {
            assert!(parse_snowflake::<UserMarker>("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn integers_may_come_as_numbers_without_fraction() {
        let body =
            Body::parse_json(br#"{"a": 317.0, "b": 2.5, "c": -3, "d": 1e300}"#).expect("json");
        assert_eq!(body.integer("a", 1, 3650).ok(), Some(Some(317)));
        assert!(body.integer("b", 1, 3650).is_err());
        assert_eq!(body.integer("c", -5, 5).ok(), Some(Some(-3)));
        assert!(body.integer("d", 1, 3650).is_err());
    }
}
