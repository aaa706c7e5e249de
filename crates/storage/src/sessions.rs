//! Dashboard sessions of people signed in with Discord: what the cookie opens, found by the
//! token's hash, until it expires or the user signs out.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use invitrack_model::{BotId, GuildId, UserId};
use rand::Rng as _;
use sha2::{Digest as _, Sha256};

use crate::StorageError;
use crate::schema::dashboard_sessions;

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub bot_id: BotId,
    pub user_id: UserId,
    pub username: String,
    /// Where they may act: Manage Server and the bot present, at login.
    pub guild_ids: Vec<GuildId>,
    /// Writes must carry it (`X-CSRF-Token`).
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// A random token for a cookie or a CSRF check: 32 bytes, hex.
#[must_use]
pub fn new_token() -> String {
    hex::encode(rand::rng().random::<[u8; 32]>())
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Opens a session; returns the cookie's token (stored only hashed).
///
/// # Errors
/// On database errors.
pub async fn create(
    conn: &mut AsyncPgConnection,
    session: &Session,
) -> Result<String, StorageError> {
    use dashboard_sessions::dsl as s;
    let token = new_token();
    let guilds: Vec<String> = session.guild_ids.iter().map(ToString::to_string).collect();
    // Expired sessions of anyone go at each login: the table stays small without a sweeper.
    diesel::delete(s::dashboard_sessions.filter(s::expires_at.lt(Utc::now())))
        .execute(conn)
        .await?;
    diesel::insert_into(s::dashboard_sessions)
        .values((
            s::token_hash.eq(hash(&token)),
            s::bot_id.eq(session.bot_id),
            s::user_id.eq(session.user_id),
            s::username.eq(&session.username),
            s::guild_ids.eq(serde_json::json!(guilds)),
            s::csrf_token.eq(&session.csrf_token),
            s::expires_at.eq(session.expires_at),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// The live session of `token`, if any.
///
/// # Errors
/// On database errors.
pub async fn find(
    conn: &mut AsyncPgConnection,
    token: &str,
) -> Result<Option<Session>, StorageError> {
    use dashboard_sessions::dsl as s;
    let row: Option<(
        BotId,
        UserId,
        String,
        serde_json::Value,
        String,
        DateTime<Utc>,
    )> = s::dashboard_sessions
        .find(hash(token))
        .filter(s::expires_at.gt(Utc::now()))
        .select((
            s::bot_id,
            s::user_id,
            s::username,
            s::guild_ids,
            s::csrf_token,
            s::expires_at,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(
        |(bot_id, user_id, username, guilds, csrf_token, expires_at)| {
            let guild_ids = guilds
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|g| g.as_str()?.parse::<u64>().ok())
                        .filter_map(GuildId::new_checked)
                        .collect()
                })
                .unwrap_or_default();
            Session {
                bot_id,
                user_id,
                username,
                guild_ids,
                csrf_token,
                expires_at,
            }
        },
    ))
}

/// Ends the session of `token`.
///
/// # Errors
/// On database errors.
pub async fn delete(conn: &mut AsyncPgConnection, token: &str) -> Result<(), StorageError> {
    use dashboard_sessions::dsl as s;
    diesel::delete(s::dashboard_sessions.find(hash(token)))
        .execute(conn)
        .await?;
    Ok(())
}
