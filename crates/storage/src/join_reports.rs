//! Discord's reported join sources applied to stored joins
//! (`docs/attribution.md#discords-reported-source`): the report is kept on the row, a credit
//! it allowed replaces the counters' open answer and moves the inviters' counters, and each
//! guild's tally (and the last refusal of the member search) is its tracking health.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use invitrack_model::{
    BotId, DiscordJoinSource, FakeReasons, GuildId, GuildKey, InviteCode, JoinSource, MemberKey,
    UnknownReason, UserId,
};

use crate::StorageError;
use crate::joins::{CountDelta, InviterKey, InviterTotals};

/// A stored join, as a report is judged against it.
#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
pub struct StoredJoin {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub bot_id: BotId,
    #[diesel(sql_type = BigInt)]
    pub guild_id: GuildId,
    #[diesel(sql_type = BigInt)]
    pub member_id: UserId,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub source: JoinSource,
    #[diesel(sql_type = Nullable<Text>)]
    pub invite_code: Option<InviteCode>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub inviter_id: Option<UserId>,
    #[diesel(sql_type = Array<Text>)]
    pub candidates: Vec<InviteCode>,
    #[diesel(sql_type = Nullable<Text>)]
    pub unknown_reason: Option<UnknownReason>,
}

impl StoredJoin {
    #[must_use]
    pub fn member(&self) -> MemberKey {
        GuildKey::new(self.bot_id, self.guild_id).member(self.member_id)
    }
}

/// The stored joins of these `(member, joined_at)`; joins not stored are missing.
///
/// # Errors
/// On database errors.
pub async fn stored_joins(
    conn: &mut AsyncPgConnection,
    keys: &[(MemberKey, DateTime<Utc>)],
) -> Result<HashMap<(MemberKey, DateTime<Utc>), StoredJoin>, StorageError> {
    let mut found = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(crate::ARRAY_CHUNK) {
        let (mut bots, mut guilds, mut members, mut joined) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (member, at) in chunk {
            bots.push(member.bot_id);
            guilds.push(member.guild_id);
            members.push(member.member_id);
            joined.push(*at);
        }
        let rows: Vec<StoredJoin> = crate::prepared::prepared(
            "SELECT j.id, j.bot_id, j.guild_id, j.member_id, j.created_at, j.source, \
               j.invite_code, j.inviter_id, j.candidates, j.unknown_reason FROM joins j \
             JOIN unnest($1::int8[], $2::int8[], $3::int8[], $4::timestamptz[]) \
               AS k(bot_id, guild_id, member_id, created_at) \
             ON j.bot_id = k.bot_id AND j.guild_id = k.guild_id AND j.member_id = k.member_id \
               AND j.created_at = k.created_at",
        )
        .bind::<Array<BigInt>, _>(bots)
        .bind::<Array<BigInt>, _>(guilds)
        .bind::<Array<BigInt>, _>(members)
        .bind::<Array<Timestamptz>, _>(joined)
        .load(conn)
        .await?;
        found.extend(
            rows.into_iter()
                .map(|row| ((row.member(), row.created_at), row)),
        );
    }
    Ok(found)
}

/// What the member search said about one join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscordReport {
    pub source: DiscordJoinSource,
    pub code: Option<InviteCode>,
    pub inviter_id: Option<UserId>,
}

/// The explanation a report let the engine credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub source: JoinSource,
    pub code: InviteCode,
    pub inviter_id: Option<UserId>,
}

/// A report applied to a stored join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRevision {
    pub join_id: i64,
    pub guild: GuildKey,
    pub report: DiscordReport,
    /// The counters exclude what Discord says.
    pub disagrees: bool,
    pub credit: Option<Credit>,
}

/// Keeps each report beside its join (`join_evidence`) and applies the credits, moving the inviters' counters
/// from the join's old inviter to its new one (a cleared join counts for nobody until it is
/// restored, and then for its inviter as the row says). Returns the counters it moved, as they
/// are now.
///
/// # Errors
/// On database errors.
pub async fn revise_joins(
    conn: &mut AsyncPgConnection,
    revisions: &[JoinRevision],
) -> Result<HashMap<InviterKey, InviterTotals>, StorageError> {
    #[derive(diesel::QueryableByName)]
    struct Revised {
        #[diesel(sql_type = BigInt)]
        bot_id: BotId,
        #[diesel(sql_type = BigInt)]
        guild_id: GuildId,
        #[diesel(sql_type = Nullable<BigInt>)]
        old_inviter: Option<UserId>,
        #[diesel(sql_type = Nullable<BigInt>)]
        new_inviter: Option<UserId>,
        #[diesel(sql_type = Integer)]
        fake: FakeReasons,
        #[diesel(sql_type = Bool)]
        has_left: bool,
        #[diesel(sql_type = Bool)]
        cleared: bool,
    }
    let mut deltas: BTreeMap<InviterKey, CountDelta> = BTreeMap::new();
    for chunk in revisions.chunks(crate::ARRAY_CHUNK) {
        let n = chunk.len();
        let (mut ids, mut reported, mut codes, mut inviters, mut disagrees) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut credited, mut sources, mut credit_codes, mut credit_inviters) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for revision in chunk {
            ids.push(revision.join_id);
            reported.push(revision.report.source);
            codes.push(revision.report.code.clone());
            inviters.push(revision.report.inviter_id);
            disagrees.push(revision.disagrees);
            credited.push(revision.credit.is_some());
            sources.push(revision.credit.as_ref().map(|c| c.source));
            credit_codes.push(revision.credit.as_ref().map(|c| c.code.clone()));
            credit_inviters.push(revision.credit.as_ref().and_then(|c| c.inviter_id));
        }
        // `old` reads the rows as they were before the update (one snapshot for the statement).
        let rows: Vec<Revised> = crate::prepared::prepared(
            "WITH r AS ( \
               SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[], $5::bool[], \
                 $6::bool[], $7::text[], $8::text[], $9::int8[]) \
               AS r(id, discord_source, discord_code, discord_inviter_id, disagrees, credited, \
                 source, invite_code, inviter_id)), \
             e AS ( \
               INSERT INTO join_evidence AS e (join_id, decided_by, discord_source, discord_code, \
                 discord_inviter_id, disagrees, reported_at) \
               SELECT r.id, CASE WHEN r.credited THEN 'discord' ELSE 'counters' END, \
                 r.discord_source, r.discord_code, r.discord_inviter_id, r.disagrees, now() \
               FROM r JOIN joins j ON j.id = r.id \
               ON CONFLICT (join_id) DO UPDATE SET discord_source = excluded.discord_source, \
                 discord_code = excluded.discord_code, \
                 discord_inviter_id = excluded.discord_inviter_id, \
                 disagrees = excluded.disagrees, reported_at = excluded.reported_at, \
                 decided_by = CASE WHEN excluded.decided_by = 'discord' THEN 'discord' \
                   ELSE e.decided_by END), \
             old AS (SELECT j.id, j.inviter_id FROM joins j JOIN r ON j.id = r.id), \
             u AS ( \
               UPDATE joins j SET updated_at = now(), source = r.source, \
                 invite_code = r.invite_code, inviter_id = r.inviter_id, unknown_reason = NULL \
               FROM r WHERE j.id = r.id AND r.credited \
               RETURNING j.id, j.bot_id, j.guild_id, j.inviter_id, j.fake, j.has_left, j.cleared) \
             SELECT u.bot_id, u.guild_id, old.inviter_id AS old_inviter, \
               u.inviter_id AS new_inviter, u.fake, u.has_left, u.cleared \
             FROM u JOIN old ON old.id = u.id",
        )
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<Text>, _>(reported)
        .bind::<Array<Nullable<Text>>, _>(codes)
        .bind::<Array<Nullable<BigInt>>, _>(inviters)
        .bind::<Array<Bool>, _>(disagrees)
        .bind::<Array<Bool>, _>(credited)
        .bind::<Array<Nullable<Text>>, _>(sources)
        .bind::<Array<Nullable<Text>>, _>(credit_codes)
        .bind::<Array<Nullable<BigInt>>, _>(credit_inviters)
        .load(conn)
        .await?;
        for row in rows {
            if row.cleared || row.old_inviter == row.new_inviter {
                continue;
            }
            let guild = GuildKey::new(row.bot_id, row.guild_id);
            for (inviter, sign) in [(row.old_inviter, -1), (row.new_inviter, 1)] {
                if let Some(inviter) = inviter {
                    deltas
                        .entry((guild, inviter))
                        .or_default()
                        .add(CountDelta::of_row(row.fake, row.has_left, sign));
                }
            }
        }
    }
    crate::joins::bump_counts(conn, &deltas).await
}

/// One guild's member search answers, summed over a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthTally {
    pub reports: i64,
    pub credited: i64,
    pub confirmed: i64,
    pub disagreements: i64,
    /// The search answered (a refusal before it in the batch is over).
    pub answered: bool,
    /// The last refusal: HTTP status and Discord's message.
    pub refused: Option<(u16, String)>,
}

/// Adds each guild's tally to its `join_source_health` row. A refusal is kept until an answer
/// comes after it.
///
/// # Errors
/// On database errors.
pub async fn record_health(
    conn: &mut AsyncPgConnection,
    tallies: &BTreeMap<GuildKey, HealthTally>,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    for (guild, tally) in tallies {
        let (status, detail) = tally.refused.as_ref().map_or((None, None), |(s, d)| {
            (Some(i32::from(*s)), Some(d.clone()))
        });
        let refused_at = status.map(|_| at);
        // An answer clears a refusal; a refusal replaces it; otherwise it stays.
        let set_refusal = tally.answered || tally.refused.is_some();
        crate::prepared::prepared(
            "INSERT INTO join_source_health AS h (bot_id, guild_id, reports, credited, confirmed, \
               disagreements, refused_status, refused_detail, refused_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (bot_id, guild_id) DO UPDATE SET \
               reports = h.reports + excluded.reports, credited = h.credited + excluded.credited, \
               confirmed = h.confirmed + excluded.confirmed, \
               disagreements = h.disagreements + excluded.disagreements, \
               (refused_status, refused_detail, refused_at) = ( \
                 SELECT CASE WHEN s THEN excluded.refused_status ELSE h.refused_status END, \
                   CASE WHEN s THEN excluded.refused_detail ELSE h.refused_detail END, \
                   CASE WHEN s THEN excluded.refused_at ELSE h.refused_at END \
                 FROM (SELECT $11::bool AS s) AS choice), \
               updated_at = excluded.updated_at",
        )
        .bind::<BigInt, _>(guild.bot_id)
        .bind::<BigInt, _>(guild.guild_id)
        .bind::<BigInt, _>(tally.reports)
        .bind::<BigInt, _>(tally.credited)
        .bind::<BigInt, _>(tally.confirmed)
        .bind::<BigInt, _>(tally.disagreements)
        .bind::<Nullable<Integer>, _>(status)
        .bind::<Nullable<Text>, _>(detail)
        .bind::<Nullable<Timestamptz>, _>(refused_at)
        .bind::<Timestamptz, _>(at)
        .bind::<Bool, _>(set_refusal)
        .execute(conn)
        .await?;
    }
    Ok(())
}
