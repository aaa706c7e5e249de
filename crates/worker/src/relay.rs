//! The relay of one partition (`docs/decisions.md`): publishes the decisions its commits
//! recorded in PostgreSQL, oldest first, to `{prefix}.decision.{partition}.{bot}.{guild}` with
//! `Nats-Msg-Id: decision:{id}`, waits for JetStream to store them, then marks them sent. A
//! crash between storing and marking publishes them again: JetStream drops the copies within
//! its duplicate window (2 minutes), and consumers skip ids they handled.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use invitrack_bus::proto;
use invitrack_storage::decisions;
use prost::Message as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::WorkerError;
use crate::partition::{Context, pool_error};

/// Decisions published per round.
const ROUND: i64 = 500;
/// A commit wakes the relay; this is only the fallback (a commit by the previous owner).
const POLL: Duration = Duration::from_secs(2);
const RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(16);
/// Sent decisions are kept this long (replays by hand, audits), then deleted.
const KEEP_SENT: chrono::TimeDelta = chrono::TimeDelta::days(1);
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Publishes partition `number`'s decisions until `stop`: at once when `wake` says a commit
/// recorded some, else every few seconds.
pub(crate) async fn relay_partition(
    ctx: Arc<Context>,
    number: u32,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let stream = ctx.bus.layout.partition_stream(number);
    let retry_delays = || invitrack_telemetry::backoff(RETRY_DELAY, MAX_RETRY_DELAY);
    let mut delays = retry_delays();
    let mut last_prune = tokio::time::Instant::now();
    loop {
        let wait = match publish_round(&ctx, &stream).await {
            Ok(published) => {
                delays = retry_delays();
                if published as i64 == ROUND {
                    continue;
                }
                POLL
            }
            Err(error) => {
                let wait = delays.next().unwrap_or(MAX_RETRY_DELAY);
                tracing::warn!(
                    partition = number,
                    error = &error as &dyn std::error::Error,
                    retry_in_ms = wait.as_millis(),
                    "decisions not relayed"
                );
                wait
            }
        };
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = tokio::time::Instant::now();
            if let Err(error) = prune(&ctx, &stream).await {
                tracing::warn!(
                    partition = number,
                    error = &error as &dyn std::error::Error,
                    "sent decisions not pruned"
                );
            }
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Publishes up to [`ROUND`] unsent decisions in id order and marks them sent; how many.
async fn publish_round(ctx: &Context, stream: &str) -> Result<usize, WorkerError> {
    let unsent = {
        let mut conn = ctx.pool.get().await.map_err(pool_error)?;
        decisions::unsent(&mut conn, stream, ROUND).await?
    };
    if unsent.is_empty() {
        return Ok(0);
    }
    let layout = &ctx.bus.layout;
    let mut acks = Vec::with_capacity(unsent.len());
    for row in &unsent {
        let mut message = proto::Decision::decode(row.payload.as_slice())
            .map_err(|e| WorkerError::Bus(e.into()))?;
        message.id = row.id;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("decision:{}", row.id).as_str());
        // Publishes are pipelined on one connection: they are stored in this order.
        let ack = ctx
            .bus
            .jetstream
            .publish_with_headers(
                layout.decision_subject(row.guild()),
                headers,
                message.encode_to_vec().into(),
            )
            .await
            .map_err(|e| WorkerError::jetstream("publish decision", e))?;
        acks.push(ack);
    }
    for ack in acks {
        ack.await
            .map_err(|e| WorkerError::jetstream("store decision", e))?;
    }
    let ids: Vec<i64> = unsent.iter().map(|row| row.id).collect();
    let mut conn = ctx.pool.get().await.map_err(pool_error)?;
    decisions::mark_sent(&mut conn, &ids, chrono::Utc::now()).await?;
    ctx.stats
        .decisions_published
        .fetch_add(ids.len() as u64, Ordering::Relaxed);
    Ok(ids.len())
}

async fn prune(ctx: &Context, stream: &str) -> Result<(), WorkerError> {
    let mut conn = ctx.pool.get().await.map_err(pool_error)?;
    decisions::prune_sent(&mut conn, stream, chrono::Utc::now() - KEEP_SENT).await?;
    Ok(())
}
