//! Per-guild attribution: observations in, decisions out. No clock, no I/O: the caller passes
//! `now`, so tests replay any history exactly.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::matching::{self, Group, ReadOrder};
use invitrack_model::{InviteCode, Millis, UnknownReason, UserId};

use crate::model::{
    Decision, InviteInfo, Observation, SnapshotFailure, Target, VanityInfo, Verdict,
};

/// Timing assumptions. They bound how long a join waits for evidence and how wide the window of
/// each unit of evidence is; too small ones risk wrong credit, too large ones lose recall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Difference allowed between Discord's `joined_at` and the moment its invite counter moves,
    /// plus the clock difference between Discord and ingest. A join is settled by a snapshot
    /// requested more than this after it, so ingest waits at least this long after `joined_at`
    /// before reading the invites (`INGEST_SETTLE_MS`).
    pub clock_skew_ms: Millis,
    /// Longest time between a join and ingest observing its GUILD_MEMBER_ADD, assumed while
    /// ingest has not measured it (see [`DeliveryClock::delivery_lag`]).
    pub gateway_lag_ms: Millis,
    /// The least gateway-lag allowance, however short the measured lag: a join delayed by a
    /// spike the measurement has not seen yet is still waited for up to this long.
    #[serde(default = "default_min_gateway_lag_ms")]
    pub min_gateway_lag_ms: Millis,
    /// A join still undecided after this long is given up as unknown. Uses no join explains
    /// (joins the gateway never delivered) are kept this long for those joins to be found.
    pub max_pending_ms: Millis,
}

fn default_min_gateway_lag_ms() -> Millis {
    250
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            clock_skew_ms: 50,
            gateway_lag_ms: 2_000,
            min_gateway_lag_ms: default_min_gateway_lag_ms(),
            max_pending_ms: 120_000,
        }
    }
}

impl EngineConfig {
    /// How long after a moment every GUILD_MEMBER_ADD of a join before it has been observed:
    /// the measured lag with half again as much headroom (a quantile of the recent past, not a
    /// bound), never under `min_gateway_lag_ms`; `gateway_lag_ms` while nothing was measured.
    /// Never beyond `max_pending_ms`, after which a join is given up anyway.
    #[must_use]
    pub fn gateway_lag_allowance(&self, delivery_lag: Option<Millis>) -> Millis {
        let allowance = delivery_lag.map_or(self.gateway_lag_ms, |lag| {
            lag.saturating_add(lag / 2).max(self.min_gateway_lag_ms)
        });
        allowance.clamp(0, self.max_pending_ms.max(0))
    }
}

/// How far time has passed for a guild: its shard's clock from ingest. Every GUILD_MEMBER_ADD
/// of the shard that ingest observed before `now` has been given to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryClock {
    pub now: Millis,
    /// The shard's measured delivery lag (ingest's receipt minus `joined_at`, a high quantile of
    /// its recent joins), when ingest measured it.
    pub delivery_lag: Option<Millis>,
}

/// Steps allowed to enumerate the explanations of one group in read order; larger groups (raids)
/// keep the independent-window answer.
const ORDERED_SEARCH_BUDGET: usize = 50_000;

/// Uses one counter may reveal in one read. A larger jump (a corrupt answer, a counter we lost
/// track of) is kept only up to this: dropping units only removes evidence, so the engine can
/// say less but never something wrong, and a bad number cannot exhaust memory.
const MAX_UNITS_PER_READ: u64 = 5_000;

/// How long a vanished code is remembered so a late INVITE_CREATE cannot bring it back.
const GONE_MEMORY_MS: Millis = 3_600_000;

/// How long after asking for the members who joined in a window the engine asks again while
/// their uses stay unexplained: Discord answers one request for all of a guild's members per
/// 30 seconds (docs/attribution.md#joins-made-while-away).
pub const MISSED_JOINS_RETRY_MS: Millis = 30_000;

/// The joins to look for in the member list: every member whose `joined_at` lies in
/// `from..=to` and whose join the engine has not seen may explain a use nobody explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissedJoins {
    pub from: Millis,
    pub to: Millis,
}

/// The attribution state of one guild. Serializable so a worker can persist it beside the
/// decisions it produced and pick it up again after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuildAttribution {
    invites: BTreeMap<InviteCode, TrackedInvite>,
    vanity: Option<TrackedVanity>,
    /// `received_at` of the first complete snapshot: joins before it have no baseline.
    baseline_at: Option<Millis>,
    last_requested_at: Option<Millis>,
    /// `received_at` of the latest snapshot: a fetch requested after it read after it.
    #[serde(default)]
    last_received_at: Option<Millis>,
    /// Invite-list reads known to be ordered so far (see `Unit::read`).
    #[serde(default)]
    ordered_reads: u64,
    missing_permissions: bool,
    /// Joins up to this time were decided without their evidence; evidence whose window reaches
    /// back to them must not be spent on other joins.
    tainted_until: Option<Millis>,
    pending: Vec<PendingJoin>,
    units: Vec<Unit>,
    gone: BTreeMap<InviteCode, Millis>,
    /// The latest clock's time: how far time has passed for decisions.
    now: Millis,
    /// The gateway-lag allowance that came with `now`; `None` before the first clock.
    #[serde(default)]
    gateway_lag: Option<Millis>,
    /// The guild became available again at this time (GUILD_CREATE) after the bot could not
    /// see it: joins before it, since the reads before, may never have been delivered. Cleared
    /// by the member list's answer, or by a read after it that shows no use.
    #[serde(default)]
    unwatched_until: Option<Millis>,
    /// The window of the uses held for joins the gateway may not have delivered, as of the last
    /// resolve.
    #[serde(default)]
    held: Option<MissedJoins>,
    /// When the members who joined in `held` were last asked for.
    #[serde(default)]
    missed_joins_asked_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TrackedInvite {
    info: InviteInfo,
    /// `requested_at` of the snapshot that last showed it; `None` when known only from
    /// INVITE_CREATE (its uses were 0 at `info.created_at`).
    read_at: Option<Millis>,
}

impl TrackedInvite {
    /// Uses not yet seen happened after this time.
    fn evidence_from(&self) -> Millis {
        self.read_at.unwrap_or(self.info.created_at)
    }

    fn target(&self) -> Target {
        Target::Invite {
            code: self.info.code.clone(),
            inviter_id: self.info.inviter_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TrackedVanity {
    code: Option<InviteCode>,
    uses: u64,
    read_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PendingJoin {
    user_id: UserId,
    joined_at: Millis,
    /// Found in the member list after the bot was away, not delivered by the gateway.
    #[serde(default)]
    found_late: bool,
}

/// One certain use of a counter, made by some join between `from` and `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Unit {
    target: Target,
    from: Millis,
    to: Millis,
    /// The invite-list read that first counted this use, numbered in read order, when that
    /// read was requested after every earlier answer (so it read after them all). `None` for
    /// uses revealed otherwise (vanity counter, INVITE_DELETE, overlapping fetches).
    #[serde(default)]
    read: Option<u64>,
}

impl GuildAttribution {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Joins still waiting for evidence.
    #[must_use]
    pub fn pending_joins(&self) -> usize {
        self.pending.len()
    }

    /// Whether `tick` may still produce decisions.
    #[must_use]
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.units.is_empty()
    }

    /// The last time the guild's invites were read, if ever.
    #[must_use]
    pub fn last_snapshot_at(&self) -> Option<Millis> {
        self.last_requested_at
    }

    /// Whether the last snapshot failed for lack of MANAGE_GUILD.
    #[must_use]
    pub fn missing_permissions(&self) -> bool {
        self.missing_permissions
    }

    /// Whether the counters watched `target` over a join at `joined_at`: it was known before
    /// the join, after the guild's first read, and is still read now. A use of it by that join
    /// would then have been evidence the engine saw.
    pub(crate) fn counters_cover(
        &self,
        config: &EngineConfig,
        target: &Target,
        joined_at: Millis,
    ) -> bool {
        let watched_from = match target {
            Target::Invite { code, .. } => self.invites.get(code).map(|t| t.info.created_at),
            Target::Vanity { code } => self
                .vanity
                .as_ref()
                .filter(|v| v.code.as_ref() == Some(code))
                .and(self.baseline_at),
        };
        let untainted = self.tainted_until.is_none_or(|t| t < joined_at);
        match (watched_from, self.baseline_at) {
            (Some(from), Some(baseline)) => {
                untainted && from.max(baseline) + config.clock_skew_ms < joined_at
            }
            _ => false,
        }
    }

    /// The inviter of a code the guild still has, as the engine credits it.
    pub(crate) fn inviter_of(&self, code: &InviteCode) -> Option<UserId> {
        self.invites.get(code).and_then(|t| t.info.inviter_id)
    }

    /// Applies one observation, made at `observed_at`, and returns the joins it allowed to
    /// decide. Time does not pass for decisions with observations (a snapshot answered while the
    /// shard reconnects, or a join it replays, is no proof that the shard's other joins were
    /// delivered): only with [`GuildAttribution::tick`].
    pub fn observe(
        &mut self,
        config: &EngineConfig,
        observation: Observation,
        observed_at: Millis,
    ) -> Vec<Decision> {
        let mut decisions = Vec::new();
        match observation {
            Observation::MemberJoined { user_id, joined_at } => {
                self.member_joined(config, user_id, joined_at, false, &mut decisions);
            }
            // All at once: a group whose uses outnumber its joins is decided as soon as they
            // no longer do, so the members of one answer must all be in before that.
            Observation::JoinsFoundLate { window, joins } => {
                for (user_id, joined_at) in joins {
                    self.member_joined(config, user_id, joined_at, true, &mut decisions);
                }
                if self
                    .unwatched_until
                    .is_some_and(|until| until <= window.to + config.clock_skew_ms)
                {
                    self.unwatched_until = None;
                }
            }
            Observation::GuildAvailable { at } => {
                if self.baseline_at.is_some() {
                    self.unwatched_until = Some(self.unwatched_until.map_or(at, |u| u.max(at)));
                }
            }
            Observation::InviteCreated { invite } => self.invite_created(invite),
            Observation::InviteDeleted { code } => {
                self.invite_deleted(config, code, observed_at.max(self.now));
            }
            Observation::Snapshot {
                requested_at,
                received_at,
                invites,
                vanity,
            } => self.snapshot(
                config,
                requested_at,
                received_at,
                invites,
                vanity,
                &mut decisions,
            ),
            Observation::SnapshotFailed {
                requested_at,
                failure,
            } => self.snapshot_failed(config, requested_at, failure, &mut decisions),
        }
        self.resolve(config, &mut decisions);
        decisions
    }

    fn member_joined(
        &mut self,
        config: &EngineConfig,
        user_id: UserId,
        joined_at: Millis,
        found_late: bool,
        decisions: &mut Vec<Decision>,
    ) {
        let join = PendingJoin {
            user_id,
            joined_at,
            found_late,
        };
        if self.pending.iter().any(|p| p.user_id == user_id) {
            // A repeated GUILD_MEMBER_ADD (gateway replay) of a join still pending.
        } else if self.missing_permissions {
            // No snapshot will be taken until permissions change.
            self.give_up(
                config,
                vec![join],
                UnknownReason::MissingPermissions,
                decisions,
            );
        } else {
            self.pending.push(join);
        }
    }

    /// Pulls every time the state holds back to `latest` at most; whether any was later.
    ///
    /// A time ahead of the truth (a forged clock, a host whose clock stepped forward, saved by
    /// a version that did not check) makes every later join look as if its evidence were long
    /// overdue, so it is given up unknown; the caller clamps a stored state to its own clock
    /// plus an allowance for skew when it loads it.
    pub fn clamp_times(&mut self, latest: Millis) -> bool {
        let mut clamped = false;
        let mut clamp = |at: &mut Millis| {
            if *at > latest {
                *at = latest;
                clamped = true;
            }
        };
        clamp(&mut self.now);
        for at in [
            &mut self.baseline_at,
            &mut self.last_requested_at,
            &mut self.last_received_at,
            &mut self.tainted_until,
            &mut self.unwatched_until,
        ]
        .into_iter()
        .flatten()
        {
            clamp(at);
        }
        for invite in self.invites.values_mut() {
            clamp(&mut invite.info.created_at);
            if let Some(at) = &mut invite.read_at {
                clamp(at);
            }
        }
        if let Some(vanity) = &mut self.vanity {
            clamp(&mut vanity.read_at);
        }
        for join in &mut self.pending {
            clamp(&mut join.joined_at);
        }
        for unit in &mut self.units {
            clamp(&mut unit.from);
            clamp(&mut unit.to);
        }
        for at in self.gone.values_mut() {
            clamp(at);
        }
        clamped
    }

    /// Lets time pass up to the guild's shard's clock: decides joins whose evidence can no
    /// longer change.
    pub fn tick(&mut self, config: &EngineConfig, clock: DeliveryClock) -> Vec<Decision> {
        if clock.now >= self.now {
            self.now = clock.now;
            self.gateway_lag = Some(config.gateway_lag_allowance(clock.delivery_lag));
        }
        let mut decisions = Vec::new();
        self.resolve(config, &mut decisions);
        decisions
    }

    fn invite_created(&mut self, invite: InviteInfo) {
        // A late INVITE_CREATE must not reset what a snapshot already showed, nor revive a code
        // a snapshot showed gone.
        if self.invites.contains_key(&invite.code) || self.gone.contains_key(&invite.code) {
            return;
        }
        let info = InviteInfo { uses: 0, ..invite };
        self.invites.insert(
            info.code.clone(),
            TrackedInvite {
                info,
                read_at: None,
            },
        );
    }

    fn invite_deleted(&mut self, config: &EngineConfig, code: InviteCode, deleted_by: Millis) {
        let Some(invite) = self.invites.remove(&code) else {
            return;
        };
        self.gone.insert(code, deleted_by);
        if consumed_last_use(&invite, deleted_by + config.clock_skew_ms) {
            self.add_unit(invite.target(), invite.evidence_from(), deleted_by, None);
        }
    }

    fn snapshot(
        &mut self,
        config: &EngineConfig,
        requested_at: Millis,
        received_at: Millis,
        invites: Vec<InviteInfo>,
        vanity: Option<VanityInfo>,
        decisions: &mut Vec<Decision>,
    ) {
        self.missing_permissions = false;
        let previous_request = self.last_requested_at;
        self.last_requested_at =
            Some(previous_request.map_or(requested_at, |p| p.max(requested_at)));
        let read = match self.last_received_at {
            Some(previous) if requested_at < previous => None,
            _ => {
                self.ordered_reads += 1;
                Some(self.ordered_reads)
            }
        };
        self.last_received_at = Some(
            self.last_received_at
                .map_or(received_at, |p| p.max(received_at)),
        );
        self.gone.retain(|_, at| *at + GONE_MEMORY_MS > received_at);

        let Some(previous_request) = previous_request.filter(|_| self.baseline_at.is_some()) else {
            // First complete view of the guild: everything is baseline.
            self.baseline_at = Some(received_at);
            self.invites = invites
                .into_iter()
                .map(|info| {
                    (
                        info.code.clone(),
                        TrackedInvite {
                            info,
                            read_at: Some(requested_at),
                        },
                    )
                })
                .collect();
            self.vanity = vanity.map(|v| TrackedVanity {
                code: v.code,
                uses: v.uses,
                read_at: requested_at,
            });
            self.decide_before_baseline(config, decisions);
            return;
        };

        let mut seen = BTreeSet::new();
        for info in invites {
            // A code already seen deleted may still show in an answer read before the delete;
            // its last use was accounted for then.
            if self.gone.contains_key(&info.code) {
                continue;
            }
            seen.insert(info.code.clone());
            match self.invites.get_mut(&info.code) {
                Some(tracked) => {
                    let from = tracked.evidence_from();
                    let gained = info.uses.saturating_sub(tracked.info.uses);
                    tracked.info = info;
                    tracked.read_at = Some(requested_at);
                    let target = tracked.target();
                    for _ in 0..gained.min(MAX_UNITS_PER_READ) {
                        self.add_unit(target.clone(), from, received_at, read);
                    }
                }
                None => {
                    // Created after the previous snapshot was requested: it started at 0 uses.
                    // Created earlier yet missing from that snapshot: its past is unknown.
                    let fresh = info.created_at >= previous_request;
                    let tracked = TrackedInvite {
                        info,
                        read_at: Some(requested_at),
                    };
                    if fresh {
                        let target = tracked.target();
                        for _ in 0..tracked.info.uses.min(MAX_UNITS_PER_READ) {
                            self.add_unit(
                                target.clone(),
                                tracked.info.created_at,
                                received_at,
                                read,
                            );
                        }
                    }
                    self.invites.insert(tracked.info.code.clone(), tracked);
                }
            }
        }

        let vanished: Vec<InviteCode> = self
            .invites
            .iter()
            .filter(|(code, t)| {
                // Known only from INVITE_CREATE and perhaps created after this answer was
                // produced: its absence proves nothing yet.
                let maybe_too_new =
                    t.read_at.is_none() && t.info.created_at > requested_at - config.clock_skew_ms;
                !seen.contains(*code) && !maybe_too_new
            })
            .map(|(code, _)| code.clone())
            .collect();
        for code in vanished {
            if let Some(invite) = self.invites.remove(&code) {
                self.gone.insert(code, received_at);
                if consumed_last_use(&invite, received_at + config.clock_skew_ms) {
                    // Known only from INVITE_CREATE, it may have been used up before the
                    // previous read: this read is not known to be the first without it.
                    let first_read = invite.read_at.and(read);
                    self.add_unit(
                        invite.target(),
                        invite.evidence_from(),
                        received_at,
                        first_read,
                    );
                }
            }
        }

        if let Some(v) = vanity {
            if let Some(previous) = &self.vanity
                && let (Some(code), true) = (&v.code, previous.code == v.code)
            {
                let target = Target::Vanity { code: code.clone() };
                let from = previous.read_at;
                for _ in 0..v.uses.saturating_sub(previous.uses).min(MAX_UNITS_PER_READ) {
                    // The vanity URL is a request of its own, read at another instant.
                    self.add_unit(target.clone(), from, received_at, None);
                }
            }
            self.vanity = Some(TrackedVanity {
                code: v.code,
                uses: v.uses,
                read_at: requested_at,
            });
        }
    }

    fn snapshot_failed(
        &mut self,
        config: &EngineConfig,
        requested_at: Millis,
        failure: SnapshotFailure,
        decisions: &mut Vec<Decision>,
    ) {
        if failure != SnapshotFailure::MissingPermissions {
            // Transient: the next snapshot will show the same counters.
            return;
        }
        self.missing_permissions = true;
        // Joins this request should have covered cannot be explained until permissions return,
        // which may take days: decide them now.
        let (hopeless, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|j| j.joined_at + config.clock_skew_ms <= requested_at);
        self.pending = keep;
        self.give_up(
            config,
            hopeless,
            UnknownReason::MissingPermissions,
            decisions,
        );
    }

    fn decide_before_baseline(&mut self, config: &EngineConfig, decisions: &mut Vec<Decision>) {
        let Some(baseline_at) = self.baseline_at else {
            return;
        };
        let (hopeless, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|j| j.joined_at <= baseline_at + config.clock_skew_ms);
        self.pending = keep;
        self.give_up(config, hopeless, UnknownReason::NoSnapshot, decisions);
    }

    /// Decides joins as unknown without their evidence, and makes sure that evidence (already
    /// seen or still to come) is never spent on another join.
    fn give_up(
        &mut self,
        config: &EngineConfig,
        joins: Vec<PendingJoin>,
        reason: UnknownReason,
        decisions: &mut Vec<Decision>,
    ) {
        for join in joins {
            let reach = join.joined_at + config.clock_skew_ms;
            self.tainted_until = Some(self.tainted_until.map_or(reach, |t| t.max(reach)));
            self.units
                .retain(|u| !unit_admits(config, u, join.joined_at));
            decisions.push(Decision {
                user_id: join.user_id,
                joined_at: join.joined_at,
                verdict: Verdict::Unknown {
                    reason: join.unknown_reason(reason),
                },
            });
        }
    }

    fn add_unit(&mut self, target: Target, from: Millis, to: Millis, read: Option<u64>) {
        if self.tainted_until.is_some_and(|t| from <= t) {
            return;
        }
        self.units.push(Unit {
            target,
            from,
            to,
            read,
        });
    }

    /// The earliest `from` any unit found in the future can have: counters read by the last
    /// snapshot only show later uses; invites never read yet count from their creation.
    fn future_evidence_floor(&self) -> Millis {
        let mut floor = self.last_requested_at.unwrap_or(Millis::MIN);
        for invite in self.invites.values() {
            floor = floor.min(invite.evidence_from());
        }
        if let Some(v) = &self.vanity {
            floor = floor.min(v.read_at);
        }
        floor
    }

    /// A unit whose window reaches back to when the guild was not watched: a join the gateway
    /// never delivered may be the one that made it.
    fn maybe_unwatched(&self, unit: &Unit) -> bool {
        self.unwatched_until.is_some_and(|until| unit.from < until)
    }

    fn resolve(&mut self, config: &EngineConfig, decisions: &mut Vec<Decision>) {
        // Read since the guild came back, and no use reaches back to the unwatched time: no
        // join can be missing.
        if let Some(until) = self.unwatched_until
            && self.last_requested_at.is_some_and(|read| read >= until)
            && !self.units.iter().any(|u| self.maybe_unwatched(u))
        {
            self.unwatched_until = None;
        }
        if self.pending.is_empty() && self.units.is_empty() {
            self.held = None;
            self.missed_joins_asked_at = None;
            return;
        }
        let now = self.now;
        if self.baseline_at.is_none() {
            let expired: Vec<PendingJoin> = self
                .pending
                .iter()
                .filter(|j| j.joined_at + config.max_pending_ms <= now)
                .cloned()
                .collect();
            self.pending
                .retain(|j| j.joined_at + config.max_pending_ms > now);
            let reason = if self.missing_permissions {
                UnknownReason::MissingPermissions
            } else {
                UnknownReason::NoSnapshot
            };
            self.give_up(config, expired, reason, decisions);
            return;
        }

        let floor = self.future_evidence_floor();
        let gateway_lag = self.gateway_lag.unwrap_or(config.gateway_lag_ms);
        let components = self.components(config);
        let mut decided_joins = BTreeSet::new();
        let mut spent_units = BTreeSet::new();
        let mut expired = Vec::new();
        let mut held: Option<MissedJoins> = None;
        for (joins, units) in components {
            let joins_settled = joins
                .iter()
                .all(|&j| self.pending[j].joined_at + config.clock_skew_ms < floor);
            let units_closed = units
                .iter()
                .all(|&u| self.units[u].to + config.clock_skew_ms + gateway_lag < now);
            if joins_settled && units_closed {
                // Joins the gateway may never have delivered: more uses than joins, or uses
                // reaching back to when the guild was not watched. The uses are kept, and the
                // component's joins wait with them, until those joins are looked for in the
                // member list; after `max_pending_ms` nobody is credited from them.
                let missing = units.len() > joins.len()
                    || units.iter().any(|&u| self.maybe_unwatched(&self.units[u]));
                let last_use = units.iter().map(|&u| self.units[u].to).max();
                let waiting = last_use.is_some_and(|to| to + config.max_pending_ms > now);
                if missing && waiting {
                    for &u in &units {
                        let unit = &self.units[u];
                        let window = MissedJoins {
                            from: unit.from - config.clock_skew_ms,
                            to: unit.to + config.clock_skew_ms,
                        };
                        held = Some(held.map_or(window, |w| MissedJoins {
                            from: w.from.min(window.from),
                            to: w.to.max(window.to),
                        }));
                    }
                    continue;
                }
                let credit = !missing;
                decisions.extend(self.decide_component(config, &joins, &units, credit));
                decided_joins.extend(joins);
                spent_units.extend(units);
            } else {
                expired.extend(
                    joins
                        .into_iter()
                        .filter(|&j| self.pending[j].joined_at + config.max_pending_ms <= now),
                );
            }
        }
        let mut index = 0;
        self.units.retain(|_| {
            index += 1;
            !spent_units.contains(&(index - 1))
        });
        let expired_joins: Vec<PendingJoin> =
            expired.iter().map(|&j| self.pending[j].clone()).collect();
        let mut index = 0;
        self.pending.retain(|_| {
            index += 1;
            let i = index - 1;
            !decided_joins.contains(&i) && !expired.contains(&i)
        });
        self.give_up(config, expired_joins, UnknownReason::NoSnapshot, decisions);
        decisions.sort_by_key(|d| (d.joined_at, d.user_id));
        if held.is_none() {
            self.missed_joins_asked_at = None;
        }
        self.held = held;
    }

    /// The joins to look for in the member list, when uses no join explains are held and they
    /// were not asked for in the last [`MISSED_JOINS_RETRY_MS`]; the caller asks for them now.
    /// The members found are given back together as [`Observation::JoinsFoundLate`].
    pub fn missed_joins_wanted(&mut self) -> Option<MissedJoins> {
        let window = self.held?;
        if self
            .missed_joins_asked_at
            .is_some_and(|asked| asked + MISSED_JOINS_RETRY_MS > self.now)
        {
            return None;
        }
        self.missed_joins_asked_at = Some(self.now);
        Some(window)
    }

    /// Groups joins and units that could explain each other, directly or through others.
    fn components(&self, config: &EngineConfig) -> Vec<(Vec<usize>, Vec<usize>)> {
        let joins = self.pending.len();
        let mut parent: Vec<usize> = (0..joins + self.units.len()).collect();
        fn find(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        for (u, unit) in self.units.iter().enumerate() {
            for (j, join) in self.pending.iter().enumerate() {
                if unit_admits(config, unit, join.joined_at) {
                    let (a, b) = (find(&mut parent, j), find(&mut parent, joins + u));
                    parent[a] = b;
                }
            }
        }
        let mut groups: BTreeMap<usize, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
        for node in 0..parent.len() {
            let root = find(&mut parent, node);
            let entry = groups.entry(root).or_default();
            if node < joins {
                entry.0.push(node);
            } else {
                entry.1.push(node - joins);
            }
        }
        groups.into_values().collect()
    }

    /// Decides a component's joins; with `credit` false (joins may be missing from it) they
    /// are credited nobody, their candidates listed.
    fn decide_component(
        &self,
        config: &EngineConfig,
        joins: &[usize],
        units: &[usize],
        credit: bool,
    ) -> Vec<Decision> {
        let mut targets: Vec<Target> = Vec::new();
        let mut unit_targets = Vec::with_capacity(units.len());
        for &u in units {
            let target = &self.units[u].target;
            let index = targets.iter().position(|t| t == target).unwrap_or_else(|| {
                targets.push(target.clone());
                targets.len() - 1
            });
            unit_targets.push(index);
        }
        let unit_joins: Vec<Vec<usize>> = units
            .iter()
            .map(|&u| {
                joins
                    .iter()
                    .enumerate()
                    .filter(|(_, j)| {
                        unit_admits(config, &self.units[u], self.pending[**j].joined_at)
                    })
                    .map(|(local, _)| local)
                    .collect()
            })
            .collect();
        let group = Group {
            joins: joins.len(),
            unit_targets,
            unit_joins,
        };
        let order = ReadOrder {
            join_times: joins.iter().map(|&j| self.pending[j].joined_at).collect(),
            unit_reads: units.iter().map(|&u| self.units[u].read).collect(),
            certain_gap: 2 * config.clock_skew_ms + 1,
        };
        // Read order can only narrow what the matching allows, so when its enumeration
        // answers, the matching's answer is not needed; it is the fallback for groups too
        // large to enumerate (and says `None` itself when nothing is consistent).
        let reads: BTreeSet<u64> = order.unit_reads.iter().flatten().copied().collect();
        let evidence = if !credit {
            None
        } else if reads.len() < 2 {
            matching::analyse(&group)
        } else {
            matching::analyse_ordered(&group, &order, ORDERED_SEARCH_BUDGET)
                .or_else(|| matching::analyse(&group))
        };
        joins
            .iter()
            .enumerate()
            .map(|(local, &j)| {
                let join = &self.pending[j];
                let verdict = match &evidence {
                    Some(evidence) => verdict_from(&evidence[local], &targets),
                    // No explanation fits every unit, or joins may be missing: some join was
                    // never seen. Credit nobody.
                    None => {
                        let candidates: BTreeSet<InviteCode> = group
                            .unit_joins
                            .iter()
                            .zip(&group.unit_targets)
                            .filter(|(js, _)| js.contains(&local))
                            .map(|(_, t)| targets[*t].code().clone())
                            .collect();
                        if candidates.is_empty() {
                            Verdict::Unknown {
                                reason: UnknownReason::Untracked,
                            }
                        } else {
                            Verdict::Ambiguous {
                                candidates: candidates.into_iter().collect(),
                                inviter_id: None,
                            }
                        }
                    }
                };
                let verdict = match verdict {
                    Verdict::Unknown { reason } => Verdict::Unknown {
                        reason: join.unknown_reason(reason),
                    },
                    other => other,
                };
                Decision {
                    user_id: join.user_id,
                    joined_at: join.joined_at,
                    verdict,
                }
            })
            .collect()
    }
}

impl PendingJoin {
    /// Why the join is unknown: a join found late that no counter explains is one the bot
    /// cannot say more about than that it happened while it was away.
    fn unknown_reason(&self, reason: UnknownReason) -> UnknownReason {
        match reason {
            UnknownReason::Untracked | UnknownReason::NoSnapshot if self.found_late => {
                UnknownReason::JoinedWhileOffline
            }
            other => other,
        }
    }
}

fn verdict_from(evidence: &matching::JoinEvidence, targets: &[Target]) -> Verdict {
    let possible: Vec<&Target> = evidence
        .possible_targets
        .iter()
        .map(|&t| &targets[t])
        .collect();
    match possible.as_slice() {
        [] => Verdict::Unknown {
            reason: UnknownReason::Untracked,
        },
        [only] if !evidence.may_be_untracked => match only {
            Target::Invite { code, inviter_id } => Verdict::Invite {
                code: code.clone(),
                inviter_id: *inviter_id,
            },
            Target::Vanity { code } => Verdict::Vanity { code: code.clone() },
        },
        several => {
            let first_inviter = several[0].inviter_id();
            let one_inviter = !evidence.may_be_untracked
                && first_inviter.is_some()
                && several.iter().all(|t| t.inviter_id() == first_inviter);
            let mut candidates: Vec<InviteCode> =
                several.iter().map(|t| t.code().clone()).collect();
            candidates.sort();
            candidates.dedup();
            Verdict::Ambiguous {
                candidates,
                inviter_id: if one_inviter { first_inviter } else { None },
            }
        }
    }
}

/// Could a join at `joined_at` have made this use?
fn unit_admits(config: &EngineConfig, unit: &Unit, joined_at: Millis) -> bool {
    unit.from - config.clock_skew_ms <= joined_at && joined_at <= unit.to + config.clock_skew_ms
}

/// An invite that disappeared when exactly one use was left, and had not expired, used it up.
fn consumed_last_use(invite: &TrackedInvite, latest: Millis) -> bool {
    let info = &invite.info;
    let expired = info.expires_at.is_some_and(|e| e <= latest);
    info.max_uses > 0 && info.uses.checked_add(1) == Some(info.max_uses) && !expired
}
