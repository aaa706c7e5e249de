#![doc = include_str!("../README.md")]

mod destination;
mod event;
mod metrics;
mod queue;
mod schedule;
mod sender;
pub mod signature;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use invitrack_bus::{BusConfig, BusError};
use invitrack_storage::StorageError;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use destination::{DestinationError, MAX_URL_LEN, WebhookUrl, is_public};
pub use event::{Counts, EventType, Member, WebhookEvent};
pub use schedule::RetrySchedule;

/// The `User-Agent` of deliveries.
pub const USER_AGENT: &str = concat!("invitrack-webhooks/", env!("CARGO_PKG_VERSION"));

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why webhooks cannot be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("JetStream: {operation} failed")]
    JetStream {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("the HTTP client could not be built")]
    Client(#[source] reqwest::Error),
}

impl WebhookError {
    fn jetstream(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Self::JetStream {
            operation,
            source: source.into(),
        }
    }

    fn pool(error: impl std::fmt::Display) -> Self {
        Self::Storage(StorageError::Pool(error.to_string()))
    }
}

/// How webhooks are sent: the part of a service's configuration that has a default
/// everywhere (`invitrack-bot` flattens it into its own).
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookOptions {
    /// Send webhooks from this process.
    #[arg(long = "webhooks", env = "WEBHOOKS_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub enabled: bool,
    /// Let webhooks reach loopback, private and link-local addresses (a receiver on the same
    /// host or network). Off by default: a guild admin could otherwise make invitrack call
    /// services that are not meant to be reachable.
    #[arg(long, env = "WEBHOOKS_ALLOW_PRIVATE_NETWORKS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_private_networks: bool,
    /// Seconds a receiver has to answer.
    #[arg(long, env = "WEBHOOKS_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout_secs: u64,
    /// Deliveries sent at once by this process.
    #[arg(long, env = "WEBHOOKS_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub concurrency: u64,
    /// Milliseconds before the first retry of a delivery that failed; each retry waits twice
    /// the last (up to an hour), with jitter.
    #[arg(long, env = "WEBHOOKS_FIRST_RETRY_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub first_retry_ms: u64,
    /// Hours after its event past which a delivery is given up (a failed delivery).
    #[arg(long, env = "WEBHOOKS_GIVE_UP_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=720))]
    pub give_up_hours: u64,
    /// Database connections of the webhook sender.
    #[arg(
        id = "webhooks_db_connections",
        long = "webhooks-db-connections",
        env = "WEBHOOKS_DB_CONNECTIONS",
        default_value_t = 2
    )]
    pub db_connections: usize,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_private_networks: false,
            timeout_secs: 10,
            concurrency: 16,
            first_retry_ms: 10_000,
            give_up_hours: 24,
            db_connections: 2,
        }
    }
}

impl WebhookOptions {
    #[must_use]
    pub fn schedule(&self) -> RetrySchedule {
        RetrySchedule {
            first_delay: TimeDelta::milliseconds(
                i64::try_from(self.first_retry_ms).unwrap_or(i64::MAX),
            ),
            give_up_after: TimeDelta::hours(i64::try_from(self.give_up_hours).unwrap_or(24)),
        }
    }
}

/// Everything the webhook sender needs.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub database_url: String,
    pub bus: BusConfig,
    pub options: WebhookOptions,
    /// Where its metrics go (`invitrack_webhooks_*`), if anywhere.
    pub registry: Option<prometheus::Registry>,
}

/// Delivered deliveries are kept this long (the API lists them), failed ones `KEEP_FAILED`.
const KEEP_DELIVERED: TimeDelta = TimeDelta::days(7);
const KEEP_FAILED: TimeDelta = TimeDelta::days(30);

/// Sends webhooks until `shutdown` fires: queues the decision stream's events for the guilds'
/// webhooks, and sends what is due. Any number of processes may run it.
///
/// # Errors
/// When the database or NATS cannot be set up at start.
pub async fn run(config: WebhookConfig, shutdown: CancellationToken) -> Result<(), WebhookError> {
    let options = &config.options;
    invitrack_storage::prepare_database(&config.database_url).await?;
    let pool = invitrack_storage::pool(&config.database_url, options.db_connections)?;
    let bus = config.bus.connect().await?;
    let timeout = Duration::from_secs(options.timeout_secs);
    let queued = Arc::new(Notify::new());
    let metrics = metrics::WebhookMetrics::new(config.registry.as_ref());
    let sender = sender::Sender {
        metrics,
        pool: pool.clone(),
        client: sender::client(timeout, options.allow_private_networks)?,
        allow_private: options.allow_private_networks,
        concurrency: usize::try_from(options.concurrency).unwrap_or(16),
        schedule: options.schedule(),
        timeout,
        keep_delivered: KEEP_DELIVERED,
        keep_failed: KEEP_FAILED,
        queued: Arc::clone(&queued),
    };
    let queue = Arc::new(queue::Queue {
        pool,
        bus: bus.clone(),
        queued,
    });
    tracing::info!(
        partitions = bus.layout.partitions(),
        allow_private_networks = options.allow_private_networks,
        "webhooks ready"
    );
    let mut tasks = JoinSet::new();
    for partition in 0..bus.layout.partitions() {
        tasks.spawn(Arc::clone(&queue).run(partition, shutdown.clone()));
    }
    tasks.spawn(sender.run(shutdown.clone()));
    while tasks.join_next().await.is_some() {}
    Ok(())
}
