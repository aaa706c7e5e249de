//! Invite snapshots: when a guild's invites are read, and how often.
//!
//! Per guild at most one fetch is in flight and at most one is queued behind it; the queued one
//! covers every join received meanwhile (DOMAIN.md rule 3). All guilds share one request budget
//! below Discord's global limit. A guild that answers 403 is not asked again until its
//! permissions may have changed or `forbidden_retry` has passed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use invitrack_bus::proto::{self, guild_event::Kind, snapshot_failed::Reason};
use tokio::time::Instant;
use twilight_http::Client;
use twilight_http::error::ErrorType;
use twilight_model::id::Id;

use crate::convert;
use crate::publisher::Publisher;

/// Spaces requests evenly so that all guilds together stay under `per_second`.
pub struct RequestBudget {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl RequestBudget {
    #[must_use]
    pub fn new(per_second: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for this request's turn.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Counters for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct SnapshotStats {
    pub requests: AtomicU64,
    pub snapshots: AtomicU64,
    pub failures: AtomicU64,
    pub coalesced: AtomicU64,
}

#[derive(Debug, Default)]
struct GuildSlot {
    shard_id: u32,
    has_vanity: bool,
    fetching: bool,
    queued: bool,
    /// The next fetch must not be sent before this (Unix ms): joins settle first.
    not_before_ms: i64,
    forbidden_until: Option<Instant>,
}

struct Inner {
    http: Arc<Client>,
    publisher: Publisher,
    bot_id: u64,
    budget: RequestBudget,
    forbidden_retry: Duration,
    guilds: Mutex<HashMap<u64, GuildSlot>>,
    stats: SnapshotStats,
}

/// Schedules snapshots for every guild of one bot.
#[derive(Clone)]
pub struct SnapshotScheduler {
    inner: Arc<Inner>,
}

enum Failure {
    Reason(Reason, u32, String),
}

const UNAVAILABLE_RETRIES: u32 = 5;

impl SnapshotScheduler {
    #[must_use]
    pub fn new(
        http: Arc<Client>,
        publisher: Publisher,
        bot_id: u64,
        budget: RequestBudget,
        forbidden_retry: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                http,
                publisher,
                bot_id,
                budget,
                forbidden_retry,
                guilds: Mutex::new(HashMap::new()),
                stats: SnapshotStats::default(),
            }),
        }
    }

    #[must_use]
    pub fn stats(&self) -> &SnapshotStats {
        &self.inner.stats
    }

    /// A guild became available (GUILD_CREATE): take its baseline.
    pub fn guild_available(&self, guild_id: u64, shard_id: u32, has_vanity: bool) {
        {
            let mut guilds = self
                .inner
                .guilds
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let slot = guilds.entry(guild_id).or_default();
            slot.shard_id = shard_id;
            slot.has_vanity = has_vanity;
            slot.forbidden_until = None;
        }
        self.request(guild_id, 0);
    }

    /// The guild's roles or settings changed: a 403 may be over.
    pub fn permissions_may_have_changed(&self, guild_id: u64, has_vanity: Option<bool>) {
        let was_forbidden = {
            let mut guilds = self
                .inner
                .guilds
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(slot) = guilds.get_mut(&guild_id) else {
                return;
            };
            if let Some(v) = has_vanity {
                slot.has_vanity = v;
            }
            slot.forbidden_until.take().is_some()
        };
        if was_forbidden {
            self.request(guild_id, 0);
        }
    }

    pub fn guild_removed(&self, guild_id: u64) {
        self.inner
            .guilds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&guild_id);
    }

    /// Something happened that the guild's counters may show (a join): read them once
    /// `not_before_ms` (Unix ms) has passed.
    pub fn request(&self, guild_id: u64, not_before_ms: i64) {
        {
            let mut guilds = self
                .inner
                .guilds
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(slot) = guilds.get_mut(&guild_id) else {
                return;
            };
            slot.not_before_ms = slot.not_before_ms.max(not_before_ms);
            if slot
                .forbidden_until
                .is_some_and(|until| until > Instant::now())
            {
                return;
            }
            if slot.fetching {
                if slot.queued {
                    self.inner.stats.coalesced.fetch_add(1, Ordering::Relaxed);
                }
                slot.queued = true;
                return;
            }
            slot.fetching = true;
        }
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.fetch_loop(guild_id).await });
    }
}

impl Inner {
    async fn fetch_loop(self: Arc<Self>, guild_id: u64) {
        let mut failures = 0;
        loop {
            let (shard_id, has_vanity, not_before_ms) = {
                let guilds = self.guilds.lock().unwrap_or_else(PoisonError::into_inner);
                match guilds.get(&guild_id) {
                    Some(slot) => (slot.shard_id, slot.has_vanity, slot.not_before_ms),
                    None => return,
                }
            };
            let wait_ms = not_before_ms - invitrack_bus::unix_millis_now();
            if wait_ms > 0 {
                tokio::time::sleep(Duration::from_millis(wait_ms.cast_unsigned())).await;
            }
            let requested_at = invitrack_bus::unix_millis_now();
            let outcome = self.fetch(guild_id, has_vanity).await;
            let observed_at = invitrack_bus::unix_millis_now();
            let mut retry = false;
            let kind = match outcome {
                Ok(mut snapshot) => {
                    failures = 0;
                    snapshot.requested_at_ms = requested_at;
                    snapshot.received_at_ms = observed_at;
                    self.stats.snapshots.fetch_add(1, Ordering::Relaxed);
                    Kind::InviteSnapshot(snapshot)
                }
                Err(Failure::Reason(reason, http_status, detail)) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(guild_id, http_status, ?reason, %detail, "invite snapshot failed");
                    match reason {
                        Reason::MissingPermissions => self.forbid(guild_id),
                        Reason::Unavailable if failures < UNAVAILABLE_RETRIES => {
                            failures += 1;
                            retry = true;
                        }
                        _ => {}
                    }
                    Kind::SnapshotFailed(proto::SnapshotFailed {
                        requested_at_ms: requested_at,
                        failed_at_ms: observed_at,
                        reason: reason.into(),
                        http_status,
                        detail,
                    })
                }
            };
            let message_id = format!(
                "snap:{}:{guild_id}:{requested_at}:{}",
                self.bot_id,
                next_snapshot_number()
            );
            let event = proto::GuildEvent {
                bot_id: self.bot_id,
                guild_id,
                observed_at_ms: observed_at,
                shard_id,
                kind: Some(kind),
            };
            self.publisher.send(event, message_id).await;
            if retry {
                tokio::time::sleep(Duration::from_secs(1 << failures.min(5))).await;
                continue;
            }
            let again = {
                let mut guilds = self.guilds.lock().unwrap_or_else(PoisonError::into_inner);
                match guilds.get_mut(&guild_id) {
                    Some(slot) if slot.queued && slot.forbidden_until.is_none() => {
                        slot.queued = false;
                        true
                    }
                    Some(slot) => {
                        slot.queued = false;
                        slot.fetching = false;
                        false
                    }
                    None => false,
                }
            };
            if !again {
                return;
            }
        }
    }

    fn forbid(&self, guild_id: u64) {
        let mut guilds = self.guilds.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = guilds.get_mut(&guild_id) {
            slot.forbidden_until = Some(Instant::now() + self.forbidden_retry);
        }
    }

    async fn fetch(
        &self,
        guild_id: u64,
        has_vanity: bool,
    ) -> Result<proto::InviteSnapshot, Failure> {
        let id = Id::new_checked(guild_id)
            .ok_or_else(|| Failure::Reason(Reason::UnknownGuild, 0, "guild id 0".into()))?;
        let invites = async {
            self.budget.acquire().await;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let response = self.http.guild_invites(id).await.map_err(classify)?;
            response
                .models()
                .await
                .map_err(|e| Failure::Reason(Reason::Unavailable, 200, e.to_string()))
        };
        let vanity = async {
            if !has_vanity {
                return Ok(Some(proto::Vanity::default()));
            }
            self.budget.acquire().await;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            match self.http.guild_vanity_url(id).await {
                Ok(response) => Ok(response.model().await.ok().map(|v| proto::Vanity {
                    code: v.code.unwrap_or_default(),
                    uses: v.uses,
                })),
                // The invite list decides the snapshot's fate; a vanity read that fails only
                // means its counter is not known this time.
                Err(e) => {
                    tracing::debug!(guild_id, error = %e, "vanity URL not readable");
                    Ok::<_, Failure>(None)
                }
            }
        };
        let (invites, vanity) = tokio::join!(invites, vanity);
        Ok(proto::InviteSnapshot {
            requested_at_ms: 0,
            received_at_ms: 0,
            invites: invites?.iter().map(convert::invite).collect(),
            vanity: vanity?,
        })
    }
}

fn classify(error: twilight_http::Error) -> Failure {
    let detail = error.to_string();
    match error.kind() {
        ErrorType::Response { status, .. } => {
            let code = status.get();
            let reason = match code {
                401 => Reason::Unauthorized,
                403 => Reason::MissingPermissions,
                404 => Reason::UnknownGuild,
                _ => Reason::Unavailable,
            };
            Failure::Reason(reason, u32::from(code), detail)
        }
        ErrorType::Unauthorized => Failure::Reason(Reason::Unauthorized, 401, detail),
        _ => Failure::Reason(Reason::Unavailable, 0, detail),
    }
}

fn next_snapshot_number() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}
