//! `invitrack-ingest` configuration: environment variables, or the same names as flags.

use invitrack_bus::BusConfig;

const DEFAULT_REQUESTS_PER_SECOND: u32 = 40;
const DEFAULT_SETTLE_MS: i64 = 150;
const DEFAULT_FORBIDDEN_RETRY_SECS: u64 = 600;
const DEFAULT_BUFFER: usize = 100_000;

/// Everything ingest needs to run.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestConfig {
    /// The bot token.
    #[arg(long, env = "DISCORD_TOKEN", hide_env_values = true)]
    pub discord_token: String,
    /// Gateway URL to connect to instead of Discord's (the simulator, or a gateway-proxy),
    /// e.g. `ws://127.0.0.1:9001`.
    #[arg(long, env = "DISCORD_GATEWAY_URL")]
    pub discord_gateway_url: Option<String>,
    /// `host:port` of a plain-HTTP Discord REST endpoint (the simulator, or
    /// twilight-http-proxy) to use instead of Discord's API.
    #[arg(long, env = "DISCORD_API_PROXY")]
    pub discord_api_proxy: Option<String>,
    /// Number of shards; by default the count Discord recommends in `GET /gateway/bot`.
    #[arg(long, env = "INGEST_SHARDS")]
    pub shards: Option<u32>,
    /// Invite-list requests per second, all guilds together. Discord's global limit is 50 per
    /// bot; staying below it leaves room for retries.
    #[arg(long, env = "INGEST_REQUESTS_PER_SECOND", default_value_t = DEFAULT_REQUESTS_PER_SECOND)]
    pub requests_per_second: u32,
    /// Least time between a member's `joined_at` and the invite read that settles the join, in
    /// ms. Keep it above the worker's `ATTRIBUTION_CLOCK_SKEW_MS`.
    #[arg(long, env = "INGEST_SETTLE_MS", default_value_t = DEFAULT_SETTLE_MS)]
    pub settle_ms: i64,
    /// How long a guild whose invites answered 403 is left alone before it is asked again
    /// (a GUILD_UPDATE or role change asks at once).
    #[arg(long, env = "INGEST_FORBIDDEN_RETRY_SECS", default_value_t = DEFAULT_FORBIDDEN_RETRY_SECS)]
    pub forbidden_retry_secs: u64,
    /// Events buffered in memory while NATS is unreachable; ingest stops reading the gateway
    /// when the buffer is full rather than dropping anything.
    #[arg(long, env = "INGEST_BUFFER", default_value_t = DEFAULT_BUFFER)]
    pub buffer: usize,
    #[command(flatten)]
    pub bus: BusConfig,
}

impl IngestConfig {
    /// The configuration the binary gets with only the token and the bus set: Discord's own
    /// endpoints and every other field at its documented default.
    #[must_use]
    pub fn new(discord_token: String, bus: BusConfig) -> Self {
        Self {
            discord_token,
            discord_gateway_url: None,
            discord_api_proxy: None,
            shards: None,
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            settle_ms: DEFAULT_SETTLE_MS,
            forbidden_retry_secs: DEFAULT_FORBIDDEN_RETRY_SECS,
            buffer: DEFAULT_BUFFER,
            bus,
        }
    }
}
