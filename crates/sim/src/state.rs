//! The simulated Discord: guilds, members, invites, users and the ground truth of joins.
//!
//! [`State`] is a plain state machine: every operation changes the data and emits the
//! dispatches Discord would send, through the session registry it owns. [`World`] is the
//! cheap, cloneable handle (an `Arc<Mutex<State>>`) that the REST, gateway and control layers
//! and in-process users share. The std mutex is never held across an `.await`.

use crate::{
    error::WorldError,
    faults::{FaultConfig, FaultPlan, RouteFaults},
    ratelimit::{GlobalLimit, RateLimitConfig, RateLimiter, RestStats, Route, RouteLimit},
    sessions::{EventDelay, EventKind, Link, Outbound, ResumeRefused, Sessions},
    snowflake::{self, SnowflakeGen},
    wire,
};
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Serialize, Serializer};
use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, HashSet},
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
    marker::{
        ApplicationMarker, ChannelMarker, GuildMarker, MessageMarker, RoleMarker, UserMarker,
    },
};

/// Member flag `DID_REJOIN`.
pub const DID_REJOIN: u64 = 1 << 0;

/// What [`World::create_guild`] makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuildSpec {
    /// Guild name.
    pub name: String,
    /// Vanity URL code, if the guild has one.
    pub vanity_code: Option<String>,
    /// Whether the bot has MANAGE_GUILD (needed to list invites and read the vanity URL).
    pub manage_guild: bool,
}

impl Default for GuildSpec {
    fn default() -> Self {
        Self {
            name: "guild".to_owned(),
            vanity_code: None,
            manage_guild: true,
        }
    }
}

/// A guild made by [`World::create_guild`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CreatedGuild {
    /// The guild.
    pub guild_id: Id<GuildMarker>,
    /// Its text channel (invites point at it).
    pub channel_id: Id<ChannelMarker>,
}

/// What [`World::create_invite`] makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteSpec {
    /// Who creates the invite.
    pub inviter_id: Id<UserMarker>,
    /// 0 = unlimited.
    pub max_uses: u32,
    /// Seconds until expiry, 0 = never.
    pub max_age_secs: u32,
    /// Temporary membership.
    pub temporary: bool,
    /// A chosen code, or `None` for a random 8-character one.
    pub code: Option<String>,
}

impl InviteSpec {
    /// An unlimited, permanent invite by `inviter_id` with a random code.
    pub fn by(inviter_id: Id<UserMarker>) -> Self {
        Self {
            inviter_id,
            max_uses: 0,
            max_age_secs: 0,
            temporary: false,
            code: None,
        }
    }
}

/// An invite as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InviteInfo {
    /// Code.
    pub code: String,
    /// Guild.
    pub guild_id: Id<GuildMarker>,
    /// Channel.
    pub channel_id: Id<ChannelMarker>,
    /// Creator.
    pub inviter_id: Option<Id<UserMarker>>,
    /// Times used.
    pub uses: u64,
    /// 0 = unlimited.
    pub max_uses: u32,
    /// Seconds, 0 = never expires.
    pub max_age_secs: u32,
    /// Temporary membership.
    pub temporary: bool,
    /// Creation time.
    #[serde(serialize_with = "ser_time")]
    pub created_at: DateTime<Utc>,
    /// Expiry time, if any.
    #[serde(serialize_with = "ser_opt_time")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// How a member gets in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinVia {
    /// Through this invite code (its `uses` goes up).
    Invite(String),
    /// Through the guild's vanity URL (the vanity's `uses` goes up).
    Vanity,
    /// Without any counter moving: server discovery, a friend's "join" button, ...
    Untracked,
    /// Added by an application through OAuth2 `guilds.join` (no counter moves either).
    OAuth2,
}

/// Who joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinSpec {
    /// A known user, or `None` for a new account whose id encodes `account_age`.
    pub user_id: Option<Id<UserMarker>>,
    /// Whether a new account has an avatar.
    pub avatar: bool,
    /// Age of a new account (ignored when `user_id` is set: the id says it).
    pub account_age: Duration,
}

impl Default for JoinSpec {
    fn default() -> Self {
        Self {
            user_id: None,
            avatar: true,
            account_age: Duration::from_secs(365 * 86_400),
        }
    }
}

/// Which way a join really went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinPath {
    /// An invite code.
    Invite,
    /// The vanity URL.
    Vanity,
    /// Nothing a counter shows.
    Untracked,
    /// OAuth2 `guilds.join` (nothing a counter shows either).
    #[serde(rename = "oauth2")]
    OAuth2,
}

/// The ground truth of one join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JoinTruth {
    /// Guild joined.
    pub guild_id: Id<GuildMarker>,
    /// Member.
    pub user_id: Id<UserMarker>,
    /// Path really taken.
    pub path: JoinPath,
    /// Invite or vanity code used, if any.
    pub code: Option<String>,
    /// Creator of the invite used, if any.
    pub inviter_id: Option<Id<UserMarker>>,
    /// Join time (the member's `joined_at`).
    #[serde(serialize_with = "ser_time")]
    pub joined_at: DateTime<Utc>,
    /// When this membership ended, if it did.
    #[serde(serialize_with = "ser_opt_time")]
    pub left_at: Option<DateTime<Utc>>,
    /// Joined through a temporary invite (temporary membership).
    pub temporary: bool,
}

/// A current member of a guild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemberInfo {
    /// The member.
    pub user_id: Id<UserMarker>,
    /// When this membership started.
    #[serde(serialize_with = "ser_time")]
    pub joined_at: DateTime<Utc>,
    /// Member flags (`DID_REJOIN` = 1).
    pub flags: u64,
}

/// A message the bot posted through REST.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostedMessage {
    /// Message id.
    pub id: Id<MessageMarker>,
    /// Channel.
    pub channel_id: Id<ChannelMarker>,
    /// Guild of the channel.
    pub guild_id: Id<GuildMarker>,
    /// Text.
    pub content: String,
    /// Embeds as sent.
    pub embeds: Vec<serde_json::Value>,
}

fn ser_time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&snowflake::format_ts(t.timestamp_millis()))
}

fn ser_opt_time<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ser_time(t, s),
        None => s.serialize_none(),
    }
}

/// Fixed facts about the bot and the server.
#[derive(Debug, Clone)]
pub struct BotInfo {
    /// Bot token (without `Bot `).
    pub token: String,
    /// Bot user id (also the application id).
    pub user_id: Id<UserMarker>,
    /// Bot username.
    pub username: String,
    /// Recommended shard count (`GET /gateway/bot`).
    pub shards: u32,
    /// `ws://127.0.0.1:PORT`.
    pub gateway_url: String,
    /// Application's public key (hex).
    pub verify_key: String,
}

impl BotInfo {
    /// Checks a token as sent by a client: `Bot <token>` or the bare token.
    pub fn token_ok(&self, presented: &str) -> bool {
        presented.strip_prefix("Bot ").unwrap_or(presented) == self.token
    }

    /// The application id (same as the bot user id, as for every modern bot).
    pub fn application_id(&self) -> Id<ApplicationMarker> {
        self.user_id.cast()
    }

    /// The bot as a user object.
    pub fn user(&self) -> wire::User<'_> {
        wire::User {
            id: self.user_id,
            username: &self.username,
            discriminator: "0",
            global_name: None,
            avatar: None,
            avatar_decoration_data: None,
            banner: None,
            accent_color: None,
            public_flags: 0,
            flags: 0,
            bot: true,
        }
    }

    /// The bot as the current user.
    pub fn current_user(&self) -> wire::CurrentUser<'_> {
        wire::CurrentUser {
            id: self.user_id,
            username: &self.username,
            discriminator: "0",
            global_name: None,
            avatar: None,
            banner: None,
            accent_color: None,
            public_flags: 0,
            flags: 0,
            bot: true,
            mfa_enabled: false,
            verified: true,
            locale: "en-US",
            email: None,
            premium_type: 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Profile {
    username: String,
    global_name: Option<String>,
    avatar: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Member {
    joined_at_ms: i64,
    flags: u64,
    /// Temporary membership (joined through a temporary invite).
    temporary: bool,
    /// Index in `State::truth` of the join that made this membership, if recorded.
    truth: Option<usize>,
}

#[derive(Debug, Clone)]
struct Vanity {
    code: String,
    uses: u64,
    /// Uses whose counter has not moved yet (negative event delay).
    pending: u64,
}

#[derive(Debug)]
struct Guild {
    id: Id<GuildMarker>,
    name: String,
    owner_id: Id<UserMarker>,
    channel_id: Id<ChannelMarker>,
    channel_name: String,
    bot_role_id: Id<RoleMarker>,
    bot_joined_at_ms: i64,
    manage_guild: bool,
    vanity: Option<Vanity>,
    members: HashMap<Id<UserMarker>, Member>,
    ever_joined: HashSet<Id<UserMarker>>,
    /// Codes of live invites, oldest first.
    invite_codes: Vec<String>,
}

const VANITY_FEATURES: &[&str] = &["VANITY_URL"];

impl Guild {
    fn features(&self) -> &'static [&'static str] {
        if self.vanity.is_some() {
            VANITY_FEATURES
        } else {
            &[]
        }
    }

    /// Members plus the bot.
    fn member_count(&self) -> u64 {
        self.members.len() as u64 + 1
    }

    fn bot_permissions(&self) -> u64 {
        use wire::permissions::*;
        if self.manage_guild {
            EVERYONE | MANAGE_GUILD | MANAGE_CHANNELS
        } else {
            EVERYONE
        }
    }

    fn everyone_role(&self) -> wire::Role<'_> {
        role(
            self.id.cast(),
            "@everyone",
            0,
            wire::permissions::EVERYONE,
            false,
        )
    }

    fn bot_role(&self) -> wire::Role<'_> {
        role(
            self.bot_role_id,
            "invitrack",
            1,
            self.bot_permissions(),
            true,
        )
    }

    fn invite_guild(&self) -> wire::InviteGuild<'_> {
        wire::InviteGuild {
            id: self.id,
            name: &self.name,
            splash: None,
            banner: None,
            description: None,
            icon: None,
            features: self.features(),
            verification_level: 0,
            vanity_url_code: self.vanity.as_ref().map(|v| v.code.as_str()),
            nsfw_level: 0,
            nsfw: false,
            premium_subscription_count: 0,
        }
    }

    fn invite_channel(&self) -> wire::InviteChannel<'_> {
        wire::InviteChannel {
            id: self.channel_id,
            kind: 0,
            name: &self.channel_name,
        }
    }
}

fn role(
    id: Id<RoleMarker>,
    name: &str,
    position: i64,
    permissions: u64,
    managed: bool,
) -> wire::Role<'_> {
    wire::Role {
        id,
        name,
        color: 0,
        colors: wire::RoleColors {
            primary_color: 0,
            secondary_color: None,
            tertiary_color: None,
        },
        hoist: false,
        icon: None,
        unicode_emoji: None,
        position,
        permissions: permissions.to_string(),
        managed,
        mentionable: false,
        flags: 0,
    }
}

#[derive(Debug, Clone)]
struct Invite {
    code: String,
    guild_id: Id<GuildMarker>,
    channel_id: Id<ChannelMarker>,
    inviter_id: Option<Id<UserMarker>>,
    uses: u64,
    /// Uses whose counter has not moved yet (negative event delay).
    pending: u64,
    max_uses: u32,
    max_age_secs: u32,
    temporary: bool,
    created_at_ms: i64,
}

impl Invite {
    /// Whether every use is taken (counted or pending).
    fn used_up(&self) -> bool {
        self.max_uses > 0 && self.uses + self.pending >= u64::from(self.max_uses)
    }

    fn expires_at_ms(&self) -> Option<i64> {
        (self.max_age_secs > 0).then(|| self.created_at_ms + i64::from(self.max_age_secs) * 1000)
    }

    fn expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms().is_some_and(|at| at <= now_ms)
    }

    fn info(&self) -> InviteInfo {
        InviteInfo {
            code: self.code.clone(),
            guild_id: self.guild_id,
            channel_id: self.channel_id,
            inviter_id: self.inviter_id,
            uses: self.uses,
            max_uses: self.max_uses,
            max_age_secs: self.max_age_secs,
            temporary: self.temporary,
            created_at: snowflake::to_datetime(self.created_at_ms),
            expires_at: self.expires_at_ms().map(snowflake::to_datetime),
        }
    }
}

/// What a gateway IDENTIFY asks for.
#[derive(Debug, Clone, Copy)]
pub struct IdentifyRequest {
    /// `[shard_id, shard_count]`.
    pub shard: [u32; 2],
    /// Intent bits.
    pub intents: u64,
    /// `large_threshold` (50..=250).
    pub large_threshold: u64,
}

/// The whole simulated Discord.
#[derive(Debug)]
pub struct State {
    bot: BotInfo,
    ids: SnowflakeGen,
    clock_offset_ms: i64,
    guilds: HashMap<Id<GuildMarker>, Guild>,
    channels: HashMap<Id<ChannelMarker>, Id<GuildMarker>>,
    invites: HashMap<String, Invite>,
    vanity_codes: HashMap<String, Id<GuildMarker>>,
    users: HashMap<Id<UserMarker>, Profile>,
    truth: Vec<JoinTruth>,
    messages: Vec<PostedMessage>,
    sessions: Sessions,
    /// Counter moves waiting for their time (negative event delay).
    deferred: BinaryHeap<Reverse<Deferred>>,
    deferred_seq: u64,
    wake: Arc<Condvar>,
}

/// A `uses` counter that moves later than its join.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Deferred {
    due: Instant,
    seq: u64,
    guild_id: Id<GuildMarker>,
    /// The invite, or `None` for the vanity URL.
    code: Option<String>,
}

/// Codes: 2..=32 characters of `[A-Za-z0-9-]` (Discord's own are 7-10 alphanumerics).
fn valid_code(code: &str) -> bool {
    (2..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl State {
    fn with_delay(bot: BotInfo, delay: EventDelay, wake: Arc<Condvar>) -> Self {
        Self {
            bot,
            ids: SnowflakeGen::default(),
            clock_offset_ms: 0,
            guilds: HashMap::new(),
            channels: HashMap::new(),
            invites: HashMap::new(),
            vanity_codes: HashMap::new(),
            users: HashMap::new(),
            truth: Vec::new(),
            messages: Vec::new(),
            sessions: Sessions::new(delay, Arc::clone(&wake)),
            deferred: BinaryHeap::new(),
            deferred_seq: 0,
            wake,
        }
    }

    /// Runs what is due at `now` (deferred counters, delayed dispatches); when the next
    /// thing is due.
    pub fn run_due(&mut self, now: Instant) -> Option<Instant> {
        while let Some(Reverse(next)) = self.deferred.peek() {
            if next.due > now {
                break;
            }
            let Some(Reverse(item)) = self.deferred.pop() else {
                break;
            };
            self.move_counter(item.guild_id, item.code.as_deref());
        }
        let next_dispatch = self.sessions.flush_due(now);
        let next_counter = self.deferred.peek().map(|Reverse(d)| d.due);
        match (next_dispatch, next_counter) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A deferred `uses` counter moves now (INVITE_DELETE if that uses the invite up).
    fn move_counter(&mut self, guild_id: Id<GuildMarker>, code: Option<&str>) {
        match code {
            None => {
                if let Some(v) = self
                    .guilds
                    .get_mut(&guild_id)
                    .and_then(|g| g.vanity.as_mut())
                {
                    v.pending = v.pending.saturating_sub(1);
                    v.uses += 1;
                }
            }
            Some(code) => {
                let Some(invite) = self.invites.get_mut(code) else {
                    // Deleted by a moderator meanwhile: the use is lost with it.
                    return;
                };
                invite.pending = invite.pending.saturating_sub(1);
                invite.uses += 1;
                if invite.max_uses > 0 && invite.uses >= u64::from(invite.max_uses) {
                    let channel_id = invite.channel_id;
                    self.exhaust(guild_id, channel_id, code);
                }
            }
        }
    }

    /// Removes an invite that reached `max_uses` and tells the gateway (INVITE_DELETE).
    fn exhaust(&mut self, guild_id: Id<GuildMarker>, channel_id: Id<ChannelMarker>, code: &str) {
        self.remove_invite(code);
        let event = wire::InviteDelete {
            channel_id,
            guild_id,
            code,
        };
        if self.sees_invite_events(guild_id) {
            self.sessions
                .broadcast(guild_id, EventKind::INVITE_DELETE, &event);
        }
        tracing::debug!(guild_id = %guild_id, code, "invite reached max_uses");
    }

    /// The gateway dispatch delay.
    pub fn event_delay(&self) -> EventDelay {
        self.sessions.delay()
    }

    /// Changes the gateway dispatch delay.
    pub fn set_event_delay(&mut self, delay: EventDelay) {
        self.sessions.set_delay(delay);
    }

    /// Guild dispatches produced so far (each counted once, whatever the session count).
    pub fn dispatched(&self) -> u64 {
        self.sessions.dispatched()
    }

    /// Facts about the bot.
    pub fn bot(&self) -> &BotInfo {
        &self.bot
    }

    /// Simulated now, in Unix ms (wall clock plus [`World::advance_clock`]).
    pub fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis() + self.clock_offset_ms
    }

    /// Runs `f` with the state readable and the session registry writable at once, so a
    /// payload can borrow from the state while it is dispatched.
    fn with_sessions(&mut self, f: impl FnOnce(&State, &mut Sessions)) {
        let mut sessions = std::mem::take(&mut self.sessions);
        f(self, &mut sessions);
        self.sessions = sessions;
    }

    /// INVITE_CREATE/DELETE only reach a bot with MANAGE_CHANNELS on the invite's channel;
    /// the simulated bot role has it exactly when it has MANAGE_GUILD.
    fn sees_invite_events(&self, guild_id: Id<GuildMarker>) -> bool {
        self.guilds.get(&guild_id).is_some_and(|g| g.manage_guild)
    }

    fn user(&self, id: Id<UserMarker>) -> wire::User<'_> {
        if id == self.bot.user_id {
            return self.bot.user();
        }
        let profile = self.users.get(&id);
        wire::User {
            id,
            username: profile.map_or("unknown", |p| p.username.as_str()),
            discriminator: "0",
            global_name: profile.and_then(|p| p.global_name.as_deref()),
            avatar: profile.and_then(|p| p.avatar.as_deref()),
            avatar_decoration_data: None,
            banner: None,
            accent_color: None,
            public_flags: 0,
            flags: 0,
            bot: false,
        }
    }

    fn ensure_user(&mut self, id: Id<UserMarker>, avatar: bool) {
        if id == self.bot.user_id {
            return;
        }
        self.users.entry(id).or_insert_with(|| {
            let n = id.get();
            Profile {
                username: format!("user{n}"),
                global_name: Some(format!("User {}", n % 100_000)),
                // 32 hex digits, what twilight's ImageHash parses.
                avatar: avatar.then(|| {
                    format!(
                        "{:016x}{:016x}",
                        n,
                        n.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15
                    )
                }),
            }
        });
    }

    fn guild(&self, guild_id: Id<GuildMarker>) -> Result<&Guild, WorldError> {
        self.guilds
            .get(&guild_id)
            .ok_or(WorldError::UnknownGuild(guild_id))
    }

    fn code_taken(&self, code: &str) -> bool {
        self.invites.contains_key(code) || self.vanity_codes.contains_key(code)
    }

    fn random_code(&self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::rng();
        loop {
            let code: String = (0..8)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect();
            if !self.code_taken(&code) {
                return code;
            }
        }
    }

    fn guild_create_payload<'a>(&'a self, guild: &'a Guild) -> wire::GuildCreate<'a> {
        let bot_member = wire::GuildMember {
            guild_id: None,
            user: self.bot.user(),
            nick: None,
            avatar: None,
            banner: None,
            roles: std::slice::from_ref(&guild.bot_role_id),
            joined_at: snowflake::format_ts(guild.bot_joined_at_ms),
            premium_since: None,
            deaf: false,
            mute: false,
            flags: 0,
            pending: false,
            communication_disabled_until: None,
            avatar_decoration_data: None,
        };
        let member_count = guild.member_count();
        wire::GuildCreate {
            id: guild.id,
            name: &guild.name,
            icon: None,
            icon_hash: None,
            splash: None,
            discovery_splash: None,
            owner_id: guild.owner_id,
            afk_channel_id: None,
            afk_timeout: 300,
            widget_enabled: false,
            widget_channel_id: None,
            verification_level: 0,
            default_message_notifications: 0,
            explicit_content_filter: 0,
            roles: vec![guild.everyone_role(), guild.bot_role()],
            emojis: [],
            features: guild.features(),
            mfa_level: 0,
            application_id: None,
            system_channel_id: guild.channel_id,
            system_channel_flags: 0,
            rules_channel_id: None,
            max_presences: None,
            max_members: 500_000,
            vanity_url_code: guild.vanity.as_ref().map(|v| v.code.as_str()),
            description: None,
            banner: None,
            premium_tier: if guild.vanity.is_some() { 3 } else { 0 },
            premium_subscription_count: 0,
            preferred_locale: "en-US",
            public_updates_channel_id: None,
            max_video_channel_users: 25,
            max_stage_video_channel_users: 50,
            nsfw_level: 0,
            stickers: [],
            premium_progress_bar_enabled: false,
            safety_alerts_channel_id: None,
            joined_at: snowflake::format_ts(guild.bot_joined_at_ms),
            large: member_count > 50,
            unavailable: false,
            member_count,
            voice_states: [],
            members: vec![bot_member],
            channels: vec![wire::Channel {
                id: guild.channel_id,
                kind: 0,
                guild_id: guild.id,
                name: &guild.channel_name,
                position: 0,
                permission_overwrites: [],
                topic: None,
                nsfw: false,
                last_message_id: None,
                rate_limit_per_user: 0,
                parent_id: None,
                flags: 0,
            }],
            threads: [],
            presences: [],
            stage_instances: [],
            guild_scheduled_events: [],
            soundboard_sounds: [],
        }
    }

    fn invite_wire<'a>(&'a self, invite: &'a Invite, metadata: bool) -> Option<wire::Invite<'a>> {
        let guild = self.guilds.get(&invite.guild_id)?;
        let expires_at = invite.expires_at_ms().map(snowflake::format_ts);
        Some(wire::Invite {
            kind: 0,
            code: &invite.code,
            guild_id: guild.id,
            guild: guild.invite_guild(),
            channel: guild.invite_channel(),
            inviter: invite.inviter_id.map(|id| self.user(id)),
            approximate_member_count: None,
            approximate_presence_count: None,
            expires_at,
            uses: metadata.then_some(invite.uses),
            max_uses: metadata.then_some(invite.max_uses),
            max_age: metadata.then_some(invite.max_age_secs),
            temporary: metadata.then_some(invite.temporary),
            created_at: metadata.then(|| snowflake::format_ts(invite.created_at_ms)),
        })
    }

    /// Removes the invite `code` if it has expired (silently: Discord sends no event).
    fn purge_if_expired(&mut self, code: &str, now_ms: i64) -> bool {
        let expired = self.invites.get(code).is_some_and(|i| i.expired(now_ms));
        if expired {
            self.remove_invite(code);
        }
        expired
    }

    fn remove_invite(&mut self, code: &str) -> Option<Invite> {
        let invite = self.invites.remove(code)?;
        if let Some(guild) = self.guilds.get_mut(&invite.guild_id) {
            guild.invite_codes.retain(|c| c != code);
        }
        Some(invite)
    }

    fn purge_expired_in_guild(&mut self, guild_id: Id<GuildMarker>, now_ms: i64) {
        let expired: Vec<String> = match self.guilds.get(&guild_id) {
            Some(guild) => guild
                .invite_codes
                .iter()
                .filter(|c| {
                    self.invites
                        .get(c.as_str())
                        .is_some_and(|i| i.expired(now_ms))
                })
                .cloned()
                .collect(),
            None => return,
        };
        for code in expired {
            tracing::debug!(guild_id = %guild_id, code, "invite expired");
            self.remove_invite(&code);
        }
    }

    // ---- world operations -------------------------------------------------------------

    /// Makes a guild with one text channel; the bot is in it (GUILD_CREATE to its shard).
    pub fn create_guild(&mut self, spec: GuildSpec) -> Result<CreatedGuild, WorldError> {
        if spec.name.is_empty() || spec.name.len() > 100 {
            return Err(WorldError::Invalid(
                "guild name must have 1 to 100 characters".into(),
            ));
        }
        if let Some(code) = &spec.vanity_code {
            if !valid_code(code) {
                return Err(WorldError::Invalid(format!("invalid vanity code {code:?}")));
            }
            if self.code_taken(code) {
                return Err(WorldError::CodeTaken(code.clone()));
            }
        }
        let now = self.now_ms();
        let guild_id = Id::new(self.ids.at(now));
        let channel_id = Id::new(self.ids.at(now));
        let bot_role_id = Id::new(self.ids.at(now));
        let owner_id = Id::new(self.ids.at(now - 3 * 365 * 86_400_000));
        self.ensure_user(owner_id, true);
        let mut members = HashMap::new();
        members.insert(
            owner_id,
            Member {
                joined_at_ms: now,
                flags: 0,
                temporary: false,
                truth: None,
            },
        );
        if let Some(code) = &spec.vanity_code {
            self.vanity_codes.insert(code.clone(), guild_id);
        }
        let guild = Guild {
            id: guild_id,
            name: spec.name,
            owner_id,
            channel_id,
            channel_name: "general".to_owned(),
            bot_role_id,
            bot_joined_at_ms: now,
            manage_guild: spec.manage_guild,
            vanity: spec.vanity_code.map(|code| Vanity {
                code,
                uses: 0,
                pending: 0,
            }),
            members,
            ever_joined: HashSet::from([owner_id]),
            invite_codes: Vec::new(),
        };
        tracing::info!(guild_id = %guild_id, name = %guild.name, "guild created");
        self.channels.insert(channel_id, guild_id);
        self.guilds.insert(guild_id, guild);
        self.with_sessions(|state, sessions| {
            if let Some(guild) = state.guilds.get(&guild_id) {
                let payload = state.guild_create_payload(guild);
                sessions.broadcast(guild_id, EventKind::GUILD_CREATE, &payload);
            }
        });
        Ok(CreatedGuild {
            guild_id,
            channel_id,
        })
    }

    /// Creates an invite to the guild's channel (INVITE_CREATE with `uses` 0).
    pub fn create_invite(
        &mut self,
        guild_id: Id<GuildMarker>,
        spec: InviteSpec,
    ) -> Result<InviteInfo, WorldError> {
        let channel_id = self.guild(guild_id)?.channel_id;
        self.create_invite_in(channel_id, spec)
    }

    /// Creates an invite to a channel (INVITE_CREATE with `uses` 0).
    pub fn create_invite_in(
        &mut self,
        channel_id: Id<ChannelMarker>,
        spec: InviteSpec,
    ) -> Result<InviteInfo, WorldError> {
        let guild_id = *self
            .channels
            .get(&channel_id)
            .ok_or(WorldError::UnknownChannel(channel_id))?;
        if spec.max_age_secs > 604_800 {
            return Err(WorldError::Invalid(
                "max_age must be between 0 and 604800".into(),
            ));
        }
        if spec.max_uses > 100 {
            return Err(WorldError::Invalid(
                "max_uses must be between 0 and 100".into(),
            ));
        }
        let now = self.now_ms();
        let code = match spec.code {
            Some(code) => {
                self.purge_if_expired(&code, now);
                if !valid_code(&code) {
                    return Err(WorldError::Invalid(format!("invalid invite code {code:?}")));
                }
                if self.code_taken(&code) {
                    return Err(WorldError::CodeTaken(code));
                }
                code
            }
            None => self.random_code(),
        };
        self.ensure_user(spec.inviter_id, true);
        let invite = Invite {
            code: code.clone(),
            guild_id,
            channel_id,
            inviter_id: Some(spec.inviter_id),
            uses: 0,
            pending: 0,
            max_uses: spec.max_uses,
            max_age_secs: spec.max_age_secs,
            temporary: spec.temporary,
            created_at_ms: now,
        };
        let info = invite.info();
        self.with_sessions(|state, sessions| {
            let event = wire::InviteCreate {
                channel_id,
                code: &invite.code,
                created_at: snowflake::format_ts(now),
                guild_id,
                inviter: Some(state.user(spec.inviter_id)),
                max_age: invite.max_age_secs,
                max_uses: invite.max_uses,
                temporary: invite.temporary,
                uses: 0,
                kind: 0,
                expires_at: invite.expires_at_ms().map(snowflake::format_ts),
            };
            if state.sees_invite_events(guild_id) {
                sessions.broadcast(guild_id, EventKind::INVITE_CREATE, &event);
            }
        });
        tracing::debug!(guild_id = %guild_id, code, "invite created");
        if let Some(guild) = self.guilds.get_mut(&guild_id) {
            guild.invite_codes.push(code.clone());
        }
        self.invites.insert(code, invite);
        Ok(info)
    }

    /// A member joins: counters move as on Discord, GUILD_MEMBER_ADD goes out (then
    /// INVITE_DELETE if the invite just reached `max_uses`), and the truth is recorded.
    pub fn join(
        &mut self,
        guild_id: Id<GuildMarker>,
        via: JoinVia,
        spec: JoinSpec,
    ) -> Result<JoinTruth, WorldError> {
        let now = self.now_ms();
        self.guild(guild_id)?;
        let user_id = match spec.user_id {
            Some(id) => id,
            None => {
                let age_ms = i64::try_from(spec.account_age.as_millis()).unwrap_or(i64::MAX);
                Id::new(self.ids.at(now.saturating_sub(age_ms)))
            }
        };
        if user_id == self.bot.user_id {
            return Err(WorldError::Invalid(
                "the bot cannot join as a member".into(),
            ));
        }
        if self.guild(guild_id)?.members.contains_key(&user_id) {
            return Err(WorldError::AlreadyMember { guild_id, user_id });
        }

        // Resolve and validate the path before changing anything.
        let (path, code, inviter_id, temporary) = match &via {
            JoinVia::Invite(code) => {
                self.purge_if_expired(code, now);
                let invite = self
                    .invites
                    .get(code)
                    .filter(|i| i.guild_id == guild_id && !i.used_up())
                    .ok_or_else(|| WorldError::UnknownInvite(code.clone()))?;
                (
                    JoinPath::Invite,
                    Some(code.clone()),
                    invite.inviter_id,
                    invite.temporary,
                )
            }
            JoinVia::Vanity => {
                let vanity = self.guild(guild_id)?.vanity.as_ref();
                let code = vanity.ok_or(WorldError::NoVanity(guild_id))?.code.clone();
                (JoinPath::Vanity, Some(code), None, false)
            }
            JoinVia::Untracked => (JoinPath::Untracked, None, None, false),
            JoinVia::OAuth2 => (JoinPath::OAuth2, None, None, false),
        };

        // Positive: the dispatch lags the counter; negative: the counter lags the dispatch.
        let delay_ms = self.sessions.delay().sample();
        let defer_counter = delay_ms < 0 && matches!(via, JoinVia::Invite(_) | JoinVia::Vanity);
        let mut exhausted = None;
        match &via {
            JoinVia::Invite(code) => {
                if let Some(invite) = self.invites.get_mut(code) {
                    if defer_counter {
                        invite.pending += 1;
                    } else {
                        invite.uses += 1;
                        if invite.max_uses > 0 && invite.uses >= u64::from(invite.max_uses) {
                            exhausted = Some((invite.channel_id, code.clone()));
                        }
                    }
                }
            }
            JoinVia::Vanity => {
                if let Some(vanity) = self
                    .guilds
                    .get_mut(&guild_id)
                    .and_then(|g| g.vanity.as_mut())
                {
                    if defer_counter {
                        vanity.pending += 1;
                    } else {
                        vanity.uses += 1;
                    }
                }
            }
            JoinVia::Untracked | JoinVia::OAuth2 => {}
        }
        if defer_counter {
            self.deferred_seq += 1;
            let was_first = self.deferred.is_empty();
            self.deferred.push(Reverse(Deferred {
                due: Instant::now() + Duration::from_millis(delay_ms.unsigned_abs()),
                seq: self.deferred_seq,
                guild_id,
                code: match &via {
                    JoinVia::Invite(code) => Some(code.clone()),
                    _ => None,
                },
            }));
            if was_first {
                self.wake.notify_all();
            }
        }

        self.ensure_user(user_id, spec.avatar);
        let truth_index = self.truth.len();
        let Some(guild) = self.guilds.get_mut(&guild_id) else {
            return Err(WorldError::UnknownGuild(guild_id));
        };
        let flags = if guild.ever_joined.insert(user_id) {
            0
        } else {
            DID_REJOIN
        };
        guild.members.insert(
            user_id,
            Member {
                joined_at_ms: now,
                flags,
                temporary,
                truth: Some(truth_index),
            },
        );

        let dispatch_delay = u64::try_from(delay_ms).unwrap_or(0);
        self.with_sessions(|state, sessions| {
            let event = wire::GuildMember {
                guild_id: Some(guild_id),
                user: state.user(user_id),
                nick: None,
                avatar: None,
                banner: None,
                roles: &[],
                joined_at: snowflake::format_ts(now),
                premium_since: None,
                deaf: false,
                mute: false,
                flags,
                pending: false,
                communication_disabled_until: None,
                avatar_decoration_data: None,
            };
            sessions.broadcast_after(
                guild_id,
                EventKind::GUILD_MEMBER_ADD,
                &event,
                dispatch_delay,
            );
        });

        if let Some((channel_id, code)) = exhausted {
            self.exhaust(guild_id, channel_id, &code);
        }

        let truth = JoinTruth {
            guild_id,
            user_id,
            path,
            code,
            inviter_id,
            joined_at: snowflake::to_datetime(now),
            left_at: None,
            temporary,
        };
        tracing::debug!(guild_id = %guild_id, user_id = %user_id, path = ?truth.path, "member joined");
        self.truth.push(truth.clone());
        Ok(truth)
    }

    /// Every temporary member of the guild goes offline: Discord removes them
    /// (GUILD_MEMBER_REMOVE), as it does for temporary memberships without a role. Returns
    /// the users removed.
    pub fn end_temporary_memberships(
        &mut self,
        guild_id: Id<GuildMarker>,
    ) -> Result<Vec<Id<UserMarker>>, WorldError> {
        let mut temporary: Vec<(i64, Id<UserMarker>)> = self
            .guild(guild_id)?
            .members
            .iter()
            .filter(|(_, m)| m.temporary)
            .map(|(id, m)| (m.joined_at_ms, *id))
            .collect();
        temporary.sort();
        for (_, user_id) in &temporary {
            self.leave(guild_id, *user_id)?;
        }
        Ok(temporary.into_iter().map(|(_, id)| id).collect())
    }

    /// A member leaves (GUILD_MEMBER_REMOVE).
    pub fn leave(
        &mut self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> Result<(), WorldError> {
        let now = self.now_ms();
        let guild = self
            .guilds
            .get_mut(&guild_id)
            .ok_or(WorldError::UnknownGuild(guild_id))?;
        let member = guild
            .members
            .remove(&user_id)
            .ok_or(WorldError::NotMember { guild_id, user_id })?;
        if let Some(truth) = member.truth.and_then(|i| self.truth.get_mut(i)) {
            truth.left_at = Some(snowflake::to_datetime(now));
        }
        self.with_sessions(|state, sessions| {
            let event = wire::MemberRemove {
                guild_id,
                user: state.user(user_id),
            };
            sessions.broadcast(guild_id, EventKind::GUILD_MEMBER_REMOVE, &event);
        });
        tracing::debug!(guild_id = %guild_id, user_id = %user_id, "member left");
        Ok(())
    }

    /// Deletes an invite as a moderator would (INVITE_DELETE).
    pub fn delete_invite(&mut self, code: &str) -> Result<InviteInfo, WorldError> {
        let now = self.now_ms();
        if self.purge_if_expired(code, now) {
            return Err(WorldError::UnknownInvite(code.to_owned()));
        }
        let invite = self
            .remove_invite(code)
            .ok_or_else(|| WorldError::UnknownInvite(code.to_owned()))?;
        let event = wire::InviteDelete {
            channel_id: invite.channel_id,
            guild_id: invite.guild_id,
            code: &invite.code,
        };
        if self.sees_invite_events(invite.guild_id) {
            self.sessions
                .broadcast(invite.guild_id, EventKind::INVITE_DELETE, &event);
        }
        tracing::debug!(guild_id = %invite.guild_id, code, "invite deleted");
        Ok(invite.info())
    }

    /// Grants or revokes the bot's MANAGE_GUILD (GUILD_ROLE_UPDATE of the bot's role).
    pub fn set_manage_guild(
        &mut self,
        guild_id: Id<GuildMarker>,
        manage_guild: bool,
    ) -> Result<(), WorldError> {
        let guild = self
            .guilds
            .get_mut(&guild_id)
            .ok_or(WorldError::UnknownGuild(guild_id))?;
        if guild.manage_guild == manage_guild {
            return Ok(());
        }
        guild.manage_guild = manage_guild;
        tracing::info!(guild_id = %guild_id, manage_guild, "bot permissions changed");
        if let Some(guild) = self.guilds.get(&guild_id) {
            let event = wire::RoleUpdate {
                guild_id,
                role: guild.bot_role(),
            };
            self.sessions
                .broadcast(guild_id, EventKind::GUILD_ROLE_UPDATE, &event);
        }
        Ok(())
    }

    /// Live invites of a guild (expired ones are dropped first), oldest first.
    pub fn invites(&mut self, guild_id: Id<GuildMarker>) -> Result<Vec<InviteInfo>, WorldError> {
        let now = self.now_ms();
        self.purge_expired_in_guild(guild_id, now);
        let guild = self.guild(guild_id)?;
        Ok(guild
            .invite_codes
            .iter()
            .filter_map(|c| self.invites.get(c))
            .map(Invite::info)
            .collect())
    }

    /// The guild's vanity code and uses.
    pub fn vanity(&self, guild_id: Id<GuildMarker>) -> Result<Option<(String, u64)>, WorldError> {
        Ok(self
            .guild(guild_id)?
            .vanity
            .as_ref()
            .map(|v| (v.code.clone(), v.uses)))
    }

    /// Current members (without the bot), in join order.
    pub fn members(&self, guild_id: Id<GuildMarker>) -> Result<Vec<MemberInfo>, WorldError> {
        let mut list: Vec<MemberInfo> = self
            .guild(guild_id)?
            .members
            .iter()
            .map(|(id, m)| MemberInfo {
                user_id: *id,
                joined_at: snowflake::to_datetime(m.joined_at_ms),
                flags: m.flags,
            })
            .collect();
        list.sort_by_key(|m| (m.joined_at, m.user_id));
        Ok(list)
    }

    /// Every join so far, in order.
    pub fn ground_truth(&self) -> Vec<JoinTruth> {
        self.truth.clone()
    }

    /// Number of joins so far.
    pub fn truth_len(&self) -> usize {
        self.truth.len()
    }

    /// Joins `from..` (for writing the truth in chunks).
    pub fn truth_slice(&self, from: usize, max: usize) -> Vec<JoinTruth> {
        self.truth.iter().skip(from).take(max).cloned().collect()
    }

    /// Messages the bot posted.
    pub fn messages(&self) -> Vec<PostedMessage> {
        self.messages.clone()
    }

    /// Moves the simulated clock forward (invites expire by it).
    pub fn advance_clock(&mut self, by: Duration) {
        self.clock_offset_ms += i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 2);
    }

    // ---- REST views ---------------------------------------------------------------------

    /// `GET /guilds/{id}/invites` body.
    pub fn rest_guild_invites(&mut self, guild_id: Id<GuildMarker>) -> Result<String, WorldError> {
        let now = self.now_ms();
        if !self.guild(guild_id)?.manage_guild {
            return Err(WorldError::MissingPermissions);
        }
        self.purge_expired_in_guild(guild_id, now);
        let guild = self.guild(guild_id)?;
        let list: Vec<wire::Invite<'_>> = guild
            .invite_codes
            .iter()
            .filter_map(|c| self.invites.get(c))
            .filter_map(|i| self.invite_wire(i, true))
            .collect();
        to_json(&list)
    }

    /// `GET /channels/{id}/invites` body.
    pub fn rest_channel_invites(
        &mut self,
        channel_id: Id<ChannelMarker>,
    ) -> Result<String, WorldError> {
        let guild_id = *self
            .channels
            .get(&channel_id)
            .ok_or(WorldError::UnknownChannel(channel_id))?;
        if !self.guild(guild_id)?.manage_guild {
            return Err(WorldError::MissingPermissions);
        }
        let now = self.now_ms();
        self.purge_expired_in_guild(guild_id, now);
        let guild = self.guild(guild_id)?;
        let list: Vec<wire::Invite<'_>> = guild
            .invite_codes
            .iter()
            .filter_map(|c| self.invites.get(c))
            .filter(|i| i.channel_id == channel_id)
            .filter_map(|i| self.invite_wire(i, true))
            .collect();
        to_json(&list)
    }

    /// `GET /guilds/{id}/vanity-url` body.
    pub fn rest_vanity(&self, guild_id: Id<GuildMarker>) -> Result<String, WorldError> {
        let guild = self.guild(guild_id)?;
        if !guild.manage_guild {
            return Err(WorldError::MissingPermissions);
        }
        let body = match &guild.vanity {
            Some(v) => wire::VanityUrl {
                code: Some(&v.code),
                uses: v.uses,
            },
            None => wire::VanityUrl {
                code: None,
                uses: 0,
            },
        };
        to_json(&body)
    }

    /// `GET /invites/{code}` body (no metadata; counts on request).
    pub fn rest_invite(&mut self, code: &str, with_counts: bool) -> Result<String, WorldError> {
        let now = self.now_ms();
        self.purge_if_expired(code, now);
        if let Some(invite) = self.invites.get(code) {
            let mut body = self
                .invite_wire(invite, false)
                .ok_or_else(|| WorldError::UnknownInvite(code.to_owned()))?;
            if with_counts {
                let count = self.guild(invite.guild_id)?.member_count();
                body.approximate_member_count = Some(count);
                body.approximate_presence_count = Some(0);
            }
            return to_json(&body);
        }
        let guild_id = *self
            .vanity_codes
            .get(code)
            .ok_or_else(|| WorldError::UnknownInvite(code.to_owned()))?;
        let guild = self.guild(guild_id)?;
        let body = wire::Invite {
            kind: 0,
            code,
            guild_id,
            guild: guild.invite_guild(),
            channel: guild.invite_channel(),
            inviter: None,
            approximate_member_count: with_counts.then(|| guild.member_count()),
            approximate_presence_count: with_counts.then_some(0),
            expires_at: None,
            uses: None,
            max_uses: None,
            max_age: None,
            temporary: None,
            created_at: None,
        };
        to_json(&body)
    }

    /// `DELETE /invites/{code}` body (the deleted invite).
    pub fn rest_delete_invite(&mut self, code: &str) -> Result<String, WorldError> {
        let now = self.now_ms();
        self.purge_if_expired(code, now);
        let invite = self
            .invites
            .get(code)
            .ok_or_else(|| WorldError::UnknownInvite(code.to_owned()))?;
        let body = to_json(&self.invite_wire(invite, false))?;
        self.delete_invite(code)?;
        Ok(body)
    }

    /// `POST /channels/{id}/invites` (the bot creates an invite) body.
    pub fn rest_create_invite(
        &mut self,
        channel_id: Id<ChannelMarker>,
        max_age_secs: u32,
        max_uses: u32,
        temporary: bool,
    ) -> Result<String, WorldError> {
        let spec = InviteSpec {
            inviter_id: self.bot.user_id,
            max_uses,
            max_age_secs,
            temporary,
            code: None,
        };
        let info = self.create_invite_in(channel_id, spec)?;
        let invite = self
            .invites
            .get(&info.code)
            .ok_or_else(|| WorldError::UnknownInvite(info.code.clone()))?;
        to_json(&self.invite_wire(invite, true))
    }

    /// Control API view of an invite (invite with metadata).
    pub fn invite_json(&self, code: &str) -> Result<serde_json::Value, WorldError> {
        let invite = self
            .invites
            .get(code)
            .ok_or_else(|| WorldError::UnknownInvite(code.to_owned()))?;
        serde_json::to_value(self.invite_wire(invite, true))
            .map_err(|e| WorldError::Invalid(e.to_string()))
    }

    /// `POST /channels/{id}/messages` body.
    pub fn rest_post_message(
        &mut self,
        channel_id: Id<ChannelMarker>,
        content: String,
        mut embeds: Vec<serde_json::Value>,
    ) -> Result<String, WorldError> {
        let guild_id = *self
            .channels
            .get(&channel_id)
            .ok_or(WorldError::UnknownChannel(channel_id))?;
        if content.is_empty() && embeds.is_empty() {
            return Err(WorldError::Invalid("Cannot send an empty message".into()));
        }
        for embed in &mut embeds {
            if let Some(map) = embed.as_object_mut() {
                map.entry("type").or_insert_with(|| "rich".into());
            }
        }
        let now = self.now_ms();
        let id: Id<MessageMarker> = Id::new(self.ids.at(now));
        self.messages.push(PostedMessage {
            id,
            channel_id,
            guild_id,
            content,
            embeds,
        });
        let Some(posted) = self.messages.last() else {
            return Err(WorldError::UnknownChannel(channel_id));
        };
        let body = wire::Message {
            id,
            kind: 0,
            channel_id,
            guild_id: Some(guild_id),
            author: self.bot.user(),
            content: &posted.content,
            timestamp: snowflake::format_ts(now),
            edited_timestamp: None,
            tts: false,
            mention_everyone: false,
            mentions: [],
            mention_roles: [],
            attachments: [],
            embeds: &posted.embeds,
            pinned: false,
            flags: 0,
            components: [],
        };
        to_json(&body)
    }

    /// Number of guilds (for `GET /applications/@me`).
    pub fn guild_count(&self) -> usize {
        self.guilds.len()
    }

    // ---- gateway ------------------------------------------------------------------------

    /// A fresh id for a websocket connection.
    pub fn next_conn_id(&mut self) -> u64 {
        self.sessions.next_conn_id()
    }

    /// Opens a session: READY, then one GUILD_CREATE per guild of the shard, all queued on
    /// `tx` before any later dispatch. Returns the session id.
    pub fn identify(
        &mut self,
        request: IdentifyRequest,
        resume_url: &str,
        conn_id: u64,
        link: Link,
    ) -> String {
        let session_id = format!("{:032x}", rand::rng().random::<u128>());
        self.sessions.create(
            session_id.clone(),
            request.shard,
            request.intents,
            conn_id,
            link,
        );
        let [shard_id, shard_count] = request.shard;
        self.with_sessions(|state, sessions| {
            let mut mine: Vec<&Guild> = state
                .guilds
                .values()
                .filter(|g| crate::sessions::shard_of(g.id, shard_count) == shard_id)
                .collect();
            mine.sort_by_key(|g| g.id);
            let ready = wire::Ready {
                v: 10,
                user_settings: wire::Empty {},
                user: state.bot.current_user(),
                guilds: mine
                    .iter()
                    .map(|g| wire::UnavailableGuild {
                        id: g.id,
                        unavailable: true,
                    })
                    .collect(),
                guild_join_requests: [],
                relationships: [],
                private_channels: [],
                presences: [],
                session_id: &session_id,
                session_type: "normal",
                resume_gateway_url: resume_url,
                shard: request.shard,
                application: wire::PartialApplication {
                    id: state.bot.application_id(),
                    flags: 0,
                },
            };
            sessions.send_to(&session_id, EventKind::READY, &ready);
            for guild in mine {
                let mut payload = state.guild_create_payload(guild);
                payload.large = payload.member_count > request.large_threshold;
                sessions.send_to(&session_id, EventKind::GUILD_CREATE, &payload);
            }
        });
        tracing::info!(session_id, shard = ?request.shard, intents = request.intents, "session identified");
        session_id
    }

    /// Resumes a session: replays what it missed, then RESUMED.
    pub fn resume(
        &mut self,
        session_id: &str,
        seq: u64,
        conn_id: u64,
        link: Link,
    ) -> Result<(), ResumeRefused> {
        self.sessions.resume(session_id, seq, conn_id, link)?;
        self.sessions
            .send_to(session_id, EventKind::RESUMED, &wire::Empty {});
        tracing::info!(session_id, seq, "session resumed");
        Ok(())
    }

    /// The connection went away.
    pub fn detach(&mut self, session_id: &str, conn_id: u64) {
        self.sessions.detach(session_id, conn_id);
    }

    /// Forgets a session.
    pub fn forget_session(&mut self, session_id: &str) {
        self.sessions.remove(session_id);
    }

    /// Tells every connected shard something (op 7 to test RESUME, ...).
    pub fn tell_all_sessions(&mut self, msg: &Outbound) {
        self.sessions.tell_all(msg);
    }

    /// Ends every gateway session (on shutdown).
    pub fn disconnect_all(&mut self) {
        self.sessions.disconnect_all();
    }

    /// Number of connected sessions.
    pub fn connected_sessions(&self) -> usize {
        self.sessions.connected()
    }

    /// Cuts the connections of a shard (or all), close code 4000; they can RESUME.
    pub fn drop_shard(&mut self, shard: Option<u32>) -> usize {
        self.sessions.drop_shard(shard)
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, WorldError> {
    serde_json::to_string(value).map_err(|e| WorldError::Invalid(e.to_string()))
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
}

impl Default for WorldOptions {
    fn default() -> Self {
        Self {
            rate_limits: RateLimitConfig::default(),
            faults: FaultConfig::default(),
            event_delay: EventDelay::default(),
            gateway_queue: DEFAULT_GATEWAY_QUEUE,
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
                state: Mutex::new(State::with_delay(bot, delay, Arc::clone(&wake))),
                limiter: Mutex::new(RateLimiter::new(&options.rate_limits)),
                faults: Mutex::new(options.faults),
                wake,
                scheduler_started: AtomicBool::new(false),
                gateway_queue: options.gateway_queue.max(16),
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

    /// The delay of gateway dispatches (see [`EventDelay`]).
    pub fn event_delay(&self) -> EventDelay {
        self.lock().event_delay()
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

    fn lock_faults(&self) -> MutexGuard<'_, FaultConfig> {
        self.inner
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The bot-wide REST limit.
    pub fn global_limit(&self) -> GlobalLimit {
        self.limiter().global()
    }

    /// Changes the bot-wide REST limit (`limit` 0 turns it off).
    pub fn set_global_limit(&self, limit: GlobalLimit) {
        self.limiter().set_global(limit);
    }

    /// What the REST API answered so far (requests, 429s, injected errors).
    pub fn rest_stats(&self) -> RestStats {
        self.limiter().stats()
    }

    /// Zeroes [`World::rest_stats`].
    pub fn reset_rest_stats(&self) {
        self.limiter().reset_stats();
    }

    /// Guild dispatches produced so far (each counted once).
    pub fn dispatched(&self) -> u64 {
        self.lock().dispatched()
    }

    /// Cuts the gateway connection of `shard` (every shard for `None`) as a network failure
    /// would (close 4000): the shard RESUMEs. Returns the number of connections cut.
    pub fn drop_shard(&self, shard: Option<u32>) -> usize {
        self.lock().drop_shard(shard)
    }

    /// Every temporary member of a guild goes offline and is removed (GUILD_MEMBER_REMOVE),
    /// as Discord does with temporary memberships. Returns the users removed.
    pub fn end_temporary_memberships(
        &self,
        guild_id: Id<GuildMarker>,
    ) -> Result<Vec<Id<UserMarker>>, WorldError> {
        self.lock().end_temporary_memberships(guild_id)
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

    /// Locks the state (recovering from a poisoned lock: the state stays consistent because
    /// every operation validates before mutating).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Locks the REST rate limiter.
    pub(crate) fn limiter(&self) -> MutexGuard<'_, RateLimiter> {
        self.inner
            .limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes a REST route's limit (per guild/channel); exhausted buckets answer 429.
    pub fn set_rate_limit(&self, route: Route, limit: RouteLimit) {
        self.limiter().set_limit(route, limit);
    }

    /// A REST route's limit.
    pub fn rate_limit(&self, route: Route) -> RouteLimit {
        self.limiter().limit(route)
    }

    /// Ends every gateway session (their sockets close).
    pub fn disconnect_all(&self) {
        self.lock().disconnect_all();
    }

    /// Facts about the bot.
    pub fn bot(&self) -> &BotInfo {
        &self.inner.bot
    }

    /// Makes a guild (GUILD_CREATE to a connected shard).
    pub fn create_guild(&self, spec: GuildSpec) -> Result<CreatedGuild, WorldError> {
        self.lock().create_guild(spec)
    }

    /// Creates an invite (INVITE_CREATE).
    pub fn create_invite(
        &self,
        guild_id: Id<GuildMarker>,
        spec: InviteSpec,
    ) -> Result<InviteInfo, WorldError> {
        self.lock().create_invite(guild_id, spec)
    }

    /// A member joins (GUILD_MEMBER_ADD, maybe INVITE_DELETE).
    pub fn join(
        &self,
        guild_id: Id<GuildMarker>,
        via: JoinVia,
        spec: JoinSpec,
    ) -> Result<JoinTruth, WorldError> {
        self.lock().join(guild_id, via, spec)
    }

    /// A member leaves (GUILD_MEMBER_REMOVE).
    pub fn leave(
        &self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> Result<(), WorldError> {
        self.lock().leave(guild_id, user_id)
    }

    /// A moderator deletes an invite (INVITE_DELETE).
    pub fn delete_invite(&self, code: &str) -> Result<InviteInfo, WorldError> {
        self.lock().delete_invite(code)
    }

    /// Grants or revokes MANAGE_GUILD.
    pub fn set_manage_guild(
        &self,
        guild_id: Id<GuildMarker>,
        manage_guild: bool,
    ) -> Result<(), WorldError> {
        self.lock().set_manage_guild(guild_id, manage_guild)
    }

    /// Every join so far, in order.
    pub fn ground_truth(&self) -> Vec<JoinTruth> {
        self.lock().ground_truth()
    }

    /// Live invites of a guild.
    pub fn invites(&self, guild_id: Id<GuildMarker>) -> Result<Vec<InviteInfo>, WorldError> {
        self.lock().invites(guild_id)
    }

    /// Vanity code and uses of a guild.
    pub fn vanity(&self, guild_id: Id<GuildMarker>) -> Result<Option<(String, u64)>, WorldError> {
        self.lock().vanity(guild_id)
    }

    /// Current members of a guild (without the bot), in join order.
    pub fn members(&self, guild_id: Id<GuildMarker>) -> Result<Vec<MemberInfo>, WorldError> {
        self.lock().members(guild_id)
    }

    /// Messages the bot posted through REST.
    pub fn messages(&self) -> Vec<PostedMessage> {
        self.lock().messages()
    }

    /// Moves the simulated clock forward (invites expire by it; no event is sent).
    pub fn advance_clock(&self, by: Duration) {
        self.lock().advance_clock(by);
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

    /// Number of gateway sessions with a live connection.
    pub fn connected_sessions(&self) -> usize {
        self.lock().connected_sessions()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::intents;
    use tokio::sync::mpsc::channel;
    use tokio_util::sync::CancellationToken;

    fn world() -> World {
        World::new(BotInfo {
            token: "t".into(),
            user_id: Id::new(42),
            username: "bot".into(),
            shards: 1,
            gateway_url: "ws://127.0.0.1:1".into(),
            verify_key: "00".into(),
        })
    }

    fn drain(rx: &mut tokio::sync::mpsc::Receiver<Outbound>) -> Vec<(&'static str, String)> {
        std::iter::from_fn(|| match rx.try_recv() {
            Ok(Outbound::Frame(f)) => Some((f.t, f.d.to_string())),
            Ok(_) => Some(("other", String::new())),
            Err(_) => None,
        })
        .collect()
    }

    fn connect(w: &World) -> tokio::sync::mpsc::Receiver<Outbound> {
        let (tx, rx) = channel(10_000);
        let mut s = w.lock();
        let conn = s.next_conn_id();
        s.identify(
            IdentifyRequest {
                shard: [0, 1],
                intents: intents::GUILDS | intents::GUILD_MEMBERS | intents::GUILD_INVITES,
                large_threshold: 50,
            },
            "ws://x",
            conn,
            Link {
                tx,
                kill: CancellationToken::new(),
            },
        );
        rx
    }

    #[test]
    fn invite_lifecycle_and_truth() {
        let w = world();
        let g = w
            .create_guild(GuildSpec {
                name: "g".into(),
                vanity_code: Some("cool".into()),
                manage_guild: true,
            })
            .expect("guild");
        let mut rx = connect(&w);
        let names: Vec<_> = drain(&mut rx).into_iter().map(|(t, _)| t).collect();
        assert_eq!(names, vec!["READY", "GUILD_CREATE"]);

        let inv = w
            .create_invite(
                g.guild_id,
                InviteSpec {
                    max_uses: 2,
                    ..InviteSpec::by(Id::new(7))
                },
            )
            .expect("invite");
        let a = w
            .join(
                g.guild_id,
                JoinVia::Invite(inv.code.clone()),
                JoinSpec::default(),
            )
            .expect("join a");
        assert_eq!(w.invites(g.guild_id).expect("list")[0].uses, 1);
        let b = w
            .join(
                g.guild_id,
                JoinVia::Invite(inv.code.clone()),
                JoinSpec::default(),
            )
            .expect("join b");
        assert!(w.invites(g.guild_id).expect("list").is_empty());
        assert_eq!(
            w.join(
                g.guild_id,
                JoinVia::Invite(inv.code.clone()),
                JoinSpec::default()
            ),
            Err(WorldError::UnknownInvite(inv.code.clone()))
        );
        w.join(g.guild_id, JoinVia::Vanity, JoinSpec::default())
            .expect("vanity");
        assert_eq!(w.vanity(g.guild_id).expect("v"), Some(("cool".into(), 1)));
        w.leave(g.guild_id, a.user_id).expect("leave");
        let again = w
            .join(
                g.guild_id,
                JoinVia::Untracked,
                JoinSpec {
                    user_id: Some(a.user_id),
                    ..JoinSpec::default()
                },
            )
            .expect("rejoin");
        assert_eq!(again.path, JoinPath::Untracked);

        let events = drain(&mut rx);
        let names: Vec<_> = events.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            names,
            vec![
                "INVITE_CREATE",
                "GUILD_MEMBER_ADD",
                "GUILD_MEMBER_ADD",
                "INVITE_DELETE",
                "GUILD_MEMBER_ADD",
                "GUILD_MEMBER_REMOVE",
                "GUILD_MEMBER_ADD"
            ]
        );
        assert!(
            events[6].1.contains("\"flags\":1"),
            "rejoin has DID_REJOIN: {}",
            events[6].1
        );
        assert!(events[1].1.contains("\"flags\":0"));

        let truth = w.ground_truth();
        assert_eq!(truth.len(), 4);
        assert_eq!(truth[0].user_id, a.user_id);
        assert!(truth[0].left_at.is_some());
        assert_eq!(truth[1], b);
        assert_eq!(truth[1].inviter_id, Some(Id::new(7)));
    }

    #[test]
    fn expiry_is_silent_and_lazy() {
        let w = world();
        let g = w.create_guild(GuildSpec::default()).expect("guild");
        let inv = w
            .create_invite(
                g.guild_id,
                InviteSpec {
                    max_age_secs: 60,
                    ..InviteSpec::by(Id::new(7))
                },
            )
            .expect("invite");
        assert_eq!(w.invites(g.guild_id).expect("list").len(), 1);
        w.advance_clock(Duration::from_secs(61));
        assert!(w.invites(g.guild_id).expect("list").is_empty());
        assert_eq!(
            w.delete_invite(&inv.code),
            Err(WorldError::UnknownInvite(inv.code.clone()))
        );
    }

    #[test]
    fn account_age_is_in_the_id() {
        let w = world();
        let g = w.create_guild(GuildSpec::default()).expect("guild");
        let t = w
            .join(
                g.guild_id,
                JoinVia::Untracked,
                JoinSpec {
                    account_age: Duration::from_secs(3 * 86_400),
                    ..JoinSpec::default()
                },
            )
            .expect("join");
        let created = snowflake::created_at_ms(t.user_id.get());
        let age = t.joined_at.timestamp_millis() - created;
        assert!(
            (3 * 86_400_000 - 1000..=3 * 86_400_000 + 1000).contains(&age),
            "{age}"
        );
    }

    #[test]
    fn permissions_gate_rest_views() {
        let w = world();
        let g = w
            .create_guild(GuildSpec {
                manage_guild: false,
                ..GuildSpec::default()
            })
            .expect("guild");
        assert_eq!(
            w.lock().rest_guild_invites(g.guild_id),
            Err(WorldError::MissingPermissions)
        );
        assert_eq!(
            w.lock().rest_vanity(g.guild_id),
            Err(WorldError::MissingPermissions)
        );
        w.set_manage_guild(g.guild_id, true).expect("grant");
        assert_eq!(
            w.lock().rest_vanity(g.guild_id).expect("vanity"),
            r#"{"code":null,"uses":0}"#
        );
    }
}
