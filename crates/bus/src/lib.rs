#![doc = include_str!("../README.md")]

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use bytes::Bytes;
use prost::Message;

/// The generated bus messages.
#[allow(clippy::all, clippy::pedantic)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/invitrack.bus.v1.rs"));
}

pub use proto::{
    Decision, GuildEvent, InteractionReceived, MissedJoinsRequest, decision::Kind as DecisionKind,
    guild_event::Kind as EventKind,
};

use invitrack_model::{BotId, GuildId, GuildKey};

/// Default number of partitions guilds are spread over. Changing it re-maps guilds, so it is
/// fixed per deployment (see the worker's README).
pub const DEFAULT_PARTITIONS: u32 = 16;

/// How long JetStream remembers a `Nats-Msg-Id` to drop a duplicate publish, by default
/// (`BUS_DUPLICATE_WINDOW_SECS`).
pub const DEDUP_WINDOW: Duration = Duration::from_secs(120);

/// Default byte limit of each stream (`BUS_MAX_BYTES`): none (0), the streams are bounded by
/// `BUS_MAX_AGE_HOURS` alone. JetStream reserves a stream's byte limit in its store when the
/// stream is created, so a limit costs its full size on every server holding a copy from the
/// start: 1 GiB each would reserve 18 GiB for 16 partitions, more than a small host's disk, and
/// refuse the streams ("insufficient storage resources"). A deployment that wants the bound sets
/// it knowing its disk (`docs/operations.md#a-replicated-bus`).
pub const DEFAULT_MAX_BYTES: i64 = 0;

/// Most replicas JetStream keeps of a stream.
pub const MAX_REPLICAS: usize = 5;

/// Errors of the bus layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    #[error("invalid bus prefix {0:?}: use letters, digits, '-' and '_' only")]
    InvalidPrefix(String),
    #[error("invalid NATS_URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("could not connect to NATS at {url}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("partition count must be at least 1")]
    NoPartitions,
    #[error(
        "stream {0} of an earlier version holds every partition's events: let the earlier \
         workers apply them, then delete it (`nats stream rm {0}`)"
    )]
    SingleEventStream(String),
    #[error("could not create or update stream {stream}")]
    Stream {
        stream: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("could not publish to {subject}")]
    Publish {
        subject: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("malformed bus message: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("bus message has no event kind")]
    EmptyEvent,
    #[error("subject {0:?} is not a guild event subject")]
    UnexpectedSubject(String),
}

/// Where invitrack's messages live on NATS, derived from one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusLayout {
    prefix: String,
    partitions: u32,
}

impl BusLayout {
    /// # Errors
    /// When the prefix cannot be used inside subject and stream names, or `partitions` is 0.
    pub fn new(prefix: &str, partitions: u32) -> Result<Self, BusError> {
        let valid = !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(BusError::InvalidPrefix(prefix.to_owned()));
        }
        if partitions == 0 {
            return Err(BusError::NoPartitions);
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            partitions,
        })
    }

    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    #[must_use]
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The JetStream stream holding one partition's guild events.
    #[must_use]
    pub fn partition_stream(&self, partition: u32) -> String {
        format!("{}_{partition}", self.events_group())
    }

    /// The JetStream streams of every partition, in partition order.
    #[must_use]
    pub fn partition_streams(&self) -> Vec<String> {
        (0..self.partitions)
            .map(|p| self.partition_stream(p))
            .collect()
    }

    /// What the partition streams have in common: the name workers share partition locks and
    /// liveness under. Also the name of the single event stream of earlier versions.
    #[must_use]
    pub fn events_group(&self) -> String {
        format!(
            "{}_EVENTS",
            self.prefix.to_ascii_uppercase().replace('-', "_")
        )
    }

    /// The JetStream stream holding dead letters.
    #[must_use]
    pub fn dead_letter_stream(&self) -> String {
        format!(
            "{}_DEAD",
            self.prefix.to_ascii_uppercase().replace('-', "_")
        )
    }

    /// The JetStream stream holding the workers' decisions (`docs/decisions.md`).
    #[must_use]
    pub fn decision_stream(&self) -> String {
        format!(
            "{}_DECISIONS",
            self.prefix.to_ascii_uppercase().replace('-', "_")
        )
    }

    /// The subject of one guild's decisions: `{prefix}.decision.{partition}.{bot}.{guild}`,
    /// so a consumer can take a share of the partitions, or one bot, or one guild.
    #[must_use]
    pub fn decision_subject(&self, guild: GuildKey) -> String {
        let partition = self.partition_of(guild);
        let GuildKey { bot_id, guild_id } = guild;
        format!("{}.decision.{partition}.{bot_id}.{guild_id}", self.prefix)
    }

    /// The subjects of every decision.
    #[must_use]
    pub fn decision_filter(&self) -> String {
        format!("{}.decision.>", self.prefix)
    }

    /// Where ingest publishes `bot`'s interactions, with core NATS
    /// (`proto/invitrack/bus/v1/interactions.proto`).
    #[must_use]
    pub fn interaction_subject(&self, bot: BotId) -> String {
        format!("{}.interaction.{bot}", self.prefix)
    }

    /// Where workers ask ingest for the members who joined a guild of `bot` in a window, with
    /// core NATS (`proto/invitrack/bus/v1/missed_joins.proto`).
    #[must_use]
    pub fn missed_joins_subject(&self, bot: BotId) -> String {
        format!("{}.missed-joins.{bot}", self.prefix)
    }

    /// The queue group `bot`'s replicas share its interactions in.
    #[must_use]
    pub fn interaction_group(&self, bot: BotId) -> String {
        format!("{}-bot-{bot}", self.prefix)
    }

    /// The partition a guild's events belong to: a stable mix of both ids.
    #[must_use]
    pub fn partition_of(&self, guild: GuildKey) -> u32 {
        // splitmix64 finaliser: snowflakes share their low bits, so mix before the modulo.
        let mut z = guild.guild_id.get() ^ guild.bot_id.get().rotate_left(32);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        u32::try_from(z % u64::from(self.partitions)).unwrap_or(0)
    }

    /// The subject of one guild's events.
    #[must_use]
    pub fn guild_subject(&self, guild: GuildKey) -> String {
        let partition = self.partition_of(guild);
        let GuildKey { bot_id, guild_id } = guild;
        format!("{}.guild.{partition}.{bot_id}.{guild_id}", self.prefix)
    }

    /// The subject an event is published on: its guild's, or for a [`proto::ShardClock`] the
    /// partition it names (with guild id 0).
    #[must_use]
    pub fn event_subject(&self, event: &GuildEvent) -> String {
        match &event.kind {
            Some(EventKind::ShardClock(clock)) => format!(
                "{}.guild.{}.{}.0",
                self.prefix, clock.partition, event.bot_id
            ),
            _ => self.guild_subject(event.guild()),
        }
    }

    /// The subjects of every guild of one partition: what its stream captures.
    #[must_use]
    pub fn partition_filter(&self, partition: u32) -> String {
        format!("{}.guild.{partition}.>", self.prefix)
    }

    /// Where a message that could not be applied is parked.
    #[must_use]
    pub fn dead_letter_subject(&self, partition: u32) -> String {
        format!("{}.dead.{partition}", self.prefix)
    }

    /// Reads the partition and the guild back from a guild subject (guild id 0 for ingest's
    /// clock).
    ///
    /// # Errors
    /// When the subject is not one of this layout's guild subjects.
    pub fn parse_guild_subject(&self, subject: &str) -> Result<(u32, GuildKey), BusError> {
        let bad = || BusError::UnexpectedSubject(subject.to_owned());
        let rest = subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|s| s.strip_prefix(".guild."))
            .ok_or_else(bad)?;
        let mut parts = rest.split('.');
        let (Some(p), Some(b), Some(g), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let id = |raw: &str| raw.parse::<u64>().map_err(|_| bad());
        Ok((
            p.parse().map_err(|_| bad())?,
            GuildKey::new(BotId::new(id(b)?), GuildId::new(id(g)?)),
        ))
    }
}

impl GuildEvent {
    /// The guild the event is about (guild id 0 for ingest's clock).
    #[must_use]
    pub fn guild(&self) -> GuildKey {
        GuildKey::new(BotId::new(self.bot_id), GuildId::new(self.guild_id))
    }
}

/// How the streams are kept: what `ensure_streams` creates them with or updates them to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// How long messages are kept (limits retention).
    pub max_age: Duration,
    /// Copies JetStream keeps of each stream, on different servers of a cluster (1..=5).
    pub replicas: usize,
    /// Byte limit of each stream, 0 for none. At the limit the event and decision streams
    /// refuse new messages (`DiscardPolicy::New`): publishers keep them and retry, nothing
    /// unconsumed is discarded.
    pub max_bytes: i64,
    /// How long a `Nats-Msg-Id` is remembered to drop a duplicate publish.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(72 * 3600),
            replicas: 1,
            max_bytes: DEFAULT_MAX_BYTES,
            duplicate_window: DEDUP_WINDOW,
        }
    }
}

impl StreamSettings {
    fn stream(
        &self,
        name: String,
        subjects: String,
        discard: stream::DiscardPolicy,
    ) -> stream::Config {
        stream::Config {
            name,
            subjects: vec![subjects],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            max_age: self.max_age,
            // JetStream's "no limit" is -1.
            max_bytes: if self.max_bytes > 0 {
                self.max_bytes
            } else {
                -1
            },
            discard,
            num_replicas: self.replicas,
            // The server caps the window at max_age.
            duplicate_window: self.duplicate_window.min(self.max_age),
            ..Default::default()
        }
    }
}

/// The configurations of every stream of a layout: the dead letters, the decisions, then the
/// partitions in order.
#[must_use]
pub fn stream_configs(layout: &BusLayout, settings: &StreamSettings) -> Vec<stream::Config> {
    // Dead letters are best effort (the original stays in its partition stream): when full,
    // the oldest go.
    let mut configs = vec![
        settings.stream(
            layout.dead_letter_stream(),
            format!("{}.dead.>", layout.prefix()),
            stream::DiscardPolicy::Old,
        ),
        settings.stream(
            layout.decision_stream(),
            layout.decision_filter(),
            stream::DiscardPolicy::New,
        ),
    ];
    configs.extend((0..layout.partitions()).map(|partition| {
        settings.stream(
            layout.partition_stream(partition),
            layout.partition_filter(partition),
            stream::DiscardPolicy::New,
        )
    }));
    configs
}

/// Creates the partition, decision and dead-letter streams, or updates them to this
/// configuration (replicas, limits, duplicate window) when they were created with others.
///
/// Each partition has a stream of its own, capturing `{prefix}.guild.{partition}.>`: a worker
/// reads it with an unfiltered consumer. A consumer filtered on one partition of a shared
/// stream made NATS 2.9 count its pending messages by scanning the stream's last block on
/// every delivery while it lagged, which stalled every publisher and consumer of the stream
/// (BENCHMARKS.md of the worker has the evidence).
///
/// Events are kept (limits retention) rather than removed on acknowledgement: each worker
/// partition replays from the sequence it last committed in PostgreSQL, so the stream must still
/// hold what a worker has not committed yet. A full event or decision stream refuses new
/// messages rather than discarding unconsumed ones.
///
/// # Errors
/// When JetStream refuses a stream configuration, or the single event stream of an earlier
/// version still exists (its subjects overlap the partition streams').
pub async fn ensure_streams(
    js: &jetstream::Context,
    layout: &BusLayout,
    settings: &StreamSettings,
) -> Result<(), BusError> {
    if js.get_stream(layout.events_group()).await.is_ok() {
        return Err(BusError::SingleEventStream(layout.events_group()));
    }
    for config in stream_configs(layout, settings) {
        create_or_update(js, config).await?;
    }
    Ok(())
}

/// Every guild event stored in the partition streams with its subject, in the order JetStream
/// stored them (by store time; a guild's events keep their stream order). For tests and tools.
///
/// # Errors
/// When a stream or message cannot be read, or a message is not a guild event.
pub async fn read_events(
    js: &jetstream::Context,
    layout: &BusLayout,
) -> Result<Vec<(String, GuildEvent)>, BusError> {
    let read_error = |stream: &str, e: Box<dyn std::error::Error + Send + Sync>| BusError::Stream {
        stream: stream.to_owned(),
        source: e,
    };
    let mut stored = Vec::new();
    for name in layout.partition_streams() {
        let mut stream = js
            .get_stream(&name)
            .await
            .map_err(|e| read_error(&name, e.into()))?;
        let state = stream
            .info()
            .await
            .map_err(|e| read_error(&name, e.into()))?
            .state
            .clone();
        for sequence in state.first_sequence.max(1)..=state.last_sequence {
            let message = stream
                .get_raw_message(sequence)
                .await
                .map_err(|e| read_error(&name, e.into()))?;
            let event = decode_event(&message.payload)?;
            stored.push((message.time, message.subject.to_string(), event));
        }
    }
    // Stable: events stored in the same nanosecond stay in partition and stream order.
    stored.sort_by_key(|(time, _, _)| *time);
    Ok(stored
        .into_iter()
        .map(|(_, subject, event)| (subject, event))
        .collect())
}

/// Deletes the partition and dead-letter streams (tests and tools cleaning up after a run).
pub async fn delete_streams(js: &jetstream::Context, layout: &BusLayout) {
    for name in layout
        .partition_streams()
        .into_iter()
        .chain([layout.dead_letter_stream(), layout.decision_stream()])
    {
        let _ = js.delete_stream(&name).await;
    }
}

/// Whether an existing stream differs from `wanted` in what `ensure_streams` sets.
fn differs(existing: &stream::Config, wanted: &stream::Config) -> bool {
    existing.subjects != wanted.subjects
        || existing.max_age != wanted.max_age
        || existing.max_bytes != wanted.max_bytes
        || existing.discard != wanted.discard
        || existing.num_replicas.max(1) != wanted.num_replicas.max(1)
        || existing.duplicate_window != wanted.duplicate_window
}

async fn create_or_update(js: &jetstream::Context, config: stream::Config) -> Result<(), BusError> {
    let name = config.name.clone();
    let wrap = |e: Box<dyn std::error::Error + Send + Sync>| BusError::Stream {
        stream: name.clone(),
        source: e,
    };
    let configured = |mut stream: jetstream::stream::Stream| async move {
        stream.info().await.map(|info| info.config.clone())
    };
    let existing = match js.get_stream(&config.name).await {
        Ok(stream) => Some(configured(stream).await.map_err(|e| wrap(e.into()))?),
        Err(_) => match js.create_stream(config.clone()).await {
            Ok(_) => None,
            // Another service created it meanwhile: compare with what it made.
            Err(create) => match js.get_stream(&config.name).await {
                Ok(stream) => Some(configured(stream).await.map_err(|e| wrap(e.into()))?),
                Err(_) => return Err(wrap(create.into())),
            },
        },
    };
    if let Some(existing) = existing
        && differs(&existing, &config)
    {
        tracing::info!(
            stream = %config.name,
            replicas = config.num_replicas,
            max_bytes = config.max_bytes,
            "updating the stream's configuration"
        );
        js.update_stream(&config)
            .await
            .map_err(|e| wrap(e.into()))?;
    }
    Ok(())
}

/// Publishes one guild event with a `Nats-Msg-Id`, so a retried publish is stored once.
/// Returns the pending acknowledgement: awaiting it confirms the event is stored.
///
/// # Errors
/// When the message cannot be sent to the server.
pub async fn publish_event(
    js: &jetstream::Context,
    layout: &BusLayout,
    event: &GuildEvent,
    message_id: &str,
) -> Result<PublishAckFuture, BusError> {
    let subject = layout.event_subject(event);
    let payload = Bytes::from(event.encode_to_vec());
    let message = jetstream::message::PublishMessage::build()
        .payload(payload)
        .message_id(message_id);
    js.send_publish(subject.clone(), message)
        .await
        .map_err(|e| BusError::Publish {
            subject,
            source: e.into(),
        })
}

/// Decodes a guild event and checks it names a kind.
///
/// # Errors
/// When the bytes are not a `GuildEvent` or carry no event kind.
pub fn decode_event(payload: &[u8]) -> Result<GuildEvent, BusError> {
    let event = GuildEvent::decode(payload)?;
    if event.kind.is_none() {
        return Err(BusError::EmptyEvent);
    }
    Ok(event)
}

/// Where the bus is, shared by ingest and the worker.
#[derive(Debug, Clone, clap::Args)]
pub struct BusConfig {
    /// The NATS server, or several servers of one cluster separated by commas
    /// (`nats://a:4222,nats://b:4222`): the client connects to any of them and moves to another
    /// when one goes away.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Prefix of every stream and subject: deployments, tests and demos sharing one NATS server
    /// use different prefixes.
    #[arg(long, env = "BUS_PREFIX", default_value = "invitrack")]
    pub bus_prefix: String,
    /// Number of partitions guilds are spread over. Fixed for a deployment.
    #[arg(long, env = "BUS_PARTITIONS", default_value_t = DEFAULT_PARTITIONS)]
    pub bus_partitions: u32,
    /// How long the event streams keep messages, in hours.
    #[arg(long, env = "BUS_MAX_AGE_HOURS", default_value_t = 72)]
    pub bus_max_age_hours: u64,
    /// Copies JetStream keeps of every stream (1 to 5; more than 1 needs a NATS cluster of at
    /// least that many servers). Existing streams are updated to it at start-up.
    #[arg(long, env = "BUS_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=5))]
    pub bus_replicas: u8,
    /// Byte limit of each stream, 0 for none (the age limit alone); a full event or decision
    /// stream refuses new messages (ingest keeps them and retries) instead of discarding
    /// unconsumed ones. JetStream reserves it on disk per stream: see [`DEFAULT_MAX_BYTES`].
    #[arg(long, env = "BUS_MAX_BYTES", default_value_t = DEFAULT_MAX_BYTES,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub bus_max_bytes: i64,
    /// How long JetStream remembers a publish's `Nats-Msg-Id` to drop a repeated publish, in
    /// seconds.
    #[arg(long, env = "BUS_DUPLICATE_WINDOW_SECS", default_value_t = DEDUP_WINDOW.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub bus_duplicate_window_secs: u64,
}

impl Default for BusConfig {
    /// The command line's defaults.
    fn default() -> Self {
        Self {
            nats_url: "nats://127.0.0.1:4222".to_owned(),
            bus_prefix: "invitrack".to_owned(),
            bus_partitions: DEFAULT_PARTITIONS,
            bus_max_age_hours: 72,
            bus_replicas: 1,
            bus_max_bytes: DEFAULT_MAX_BYTES,
            bus_duplicate_window_secs: DEDUP_WINDOW.as_secs(),
        }
    }
}

/// The servers of a `NATS_URL`: one URL or several separated by commas (blanks around each
/// are ignored). A server without a scheme is taken as `nats://`.
///
/// # Errors
/// When the list is empty or a server is not a valid address.
pub fn parse_servers(url: &str) -> Result<Vec<async_nats::ServerAddr>, BusError> {
    let invalid = |reason: String| BusError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let servers = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|server| {
            server
                .parse::<async_nats::ServerAddr>()
                .map_err(|e| invalid(format!("{server:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(invalid("no server".to_owned()));
    }
    Ok(servers)
}

impl BusConfig {
    #[must_use]
    pub fn max_age(&self) -> Duration {
        Duration::from_secs(self.bus_max_age_hours * 3600)
    }

    /// What the streams are created with or updated to.
    #[must_use]
    pub fn stream_settings(&self) -> StreamSettings {
        StreamSettings {
            max_age: self.max_age(),
            replicas: usize::from(self.bus_replicas).clamp(1, MAX_REPLICAS),
            max_bytes: self.bus_max_bytes,
            duplicate_window: Duration::from_secs(self.bus_duplicate_window_secs),
        }
    }

    /// # Errors
    /// When the prefix or partition count is invalid.
    pub fn layout(&self) -> Result<BusLayout, BusError> {
        BusLayout::new(&self.bus_prefix, self.bus_partitions)
    }

    /// A NATS client connected to one of the servers of `NATS_URL`. It reconnects for ever,
    /// to whichever server of the list (or of the cluster, which tells clients its servers)
    /// answers.
    ///
    /// # Errors
    /// When `NATS_URL` is invalid or no server can be reached.
    pub async fn client(&self) -> Result<async_nats::Client, BusError> {
        let servers = parse_servers(&self.nats_url)?;
        async_nats::ConnectOptions::new()
            .max_reconnects(None)
            .connect(servers)
            .await
            .map_err(|e| BusError::Connect {
                url: self.nats_url.clone(),
                source: e,
            })
    }

    /// Connects to NATS and makes sure the streams exist with this configuration.
    ///
    /// # Errors
    /// When NATS cannot be reached or refuses the streams.
    pub async fn connect(&self) -> Result<Bus, BusError> {
        let layout = self.layout()?;
        let client = self.client().await?;
        if self.bus_max_bytes > 0 {
            warn_if_discard_new_unsafe(&client.server_info().version);
        }
        let jetstream = jetstream::new(client.clone());
        ensure_streams(&jetstream, &layout, &self.stream_settings()).await?;
        Ok(Bus {
            client,
            jetstream,
            layout,
        })
    }
}

/// Whether a nats-server of this version may drop a full `DiscardPolicy::New` stream's oldest
/// messages instead of refusing the new one (seen with 2.9.10; fixed in the 2.10 series,
/// `docs/operations.md#a-replicated-bus`). Conservative: every version before 2.10.7.
#[must_use]
pub fn discard_new_unsafe(version: &str) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    version < (2, 10, 7)
}

fn warn_if_discard_new_unsafe(version: &str) {
    if discard_new_unsafe(version) {
        tracing::warn!(
            nats_version = version,
            "this nats-server may drop the oldest events of a stream that reaches BUS_MAX_BYTES \
             instead of refusing new ones (docs/operations.md#a-replicated-bus): upgrade NATS, \
             or keep BUS_MAX_BYTES well above BUS_MAX_AGE_HOURS of events, or unset it"
        );
    }
}

/// A connected bus: the client, its JetStream context and the layout.
#[derive(Debug, Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub layout: BusLayout,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip_and_stay_in_range() {
        let layout = BusLayout::new("it-test_1", 7).expect("valid layout");
        for guild in [0_u64, 1, 81_384_788_765_712_384, u64::MAX] {
            let key = GuildKey::new(BotId::new(42), GuildId::new(guild));
            let subject = layout.guild_subject(key);
            let (p, parsed) = layout.parse_guild_subject(&subject).expect("parses");
            assert!(p < 7);
            assert_eq!(parsed, key);
            assert_eq!(p, layout.partition_of(key));
        }
        assert_eq!(layout.partition_stream(3), "IT_TEST_1_EVENTS_3");
        assert_eq!(layout.partition_filter(3), "it-test_1.guild.3.>");
    }

    #[test]
    fn partitions_spread_snowflakes() {
        let layout = BusLayout::new("x", 16).expect("valid layout");
        let mut seen = [0_u32; 16];
        for i in 0..1600_u64 {
            // Snowflakes created in the same millisecond range differ only in low bits.
            let guild = (1_700_000_000_000_u64 << 22) + i;
            seen[layout.partition_of(GuildKey::new(BotId::new(1), GuildId::new(guild)))
                as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "uneven spread: {seen:?}");
    }

    #[test]
    fn nats_url_lists_servers() {
        let one = parse_servers("nats://127.0.0.1:4222").expect("one server");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].host(), "127.0.0.1");
        assert_eq!(one[0].port(), 4222);
        let three = parse_servers("nats://a:4222, nats://b:4223 ,c:4224,").expect("three");
        let hosts: Vec<(String, u16)> = three
            .iter()
            .map(|s| (s.host().to_owned(), s.port()))
            .collect();
        assert_eq!(
            hosts,
            [("a".into(), 4222), ("b".into(), 4223), ("c".into(), 4224)]
        );
        assert!(parse_servers("").is_err());
        assert!(parse_servers(" , ").is_err());
        assert!(parse_servers("nats://a:4222,http://b:1").is_err());
        assert!(parse_servers("nats://a:notaport").is_err());
    }

    #[test]
    fn bus_settings_from_the_command_line() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            bus: BusConfig,
        }
        let defaults = Cli::try_parse_from(["x"]).expect("defaults").bus;
        assert_eq!(defaults.stream_settings(), StreamSettings::default());
        assert_eq!(defaults.nats_url, BusConfig::default().nats_url);
        let cli = Cli::try_parse_from([
            "x",
            "--nats-url",
            "nats://a:1,nats://b:2,nats://c:3",
            "--bus-replicas",
            "3",
            "--bus-max-bytes",
            "1048576",
            "--bus-duplicate-window-secs",
            "5",
        ])
        .expect("valid");
        let settings = cli.bus.stream_settings();
        assert_eq!(settings.replicas, 3);
        assert_eq!(settings.max_bytes, 1 << 20);
        assert_eq!(settings.duplicate_window, Duration::from_secs(5));
        assert_eq!(parse_servers(&cli.bus.nats_url).expect("servers").len(), 3);
        // No byte limit by default: JetStream would reserve it on disk for every stream.
        let unbounded = stream_configs(
            &defaults.layout().expect("layout"),
            &defaults.stream_settings(),
        );
        assert!(unbounded.iter().all(|config| config.max_bytes == -1));
        for bad in [
            ["--bus-replicas", "0"],
            ["--bus-replicas", "6"],
            ["--bus-max-bytes", "-1"],
        ] {
            assert!(
                Cli::try_parse_from(["x", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn nats_versions_that_may_discard_old_events() {
        assert!(discard_new_unsafe("2.9.10"));
        assert!(discard_new_unsafe("2.10.4"));
        assert!(!discard_new_unsafe("2.10.7"));
        assert!(!discard_new_unsafe("v2.11.0-beta"));
    }

    #[test]
    fn every_stream_is_replicated_and_bounded() {
        let layout = BusLayout::new("cfg", 3).expect("valid layout");
        let settings = StreamSettings {
            replicas: 3,
            max_bytes: 1 << 20,
            ..StreamSettings::default()
        };
        let configs = stream_configs(&layout, &settings);
        assert_eq!(configs.len(), 5);
        for config in &configs {
            assert_eq!(config.num_replicas, 3, "{}", config.name);
            assert_eq!(config.max_bytes, 1 << 20, "{}", config.name);
            let expected = if config.name == layout.dead_letter_stream() {
                stream::DiscardPolicy::Old
            } else {
                stream::DiscardPolicy::New
            };
            assert_eq!(config.discard, expected, "{}", config.name);
        }
    }

    #[test]
    fn rejects_bad_prefixes_and_subjects() {
        assert!(BusLayout::new("a.b", 1).is_err());
        assert!(BusLayout::new("", 1).is_err());
        assert!(BusLayout::new("ok", 0).is_err());
        let layout = BusLayout::new("ok", 4).expect("valid layout");
        assert!(layout.parse_guild_subject("ok.guild.1.2").is_err());
        assert!(layout.parse_guild_subject("other.guild.1.2.3").is_err());
        assert!(decode_event(&[0xff, 0xff]).is_err());
        assert!(matches!(decode_event(&[]), Err(BusError::EmptyEvent)));
    }
}
