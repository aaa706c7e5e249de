//! A guild's own API keys, managed by its admins (from the dashboard): list, create (the token
//! is shown once), revoke. Bot-wide keys stay with `invitrack keys` on the server.

use actix_web::{HttpRequest, HttpResponse, web};
use invitrack_storage::keys::{self as queries, ApiKey, KeyScope};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::admin::{AUTHOR_MAX, actor};
use crate::auth::{Caller, GuildPath};
use crate::error::ApiError;
use crate::invites::timestamp;
use crate::openapi_parts::{CommonErrors, GuildParams, KeyParams, NotFoundError};
use crate::params::{Body, BodyBytes, path_id};

const LABEL_MAX: usize = 100;

/// A guild key, without its token.
#[derive(Debug, Serialize, ToSchema)]
pub struct GuildApiKey {
    pub id: i64,
    pub label: String,
    /// `read` or `admin`.
    pub scope: String,
    pub created_at: String,
}

impl From<ApiKey> for GuildApiKey {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id,
            label: key.label,
            scope: key.scope.as_str().to_owned(),
            created_at: timestamp(key.created_at),
        }
    }
}

/// A key just made: its token is in this answer only.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub token: String,
    #[serde(flatten)]
    pub key: GuildApiKey,
}

/// The guild's live keys, newest first.
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/keys",
    tag = "admin",
    params(GuildParams),
    responses((status = 200, description = "the keys", body = Vec<GuildApiKey>), CommonErrors),
    security(("bearer" = []))
)]
pub async fn list(
    caller: Caller,
    guild: GuildPath,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let mut conn = state.connection().await?;
    let keys: Vec<GuildApiKey> = queries::list_guild_keys(&mut conn, guild.key())
        .await?
        .into_iter()
        .map(GuildApiKey::from)
        .collect();
    Ok(HttpResponse::Ok().json(keys))
}

/// Makes a key of this guild: `{"label", "scope": "read"|"admin", "author"}`.
#[utoipa::path(
    post,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/keys",
    tag = "admin",
    params(GuildParams),
    request_body(content = Object, description = "`{\"label\", \"scope\", \"author\"}`"),
    responses((status = 201, description = "the key and its token", body = CreatedKey), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn create(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    BodyBytes(body): BodyBytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let body = Body::parse(&req, &body)?;
    let label = body.required_text("label", LABEL_MAX)?;
    let raw_scope = body.required_text("scope", 10)?;
    let scope = KeyScope::parse(&raw_scope).ok_or_else(|| ApiError::InvalidParameter {
        name: "scope",
        problem: format!("{raw_scope:?} is not read or admin"),
    })?;
    let author = body.required_text("author", AUTHOR_MAX)?;
    let mut conn = state.connection().await?;
    let (token, key) = queries::create_guild_key(
        &mut conn,
        guild.key(),
        scope,
        &label,
        &actor(&caller, &author),
    )
    .await?;
    tracing::info!(key_id = key.id, "guild key created");
    Ok(HttpResponse::Created().json(CreatedKey {
        token,
        key: key.into(),
    }))
}

/// Revokes one of the guild's keys (`?author=`); it stops working within
/// `API_KEY_CACHE_SECS`.
#[utoipa::path(
    delete,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/keys/{key_id}",
    tag = "admin",
    params(
        KeyParams,
        ("author" = String, Query, description = "who revokes it, for the audit log"),
    ),
    responses((status = 204, description = "revoked"), NotFoundError, CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn revoke(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let id = path_id(&req, "key_id")?;
    let author = Body::from_query(&req)?.required_text("author", AUTHOR_MAX)?;
    let mut conn = state.connection().await?;
    if queries::revoke_guild_key(&mut conn, guild.key(), id, &actor(&caller, &author)).await? {
        tracing::info!(key_id = id, "guild key revoked");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound {
            code: "key_not_found",
            what: "key",
        })
    }
}
