//! Decided joins and the per-inviter counters kept with them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::joins;
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
    let written = write_joins(conn, std::slice::from_ref(join), &[]).await?;
    Ok(written.inserted == 1)
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
    let leave = Leave {
        bot_id,
        guild_id,
        member_id,
        joined_at,
        left_at,
    };
    let written = write_joins(conn, &[], &[leave]).await?;
    Ok(written.left == 1)
}

/// The end of a membership whose join is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leave {
    pub bot_id: u64,
    pub guild_id: u64,
    pub member_id: u64,
    /// Start of the membership that ended: the join's `created_at`.
    pub joined_at: DateTime<Utc>,
    pub left_at: DateTime<Utc>,
}

/// What [`write_joins`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WrittenJoins {
    /// New join rows (replayed ones are not stored again).
    pub inserted: usize,
    /// Stored joins marked as left.
    pub left: usize,
}

/// Counter changes of one inviter, summed over a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct CountDelta {
    joins: i64,
    fake: i64,
    leaves: i64,
}

#[derive(diesel::QueryableByName)]
struct InsertedJoin {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    bot_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    guild_id: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    inviter_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    fake: i32,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    has_left: bool,
}

#[derive(diesel::QueryableByName)]
struct LeftJoin {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    bot_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    guild_id: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    inviter_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    fake: i32,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    cleared: bool,
}

/// Stores decided joins, marks stored joins as left, and moves each inviter's counters by the
/// sum of what changed: a few statements for a whole batch. Counting follows DOMAIN.md: a join
/// counts once, in `fake` when it has a fake reason, else in `leaves` once its member left.
/// Joins stored before (replays) and leaves of joins already marked change nothing.
///
/// Call it inside the transaction that commits the batch's progress. Each `(member,
/// joined_at)` may appear at most once in `leaves`.
///
/// # Errors
/// On database errors.
pub async fn write_joins(
    conn: &mut AsyncPgConnection,
    new_joins: &[NewJoin],
    leaves: &[Leave],
) -> Result<WrittenJoins, StorageError> {
    let mut deltas: BTreeMap<(i64, i64, i64), CountDelta> = BTreeMap::new();
    let mut written = WrittenJoins::default();
    for chunk in new_joins.chunks(crate::ARRAY_CHUNK) {
        let inserted = insert_joins(conn, chunk).await?;
        written.inserted += inserted.len();
        for row in inserted {
            if let Some(inviter) = row.inviter_id {
                let delta = deltas
                    .entry((row.bot_id, row.guild_id, inviter))
                    .or_default();
                delta.joins += 1;
                delta.fake += i64::from(row.fake != 0);
                delta.leaves += i64::from(row.fake == 0 && row.has_left);
            }
        }
    }
    for chunk in leaves.chunks(crate::ARRAY_CHUNK) {
        let mut bots = Vec::with_capacity(chunk.len());
        let mut guilds = Vec::with_capacity(chunk.len());
        let mut members = Vec::with_capacity(chunk.len());
        let mut joined = Vec::with_capacity(chunk.len());
        let mut left = Vec::with_capacity(chunk.len());
        for leave in chunk {
            bots.push(db_id(leave.bot_id));
            guilds.push(db_id(leave.guild_id));
            members.push(db_id(leave.member_id));
            joined.push(leave.joined_at);
            left.push(leave.left_at);
        }
        use diesel::sql_types::{Array, BigInt, Timestamptz};
        let marked: Vec<LeftJoin> = crate::prepared::prepared(
            "UPDATE joins AS j SET has_left = TRUE, left_at = l.left_at, updated_at = l.left_at \
             FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::timestamptz[], $5::timestamptz[]) \
               AS l(bot_id, guild_id, member_id, joined_at, left_at) \
             WHERE j.bot_id = l.bot_id AND j.guild_id = l.guild_id AND j.member_id = l.member_id \
               AND j.created_at = l.joined_at AND NOT j.has_left \
             RETURNING j.bot_id, j.guild_id, j.inviter_id, j.fake, j.cleared",
        )
        .bind::<Array<BigInt>, _>(bots)
        .bind::<Array<BigInt>, _>(guilds)
        .bind::<Array<BigInt>, _>(members)
        .bind::<Array<Timestamptz>, _>(joined)
        .bind::<Array<Timestamptz>, _>(left)
        .load(conn)
        .await?;
        written.left += marked.len();
        for row in marked {
            if let (Some(inviter), 0, false) = (row.inviter_id, row.fake, row.cleared) {
                deltas
                    .entry((row.bot_id, row.guild_id, inviter))
                    .or_default()
                    .leaves += 1;
            }
        }
    }
    bump_counts(conn, &deltas).await?;
    Ok(written)
}

/// Inserts joins with one statement of constant text (one array per column): PostgreSQL parses
/// and plans 11 array parameters instead of 13 per row. Returns the rows inserted (a join
/// already stored is skipped).
async fn insert_joins(
    conn: &mut AsyncPgConnection,
    new_joins: &[NewJoin],
) -> Result<Vec<InsertedJoin>, StorageError> {
    use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};
    let n = new_joins.len();
    let (mut bots, mut guilds, mut members) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut joined, mut sources, mut codes, mut inviters) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut candidates, mut reasons, mut fakes, mut left) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for join in new_joins {
        bots.push(db_id(join.bot_id));
        guilds.push(db_id(join.guild_id));
        members.push(db_id(join.member_id));
        joined.push(join.joined_at);
        sources.push(join.source.as_str());
        codes.push(join.invite_code.as_deref());
        inviters.push(join.inviter_id.map(db_id));
        candidates.push(text_array_literal(&join.candidates));
        reasons.push(join.unknown_reason);
        fakes.push(join.fake);
        left.push(join.left_at);
    }
    Ok(crate::prepared::prepared(
        "INSERT INTO joins (bot_id, guild_id, member_id, created_at, updated_at, source, \
           invite_code, inviter_id, candidates, unknown_reason, fake, has_left, left_at) \
         SELECT j.bot_id, j.guild_id, j.member_id, j.created_at, \
           coalesce(j.left_at, j.created_at), j.source, j.invite_code, j.inviter_id, \
           j.candidates::text[], j.unknown_reason, j.fake, j.left_at IS NOT NULL, j.left_at \
         FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::timestamptz[], $5::text[], \
           $6::text[], $7::int8[], $8::text[], $9::text[], $10::int4[], $11::timestamptz[]) \
           AS j(bot_id, guild_id, member_id, created_at, source, invite_code, inviter_id, \
             candidates, unknown_reason, fake, left_at) \
         ON CONFLICT DO NOTHING \
         RETURNING bot_id, guild_id, inviter_id, fake, has_left",
    )
    .bind::<Array<BigInt>, _>(bots)
    .bind::<Array<BigInt>, _>(guilds)
    .bind::<Array<BigInt>, _>(members)
    .bind::<Array<Timestamptz>, _>(joined)
    .bind::<Array<Text>, _>(sources)
    .bind::<Array<Nullable<Text>>, _>(codes)
    .bind::<Array<Nullable<BigInt>>, _>(inviters)
    .bind::<Array<Text>, _>(candidates)
    .bind::<Array<Nullable<Text>>, _>(reasons)
    .bind::<Array<Integer>, _>(fakes)
    .bind::<Array<Nullable<Timestamptz>>, _>(left)
    .load(conn)
    .await?)
}

/// A `text[]` literal (`{"a","b"}`): ragged arrays cannot be one array parameter, so each
/// row's candidates travel as text and are cast back.
fn text_array_literal(items: &[String]) -> String {
    let mut literal = String::from("{");
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            literal.push(',');
        }
        literal.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                literal.push('\\');
            }
            literal.push(c);
        }
        literal.push('"');
    }
    literal.push('}');
    literal
}

/// Adds summed deltas to inviter counters, one statement per chunk. The keys are sorted (a
/// `BTreeMap`), so concurrent transactions lock counter rows in the same order.
async fn bump_counts(
    conn: &mut AsyncPgConnection,
    deltas: &BTreeMap<(i64, i64, i64), CountDelta>,
) -> Result<(), StorageError> {
    use diesel::sql_types::{Array, BigInt};
    let changed: Vec<(&(i64, i64, i64), &CountDelta)> = deltas
        .iter()
        .filter(|(_, d)| **d != CountDelta::default())
        .collect();
    // Keys in order (the map is sorted): concurrent batches lock counter rows in one order.
    for chunk in changed.chunks(crate::ARRAY_CHUNK) {
        let mut columns: [Vec<i64>; 6] = Default::default();
        for &(&(bot, guild, inviter), d) in chunk {
            for (column, value) in columns
                .iter_mut()
                .zip([bot, guild, inviter, d.joins, d.fake, d.leaves])
            {
                column.push(value);
            }
        }
        let [bots, guilds, inviters, joins, fake, leaves] = columns;
        crate::prepared::prepared(
            "INSERT INTO inviter_counts (bot_id, guild_id, inviter_id, joins, fake, leaves) \
             SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], \
               $6::int8[]) \
             ON CONFLICT (bot_id, guild_id, inviter_id) DO UPDATE SET \
               joins = inviter_counts.joins + excluded.joins, \
               fake = inviter_counts.fake + excluded.fake, \
               leaves = inviter_counts.leaves + excluded.leaves",
        )
        .bind::<Array<BigInt>, _>(bots)
        .bind::<Array<BigInt>, _>(guilds)
        .bind::<Array<BigInt>, _>(inviters)
        .bind::<Array<BigInt>, _>(joins)
        .bind::<Array<BigInt>, _>(fake)
        .bind::<Array<BigInt>, _>(leaves)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// The earliest stored join of each of these members (members with none are missing).
///
/// # Errors
/// On database errors.
pub async fn first_joins(
    conn: &mut AsyncPgConnection,
    keys: &[crate::members::MemberKey],
) -> Result<HashMap<crate::members::MemberKey, DateTime<Utc>>, StorageError> {
    #[derive(diesel::QueryableByName)]
    struct First {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        bot_id: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        guild_id: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        member_id: i64,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        first: DateTime<Utc>,
    }
    use diesel::sql_types::{Array, BigInt};
    let mut found = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(crate::ARRAY_CHUNK) {
        let (bots, guilds, ids) = crate::members::split_keys(chunk);
        let rows: Vec<First> = crate::prepared::prepared(
            "SELECT j.bot_id, j.guild_id, j.member_id, min(j.created_at) AS first FROM joins j \
             JOIN unnest($1::int8[], $2::int8[], $3::int8[]) AS k(bot_id, guild_id, member_id) \
             ON j.bot_id = k.bot_id AND j.guild_id = k.guild_id AND j.member_id = k.member_id \
             GROUP BY j.bot_id, j.guild_id, j.member_id",
        )
        .bind::<Array<BigInt>, _>(bots)
        .bind::<Array<BigInt>, _>(guilds)
        .bind::<Array<BigInt>, _>(ids)
        .load(conn)
        .await?;
        for row in rows {
            found.insert(
                (
                    crate::from_db_id(row.bot_id),
                    crate::from_db_id(row.guild_id),
                    crate::from_db_id(row.member_id),
                ),
                row.first,
            );
        }
    }
    Ok(found)
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

#[cfg(test)]
mod tests {
    use super::text_array_literal;

    #[test]
    fn candidates_literal_quotes_every_element() {
        assert_eq!(text_array_literal(&[]), "{}");
        let items = ["ab", "a\"b", "c\\d", "x,y", "{z}"].map(String::from);
        assert_eq!(
            text_array_literal(&items),
            r#"{"ab","a\"b","c\\d","x,y","{z}"}"#
        );
    }
}
