#![doc = include_str!("../README.md")]

mod apply;
mod config;
mod convert;
mod effects;
mod lag;
mod partition;

use std::sync::Arc;

use invitrack_bus::BusError;
use invitrack_storage::StorageError;
use tokio_util::sync::CancellationToken;

pub use apply::{DeadLetter, Outcome, Partition, StreamMessage};
pub use config::WorkerConfig;
pub use lag::LagHistogram;
pub use partition::WorkerStats;

/// How long a JetStream request (creating a consumer, mostly) may take.
const JETSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Why the worker (or one step of it) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error("partition {partition} was claimed by another worker")]
    Fenced { partition: u32 },
    /// A message that can never be applied; it goes to the dead-letter subject.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A broken assumption inside the worker: a bug, reported rather than panicking.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<diesel::result::Error> for WorkerError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Storage(StorageError::Query(e))
    }
}

/// Runs the worker until `shutdown` fires: migrates the database, then claims partitions and
/// applies their events.
///
/// # Errors
/// When the database or NATS cannot be set up at start.
pub async fn run(config: WorkerConfig, shutdown: CancellationToken) -> Result<(), WorkerError> {
    run_with_stats(config, shutdown, Arc::default()).await
}

/// [`run`], reporting progress into `stats` (for the demo, tests and benchmarks).
///
/// # Errors
/// When the database or NATS cannot be set up at start.
pub async fn run_with_stats(
    config: WorkerConfig,
    shutdown: CancellationToken,
    stats: Arc<WorkerStats>,
) -> Result<(), WorkerError> {
    invitrack_storage::prepare_database(&config.database_url).await?;
    let mut bus = config.bus.connect().await?;
    // Creating a filtered consumer deep into a large stream can keep a busy NATS 2.9 server
    // for many seconds. With the default 5 s timeout the worker gave up and asked again while
    // the server was still creating the first one, which only added load: a partition taken
    // over mid-stream could stall. Wait longer instead.
    let mut jetstream = bus.jetstream.clone();
    jetstream.set_timeout(JETSTREAM_TIMEOUT);
    bus.events = jetstream
        .get_stream(bus.layout.events_stream())
        .await
        .map_err(|e| WorkerError::JetStream(e.to_string()))?;
    bus.jetstream = jetstream;
    let pool = invitrack_storage::pool(&config.database_url, config.db_connections)?;
    tracing::info!(
        stream = %bus.layout.events_stream(),
        partitions = bus.layout.partitions(),
        "worker started"
    );
    partition::own_partitions(
        Arc::new(partition::Context {
            config,
            bus,
            pool,
            stats,
        }),
        shutdown,
    )
    .await;
    Ok(())
}
