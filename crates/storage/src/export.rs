//! Reading a guild's joins and inviters' counts page by page, in a stable order (keyset
//! pagination, never OFFSET): the dashboard's live feed, its inviter pages and the exports,
//! which stream a million joins without holding them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use invitrack_model::{BotId, GuildId, GuildKey, UserId};

use crate::StorageError;
use crate::counts::InviterCounts;
use crate::dashboard::MemberJoinRow;
use crate::schema::{guild_states, inviter_counts, join_evidence, joins};

/// A decided join with its id (the feed's and the export's cursor), member and decision time.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = joins)]
pub struct JoinRow {
    pub id: i64,
    pub member_id: UserId,
    pub decided_at: DateTime<Utc>,
    #[diesel(embed)]
    pub join: MemberJoinRow,
}

/// Which joins a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinCursor {
    /// Newest first, ids below this one (`None`: from the newest).
    NewestBefore(Option<i64>),
    /// Oldest first, ids above this one (an export's order).
    OldestAfter(i64),
}

/// Up to `limit` joins of `guild` (only those credited to `inviter` when given).
///
/// # Errors
/// On database errors.
pub async fn joins_page(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    inviter: Option<UserId>,
    cursor: JoinCursor,
    limit: i64,
) -> Result<Vec<JoinRow>, StorageError> {
    let mut query = joins::table
        .left_join(join_evidence::table)
        .filter(joins::bot_id.eq(guild.bot_id))
        .filter(joins::guild_id.eq(guild.guild_id))
        .select(JoinRow::as_select())
        .limit(limit)
        .into_boxed();
    if let Some(inviter) = inviter {
        query = query.filter(joins::inviter_id.eq(inviter));
    }
    query = match cursor {
        JoinCursor::NewestBefore(before) => {
            let query = query.order(joins::id.desc());
            match before {
                Some(before) => query.filter(joins::id.lt(before)),
                None => query,
            }
        }
        JoinCursor::OldestAfter(after) => query.order(joins::id.asc()).filter(joins::id.gt(after)),
    };
    Ok(query.load(conn).await?)
}

/// One inviter's counters, for an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable)]
pub struct InviterRow {
    pub inviter_id: UserId,
    pub counts: InviterCounts,
}

/// Up to `limit` inviters of `guild` with ids above `after`, in id order.
///
/// # Errors
/// On database errors.
pub async fn inviters_page(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    after: Option<UserId>,
    limit: i64,
) -> Result<Vec<InviterRow>, StorageError> {
    use inviter_counts::dsl as c;
    let mut query = c::inviter_counts
        .filter(c::bot_id.eq(guild.bot_id))
        .filter(c::guild_id.eq(guild.guild_id))
        .order(c::inviter_id.asc())
        .select((c::inviter_id, InviterCounts::as_select()))
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(c::inviter_id.gt(after));
    }
    Ok(query.load(conn).await?)
}

/// A guild the worker keeps a state for.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct TrackedGuild {
    pub guild_id: GuildId,
    pub pending_joins: i32,
    pub missing_permissions: bool,
    pub last_snapshot_at: Option<DateTime<Utc>>,
}

/// The guilds of `bot` the worker has seen, by id.
///
/// # Errors
/// On database errors.
pub async fn tracked_guilds(
    conn: &mut AsyncPgConnection,
    bot: BotId,
) -> Result<Vec<TrackedGuild>, StorageError> {
    use guild_states::dsl as g;
    Ok(g::guild_states
        .filter(g::bot_id.eq(bot))
        .order(g::guild_id.asc())
        .select((
            g::guild_id,
            g::pending_joins,
            g::missing_permissions,
            g::last_snapshot_at,
        ))
        .load(conn)
        .await?)
}
