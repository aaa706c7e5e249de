//! `invitrack-bot` configuration: environment variables, or the same names as flags.

use std::net::SocketAddr;

use invitrack_bus::BusConfig;
use invitrack_webhooks::WebhookOptions;

/// Requests per second the bot sends to Discord by default. With ingest's 40 (bursts of 4)
/// and the bot's bursts of 1, no second holds more than Discord's 50 (`docs/bot.md`).
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 5;
const DEFAULT_FORBIDDEN_PAUSE_SECS: u64 = 600;
const DEFAULT_DB_CONNECTIONS: usize = 4;

/// Everything the bot needs to run.
#[derive(Debug, Clone, clap::Args)]
pub struct BotConfig {
    /// The bot token (the same bot as ingest's).
    #[arg(long, env = "DISCORD_TOKEN", hide_env_values = true)]
    pub discord_token: String,
    /// `host:port` of a plain-HTTP Discord REST endpoint (the simulator, or
    /// twilight-http-proxy) to use instead of Discord's API.
    #[arg(long, env = "DISCORD_API_PROXY")]
    pub discord_api_proxy: Option<String>,
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/invitrack"
    )]
    pub database_url: String,
    #[arg(long, env = "BOT_DB_CONNECTIONS", default_value_t = DEFAULT_DB_CONNECTIONS)]
    pub db_connections: usize,
    /// Requests per second to Discord's REST API from this process (bursts of 1). Ingest and
    /// the bot share the bot token's global 50 per second: keep
    /// `INGEST_REQUESTS_PER_SECOND + 4 + BOT_REQUESTS_PER_SECOND + 1` at most 50, summed over
    /// every process.
    #[arg(long, env = "BOT_REQUESTS_PER_SECOND", default_value_t = DEFAULT_REQUESTS_PER_SECOND)]
    pub requests_per_second: u32,
    /// 401, 403 and 429 answers in 10 minutes past which this process sends nothing to Discord
    /// until older ones age out. Discord bans the IP address at 10,000.
    #[arg(long, env = "DISCORD_REJECTION_CEILING", default_value_t = invitrack_discord::DEFAULT_REJECTION_CEILING)]
    pub rejection_ceiling: u32,
    /// How long a guild whose channel answered 403 gets no message sent to Discord (its
    /// settings changing ends the pause sooner).
    #[arg(long, env = "BOT_FORBIDDEN_PAUSE_SECS", default_value_t = DEFAULT_FORBIDDEN_PAUSE_SECS)]
    pub forbidden_pause_secs: u64,
    /// Address of the bot's Prometheus `GET /metrics`, e.g. `0.0.0.0:9103`; off when unset.
    #[arg(long, env = "BOT_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    /// Address of Discord's HTTP interactions endpoint (`POST /interactions`), for a bot whose
    /// application has an Interactions Endpoint URL; off when unset (interactions then come
    /// through ingest's gateway). Needs `DISCORD_PUBLIC_KEY`.
    #[arg(long, env = "BOT_INTERACTIONS_BIND", requires = "discord_public_key")]
    pub interactions_bind: Option<SocketAddr>,
    /// The application's public key (hex, from the developer portal), which signs the requests
    /// to the interactions endpoint.
    #[arg(long, env = "DISCORD_PUBLIC_KEY")]
    pub discord_public_key: Option<String>,
    #[command(flatten)]
    pub bus: BusConfig,
    /// The guilds' webhooks, sent from this process too (`docs/webhooks.md`).
    #[command(flatten)]
    pub webhooks: WebhookOptions,
}

impl BotConfig {
    /// The configuration the binary gets with only these set: Discord's own API and every other
    /// field at its documented default.
    #[must_use]
    pub fn new(discord_token: String, database_url: String, bus: BusConfig) -> Self {
        Self {
            discord_token,
            discord_api_proxy: None,
            database_url,
            db_connections: DEFAULT_DB_CONNECTIONS,
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            rejection_ceiling: invitrack_discord::DEFAULT_REJECTION_CEILING,
            forbidden_pause_secs: DEFAULT_FORBIDDEN_PAUSE_SECS,
            metrics_bind: None,
            interactions_bind: None,
            discord_public_key: None,
            bus,
            webhooks: WebhookOptions::default(),
        }
    }
}
