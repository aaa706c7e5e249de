//! Imports (`docs/dashboard.md#import`): a JSON export of joins from another invitrack, and a CSV
//! of bonus per inviter from another tracker. Every line is checked before anything is written;
//! a bad file is refused whole, saying which lines are wrong.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use invitrack_model::{FakeReasons, InviteCode, JoinSource, UnknownReason, UserId};
use invitrack_storage::import::{self as queries, BonusLine, ImportedJoin};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::admin::{AUTHOR_MAX, BONUS_MAX, actor};
use crate::auth::{Caller, GuildPath};
use crate::error::ApiError;
use crate::openapi_parts::{CommonErrors, GuildParams};
use crate::params::{Body, BodyBytes};

/// The largest import body (about 180,000 exported joins).
pub(crate) const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;
/// Problems quoted back at most.
const SHOWN_PROBLEMS: usize = 20;

/// What an import wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    /// Rows written.
    pub written: usize,
    /// Joins the guild had already (same member and join time), left as they were.
    pub already_there: usize,
    /// Inviters with counters in the guild now.
    pub inviters: usize,
}

fn refuse(problems: &[String]) -> ApiError {
    let mut shown: Vec<&str> = problems
        .iter()
        .take(SHOWN_PROBLEMS)
        .map(String::as_str)
        .collect();
    let more = problems.len().saturating_sub(SHOWN_PROBLEMS);
    let tail = format!("and {more} more");
    if more > 0 {
        shown.push(&tail);
    }
    ApiError::InvalidBody(format!("nothing imported: {}", shown.join("; ")))
}

fn author(req: &HttpRequest) -> Result<String, ApiError> {
    let author = Body::from_query(req)?.text("author", AUTHOR_MAX)?;
    author
        .filter(|a| !a.trim().is_empty())
        .ok_or(ApiError::MissingParameter("author"))
}

/// Bonus per inviter from a CSV file: a header `inviter_id,amount[,reason]`, then one line per
/// adjustment (`amount` from -1,000,000 to 1,000,000, not 0). `?author=` says who imports.
#[utoipa::path(
    post,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/import/bonus",
    tag = "admin",
    params(GuildParams, ("author" = String, Query, description = "who imports, for the audit log")),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, description = "imported", body = ImportResult), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn bonus(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    BodyBytes(body): BodyBytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let author = author(&req)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body.as_ref());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ApiError::InvalidBody(format!("not CSV: {e}")))?
        .iter()
        .map(str::to_lowercase)
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(inviter_at), Some(amount_at)) = (column("inviter_id"), column("amount")) else {
        return Err(ApiError::InvalidBody(
            "the first line must name the columns: inviter_id,amount[,reason]".into(),
        ));
    };
    let reason_at = column("reason");
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let inviter = record
            .get(inviter_at)
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(UserId::new_checked);
        let amount = record
            .get(amount_at)
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|a| *a != 0 && a.abs() <= BONUS_MAX);
        let reason = reason_at
            .and_then(|at| record.get(at))
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
        match (inviter, amount) {
            (Some(inviter_id), Some(amount)) => lines.push(BonusLine {
                inviter_id,
                amount,
                reason,
            }),
            (None, _) => problems.push(format!("line {line}: inviter_id is not a Discord id")),
            (_, None) => problems.push(format!(
                "line {line}: amount must be a whole number from -{BONUS_MAX} to {BONUS_MAX}, not 0"
            )),
        }
    }
    if !problems.is_empty() {
        return Err(refuse(&problems));
    }
    let mut conn = state.connection().await?;
    let done =
        queries::import_bonus(&mut conn, guild.key(), &lines, &actor(&caller, &author)).await?;
    state.counts_changed(guild.key());
    tracing::info!(lines = done.written, "bonus imported");
    Ok(HttpResponse::Ok().json(ImportResult {
        written: done.written,
        already_there: done.already_there,
        inviters: done.inviters,
    }))
}

/// One join as `GET export/joins?format=json` writes it (the fields an import needs).
#[derive(Debug, Deserialize)]
struct ExportedJoin {
    member_id: String,
    created_at: DateTime<Utc>,
    decided_at: DateTime<Utc>,
    source: String,
    invite_code: Option<String>,
    inviter_id: Option<String>,
    #[serde(default)]
    candidates: Vec<String>,
    unknown_reason: Option<String>,
    #[serde(default)]
    fake_reasons: Vec<String>,
    left_at: Option<DateTime<Utc>>,
    #[serde(default)]
    cleared: bool,
}

impl ExportedJoin {
    fn checked(self) -> Result<ImportedJoin, String> {
        let id = |raw: &str| raw.parse::<u64>().ok().and_then(UserId::new_checked);
        let code = |raw: &str| {
            InviteCode::parse(raw).map_err(|_| format!("{raw:?} is not an invite code"))
        };
        let mut fake = FakeReasons::NONE;
        for name in &self.fake_reasons {
            fake = fake.union(
                FakeReasons::from_name(name)
                    .ok_or_else(|| format!("{name:?} is not a fake reason"))?,
            );
        }
        Ok(ImportedJoin {
            member_id: id(&self.member_id).ok_or("member_id is not a Discord id")?,
            created_at: self.created_at,
            decided_at: self.decided_at,
            source: self
                .source
                .parse::<JoinSource>()
                .map_err(|_| format!("{:?} is not a join source", self.source))?,
            invite_code: self.invite_code.as_deref().map(code).transpose()?,
            inviter_id: match &self.inviter_id {
                Some(raw) => Some(id(raw).ok_or("inviter_id is not a Discord id")?),
                None => None,
            },
            candidates: self
                .candidates
                .iter()
                .map(|c| code(c))
                .collect::<Result<_, _>>()?,
            unknown_reason: self
                .unknown_reason
                .as_deref()
                .map(|r| {
                    r.parse::<UnknownReason>()
                        .map_err(|_| format!("{r:?} is not an unknown reason"))
                })
                .transpose()?,
            fake,
            left_at: self.left_at,
            cleared: self.cleared,
        })
    }
}

/// Joins from another invitrack's `GET export/joins?format=json`, into this guild; joins it has
/// already are left alone, so importing twice changes nothing. The guild's counters are then
/// recounted from its rows. `?author=` says who imports.
#[utoipa::path(
    post,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/import/joins",
    tag = "admin",
    params(GuildParams, ("author" = String, Query, description = "who imports, for the audit log")),
    request_body(content = Object, description = "a JSON export of joins", content_type = "application/json"),
    responses((status = 200, description = "imported", body = ImportResult), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn joins(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    BodyBytes(body): BodyBytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let author = author(&req)?;
    let exported: Vec<ExportedJoin> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::InvalidBody(format!("not a JSON export of joins: {e}")))?;
    let mut joins = Vec::with_capacity(exported.len());
    let mut problems = Vec::new();
    for (index, join) in exported.into_iter().enumerate() {
        match join.checked() {
            Ok(join) => joins.push(join),
            Err(problem) => problems.push(format!("join {index}: {problem}")),
        }
    }
    if !problems.is_empty() {
        return Err(refuse(&problems));
    }
    let mut conn = state.connection().await?;
    let done =
        queries::import_joins(&mut conn, guild.key(), &joins, &actor(&caller, &author)).await?;
    state.counts_changed(guild.key());
    tracing::info!(
        written = done.written,
        already_there = done.already_there,
        "joins imported"
    );
    Ok(HttpResponse::Ok().json(ImportResult {
        written: done.written,
        already_there: done.already_there,
        inviters: done.inviters,
    }))
}
