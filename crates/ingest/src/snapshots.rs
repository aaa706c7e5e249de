//! Invite snapshots: when a guild's invites are read, and how often.
//!
//! Per guild at most one fetch is scheduled or in flight and at most one is queued behind it;
//! the queued one covers every join received meanwhile (`docs/attribution.md#coalesced-snapshots`). A join received while
//! the fetch is only scheduled (settling, or waiting for the route's reset) is covered by that
//! fetch, which waits for it to settle: queueing another behind it would spend one of the
//! route's few requests (5 per 5 s per guild) on a read that settles nothing. One dispatcher task
//! hands guilds whose snapshot is due to short-lived fetch tasks, each request under the one
//! request budget of the bot, so a start-up with thousands of guilds keeps only a guild id per
//! waiting guild, not a task. Every request goes through the bot's [`DiscordGate`] (one budget,
//! a pause after a 429, a stop after a 401 or too many rejections). A 5xx, unreadable or 429
//! answer is retried with backoff until it succeeds. A guild that answers 403 is not asked
//! again until its permissions may have changed or `forbidden_retry` has passed, doubled at
//! each 403 in a row (up to a day). Reads for joins go before the start-up reads still
//! waiting: at start-up every guild's invites are read once, which takes minutes for thousands of
//! guilds, and a guild where someone joins meanwhile is read at once instead of in its turn.

use invitrack_model::{BotId, GuildId};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use invitrack_bus::proto::{self, guild_event::Kind, snapshot_failed::Reason};
use invitrack_discord::{DiscordGate, GateError};
use invitrack_model::time::now_millis;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use twilight_http::Client;
use twilight_http::error::ErrorType;
use twilight_model::id::Id;

use crate::convert;
use crate::metrics::IngestMetrics;
use crate::publisher::Publisher;

/// Fetches in flight at once (requests sent, or snapshots waiting for room in the buffer).
/// The budget already spaces requests; this bounds the memory when Discord or NATS is slow.
const MAX_IN_FLIGHT: usize = 64;
/// First and longest wait before a failed snapshot is tried again.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// Longest time a guild answering 403 again and again is left alone.
const MAX_FORBIDDEN_WAIT_MS: i64 = 86_400_000;

/// How long a guild that refused `strikes` times in a row before this refusal is left alone:
/// `first_ms` doubled at each, up to a day (each 403 counts towards Discord's invalid-request
/// ban). The invite route and the member search back off alike.
pub(crate) fn forbidden_wait_ms(first_ms: i64, strikes: u32) -> i64 {
    first_ms
        .saturating_mul(1 << strikes.min(10))
        .min(MAX_FORBIDDEN_WAIT_MS.max(first_ms))
}

/// Where a guild's fetch is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    #[default]
    Idle,
    /// Waiting for its time (joins settling, the route's reset, a retry) or for the budget:
    /// joins received meanwhile are read by it.
    Scheduled,
    /// Sent: joins received meanwhile need the next one.
    InFlight,
}

/// What ingest keeps per guild: 40 bytes (plus the map's key and control byte).
#[derive(Debug, Default, Clone, Copy)]
struct GuildSlot {
    /// The next fetch must not be sent before this (Unix ms): joins settle first.
    not_before_ms: i64,
    /// Unix ms until which the guild's invite route said "0 remaining": a fetch sent earlier
    /// would wait in twilight's queue after `requested_at` was taken, widening the snapshot's
    /// window of evidence, which costs attribution recall.
    route_free_at_ms: i64,
    /// Unix ms until which a 403 keeps the guild from being asked; 0 = not forbidden.
    forbidden_until_ms: i64,
    shard_id: u32,
    has_vanity: bool,
    fetch: Fetch,
    /// Another fetch is wanted after the one in flight.
    queued: bool,
    /// Transient failures in a row (sets the retry delay).
    failures: u8,
    /// 403s in a row (sets how long the guild is left alone).
    forbidden_strikes: u8,
    /// Its invites were read (or found unreadable) since this process started.
    read_once: bool,
    /// Its scheduled fetch waits in the start-up queue (behind every read for joins).
    in_startup_queue: bool,
}

/// Which ready queue a due guild joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// A read for joins, or a retry: before the start-up reads.
    Soon,
    /// A guild's read at start-up (or after its permissions may have changed).
    Startup,
}

/// Guilds whose snapshot is due, in the order they became due, reads for joins first.
#[derive(Debug, Default)]
struct ReadyQueues {
    soon: VecDeque<GuildId>,
    startup: VecDeque<GuildId>,
}

struct Inner {
    http: Arc<Client>,
    publisher: Publisher,
    bot_id: BotId,
    gate: Arc<DiscordGate>,
    forbidden_retry_ms: i64,
    guilds: Mutex<HashMap<GuildId, GuildSlot>>,
    ready: Mutex<ReadyQueues>,
    ready_signal: Notify,
    in_flight: Arc<Semaphore>,
    metrics: Arc<IngestMetrics>,
}

/// Schedules snapshots for every guild of one bot.
#[derive(Clone)]
pub struct SnapshotScheduler {
    inner: Arc<Inner>,
}

/// Why a fetch did not give a snapshot.
struct Failure {
    reason: Reason,
    http_status: u32,
    detail: String,
    /// Worth retrying: a 5xx, a timeout, an unreadable answer.
    transient: bool,
}

impl SnapshotScheduler {
    /// Starts the dispatcher; it stops when `stop` fires.
    #[must_use]
    pub fn new(
        http: Arc<Client>,
        publisher: Publisher,
        bot_id: BotId,
        gate: Arc<DiscordGate>,
        forbidden_retry: Duration,
        stop: CancellationToken,
    ) -> Self {
        let metrics = publisher.metrics_arc();
        let inner = Arc::new(Inner {
            http,
            publisher,
            bot_id,
            gate,
            forbidden_retry_ms: i64::try_from(forbidden_retry.as_millis()).unwrap_or(i64::MAX),
            guilds: Mutex::new(HashMap::new()),
            ready: Mutex::new(ReadyQueues::default()),
            ready_signal: Notify::new(),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            metrics,
        });
        tokio::spawn(Arc::clone(&inner).dispatch(stop));
        Self { inner }
    }

    /// A guild became available (GUILD_CREATE): take its baseline.
    pub fn guild_available(&self, guild_id: GuildId, shard_id: u32, has_vanity: bool) {
        {
            let mut guilds = self.inner.lock_guilds();
            let slot = guilds.entry(guild_id).or_default();
            slot.shard_id = shard_id;
            slot.has_vanity = has_vanity;
            slot.forbidden_until_ms = 0;
            self.inner
                .metrics
                .guilds
                .set(i64::try_from(guilds.len()).unwrap_or(i64::MAX));
        }
        self.request_in_turn(guild_id, 0, Turn::Startup);
    }

    /// The guild's roles or settings changed: a 403 may be over.
    pub fn permissions_may_have_changed(&self, guild_id: GuildId, has_vanity: Option<bool>) {
        let was_forbidden = {
            let mut guilds = self.inner.lock_guilds();
            let Some(slot) = guilds.get_mut(&guild_id) else {
                return;
            };
            if let Some(v) = has_vanity {
                slot.has_vanity = v;
            }
            std::mem::take(&mut slot.forbidden_until_ms) != 0
        };
        if was_forbidden {
            self.request_in_turn(guild_id, 0, Turn::Startup);
        }
    }

    pub fn guild_removed(&self, guild_id: GuildId) {
        let mut guilds = self.inner.lock_guilds();
        if guilds.remove(&guild_id).is_some_and(|slot| slot.read_once) {
            self.inner.metrics.guilds_read.dec();
        }
        self.inner
            .metrics
            .guilds
            .set(i64::try_from(guilds.len()).unwrap_or(i64::MAX));
    }

    /// Something happened that the guild's counters may show (a join): read them once
    /// `not_before_ms` (Unix ms) has passed.
    pub fn request(&self, guild_id: GuildId, not_before_ms: i64) {
        self.request_in_turn(guild_id, not_before_ms, Turn::Soon);
    }

    fn request_in_turn(&self, guild_id: GuildId, not_before_ms: i64, turn: Turn) {
        let not_before_ms = {
            let mut guilds = self.inner.lock_guilds();
            let Some(slot) = guilds.get_mut(&guild_id) else {
                return;
            };
            slot.not_before_ms = slot.not_before_ms.max(not_before_ms);
            if slot.forbidden_until_ms > now_millis() {
                return;
            }
            match slot.fetch {
                Fetch::Idle => {}
                // The dispatcher reads `not_before_ms` again before sending it.
                Fetch::Scheduled if turn == Turn::Soon && slot.in_startup_queue => {
                    // A join in a guild still waiting for its start-up read: it goes ahead
                    // (the dispatcher skips the entry left in the start-up queue).
                    self.inner.metrics.snapshots_coalesced.inc();
                    slot.in_startup_queue = false;
                }
                Fetch::Scheduled => {
                    self.inner.metrics.snapshots_coalesced.inc();
                    return;
                }
                Fetch::InFlight => {
                    if slot.queued {
                        self.inner.metrics.snapshots_coalesced.inc();
                    }
                    slot.queued = true;
                    return;
                }
            }
            slot.fetch = Fetch::Scheduled;
            slot.in_startup_queue = turn == Turn::Startup;
            slot.not_before_ms
        };
        Arc::clone(&self.inner).schedule_in_turn(guild_id, not_before_ms, turn);
    }
}

impl Inner {
    fn lock_guilds(&self) -> std::sync::MutexGuard<'_, HashMap<GuildId, GuildSlot>> {
        self.guilds.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts the guild in the ready queue of reads for joins at `at_ms` (Unix ms).
    fn schedule(self: Arc<Self>, guild_id: GuildId, at_ms: i64) {
        self.schedule_in_turn(guild_id, at_ms, Turn::Soon);
    }

    fn schedule_in_turn(self: Arc<Self>, guild_id: GuildId, at_ms: i64, turn: Turn) {
        let wait_ms = at_ms - now_millis();
        if wait_ms <= 0 {
            self.push_ready(guild_id, turn);
            return;
        }
        // A timer only; the fetch itself runs later in a task of its own.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(wait_ms.cast_unsigned())).await;
            self.push_ready(guild_id, turn);
        });
    }

    fn push_ready(&self, guild_id: GuildId, turn: Turn) {
        let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        match turn {
            Turn::Soon => ready.soon.push_back(guild_id),
            Turn::Startup => ready.startup.push_back(guild_id),
        }
        drop(ready);
        self.ready_signal.notify_one();
    }

    async fn next_ready(&self, stop: &CancellationToken) -> Option<GuildId> {
        loop {
            let popped = {
                let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
                ready.soon.pop_front().or_else(|| ready.startup.pop_front())
            };
            if let Some(guild_id) = popped {
                return Some(guild_id);
            }
            tokio::select! {
                () = self.ready_signal.notified() => {}
                () = stop.cancelled() => return None,
            }
        }
    }

    /// Hands due guilds to fetch tasks, each request at its turn in the budget.
    async fn dispatch(self: Arc<Self>, stop: CancellationToken) {
        while let Some(guild_id) = self.next_ready(&stop).await {
            let slot = self.lock_guilds().get(&guild_id).copied();
            let Some(slot) = slot else {
                continue; // the guild left meanwhile
            };
            if slot.fetch != Fetch::Scheduled {
                // Left in the start-up queue by a read for joins that went ahead.
                continue;
            }
            let due_ms = slot.not_before_ms.max(slot.route_free_at_ms);
            if due_ms > now_millis() {
                // A join arrived since it was scheduled (its settle time decides), or the
                // route is exhausted until its reset.
                Arc::clone(&self).schedule(guild_id, due_ms);
                continue;
            }
            let permit = tokio::select! {
                permit = Arc::clone(&self.in_flight).acquire_owned() => permit,
                () = stop.cancelled() => return,
            };
            let Ok(permit) = permit else { return };
            let requests = if slot.has_vanity { 2 } else { 1 };
            let admitted = tokio::select! {
                admitted = self.gate.admit(requests) => admitted,
                () = stop.cancelled() => return,
            };
            if let Err(refused) = admitted {
                drop(permit);
                Arc::clone(&self).not_sent(guild_id, &refused);
                continue;
            }
            let slot = {
                let mut guilds = self.lock_guilds();
                let Some(slot) = guilds.get_mut(&guild_id) else {
                    continue;
                };
                slot.fetch = Fetch::InFlight;
                slot.in_startup_queue = false;
                // A join received during the budget's wait that has not settled yet needs the
                // next read.
                if slot.not_before_ms > now_millis() {
                    slot.queued = true;
                }
                *slot
            };
            self.metrics.snapshot_requests.inc_by(u64::from(requests));
            tokio::spawn(Arc::clone(&self).fetch_once(guild_id, slot, permit));
        }
    }

    async fn fetch_once(
        self: Arc<Self>,
        guild_id: GuildId,
        slot: GuildSlot,
        permit: OwnedSemaphorePermit,
    ) {
        let requested_at = now_millis();
        let outcome = self.fetch(guild_id, slot.has_vanity, requested_at).await;
        let observed_at = now_millis();
        let kind = match outcome {
            Ok(mut snapshot) => {
                if let Some(slot) = self.lock_guilds().get_mut(&guild_id) {
                    slot.forbidden_strikes = 0;
                    slot.forbidden_until_ms = 0;
                }
                snapshot.requested_at_ms = requested_at;
                snapshot.received_at_ms = observed_at;
                Kind::InviteSnapshot(snapshot)
            }
            Err(failure) if failure.transient => {
                drop(permit);
                self.retry_later(guild_id, &failure);
                return;
            }
            Err(failure) => {
                tracing::warn!(guild_id = %guild_id, http_status = failure.http_status, reason = ?failure.reason, detail = %failure.detail, "invite snapshot failed");
                if failure.reason == Reason::MissingPermissions {
                    self.forbid(guild_id);
                }
                Kind::SnapshotFailed(proto::SnapshotFailed {
                    requested_at_ms: requested_at,
                    failed_at_ms: observed_at,
                    reason: failure.reason.into(),
                    http_status: failure.http_status,
                    detail: failure.detail,
                })
            }
        };
        let message_id = format!(
            "snap:{}:{guild_id}:{requested_at}:{}",
            self.bot_id,
            next_snapshot_number()
        );
        let event = proto::GuildEvent {
            bot_id: self.bot_id.get(),
            guild_id: guild_id.get(),
            observed_at_ms: observed_at,
            shard_id: slot.shard_id,
            kind: Some(kind),
        };
        self.publisher.send(event, message_id).await;
        drop(permit);
        self.mark_read(guild_id);
        self.finish(guild_id);
    }

    /// A 5xx or unreadable answer: nothing was learnt, so the same snapshot (covering every
    /// join so far) is tried again after a growing delay. Nothing is published: the engine
    /// waits for the next snapshot either way.
    fn retry_later(self: Arc<Self>, guild_id: GuildId, failure: &Failure) {
        self.metrics.snapshot_retries.inc();
        let at_ms = {
            let mut guilds = self.lock_guilds();
            let Some(slot) = guilds.get_mut(&guild_id) else {
                return;
            };
            slot.failures = slot.failures.saturating_add(1);
            // The schedule of every retry loop, at this guild's count of failures in a row.
            let delay_ms = invitrack_telemetry::backoff(FIRST_RETRY_DELAY, MAX_RETRY_DELAY)
                .nth(usize::from(slot.failures.min(16)))
                .map_or(i64::MAX, |delay| {
                    i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)
                });
            slot.queued = false; // the retry covers the queued request too
            slot.fetch = Fetch::Scheduled;
            slot.not_before_ms = slot.not_before_ms.max(now_millis() + delay_ms);
            tracing::warn!(guild_id = %guild_id, http_status = failure.http_status, detail = %failure.detail, attempt = slot.failures, delay_ms, "invite snapshot failed; retrying");
            slot.not_before_ms
        };
        self.schedule(guild_id, at_ms);
    }

    /// Counts the guild's first read since start (start-up progress).
    fn mark_read(&self, guild_id: GuildId) {
        if let Some(slot) = self.lock_guilds().get_mut(&guild_id)
            && !std::mem::replace(&mut slot.read_once, true)
        {
            self.metrics.guilds_read.inc();
        }
    }

    /// The fetch is over: run the queued one, if any.
    fn finish(self: Arc<Self>, guild_id: GuildId) {
        let again = {
            let mut guilds = self.lock_guilds();
            match guilds.get_mut(&guild_id) {
                Some(slot) => {
                    slot.failures = 0;
                    if slot.queued && slot.forbidden_until_ms == 0 {
                        slot.queued = false;
                        slot.fetch = Fetch::Scheduled;
                        Some(slot.not_before_ms)
                    } else {
                        slot.queued = false;
                        slot.fetch = Fetch::Idle;
                        None
                    }
                }
                None => None,
            }
        };
        if let Some(at_ms) = again {
            self.schedule(guild_id, at_ms);
        }
    }

    /// A 403: the guild is left alone for `forbidden_retry`, doubled at each 403 in a row up
    /// to a day (each 403 counts towards Discord's invalid-request ban).
    fn forbid(&self, guild_id: GuildId) {
        if let Some(slot) = self.lock_guilds().get_mut(&guild_id) {
            let wait_ms =
                forbidden_wait_ms(self.forbidden_retry_ms, u32::from(slot.forbidden_strikes));
            slot.forbidden_strikes = slot.forbidden_strikes.saturating_add(1);
            slot.forbidden_until_ms = now_millis().saturating_add(wait_ms);
        }
    }

    /// The gate sent nothing: after a 401 nothing will be sent again, so the guild waits
    /// idle; past the rejection ceiling it is tried again once the gate opens.
    fn not_sent(self: Arc<Self>, guild_id: GuildId, refused: &GateError) {
        let at_ms = {
            let mut guilds = self.lock_guilds();
            let Some(slot) = guilds.get_mut(&guild_id) else {
                return;
            };
            match refused {
                GateError::Halted { resume_in, .. } => {
                    let resume_ms = i64::try_from(resume_in.as_millis()).unwrap_or(i64::MAX);
                    slot.not_before_ms = slot
                        .not_before_ms
                        .max(now_millis().saturating_add(resume_ms));
                    slot.not_before_ms
                }
                _ => {
                    slot.fetch = Fetch::Idle;
                    slot.queued = false;
                    return;
                }
            }
        };
        self.schedule(guild_id, at_ms);
    }

    async fn fetch(
        &self,
        guild_id: GuildId,
        has_vanity: bool,
        requested_at: i64,
    ) -> Result<proto::InviteSnapshot, Failure> {
        let id = Id::new_checked(guild_id.get()).ok_or_else(|| Failure {
            reason: Reason::UnknownGuild,
            http_status: 0,
            detail: "guild id 0".into(),
            transient: false,
        })?;
        let invites = async {
            let response = self
                .gate
                .send(self.http.guild_invites(id))
                .await
                .map_err(|e| self.classify(e))?;
            self.note_answer_headers(guild_id, requested_at, &response);
            response.models().await.map_err(|e| {
                self.metrics.count_discord_error("5xx");
                Failure {
                    reason: Reason::Unavailable,
                    http_status: 200,
                    detail: e.to_string(),
                    transient: true,
                }
            })
        };
        let vanity = async {
            if !has_vanity {
                return Some(proto::Vanity::default());
            }
            match self.gate.send(self.http.guild_vanity_url(id)).await {
                Ok(response) => response.model().await.ok().map(|v| proto::Vanity {
                    code: v.code.unwrap_or_default(),
                    uses: v.uses,
                }),
                // The invite list decides the snapshot's fate; a vanity read that fails only
                // means its counter is not known this time.
                Err(e) => {
                    tracing::debug!(guild_id = %guild_id, error = %e, "vanity URL not readable");
                    None
                }
            }
        };
        let (invites, vanity) = tokio::join!(invites, vanity);
        Ok(proto::InviteSnapshot {
            requested_at_ms: 0,
            received_at_ms: 0,
            invites: invites?.iter().map(convert::invite).collect(),
            vanity,
        })
    }

    /// Reads what an invite-list answer's headers say: whether the host clock is ahead of
    /// Discord's, and when the guild's invite route is exhausted.
    fn note_answer_headers<T>(
        &self,
        guild_id: GuildId,
        requested_at: i64,
        response: &twilight_http::Response<T>,
    ) {
        let text = |name: &str| {
            response
                .headers()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
        };
        // Discord wrote `Date` (whole seconds) after our request left, so Discord's clock then
        // was below `Date + 1 s`, plus however stale a cached `Date` may be (HTTP servers
        // such as actix-web refresh it every 500 ms; a second is allowed): a `requested_at`
        // beyond that means our clock runs ahead, and snapshots would claim to have been
        // requested later than they were, which the engine's clock allowance must cover. Only
        // leads of seconds are caught this way.
        if let Some(date) = text("date").and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
        {
            let ahead_ms = requested_at - (date.timestamp_millis() + DATE_HEADER_SLACK_MS);
            if ahead_ms > 0 {
                let before = self.metrics.clock_ahead_by(ahead_ms.cast_unsigned());
                if before == 0 {
                    tracing::error!(
                        guild_id = %guild_id,
                        ahead_ms,
                        "this host's clock is ahead of Discord's: attribution may credit wrong \
                         invites; synchronise it (NTP) or raise ATTRIBUTION_CLOCK_SKEW_MS"
                    );
                }
            }
        }
        let header = |name: &str| text(name).and_then(|v| v.parse::<f64>().ok());
        if header("x-ratelimit-remaining") != Some(0.0) {
            return;
        }
        let Some(reset_after) = header("x-ratelimit-reset-after") else {
            return;
        };
        let free_at = now_millis() + (reset_after * 1000.0).ceil() as i64;
        if let Some(slot) = self.lock_guilds().get_mut(&guild_id) {
            slot.route_free_at_ms = slot.route_free_at_ms.max(free_at);
        }
    }

    fn classify(&self, error: GateError) -> Failure {
        let detail = error.to_string();
        let (reason, http_status, transient) = match &error {
            // The gate paused every request; the snapshot is tried again after it.
            GateError::RateLimited { .. } => (Reason::Unavailable, 429, true),
            GateError::Halted { .. } => (Reason::Unavailable, 0, true),
            GateError::InvalidToken => (Reason::Unauthorized, 401, false),
            GateError::Http(http) => match (http.kind(), invitrack_discord::status_of(http)) {
                (_, Some(401)) => (Reason::Unauthorized, 401, false),
                (_, Some(403)) => (Reason::MissingPermissions, 403, false),
                (_, Some(404)) => {
                    self.metrics.count_discord_error("404");
                    (Reason::UnknownGuild, 404, false)
                }
                (_, Some(code @ 500..=599)) => {
                    self.metrics.count_discord_error("5xx");
                    (Reason::Unavailable, u32::from(code), true)
                }
                // Another 4xx will not go away by asking again.
                (_, Some(code)) => {
                    self.metrics.count_discord_error("other");
                    (Reason::Unavailable, u32::from(code), false)
                }
                // A 502/503 from a proxy in front of Discord comes as text, which twilight
                // cannot parse as Discord's error JSON.
                (ErrorType::Parsing { .. }, None) => {
                    self.metrics.count_discord_error("5xx");
                    (Reason::Unavailable, 0, true)
                }
                // Timeouts and connection errors.
                (_, None) => {
                    self.metrics.count_discord_error("other");
                    (Reason::Unavailable, 0, true)
                }
            },
            // A client without its rate limiter: a bug of ours, not worth asking again.
            _ => {
                self.metrics.count_discord_error("other");
                (Reason::Unavailable, 0, false)
            }
        };
        Failure {
            reason,
            http_status,
            detail,
            transient,
        }
    }
}

/// How far behind the real time a `Date` header may be: its whole-second truncation plus a
/// server's cached copy of it.
const DATE_HEADER_SLACK_MS: i64 = 2_000;

fn next_snapshot_number() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}
