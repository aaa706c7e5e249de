//! Asking Discord how members joined (`docs/attribution.md#discords-reported-source`), when
//! `ATTRIBUTION_DISCORD_JOIN_SOURCE` is on.
//!
//! The workers' decisions tell which joins the counters left ambiguous or unknown; this asks
//! the member search about those members (and a sample of the others) once Discord can find
//! them, ten to a request and at most `INGEST_MEMBERS_SEARCH_PER_SECOND` requests a second,
//! through the same gate as every other request, and publishes the answers on the guild's
//! stream for the engine. A guild that refuses (403, 404) is left alone with a doubling
//! back-off, and the refusal is published so the guild's health shows it; an answer that says
//! the route changed (400) stops the asking for the process.

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures_util::StreamExt as _;
use invitrack_bus::proto::{self, guild_event::Kind};
use invitrack_bus::{Bus, GuildEvent};
use invitrack_discord::DiscordGate;
use invitrack_model::time::now_millis;
use invitrack_model::{BotId, GuildId, UserId};
use prost::Message as _;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use twilight_http::Client;

use crate::config::MembersSearchConfig;
use crate::members_search::{self, SearchAnswer, SearchError};
use crate::metrics::IngestMetrics;
use crate::publisher::Publisher;

mod queue;

use queue::{Answered, AskPolicy, AskQueue, Wanted};

/// A decision stays unacknowledged while its member waits to be asked about: longer than the
/// asking can take (the delay, then up to the attempts' growing waits), so a crash of this
/// process hands the waiting members to its successor rather than losing them.
const ACK_WAIT: Duration = Duration::from_secs(20 * 60);
/// Members waiting at most; the decision stream holds the rest until some are done.
const MAX_WAITING: i64 = 20_000;
const RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Which guilds this process asks about, and how.
pub(crate) struct JoinSourceAsker {
    http: Arc<Client>,
    gate: Arc<DiscordGate>,
    publisher: Publisher,
    metrics: Arc<IngestMetrics>,
    bot_id: BotId,
    shard_total: u32,
    shards: RangeInclusive<u32>,
    config: MembersSearchConfig,
    /// Each waiting member's decision, acknowledged once the member is done with.
    queue: Mutex<AskQueue<jetstream::Message>>,
}

impl JoinSourceAsker {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        http: Arc<Client>,
        publisher: Publisher,
        metrics: Arc<IngestMetrics>,
        bot_id: BotId,
        shard_total: u32,
        shards: RangeInclusive<u32>,
        config: MembersSearchConfig,
        forbidden_retry: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            http,
            gate: Arc::clone(&metrics.discord),
            publisher,
            metrics,
            bot_id,
            shard_total,
            shards,
            queue: Mutex::new(AskQueue::new(AskPolicy {
                delay_ms: i64::try_from(config.delay_ms).unwrap_or(i64::MAX),
                attempts: config.attempts.max(1),
                refused_wait_ms: i64::try_from(forbidden_retry.as_millis()).unwrap_or(i64::MAX),
            })),
            config,
        })
    }

    /// Reads decisions and asks about their members until `stop`.
    pub(crate) async fn run(self: Arc<Self>, bus: Bus, stop: CancellationToken) {
        tracing::info!(
            delay_ms = self.config.delay_ms,
            per_second = self.config.per_second,
            "asking Discord's member search how members joined (ATTRIBUTION_DISCORD_JOIN_SOURCE)"
        );
        let dispatcher = tokio::spawn(Arc::clone(&self).dispatch(stop.clone()));
        let mut retry_delays = invitrack_telemetry::backoff(RETRY_DELAY, MAX_RETRY_DELAY);
        while !stop.is_cancelled() {
            if let Err(error) = self.consume(&bus, &stop).await {
                let wait = retry_delays.next().unwrap_or(MAX_RETRY_DELAY);
                tracing::warn!(%error, retry_in_ms = wait.as_millis(), "decision consumer for the member search failed");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => {}
                }
            }
        }
        dispatcher.abort();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AskQueue<jetstream::Message>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn owns(&self, guild_id: GuildId) -> bool {
        self.shards.contains(&guild_id.shard(self.shard_total))
    }

    async fn consume(&self, bus: &Bus, stop: &CancellationToken) -> Result<(), String> {
        let layout = &bus.layout;
        let name = format!(
            "ingest-{}-{}-{}-join-sources",
            self.bot_id,
            self.shards.start(),
            self.shards.end()
        );
        let stream = bus
            .jetstream
            .get_stream(layout.decision_stream())
            .await
            .map_err(|e| format!("get the decision stream: {e}"))?;
        let mut messages = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: format!("{}.decision.*.{}.>", layout.prefix(), self.bot_id),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    max_ack_pending: MAX_WAITING,
                    // Joins decided before the asking was first switched on are not asked about.
                    deliver_policy: DeliverPolicy::New,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("create the consumer {name}: {e}"))?
            .messages()
            .await
            .map_err(|e| format!("pull decisions: {e}"))?;
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                () = stop.cancelled() => return Ok(()),
            };
            let message = next
                .ok_or("the consumer ended")?
                .map_err(|e| format!("receive a decision: {e}"))?;
            if let Some(message) = self.take(message) {
                acknowledge(message).await;
            }
        }
    }

    /// Queues the member of a decision worth asking about; gives back the decision when it
    /// is not (to be acknowledged at once).
    fn take(&self, message: jetstream::Message) -> Option<jetstream::Message> {
        let Ok(decision) = proto::Decision::decode(message.payload.clone()) else {
            tracing::warn!(subject = %message.subject, "not a decision: skipped");
            return Some(message);
        };
        let (Some(guild_id), Some(user_id)) = (
            GuildId::new_checked(decision.guild_id),
            UserId::new_checked(decision.member_id),
        ) else {
            return Some(message);
        };
        if decision.bot_id != self.bot_id.get() || !self.owns(guild_id) {
            return Some(message);
        }
        let join = match &decision.kind {
            Some(proto::decision::Kind::Join(join)) => join,
            Some(proto::decision::Kind::Leave(_)) => {
                // A member who left is not found any more: stop asking about them.
                let done = self.lock().remove_member(guild_id, user_id);
                self.set_waiting();
                tokio::spawn(async move {
                    for decision in done {
                        acknowledge(decision).await;
                    }
                });
                return Some(message);
            }
            None => return Some(message),
        };
        let settled = matches!(join.source.as_str(), "invite" | "vanity");
        if settled && !sampled(guild_id, user_id, self.config.sample) {
            return Some(message);
        }
        let joined_at = join.joined_at_ms;
        let refused = self
            .lock()
            .push(guild_id, user_id, joined_at, now_millis(), message);
        self.set_waiting();
        refused
    }

    fn set_waiting(&self) {
        let waiting = self.lock().waiting();
        self.metrics
            .members_search_waiting
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    /// Starts one search per tick, for the guild whose member has waited longest.
    async fn dispatch(self: Arc<Self>, stop: CancellationToken) {
        let per_second = self.config.per_second.clamp(0.01, 50.0);
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = stop.cancelled() => return,
            }
            let next = self.lock().next_batch(now_millis());
            if let Some((guild_id, batch)) = next {
                tokio::spawn(Arc::clone(&self).ask(guild_id, batch));
            }
        }
    }

    async fn ask(self: Arc<Self>, guild_id: GuildId, batch: Vec<Wanted<jetstream::Message>>) {
        let requested_at = now_millis();
        let users: Vec<UserId> = batch.iter().map(|w| w.user_id).collect();
        let answer = match self.gate.admit(1).await {
            Ok(()) => members_search::search(&self.http, &self.gate, guild_id, &users).await,
            Err(refused) => Err(SearchError::Transient(refused.to_string())),
        };
        let now = now_millis();
        let mut report = None;
        let answered = match answer {
            Ok(SearchAnswer::Found(found)) => {
                self.metrics.count_members_search("found");
                self.metrics
                    .members_search_reported
                    .inc_by(found.len() as u64);
                let found_users: Vec<UserId> = found
                    .iter()
                    .filter_map(|f| UserId::new_checked(f.user_id))
                    .collect();
                if !found.is_empty() {
                    report = Some((found, None));
                }
                self.lock().found(guild_id, batch, &found_users, now)
            }
            Ok(SearchAnswer::Indexing(wait)) => {
                self.metrics.count_members_search("indexing");
                let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                self.lock()
                    .indexing(guild_id, batch, now.saturating_add(wait_ms));
                Answered::default()
            }
            Err(SearchError::GuildRefused { status, detail }) => {
                self.metrics.count_members_search("refused");
                let (answered, wait_ms) = self.lock().refused(guild_id, batch, now);
                tracing::warn!(
                    guild_id = %guild_id,
                    status,
                    %detail,
                    retry_in_secs = wait_ms / 1000,
                    "Discord refused the member search in this guild: not asked again until the back-off passes"
                );
                report = Some((Vec::new(), Some((status, detail))));
                answered
            }
            Err(SearchError::RouteRefused { status, detail }) => {
                self.metrics.count_members_search("route_refused");
                let (done, first) = self.lock().route_refused(batch);
                if first {
                    tracing::error!(
                        status,
                        %detail,
                        "Discord no longer takes the member search as ingest sends it: \
                         ATTRIBUTION_DISCORD_JOIN_SOURCE is off for this process until it restarts"
                    );
                }
                Answered { done, given_up: 0 }
            }
            Err(SearchError::InvalidToken) => {
                self.metrics.count_members_search("failed");
                Answered {
                    done: batch.into_iter().map(|w| w.token).collect(),
                    given_up: 0,
                }
            }
            Err(SearchError::Transient(reason)) => {
                self.metrics.count_members_search("failed");
                tracing::debug!(guild_id = %guild_id, %reason, "member search failed; asked again later");
                self.lock().failed(guild_id, batch, now)
            }
        };
        self.metrics
            .members_search_given_up
            .inc_by(answered.given_up);
        self.lock().forget_idle(now);
        self.set_waiting();
        if let Some((members, refused)) = report {
            self.publish(guild_id, requested_at, members, refused).await;
        }
        for decision in answered.done {
            acknowledge(decision).await;
        }
    }

    async fn publish(
        &self,
        guild_id: GuildId,
        requested_at: i64,
        members: Vec<proto::ReportedJoin>,
        refused: Option<(u16, String)>,
    ) {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let (refused_status, refused_detail) =
            refused.map_or((0, String::new()), |(s, d)| (u32::from(s), d));
        let event = GuildEvent {
            bot_id: self.bot_id.get(),
            guild_id: guild_id.get(),
            observed_at_ms: now_millis(),
            shard_id: guild_id.shard(self.shard_total),
            kind: Some(Kind::JoinSourceReport(proto::JoinSourceReport {
                requested_at_ms: requested_at,
                members,
                refused_status,
                refused_detail,
            })),
        };
        let message_id = format!(
            "join-source:{}:{guild_id}:{requested_at}:{}",
            self.bot_id,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.publisher.send(event, message_id).await;
    }
}

/// Whether a join the counters decided is one of the sampled `share` (the same answer for the
/// same member and guild every time, so a redelivered decision is treated alike).
fn sampled(guild_id: GuildId, user_id: UserId, share: f64) -> bool {
    let mixed =
        (guild_id.get() ^ user_id.get().rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((mixed >> 11) as f64) < share.clamp(0.0, 1.0) * (1_u64 << 53) as f64
}

async fn acknowledge(message: jetstream::Message) {
    if let Err(error) = message.ack().await {
        // Redelivered after the ack wait, and asked about again: harmless.
        tracing::debug!(%error, "could not acknowledge a decision");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_takes_about_its_share() {
        let guild = GuildId::new(81_000_000_000_000_000);
        let taken = (1..=20_000_u64)
            .filter(|u| sampled(guild, UserId::new(u * 7_919 + 1), 0.05))
            .count();
        assert!((800..1_200).contains(&taken), "{taken} of 20,000");
        assert!(!sampled(guild, UserId::new(5), 0.0));
        assert!(sampled(guild, UserId::new(5), 1.0));
    }
}
