//! What a key opens, for a dashboard to start from: the key itself (`GET /v1/me`), the bot's
//! guilds (`GET /v1/bots/{bot_id}/guilds`), and a guild's decided joins, newest first (`GET
//! .../joins`: the live feed, and the members an inviter brought).

use actix_web::{HttpRequest, HttpResponse, web};
use invitrack_model::{BotId, UserId};
use invitrack_storage::export::{self as pages, JoinCursor, JoinRow};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, GuildPath};
use crate::dashboard::MemberJoin;
use crate::error::ApiError;
use crate::invites::timestamp;
use crate::openapi_parts::{CommonErrors, GuildParams, JoinsQuery};
use crate::params::{Params, path_snowflake};

/// The key a request carries, or the Discord user signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `key` (an API key) or `session` (signed in with Discord).
    pub kind: String,
    pub key_id: i64,
    pub label: String,
    pub bot_id: String,
    /// The one guild the key may read, `null` when it may read every guild of the bot.
    pub guild_id: Option<String>,
    /// `read` or `admin`.
    pub scope: String,
    /// For a session: the Discord user.
    pub user_id: Option<String>,
    pub username: Option<String>,
    /// For a session: the guilds it opens (Manage Server and the bot present, at login).
    pub guild_ids: Option<Vec<String>>,
    /// For a session: what writes send in `X-CSRF-Token`.
    pub csrf_token: Option<String>,
}

/// The API key this request carries: which bot and guilds it opens, with which scope.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "dashboard",
    responses((status = 200, description = "the key", body = Me), CommonErrors),
    security(("bearer" = []))
)]
pub async fn me(caller: Caller) -> HttpResponse {
    let key = &caller.0;
    let session = caller.1.as_ref();
    HttpResponse::Ok().json(Me {
        kind: if session.is_some() { "session" } else { "key" }.to_owned(),
        user_id: session.map(|s| s.user_id.to_string()),
        username: session.map(|s| s.username.clone()),
        guild_ids: session.map(|s| s.guild_ids.iter().map(ToString::to_string).collect()),
        csrf_token: session.map(|s| s.csrf_token.clone()),
        key_id: key.id,
        label: key.label.clone(),
        bot_id: key.bot_id.to_string(),
        guild_id: key.guild_id.map(|g| g.to_string()),
        scope: key.scope.as_str().to_owned(),
    })
}

/// A guild invitrack tracks.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackedGuild {
    pub guild_id: String,
    /// Joins waiting for evidence.
    pub pending_joins: i32,
    /// The bot cannot list the guild's invites (it needs Manage Server).
    pub missing_permissions: bool,
    pub last_snapshot_at: Option<String>,
}

/// The guilds of a bot the worker tracks; a key of one guild may not list the others, a
/// Discord session lists its own.
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds",
    tag = "dashboard",
    params(("bot_id" = String, Path, description = "the bot's Discord id")),
    responses((status = 200, description = "the guilds, by id", body = Vec<TrackedGuild>), CommonErrors),
    security(("bearer" = []))
)]
pub async fn guilds(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let bot: BotId = path_snowflake(&req, "bot_id")?;
    if caller.0.bot_id != bot || caller.0.guild_id.is_some() {
        return Err(ApiError::Forbidden("this bot's guilds"));
    }
    let mut conn = state.connection().await?;
    let guilds: Vec<TrackedGuild> = pages::tracked_guilds(&mut conn, bot)
        .await?
        .into_iter()
        .filter(|g| {
            caller
                .1
                .as_ref()
                .is_none_or(|s| s.guild_ids.contains(&g.guild_id))
        })
        .map(|g| TrackedGuild {
            guild_id: g.guild_id.to_string(),
            pending_joins: g.pending_joins,
            missing_permissions: g.missing_permissions,
            last_snapshot_at: g.last_snapshot_at.map(timestamp),
        })
        .collect();
    Ok(HttpResponse::Ok().json(guilds))
}

/// One decided join of a guild.
#[derive(Debug, Serialize, ToSchema)]
pub struct JoinEntry {
    /// The join's id: pass the last one as `before` for the next page.
    pub id: i64,
    pub member_id: String,
    /// When invitrack decided it.
    pub decided_at: String,
    #[serde(flatten)]
    pub join: MemberJoin,
}

impl From<JoinRow> for JoinEntry {
    fn from(row: JoinRow) -> Self {
        Self {
            id: row.id,
            member_id: row.member_id.to_string(),
            decided_at: timestamp(row.decided_at),
            join: row.join.into(),
        }
    }
}

/// A page of joins, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JoinPage {
    pub joins: Vec<JoinEntry>,
    /// `before` for the next (older) page; `null` at the end.
    pub next_before: Option<i64>,
}

/// A guild's decided joins, newest first: every join, or those credited to `inviter_id`.
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/joins",
    tag = "dashboard",
    params(GuildParams, JoinsQuery),
    responses((status = 200, description = "one page", body = JoinPage), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn joins(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.read(&guild)?;
    let params = Params::from_query(&req)?;
    let limit = params.integer("limit", 1, 200, 50)?;
    let before = params.optional_integer("before", 1, i64::MAX)?;
    let inviter: Option<UserId> = params.optional_snowflake("inviter_id")?;
    let mut conn = state.connection().await?;
    let rows = pages::joins_page(
        &mut conn,
        guild.key(),
        inviter,
        JoinCursor::NewestBefore(before),
        limit,
    )
    .await?;
    let next_before = (i64::try_from(rows.len()).unwrap_or(0) == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(HttpResponse::Ok().json(JoinPage {
        joins: rows.into_iter().map(JoinEntry::from).collect(),
        next_before,
    }))
}
