//! API keys: bearer tokens bound to a bot and optionally one guild. Only a SHA-256 of each token
//! is stored, so a leaked database does not leak working keys.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::StorageError;
use crate::admin::{Actor, audit};
use crate::schema::api_keys;
use invitrack_model::{BotId, GuildId, GuildKey};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    Read,
    Admin,
}

impl KeyScope {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// A stored key, without its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub bot_id: BotId,
    pub guild_id: Option<GuildId>,
    pub scope: KeyScope,
    pub label: String,
    pub created_at: DateTime<Utc>,
}

impl ApiKey {
    /// Whether this key may read data of this bot and guild.
    #[must_use]
    pub fn allows(&self, bot_id: BotId, guild_id: GuildId) -> bool {
        self.bot_id == bot_id && self.guild_id.is_none_or(|g| g == guild_id)
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = api_keys)]
struct KeyRow {
    id: i64,
    bot_id: BotId,
    guild_id: Option<GuildId>,
    scope: String,
    label: String,
    created_at: DateTime<Utc>,
}

impl From<KeyRow> for ApiKey {
    fn from(row: KeyRow) -> Self {
        Self {
            id: row.id,
            bot_id: row.bot_id,
            guild_id: row.guild_id,
            // The column has a CHECK constraint; anything else is treated as the lesser scope.
            scope: KeyScope::parse(&row.scope).unwrap_or(KeyScope::Read),
            label: row.label,
            created_at: row.created_at,
        }
    }
}

/// Tokens are `itk_` and the hex of 32 random bytes.
const TOKEN_PREFIX: &str = "itk_";
const SECRET_BYTES: usize = 32;

/// Whether `token` has the shape of the tokens [`create_key`] makes (`itk_` and 64 lowercase
/// hex digits). Anything else cannot be a key: callers answer it without a database lookup, so
/// random tokens cost nothing.
#[must_use]
pub fn is_well_formed(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|secret| {
        secret.len() == 2 * SECRET_BYTES
            && secret
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a key and returns its token, which is shown once and never stored.
///
/// # Errors
/// On database errors.
pub async fn create_key(
    conn: &mut AsyncPgConnection,
    bot_id: BotId,
    guild_id: Option<GuildId>,
    scope: KeyScope,
    label: &str,
) -> Result<(String, ApiKey), StorageError> {
    let mut secret = [0_u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut secret);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
    let row: KeyRow = diesel::insert_into(api_keys::table)
        .values((
            api_keys::token_hash.eq(hash_token(&token)),
            api_keys::bot_id.eq(bot_id),
            api_keys::guild_id.eq(guild_id),
            api_keys::scope.eq(scope.as_str()),
            api_keys::label.eq(label),
        ))
        .returning(KeyRow::as_returning())
        .get_result(conn)
        .await?;
    Ok((token, row.into()))
}

/// The live key a token belongs to, if any.
///
/// # Errors
/// On database errors.
pub async fn find_key(
    conn: &mut AsyncPgConnection,
    token: &str,
) -> Result<Option<ApiKey>, StorageError> {
    let row: Option<KeyRow> = api_keys::table
        .filter(api_keys::token_hash.eq(hash_token(token)))
        .filter(api_keys::revoked_at.is_null())
        .select(KeyRow::as_select())
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(Into::into))
}

/// Every key that is not revoked, newest first.
///
/// # Errors
/// On database errors.
pub async fn list_keys(conn: &mut AsyncPgConnection) -> Result<Vec<ApiKey>, StorageError> {
    let rows: Vec<KeyRow> = api_keys::table
        .filter(api_keys::revoked_at.is_null())
        .order(api_keys::id.desc())
        .select(KeyRow::as_select())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Revokes a key. Returns `false` when no live key has this id.
///
/// # Errors
/// On database errors.
pub async fn revoke_key(conn: &mut AsyncPgConnection, id: i64) -> Result<bool, StorageError> {
    let n = diesel::update(
        api_keys::table
            .find(id)
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(Some(Utc::now())))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// The live keys of one guild (not the bot-wide ones), newest first.
///
/// # Errors
/// On database errors.
pub async fn list_guild_keys(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
) -> Result<Vec<ApiKey>, StorageError> {
    let rows: Vec<KeyRow> = api_keys::table
        .filter(api_keys::bot_id.eq(guild.bot_id))
        .filter(api_keys::guild_id.eq(guild.guild_id))
        .filter(api_keys::revoked_at.is_null())
        .order(api_keys::id.desc())
        .select(KeyRow::as_select())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Creates a key of one guild, audited; returns its token (shown once) and the key.
///
/// # Errors
/// On database errors.
pub async fn create_guild_key(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    scope: KeyScope,
    label: &str,
    actor: &Actor<'_>,
) -> Result<(String, ApiKey), StorageError> {
    conn.transaction::<_, StorageError, _>(async |c| {
        let (token, key) = create_key(c, guild.bot_id, Some(guild.guild_id), scope, label).await?;
        audit(
            c,
            guild,
            actor,
            "key.create",
            json!({"key_id": key.id, "label": label, "scope": scope.as_str()}),
        )
        .await?;
        Ok((token, key))
    })
    .await
}

/// Revokes a live key of one guild, audited. Returns `false` when the guild has no such key.
///
/// # Errors
/// On database errors.
pub async fn revoke_guild_key(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    id: i64,
    actor: &Actor<'_>,
) -> Result<bool, StorageError> {
    conn.transaction::<_, StorageError, _>(async |c| {
        let n = diesel::update(
            api_keys::table
                .find(id)
                .filter(api_keys::bot_id.eq(guild.bot_id))
                .filter(api_keys::guild_id.eq(guild.guild_id))
                .filter(api_keys::revoked_at.is_null()),
        )
        .set(api_keys::revoked_at.eq(Some(Utc::now())))
        .execute(c)
        .await?;
        if n == 1 {
            audit(c, guild, actor, "key.revoke", json!({"key_id": id})).await?;
        }
        Ok(n == 1)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::is_well_formed;

    #[test]
    fn only_tokens_shaped_like_ours_are_looked_up() {
        let ours = format!("itk_{}", "0123456789abcdef".repeat(4));
        assert!(is_well_formed(&ours));
        for other in [
            String::new(),
            "itk_".into(),
            ours.to_uppercase(),
            ours.replace("itk_", "key_"),
            format!("{ours}0"),
            ours[..ours.len() - 1].to_owned(),
            ours.replace('f', "g"),
            "random-garbage-token".into(),
        ] {
            assert!(!is_well_formed(&other), "{other}");
        }
    }
}
