//! The simulated Discord: guilds, members, invites, users and the ground truth of joins.
//!
//! Map of this folder:
//!
//! - this file: [`World`], the cheap, cloneable handle (an `Arc<Mutex<State>>` plus the REST
//!   rate limiter and fault settings) that the REST, gateway and control layers and in-process
//!   users share; its public methods lock and call the state's method of the same name. The
//!   std mutex is never held across an `.await`.
//! - `specs.rs`: the public values going in and out (`GuildSpec`, `ChannelSpec`, `JoinVia`,
//!   `JoinTruth`, `PostedMessage`, `BotInfo`, ...).
//! - `model.rs`: the data (`State`, `Guild`, `TextChannel`, `Invite`, `Member`, ...) and
//!   shared helpers (the bot's permissions in a channel).
//! - `operations.rs`: the changes (create guilds, channels and invites, join, leave, ...)
//!   and the dispatches they send.
//! - `views.rs`: in-process queries and the REST answers' bodies.
//! - `messages.rs`: the messages the bot posts (permissions, `enforce_nonce`, the bounded
//!   store).
//! - `interactions.rs`: global application commands, interactions (INTERACTION_CREATE),
//!   their callbacks and original responses (the 3 s and 15 min deadlines, the bounded
//!   store).
//! - `oauth2.rs`: OAuth2 for a dashboard's login: the application's client, the signed-in
//!   user, the guilds users are in, codes and tokens, the Bearer views.
//! - `gateway_sessions.rs`: IDENTIFY, RESUME and the other session calls of the gateway.
//! - `member_requests.rs`: the gateway's op 8 (Request Guild Members): GUILD_MEMBERS_CHUNKs,
//!   the all-members rate limit (RATE_LIMITED).
//! - `search.rs`: the member search (`POST /guilds/{id}/members-search`).

mod gateway_sessions;
mod interactions;
mod member_requests;
mod messages;
mod modals;
mod model;
mod oauth2;
mod operations;
mod search;
mod specs;
#[cfg(test)]
mod tests;
mod views;

pub(crate) use gateway_sessions::IdentifyRequest;
pub use interactions::{INTERACTION_RESPONSE_WINDOW_MS, INTERACTION_TOKEN_LIFETIME_MS};
pub use member_requests::{DEFAULT_ALL_MEMBERS_WINDOW_MS, MemberRequestOptions};
pub(crate) use member_requests::{MemberRequest, MemberSelection};
pub use messages::{DEFAULT_MESSAGE_CAPACITY, NONCE_WINDOW};
pub(crate) use model::State;
pub use oauth2::{
    ACCESS_TOKEN_LIFETIME_SECS, AUTHORIZATION_CODE_LIFETIME_MS, Consent, DEFAULT_CLIENT_SECRET,
    MAX_USER_GUILDS, OAuth2Client, OAuth2Options, UserGuild, UserGuildSpec,
};
pub(crate) use oauth2::{
    AuthorizeRequest, Authorized, GuildsPage, OAuth2Error, check_redirect_uri,
};
pub use search::MembersSearchOptions;
pub(crate) use specs::NewMessage;
pub use specs::{
    BotInfo, ChannelSpec, CreatedGuild, DID_REJOIN, FollowUp, GuildSpec, InteractionInfo,
    InteractionKind, InteractionReply, InteractionSpec, InviteInfo, InviteSpec, JoinPath, JoinSpec,
    JoinTruth, JoinVia, MemberInfo, PostedMessage, RegisteredCommand,
};

use crate::{
    error::WorldError,
    faults::{FaultConfig, FaultPlan, RouteFaults},
    ratelimit::{GlobalLimit, RateLimitConfig, RateLimiter, RestStats, Route, RouteLimit},
    sessions::{EventDelay, Outbound},
};
use std::{
    io::Write as _,
    path::Path,
    sync::{
        Arc, Condvar, Mutex, MutexGuard, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use twilight_model::id::{
    Id,
    marker::{ChannelMarker, GuildMarker, InteractionMarker, UserMarker},
};

/// Writes `World` methods that take a lock and call one method on what it guards:
/// `=> lock.join` locks the state and calls [`State`]'s `join`, `=> limiter.stats` locks
/// the REST rate limiter and calls its `stats`. The guard is released at the end of the call.
macro_rules! locked {
    ($(
        $(#[$attr:meta])*
        pub fn $name:ident(&self $(, $arg:ident: $ty:ty)*) $(-> $ret:ty)?
            => $guard:ident.$call:ident;
    )*) => {$(
        $(#[$attr])*
        pub fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
            self.$guard().$call($($arg),*)
        }
    )*};
}

/// Cheap, cloneable handle to the simulated world. Every method takes the lock briefly and
/// sends the gateway dispatches Discord would send.
#[derive(Debug, Clone)]
pub struct World {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Immutable, so readable without the lock.
    bot: BotInfo,
    state: Mutex<State>,
    limiter: Mutex<RateLimiter>,
    faults: Mutex<FaultConfig>,
    /// Wakes the scheduler thread (delayed dispatches and counters).
    wake: Arc<Condvar>,
    scheduler_started: AtomicBool,
    gateway_queue: usize,
    privileged_intents: u64,
    me: Weak<Inner>,
}

/// Run-time behaviour of a world, from [`crate::SimConfig`].
#[derive(Debug, Clone)]
pub struct WorldOptions {
    /// Global and per-route REST limits.
    pub rate_limits: RateLimitConfig,
    /// REST latency and 5xx answers.
    pub faults: FaultConfig,
    /// Delay between state changes and their gateway dispatches.
    pub event_delay: EventDelay,
    /// Capacity of each gateway connection's queue of frames.
    pub gateway_queue: usize,
    /// Posted messages kept for [`World::messages`], and interactions kept for
    /// [`World::interaction_reply`] (each store drops its oldest first).
    pub message_capacity: usize,
    /// The OAuth2 client's secret and redirect URIs.
    pub oauth2: OAuth2Options,
    /// The privileged intents turned on for the application (default: all of them); an
    /// IDENTIFY with another is closed with 4014.
    pub privileged_intents: u64,
}

impl Default for WorldOptions {
    fn default() -> Self {
        Self {
            rate_limits: RateLimitConfig::default(),
            faults: FaultConfig::default(),
            event_delay: EventDelay::default(),
            gateway_queue: DEFAULT_GATEWAY_QUEUE,
            message_capacity: DEFAULT_MESSAGE_CAPACITY,
            oauth2: OAuth2Options::default(),
            privileged_intents: crate::sessions::intents::PRIVILEGED,
        }
    }
}

/// Default capacity of a gateway connection's queue: a client that falls this many frames
/// behind is disconnected (it can RESUME).
pub const DEFAULT_GATEWAY_QUEUE: usize = 50_000;

impl World {
    /// A new, empty world with default options.
    pub fn new(bot: BotInfo) -> Self {
        Self::with_options(bot, WorldOptions::default())
    }

    /// A new, empty world.
    pub fn with_options(bot: BotInfo, options: WorldOptions) -> Self {
        let wake = Arc::new(Condvar::new());
        let delay = options.event_delay;
        let world = Self {
            inner: Arc::new_cyclic(|me| Inner {
                bot: bot.clone(),
                state: Mutex::new(State::new(
                    bot,
                    delay,
                    options.message_capacity,
                    options.oauth2,
                    Arc::clone(&wake),
                )),
                limiter: Mutex::new(RateLimiter::new(&options.rate_limits)),
                faults: Mutex::new(options.faults),
                wake,
                scheduler_started: AtomicBool::new(false),
                gateway_queue: options.gateway_queue.max(16),
                privileged_intents: options.privileged_intents,
                me: me.clone(),
            }),
        };
        if !delay.is_zero() {
            world.ensure_scheduler();
        }
        world
    }

    /// Starts the thread that sends delayed dispatches and moves deferred counters (once;
    /// it ends when the world is dropped).
    fn ensure_scheduler(&self) {
        if self.inner.scheduler_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = self.inner.me.clone();
        let spawned = std::thread::Builder::new()
            .name("sim-scheduler".into())
            .spawn(move || {
                loop {
                    let Some(inner) = me.upgrade() else { return };
                    let mut state = inner
                        .state
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let now = Instant::now();
                    let wait = state
                        .run_due(now)
                        .map_or(Duration::from_millis(100), |at| {
                            at.saturating_duration_since(now)
                        })
                        .min(Duration::from_millis(100));
                    if !wait.is_zero() {
                        drop(
                            inner
                                .wake
                                .wait_timeout(state, wait)
                                .unwrap_or_else(std::sync::PoisonError::into_inner),
                        );
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the simulator's scheduler thread");
            self.inner.scheduler_started.store(false, Ordering::SeqCst);
        }
    }

    /// Capacity of each gateway connection's frame queue.
    pub fn gateway_queue(&self) -> usize {
        self.inner.gateway_queue
    }

    /// The privileged intents the application may identify with.
    #[must_use]
    pub fn privileged_intents(&self) -> u64 {
        self.inner.privileged_intents
    }

    /// Facts about the bot.
    pub fn bot(&self) -> &BotInfo {
        &self.inner.bot
    }

    /// Locks the state (recovering from a poisoned lock: the state stays consistent because
    /// every operation validates before mutating).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The simulated clock, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.lock().now_ms()
    }

    /// A fresh snowflake at the simulated clock.
    pub(crate) fn next_snowflake(&self) -> u64 {
        let mut state = self.lock();
        let now = state.now_ms();
        state.ids.at(now)
    }

    /// Sends interactions through `deliveries` while an interactions endpoint URL is set.
    pub(crate) fn attach_deliveries(
        &self,
        deliveries: tokio::sync::mpsc::UnboundedSender<crate::delivery::Delivery>,
    ) {
        self.lock().deliveries = Some(deliveries);
    }

    /// Sets (or, with `None`, removes) the interactions endpoint URL, already checked:
    /// interactions go there instead of the gateway.
    pub(crate) fn set_interactions_url(&self, url: Option<String>) {
        self.lock().interactions_url = url;
    }

    /// The interactions endpoint URL, if one is set.
    pub fn interactions_url(&self) -> Option<String> {
        self.lock().interactions_url.clone()
    }

    /// Locks the REST rate limiter.
    pub(crate) fn limiter(&self) -> MutexGuard<'_, RateLimiter> {
        self.inner
            .limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_faults(&self) -> MutexGuard<'_, FaultConfig> {
        self.inner
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // ---- the world: guilds, invites, members, truth ----------------------------------------

    locked! {
        /// Makes a guild (GUILD_CREATE to a connected shard).
        pub fn create_guild(&self, spec: GuildSpec) -> Result<CreatedGuild, WorldError>
            => lock.create_guild;

        /// Makes another text channel in a guild, where an overwrite may deny the bot
        /// permissions (CHANNEL_CREATE).
        pub fn create_channel(&self, guild_id: Id<GuildMarker>, spec: ChannelSpec)
            -> Result<Id<ChannelMarker>, WorldError> => lock.create_channel;

        /// Replaces what the overwrite of the bot's role denies in a channel (bits of
        /// [`crate::permissions`], 0 removes the overwrite; CHANNEL_UPDATE).
        pub fn set_bot_channel_deny(&self, channel_id: Id<ChannelMarker>, deny: u64)
            -> Result<(), WorldError> => lock.set_bot_channel_deny;

        /// Creates an invite (INVITE_CREATE).
        pub fn create_invite(&self, guild_id: Id<GuildMarker>, spec: InviteSpec)
            -> Result<InviteInfo, WorldError> => lock.create_invite;

        /// A member joins (GUILD_MEMBER_ADD, maybe INVITE_DELETE).
        pub fn join(&self, guild_id: Id<GuildMarker>, via: JoinVia, spec: JoinSpec)
            -> Result<JoinTruth, WorldError> => lock.join;

        /// A member leaves (GUILD_MEMBER_REMOVE).
        pub fn leave(&self, guild_id: Id<GuildMarker>, user_id: Id<UserMarker>)
            -> Result<(), WorldError> => lock.leave;

        /// Every temporary member of a guild goes offline and is removed
        /// (GUILD_MEMBER_REMOVE), as Discord does with temporary memberships. Returns the
        /// users removed.
        pub fn end_temporary_memberships(&self, guild_id: Id<GuildMarker>)
            -> Result<Vec<Id<UserMarker>>, WorldError> => lock.end_temporary_memberships;

        /// A moderator deletes an invite (INVITE_DELETE).
        pub fn delete_invite(&self, code: &str) -> Result<InviteInfo, WorldError>
            => lock.delete_invite;

        /// Sets how the member search (`POST /guilds/{id}/members-search`) behaves.
        pub fn set_members_search(&self, options: MembersSearchOptions)
            => lock.set_members_search;

        /// Sets how the gateway's op 8 (Request Guild Members) behaves: the window of its
        /// all-members rate limit (the windows already open are forgotten).
        pub fn set_member_requests(&self, options: MemberRequestOptions)
            => lock.set_member_requests;

        /// How the gateway's op 8 (Request Guild Members) behaves.
        pub fn member_requests(&self) -> MemberRequestOptions => lock.member_requests;

        /// Grants or revokes MANAGE_GUILD.
        pub fn set_manage_guild(&self, guild_id: Id<GuildMarker>, manage_guild: bool)
            -> Result<(), WorldError> => lock.set_manage_guild;

        /// Moves the simulated clock forward (invites expire by it; no event is sent).
        pub fn advance_clock(&self, by: Duration) => lock.advance_clock;

        /// Every join so far, in order.
        pub fn ground_truth(&self) -> Vec<JoinTruth> => lock.ground_truth;

        /// Live invites of a guild.
        pub fn invites(&self, guild_id: Id<GuildMarker>) -> Result<Vec<InviteInfo>, WorldError>
            => lock.invites;

        /// Vanity code and uses of a guild.
        pub fn vanity(&self, guild_id: Id<GuildMarker>)
            -> Result<Option<(String, u64)>, WorldError> => lock.vanity;

        /// Current members of a guild (without the bot), in join order.
        pub fn members(&self, guild_id: Id<GuildMarker>) -> Result<Vec<MemberInfo>, WorldError>
            => lock.members;

        /// Messages the bot posted through REST, oldest first (the newest
        /// [`WorldOptions::message_capacity`]).
        pub fn messages(&self) -> Vec<PostedMessage> => lock.messages;

        /// The messages of [`World::messages`] posted in one channel.
        pub fn channel_messages(&self, channel_id: Id<ChannelMarker>)
            -> Result<Vec<PostedMessage>, WorldError> => lock.channel_messages;

        /// The global application commands (`PUT /applications/{id}/commands`), in the
        /// order of the last overwrite.
        pub fn commands(&self) -> Vec<RegisteredCommand> => lock.commands;

        /// A user uses a slash command or presses a button in a guild (INTERACTION_CREATE to
        /// the guild's shard). The bot has [`INTERACTION_RESPONSE_WINDOW_MS`] of the
        /// simulated clock to answer.
        pub fn interact(&self, spec: InteractionSpec) -> Result<InteractionInfo, WorldError>
            => lock.interact;

        /// How the bot answered an interaction (`None`: not yet, or no longer kept; the
        /// newest [`WorldOptions::message_capacity`] interactions are kept).
        pub fn interaction_reply(&self, id: Id<InteractionMarker>) -> Option<InteractionReply>
            => lock.interaction_reply;
    }

    // ---- OAuth2: the dashboard's login ----------------------------------------------------

    locked! {
        /// The OAuth2 client of the bot's application: client id (the application id),
        /// secret, registered redirect URIs.
        pub fn oauth2_client(&self) -> OAuth2Client => lock.oauth2_client;

        /// Replaces the registered redirect URIs (absolute URLs without a fragment, at most
        /// 10).
        pub fn set_oauth2_redirect_uris(&self, uris: Vec<String>) -> Result<(), WorldError>
            => lock.set_oauth2_redirect_uris;

        /// Signs a user in to the simulated Discord: `GET /oauth2/authorize` answers as
        /// that user would (approve: a code; deny: `error=access_denied`) until another
        /// sign-in or [`World::sign_out`].
        pub fn sign_in(&self, user_id: Id<UserMarker>, consent: Consent) => lock.sign_in;

        /// Nobody is signed in any more (authorizations answer an error page).
        pub fn sign_out(&self) => lock.sign_out;

        /// Who is signed in, and their answer on the authorization screen.
        pub fn signed_in(&self) -> Option<(Id<UserMarker>, Consent)> => lock.signed_in;

        /// Replaces the guilds a user is in besides those the world knows (the world's
        /// guilds the user owns or is a tracked member of); answers
        /// [`World::user_guilds`].
        pub fn set_user_guilds(&self, user_id: Id<UserMarker>, guilds: Vec<UserGuildSpec>)
            -> Result<Vec<UserGuild>, WorldError> => lock.set_user_guilds;

        /// The guilds a user is in, by id, as `GET /users/@me/guilds` answers them.
        pub fn user_guilds(&self, user_id: Id<UserMarker>) -> Vec<UserGuild> => lock.user_guilds;

        /// Live OAuth2 authorizations (codes exchanged, not revoked): each user's scopes.
        pub fn oauth2_authorizations(&self)
            -> std::collections::BTreeMap<Id<UserMarker>, Vec<String>>
            => lock.oauth2_authorizations;

        /// The owner of a guild (GUILD_CREATE's `owner_id`).
        pub fn guild_owner(&self, guild_id: Id<GuildMarker>) -> Result<Id<UserMarker>, WorldError>
            => lock.guild_owner;
    }

    /// Writes the ground truth to `path` as JSON lines (one join per line, the shape of
    /// [`JoinTruth`]), replacing the file. Returns the number of lines.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn write_truth(&self, path: &Path) -> std::io::Result<usize> {
        let tmp = path.with_extension("tmp");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let mut written = 0;
        loop {
            // In chunks, so the world is not locked for the whole write.
            let chunk = self.lock().truth_slice(written, 10_000);
            if chunk.is_empty() {
                break;
            }
            for truth in &chunk {
                serde_json::to_writer(&mut out, truth)?;
                out.write_all(b"\n")?;
            }
            written += chunk.len();
        }
        out.flush()?;
        drop(out);
        std::fs::rename(&tmp, path)?;
        Ok(written)
    }

    // ---- the gateway: sessions and dispatches ----------------------------------------------

    locked! {
        /// The delay of gateway dispatches (see [`EventDelay`]).
        pub fn event_delay(&self) -> EventDelay => lock.event_delay;

        /// Guild dispatches produced so far (each counted once).
        pub fn dispatched(&self) -> u64 => lock.dispatched;

        /// Number of gateway sessions with a live connection.
        pub fn connected_sessions(&self) -> usize => lock.connected_sessions;

        /// Cuts the gateway connection of `shard` (every shard for `None`) as a network
        /// failure would (close 4000): the shard RESUMEs. Returns the number of connections
        /// cut.
        pub fn drop_shard(&self, shard: Option<u32>) -> usize => lock.drop_shard;

        /// Ends every gateway session (their sockets close).
        pub fn disconnect_all(&self) => lock.disconnect_all;
    }

    /// Changes the delay of gateway dispatches for later changes.
    ///
    /// # Errors
    ///
    /// [`WorldError::Invalid`] for a bad range.
    pub fn set_event_delay(&self, delay: EventDelay) -> Result<(), WorldError> {
        delay.validate().map_err(WorldError::Invalid)?;
        if !delay.is_zero() {
            self.ensure_scheduler();
        }
        self.lock().set_event_delay(delay);
        Ok(())
    }

    /// Sends op 9 INVALID_SESSION to every connected shard (`false`: they re-identify).
    pub fn invalidate_sessions(&self, resumable: bool) {
        self.lock()
            .tell_all_sessions(&Outbound::InvalidSession(resumable));
    }

    /// Sends op 7 RECONNECT to every connected shard (they come back with RESUME).
    pub fn request_reconnect(&self) {
        self.lock().tell_all_sessions(&Outbound::Reconnect);
    }

    // ---- REST: rate limits and faults ------------------------------------------------------

    locked! {
        /// The bot-wide REST limit.
        pub fn global_limit(&self) -> GlobalLimit => limiter.global;

        /// Changes the bot-wide REST limit (`limit` 0 turns it off).
        pub fn set_global_limit(&self, limit: GlobalLimit) => limiter.set_global;

        /// A REST route's limit.
        pub fn rate_limit(&self, route: Route) -> RouteLimit => limiter.limit;

        /// Changes a REST route's limit (per guild/channel); exhausted buckets answer 429.
        pub fn set_rate_limit(&self, route: Route, limit: RouteLimit) => limiter.set_limit;

        /// What the REST API answered so far (requests, 429s, injected errors).
        pub fn rest_stats(&self) -> RestStats => limiter.stats;

        /// Zeroes [`World::rest_stats`].
        pub fn reset_rest_stats(&self) => limiter.reset_stats;
    }

    /// The faults of a REST route.
    pub fn faults(&self, route: Route) -> RouteFaults {
        self.lock_faults().get(route)
    }

    /// Every fault setting.
    pub fn fault_config(&self) -> FaultConfig {
        self.lock_faults().clone()
    }

    /// Sets the faults of one route, or of every route without an override (`None`).
    ///
    /// # Errors
    ///
    /// [`WorldError::Invalid`] for out-of-range values.
    pub fn set_faults(&self, route: Option<Route>, faults: RouteFaults) -> Result<(), WorldError> {
        faults.validate().map_err(WorldError::Invalid)?;
        let mut config = self.lock_faults();
        match route {
            Some(route) => {
                config.routes.insert(route, faults);
            }
            None => config.default = faults,
        }
        Ok(())
    }

    /// Draws the latency and error of one request to `route`.
    pub(crate) fn sample_faults(&self, route: Route) -> FaultPlan {
        let faults = self.faults(route);
        faults.sample(&mut rand::rng())
    }
}

/// A REST answer's JSON body.
fn to_json<T: serde::Serialize>(value: &T) -> Result<String, WorldError> {
    serde_json::to_string(value).map_err(|e| WorldError::Invalid(e.to_string()))
}
