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
