#![doc = include_str!("../README.md")]
//!
//! # Map of the crate
//!
//! - [`Simulator`] / [`RunningSim`] / [`SimConfig`] (this file): start and stop the server.
//! - `world/`: the world ([`World`]): guilds, members, invites, ground truth; every change
//!   emits the dispatches Discord would send. `world/mod.rs` maps its files (the shared
//!   handle, the data, the operations, the REST views, the gateway sessions).
//! - `sessions.rs`: gateway sessions (shard routing, intents, sequence numbers, RESUME).
//! - `gateway.rs`: the websocket protocol (HELLO, IDENTIFY, RESUME, heartbeats, close codes,
//!   decoding op 8).
//! - `rest.rs`: Discord REST `/api/v10`; `ratelimit.rs`: its buckets and headers.
//! - `oauth2.rs`: Discord's OAuth2 endpoints (authorize, token, revoke, the Bearer routes);
//!   `oauth2_form.rs`: their parameters, client credentials and scopes.
//! - `control.rs`: the `/control` API; `runs.rs`: its scenario and workload runs in the
//!   background.
//! - [`scenario`]: scenario files and their runner; [`workload`]: the seeded workload
//!   generator (it produces scenarios).
//! - `message_form.rs`: Create Message's body, checked as Discord checks it;
//!   `command_form.rs` and `interaction_form.rs`: the bodies of the command and interaction
//!   routes.
//! - `wire.rs`: Discord's JSON shapes (public: [`permissions`], [`Nonce`]); [`snowflake`]:
//!   ids and timestamps.

mod command_form;
mod control;
mod delivery;
mod error;
pub mod faults;
mod gateway;
mod interaction_form;
mod message_form;
mod oauth2;
mod oauth2_form;
pub mod ratelimit;
mod rest;
mod runs;
pub mod scenario;
mod search_form;
mod sessions;
pub mod snowflake;
mod wire;
pub mod workload;
mod world;

pub use error::{SimError, WorldError};
pub use faults::{FaultConfig, RouteFaults};
pub use ratelimit::{GlobalLimit, RateLimitConfig, RestStats, Route, RouteLimit, RouteStats};
pub use sessions::{EventDelay, intents};
pub use wire::{Nonce, permissions};
pub use world::{
    ACCESS_TOKEN_LIFETIME_SECS, AUTHORIZATION_CODE_LIFETIME_MS, BotInfo, ChannelSpec, Consent,
    CreatedGuild, DEFAULT_ALL_MEMBERS_WINDOW_MS, DEFAULT_CLIENT_SECRET, DEFAULT_GATEWAY_QUEUE,
    DEFAULT_MESSAGE_CAPACITY, DID_REJOIN, FollowUp, GuildSpec, INTERACTION_RESPONSE_WINDOW_MS,
    INTERACTION_TOKEN_LIFETIME_MS, InteractionInfo, InteractionKind, InteractionReply,
    InteractionSpec, InviteInfo, InviteSpec, JoinPath, JoinSpec, JoinTruth, JoinVia,
    MAX_USER_GUILDS, MemberInfo, MemberRequestOptions, MembersSearchOptions, NONCE_WINDOW,
    OAuth2Client, OAuth2Options, PostedMessage, RegisteredCommand, UserGuild, UserGuildSpec, World,
    WorldOptions,
};

use actix_web::{App, HttpServer, dev::ServerHandle, web};
use std::{
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
};

/// How to run the simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Where to listen (port 0 picks a free port). Default `127.0.0.1:9001`.
    pub bind: SocketAddr,
    /// The bot token clients must present. Default `sim-token`.
    pub bot_token: String,
    /// The bot's user id (also its application id).
    pub bot_user_id: u64,
    /// Shard count recommended by `GET /gateway/bot`. Default 1.
    pub shards: u32,
    /// REST limits: global 50/s per bot, `guild_invites` 5 per 5 s per guild,
    /// `create_message` 5 per 5 s per channel, others 50/s.
    pub rate_limits: RateLimitConfig,
    /// Injected REST latency and 5xx answers (default: none).
    pub faults: FaultConfig,
    /// Delay between a state change and its gateway dispatch (default: none).
    pub event_delay: EventDelay,
    /// Frames a gateway connection may have queued before it is cut as a slow consumer.
    pub gateway_queue: usize,
    /// Posted messages (and, separately, interactions) the world keeps for reading back (the
    /// oldest go first).
    pub message_capacity: usize,
    /// Where [`RunningSim::stop`] writes the ground truth (JSON lines), if anywhere.
    pub truth_file: Option<PathBuf>,
    /// The OAuth2 client of the bot's application: its secret (default
    /// [`DEFAULT_CLIENT_SECRET`]) and registered redirect URIs (default none).
    pub oauth2: OAuth2Options,
    /// The privileged intents turned on for the application in the developer portal (default:
    /// all of them, [`intents::PRIVILEGED`]); an IDENTIFY with another is closed with
    /// 4014, as Discord does.
    pub privileged_intents: u64,
    /// How `POST /guilds/{id}/members-search` behaves: indexing time and the lag before a new
    /// member is found (`docs/discord-members-search.md`).
    pub members_search: MembersSearchOptions,
    /// How the gateway's op 8 (Request Guild Members) behaves: the window of its rate limit on
    /// requests for all of a guild's members (default [`DEFAULT_ALL_MEMBERS_WINDOW_MS`],
    /// Discord's 30 s).
    pub member_requests: MemberRequestOptions,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 9001)),
            bot_token: "sim-token".to_owned(),
            bot_user_id: DEFAULT_BOT_USER_ID,
            shards: 1,
            rate_limits: RateLimitConfig::default(),
            faults: FaultConfig::default(),
            event_delay: EventDelay::default(),
            gateway_queue: DEFAULT_GATEWAY_QUEUE,
            message_capacity: DEFAULT_MESSAGE_CAPACITY,
            truth_file: None,
            oauth2: OAuth2Options::default(),
            privileged_intents: sessions::intents::PRIVILEGED,
            members_search: MembersSearchOptions::default(),
            member_requests: MemberRequestOptions::default(),
        }
    }
}

/// Default bot user id (a snowflake from 2021).
pub const DEFAULT_BOT_USER_ID: u64 = 859_000_000_000_000_001;

/// Starts simulators.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Binds `config.bind` and serves gateway, REST and control on it, on the current tokio
    /// runtime (the HTTP workers run on their own threads).
    ///
    /// # Errors
    ///
    /// [`SimError::Config`] for an empty token, a zero bot id or zero shards;
    /// [`SimError::Bind`] when the address cannot be bound.
    pub async fn start(config: SimConfig) -> Result<RunningSim, SimError> {
        if config.bot_token.is_empty() || config.bot_token.contains(char::is_whitespace) {
            return Err(SimError::Config(
                "bot_token must be non-empty, without spaces".into(),
            ));
        }
        if config.bot_user_id == 0 {
            return Err(SimError::Config("bot_user_id must not be 0".into()));
        }
        if config.shards == 0 {
            return Err(SimError::Config("shards must be at least 1".into()));
        }
        if config.gateway_queue < 16 {
            return Err(SimError::Config("gateway_queue must be at least 16".into()));
        }
        if config.message_capacity == 0 {
            return Err(SimError::Config(
                "message_capacity must be at least 1".into(),
            ));
        }
        config.event_delay.validate().map_err(SimError::Config)?;
        if config.oauth2.client_secret.is_empty()
            || config.oauth2.client_secret.contains(char::is_whitespace)
        {
            return Err(SimError::Config(
                "the OAuth2 client secret must be non-empty, without spaces".into(),
            ));
        }
        for uri in &config.oauth2.redirect_uris {
            world::check_redirect_uri(uri)
                .map_err(|e| SimError::Config(format!("OAuth2 redirect URI: {e}")))?;
        }
        config.faults.default.validate().map_err(SimError::Config)?;
        for (route, faults) in &config.faults.routes {
            faults
                .validate()
                .map_err(|e| SimError::Config(format!("{route}: {e}")))?;
        }
        let bind_error = |source| SimError::Bind {
            addr: config.bind,
            source,
        };
        let listener = std::net::TcpListener::bind(config.bind).map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let addr = if local.ip().is_unspecified() {
            SocketAddr::from((Ipv4Addr::LOCALHOST, local.port()))
        } else {
            local
        };
        // The application's key: it signs interactions delivered to an endpoint URL, and
        // `verify_key` is its public half, as `GET /applications/@me` gives it.
        let application_key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let world = World::with_options(
            BotInfo {
                token: config.bot_token.clone(),
                user_id: twilight_model::id::Id::new(config.bot_user_id),
                username: "invitrack-sim".to_owned(),
                shards: config.shards,
                gateway_url: format!("ws://{addr}"),
                verify_key: hex::encode(application_key.verifying_key().to_bytes()),
            },
            WorldOptions {
                rate_limits: config.rate_limits.clone(),
                faults: config.faults.clone(),
                event_delay: config.event_delay,
                gateway_queue: config.gateway_queue,
                message_capacity: config.message_capacity,
                oauth2: config.oauth2.clone(),
                privileged_intents: config.privileged_intents,
            },
        );
        world.set_members_search(config.members_search);
        world.set_member_requests(config.member_requests);
        let deliverer =
            std::sync::Arc::new(delivery::Deliverer::new(world.clone(), application_key));
        world.attach_deliveries(deliverer.start());
        let deliverer = web::Data::from(deliverer);
        let data = web::Data::new(world.clone());
        let runs = web::Data::new(runs::SharedRuns::default());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(runs.clone())
                .app_data(deliverer.clone())
                .service(web::scope("/api/v10").configure(rest::configure))
                .service(web::scope("/api").configure(oauth2::configure_unversioned))
                .service(web::scope("/control").configure(control::configure))
                // Discord serves the authorization screen at discord.com/oauth2/authorize.
                .route("/oauth2/authorize", web::get().to(oauth2::authorize))
                .route("/", web::get().to(gateway::handle))
        })
        .workers(2)
        .shutdown_timeout(1)
        .disable_signals()
        .listen(listener)
        .map_err(bind_error)?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        tracing::info!(%addr, shards = config.shards, "simulator listening");
        Ok(RunningSim {
            addr,
            world,
            handle,
            task,
            truth_file: config.truth_file,
        })
    }
}

/// A simulator that is serving.
#[derive(Debug)]
pub struct RunningSim {
    addr: SocketAddr,
    world: World,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    truth_file: Option<PathBuf>,
}

impl RunningSim {
    /// The address it listens on (`127.0.0.1:PORT` when bound to an unspecified address).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT`, for twilight-gateway's `proxy_url`.
    pub fn gateway_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// `127.0.0.1:PORT`, for twilight-http's `.proxy(.., true)`.
    pub fn api_proxy(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT/control`.
    pub fn control_url(&self) -> String {
        format!("http://{}/control", self.addr)
    }

    /// A handle to the simulated world.
    pub fn world(&self) -> World {
        self.world.clone()
    }

    /// Closes every gateway session and stops the server; writes the ground truth to
    /// [`SimConfig::truth_file`] if one is set.
    pub async fn stop(self) {
        if let Some(path) = &self.truth_file {
            match self.world.write_truth(path) {
                Ok(lines) => tracing::info!(path = %path.display(), lines, "ground truth written"),
                Err(error) => {
                    tracing::error!(path = %path.display(), %error, "cannot write the ground truth");
                }
            }
        }
        self.world.disconnect_all();
        self.handle.stop(true).await;
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "simulator server ended with an error"),
            Err(error) => tracing::warn!(%error, "simulator server task failed"),
        }
    }
}
