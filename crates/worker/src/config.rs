//! `invitrack-worker` configuration.

use std::net::SocketAddr;
use std::time::Duration;

use invitrack_attribution::EngineConfig;
use invitrack_bus::BusConfig;

const DEFAULT_DB_CONNECTIONS: usize = 4;
const DEFAULT_MAX_CACHED_GUILDS: usize = 2_000;
const DEFAULT_BATCH: usize = 500;
/// As often as ingest's clock comes: a join's decision waits for the tick after the clock.
const DEFAULT_TICK_MS: u64 = 100;

#[derive(Debug, Clone, clap::Args)]
pub struct WorkerConfig {
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/invitrack"
    )]
    pub database_url: String,
    #[command(flatten)]
    pub bus: BusConfig,
    /// PostgreSQL connections this worker uses for applying events.
    #[arg(long, env = "WORKER_DB_CONNECTIONS", default_value_t = DEFAULT_DB_CONNECTIONS)]
    pub db_connections: usize,
    /// Guild states kept in memory per partition; idle ones beyond it are reloaded from
    /// PostgreSQL when they are next needed.
    #[arg(long, env = "WORKER_MAX_CACHED_GUILDS", default_value_t = DEFAULT_MAX_CACHED_GUILDS)]
    pub max_cached_guilds: usize,
    /// Most messages applied in one transaction.
    #[arg(long, env = "WORKER_BATCH", default_value_t = DEFAULT_BATCH)]
    pub batch: usize,
    /// How often guilds with undecided joins are looked at, in ms (also while messages keep
    /// arriving).
    #[arg(long, env = "WORKER_TICK_MS", default_value_t = DEFAULT_TICK_MS)]
    pub tick_ms: u64,
    /// Wait for PostgreSQL to flush each batch's commit to disk. Off by default: a commit lost
    /// in a PostgreSQL crash loses the batch's effects and its sequence together, and the
    /// worker applies those events again from the stream, so nothing is lost or doubled.
    #[arg(long, env = "WORKER_SYNCHRONOUS_COMMIT", default_value_t = false, action = clap::ArgAction::Set)]
    pub synchronous_commit: bool,
    /// Allowed difference between Discord's `joined_at` and the invite counter moving, in ms.
    #[arg(long, env = "ATTRIBUTION_CLOCK_SKEW_MS", default_value_t = EngineConfig::default().clock_skew_ms)]
    pub clock_skew_ms: i64,
    /// Longest delay between a join and ingest seeing its GUILD_MEMBER_ADD, in ms, assumed
    /// while ingest has not measured its shard's delivery lag.
    #[arg(long, env = "ATTRIBUTION_GATEWAY_LAG_MS", default_value_t = EngineConfig::default().gateway_lag_ms)]
    pub gateway_lag_ms: i64,
    /// The least gateway-lag allowance, in ms, however short the lag ingest measured: set it to
    /// `ATTRIBUTION_GATEWAY_LAG_MS` for a fixed allowance.
    #[arg(long, env = "ATTRIBUTION_MIN_GATEWAY_LAG_MS", default_value_t = EngineConfig::default().min_gateway_lag_ms)]
    pub min_gateway_lag_ms: i64,
    /// A join still undecided after this long is recorded as unknown, in ms.
    #[arg(long, env = "ATTRIBUTION_MAX_PENDING_MS", default_value_t = EngineConfig::default().max_pending_ms)]
    pub max_pending_ms: i64,
    /// Where to serve Prometheus metrics and health (`GET /metrics`, `/health/live`,
    /// `/health/ready`), e.g. `0.0.0.0:9105`; off when unset.
    #[arg(long, env = "WORKER_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
}

impl WorkerConfig {
    /// The configuration the binary gets with only these two set: every other field at its
    /// documented default. For the demo, tests and benchmarks, which change a few fields.
    #[must_use]
    pub fn new(database_url: String, bus: BusConfig) -> Self {
        let engine = EngineConfig::default();
        Self {
            database_url,
            bus,
            db_connections: DEFAULT_DB_CONNECTIONS,
            max_cached_guilds: DEFAULT_MAX_CACHED_GUILDS,
            batch: DEFAULT_BATCH,
            tick_ms: DEFAULT_TICK_MS,
            synchronous_commit: false,
            clock_skew_ms: engine.clock_skew_ms,
            gateway_lag_ms: engine.gateway_lag_ms,
            min_gateway_lag_ms: engine.min_gateway_lag_ms,
            max_pending_ms: engine.max_pending_ms,
            metrics_bind: None,
        }
    }

    #[must_use]
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            clock_skew_ms: self.clock_skew_ms,
            gateway_lag_ms: self.gateway_lag_ms,
            min_gateway_lag_ms: self.min_gateway_lag_ms,
            max_pending_ms: self.max_pending_ms,
        }
    }

    #[must_use]
    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.tick_ms.max(10))
    }
}
