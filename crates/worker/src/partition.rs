//! Partition ownership and consumption.
//!
//! Each partition is consumed by exactly one worker at a time. Ownership is a PostgreSQL
//! session-level advisory lock held on one connection per worker: when a worker dies its
//! session ends and the lock is free for the next worker that looks (every
//! `CLAIM_INTERVAL`). Claiming bumps the partition's epoch, and every commit checks it, so a
//! worker that lost a partition cannot commit for it even if it has not noticed yet.
//!
//! A claimed partition is read from its own stream with an unfiltered pull consumer starting
//! right after the last sequence committed in PostgreSQL: effects and progress are committed
//! together, so each event takes effect exactly once whatever crashes or restarts. A gap in the
//! consumer's delivery sequence, missed heartbeats, a lost consumer or a reconnection to NATS
//! end the consumer; the partition resumes from its last commit with a new one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::consumer::pull::{self, MessagesError};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer};
use futures_util::{FutureExt as _, StreamExt as _};
use invitrack_attribution::MissedJoins;
use invitrack_bus::{Bus, MissedJoinsRequest};
use invitrack_model::{GuildKey, JoinSource};
use invitrack_storage::Pool;
use invitrack_storage::progress::{self, PartitionClaim};
use prost::Message as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::apply::{Outcome, Partition};
use crate::decode::StreamMessage;
use crate::{Interruption, WorkerConfig, WorkerError};

const CLAIM_INTERVAL: Duration = Duration::from_secs(2);
/// Pull requests wait this long for messages, and the server sends a heartbeat after this much
/// silence; two missed heartbeats end the consumer. Long enough that a server slowed down by
/// load is not also asked to create consumers again and again.
const PULL_EXPIRES: Duration = Duration::from_secs(60);
const PULL_HEARTBEAT: Duration = Duration::from_secs(20);
/// A consumer left behind (its worker died) is removed by the server after this idle time.
const CONSUMER_INACTIVE: Duration = Duration::from_secs(120);
const RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(16);
/// Longest wait for more messages once a batch has started.
const BATCH_FILL_WAIT: Duration = Duration::from_millis(5);

/// Counters for metrics, tests and benchmarks.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub applied: AtomicU64,
    pub decisions: AtomicU64,
    /// Decisions the relays published to the decision stream.
    pub decisions_published: AtomicU64,
    pub dead_letters: AtomicU64,
    /// Messages dated ahead of this worker's clock beyond the allowance (their times clamped).
    pub times_clamped: AtomicU64,
    /// Requests to ingest for members who joined while it was away, and the joins they found.
    pub missed_joins_asked: AtomicU64,
    pub joins_found_late: AtomicU64,
    pub owned_partitions: AtomicU64,
    /// Transactions that applied messages, and the time spent in them (µs, summed over
    /// partitions): `applied / batches` is the mean batch size.
    pub batches: AtomicU64,
    pub apply_micros: AtomicU64,
    /// End-to-end lag of the applied events: `observed_at` to commit.
    pub lag: Arc<crate::LagHistogram>,
    /// Decisions by join source, in the order of `JoinSource::ALL`.
    pub decisions_by_source: [AtomicU64; JoinSource::ALL.len()],
    /// Discord's reported join sources by judgement, in the order of `JUDGEMENTS`.
    pub join_source_reports: [AtomicU64; crate::reports::JUDGEMENTS.len()],
    /// Undecided joins held by each owned partition, as of its last tick.
    pub pending_joins: Mutex<BTreeMap<u32, u64>>,
}

impl WorkerStats {
    /// Adds what one transaction (or tick) decided.
    fn count_decisions(&self, outcome: &Outcome) {
        self.decisions
            .fetch_add(outcome.decisions as u64, Ordering::Relaxed);
        for (total, n) in self.decisions_by_source.iter().zip(outcome.by_source) {
            total.fetch_add(n as u64, Ordering::Relaxed);
        }
        for (total, n) in self.join_source_reports.iter().zip(outcome.reports_judged) {
            total.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    fn set_pending(&self, partition: u32, pending: Option<usize>) {
        let mut by_partition = self
            .pending_joins
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match pending {
            Some(n) => by_partition.insert(partition, n as u64),
            None => by_partition.remove(&partition),
        };
    }

    /// Undecided joins over the owned partitions.
    #[must_use]
    pub fn pending_joins(&self) -> u64 {
        self.pending_joins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .sum()
    }
}

pub(crate) struct Context {
    pub config: WorkerConfig,
    pub bus: Bus,
    pub pool: Pool,
    pub stats: Arc<WorkerStats>,
}

/// Keeps this worker's fair share of the partitions: about `partitions / live workers`. Claims
/// free partitions up to that share (including those freed by dead workers), and hands back
/// the excess when more workers join.
pub(crate) async fn own_partitions(ctx: Arc<Context>, shutdown: CancellationToken) {
    // Partition locks and liveness are shared by every worker of the deployment.
    let stream = ctx.bus.layout.events_group();
    let partitions = ctx.bus.layout.partitions();
    let worker_id = format!("{:016x}", rand::random::<u64>());
    let mut owned: BTreeMap<u32, CancellationToken> = BTreeMap::new();
    let mut lock_conn = None;
    loop {
        if lock_conn.is_none() {
            match invitrack_storage::connect(&ctx.config.database_url).await {
                Ok(conn) => lock_conn = Some(conn),
                Err(error) => tracing::warn!(%error, "cannot reach PostgreSQL for partition locks"),
            }
        }
        if let Some(conn) = lock_conn.as_mut()
            && let Err(error) = rebalance(
                &ctx, conn, &stream, &worker_id, partitions, &mut owned, &shutdown,
            )
            .await
        {
            // The session, and with it every lock, is gone: stop every partition.
            tracing::warn!(%error, "lost the partition-lock session");
            for (_, token) in std::mem::take(&mut owned) {
                token.cancel();
            }
            lock_conn = None;
        }
        ctx.stats
            .owned_partitions
            .store(owned.len() as u64, Ordering::Relaxed);
        tokio::select! {
            () = tokio::time::sleep(CLAIM_INTERVAL) => {}
            () = shutdown.cancelled() => break,
        }
    }
    if let Some(conn) = lock_conn.as_mut() {
        for number in owned.keys() {
            let _ = progress::unlock_partition(conn, &stream, *number).await;
        }
        let _ = progress::worker_gone(conn, &stream, &worker_id).await;
    }
}

async fn rebalance(
    ctx: &Arc<Context>,
    conn: &mut invitrack_storage::AsyncPgConnection,
    stream: &str,
    worker_id: &str,
    partitions: u32,
    owned: &mut BTreeMap<u32, CancellationToken>,
    shutdown: &CancellationToken,
) -> Result<(), invitrack_storage::StorageError> {
    let live = progress::worker_heartbeat(conn, stream, worker_id).await?;
    let share = (partitions as usize).div_ceil(live);
    // Partitions whose task gave up (fenced) are released too.
    let stopped: Vec<u32> = owned
        .iter()
        .filter(|(_, t)| t.is_cancelled())
        .map(|(p, _)| *p)
        .collect();
    for number in stopped {
        owned.remove(&number);
        progress::unlock_partition(conn, stream, number).await?;
    }
    while owned.len() > share {
        let Some((number, token)) = owned.pop_last() else {
            break;
        };
        token.cancel();
        progress::unlock_partition(conn, stream, number).await?;
        tracing::info!(
            partition = number,
            live_workers = live,
            "partition handed back"
        );
    }
    for number in 0..partitions {
        if owned.len() >= share {
            break;
        }
        if owned.contains_key(&number) {
            continue;
        }
        if progress::try_lock_partition(conn, stream, number).await? {
            let token = shutdown.child_token();
            owned.insert(number, token.clone());
            tokio::spawn(consume_partition(Arc::clone(ctx), number, token));
        }
    }
    Ok(())
}

async fn consume_partition(ctx: Arc<Context>, number: u32, stop: CancellationToken) {
    tracing::info!(partition = number, "partition claimed");
    // The partition's relay lives as long as its claim; commits wake it.
    let relay = Arc::new(Notify::new());
    tokio::spawn(crate::relay::relay_partition(
        Arc::clone(&ctx),
        number,
        Arc::clone(&relay),
        stop.clone(),
    ));
    // Grows after each failure in a row (NATS or PostgreSQL away, an overloaded server), so
    // retries do not pile more work onto a server that is struggling.
    let mut retry_delays = invitrack_telemetry::backoff(RETRY_DELAY, MAX_RETRY_DELAY);
    while !stop.is_cancelled() {
        let attempt = tokio::time::Instant::now();
        match consume(&ctx, number, &relay, &stop).await {
            Ok(()) => break,
            Err(error @ WorkerError::Fenced { .. }) => {
                tracing::warn!(
                    partition = number,
                    error = &error as &dyn std::error::Error,
                    "giving the partition up"
                );
                stop.cancel();
                break;
            }
            Err(error) => {
                // A consumer that ran for a while before failing starts the count again.
                if attempt.elapsed() > MAX_RETRY_DELAY {
                    retry_delays = invitrack_telemetry::backoff(RETRY_DELAY, MAX_RETRY_DELAY);
                }
                let retry_delay = retry_delays.next().unwrap_or(MAX_RETRY_DELAY);
                tracing::warn!(
                    partition = number,
                    error = &error as &dyn std::error::Error,
                    retry_in_ms = retry_delay.as_millis(),
                    "partition consumer failed; resuming from the last commit"
                );
                tokio::select! {
                    () = tokio::time::sleep(retry_delay) => {}
                    () = stop.cancelled() => {}
                }
            }
        }
    }
    ctx.stats.set_pending(number, None);
}

async fn consume(
    ctx: &Context,
    number: u32,
    relay: &Arc<Notify>,
    stop: &CancellationToken,
) -> Result<(), WorkerError> {
    let layout = &ctx.bus.layout;
    // Progress is kept per partition stream: its sequences are the stream's own.
    let stream = layout.partition_stream(number);
    let claim = {
        let mut conn = ctx.pool.get().await.map_err(pool_error)?;
        progress::claim_partition(&mut conn, &stream, number).await?
    };
    let claim = check_stream(ctx, &stream, number, claim).await?;
    let mut partition = Partition::new(
        stream.clone(),
        number,
        claim,
        layout.clone(),
        ctx.config.engine(),
        ctx.config.max_cached_guilds,
    )
    .with_lag(Arc::clone(&ctx.stats.lag))
    .with_relay(Arc::clone(relay))
    .with_relaxed_commit(!ctx.config.synchronous_commit);
    {
        let mut conn = ctx.pool.get().await.map_err(pool_error)?;
        let resumed = partition.resume_pending(&mut conn).await?;
        if resumed > 0 {
            tracing::info!(
                partition = number,
                guilds = resumed,
                "guilds with undecided joins resumed"
            );
        }
    }
    // Counted before the consumer exists, so a reconnection while it is created is seen too.
    let connects = ctx.bus.client.statistics().connects.load(Ordering::Relaxed);
    let consumer = ctx
        .bus
        .jetstream
        .create_consumer_on_stream(
            pull::Config {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: claim.last_sequence + 1,
                },
                ack_policy: AckPolicy::None,
                inactive_threshold: CONSUMER_INACTIVE,
                memory_storage: true,
                ..Default::default()
            },
            &stream,
        )
        .await
        .map_err(|e| WorkerError::jetstream("create consumer", e))?;
    let name = consumer.cached_info().name.clone();
    let result = read_and_apply(ctx, &consumer, &mut partition, connects, stop).await;
    // Best effort: a consumer not deleted here expires after CONSUMER_INACTIVE.
    if let Err(error) = ctx
        .bus
        .jetstream
        .delete_consumer_from_stream(&name, &stream)
        .await
    {
        tracing::debug!(partition = number, %error, "consumer not deleted");
    }
    result
}

/// Makes sure the claim's sequence counts in the partition stream as it is now. A stream made
/// again under the same name (NATS lost its store, the bus moved to a cluster) starts its
/// sequences again at 1, and resuming after the old number would skip its messages until new
/// ones passed it: its creation time, recorded with the progress, tells it apart (for progress
/// recorded before that time was, a stream ending below the applied sequence does). It is then
/// applied from its first message; an event applied before and found again there is applied
/// once (a join is stored once per member and time).
async fn check_stream(
    ctx: &Context,
    stream: &str,
    number: u32,
    claim: PartitionClaim,
) -> Result<PartitionClaim, WorkerError> {
    let found = ctx
        .bus
        .jetstream
        .get_stream(stream)
        .await
        .map_err(|e| WorkerError::jetstream("read the partition stream", e))?;
    let info = found.cached_info();
    // PostgreSQL keeps microseconds.
    let micros = i64::try_from(info.created.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
    let created_at = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
    if claim.stream_created_at == Some(created_at) {
        return Ok(claim);
    }
    let recreated = match claim.stream_created_at {
        Some(_) => claim.last_sequence > 0,
        None => info.state.last_sequence < claim.last_sequence,
    };
    if recreated {
        tracing::error!(
            partition = number,
            stream,
            applied_up_to = claim.last_sequence,
            stream_last = info.state.last_sequence,
            "the partition stream was made again since its events were applied; applying it from its first message"
        );
    }
    let mut conn = ctx.pool.get().await.map_err(pool_error)?;
    if progress::set_stream(
        &mut conn,
        stream,
        number,
        claim.epoch,
        claim.last_sequence,
        created_at,
        recreated,
    )
    .await?
    {
        Ok(PartitionClaim {
            last_sequence: if recreated { 0 } else { claim.last_sequence },
            stream_created_at: Some(created_at),
            ..claim
        })
    } else {
        Err(WorkerError::Fenced { partition: number })
    }
}

async fn read_and_apply(
    ctx: &Context,
    consumer: &PullConsumer,
    partition: &mut Partition,
    connects: u64,
    stop: &CancellationToken,
) -> Result<(), WorkerError> {
    let number = partition.number();
    let layout = &ctx.bus.layout;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(ctx.config.batch.max(1))
        .expires(PULL_EXPIRES)
        .heartbeat(PULL_HEARTBEAT)
        .messages()
        .await
        .map_err(|e| WorkerError::jetstream("pull messages", e))?;
    let mut delivered = Delivered::default();
    let tick = ctx.config.tick();
    let mut last_tick = tokio::time::Instant::now();
    let mut batch: Vec<StreamMessage> = Vec::with_capacity(ctx.config.batch);
    loop {
        batch.clear();
        // A new connection may be to a restarted server that lost this (memory) consumer: the
        // pull would only find out after retries or missed heartbeats, seconds later.
        if ctx.bus.client.statistics().connects.load(Ordering::Relaxed) != connects {
            return Err(WorkerError::Interrupted(Interruption::Reconnected));
        }
        // Time passes for pending joins even while messages keep coming.
        if last_tick.elapsed() >= tick {
            last_tick = tokio::time::Instant::now();
            let mut conn = ctx.pool.get().await.map_err(pool_error)?;
            let outcome = partition.tick(&mut conn).await?;
            ctx.stats.count_decisions(&outcome);
            ask_for_missed_joins(ctx, &outcome.missed_joins).await;
            ctx.stats
                .set_pending(number, Some(partition.pending_joins()));
        }
        let first = tokio::select! {
            next = tokio::time::timeout_at(last_tick + tick, messages.next()) => next,
            () = stop.cancelled() => return Ok(()),
        };
        match first {
            Err(_elapsed) => continue,
            Ok(None) => return Err(WorkerError::Interrupted(Interruption::Ended)),
            Ok(Some(message)) => batch.push(delivered.check(message)?),
        }
        // Take what has already arrived up to the batch size, waiting a moment for more when
        // the consumer's buffer runs dry: a transaction costs about the same whatever its
        // size, so under load a fuller batch is worth a few milliseconds.
        let fill_until = tokio::time::Instant::now() + BATCH_FILL_WAIT;
        while batch.len() < ctx.config.batch {
            let next = match messages.next().now_or_never() {
                Some(next) => next,
                None => match tokio::time::timeout_at(fill_until, messages.next()).await {
                    Ok(next) => next,
                    Err(_elapsed) => break,
                },
            };
            match next {
                Some(message) => batch.push(delivered.check(message)?),
                None => break,
            }
        }
        let mut conn = ctx.pool.get().await.map_err(pool_error)?;
        let applying = std::time::Instant::now();
        let outcome = partition.apply(&mut conn, &batch).await?;
        drop(conn);
        ctx.stats.batches.fetch_add(1, Ordering::Relaxed);
        ctx.stats.apply_micros.fetch_add(
            u64::try_from(applying.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        ctx.stats
            .applied
            .fetch_add(outcome.applied as u64, Ordering::Relaxed);
        ctx.stats.count_decisions(&outcome);
        ctx.stats
            .times_clamped
            .fetch_add(outcome.times_clamped as u64, Ordering::Relaxed);
        ctx.stats
            .joins_found_late
            .fetch_add(outcome.joins_found_late as u64, Ordering::Relaxed);
        ask_for_missed_joins(ctx, &outcome.missed_joins).await;
        for dead in outcome.dead_letters {
            ctx.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(partition = number, sequence = dead.sequence, subject = %dead.subject, reason = %dead.reason, "dead letter");
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Invitrack-Reason", dead.reason.to_string().as_str());
            headers.insert("Invitrack-Subject", dead.subject.as_str());
            headers.insert("Invitrack-Sequence", dead.sequence.to_string().as_str());
            headers.insert(
                "Nats-Msg-Id",
                format!("dead:{}:{}", layout.partition_stream(number), dead.sequence).as_str(),
            );
            let max_payload = ctx.bus.client.server_info().max_payload;
            let (payload, original_len) = dead_letter_payload(dead.payload, max_payload);
            if let Some(len) = original_len {
                headers.insert("Invitrack-Truncated-From", len.to_string().as_str());
            }
            // Best effort: the original stays in the partition stream until it ages out.
            match ctx
                .bus
                .jetstream
                .publish_with_headers(layout.dead_letter_subject(number), headers, payload)
                .await
            {
                Ok(ack) => {
                    if let Err(error) = ack.await {
                        tracing::error!(%error, "dead letter not stored");
                    }
                }
                Err(error) => tracing::error!(%error, "dead letter not published"),
            }
        }
    }
}

/// Asks ingest for the members who joined these guilds in these windows, after the transaction
/// that found them committed. Core NATS, best effort: the engine asks again while the uses stay
/// unexplained (`proto/invitrack/bus/v1/missed_joins.proto`).
async fn ask_for_missed_joins(ctx: &Context, wanted: &[(GuildKey, MissedJoins)]) {
    for (guild, window) in wanted {
        let request = MissedJoinsRequest {
            bot_id: guild.bot_id.get(),
            guild_id: guild.guild_id.get(),
            joined_from_ms: window.from,
            joined_to_ms: window.to,
        };
        let subject = ctx.bus.layout.missed_joins_subject(guild.bot_id);
        tracing::info!(
            guild_id = %guild.guild_id,
            from = window.from,
            to = window.to,
            "uses wait for joins the gateway may not have delivered: asking for the members who joined"
        );
        match ctx
            .bus
            .client
            .publish(subject, request.encode_to_vec().into())
            .await
        {
            Ok(()) => {
                ctx.stats.missed_joins_asked.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::warn!(%error, guild_id = %guild.guild_id, "missed joins not asked")
            }
        }
    }
}

/// Room kept for a dead letter's headers under the server's largest message.
const DEAD_LETTER_HEADER_ROOM: usize = 8 * 1024;

/// A dead letter's payload: the message as it was, or, when it would not fit under
/// `max_payload` with the dead letter's headers (a message just under the limit), its first
/// bytes and the original length, so it is never dropped silently.
fn dead_letter_payload(payload: bytes::Bytes, max_payload: usize) -> (bytes::Bytes, Option<usize>) {
    let room = max_payload.saturating_sub(DEAD_LETTER_HEADER_ROOM);
    if payload.len() <= room {
        (payload, None)
    } else {
        let len = payload.len();
        (payload.slice(..room), Some(len))
    }
}

/// The delivery sequence of the consumer so far. An unacknowledged consumer delivers each
/// message once, numbered 1, 2, 3...: a skipped number is a message lost in transit (a pull
/// answer dropped on a reconnect), after which the partition must resume from its last commit.
#[derive(Default)]
struct Delivered {
    consumer_sequence: u64,
}

impl Delivered {
    fn check(
        &mut self,
        message: Result<async_nats::jetstream::Message, MessagesError>,
    ) -> Result<StreamMessage, WorkerError> {
        let message = message.map_err(|e| WorkerError::jetstream("receive message", e))?;
        let info = message
            .info()
            .map_err(|e| WorkerError::jetstream("read message info", e))?;
        if info.consumer_sequence != self.consumer_sequence + 1 {
            return Err(WorkerError::Interrupted(Interruption::Gap {
                previous: self.consumer_sequence,
                delivered: info.consumer_sequence,
            }));
        }
        self.consumer_sequence = info.consumer_sequence;
        let sequence = info.stream_sequence;
        Ok(StreamMessage {
            sequence,
            subject: message.subject.to_string(),
            payload: message.payload.clone(),
        })
    }
}

pub(crate) fn pool_error(e: impl std::fmt::Display) -> WorkerError {
    WorkerError::Storage(invitrack_storage::StorageError::Pool(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_too_large_to_publish_keeps_its_head_and_length() {
        let max = 1024 * 1024;
        let small = bytes::Bytes::from(vec![1_u8; 100]);
        assert_eq!(dead_letter_payload(small.clone(), max), (small, None));
        let just_under = bytes::Bytes::from(vec![2_u8; max - 10]);
        let (kept, original) = dead_letter_payload(just_under, max);
        assert_eq!(original, Some(max - 10));
        assert_eq!(kept.len(), max - DEAD_LETTER_HEADER_ROOM);
        assert!(kept.iter().all(|&b| b == 2));
    }
}
