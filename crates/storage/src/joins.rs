//! Decided joins and the per-inviter counters kept with them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::{inviter_counts, joins};
use crate::{StorageError, db_id};

/// How a join was explained (the `source` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinSource {
    Invite,
    Vanity,
    Ambiguous,
    Unknown,
}

impl JoinSource {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::Vanity => "vanity",
            Self::Ambiguous => "ambiguous",
            Self::Unknown => "unknown",
        }
    }
}

/// A decided join, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJoin {
    pub bot_id: u64,
    pub guild_id: u64,
    pub member_id: u64,
    pub joined_at: DateTime<Utc>,
    pub source: JoinSource,
    pub invite_code: Option<String>,
    pub inviter_id: Option<u64>,
    pub candidates: Vec<String>,
    pub unknown_reason: Option<&'static str>,
    pub fake: i32,
    /// Set when the member already left before the join was decided.
    pub left_at: Option<DateTime<Utc>>,
}

/// Stores a decided join and counts it for its inviter. Returns `false` when this join was
/// stored before (a replayed decision), in which case nothing is counted twice.
///
/// # Errors
/// On database errors.
pub async fn insert_join(
    conn: &mut AsyncPgConnection,
    join: &NewJoin,
) -> Result<bool, StorageError> {
    let updated_at = join.left_at.unwrap_or(join.joined_at);
    let inserted = diesel::insert_into(joins::table)
        .values((
            joins::bot_id.eq(db_id(join.bot_id)),
            joins::guild_id.eq(db_id(join.guild_id)),
            joins::member_id.eq(db_id(join.member_id)),
            joins::created_at.eq(join.joined_at),
            joins::updated_at.eq(updated_at),
            joins::source.eq(join.source.as_str()),
            joins::invite_code.eq(join.invite_code.as_deref()),
            joins::inviter_id.eq(join.inviter_id.map(db_id)),
            joins::candidates.eq(&join.candidates),
            joins::unknown_reason.eq(join.unknown_reason),
            joins::fake.eq(join.fake),
            joins::has_left.eq(join.left_at.is_some()),
            joins::left_at.eq(join.left_at),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?
        == 1;
    if inserted && let Some(inviter) = join.inviter_id {
        let fake = i64::from(join.fake != 0);
        let leaves = i64::from(join.fake == 0 && join.left_at.is_some());
        bump_counts(conn, join.bot_id, join.guild_id, inviter, 1, fake, leaves).await?;
    }
    Ok(inserted)
}

/// Marks the join of the membership that started at `joined_at` as left, and counts the leave
/// for its inviter when the join was real. Returns `false` when no such undecided-left join is
/// stored (the join is still pending in the engine, or was already marked).
///
/// # Errors
/// On database errors.
pub async fn mark_left(
    conn: &mut AsyncPgConnection,
    bot_id: u64,
    guild_id: u64,
    member_id: u64,
    joined_at: DateTime<Utc>,
    left_at: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let row: Option<(Option<i64>, i32, bool)> = diesel::update(
        joins::table
            .filter(joins::bot_id.eq(db_id(bot_id)))
            .filter(joins::guild_id.eq(db_id(guild_id)))
            .filter(joins::member_id.eq(db_id(member_id)))
            .filter(joins::created_at.eq(joined_at))
            .filter(joins::has_left.eq(false)),
    )
    .set((
        joins::has_left.eq(true),
        joins::left_at.eq(Some(left_at)),
        joins::updated_at.eq(left_at),
    ))
    .returning((joins::inviter_id, joins::fake, joins::cleared))
    .get_result(conn)
    .await
    .optional()?;
    let Some((inviter, fake, cleared)) = row else {
        return Ok(false);
    };
    if let (Some(inviter), 0, false) = (inviter, fake, cleared) {
        bump_counts(conn, bot_id, guild_id, crate::from_db_id(inviter), 0, 0, 1).await?;
    }
    Ok(true)
}

async fn bump_counts(
    conn: &mut AsyncPgConnection,
    bot_id: u64,
    guild_id: u64,
    inviter_id: u64,
    joins_delta: i64,
    fake_delta: i64,
    leaves_delta: i64,
) -> Result<(), StorageError> {
    use inviter_counts::dsl as c;
    diesel::insert_into(c::inviter_counts)
        .values((
            c::bot_id.eq(db_id(bot_id)),
            c::guild_id.eq(db_id(guild_id)),
            c::inviter_id.eq(db_id(inviter_id)),
            c::joins.eq(joins_delta),
            c::fake.eq(fake_delta),
            c::leaves.eq(leaves_delta),
        ))
        .on_conflict((c::bot_id, c::guild_id, c::inviter_id))
        .do_update()
        .set((
            c::joins.eq(c::joins + excluded(c::joins)),
            c::fake.eq(c::fake + excluded(c::fake)),
            c::leaves.eq(c::leaves + excluded(c::leaves)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether an earlier join of this member in this guild is on record.
///
/// # Errors
/// On database errors.
pub async fn joined_before(
    conn: &mut AsyncPgConnection,
    bot_id: u64,
    guild_id: u64,
    member_id: u64,
    before: DateTime<Utc>,
) -> Result<bool, StorageError> {
    use diesel::dsl::exists;
    Ok(diesel::select(exists(
        joins::table
            .filter(joins::bot_id.eq(db_id(bot_id)))
            .filter(joins::guild_id.eq(db_id(guild_id)))
            .filter(joins::member_id.eq(db_id(member_id)))
            .filter(joins::created_at.lt(before)),
    ))
    .get_result(conn)
    .await?)
}
