//! What the API reads.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::StorageError;
use crate::schema::{inviter_counts, joins};
use invitrack_model::{FakeReasons, GuildKey, InviteCode, UserId};

/// An inviter's maintained counters (`docs/counting.md#inviter-counts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = inviter_counts)]
pub struct InviterCounts {
    pub joins: i64,
    pub fake: i64,
    pub leaves: i64,
    pub bonus: i64,
}

impl InviterCounts {
    #[must_use]
    pub fn total(&self) -> i64 {
        self.joins + self.bonus
    }

    #[must_use]
    pub fn real(&self) -> i64 {
        self.total() - self.fake - self.leaves
    }
}

/// One inviter's counters; zeros for an inviter nobody joined through.
///
/// # Errors
/// On database errors.
pub async fn inviter_counts(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    inviter_id: UserId,
) -> Result<InviterCounts, StorageError> {
    Ok(inviter_counts::table
        .find((guild.bot_id, guild.guild_id, inviter_id))
        .select(InviterCounts::as_select())
        .first(conn)
        .await
        .optional()?
        .unwrap_or_default())
}

/// A join as `GET /v1/invites/code` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = joins)]
pub struct CodeJoin {
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub member_id: UserId,
    pub fake: FakeReasons,
    pub has_left: bool,
    pub cleared: bool,
}

/// Every join credited to one code, oldest first.
///
/// # Errors
/// On database errors.
pub async fn joins_by_code(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    code: &InviteCode,
) -> Result<Vec<CodeJoin>, StorageError> {
    Ok(joins::table
        .filter(joins::bot_id.eq(guild.bot_id))
        .filter(joins::guild_id.eq(guild.guild_id))
        .filter(joins::invite_code.eq(code))
        .order((joins::created_at.asc(), joins::id.asc()))
        .select(CodeJoin::as_select())
        .load(conn)
        .await?)
}

/// Recomputes an inviter's counters from the join rows: the check that maintained counters
/// never drift.
///
/// # Errors
/// On database errors.
pub async fn recount_from_joins(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    inviter_id: UserId,
) -> Result<InviterCounts, StorageError> {
    let rows: Vec<(FakeReasons, bool)> = joins::table
        .filter(joins::bot_id.eq(guild.bot_id))
        .filter(joins::guild_id.eq(guild.guild_id))
        .filter(joins::inviter_id.eq(inviter_id))
        .filter(joins::cleared.eq(false))
        .select((joins::fake, joins::has_left))
        .load(conn)
        .await?;
    let mut counts = InviterCounts::default();
    for (fake, left) in rows {
        counts.joins += 1;
        if fake.is_fake() {
            counts.fake += 1;
        } else if left {
            counts.leaves += 1;
        }
    }
    Ok(counts)
}
