//! Reads for dashboards: leaderboard, a member's inviter and joins, an inviter's codes, a guild
//! summary for charts. Any key of the bot (and guild) may read them.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use invitrack_model::{DecidedBy, FakeReasons, InviteCode};
use invitrack_storage::counts::InviterCounts;
use invitrack_storage::dashboard::{self as queries, LeaderboardOrder};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, GuildPath};
use crate::cache::EntryKey;
use crate::error::ApiError;
use crate::invites::timestamp;
use crate::openapi_parts::{
    CommonErrors, GuildParams, InviterParams, LeaderboardQuery, MemberParams, NotFoundError,
    SummaryQuery,
};
use crate::params::{Params, path_snowflake};

/// An inviter's counts, InviteLogger's definitions (`total = joins + bonus`,
/// `real = total - fake - leaves`) plus the raw number of joins.
#[derive(Debug, Serialize, ToSchema)]
pub struct Counts {
    pub total: i64,
    pub real: i64,
    pub fake: i64,
    pub leaves: i64,
    pub bonus: i64,
    /// Joins credited to the inviter (not cleared).
    pub joins: i64,
}

impl From<InviterCounts> for Counts {
    fn from(c: InviterCounts) -> Self {
        Self {
            total: c.total(),
            real: c.real(),
            fake: c.fake,
            leaves: c.leaves,
            bonus: c.bonus,
            joins: c.joins,
        }
    }
}

/// One leaderboard row.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeaderboardEntry {
    /// 1-based position in the whole leaderboard.
    pub rank: i64,
    #[schema(example = "417977361011572748")]
    pub inviter_id: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// One page of a guild's leaderboard.
#[derive(Debug, Serialize, ToSchema)]
pub struct Leaderboard {
    /// `real`, `total`, `fake`, `leaves` or `bonus`.
    pub order: String,
    /// `all`, `7d` or `30d`.
    pub range: String,
    pub page: i64,
    pub per_page: i64,
    /// Inviters with any count in the range (0 when `page` is past the end).
    pub total_inviters: i64,
    pub entries: Vec<LeaderboardEntry>,
}

const ORDERS: [(&str, LeaderboardOrder); 5] = [
    ("real", LeaderboardOrder::Real),
    ("total", LeaderboardOrder::Total),
    ("fake", LeaderboardOrder::Fake),
    ("leaves", LeaderboardOrder::Leaves),
    ("bonus", LeaderboardOrder::Bonus),
];
const RANGES: [(&str, Option<i64>); 3] = [("all", None), ("7d", Some(7)), ("30d", Some(30))];

fn name_of<T: PartialEq>(options: &[(&'static str, T)], value: &T) -> String {
    options
        .iter()
        .find(|(_, v)| v == value)
        .map_or("", |(n, _)| *n)
        .to_owned()
}

/// A guild's leaderboard, highest first (ties by inviter id). All-time pages read the
/// maintained counters; `7d` and `30d` count the joins and bonus made in that window (not
/// cleared), `leaves` there being the window's real joins whose member has left since.
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/leaderboard",
    tag = "dashboard",
    params(
        GuildParams,
        LeaderboardQuery,
    ),
    responses((status = 200, description = "one page", body = Leaderboard), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn leaderboard(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.read(&guild)?;
    let params = Params::from_query(&req)?;
    let order = params.choice("order", &ORDERS, LeaderboardOrder::Real)?;
    let range = params.choice("range", &RANGES, None)?;
    let page = params.integer("page", 1, 100_000, 1)?;
    let per_page = params.integer("per_page", 1, 100, 25)?;
    // Every input of a leaderboard (counters, or the joins and bonus rows of a window) changes
    // in the same transaction as the guild's `inviter_counts`, whose commits invalidate the
    // cache; a window also slides with time, so its pages are kept only briefly.
    let key = EntryKey::Leaderboard {
        order: index_of(&ORDERS, &order),
        range: index_of(&RANGES, &range),
        page,
        per_page,
    };
    let ticket = match state
        .counts
        .as_ref()
        .map(|cache| cache.get_body(guild.key(), key))
    {
        Some(Ok(body)) => return Ok(json_body(body)),
        Some(Err(ticket)) => ticket,
        None => None,
    };
    let since = range.map(|days| Utc::now() - Duration::days(days));
    let mut conn = state.connection().await?;
    let result = queries::leaderboard(
        &mut conn,
        guild.key(),
        order,
        since,
        per_page,
        (page - 1) * per_page,
    )
    .await?;
    drop(conn);
    let first_rank = (page - 1) * per_page + 1;
    let entries = result
        .entries
        .into_iter()
        .zip(first_rank..)
        .map(|(e, rank)| LeaderboardEntry {
            rank,
            inviter_id: e.inviter_id.to_string(),
            counts: e.counts.into(),
        })
        .collect();
    let body = web::Bytes::from(
        serde_json::to_vec(&Leaderboard {
            order: name_of(&ORDERS, &order),
            range: name_of(&RANGES, &range),
            page,
            per_page,
            total_inviters: result.total_inviters,
            entries,
        })
        .map_err(|_| ApiError::Internal("leaderboard serialization"))?,
    );
    if let (Some(cache), Some(ticket)) = (&state.counts, ticket) {
        let max_age = if range.is_some() {
            WINDOW_MAX_AGE
        } else {
            std::time::Duration::MAX
        };
        cache.put_body(ticket, guild.key(), key, body.clone(), max_age);
    }
    Ok(json_body(body))
}

/// How long a leaderboard page of a 7- or 30-day window is served from memory: joins leave the
/// window as time passes, with no commit to announce it, so its edge may lag by this much.
const WINDOW_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(10);

fn json_body(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body)
}

fn index_of<T: PartialEq>(options: &[(&'static str, T)], value: &T) -> u8 {
    options
        .iter()
        .position(|(_, v)| v == value)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(u8::MAX)
}

/// One join of a member.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberJoin {
    /// When the member joined (Discord's `joined_at`).
    pub created_at: String,
    pub updated_at: String,
    /// `invite`, `vanity`, `ambiguous` or `unknown`.
    pub source: String,
    pub invite_code: Option<String>,
    pub inviter_id: Option<String>,
    /// Codes that could explain an ambiguous join.
    pub candidates: Vec<String>,
    /// Why an unknown join could not be explained.
    pub unknown_reason: Option<String>,
    pub fake: bool,
    /// `young`, `self`, `no_avatar`, `already_joined`.
    pub fake_reasons: Vec<String>,
    pub left: bool,
    pub left_at: Option<String>,
    pub cleared: bool,
    /// Which evidence decided the join: `counters` (the invite counters) or `discord`
    /// (Discord's reported join source, where the counters allowed it without forcing it).
    pub decided_by: String,
    /// What Discord's member search reported about the join, when it was asked
    /// (`ATTRIBUTION_DISCORD_JOIN_SOURCE`).
    pub discord_report: Option<DiscordReport>,
}

/// Discord's reported join source for a join.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscordReport {
    /// `invite`, `vanity`, `bot`, `integration`, `discovery`, `hub`, `manual`, `linked_lobby`
    /// or `unknown`.
    pub source: String,
    pub invite_code: Option<String>,
    pub inviter_id: Option<String>,
    /// The invite counters contradict it; the counters' decision stands.
    pub disagrees: bool,
}

impl From<queries::MemberJoinRow> for MemberJoin {
    fn from(j: queries::MemberJoinRow) -> Self {
        Self {
            created_at: timestamp(j.created_at),
            updated_at: timestamp(j.updated_at),
            source: j.source.to_string(),
            invite_code: j.invite_code.map(InviteCode::into_string),
            inviter_id: j.inviter_id.map(|i| i.to_string()),
            candidates: j
                .candidates
                .into_iter()
                .map(InviteCode::into_string)
                .collect(),
            unknown_reason: j.unknown_reason.map(|r| r.to_string()),
            fake: j.fake.is_fake(),
            fake_reasons: fake_reason_names(j.fake),
            left: j.has_left,
            left_at: j.left_at.map(timestamp),
            cleared: j.cleared,
            decided_by: j
                .evidence
                .as_ref()
                .map_or(DecidedBy::Counters, |e| e.decided_by)
                .to_string(),
            discord_report: j.evidence.map(|e| DiscordReport {
                source: e.discord_source.to_string(),
                invite_code: e.discord_code.map(InviteCode::into_string),
                inviter_id: e.discord_inviter_id.map(|i| i.to_string()),
                disagrees: e.disagrees,
            }),
        }
    }
}

/// Who invited a member, and every join of theirs in the guild.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberInvites {
    pub member_id: String,
    /// Whether the member is in the guild now (`null` when never seen by the gateway).
    pub present: Option<bool>,
    /// The inviter of the latest join (`null` when unknown).
    pub inviter_id: Option<String>,
    /// The code of the latest join (`null` for vanity, ambiguous and unknown joins).
    pub invite_code: Option<String>,
    /// The source of the latest join.
    pub source: Option<String>,
    /// Newest first.
    pub joins: Vec<MemberJoin>,
}

pub(crate) fn fake_reason_names(reasons: FakeReasons) -> Vec<String> {
    reasons.names().map(str::to_owned).collect()
}

/// Who invited a member (their latest join) and all their joins in the guild, newest first.
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/members/{member_id}",
    tag = "dashboard",
    params(
        MemberParams,
    ),
    responses(
        (status = 200, description = "the member's joins", body = MemberInvites),
        NotFoundError,
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id, member_id))]
pub async fn member(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.read(&guild)?;
    let member_id = path_snowflake(&req, "member_id")?;
    let mut conn = state.connection().await?;
    let history = queries::member_history(&mut conn, guild.key(), member_id).await?;
    if history.present.is_none() && history.joins.is_empty() {
        return Err(ApiError::NotFound {
            code: "member_not_found",
            what: "member",
        });
    }
    let latest = history.joins.first();
    Ok(HttpResponse::Ok().json(MemberInvites {
        member_id: member_id.to_string(),
        present: history.present,
        inviter_id: latest.and_then(|j| j.inviter_id).map(|i| i.to_string()),
        invite_code: latest.and_then(|j| j.invite_code.as_ref().map(InviteCode::to_string)),
        source: latest.map(|j| j.source.to_string()),
        joins: history.joins.into_iter().map(MemberJoin::from).collect(),
    }))
}

/// One code of an inviter.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviterCode {
    pub code: String,
    /// Joins credited to this code (from the join rows, cleared ones included).
    pub joins: i64,
    /// Of those, not cleared by a reset.
    pub counted: i64,
    /// Of the counted joins, fake ones.
    pub fake: i64,
    /// Of the counted joins, real ones whose member left.
    pub leaves: i64,
    pub first_join_at: Option<String>,
    pub last_join_at: Option<String>,
    /// Whether the invite is among the guild's current invites as the invites table has them.
    pub live: bool,
    /// Discord's `uses` at the last snapshot (`null` when not live).
    pub uses: Option<u64>,
    /// 0 = unlimited (`null` when not live).
    pub max_uses: Option<u64>,
    pub created_at: Option<String>,
    /// `null` when it never expires or is not live.
    pub expires_at: Option<String>,
}

/// An inviter's codes.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviterCodes {
    pub inviter_id: String,
    /// Sorted by code.
    pub codes: Vec<InviterCode>,
}

/// An inviter's codes: each code joins were credited to, with its use counts from the join
/// rows, and each current invite of theirs with Discord's uses, max uses and expiry (from the
/// invites table, as the latest snapshot or invite event left it).
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/inviters/{inviter_id}/codes",
    tag = "dashboard",
    params(
        InviterParams,
    ),
    responses((status = 200, description = "the inviter's codes", body = InviterCodes), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id, inviter_id))]
pub async fn inviter_codes(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.read(&guild)?;
    let inviter_id = path_snowflake(&req, "inviter_id")?;
    let mut conn = state.connection().await?;
    let codes = queries::inviter_codes(&mut conn, guild.key(), inviter_id).await?;
    Ok(HttpResponse::Ok().json(InviterCodes {
        inviter_id: inviter_id.to_string(),
        codes: codes
            .into_iter()
            .map(|c| InviterCode {
                code: c.code.into_string(),
                joins: c.uses.joins,
                counted: c.uses.counted,
                fake: c.uses.fake,
                leaves: c.uses.leaves,
                first_join_at: c.uses.first_join_at.map(timestamp),
                last_join_at: c.uses.last_join_at.map(timestamp),
                live: c.live.is_some(),
                uses: c.live.as_ref().map(|l| l.uses.unsigned_abs()),
                max_uses: c.live.as_ref().map(|l| l.max_uses.unsigned_abs()),
                created_at: c.live.as_ref().and_then(|l| l.created_at).map(timestamp),
                expires_at: c.live.as_ref().and_then(|l| l.expires_at).map(timestamp),
            })
            .collect(),
    }))
}

/// Joins of one UTC day.
#[derive(Debug, Serialize, ToSchema)]
pub struct Day {
    #[schema(example = "2026-11-21")]
    pub date: String,
    pub invite: i64,
    pub vanity: i64,
    pub ambiguous: i64,
    pub unknown: i64,
    /// Joins of the day with a fake reason.
    pub fake: i64,
    /// Real joins of the day whose member has left since.
    pub leaves: i64,
}

/// Whether tracking works in this guild.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// The worker has processed events of this guild.
    pub tracked: bool,
    /// The bot lacks MANAGE_GUILD: invite uses cannot be read, joins become unknown.
    pub missing_permissions: bool,
    /// When the guild's invites were last read.
    pub last_snapshot_at: Option<String>,
    /// Joins still waiting for evidence (they become attributed, ambiguous or unknown soon).
    pub pending_joins: i32,
    /// When the worker last saved the guild's state.
    pub updated_at: Option<String>,
    /// Joins in the summary's window that could not be explained.
    pub unknown_joins: i64,
    /// The latest time in the last 24 hours Discord refused one of the bot's join or leave
    /// messages (`missing_permissions`: the bot may not post in the channel;
    /// `unknown_channel`; `refused`), or `null`.
    pub messages_refused: Option<MessageRefusal>,
    /// How Discord's member search answered about this guild's joins
    /// (`ATTRIBUTION_DISCORD_JOIN_SOURCE`), or `null` when it was never asked.
    pub discord_join_source: Option<JoinSourceHealth>,
}

/// Discord's reported join sources in a guild, judged against the invite counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct JoinSourceHealth {
    /// Members Discord reported on.
    pub reports: i64,
    /// Joins the counters left open that Discord's report decided.
    pub credited: i64,
    /// Joins the counters decided the way Discord reports.
    pub confirmed: i64,
    /// Reports the counters contradict (the counters' decision stands).
    pub disagreements: i64,
    /// The HTTP status of the last refusal (403: the bot lacks Manage Server; 404), until a
    /// later search succeeds: the search is off for the guild meanwhile.
    pub refused_status: Option<i32>,
    pub refused_detail: Option<String>,
    pub refused_at: Option<String>,
}

impl From<queries::JoinSourceHealth> for JoinSourceHealth {
    fn from(h: queries::JoinSourceHealth) -> Self {
        Self {
            reports: h.reports,
            credited: h.credited,
            confirmed: h.confirmed,
            disagreements: h.disagreements,
            refused_status: h.refused_status,
            refused_detail: h.refused_detail,
            refused_at: h.refused_at.map(timestamp),
        }
    }
}

/// A join or leave message Discord refused.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageRefusal {
    pub channel_id: String,
    /// `missing_permissions`, `unknown_channel` or `refused`.
    pub outcome: String,
    /// Discord's answer.
    pub detail: Option<String>,
    pub at: String,
}

/// A guild's activity and tracking health.
#[derive(Debug, Serialize, ToSchema)]
pub struct GuildSummary {
    /// Every UTC day of the window, oldest first.
    pub days: Vec<Day>,
    /// All-time counts of the guild (sums of the inviters' counters; cleared excluded).
    pub totals: Counts,
    /// Inviters with any count.
    pub inviters: i64,
    pub health: Health,
}

/// A guild summary for charts: joins per UTC day by source over the last `days` days (every
/// join, cleared or not), all-time totals, and tracking health.
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/summary",
    tag = "dashboard",
    params(
        GuildParams,
        SummaryQuery,
    ),
    responses((status = 200, description = "the summary", body = GuildSummary), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn summary(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.read(&guild)?;
    let params = Params::from_query(&req)?;
    let days = params.integer("days", 1, 90, 30)?;
    let now = Utc::now();
    let since = now - Duration::days(days - 1);
    let mut conn = state.connection().await?;
    let s = queries::guild_summary(&mut conn, guild.key(), since, now).await?;
    let refusal =
        invitrack_storage::posts::latest_refusal(&mut conn, guild.key(), now - Duration::days(1))
            .await?;
    let unknown_joins = s.days.iter().map(|d| d.unknown).sum();
    Ok(HttpResponse::Ok().json(GuildSummary {
        days: s
            .days
            .into_iter()
            .map(|d| Day {
                date: d.day.map(|d| d.to_string()).unwrap_or_default(),
                invite: d.invite,
                vanity: d.vanity,
                ambiguous: d.ambiguous,
                unknown: d.unknown,
                fake: d.fake,
                leaves: d.leaves,
            })
            .collect(),
        totals: s.totals.into(),
        inviters: s.inviters,
        health: Health {
            tracked: s.health.tracked,
            missing_permissions: s.health.missing_permissions,
            last_snapshot_at: s.health.last_snapshot_at.map(timestamp),
            pending_joins: s.health.pending_joins,
            updated_at: s.health.updated_at.map(timestamp),
            unknown_joins,
            messages_refused: refusal.map(|r| MessageRefusal {
                channel_id: r.channel_id.get().to_string(),
                outcome: r.outcome,
                detail: r.detail,
                at: timestamp(r.at),
            }),
            discord_join_source: s.health.discord_join_source.map(Into::into),
        },
    }))
}
