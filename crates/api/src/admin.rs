//! Admin writes (keys with the `admin` scope): bonus invites, soft resets and their restore;
//! and the reads that go with them (settings are in `settings.rs`). Every write is audited in
//! its transaction.

use actix_web::{HttpRequest, HttpResponse, web};
use invitrack_storage::admin::{self as queries, Actor, BonusRow, ResetRow, RestoreOutcome};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, GuildPath};
use crate::dashboard::Counts;
use crate::error::ApiError;
use crate::invites::timestamp;
use crate::openapi_parts::{
    AuditQuery, CommonErrors, ConflictError, GuildParams, InviterParams, NotFoundError, ResetParams,
};
use crate::params::{Body, BodyBytes, Params, path_id, path_snowflake};

pub(crate) const AUTHOR_MAX: usize = 100;
const REASON_MAX: usize = 500;
/// The largest bonus one adjustment gives or takes.
pub(crate) const BONUS_MAX: i64 = 1_000_000;

/// One bonus adjustment.
#[derive(Debug, Serialize, ToSchema)]
pub struct Bonus {
    pub id: i64,
    pub inviter_id: String,
    /// Positive (added) or negative (removed), never 0.
    pub amount: i64,
    pub reason: String,
    pub author: String,
    /// The API key that made it.
    pub key_id: i64,
    pub created_at: String,
    /// Cleared by a reset (no longer counted).
    pub cleared: bool,
    pub reset_id: Option<i64>,
}

impl From<BonusRow> for Bonus {
    fn from(b: BonusRow) -> Self {
        Self {
            id: b.id,
            inviter_id: b.inviter_id.to_string(),
            amount: b.amount,
            reason: b.reason,
            author: b.author,
            key_id: b.key_id,
            created_at: timestamp(b.created_at),
            cleared: b.cleared,
            reset_id: b.cleared_by,
        }
    }
}

/// Body of `POST .../bonus`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the body; it is read field by field
pub struct NewBonus {
    /// Invites to add (positive) or remove (negative); not 0, at most 1,000,000 either way.
    #[schema(schema_with = amount_schema)]
    amount: i64,
    /// Who asks for it (a Discord user id or a dashboard user name), 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    author: String,
    /// Up to 500 characters.
    #[schema(max_length = 500, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    reason: Option<String>,
}

/// An integer from -1,000,000 to 1,000,000 but not 0.
fn amount_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    let range = |min: i64, max: i64| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(min))
            .maximum(Some(max))
    };
    OneOfBuilder::new()
        .item(range(-BONUS_MAX, -1))
        .item(range(1, BONUS_MAX))
        .description(Some("not 0, at most 1,000,000 either way"))
        .build()
        .into()
}

/// A bonus adjustment and the inviter's counts after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BonusAdded {
    pub bonus: Bonus,
    pub counts: Counts,
}

/// An inviter's bonus adjustments.
#[derive(Debug, Serialize, ToSchema)]
pub struct BonusList {
    pub inviter_id: String,
    /// Newest first, cleared ones included.
    pub entries: Vec<Bonus>,
}

pub(crate) fn actor<'a>(caller: &'a Caller, author: &'a str) -> Actor<'a> {
    Actor {
        key_id: caller.0.id,
        key_label: &caller.0.label,
        author,
    }
}

/// Adds bonus invites to an inviter, or removes some (negative amount). Kept as a row;
/// `bonus` and `total` move at once.
#[utoipa::path(
    post,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/inviters/{inviter_id}/bonus",
    tag = "admin",
    params(
        InviterParams,
    ),
    request_body = NewBonus,
    responses((status = 201, description = "added", body = BonusAdded), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id, inviter_id))]
pub async fn add_bonus(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    BodyBytes(body): BodyBytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let inviter_id = path_snowflake(&req, "inviter_id")?;
    let body = Body::parse(&req, &body)?;
    let amount = body
        .integer("amount", -BONUS_MAX, BONUS_MAX)?
        .ok_or(ApiError::MissingParameter("amount"))?;
    if amount == 0 {
        return Err(ApiError::InvalidParameter {
            name: "amount",
            problem: "must not be 0".into(),
        });
    }
    let author = body.required_text("author", AUTHOR_MAX)?;
    let reason = body.text("reason", REASON_MAX)?.unwrap_or_default();
    let mut conn = state.connection().await?;
    let (row, counts) = queries::add_bonus(
        &mut conn,
        guild.key(),
        inviter_id,
        amount,
        &reason,
        &actor(&caller, &author),
    )
    .await?;
    state.counts_changed(guild.key());
    Ok(HttpResponse::Created().json(BonusAdded {
        bonus: row.into(),
        counts: counts.into(),
    }))
}

/// An inviter's bonus adjustments, newest first.
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/inviters/{inviter_id}/bonus",
    tag = "admin",
    params(
        InviterParams,
    ),
    responses((status = 200, description = "the adjustments", body = BonusList), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id, inviter_id))]
pub async fn list_bonus(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.read(&guild)?;
    let inviter_id = path_snowflake(&req, "inviter_id")?;
    let mut conn = state.connection().await?;
    let rows = queries::list_bonus(&mut conn, guild.key(), inviter_id).await?;
    Ok(HttpResponse::Ok().json(BonusList {
        inviter_id: inviter_id.to_string(),
        entries: rows.into_iter().map(Into::into).collect(),
    }))
}

/// A soft reset.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reset {
    pub id: i64,
    /// `null`: the whole guild.
    pub inviter_id: Option<String>,
    pub reason: String,
    pub author: String,
    pub key_id: i64,
    pub created_at: String,
    pub joins_cleared: i64,
    pub bonus_cleared: i64,
    /// `null` until restored.
    pub restored_at: Option<String>,
}

impl From<ResetRow> for Reset {
    fn from(r: ResetRow) -> Self {
        Self {
            id: r.id,
            inviter_id: r.inviter_id.map(|i| i.to_string()),
            reason: r.reason,
            author: r.author,
            key_id: r.key_id,
            created_at: timestamp(r.created_at),
            joins_cleared: r.joins_cleared,
            bonus_cleared: r.bonus_cleared,
            restored_at: r.restored_at.map(timestamp),
        }
    }
}

/// Body of `POST .../resets`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct NewReset {
    /// Reset only this inviter; absent or `null`: the whole guild.
    #[schema(example = "417977361011572748", pattern = "^[1-9][0-9]{0,18}$")]
    inviter_id: Option<String>,
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    author: String,
    /// Up to 500 characters.
    #[schema(max_length = 500, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    reason: Option<String>,
}

/// Body of `POST .../resets/{reset_id}/restore`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct RestoreRequest {
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    author: String,
    /// Up to 500 characters.
    #[schema(max_length = 500, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    reason: Option<String>,
}

/// A guild's resets.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetList {
    /// Newest first.
    pub resets: Vec<Reset>,
}

/// Resets invites (`/resetinvites`) of one inviter or of the whole guild, softly: their joins
/// and bonus are marked cleared and stop counting; `restore` undoes it.
#[utoipa::path(
    post,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/resets",
    tag = "admin",
    params(
        GuildParams,
    ),
    request_body = NewReset,
    responses((status = 201, description = "reset", body = Reset), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn reset(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    BodyBytes(body): BodyBytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let body = Body::parse(&req, &body)?;
    let inviter_id = body.snowflake("inviter_id")?;
    let author = body.required_text("author", AUTHOR_MAX)?;
    let reason = body.text("reason", REASON_MAX)?.unwrap_or_default();
    let mut conn = state.connection().await?;
    let row = queries::reset(
        &mut conn,
        guild.key(),
        inviter_id,
        &reason,
        &actor(&caller, &author),
    )
    .await?;
    state.counts_changed(guild.key());
    Ok(HttpResponse::Created().json(Reset::from(row)))
}

/// A guild's resets, newest first.
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/resets",
    tag = "admin",
    params(
        GuildParams,
    ),
    responses((status = 200, description = "the resets", body = ResetList), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn list_resets(
    caller: Caller,
    guild: GuildPath,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.read(&guild)?;
    let mut conn = state.connection().await?;
    let rows = queries::list_resets(&mut conn, guild.key()).await?;
    Ok(HttpResponse::Ok().json(ResetList {
        resets: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Undoes a reset: the joins and bonus it cleared count again.
#[utoipa::path(
    post,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/resets/{reset_id}/restore",
    tag = "admin",
    params(
        ResetParams,
    ),
    request_body = RestoreRequest,
    responses(
        (status = 200, description = "restored", body = Reset),
        NotFoundError,
        ConflictError,
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id, reset_id))]
pub async fn restore(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    BodyBytes(body): BodyBytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let reset_id = path_id(&req, "reset_id")?;
    tracing::Span::current().record("reset_id", reset_id);
    let body = Body::parse(&req, &body)?;
    let author = body.required_text("author", AUTHOR_MAX)?;
    let reason = body.text("reason", REASON_MAX)?.unwrap_or_default();
    let mut conn = state.connection().await?;
    match queries::restore(
        &mut conn,
        guild.key(),
        reset_id,
        &reason,
        &actor(&caller, &author),
    )
    .await?
    {
        RestoreOutcome::Restored(row) => {
            state.counts_changed(guild.key());
            Ok(HttpResponse::Ok().json(Reset::from(row)))
        }
        RestoreOutcome::NotFound => Err(ApiError::NotFound {
            code: "reset_not_found",
            what: "reset",
        }),
        RestoreOutcome::AlreadyRestored(_) => Err(ApiError::Conflict {
            code: "already_restored",
            message: "this reset was already restored",
        }),
    }
}

/// One audited write.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// The API key that made the write, and its label.
    pub key_id: i64,
    pub key_label: String,
    /// The `author` the caller gave.
    pub author: String,
    /// `bonus.add`, `reset`, `reset.restore`, `settings.update`, `webhook.create` or
    /// `webhook.delete`.
    pub action: String,
    /// What changed (depends on `action`).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub created_at: String,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLog {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next_before: Option<i64>,
}

/// A guild's audit log, newest first (admin keys only).
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/audit",
    tag = "admin",
    params(
        GuildParams,
        AuditQuery,
    ),
    responses((status = 200, description = "audit entries", body = AuditLog), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn audit(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let params = Params::from_query(&req)?;
    let before = params.integer("before", 1, i64::MAX, i64::MAX)?;
    let limit = params.integer("limit", 1, 200, 50)?;
    let mut conn = state.connection().await?;
    let rows = queries::audit_entries(&mut conn, guild.key(), Some(before), limit).await?;
    let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == limit;
    let next_before = rows.last().filter(|_| full).map(|r| r.id);
    Ok(HttpResponse::Ok().json(AuditLog {
        entries: rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                key_id: r.key_id,
                key_label: r.key_label,
                author: r.author,
                action: r.action,
                details: r.details,
                created_at: timestamp(r.created_at),
            })
            .collect(),
        next_before,
    }))
}
