//! Decided joins and the per-inviter counters kept with them.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use invitrack_model::{
    BotId, FakeReasons, GuildId, GuildKey, InviteCode, JoinSource, MemberKey, UnknownReason, UserId,
};

use crate::StorageError;

/// A decided join, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJoin {
    pub member: MemberKey,
    pub joined_at: DateTime<Utc>,
    pub source: JoinSource,
    pub invite_code: Option<InviteCode>,
    pub inviter_id: Option<UserId>,
    pub candidates: Vec<InviteCode>,
    pub unknown_reason: Option<UnknownReason>,
    pub fake: FakeReasons,
    /// Set when the member already left before the join was decided.
    pub left_at: Option<DateTime<Utc>>,
}

/// The end of a membership whose join is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leave {
    pub member: MemberKey,
    /// Start of the membership that ended: the join's `created_at`.
    pub joined_at: DateTime<Utc>,
    pub left_at: DateTime<Utc>,
}

/// What [`write_joins`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WrittenJoins {
    /// New join rows, by member and join time (replayed ones are not stored again).
    pub inserted: HashSet<(MemberKey, DateTime<Utc>)>,
    /// Joins stored before this call and now marked as left, by member and join time.
    pub left: HashMap<(MemberKey, DateTime<Utc>), LeftJoin>,
    /// The counters of every inviter they moved, as they are now.
    pub counts: HashMap<InviterKey, InviterTotals>,
}

/// A stored join marked as left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeftJoin {
    pub inviter_id: Option<UserId>,
    /// The leave moved the inviter's `leaves` (a real join not taken out by a reset).
    pub counted: bool,
}

/// An inviter's counters in a guild (`docs/counting.md#inviter-counts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, diesel::QueryableByName)]
pub struct InviterTotals {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub joins: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub fake: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub leaves: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub bonus: i64,
}

/// Counter changes of one inviter, summed over a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CountDelta {
    joins: i64,
    fake: i64,
    leaves: i64,
}

impl CountDelta {
    /// What one join row adds to its inviter's counters (`docs/counting.md#inviter-counts`),
    /// times `sign`.
    pub(crate) fn of_row(fake: FakeReasons, has_left: bool, sign: i64) -> Self {
        Self {
            joins: sign,
            fake: sign * i64::from(fake.is_fake()),
            leaves: sign * i64::from(!fake.is_fake() && has_left),
        }
    }

    pub(crate) fn add(&mut self, other: Self) {
        self.joins += other.joins;
        self.fake += other.fake;
        self.leaves += other.leaves;
    }
}

/// Counters are kept per inviter of a guild.
pub type InviterKey = (GuildKey, UserId);

/// What an inserted or newly left join row tells its inviter's counters.
#[derive(diesel::QueryableByName)]
struct CountedJoin {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    bot_id: BotId,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    guild_id: GuildId,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    member_id: UserId,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    inviter_id: Option<UserId>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    fake: FakeReasons,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    has_left: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    cleared: bool,
}

/// Stores decided joins, marks stored joins as left, and moves each inviter's counters by the
/// sum of what changed: a few statements for a whole batch. Counting follows
/// `docs/counting.md#inviter-counts`: a join
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
    let mut deltas: BTreeMap<InviterKey, CountDelta> = BTreeMap::new();
    let mut written = WrittenJoins::default();
    for chunk in new_joins.chunks(crate::ARRAY_CHUNK) {
        let inserted = insert_joins(conn, chunk).await?;
        for row in inserted {
            let guild = GuildKey::new(row.bot_id, row.guild_id);
            written
                .inserted
                .insert((guild.member(row.member_id), row.created_at));
            if let Some(inviter) = row.inviter_id {
                deltas
                    .entry((GuildKey::new(row.bot_id, row.guild_id), inviter))
                    .or_default()
                    .add(CountDelta::of_row(row.fake, row.has_left, 1));
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
            bots.push(leave.member.bot_id);
            guilds.push(leave.member.guild_id);
            members.push(leave.member.member_id);
            joined.push(leave.joined_at);
            left.push(leave.left_at);
        }
        use diesel::sql_types::{Array, BigInt, Timestamptz};
        let marked: Vec<CountedJoin> = crate::prepared::prepared(
            "UPDATE joins AS j SET has_left = TRUE, left_at = l.left_at, updated_at = l.left_at \
             FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::timestamptz[], $5::timestamptz[]) \
               AS l(bot_id, guild_id, member_id, joined_at, left_at) \
             WHERE j.bot_id = l.bot_id AND j.guild_id = l.guild_id AND j.member_id = l.member_id \
               AND j.created_at = l.joined_at AND NOT j.has_left \
             RETURNING j.bot_id, j.guild_id, j.member_id, j.created_at, j.inviter_id, j.fake, \
               j.has_left, j.cleared",
        )
        .bind::<Array<BigInt>, _>(bots)
        .bind::<Array<BigInt>, _>(guilds)
        .bind::<Array<BigInt>, _>(members)
        .bind::<Array<Timestamptz>, _>(joined)
        .bind::<Array<Timestamptz>, _>(left)
        .load(conn)
        .await?;
        for row in marked {
            let counted = !row.fake.is_fake() && !row.cleared;
            let guild = GuildKey::new(row.bot_id, row.guild_id);
            written.left.insert(
                (guild.member(row.member_id), row.created_at),
                LeftJoin {
                    inviter_id: row.inviter_id,
                    counted,
                },
            );
            if let (Some(inviter), true) = (row.inviter_id, counted) {
                deltas
                    .entry((GuildKey::new(row.bot_id, row.guild_id), inviter))
                    .or_default()
                    .leaves += 1;
            }
        }
    }
    written.counts = bump_counts(conn, &deltas).await?;
    Ok(written)
}

/// Inserts joins with one statement of constant text (one array per column): PostgreSQL parses
/// and plans 11 array parameters instead of 13 per row. Returns the rows inserted (a join
/// already stored is skipped).
async fn insert_joins(
    conn: &mut AsyncPgConnection,
    new_joins: &[NewJoin],
) -> Result<Vec<CountedJoin>, StorageError> {
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
        bots.push(join.member.bot_id);
        guilds.push(join.member.guild_id);
        members.push(join.member.member_id);
        joined.push(join.joined_at);
        sources.push(join.source);
        codes.push(join.invite_code.clone());
        inviters.push(join.inviter_id);
        candidates.push(crate::text_array_literal(
            join.candidates.iter().map(InviteCode::as_str),
        ));
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
         RETURNING bot_id, guild_id, member_id, created_at, inviter_id, fake, has_left, cleared",
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

/// Adds summed deltas to inviter counters, one statement per chunk, and returns the counters
/// as they are after it. The keys are sorted (a `BTreeMap`), so concurrent transactions lock
/// counter rows in the same order.
pub(crate) async fn bump_counts(
    conn: &mut AsyncPgConnection,
    deltas: &BTreeMap<InviterKey, CountDelta>,
) -> Result<HashMap<InviterKey, InviterTotals>, StorageError> {
    use diesel::QueryableByName;
    use diesel::sql_types::{Array, BigInt};
    #[derive(QueryableByName)]
    struct Counted {
        #[diesel(sql_type = BigInt)]
        bot_id: BotId,
        #[diesel(sql_type = BigInt)]
        guild_id: GuildId,
        #[diesel(sql_type = BigInt)]
        inviter_id: UserId,
        #[diesel(embed)]
        totals: InviterTotals,
    }
    let mut after = HashMap::with_capacity(deltas.len());
    let changed: Vec<(&InviterKey, &CountDelta)> = deltas
        .iter()
        .filter(|(_, d)| **d != CountDelta::default())
        .collect();
    // Keys in order (the map is sorted): concurrent batches lock counter rows in one order.
    for chunk in changed.chunks(crate::ARRAY_CHUNK) {
        let mut columns: [Vec<i64>; 6] = Default::default();
        for &(&(guild, inviter), d) in chunk {
            let (bot, guild) = (guild.bot_id.to_db(), guild.guild_id.to_db());
            for (column, value) in
                columns
                    .iter_mut()
                    .zip([bot, guild, inviter.to_db(), d.joins, d.fake, d.leaves])
            {
                column.push(value);
            }
        }
        let [bots, guilds, inviters, joins, fake, leaves] = columns;
        let rows = crate::prepared::prepared(
            "INSERT INTO inviter_counts (bot_id, guild_id, inviter_id, joins, fake, leaves) \
             SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], \
               $6::int8[]) \
             ON CONFLICT (bot_id, guild_id, inviter_id) DO UPDATE SET \
               joins = inviter_counts.joins + excluded.joins, \
               fake = inviter_counts.fake + excluded.fake, \
               leaves = inviter_counts.leaves + excluded.leaves \
             RETURNING bot_id, guild_id, inviter_id, joins, fake, leaves, bonus",
        )
        .bind::<Array<BigInt>, _>(bots)
        .bind::<Array<BigInt>, _>(guilds)
        .bind::<Array<BigInt>, _>(inviters)
        .bind::<Array<BigInt>, _>(joins)
        .bind::<Array<BigInt>, _>(fake)
        .bind::<Array<BigInt>, _>(leaves)
        .load::<Counted>(conn)
        .await?;
        after.extend(rows.into_iter().map(|row| {
            (
                (GuildKey::new(row.bot_id, row.guild_id), row.inviter_id),
                row.totals,
            )
        }));
    }
    Ok(after)
}

/// The earliest stored join of each of these members (members with none are missing).
///
/// # Errors
/// On database errors.
pub async fn first_joins(
    conn: &mut AsyncPgConnection,
    keys: &[MemberKey],
) -> Result<HashMap<MemberKey, DateTime<Utc>>, StorageError> {
    #[derive(diesel::QueryableByName)]
    struct First {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        bot_id: BotId,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        guild_id: GuildId,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        member_id: UserId,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        first: DateTime<Utc>,
    }
    let rows: Vec<First> = crate::keyed::rows_for_members(
        conn,
        "SELECT j.bot_id, j.guild_id, j.member_id, min(j.created_at) AS first FROM joins j \
         JOIN unnest($1::int8[], $2::int8[], $3::int8[]) AS k(bot_id, guild_id, member_id) \
         ON j.bot_id = k.bot_id AND j.guild_id = k.guild_id AND j.member_id = k.member_id \
         GROUP BY j.bot_id, j.guild_id, j.member_id",
        keys,
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                GuildKey::new(row.bot_id, row.guild_id).member(row.member_id),
                row.first,
            )
        })
        .collect())
}
