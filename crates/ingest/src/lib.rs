#![doc = include_str!("../README.md")]

mod config;
mod convert;
mod publisher;
mod snapshots;

use std::sync::Arc;
use std::time::Duration;

use invitrack_bus::BusError;
use invitrack_bus::proto::{self, guild_event::Kind};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use twilight_gateway::{
    CloseFrame, Config, ConfigBuilder, EventTypeFlags, Intents, Shard, ShardId, ShardState,
    StreamExt as _,
};
use twilight_http::Client;
use twilight_model::gateway::event::Event;
use twilight_model::gateway::payload::incoming::GuildCreate;
use twilight_model::guild::GuildFeature;

pub use config::IngestConfig;
pub use invitrack_bus::BusConfig;
pub use publisher::{Publisher, PublisherStats};
pub use snapshots::{RequestBudget, SnapshotScheduler, SnapshotStats};

/// What ingest needs from Discord: guilds, members, invites.
pub const INTENTS: Intents = Intents::GUILDS
    .union(Intents::GUILD_MEMBERS)
    .union(Intents::GUILD_INVITES);

const WANTED_EVENTS: EventTypeFlags = EventTypeFlags::READY
    .union(EventTypeFlags::RESUMED)
    .union(EventTypeFlags::GUILD_CREATE)
    .union(EventTypeFlags::GUILD_UPDATE)
    .union(EventTypeFlags::GUILD_DELETE)
    .union(EventTypeFlags::MEMBER_ADD)
    .union(EventTypeFlags::MEMBER_REMOVE)
    .union(EventTypeFlags::INVITE_CREATE)
    .union(EventTypeFlags::INVITE_DELETE)
    .union(EventTypeFlags::ROLE_CREATE)
    .union(EventTypeFlags::ROLE_UPDATE)
    .union(EventTypeFlags::ROLE_DELETE);

/// Why ingest stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    #[error("Discord rejected the bot token (401): check DISCORD_TOKEN")]
    InvalidToken,
    #[error("Discord REST request {what} failed")]
    Discord {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("gateway shard {shard} closed fatally (code {code}: {reason})")]
    FatalClose {
        shard: u32,
        code: u16,
        reason: String,
    },
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Runs ingest until `shutdown` fires or a shard closes fatally.
///
/// # Errors
/// When Discord rejects the token, a shard closes fatally, or NATS cannot be set up.
pub async fn run(config: IngestConfig, shutdown: CancellationToken) -> Result<(), IngestError> {
    let http = Arc::new(http_client(&config));
    let bot = http
        .current_user()
        .await
        .map_err(|e| discord_error("GET /users/@me", e))?
        .model()
        .await
        .map_err(|e| discord_error("GET /users/@me", e))?;
    let bot_id = bot.id.get();
    let shard_total = match config.shards {
        Some(n) => n.max(1),
        None => http
            .gateway()
            .authed()
            .await
            .map_err(|e| discord_error("GET /gateway/bot", e))?
            .model()
            .await
            .map_err(|e| discord_error("GET /gateway/bot", e))?
            .shards
            .max(1),
    };
    tracing::info!(bot_id, shards = shard_total, "connected to Discord REST");

    let bus = config.bus.connect().await?;

    let publisher_stop = CancellationToken::new();
    let (publisher, publisher_task) = Publisher::start(
        bus.jetstream,
        bus.layout,
        config.buffer,
        publisher_stop.clone(),
    );
    let scheduler = SnapshotScheduler::new(
        Arc::clone(&http),
        publisher.clone(),
        bot_id,
        RequestBudget::new(config.requests_per_second),
        Duration::from_secs(config.forbidden_retry_secs),
    );

    let mut shards = JoinSet::new();
    let gateway_config = gateway_config(&config);
    for index in 0..shard_total {
        let shard = Shard::with_config(ShardId::new(index, shard_total), gateway_config.clone());
        let reader = ShardReader {
            bot_id,
            settle_ms: config.settle_ms,
            publisher: publisher.clone(),
            scheduler: scheduler.clone(),
        };
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
    drop(scheduler);
    // Give the publisher a moment to flush what the shards produced before stopping it.
    let flush = tokio::time::timeout(Duration::from_secs(5), publisher_task);
    tokio::pin!(flush);
    if (&mut flush).await.is_err() {
        publisher_stop.cancel();
    }
    outcome
}

fn http_client(config: &IngestConfig) -> Client {
    let mut builder = Client::builder()
        .token(config.discord_token.clone())
        // A 401 is reported to us; twilight must not refuse every later request on its own.
        .remember_invalid_token(false)
        .timeout(Duration::from_secs(15));
    if let Some(proxy) = &config.discord_api_proxy {
        builder = builder.proxy(proxy.clone(), true);
    }
    builder.build()
}

fn gateway_config(config: &IngestConfig) -> Config {
    let mut builder = ConfigBuilder::new(config.discord_token.clone(), INTENTS);
    if let Some(url) = &config.discord_gateway_url {
        builder = builder.proxy_url(url.trim_end_matches('/').to_owned());
    }
    builder.build()
}

fn discord_error(
    what: &'static str,
    error: impl std::error::Error + Send + Sync + 'static,
) -> IngestError {
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
    if let Some(http) = boxed.downcast_ref::<twilight_http::Error>() {
        let unauthorized = match http.kind() {
            twilight_http::error::ErrorType::Unauthorized => true,
            twilight_http::error::ErrorType::Response { status, .. } => status.get() == 401,
            _ => false,
        };
        if unauthorized {
            return IngestError::InvalidToken;
        }
    }
    IngestError::Discord {
        what,
        source: boxed,
    }
}

/// Reads one shard and turns its events into bus messages.
struct ShardReader {
    bot_id: u64,
    settle_ms: i64,
    publisher: Publisher,
    scheduler: SnapshotScheduler,
}

impl ShardReader {
    async fn run(self, mut shard: Shard, shutdown: CancellationToken) -> Result<(), IngestError> {
        let shard_id = shard.id().number();
        loop {
            let item = tokio::select! {
                item = shard.next_event(WANTED_EVENTS) => item,
                () = shutdown.cancelled() => {
                    shard.close(CloseFrame::NORMAL);
                    return Ok(());
                }
            };
            let Some(item) = item else {
                return Ok(());
            };
            let event = match item {
                Ok(event) => event,
                Err(error) => {
                    tracing::warn!(shard = shard_id, %error, "gateway message not understood");
                    continue;
                }
            };
            if let Event::GatewayClose(frame) = &event {
                let code = frame.as_ref().map_or(0, |f| f.code);
                let reason = frame
                    .as_ref()
                    .map(|f| f.reason.to_string())
                    .unwrap_or_default();
                if shard.state() == ShardState::FatallyClosed {
                    return Err(IngestError::FatalClose {
                        shard: shard_id,
                        code,
                        reason,
                    });
                }
                tracing::warn!(shard = shard_id, code, %reason, "gateway closed; reconnecting");
                continue;
            }
            let message_id = shard
                .session()
                .map(|s| format!("gw:{}:{shard_id}:{}:{}", self.bot_id, s.id(), s.sequence()));
            self.handle(shard_id, event, message_id).await;
        }
    }

    async fn handle(&self, shard_id: u32, event: Event, message_id: Option<String>) {
        let observed_at = invitrack_bus::unix_millis_now();
        let (guild_id, kind) = match event {
            Event::Ready(ready) => {
                tracing::info!(shard = shard_id, guilds = ready.guilds.len(), "shard ready");
                return;
            }
            Event::GuildCreate(create) => {
                if let GuildCreate::Available(guild) = *create {
                    let vanity = guild.features.contains(&GuildFeature::VanityUrl);
                    tracing::debug!(
                        guild_id = guild.id.get(),
                        shard = shard_id,
                        "guild available"
                    );
                    self.scheduler
                        .guild_available(guild.id.get(), shard_id, vanity);
                }
                return;
            }
            Event::GuildUpdate(update) => {
                let vanity = update.features.contains(&GuildFeature::VanityUrl);
                self.scheduler
                    .permissions_may_have_changed(update.id.get(), Some(vanity));
                return;
            }
            Event::RoleCreate(role) => {
                self.scheduler
                    .permissions_may_have_changed(role.guild_id.get(), None);
                return;
            }
            Event::RoleUpdate(role) => {
                self.scheduler
                    .permissions_may_have_changed(role.guild_id.get(), None);
                return;
            }
            Event::RoleDelete(role) => {
                self.scheduler
                    .permissions_may_have_changed(role.guild_id.get(), None);
                return;
            }
            Event::GuildDelete(delete) => {
                if !delete.unavailable.unwrap_or(false) {
                    self.scheduler.guild_removed(delete.id.get());
                }
                return;
            }
            Event::MemberAdd(add) => (
                add.guild_id.get(),
                Kind::MemberAdd(convert::member_add(&add, observed_at)),
            ),
            Event::MemberRemove(remove) => (
                remove.guild_id.get(),
                Kind::MemberRemove(convert::member_remove(&remove)),
            ),
            Event::InviteCreate(create) => (
                create.guild_id.get(),
                Kind::InviteCreate(convert::invite_create(&create)),
            ),
            Event::InviteDelete(delete) => (
                delete.guild_id.get(),
                Kind::InviteDelete(convert::invite_delete(&delete)),
            ),
            _ => return,
        };
        let joined_at = match &kind {
            Kind::MemberAdd(add) => Some(add.joined_at_ms),
            _ => None,
        };
        let event = proto::GuildEvent {
            bot_id: self.bot_id,
            guild_id,
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
        if let Some(joined_at) = joined_at {
            // After the join is queued, so the snapshot is published behind it; and late
            // enough that the join's use shows in it.
            self.scheduler.request(guild_id, joined_at + self.settle_ms);
        }
    }
}
