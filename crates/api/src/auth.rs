//! Bearer API keys. A key belongs to one bot and optionally one guild (as InviteLogger binds its
//! tokens); requests outside that answer 403.

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use invitrack_storage::keys::{self, ApiKey};

use crate::AppState;
use crate::error::ApiError;

/// The key presented with the request: `Authorization: Bearer <token>` (a bare token is
/// accepted too, as InviteLogger clients send it).
///
/// # Errors
/// 401 when there is no key or it is unknown or revoked.
pub async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<ApiKey, ApiError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized)?
        .trim();
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .unwrap_or(header)
        .trim();
    if token.is_empty() || token.len() > 200 {
        return Err(ApiError::Unauthorized);
    }
    let mut conn = state.connection().await?;
    keys::find_key(&mut conn, token)
        .await?
        .ok_or(ApiError::Unauthorized)
}

/// 403 unless the key may read this bot's and guild's data.
///
/// # Errors
/// When the key belongs to another bot or guild.
pub fn authorize(key: &ApiKey, bot_id: u64, guild_id: u64) -> Result<(), ApiError> {
    if key.bot_id != bot_id {
        return Err(ApiError::Forbidden("another bot's data"));
    }
    if !key.allows(bot_id, guild_id) {
        return Err(ApiError::Forbidden("another guild's data"));
    }
    Ok(())
}
