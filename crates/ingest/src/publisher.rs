//! The single path from ingest to JetStream: a bounded queue drained in order by one task that
//! publishes each event with its `Nats-Msg-Id` and waits for the stream's acknowledgement,
//! retrying until it is stored. Nothing is dropped: when NATS is away the queue (the buffer)
//! fills and the producers (gateway readers, snapshot tasks) wait, so the shards stop reading
//! and Discord holds the rest (a RESUME replays it).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use invitrack_bus::proto::guild_event::Kind;
use invitrack_bus::{BusLayout, GuildEvent, publish_event};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::IngestMetrics;

/// First and longest wait between publish attempts while NATS does not acknowledge.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

struct Outgoing {
    event: GuildEvent,
    message_id: String,
}

/// A cheap handle to enqueue events.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Outgoing>,
    metrics: Arc<IngestMetrics>,
    layout: BusLayout,
    /// Per partition, when a guild event was last queued for it (Unix ms): where clocks go.
    last_event_ms: Arc<[AtomicI64]>,
}

impl Publisher {
    /// Starts the publishing task. It ends once every handle is dropped and the queue is
    /// drained, or when `shutdown` fires (logging what it could not publish).
    pub fn start(
        js: jetstream::Context,
        layout: BusLayout,
        capacity: usize,
        metrics: Arc<IngestMetrics>,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let capacity = capacity.max(1);
        metrics
            .buffer_capacity
            .set(i64::try_from(capacity).unwrap_or(i64::MAX));
        // The drain task holds one event while it publishes it: the queue holds the rest.
        let (tx, rx) = mpsc::channel(capacity.saturating_sub(1).max(1));
        let last_event_ms = (0..layout.partitions())
            .map(|_| AtomicI64::new(0))
            .collect();
        let task = tokio::spawn(drain(
            js,
            layout.clone(),
            rx,
            Arc::clone(&metrics),
            shutdown,
        ));
        (
            Self {
                tx,
                metrics,
                layout,
                last_event_ms,
            },
            task,
        )
    }

    /// Queues one event. Waits while the buffer is full: the caller (a shard reader) stops
    /// reading meanwhile, which is the backpressure.
    pub async fn send(&self, event: GuildEvent, message_id: String) {
        if let Some(kind) = &event.kind {
            self.metrics.count_received(kind);
            if !matches!(kind, Kind::ShardClock(_)) {
                let partition = self.layout.partition_of(event.guild());
                self.last_event_ms[partition as usize]
                    .fetch_max(event.observed_at_ms, Ordering::Relaxed);
            }
        }
        let outgoing = Outgoing { event, message_id };
        let outgoing = match self.tx.try_send(outgoing) {
            Ok(()) => {
                self.metrics.buffered.inc();
                return;
            }
            Err(mpsc::error::TrySendError::Full(outgoing)) => outgoing,
            Err(mpsc::error::TrySendError::Closed(outgoing)) => {
                self.log_not_queued(&outgoing);
                return;
            }
        };
        let waits = self.metrics.buffer_full_waits.get();
        self.metrics.buffer_full_waits.inc();
        // Once per thousand waits: while NATS is away every event waits.
        if waits.is_multiple_of(1000) {
            tracing::warn!(
                guild_id = outgoing.event.guild_id,
                capacity = self.tx.max_capacity() + 1,
                "event buffer full (NATS slow or unreachable); waiting before reading more"
            );
        }
        match self.tx.send(outgoing).await {
            Ok(()) => {
                self.metrics.buffered.inc();
            }
            Err(mpsc::error::SendError(outgoing)) => self.log_not_queued(&outgoing),
        }
    }

    /// The partitions a guild event was queued for since `since_ms`.
    pub(crate) fn partitions_active_since(&self, since_ms: i64) -> Vec<u32> {
        (0..self.layout.partitions())
            .filter(|p| self.last_event_ms[*p as usize].load(Ordering::Relaxed) >= since_ms)
            .collect()
    }

    #[must_use]
    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    pub(crate) fn metrics_arc(&self) -> Arc<IngestMetrics> {
        Arc::clone(&self.metrics)
    }
}

impl Publisher {
    fn log_not_queued(&self, outgoing: &Outgoing) {
        tracing::error!(
            guild_id = outgoing.event.guild_id,
            message_id = %outgoing.message_id,
            "publisher stopped; event not published"
        );
    }
}

async fn drain(
    js: jetstream::Context,
    layout: BusLayout,
    mut rx: mpsc::Receiver<Outgoing>,
    metrics: Arc<IngestMetrics>,
    shutdown: CancellationToken,
) {
    let mut failing = false;
    while let Some(out) = rx.recv().await {
        let mut delays = invitrack_telemetry::backoff(FIRST_BACKOFF, MAX_BACKOFF);
        loop {
            let stored = match publish_event(&js, &layout, &out.event, &out.message_id).await {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match stored {
                Ok(()) => {
                    if std::mem::replace(&mut failing, false) {
                        metrics.publish_failing.set(0);
                        tracing::info!(
                            buffered = rx.len(),
                            "NATS acknowledges again; draining the buffer"
                        );
                    }
                    metrics.buffered.dec();
                    if let Some(kind) = &out.event.kind {
                        metrics.count_published(kind);
                    }
                    break;
                }
                Err(error) => {
                    metrics.publish_retries.inc();
                    if std::mem::replace(&mut failing, true) {
                        tracing::debug!(guild_id = out.event.guild_id, %error, "publish failed again");
                    } else {
                        metrics.publish_failing.set(1);
                        tracing::warn!(guild_id = out.event.guild_id, %error, buffered = rx.len() + 1, "publish failed; buffering and retrying");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(delays.next().unwrap_or(MAX_BACKOFF)) => {}
                        () = shutdown.cancelled() => {
                            tracing::error!(unpublished = rx.len() + 1, "shutting down with unpublished events");
                            return;
                        }
                    }
                }
            }
        }
    }
}
