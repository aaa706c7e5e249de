//! Members as the gateway showed them: one [`Membership`] per member, kept by the worker with
//! the rules of `invitrack_model::membership`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use invitrack_model::membership::Membership;
use invitrack_model::{BotId, GuildId, GuildKey, MemberKey, UserId};

use crate::StorageError;

#[derive(diesel::QueryableByName)]
#[diesel(table_name = crate::schema::members)]
struct MemberRow {
    bot_id: BotId,
    guild_id: GuildId,
    member_id: UserId,
    present: bool,
    joined_at: DateTime<Utc>,
    left_at: Option<DateTime<Utc>>,
    has_avatar: bool,
    rejoined: bool,
    join_count: i32,
}

/// The stored records of many members at once (members never seen are missing from the map).
///
/// # Errors
/// On database errors.
pub async fn load_members(
    conn: &mut AsyncPgConnection,
    keys: &[MemberKey],
) -> Result<HashMap<MemberKey, Membership>, StorageError> {
    let rows: Vec<MemberRow> = crate::keyed::rows_for_members(
        conn,
        "SELECT m.* FROM members m \
         JOIN unnest($1::int8[], $2::int8[], $3::int8[]) AS k(bot_id, guild_id, member_id) \
         ON m.bot_id = k.bot_id AND m.guild_id = k.guild_id AND m.member_id = k.member_id",
        keys,
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let record = Membership {
                present: row.present,
                joined_at: row.joined_at,
                left_at: row.left_at,
                has_avatar: row.has_avatar,
                rejoined: row.rejoined,
                join_count: row.join_count,
            };
            (
                GuildKey::new(row.bot_id, row.guild_id).member(row.member_id),
                record,
            )
        })
        .collect())
}

/// Writes member records, inserting new members and replacing the records of known ones. Each
/// key must appear at most once.
///
/// # Errors
/// On database errors.
pub async fn save_members(
    conn: &mut AsyncPgConnection,
    members: &[(MemberKey, Membership)],
) -> Result<(), StorageError> {
    // One array per column: 9 parameters to parse and plan instead of 9 per row.
    for chunk in members.chunks(crate::ARRAY_CHUNK) {
        let keys: Vec<MemberKey> = chunk.iter().map(|(k, _)| *k).collect();
        let (bots, guilds, ids) = crate::keyed::split_member_keys(&keys);
        let column =
            |f: fn(&Membership) -> bool| chunk.iter().map(|(_, m)| f(m)).collect::<Vec<_>>();
        crate::prepared::prepared(
            "INSERT INTO members (bot_id, guild_id, member_id, present, joined_at, left_at, \
               has_avatar, rejoined, join_count) \
             SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::bool[], \
               $5::timestamptz[], $6::timestamptz[], $7::bool[], $8::bool[], $9::int4[]) \
             ON CONFLICT (bot_id, guild_id, member_id) DO UPDATE SET \
               present = excluded.present, joined_at = excluded.joined_at, \
               left_at = excluded.left_at, has_avatar = excluded.has_avatar, \
               rejoined = excluded.rejoined, join_count = excluded.join_count",
        )
        .bind::<Array<BigInt>, _>(bots)
        .bind::<Array<BigInt>, _>(guilds)
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<Bool>, _>(column(|m| m.present))
        .bind::<Array<Timestamptz>, _>(chunk.iter().map(|(_, m)| m.joined_at).collect::<Vec<_>>())
        .bind::<Array<Nullable<Timestamptz>>, _>(
            chunk.iter().map(|(_, m)| m.left_at).collect::<Vec<_>>(),
        )
        .bind::<Array<Bool>, _>(column(|m| m.has_avatar))
        .bind::<Array<Bool>, _>(column(|m| m.rejoined))
        .bind::<Array<Integer>, _>(chunk.iter().map(|(_, m)| m.join_count).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    }
    Ok(())
}
