//! Members as the gateway showed them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::members;
use crate::{StorageError, db_id};

/// What a GUILD_MEMBER_ADD turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberJoin {
    /// The member is already present with this join time: Discord repeated the event.
    Repeated,
    /// A new membership; `joined_before` when the member was in the guild before.
    New { joined_before: bool },
}

/// The membership a decided join belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = members)]
pub struct Member {
    pub present: bool,
    pub joined_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
    pub has_avatar: bool,
    pub rejoined: bool,
}

/// Records a GUILD_MEMBER_ADD.
///
/// # Errors
/// On database errors.
pub async fn member_joined(
    conn: &mut AsyncPgConnection,
    bot_id: u64,
    guild_id: u64,
    member_id: u64,
    joined_at: DateTime<Utc>,
    has_avatar: bool,
    flagged_rejoin: bool,
) -> Result<MemberJoin, StorageError> {
    let key = (db_id(bot_id), db_id(guild_id), db_id(member_id));
    let existing: Option<(bool, DateTime<Utc>, i32)> = members::table
        .find(key)
        .select((members::present, members::joined_at, members::join_count))
        .for_update()
        .first(conn)
        .await
        .optional()?;
    match existing {
        Some((true, previous, _)) if previous == joined_at => Ok(MemberJoin::Repeated),
        Some((_, _, count)) => {
            diesel::update(members::table.find(key))
                .set((
                    members::present.eq(true),
                    members::joined_at.eq(joined_at),
                    members::left_at.eq(None::<DateTime<Utc>>),
                    members::has_avatar.eq(has_avatar),
                    members::rejoined.eq(true),
                    members::join_count.eq(count.saturating_add(1)),
                ))
                .execute(conn)
                .await?;
            Ok(MemberJoin::New {
                joined_before: true,
            })
        }
        None => {
            diesel::insert_into(members::table)
                .values((
                    members::bot_id.eq(key.0),
                    members::guild_id.eq(key.1),
                    members::member_id.eq(key.2),
                    members::present.eq(true),
                    members::joined_at.eq(joined_at),
                    members::has_avatar.eq(has_avatar),
                    members::rejoined.eq(flagged_rejoin),
                    members::join_count.eq(1),
                ))
                .execute(conn)
                .await?;
            Ok(MemberJoin::New {
                joined_before: flagged_rejoin,
            })
        }
    }
}

/// Records a GUILD_MEMBER_REMOVE. Returns the join time of the membership that ended, if the
/// member was known to be present.
///
/// # Errors
/// On database errors.
pub async fn member_left(
    conn: &mut AsyncPgConnection,
    bot_id: u64,
    guild_id: u64,
    member_id: u64,
    left_at: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StorageError> {
    let key = (db_id(bot_id), db_id(guild_id), db_id(member_id));
    let ended: Option<DateTime<Utc>> =
        diesel::update(members::table.find(key).filter(members::present.eq(true)))
            .set((
                members::present.eq(false),
                members::left_at.eq(Some(left_at)),
            ))
            .returning(members::joined_at)
            .get_result(conn)
            .await
            .optional()?;
    Ok(ended)
}

/// The member's current (or last) membership.
///
/// # Errors
/// On database errors.
pub async fn member(
    conn: &mut AsyncPgConnection,
    bot_id: u64,
    guild_id: u64,
    member_id: u64,
) -> Result<Option<Member>, StorageError> {
    Ok(members::table
        .find((db_id(bot_id), db_id(guild_id), db_id(member_id)))
        .select(Member::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A member row as the worker keeps it in memory while applying a batch.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = members)]
pub struct MemberRow {
    pub bot_id: i64,
    pub guild_id: i64,
    pub member_id: i64,
    pub present: bool,
    pub joined_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
    pub has_avatar: bool,
    pub rejoined: bool,
    pub join_count: i32,
}

/// `(bot_id, guild_id, member_id)` of a member.
pub type MemberKey = (u64, u64, u64);

/// The stored rows of many members at once (absent members are missing from the map).
///
/// # Errors
/// On database errors.
pub async fn load_members(
    conn: &mut AsyncPgConnection,
    keys: &[MemberKey],
) -> Result<std::collections::HashMap<MemberKey, MemberRow>, StorageError> {
    let mut found = std::collections::HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(crate::ARRAY_CHUNK) {
        let (bots, guilds, ids) = split_keys(chunk);
        // One index probe per key: the arrays are joined row by row, not as a cross product.
        let rows: Vec<MemberRow> = crate::prepared::prepared(
            "SELECT m.* FROM members m \
             JOIN unnest($1::int8[], $2::int8[], $3::int8[]) AS k(bot_id, guild_id, member_id) \
             ON m.bot_id = k.bot_id AND m.guild_id = k.guild_id AND m.member_id = k.member_id",
        )
        .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(bots)
        .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(guilds)
        .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(ids)
        .load(conn)
        .await?;
        for row in rows {
            let key = (
                crate::from_db_id(row.bot_id),
                crate::from_db_id(row.guild_id),
                crate::from_db_id(row.member_id),
            );
            found.insert(key, row);
        }
    }
    Ok(found)
}

/// Writes member rows, inserting new members and replacing the state of known ones. Each key
/// must appear at most once.
///
/// # Errors
/// On database errors.
pub async fn save_members(
    conn: &mut AsyncPgConnection,
    rows: &[MemberRow],
) -> Result<(), StorageError> {
    use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Timestamptz};
    // One array per column: 9 parameters to parse and plan instead of 9 per row.
    for chunk in rows.chunks(crate::ARRAY_CHUNK) {
        let (bots, guilds, ids) = (
            chunk.iter().map(|r| r.bot_id).collect::<Vec<_>>(),
            chunk.iter().map(|r| r.guild_id).collect::<Vec<_>>(),
            chunk.iter().map(|r| r.member_id).collect::<Vec<_>>(),
        );
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
        .bind::<Array<Bool>, _>(chunk.iter().map(|r| r.present).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(chunk.iter().map(|r| r.joined_at).collect::<Vec<_>>())
        .bind::<Array<Nullable<Timestamptz>>, _>(
            chunk.iter().map(|r| r.left_at).collect::<Vec<_>>(),
        )
        .bind::<Array<Bool>, _>(chunk.iter().map(|r| r.has_avatar).collect::<Vec<_>>())
        .bind::<Array<Bool>, _>(chunk.iter().map(|r| r.rejoined).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(chunk.iter().map(|r| r.join_count).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    }
    Ok(())
}

pub(crate) fn split_keys(keys: &[MemberKey]) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let mut bots = Vec::with_capacity(keys.len());
    let mut guilds = Vec::with_capacity(keys.len());
    let mut ids = Vec::with_capacity(keys.len());
    for &(bot, guild, member) in keys {
        bots.push(db_id(bot));
        guilds.push(db_id(guild));
        ids.push(db_id(member));
    }
    (bots, guilds, ids)
}
