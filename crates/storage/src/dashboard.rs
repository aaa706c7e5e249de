//! What dashboards read beyond the InviteLogger endpoints: leaderboards, a member's joins, an
//! inviter's codes, a guild's activity and tracking health.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::StorageError;
use crate::counts::InviterCounts;
use crate::schema::{
    guild_states, inviter_counts, join_evidence, join_source_health, joins, members,
};
use invitrack_model::{
    BotId, DecidedBy, DiscordJoinSource, FakeReasons, GuildId, GuildKey, InviteCode, JoinSource,
    UnknownReason, UserId,
};

use crate::invites::StoredInvite;

/// What a leaderboard is ordered by (highest first, ties by inviter id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderboardOrder {
    Real,
    Total,
    Fake,
    Leaves,
    Bonus,
}

impl LeaderboardOrder {
    /// The ORDER BY expression over the columns `joins, fake, leaves, bonus`. A fixed string per
    /// variant: nothing from the request reaches the SQL text.
    fn expression(self) -> &'static str {
        match self {
            Self::Real => "(joins + bonus - fake - leaves)",
            Self::Total => "(joins + bonus)",
            Self::Fake => "fake",
            Self::Leaves => "leaves",
            Self::Bonus => "bonus",
        }
    }
}

/// One leaderboard row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderboardEntry {
    pub inviter_id: UserId,
    pub counts: InviterCounts,
}

/// One page of a leaderboard and how many inviters it has in all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaderboardPage {
    pub entries: Vec<LeaderboardEntry>,
    pub total_inviters: i64,
}

#[derive(QueryableByName)]
struct LeaderboardRow {
    #[diesel(sql_type = BigInt)]
    inviter_id: UserId,
    #[diesel(embed)]
    counts: InviterCounts,
    #[diesel(sql_type = BigInt)]
    total_inviters: i64,
}

fn into_page(rows: Vec<LeaderboardRow>) -> LeaderboardPage {
    LeaderboardPage {
        total_inviters: rows.as_slice().first().map_or(0, |r| r.total_inviters),
        entries: rows
            .into_iter()
            .map(|r| LeaderboardEntry {
                inviter_id: r.inviter_id,
                counts: r.counts,
            })
            .collect(),
    }
}

/// A page of a guild's leaderboard. `since = None` reads the maintained counters (all time);
/// `Some(t)` counts the join rows and bonus rows created from `t` on, not cleared (an indexed
/// range scan over `joins (bot_id, guild_id, created_at)`). Inviters whose counts are all zero
/// are left out. When `offset` is past the end, the page is empty and `total_inviters` is 0.
///
/// # Errors
/// On database errors.
pub async fn leaderboard(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    order: LeaderboardOrder,
    since: Option<DateTime<Utc>>,
    limit: i64,
    offset: i64,
) -> Result<LeaderboardPage, StorageError> {
    let by = order.expression();
    let rows: Vec<LeaderboardRow> =
        match since {
            None => diesel::sql_query(format!(
                "SELECT inviter_id, joins, fake, leaves, bonus, count(*) OVER () AS total_inviters \
                 FROM inviter_counts \
                 WHERE bot_id = $1 AND guild_id = $2 AND (joins <> 0 OR bonus <> 0) \
                 ORDER BY {by} DESC, inviter_id ASC LIMIT $3 OFFSET $4"
            ))
            .bind::<BigInt, _>(guild.bot_id)
            .bind::<BigInt, _>(guild.guild_id)
            .bind::<BigInt, _>(limit)
            .bind::<BigInt, _>(offset)
            .load(conn)
            .await?,
            Some(since) => {
                diesel::sql_query(format!(
                    "WITH j AS ( \
                   SELECT inviter_id, count(*) AS joins, \
                          count(*) FILTER (WHERE fake <> 0) AS fake, \
                          count(*) FILTER (WHERE fake = 0 AND has_left) AS leaves \
                   FROM joins \
                   WHERE bot_id = $1 AND guild_id = $2 AND created_at >= $3 \
                     AND NOT cleared AND inviter_id IS NOT NULL \
                   GROUP BY inviter_id), \
                 b AS ( \
                   SELECT inviter_id, sum(amount)::BIGINT AS bonus FROM bonus_invites \
                   WHERE bot_id = $1 AND guild_id = $2 AND created_at >= $3 AND NOT cleared \
                   GROUP BY inviter_id), \
                 t AS ( \
                   SELECT coalesce(j.inviter_id, b.inviter_id) AS inviter_id, \
                          coalesce(j.joins, 0) AS joins, coalesce(j.fake, 0) AS fake, \
                          coalesce(j.leaves, 0) AS leaves, coalesce(b.bonus, 0) AS bonus \
                   FROM j FULL JOIN b ON j.inviter_id = b.inviter_id) \
                 SELECT inviter_id, joins, fake, leaves, bonus, count(*) OVER () AS total_inviters \
                 FROM t WHERE joins <> 0 OR bonus <> 0 \
                 ORDER BY {by} DESC, inviter_id ASC LIMIT $4 OFFSET $5"
                ))
                .bind::<BigInt, _>(guild.bot_id)
                .bind::<BigInt, _>(guild.guild_id)
                .bind::<Timestamptz, _>(since)
                .bind::<BigInt, _>(limit)
                .bind::<BigInt, _>(offset)
                .load(conn)
                .await?
            }
        };
    Ok(into_page(rows))
}

/// One join of a member, as a dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = joins)]
pub struct MemberJoinRow {
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub source: JoinSource,
    pub invite_code: Option<InviteCode>,
    pub inviter_id: Option<UserId>,
    pub candidates: Vec<InviteCode>,
    pub unknown_reason: Option<UnknownReason>,
    pub fake: FakeReasons,
    pub has_left: bool,
    pub left_at: Option<DateTime<Utc>>,
    pub cleared: bool,
    /// What Discord's member search reported, when it was asked (read with a left join of
    /// `join_evidence`).
    #[diesel(embed)]
    pub evidence: Option<JoinEvidenceRow>,
}

/// Discord's reported join source for one join, and which evidence decided the join.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = join_evidence)]
pub struct JoinEvidenceRow {
    pub decided_by: DecidedBy,
    pub discord_source: DiscordJoinSource,
    pub discord_code: Option<InviteCode>,
    pub discord_inviter_id: Option<UserId>,
    pub disagrees: bool,
}

/// Whether the member is in the guild now, as the gateway last showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberHistory {
    /// `None` when the gateway never showed this member.
    pub present: Option<bool>,
    /// Every decided join, newest first.
    pub joins: Vec<MemberJoinRow>,
}

/// A member's decided joins in a guild, newest first, and whether they are present.
///
/// # Errors
/// On database errors.
pub async fn member_history(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    member_id: UserId,
) -> Result<MemberHistory, StorageError> {
    let joins = joins::table
        .left_join(join_evidence::table)
        .filter(joins::bot_id.eq(guild.bot_id))
        .filter(joins::guild_id.eq(guild.guild_id))
        .filter(joins::member_id.eq(member_id))
        .order((joins::created_at.desc(), joins::id.desc()))
        .select(MemberJoinRow::as_select())
        .load(conn)
        .await?;
    let present = members::table
        .find((guild.bot_id, guild.guild_id, member_id))
        .select(members::present)
        .first(conn)
        .await
        .optional()?;
    Ok(MemberHistory { present, joins })
}

/// How one code of an inviter was used, from the join rows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodeUses {
    /// Joins credited to the code.
    pub joins: i64,
    /// Of those, not cleared by a reset.
    pub counted: i64,
    pub fake: i64,
    pub leaves: i64,
    pub first_join_at: Option<DateTime<Utc>>,
    pub last_join_at: Option<DateTime<Utc>>,
}

/// One code of an inviter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviterCode {
    pub code: InviteCode,
    pub uses: CodeUses,
    /// The invite as last seen (`invites` table); `None` when it was never seen (a join credited
    /// to it before invitrack tracked invites) or it vanished.
    pub live: Option<StoredInvite>,
}

#[derive(QueryableByName)]
struct CodeRow {
    #[diesel(sql_type = Text)]
    code: InviteCode,
    #[diesel(sql_type = BigInt)]
    joins: i64,
    #[diesel(sql_type = BigInt)]
    counted: i64,
    #[diesel(sql_type = BigInt)]
    fake: i64,
    #[diesel(sql_type = BigInt)]
    leaves: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    first_join_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_join_at: Option<DateTime<Utc>>,
}

/// An inviter's codes: every code joins were credited to (counted from the join rows, fake and
/// leaves over the joins not cleared) and every current invite of theirs, with its uses, max
/// uses and expiry. Sorted by code.
///
/// # Errors
/// On database errors.
pub async fn inviter_codes(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    inviter_id: UserId,
) -> Result<Vec<InviterCode>, StorageError> {
    let rows: Vec<CodeRow> = diesel::sql_query(
        "SELECT invite_code AS code, count(*) AS joins, \
                count(*) FILTER (WHERE NOT cleared) AS counted, \
                count(*) FILTER (WHERE NOT cleared AND fake <> 0) AS fake, \
                count(*) FILTER (WHERE NOT cleared AND fake = 0 AND has_left) AS leaves, \
                min(created_at) AS first_join_at, max(created_at) AS last_join_at \
         FROM joins \
         WHERE bot_id = $1 AND guild_id = $2 AND inviter_id = $3 AND invite_code IS NOT NULL \
         GROUP BY invite_code",
    )
    .bind::<BigInt, _>(guild.bot_id)
    .bind::<BigInt, _>(guild.guild_id)
    .bind::<BigInt, _>(inviter_id)
    .load(conn)
    .await?;
    let live = crate::invites::guild_invites(conn, guild, Some(inviter_id), false).await?;
    let mut codes: BTreeMap<InviteCode, InviterCode> = rows
        .into_iter()
        .map(|r| {
            (
                r.code.clone(),
                InviterCode {
                    code: r.code,
                    uses: CodeUses {
                        joins: r.joins,
                        counted: r.counted,
                        fake: r.fake,
                        leaves: r.leaves,
                        first_join_at: r.first_join_at,
                        last_join_at: r.last_join_at,
                    },
                    live: None,
                },
            )
        })
        .collect();
    for invite in live {
        let code = invite.code.clone();
        codes
            .entry(code.clone())
            .or_insert_with(|| InviterCode {
                code,
                uses: CodeUses::default(),
                live: None,
            })
            .live = Some(invite);
    }
    Ok(codes.into_values().collect())
}

/// Joins of one day (UTC), by source, with how many were fake and how many real ones left.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayActivity {
    pub day: Option<NaiveDate>,
    pub invite: i64,
    pub vanity: i64,
    pub ambiguous: i64,
    pub unknown: i64,
    pub fake: i64,
    pub leaves: i64,
}

/// Tracking health of a guild, as the worker last saved it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackingHealth {
    /// The worker has seen the guild.
    pub tracked: bool,
    pub missing_permissions: bool,
    pub last_snapshot_at: Option<DateTime<Utc>>,
    /// Joins still waiting for evidence.
    pub pending_joins: i32,
    pub updated_at: Option<DateTime<Utc>>,
    /// How Discord's member search answered, when it was asked
    /// (`ATTRIBUTION_DISCORD_JOIN_SOURCE`).
    pub discord_join_source: Option<JoinSourceHealth>,
}

/// A guild's `join_source_health` row: Discord's reported join sources, judged.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = join_source_health)]
pub struct JoinSourceHealth {
    pub reports: i64,
    pub credited: i64,
    pub confirmed: i64,
    pub disagreements: i64,
    pub refused_status: Option<i32>,
    pub refused_detail: Option<String>,
    pub refused_at: Option<DateTime<Utc>>,
}

/// A guild's activity for charts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GuildSummary {
    /// Every day from `since` to today, oldest first (days without joins are zeros).
    pub days: Vec<DayActivity>,
    /// Sums of the maintained counters (all time, cleared joins and bonus excluded).
    pub totals: InviterCounts,
    pub inviters: i64,
    pub health: TrackingHealth,
}

/// `pending_joins, missing_permissions, last_snapshot_at, updated_at` of `guild_states`.
type HealthRow = (i32, bool, Option<DateTime<Utc>>, DateTime<Utc>);

#[derive(QueryableByName)]
struct DayRow {
    #[diesel(sql_type = Date)]
    day: NaiveDate,
    #[diesel(sql_type = Text)]
    source: JoinSource,
    #[diesel(sql_type = BigInt)]
    joins: i64,
    #[diesel(sql_type = BigInt)]
    fake: i64,
    #[diesel(sql_type = BigInt)]
    leaves: i64,
}

#[derive(QueryableByName)]
struct TotalsRow {
    #[diesel(sql_type = BigInt)]
    joins: i64,
    #[diesel(sql_type = BigInt)]
    fake: i64,
    #[diesel(sql_type = BigInt)]
    leaves: i64,
    #[diesel(sql_type = BigInt)]
    bonus: i64,
    #[diesel(sql_type = BigInt)]
    inviters: i64,
}

/// Joins per UTC day from the start of `since`'s day, by source (every join row, cleared or
/// not: activity does not change when counts are reset), the guild's counter totals and its
/// tracking health.
///
/// # Errors
/// On database errors.
pub async fn guild_summary(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<GuildSummary, StorageError> {
    let first_day = since.date_naive();
    let start = first_day
        .and_hms_opt(0, 0, 0)
        .map_or(since, |t| t.and_utc());
    let rows: Vec<DayRow> = diesel::sql_query(
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, source, count(*) AS joins, \
                count(*) FILTER (WHERE fake <> 0) AS fake, \
                count(*) FILTER (WHERE fake = 0 AND has_left) AS leaves \
         FROM joins WHERE bot_id = $1 AND guild_id = $2 AND created_at >= $3 \
         GROUP BY 1, 2",
    )
    .bind::<BigInt, _>(guild.bot_id)
    .bind::<BigInt, _>(guild.guild_id)
    .bind::<Timestamptz, _>(start)
    .load(conn)
    .await?;
    let mut days: BTreeMap<NaiveDate, DayActivity> = BTreeMap::new();
    let mut day = first_day;
    while day <= now.date_naive() {
        days.insert(
            day,
            DayActivity {
                day: Some(day),
                ..DayActivity::default()
            },
        );
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    for row in rows {
        let entry = days.entry(row.day).or_insert_with(|| DayActivity {
            day: Some(row.day),
            ..DayActivity::default()
        });
        *match row.source {
            JoinSource::Invite => &mut entry.invite,
            JoinSource::Vanity => &mut entry.vanity,
            JoinSource::Ambiguous => &mut entry.ambiguous,
            JoinSource::Unknown => &mut entry.unknown,
        } += row.joins;
        entry.fake += row.fake;
        entry.leaves += row.leaves;
    }
    let totals: TotalsRow = diesel::sql_query(
        "SELECT coalesce(sum(joins), 0)::BIGINT AS joins, coalesce(sum(fake), 0)::BIGINT AS fake, \
                coalesce(sum(leaves), 0)::BIGINT AS leaves, coalesce(sum(bonus), 0)::BIGINT AS bonus, \
                count(*) FILTER (WHERE joins <> 0 OR bonus <> 0) AS inviters \
         FROM inviter_counts WHERE bot_id = $1 AND guild_id = $2",
    )
    .bind::<BigInt, _>(guild.bot_id)
    .bind::<BigInt, _>(guild.guild_id)
    .get_result(conn)
    .await?;
    let health: Option<HealthRow> = guild_states::table
        .find((guild.bot_id, guild.guild_id))
        .select((
            guild_states::pending_joins,
            guild_states::missing_permissions,
            guild_states::last_snapshot_at,
            guild_states::updated_at,
        ))
        .first(conn)
        .await
        .optional()?;
    let discord_join_source = join_source_health::table
        .find((guild.bot_id, guild.guild_id))
        .select(JoinSourceHealth::as_select())
        .first(conn)
        .await
        .optional()?;
    let mut health = health.map_or_else(TrackingHealth::default, |(pending, missing, last, at)| {
        TrackingHealth {
            tracked: true,
            missing_permissions: missing,
            last_snapshot_at: last,
            pending_joins: pending,
            updated_at: Some(at),
            discord_join_source: None,
        }
    });
    health.discord_join_source = discord_join_source;
    Ok(GuildSummary {
        days: days.into_values().collect(),
        totals: InviterCounts {
            joins: totals.joins,
            fake: totals.fake,
            leaves: totals.leaves,
            bonus: totals.bonus,
        },
        inviters: totals.inviters,
        health,
    })
}

/// Recomputes every inviter's counters of a guild from the join rows and bonus rows (not
/// cleared): what the maintained `inviter_counts` must equal. Inviters whose recount is all
/// zeros are left out.
///
/// # Errors
/// On database errors.
pub async fn recount_guild(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
) -> Result<BTreeMap<UserId, InviterCounts>, StorageError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        inviter_id: UserId,
        #[diesel(embed)]
        counts: InviterCounts,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "WITH j AS ( \
           SELECT inviter_id, count(*) AS joins, count(*) FILTER (WHERE fake <> 0) AS fake, \
                  count(*) FILTER (WHERE fake = 0 AND has_left) AS leaves \
           FROM joins WHERE bot_id = $1 AND guild_id = $2 AND NOT cleared \
             AND inviter_id IS NOT NULL GROUP BY inviter_id), \
         b AS ( \
           SELECT inviter_id, sum(amount)::BIGINT AS bonus FROM bonus_invites \
           WHERE bot_id = $1 AND guild_id = $2 AND NOT cleared GROUP BY inviter_id) \
         SELECT coalesce(j.inviter_id, b.inviter_id) AS inviter_id, \
                coalesce(j.joins, 0) AS joins, coalesce(j.fake, 0) AS fake, \
                coalesce(j.leaves, 0) AS leaves, coalesce(b.bonus, 0) AS bonus \
         FROM j FULL JOIN b ON j.inviter_id = b.inviter_id",
    )
    .bind::<BigInt, _>(guild.bot_id)
    .bind::<BigInt, _>(guild.guild_id)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.inviter_id, r.counts))
        .filter(|(_, c)| *c != InviterCounts::default())
        .collect())
}

/// Every maintained counter row of a guild that is not all zeros.
///
/// # Errors
/// On database errors.
pub async fn maintained_counts(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
) -> Result<BTreeMap<UserId, InviterCounts>, StorageError> {
    let rows: Vec<(UserId, InviterCounts)> = inviter_counts::table
        .filter(inviter_counts::bot_id.eq(guild.bot_id))
        .filter(inviter_counts::guild_id.eq(guild.guild_id))
        .select((inviter_counts::inviter_id, InviterCounts::as_select()))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, c)| *c != InviterCounts::default())
        .collect())
}

/// The channel on which PostgreSQL announces committed changes of `inviter_counts` (a
/// statement-level trigger, migration `2026-11-24-000001_counts_notify`).
pub const COUNTS_CHANNEL: &str = "invitrack_inviter_counts";

/// What one notification on [`COUNTS_CHANNEL`] says changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountsChange {
    /// Anything may have changed (`TRUNCATE`, or a payload this version cannot read).
    All,
    /// The counters of these guilds changed.
    Guilds(Vec<GuildKey>),
}

impl CountsChange {
    /// Reads a payload: `*`, or `bot_id:guild_id` pairs separated by commas. Anything
    /// unreadable means [`CountsChange::All`]: invalidating too much is safe, too little is not.
    #[must_use]
    pub fn parse(payload: &str) -> Self {
        let guilds: Option<Vec<GuildKey>> = payload
            .split(',')
            .map(|pair| {
                let (bot, guild) = pair.split_once(':')?;
                Some(GuildKey::new(
                    BotId::from_db(bot.parse().ok()?),
                    GuildId::from_db(guild.parse().ok()?),
                ))
            })
            .collect();
        match guilds {
            Some(guilds) if payload != "*" => Self::Guilds(guilds),
            _ => Self::All,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_notifications_parse_and_fail_safe() {
        assert_eq!(
            CountsChange::parse("1:2,-3:4"),
            CountsChange::Guilds(vec![
                GuildKey::new(BotId::new(1), GuildId::new(2)),
                GuildKey::new(BotId::from_db(-3), GuildId::new(4)),
            ])
        );
        assert_eq!(CountsChange::parse("*"), CountsChange::All);
        assert_eq!(CountsChange::parse(""), CountsChange::All);
        assert_eq!(CountsChange::parse("1:2,x"), CountsChange::All);
    }
}

#[derive(QueryableByName)]
struct UnknownReasonRow {
    #[diesel(sql_type = Text)]
    reason: UnknownReason,
    #[diesel(sql_type = BigInt)]
    joins: i64,
}

/// Unknown joins since `since` by reason, most frequent first (joins without a recorded reason
/// are left out).
///
/// # Errors
/// On database errors.
pub async fn unknown_reasons(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    since: DateTime<Utc>,
) -> Result<Vec<(UnknownReason, i64)>, StorageError> {
    let rows: Vec<UnknownReasonRow> = diesel::sql_query(
        "SELECT unknown_reason AS reason, count(*) AS joins FROM joins \
         WHERE bot_id = $1 AND guild_id = $2 AND created_at >= $3 \
           AND source = 'unknown' AND unknown_reason IS NOT NULL \
         GROUP BY unknown_reason ORDER BY joins DESC, reason",
    )
    .bind::<BigInt, _>(guild.bot_id)
    .bind::<BigInt, _>(guild.guild_id)
    .bind::<Timestamptz, _>(since)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.reason, r.joins)).collect())
}
