#![doc = include_str!("../README.md")]

mod apply;
mod clock;
mod commit;
mod config;
mod convert;
mod decode;
pub mod effects;
mod error;
mod guild_cache;
mod lag;
mod metrics;
mod outbox;
mod owners;
mod partition;
mod relay;
mod reports;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use apply::{Outcome, Partition};
pub use config::WorkerConfig;
pub use convert::observation;
pub use decode::{DeadLetter, DeadLetterReason, DecodeError, StreamMessage};
pub use error::{Interruption, WorkerError};
pub use lag::LagHistogram;
pub use metrics::WorkerMetrics;
pub use partition::WorkerStats;

/// How long a JetStream request (creating a consumer, mostly) may take.
const JETSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

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
    if let Some(addr) = config.metrics_bind {
        let endpoint = invitrack_telemetry::OpsEndpoint::bind(addr)
            .map_err(|source| WorkerError::MetricsBind { addr, source })?;
        let registry = prometheus::Registry::new();
        metrics::WorkerMetrics::register(Arc::clone(&stats), &registry).map_err(|e| {
            WorkerError::MetricsBind {
                addr,
                source: std::io::Error::other(e),
            }
        })?;
        let readiness = readiness(bus.client.clone(), pool.clone());
        let serving = endpoint.serve(registry, readiness, shutdown.clone());
        tokio::spawn(async move {
            if let Err(error) = serving.await {
                tracing::error!(%error, "metrics and health endpoint failed");
            }
        });
    }
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

/// Ready: NATS is connected and PostgreSQL answers.
fn readiness(
    nats: async_nats::Client,
    pool: invitrack_storage::Pool,
) -> invitrack_telemetry::Readiness {
    Arc::new(move || {
        let (nats, pool) = (nats.clone(), pool.clone());
        Box::pin(async move {
            if nats.connection_state() != async_nats::connection::State::Connected {
                return Err("NATS is not connected".to_owned());
            }
            invitrack_storage::ping(&pool)
                .await
                .map_err(|error| format!("PostgreSQL does not answer: {error}"))
        })
    })
}
