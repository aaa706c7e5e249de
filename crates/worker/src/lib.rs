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
pub use convert::observation;
pub use lag::LagHistogram;
pub use partition::WorkerStats;

/// How long a JetStream request (creating a consumer, mostly) may take.
const JETSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

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
    // A consumer creation that times out on a busy server may still be carried out: a longer
    // wait than the default 5 s leaves fewer consumers behind and asks the server less often.
    bus.jetstream.set_timeout(JETSTREAM_TIMEOUT);
    let pool = invitrack_storage::pool(&config.database_url, config.db_connections)?;
    tracing::info!(
        streams = %bus.layout.events_group(),
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
