//! `invitrack-ingest` configuration: environment variables, or the same names as flags.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use invitrack_bus::BusConfig;

const DEFAULT_REQUESTS_PER_SECOND: u32 = 40;
/// The worker's default clock allowance (50 ms) plus a margin: a read requested later than
/// `joined_at + ATTRIBUTION_CLOCK_SKEW_MS` settles the join, and waiting longer only lets more
/// joins share the read (100 ms cost 0.5 points of recall at 0.5 and 1 join/s on the model).
pub const DEFAULT_SETTLE_MS: i64 = 60;
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
    /// Total number of shards of the bot, over all ingest processes; by default the count
    /// Discord recommends in `GET /gateway/bot`.
    #[arg(long, env = "INGEST_SHARD_TOTAL")]
    pub shard_total: Option<u32>,
    /// The shards this process runs, `FIRST-LAST` (inclusive, e.g. `0-3`) or one number; by
    /// default all of them. Give each ingest process of a bot its own range.
    #[arg(long, env = "INGEST_SHARD_RANGE")]
    pub shard_range: Option<ShardRange>,
    /// Requests per second to Discord's REST API, every request of this process together
    /// (retries included). Discord's global limit is 50 per bot; several processes of one bot
    /// share it: give each its part.
    #[arg(long, env = "INGEST_REQUESTS_PER_SECOND", default_value_t = DEFAULT_REQUESTS_PER_SECOND)]
    pub requests_per_second: u32,
    /// 401, 403 and 429 answers in 10 minutes past which this process sends nothing to Discord
    /// until older ones age out. Discord bans the IP address at 10,000.
    #[arg(long, env = "DISCORD_REJECTION_CEILING", default_value_t = invitrack_discord::DEFAULT_REJECTION_CEILING)]
    pub rejection_ceiling: u32,
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
    /// Where to serve Prometheus metrics (`GET /metrics`), e.g. `0.0.0.0:9102`; off when unset.
    #[arg(long, env = "INGEST_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    #[command(flatten)]
    pub bus: BusConfig,
    #[command(flatten)]
    pub members_search: MembersSearchConfig,
}

/// Asking Discord's member search how members joined
/// (`docs/attribution.md#discords-reported-source`). Off by default: the route is undocumented.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct MembersSearchConfig {
    /// Ask Discord's member search how the members whose joins the counters left ambiguous or
    /// unknown joined (and a sample of the others), and give its answers to the engine.
    #[arg(
        long = "discord-join-source",
        env = "ATTRIBUTION_DISCORD_JOIN_SOURCE",
        default_value_t = false
    )]
    pub enabled: bool,
    /// How long after a join to ask first, ms: Discord's search finds a member only some
    /// seconds after the join (about 20 s reported).
    #[arg(
        long = "members-search-delay-ms",
        env = "INGEST_MEMBERS_SEARCH_DELAY_MS",
        default_value_t = 30_000
    )]
    pub delay_ms: u64,
    /// Member searches per second at most, out of the request budget.
    #[arg(
        long = "members-search-per-second",
        env = "INGEST_MEMBERS_SEARCH_PER_SECOND",
        default_value_t = 2.0
    )]
    pub per_second: f64,
    /// Times a member not found yet is asked for before giving up.
    #[arg(
        long = "members-search-attempts",
        env = "INGEST_MEMBERS_SEARCH_ATTEMPTS",
        default_value_t = 5
    )]
    pub attempts: u8,
    /// Share (0 to 1) of the joins the counters decided that are asked about too, to measure
    /// how often Discord and the counters disagree.
    #[arg(
        long = "members-search-sample",
        env = "INGEST_MEMBERS_SEARCH_SAMPLE",
        default_value_t = 0.05
    )]
    pub sample: f64,
}

impl Default for MembersSearchConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            delay_ms: 30_000,
            per_second: 2.0,
            attempts: 5,
            sample: 0.05,
        }
    }
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
            shard_total: None,
            shard_range: None,
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            rejection_ceiling: invitrack_discord::DEFAULT_REJECTION_CEILING,
            settle_ms: DEFAULT_SETTLE_MS,
            forbidden_retry_secs: DEFAULT_FORBIDDEN_RETRY_SECS,
            buffer: DEFAULT_BUFFER,
            metrics_bind: None,
            bus,
            members_search: MembersSearchConfig::default(),
        }
    }
}

/// An inclusive range of shard numbers, parsed from `FIRST-LAST` or `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRange {
    first: u32,
    last: u32,
}

impl ShardRange {
    /// # Errors
    /// When `first > last`.
    pub fn new(first: u32, last: u32) -> Result<Self, ShardRangeError> {
        if first > last {
            return Err(ShardRangeError(format!(
                "{first}-{last}: the first shard is after the last"
            )));
        }
        Ok(Self { first, last })
    }

    #[must_use]
    pub fn first(self) -> u32 {
        self.first
    }

    #[must_use]
    pub fn last(self) -> u32 {
        self.last
    }

    /// The shard numbers, checked against the bot's shard total.
    ///
    /// # Errors
    /// When the range reaches past `total - 1`.
    pub fn within(self, total: u32) -> Result<std::ops::RangeInclusive<u32>, ShardRangeError> {
        if self.last >= total {
            return Err(ShardRangeError(format!(
                "{self} reaches past the last shard of {total} (shards are numbered 0-{})",
                total.saturating_sub(1)
            )));
        }
        Ok(self.first..=self.last)
    }
}

impl fmt::Display for ShardRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// A shard range that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid shard range {0}")]
pub struct ShardRangeError(String);

impl FromStr for ShardRange {
    type Err = ShardRangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let number = |part: &str| {
            part.trim().parse::<u32>().map_err(|_| {
                ShardRangeError(format!(
                    "{s:?}: expected FIRST-LAST, e.g. 0-3, or one number"
                ))
            })
        };
        match s.split_once('-') {
            Some((first, last)) => Self::new(number(first)?, number(last)?),
            None => {
                let only = number(s)?;
                Self::new(only, only)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ranges_parse_and_check_against_the_total() {
        let range: ShardRange = "0-3".parse().expect("parses");
        assert_eq!(range.within(8).expect("fits"), 0..=3);
        assert_eq!(
            "5".parse::<ShardRange>()
                .expect("parses")
                .within(8)
                .expect("fits"),
            5..=5
        );
        assert_eq!(
            " 4 - 7 ".parse::<ShardRange>().expect("parses").to_string(),
            "4-7"
        );
        assert!(
            "4-7"
                .parse::<ShardRange>()
                .expect("parses")
                .within(4)
                .is_err()
        );
        assert!("3-1".parse::<ShardRange>().is_err());
        assert!("a-b".parse::<ShardRange>().is_err());
        assert!("".parse::<ShardRange>().is_err());
        assert!("-1".parse::<ShardRange>().is_err());
    }
}
