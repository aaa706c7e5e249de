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

/// The largest bonus CSV file.
pub(crate) const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;
/// The largest joins export read (a million joins are about 360 MB).
const MAX_STREAMED_IMPORT_BYTES: usize = 4 << 30;
/// The longest line of an export (one join is under 1 KB).
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Joins staged per batch.
const STAGE_BATCH: usize = 2_000;
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

/// Joins from another invitrack's `GET export/joins?format=json`, into this guild, read as the
/// file streams in (one join per line, as the export writes it; a JSON array on one line also
/// works) and staged in batches, so a file of any size takes flat memory. Nothing is written to
/// the guild unless every join is valid; joins it has already are left alone, so importing
/// twice changes nothing. The guild's counters are then recounted from its rows. `?author=`
/// says who imports.
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
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let author = author(&req)?;
    let import_id = rand::random::<i64>().unsigned_abs().cast_signed().max(1);
    let mut conn = state.connection().await?;
    let read = read_joins(payload, &state, &mut conn, import_id).await;
    let staged = match read {
        Ok(staged) => staged,
        Err(error) => {
            if let Err(cleanup) = queries::discard_import(&mut conn, import_id).await {
                tracing::warn!(error = %cleanup, "staged joins of a refused import stay for an hour");
            }
            return Err(error);
        }
    };
    let done = queries::finish_join_import(
        &mut conn,
        guild.key(),
        import_id,
        staged,
        &actor(&caller, &author),
    )
    .await?;
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

/// Reads the file line by line and stages its joins; returns how many. Stops staging at the
/// first bad join but reads on, to name every bad one.
async fn read_joins(
    mut payload: web::Payload,
    state: &AppState,
    conn: &mut invitrack_storage::PooledConnection,
    import_id: i64,
) -> Result<usize, ApiError> {
    use futures_util::StreamExt as _;
    let mut buffer: Vec<u8> = Vec::new();
    let mut batch = Vec::new();
    let (mut staged, mut seen, mut received) = (0_usize, 0_usize, 0_usize);
    let mut problems = Vec::new();
    loop {
        let chunk = tokio::time::timeout(state.body_timeout, payload.next())
            .await
            .map_err(|_| ApiError::BodyTimeout {
                secs: state.body_timeout.as_secs(),
            })?;
        let done = match chunk {
            None => true,
            Some(Err(e)) => {
                return Err(ApiError::InvalidBody(format!("the upload broke off: {e}")));
            }
            Some(Ok(bytes)) => {
                received += bytes.len();
                if received > MAX_STREAMED_IMPORT_BYTES {
                    return Err(ApiError::InvalidBody(format!(
                        "the file is over {} GiB",
                        MAX_STREAMED_IMPORT_BYTES >> 30
                    )));
                }
                buffer.extend_from_slice(&bytes);
                false
            }
        };
        let mut lines: Vec<Vec<u8>> = Vec::new();
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            lines.push(buffer.drain(..=end).collect());
        }
        if done {
            lines.push(std::mem::take(&mut buffer));
        } else if buffer.len() > MAX_LINE_BYTES {
            return Err(refuse(&[format!(
                "a line of over {MAX_LINE_BYTES} bytes: not an invitrack export"
            )]));
        }
        for line in lines {
            for join in parse_line(&line, &mut seen, &mut problems) {
                batch.push(join);
            }
        }
        if !problems.is_empty() {
            batch.clear();
        } else if batch.len() >= STAGE_BATCH || (done && !batch.is_empty()) {
            queries::stage_joins(conn, import_id, &batch).await?;
            staged += batch.len();
            batch.clear();
        }
        if done {
            break;
        }
    }
    if !problems.is_empty() {
        return Err(refuse(&problems));
    }
    Ok(staged)
}

/// The joins of one line of an export; problems are noted with the join's index.
fn parse_line(line: &[u8], seen: &mut usize, problems: &mut Vec<String>) -> Vec<ImportedJoin> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim().trim_end_matches(',');
    if text.is_empty() || text == "[" || text == "]" {
        return Vec::new();
    }
    let exported: Vec<Result<ExportedJoin, String>> = if text.starts_with('[') {
        match serde_json::from_str::<Vec<serde_json::Value>>(text) {
            Ok(values) => values
                .into_iter()
                .map(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
                .collect(),
            Err(e) => vec![Err(e.to_string())],
        }
    } else {
        vec![serde_json::from_str(text).map_err(|e| e.to_string())]
    };
    let mut joins = Vec::new();
    for join in exported {
        let index = *seen;
        *seen += 1;
        match join.and_then(ExportedJoin::checked) {
            Ok(join) => joins.push(join),
            Err(problem) => problems.push(format!("join {index}: {problem}")),
        }
    }
    joins
}
