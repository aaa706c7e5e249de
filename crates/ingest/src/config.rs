//! `invitrack-ingest` configuration: environment variables, or the same names as flags.

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
    #[arg(long, env = "INGEST_REQUESTS_PER_SECOND", default_value_t = 40)]
    pub requests_per_second: u32,
    /// Least time between a member's `joined_at` and the invite read that settles the join, in
    /// ms. Keep it above the worker's `ATTRIBUTION_CLOCK_SKEW_MS`.
    #[arg(long, env = "INGEST_SETTLE_MS", default_value_t = 150)]
    pub settle_ms: i64,
    /// How long a guild whose invites answered 403 is left alone before it is asked again
    /// (a GUILD_UPDATE or role change asks at once).
    #[arg(long, env = "INGEST_FORBIDDEN_RETRY_SECS", default_value_t = 600)]
    pub forbidden_retry_secs: u64,
    /// Events buffered in memory while NATS is unreachable; ingest stops reading the gateway
    /// when the buffer is full rather than dropping anything.
    #[arg(long, env = "INGEST_BUFFER", default_value_t = 100_000)]
    pub buffer: usize,
    #[command(flatten)]
    pub bus: invitrack_bus::BusConfig,
}
