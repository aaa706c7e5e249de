//! The pieces of the OpenAPI document that the handlers' `#[utoipa::path]` annotations share:
//! the error responses (`CommonErrors`, `NotFoundError`, `ConflictError`), the `{"status"}`
//! body, and the structs that document path and query parameters. `openapi.rs` assembles the
//! document from the handlers; handlers and `openapi.rs` both take these from here.

use utoipa::{IntoResponses, ToSchema};

use crate::error::ErrorBody;

/// The errors every authenticated endpoint may answer.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum CommonErrors {
    /// A malformed or missing parameter or body field (`invalid_parameter`, `missing_parameter`,
    /// `invalid_query`, `invalid_body`); the message names it.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No key, or an unknown or revoked one (`unauthorized`).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The key belongs to another bot or guild (`forbidden`), or has the read scope on a write
    /// (`insufficient_scope`).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The key's rate limit is exhausted (`rate_limited`); see `Retry-After`.
    #[response(status = 429, headers(("Retry-After" = u64, description = "seconds to wait")))]
    RateLimited(ErrorBody),
    /// The database is unreachable (`unavailable`).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// 404 for an id that names nothing.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum NotFoundError {
    /// Nothing with this id (`member_not_found`, `reset_not_found`).
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// 409 for a write that conflicts with the current state.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ConflictError {
    /// Already done (`already_restored`).
    #[response(status = 409)]
    Conflict(ErrorBody),
}

/// `{"status": "ok"}`.
#[derive(ToSchema, serde::Serialize)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: String,
}

// The parameter structs below only document the parameters (the handlers parse them with
// `crate::params`, whose errors name the parameter); each is written once however many
// operations use it.

/// `{bot_id}` and `{guild_id}` of every guild path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct GuildParams {
    /// the bot's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "859000000000000001")]
    bot_id: String,
    /// the guild's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "417977361011572747")]
    guild_id: String,
}

/// A guild path with `{inviter_id}`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct InviterParams {
    /// the bot's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "859000000000000001")]
    bot_id: String,
    /// the guild's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "417977361011572747")]
    guild_id: String,
    /// the inviter's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "417977361011572748")]
    inviter_id: String,
}

/// A guild path with `{member_id}`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct MemberParams {
    /// the bot's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "859000000000000001")]
    bot_id: String,
    /// the guild's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "417977361011572747")]
    guild_id: String,
    /// the member's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "417977361011572749")]
    member_id: String,
}

/// A guild path with `{reset_id}`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ResetParams {
    /// the bot's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "859000000000000001")]
    bot_id: String,
    /// the guild's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "417977361011572747")]
    guild_id: String,
    /// the reset's id
    #[param(minimum = 1)]
    reset_id: i64,
}

/// A guild key's path parameters.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct KeyParams {
    /// the bot's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "859000000000000001")]
    bot_id: String,
    /// the guild's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "417977361011572747")]
    guild_id: String,
    /// the key's id
    #[param(minimum = 1)]
    key_id: i64,
}

/// A webhook's path parameters.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct WebhookParams {
    /// the bot's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "859000000000000001")]
    bot_id: String,
    /// the guild's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "417977361011572747")]
    guild_id: String,
    /// the webhook's id
    #[param(minimum = 1)]
    webhook_id: i64,
}

/// InviteLogger's `GET /v1/invites/user` parameters (or the same names in a JSON body).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct UserQuery {
    /// the bot's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "859000000000000001")]
    bot_id: String,
    /// the guild's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "417977361011572747")]
    guild_id: String,
    /// the inviter's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "417977361011572748")]
    inviter_id: String,
}

/// InviteLogger's `GET /v1/invites/code` parameters (or the same names in a JSON body).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CodeQuery {
    /// the bot's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "859000000000000001")]
    bot_id: String,
    /// the guild's Discord id
    #[param(pattern = "^[1-9][0-9]{0,18}$", example = "417977361011572747")]
    guild_id: String,
    /// the code, without discord.gg/
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$", example = "abcDEF12")]
    invite_code: String,
}

/// Leaderboard options.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LeaderboardQuery {
    /// `real` (default), `total`, `fake`, `leaves` or `bonus`
    #[param(pattern = "^(real|total|fake|leaves|bonus)$")]
    order: Option<String>,
    /// `all` (default), `7d` or `30d`
    #[param(pattern = "^(all|7d|30d)$")]
    range: Option<String>,
    /// 1-based page, default 1
    #[param(minimum = 1, maximum = 100_000)]
    page: Option<i64>,
    /// rows per page, 1 to 100, default 25
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<i64>,
}

/// Joins paging.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct JoinsQuery {
    /// only the joins credited to this inviter
    #[param(pattern = "^[1-9][0-9]{0,18}$")]
    inviter_id: Option<String>,
    /// joins older than this join id (`next_before` of the previous page)
    #[param(minimum = 1)]
    before: Option<i64>,
    /// rows per page, 1 to 200, default 50
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Export format.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ExportQuery {
    /// `csv` (default) or `json`
    #[param(pattern = "^(csv|json)$")]
    format: Option<String>,
}

/// Summary window.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SummaryQuery {
    /// window in days, today included: 1 to 90, default 30
    #[param(minimum = 1, maximum = 90)]
    days: Option<i64>,
}

/// Audit log paging.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AuditQuery {
    /// only entries with a smaller id (paging)
    #[param(minimum = 1)]
    before: Option<i64>,
    /// 1 to 200, default 50
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}
