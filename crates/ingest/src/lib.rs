#![doc = include_str!("../README.md")]

mod clock;
mod config;
mod convert;
mod interactions;
mod join_sources;
mod members_search;
mod metrics;
mod missed_joins;
mod publisher;
mod snapshots;
mod startup;

use invitrack_model::BotId;

use crate::convert::ToModel as _;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use invitrack_bus::proto::{self, guild_event::Kind};
use invitrack_bus::{Bus, BusError};
use invitrack_discord::{DiscordGate, GateError};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use twilight_gateway::error::ReceiveMessageErrorType;
use twilight_gateway::queue::InMemoryQueue;
use twilight_gateway::{
    CloseFrame, Config, ConfigBuilder, EventTypeFlags, Intents, Shard, ShardId, ShardState,
    StreamExt as _,
};
use twilight_http::Client;
use twilight_model::gateway::event::Event;
use twilight_model::gateway::payload::incoming::GuildCreate;
use twilight_model::guild::GuildFeature;

pub use config::{
    DEFAULT_SETTLE_MS, IngestConfig, MembersSearchConfig, ShardRange, ShardRangeError,
};
pub use invitrack_bus::BusConfig;
pub use metrics::IngestMetrics;
pub use publisher::Publisher;
pub use snapshots::SnapshotScheduler;

/// What ingest needs from Discord: guilds, members, invites.
pub const INTENTS: Intents = Intents::GUILDS
    .union(Intents::GUILD_MEMBERS)
    .union(Intents::GUILD_INVITES);

const WANTED_EVENTS: EventTypeFlags = EventTypeFlags::READY
    .union(EventTypeFlags::INTERACTION_CREATE)
    .union(EventTypeFlags::RESUMED)
    .union(EventTypeFlags::GUILD_CREATE)
    .union(EventTypeFlags::GUILD_UPDATE)
    .union(EventTypeFlags::GUILD_DELETE)
    .union(EventTypeFlags::MEMBER_ADD)
    .union(EventTypeFlags::MEMBER_REMOVE)
    .union(EventTypeFlags::MEMBER_CHUNK)
    // twilight 0.18 cannot read Discord's RATE_LIMITED: it arrives as an error with the frame.
    .union(EventTypeFlags::RATE_LIMITED)
    .union(EventTypeFlags::INVITE_CREATE)
    .union(EventTypeFlags::INVITE_DELETE)
    .union(EventTypeFlags::ROLE_CREATE)
    .union(EventTypeFlags::ROLE_UPDATE)
    .union(EventTypeFlags::ROLE_DELETE);

/// Why ingest stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    #[error("Discord rejected the bot token (401 Unauthorized): check DISCORD_TOKEN")]
    InvalidToken,
    #[error("Discord REST request {what} failed")]
    Discord {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The gateway closed with 4014: the application may not use a privileged intent ingest
    /// identifies with. `GUILD_MEMBERS` is the only privileged one in [`INTENTS`]
    /// (`docs/discord.md#members`).
    #[error(
        "gateway shard {shard} closed with 4014 (disallowed intents): the Server Members \
         privileged intent (GUILD_MEMBERS), which ingest needs for joins and leaves, is not \
         turned on for this application. Turn it on in the Developer Portal: your application \
         → Bot → Privileged Gateway Intents → Server Members Intent (a verified application \
         must also be approved for it), then start ingest again"
    )]
    DisallowedIntents { shard: u32 },
    /// The gateway closed with 4004: it refused the token ingest identified with.
    #[error(
        "gateway shard {shard} closed with 4004 (authentication failed): Discord rejected the \
         bot token; check DISCORD_TOKEN (Developer Portal: your application → Bot → Reset \
         Token)"
    )]
    GatewayAuthenticationFailed { shard: u32 },
    #[error("gateway shard {shard} closed fatally (code {code}: {reason})")]
    FatalClose {
        shard: u32,
        code: u16,
        reason: String,
    },
    #[error("INGEST_SHARD_TOTAL must be at least 1")]
    NoShards,
    #[error(transparent)]
    ShardRange(#[from] ShardRangeError),
    #[error("could not bind the metrics endpoint to {addr}")]
    MetricsBind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Runs ingest until `shutdown` fires or a shard closes fatally.
///
/// # Errors
/// See [`Ingest::build`] and [`Ingest::run`].
pub async fn run(config: IngestConfig, shutdown: CancellationToken) -> Result<(), IngestError> {
    Ingest::build(config).await?.run(shutdown).await
}

/// An ingest instance that checked its token, knows its shards, reached NATS and bound its
/// metrics endpoint, ready to run.
pub struct Ingest {
    config: IngestConfig,
    http: Arc<Client>,
    bot_id: BotId,
    shard_total: u32,
    shards: RangeInclusive<u32>,
    queue: InMemoryQueue,
    bus: Bus,
    metrics: Arc<IngestMetrics>,
    ops_endpoint: Option<invitrack_telemetry::OpsEndpoint>,
    metrics_addr: Option<SocketAddr>,
}

impl Ingest {
    /// Checks the token, works out this process' shards, connects to NATS and binds the
    /// metrics endpoint.
    ///
    /// # Errors
    /// [`IngestError::InvalidToken`] when Discord answers 401; a bad shard range; NATS or the
    /// metrics address unusable; Discord unreachable.
    pub async fn build(config: IngestConfig) -> Result<Self, IngestError> {
        let http = Arc::new(invitrack_discord::client(
            config.discord_token.clone(),
            config.discord_api_proxy.as_deref(),
        ));
        // Every request of this process to Discord, start-up's included, goes through it.
        let gate = Arc::new(DiscordGate::new(
            config.requests_per_second,
            config.rejection_ceiling,
        ));
        let bot = call_at_start(&gate, "GET /users/@me", || http.current_user())
            .await?
            .model()
            .await
            .map_err(|e| unreadable("GET /users/@me", e))?;
        let bot_id = BotId::new(bot.id.get());
        let gateway = call_at_start(&gate, "GET /gateway/bot", || http.gateway().authed())
            .await?
            .model()
            .await
            .map_err(|e| unreadable("GET /gateway/bot", e))?;
        let shard_total = match config.shard_total {
            Some(0) => return Err(IngestError::NoShards),
            Some(n) => n,
            None => gateway.shards.max(1),
        };
        let shards = match config.shard_range {
            Some(range) => range.within(shard_total)?,
            None => 0..=shard_total - 1,
        };
        // Identifies are limited per bot: `max_concurrency` buckets, one identify per bucket
        // every 5 s, `remaining` per day. This queue spaces this process' shards only: processes
        // of one bot started at the same moment may identify in the same bucket together, which
        // Discord answers with INVALID_SESSION and twilight retries.
        let limit = &gateway.session_start_limit;
        let queue = InMemoryQueue::new(
            limit.max_concurrency.max(1),
            limit.remaining.min(limit.total),
            Duration::from_millis(limit.reset_after),
            limit.total,
        );
        let metrics = Arc::new(IngestMetrics::new(Arc::clone(&gate)));
        metrics
            .shards
            .set(i64::from(shards.end() - shards.start() + 1));
        let (ops_endpoint, metrics_addr) = match config.metrics_bind {
            Some(addr) => {
                let server = invitrack_telemetry::OpsEndpoint::bind(addr)
                    .map_err(|source| IngestError::MetricsBind { addr, source })?;
                let bound = server
                    .local_addr()
                    .map_err(|source| IngestError::MetricsBind { addr, source })?;
                (Some(server), Some(bound))
            }
            None => (None, None),
        };
        let bus = config.bus.connect().await?;
        tracing::info!(
            bot_id = %bot_id,
            shard_total,
            first_shard = shards.start(),
            last_shard = shards.end(),
            metrics = ?metrics_addr,
            "ingest ready"
        );
        Ok(Self {
            config,
            http,
            bot_id,
            shard_total,
            shards,
            queue,
            bus,
            metrics,
            ops_endpoint,
            metrics_addr,
        })
    }

    /// The bot's user id, as Discord reported it.
    #[must_use]
    pub fn bot_id(&self) -> BotId {
        self.bot_id
    }

    /// The shards this process runs, and the bot's total.
    #[must_use]
    pub fn shards(&self) -> (RangeInclusive<u32>, u32) {
        (self.shards.clone(), self.shard_total)
    }

    /// Where `GET /metrics` answers, when enabled.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The live counters (the same ones `/metrics` shows).
    #[must_use]
    pub fn metrics(&self) -> Arc<IngestMetrics> {
        Arc::clone(&self.metrics)
    }

    /// Reads the shards until `shutdown` fires or one closes fatally, then gives the buffer a
    /// few seconds to reach NATS.
    ///
    /// # Errors
    /// When a shard closes fatally (bad token, invalid shard, disallowed intents).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), IngestError> {
        let Self {
            config,
            http,
            bot_id,
            shard_total,
            shards: shard_numbers,
            queue,
            bus,
            metrics,
            ops_endpoint,
            metrics_addr: _,
        } = self;
        let stopped = CancellationToken::new();
        if let Some(server) = ops_endpoint {
            let registry = metrics.registry().clone();
            let readiness = readiness(Arc::clone(&metrics), bus.client.clone());
            let stop = stopped.clone();
            tokio::spawn(async move {
                if let Err(error) = server.serve(registry, readiness, stop).await {
                    tracing::error!(%error, "metrics and health endpoint failed");
                }
            });
        }
        tokio::spawn(startup::report(Arc::clone(&metrics), stopped.clone()));
        let publisher_stop = CancellationToken::new();
        let clock_source = clock::ClockSource {
            bot_id,
            shard_total,
        };
        let watch = clock::ShardWatch::new(&shard_numbers);
        let interactions =
            interactions::InteractionForwarder::new(&bus, bot_id, Arc::clone(&metrics));
        let (publisher, publisher_task) = Publisher::start(
            bus.jetstream.clone(),
            bus.layout.clone(),
            config.buffer,
            Arc::clone(&metrics),
            publisher_stop.clone(),
        );
        tokio::spawn(clock::publish_clocks(
            publisher.clone(),
            clock_source,
            watch.clone(),
            stopped.clone(),
        ));
        if config.members_search.enabled {
            let asker = join_sources::JoinSourceAsker::new(
                Arc::clone(&http),
                publisher.clone(),
                Arc::clone(&metrics),
                bot_id,
                shard_total,
                shard_numbers.clone(),
                config.members_search.clone(),
                Duration::from_secs(config.forbidden_retry_secs),
            );
            tokio::spawn(asker.run(bus.clone(), stopped.clone()));
        }
        let missed_joins = missed_joins::MissedJoinsFinder::new(
            bot_id,
            shard_total,
            shard_numbers.clone(),
            publisher.clone(),
        );
        tokio::spawn(missed_joins.clone().run(bus.clone(), stopped.clone()));
        let scheduler = SnapshotScheduler::new(
            http,
            publisher.clone(),
            bot_id,
            Arc::clone(&metrics.discord),
            Duration::from_secs(config.forbidden_retry_secs),
            stopped.clone(),
        );

        let mut shards = JoinSet::new();
        let gateway_config = gateway_config(&config, queue);
        for number in shard_numbers {
            let shard =
                Shard::with_config(ShardId::new(number, shard_total), gateway_config.clone());
            let reader = ShardReader {
                bot_id,
                interactions: interactions.clone(),
                settle_ms: config.settle_ms,
                publisher: publisher.clone(),
                scheduler: scheduler.clone(),
                metrics: Arc::clone(&metrics),
                watch: watch.clone(),
                missed_joins: missed_joins.clone(),
            };
            missed_joins.shard_started(number, shard.sender());
            shards.spawn(reader.run(shard, shutdown.clone()));
        }
        drop(publisher);

        let mut outcome = Ok(());
        while let Some(joined) = shards.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::error!(%error, "shard stopped");
                    outcome = Err(error);
                    shutdown.cancel();
                }
                Err(panic) => tracing::error!(error = %panic, "shard task panicked"),
            }
        }
        // Stops the snapshot dispatcher (fetches in flight finish) and the metrics endpoint.
        stopped.cancel();
        drop(scheduler);
        // Give the publisher a moment to flush what the shards produced before stopping it.
        let flush = tokio::time::timeout(Duration::from_secs(5), publisher_task);
        if flush.await.is_err() {
            publisher_stop.cancel();
        }
        outcome
    }
}

/// The error for a shard closed with `code`, named for the close codes an operator can fix
/// (`docs/discord.md#gateway-close-codes`).
fn fatal_close(shard: u32, code: u16, reason: String) -> IngestError {
    match code {
        4004 => IngestError::GatewayAuthenticationFailed { shard },
        4014 => IngestError::DisallowedIntents { shard },
        _ => IngestError::FatalClose {
            shard,
            code,
            reason,
        },
    }
}

/// Ready: NATS connected, Discord accepts the token, and every shard of this process has a live
/// session.
fn readiness(
    metrics: Arc<IngestMetrics>,
    nats: async_nats::Client,
) -> invitrack_telemetry::Readiness {
    Arc::new(move || {
        let metrics = Arc::clone(&metrics);
        let nats = nats.clone();
        Box::pin(async move {
            if metrics.discord().token_invalid() {
                return Err("Discord refused the bot token (401)".to_owned());
            }
            if nats.connection_state() != async_nats::connection::State::Connected {
                return Err("NATS is not connected".to_owned());
            }
            let (connected, shards) = (metrics.shards_connected.get(), metrics.shards.get());
            if connected < shards {
                return Err(format!("{connected} of {shards} shards connected"));
            }
            Ok(())
        })
    })
}

fn gateway_config(config: &IngestConfig, queue: InMemoryQueue) -> Config {
    let mut builder = ConfigBuilder::new(config.discord_token.clone(), INTENTS).queue(queue);
    if let Some(url) = &config.discord_gateway_url {
        builder = builder.proxy_url(url.trim_end_matches('/').to_owned());
    }
    builder.build()
}

/// A start-up request, sent again after a 429 once the gate's pause is over (another process
/// of the bot may be using the token's global limit): only a refusal of another kind, or the
/// gate's ceiling, stops ingest's start.
async fn call_at_start<R: invitrack_discord::Request>(
    gate: &DiscordGate,
    what: &'static str,
    request: impl Fn() -> R,
) -> Result<twilight_http::Response<R::Model>, IngestError> {
    loop {
        match gate.call(&request).await {
            Err(GateError::RateLimited { pause }) => {
                tracing::warn!(
                    what,
                    pause_ms = pause.as_millis(),
                    "start-up request answered 429"
                );
            }
            other => return other.map_err(|e| discord_error(what, e)),
        }
    }
}

fn unreadable(
    what: &'static str,
    error: impl std::error::Error + Send + Sync + 'static,
) -> IngestError {
    IngestError::Discord {
        what,
        source: Box::new(error),
    }
}

fn discord_error(what: &'static str, error: GateError) -> IngestError {
    match error {
        GateError::InvalidToken => IngestError::InvalidToken,
        GateError::Http(http)
            if matches!(http.kind(), twilight_http::error::ErrorType::Unauthorized)
                || invitrack_discord::status_of(&http) == Some(401) =>
        {
            IngestError::InvalidToken
        }
        other => IngestError::Discord {
            what,
            source: Box::new(other),
        },
    }
}

/// Reads one shard and turns its events into bus messages.
struct ShardReader {
    bot_id: BotId,
    interactions: interactions::InteractionForwarder,
    settle_ms: i64,
    publisher: Publisher,
    scheduler: SnapshotScheduler,
    metrics: Arc<IngestMetrics>,
    watch: clock::ShardWatch,
    missed_joins: missed_joins::MissedJoinsFinder,
}

impl ShardReader {
    async fn run(self, mut shard: Shard, shutdown: CancellationToken) -> Result<(), IngestError> {
        let mut connected = false;
        let outcome = self.read(&mut shard, &mut connected, shutdown).await;
        self.set_connected(shard.id().number(), &mut connected, false);
        outcome
    }

    /// Counts the shard in `invitrack_ingest_shards_connected` while its session is live, and
    /// lets its clock advance only then.
    fn set_connected(&self, shard_id: u32, connected: &mut bool, now: bool) {
        self.watch.set_live(shard_id, now);
        if *connected != now {
            *connected = now;
            if now {
                self.metrics.shards_connected.inc();
            } else {
                self.metrics.shards_connected.dec();
            }
        }
    }

    async fn read(
        &self,
        shard: &mut Shard,
        connected: &mut bool,
        shutdown: CancellationToken,
    ) -> Result<(), IngestError> {
        let shard_id = shard.id().number();
        loop {
            // While `handle` waits for room in the buffer this loop does not poll the shard:
            // that is the backpressure. Discord keeps what is not read and a RESUME replays it.
            let item = tokio::select! {
                item = shard.next_event(WANTED_EVENTS) => item,
                () = shutdown.cancelled() => {
                    shard.close(CloseFrame::NORMAL);
                    return Ok(());
                }
            };
            let Some(item) = item else {
                if shard.state() == ShardState::FatallyClosed {
                    return Err(IngestError::FatalClose {
                        shard: shard_id,
                        code: 0,
                        reason: "stream ended".into(),
                    });
                }
                return Ok(());
            };
            // The clock of the shard stays before this event until it is queued.
            let observed_at = self.watch.reading(shard_id);
            let event = match item {
                Ok(event) => event,
                Err(error) => {
                    if let ReceiveMessageErrorType::Deserializing { event } = error.kind()
                        && self.missed_joins.rate_limited(event)
                    {
                        self.watch.queued(shard_id);
                        continue;
                    }
                    if matches!(error.kind(), ReceiveMessageErrorType::Reconnect) {
                        self.set_connected(shard_id, connected, false);
                    }
                    self.watch.queued(shard_id);
                    tracing::warn!(shard = shard_id, %error, "gateway message not understood");
                    continue;
                }
            };
            match &event {
                Event::Ready(_) | Event::Resumed => self.set_connected(shard_id, connected, true),
                Event::GatewayClose(_) => self.set_connected(shard_id, connected, false),
                // Resuming: the events it replays are late by the outage, and no clock may
                // pass them before they are all queued.
                _ if shard.state() != ShardState::Active => {
                    self.set_connected(shard_id, connected, false);
                }
                _ => {}
            }
            if let Event::GatewayClose(frame) = &event {
                let code = frame.as_ref().map_or(0, |f| f.code);
                let reason = frame
                    .as_ref()
                    .map(|f| f.reason.to_string())
                    .unwrap_or_default();
                if shard.state() == ShardState::FatallyClosed {
                    return Err(fatal_close(shard_id, code, reason));
                }
                self.watch.queued(shard_id);
                tracing::warn!(shard = shard_id, code, %reason, "gateway closed; reconnecting");
                continue;
            }
            let message_id = shard
                .session()
                .map(|s| format!("gw:{}:{shard_id}:{}:{}", self.bot_id, s.id(), s.sequence()));
            self.handle(shard_id, event, message_id, observed_at).await;
            self.watch.queued(shard_id);
        }
    }

    async fn handle(
        &self,
        shard_id: u32,
        event: Event,
        message_id: Option<String>,
        observed_at: invitrack_model::Millis,
    ) {
        let mut available_with_vanity = None;
        let (guild_id, kind) = match event {
            Event::Ready(ready) => {
                tracing::info!(shard = shard_id, guilds = ready.guilds.len(), "shard ready");
                return;
            }
            Event::Resumed => {
                tracing::info!(shard = shard_id, "shard resumed");
                return;
            }
            Event::GuildCreate(create) => {
                let GuildCreate::Available(guild) = *create else {
                    return;
                };
                let vanity = guild.features.contains(&GuildFeature::VanityUrl);
                tracing::debug!(
                    guild_id = %guild.id,
                    shard = shard_id,
                    "guild available"
                );
                // Joins made before it may not have been delivered: the worker looks for them
                // once the guild's next read shows their uses. The read is scheduled once this
                // is queued, so its snapshot comes after it.
                available_with_vanity = Some(vanity);
                (
                    guild.id.to_model(),
                    Kind::GuildAvailable(proto::GuildAvailable {}),
                )
            }
            Event::MemberChunk(chunk) => {
                self.missed_joins.chunk(shard_id, &chunk, observed_at).await;
                return;
            }
            Event::InteractionCreate(interaction) => {
                self.interactions.forward(shard_id, &interaction).await;
                return;
            }
            Event::GuildUpdate(update) => {
                let vanity = update.features.contains(&GuildFeature::VanityUrl);
                self.scheduler
                    .permissions_may_have_changed(update.id.to_model(), Some(vanity));
                return;
            }
            Event::RoleCreate(role) => {
                self.scheduler
                    .permissions_may_have_changed(role.guild_id.to_model(), None);
                return;
            }
            Event::RoleUpdate(role) => {
                self.scheduler
                    .permissions_may_have_changed(role.guild_id.to_model(), None);
                return;
            }
            Event::RoleDelete(role) => {
                self.scheduler
                    .permissions_may_have_changed(role.guild_id.to_model(), None);
                return;
            }
            Event::GuildDelete(delete) => {
                if !delete.unavailable.unwrap_or(false) {
                    self.scheduler.guild_removed(delete.id.to_model());
                }
                return;
            }
            Event::MemberAdd(add) => (
                add.guild_id.to_model(),
                Kind::MemberAdd(convert::member_add(&add, observed_at)),
            ),
            Event::MemberRemove(remove) => (
                remove.guild_id.to_model(),
                Kind::MemberRemove(convert::member_remove(&remove)),
            ),
            Event::InviteCreate(create) => (
                create.guild_id.to_model(),
                Kind::InviteCreate(convert::invite_create(&create)),
            ),
            Event::InviteDelete(delete) => (
                delete.guild_id.to_model(),
                Kind::InviteDelete(convert::invite_delete(&delete)),
            ),
            _ => return,
        };
        let joined_at = match &kind {
            Kind::MemberAdd(add) => Some(add.joined_at_ms),
            _ => None,
        };
        if let Some(joined_at) = joined_at {
            self.watch.join_delivered(shard_id, observed_at - joined_at);
        }
        let event = proto::GuildEvent {
            bot_id: self.bot_id.get(),
            guild_id: guild_id.get(),
            observed_at_ms: observed_at,
            shard_id,
            kind: Some(kind),
        };
        let message_id = message_id.unwrap_or_else(|| {
            format!(
                "gw:{}:{shard_id}:nosession:{observed_at}:{guild_id}",
                self.bot_id
            )
        });
        self.publisher.send(event, message_id).await;
        if let Some(vanity) = available_with_vanity {
            self.scheduler.guild_available(guild_id, shard_id, vanity);
        }
        if let Some(joined_at) = joined_at {
            // After the join is queued, so the snapshot is published behind it; and late
            // enough that the join's use shows in it.
            self.scheduler.request(guild_id, joined_at + self.settle_ms);
        }
    }
}
