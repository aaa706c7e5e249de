//! Reads of many guilds' or members' rows at once: the keys travel as column arrays joined
//! with `unnest` (one index probe per key), `ARRAY_CHUNK` keys per statement.

use diesel::QueryableByName;
use diesel::pg::Pg;
use diesel::sql_types::{Array, BigInt};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use invitrack_model::{BotId, GuildId, GuildKey, MemberKey, UserId};

use crate::StorageError;

/// Rows of `sql`, whose `$1` and `$2` are the guilds' bot ids and guild ids (`int8[]`).
pub(crate) async fn rows_for_guilds<R>(
    conn: &mut AsyncPgConnection,
    sql: &'static str,
    keys: &[GuildKey],
) -> Result<Vec<R>, StorageError>
where
    R: QueryableByName<Pg> + Send + 'static,
{
    let mut rows = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(crate::ARRAY_CHUNK) {
        let (bots, guilds) = split_guild_keys(chunk);
        let found: Vec<R> = crate::prepared::prepared(sql)
            .bind::<Array<BigInt>, _>(bots)
            .bind::<Array<BigInt>, _>(guilds)
            .load(conn)
            .await?;
        rows.extend(found);
    }
    Ok(rows)
}

/// Rows of `sql`, whose `$1`, `$2` and `$3` are the members' bot, guild and member ids.
pub(crate) async fn rows_for_members<R>(
    conn: &mut AsyncPgConnection,
    sql: &'static str,
    keys: &[MemberKey],
) -> Result<Vec<R>, StorageError>
where
    R: QueryableByName<Pg> + Send + 'static,
{
    let mut rows = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(crate::ARRAY_CHUNK) {
        let (bots, guilds, ids) = split_member_keys(chunk);
        let found: Vec<R> = crate::prepared::prepared(sql)
            .bind::<Array<BigInt>, _>(bots)
            .bind::<Array<BigInt>, _>(guilds)
            .bind::<Array<BigInt>, _>(ids)
            .load(conn)
            .await?;
        rows.extend(found);
    }
    Ok(rows)
}

pub(crate) fn split_guild_keys(keys: &[GuildKey]) -> (Vec<BotId>, Vec<GuildId>) {
    keys.iter().map(|k| (k.bot_id, k.guild_id)).unzip()
}

/// Member keys as three column arrays, for `unnest`.
pub(crate) fn split_member_keys(keys: &[MemberKey]) -> (Vec<BotId>, Vec<GuildId>, Vec<UserId>) {
    let mut bots = Vec::with_capacity(keys.len());
    let mut guilds = Vec::with_capacity(keys.len());
    let mut ids = Vec::with_capacity(keys.len());
    for key in keys {
        bots.push(key.bot_id);
        guilds.push(key.guild_id);
        ids.push(key.member_id);
    }
    (bots, guilds, ids)
}
