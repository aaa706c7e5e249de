//! The single path from ingest to JetStream: a bounded queue drained in order by one task that
//! publishes each event with its `Nats-Msg-Id` and waits for the stream's acknowledgement,
//! retrying until it is stored. Nothing is dropped: when NATS is away the queue fills and the
//! producers (gateway readers, snapshot tasks) wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use invitrack_bus::{BusLayout, GuildEvent, publish_event};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Counters a metrics endpoint or a test can read.
#[derive(Debug, Default)]
pub struct PublisherStats {
    pub published: AtomicU64,
    pub retries: AtomicU64,
    pub queued: AtomicU64,
}

struct Outgoing {
    event: GuildEvent,
    message_id: String,
}

/// A cheap handle to enqueue events.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Outgoing>,
    stats: Arc<PublisherStats>,
}

impl Publisher {
    /// Starts the publishing task. It ends once every handle is dropped and the queue is
    /// drained, or when `shutdown` fires.
    pub fn start(
        js: jetstream::Context,
        layout: BusLayout,
        capacity: usize,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stats = Arc::new(PublisherStats::default());
        let task = tokio::spawn(drain(js, layout, rx, Arc::clone(&stats), shutdown));
        (Self { tx, stats }, task)
    }

    /// Queues one event. Waits while the queue is full.
    pub async fn send(&self, event: GuildEvent, message_id: String) {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Outgoing { event, message_id }).await.is_err() {
            tracing::error!("publisher stopped; event not queued");
        }
    }

    #[must_use]
    pub fn stats(&self) -> &PublisherStats {
        &self.stats
    }
}

async fn drain(
    js: jetstream::Context,
    layout: BusLayout,
    mut rx: mpsc::Receiver<Outgoing>,
    stats: Arc<PublisherStats>,
    shutdown: CancellationToken,
) {
    while let Some(out) = rx.recv().await {
        let mut backoff = Duration::from_millis(50);
        loop {
            let stored = match publish_event(&js, &layout, &out.event, &out.message_id).await {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match stored {
                Ok(()) => {
                    stats.published.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(error) => {
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(guild_id = out.event.guild_id, %error, "publish failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.cancelled() => {
                            tracing::error!(pending = rx.len() + 1, "shutting down with unpublished events");
                            return;
                        }
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
