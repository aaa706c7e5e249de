//! The world's data: [`State`] (every guild, channel, invite, user, join and posted
//! message, plus the gateway session registry) and its parts (`Guild`, `Invite`, `Member`,
//! ...), with the lookups and small helpers the operations, views and gateway sessions share
//! (users, codes, expiry). The changes themselves are in `operations.rs`.

use super::{
    interactions::InteractionStore,
    messages::MessageStore,
    oauth2::{OAuth2Options, OAuth2Store},
    specs::{BotInfo, InviteInfo, JoinTruth, RegisteredCommand},
};
use crate::{
    error::WorldError,
    sessions::{EventDelay, Sessions},
    snowflake::{self, SnowflakeGen},
    wire,
};
use chrono::Utc;
use rand::Rng;
use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, HashSet},
    sync::{Arc, Condvar},
    time::Instant,
};
use twilight_model::id::{
    Id,
    marker::{ChannelMarker, GuildMarker, RoleMarker, UserMarker},
};

/// The whole simulated Discord. A plain state machine: every operation changes the data and
/// emits the dispatches Discord would send through the session registry it owns; the
/// `World` handle (`mod.rs`) keeps it behind a mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub(super) bot: BotInfo,
    pub(super) ids: SnowflakeGen,
    pub(super) clock_offset_ms: i64,
    pub(super) guilds: HashMap<Id<GuildMarker>, Guild>,
    pub(super) channels: HashMap<Id<ChannelMarker>, TextChannel>,
    pub(super) invites: HashMap<String, Invite>,
    pub(super) vanity_codes: HashMap<String, Id<GuildMarker>>,
    users: HashMap<Id<UserMarker>, Profile>,
    pub(super) truth: Vec<JoinTruth>,
    pub(super) messages: MessageStore,
    /// Global application commands, in the order of the last overwrite.
    pub(super) commands: Vec<RegisteredCommand>,
    /// Interactions (the newest `message_capacity`).
    pub(super) interactions: InteractionStore,
    /// Where interactions go instead of the gateway: the interactions endpoint URL, and the
    /// channel to the task that POSTs them.
    pub(super) interactions_url: Option<String>,
    pub(super) deliveries: Option<tokio::sync::mpsc::UnboundedSender<crate::delivery::Delivery>>,
    /// The OAuth2 client, the signed-in user, users' guilds, codes and tokens.
    pub(super) oauth2: OAuth2Store,
    pub(super) sessions: Sessions,
    /// Counter moves waiting for their time (negative event delay).
    pub(super) deferred: BinaryHeap<Reverse<Deferred>>,
    pub(super) deferred_seq: u64,
    pub(super) wake: Arc<Condvar>,
    pub(super) members_search: super::search::MembersSearchOptions,
    /// Gateway op 8: its options and the all-members rate limit's windows.
    pub(super) member_requests: super::member_requests::MemberRequests,
}

/// A `uses` counter that moves later than its join.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Deferred {
    pub(super) due: Instant,
    pub(super) seq: u64,
    pub(super) guild_id: Id<GuildMarker>,
    /// The invite, or `None` for the vanity URL.
    pub(super) code: Option<String>,
}

#[derive(Debug, Clone)]
struct Profile {
    username: String,
    global_name: Option<String>,
    avatar: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Member {
    pub(super) joined_at_ms: i64,
    pub(super) flags: u64,
    /// Temporary membership (joined through a temporary invite).
    pub(super) temporary: bool,
    /// Index in `State::truth` of the join that made this membership, if recorded.
    pub(super) truth: Option<usize>,
}

#[derive(Debug, Clone)]
pub(super) struct Vanity {
    pub(super) code: String,
    pub(super) uses: u64,
    /// Uses whose counter has not moved yet (negative event delay).
    pub(super) pending: u64,
}

#[derive(Debug)]
pub(super) struct Guild {
    pub(super) id: Id<GuildMarker>,
    pub(super) name: String,
    pub(super) owner_id: Id<UserMarker>,
    /// The first text channel: the system channel, where invites made through the world point.
    pub(super) channel_id: Id<ChannelMarker>,
    /// Every text channel, in creation order (their positions).
    pub(super) channel_ids: Vec<Id<ChannelMarker>>,
    pub(super) bot_role_id: Id<RoleMarker>,
    pub(super) bot_joined_at_ms: i64,
    pub(super) manage_guild: bool,
    pub(super) vanity: Option<Vanity>,
    pub(super) members: HashMap<Id<UserMarker>, Member>,
    pub(super) ever_joined: HashSet<Id<UserMarker>>,
    /// Codes of live invites, oldest first.
    pub(super) invite_codes: Vec<String>,
    /// When the member search's index of the guild began (its first search).
    pub(super) search_index_started_ms: Option<i64>,
}

const VANITY_FEATURES: &[&str] = &["VANITY_URL"];

impl Guild {
    pub(super) fn features(&self) -> &'static [&'static str] {
        if self.vanity.is_some() {
            VANITY_FEATURES
        } else {
            &[]
        }
    }

    /// Members plus the bot.
    pub(super) fn member_count(&self) -> u64 {
        self.members.len() as u64 + 1
    }

    /// The guild-wide permissions of the bot (`@everyone` plus its role).
    pub(super) fn bot_permissions(&self) -> u64 {
        use wire::permissions::*;
        if self.manage_guild {
            EVERYONE | MANAGE_GUILD | MANAGE_CHANNELS
        } else {
            EVERYONE
        }
    }

    pub(super) fn everyone_role(&self) -> wire::Role<'_> {
        wire::Role::new(
            self.id.cast(),
            "@everyone",
            0,
            wire::permissions::EVERYONE,
            false,
        )
    }

    pub(super) fn bot_role(&self) -> wire::Role<'_> {
        wire::Role::new(
            self.bot_role_id,
            "invitrack",
            1,
            self.bot_permissions(),
            true,
        )
    }

    pub(super) fn invite_guild(&self) -> wire::InviteGuild<'_> {
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
}

/// A guild text channel.
#[derive(Debug)]
pub(super) struct TextChannel {
    pub(super) id: Id<ChannelMarker>,
    pub(super) guild_id: Id<GuildMarker>,
    pub(super) name: String,
    pub(super) position: i32,
    /// What an overwrite of the bot's role denies in this channel (0 = no overwrite).
    pub(super) bot_deny: u64,
}

impl TextChannel {
    /// The channel object (GUILD_CREATE, CHANNEL_CREATE, CHANNEL_UPDATE).
    pub(super) fn wire(&self, bot_role_id: Id<RoleMarker>) -> wire::Channel<'_> {
        let overwrites = if self.bot_deny == 0 {
            Vec::new()
        } else {
            vec![wire::Overwrite::deny_role(bot_role_id, self.bot_deny)]
        };
        wire::Channel::text(
            self.id,
            self.guild_id,
            &self.name,
            self.position,
            overwrites,
        )
    }

    pub(super) fn invite_channel(&self) -> wire::InviteChannel<'_> {
        wire::InviteChannel {
            id: self.id,
            kind: 0,
            name: &self.name,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Invite {
    pub(super) code: String,
    pub(super) guild_id: Id<GuildMarker>,
    pub(super) channel_id: Id<ChannelMarker>,
    pub(super) inviter_id: Option<Id<UserMarker>>,
    pub(super) uses: u64,
    /// Uses whose counter has not moved yet (negative event delay).
    pub(super) pending: u64,
    pub(super) max_uses: u32,
    pub(super) max_age_secs: u32,
    pub(super) temporary: bool,
    pub(super) created_at_ms: i64,
}

impl Invite {
    /// Whether every use is taken (counted or pending).
    pub(super) fn used_up(&self) -> bool {
        self.max_uses > 0 && self.uses + self.pending >= u64::from(self.max_uses)
    }

    pub(super) fn expires_at_ms(&self) -> Option<i64> {
        (self.max_age_secs > 0).then(|| self.created_at_ms + i64::from(self.max_age_secs) * 1000)
    }

    pub(super) fn expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms().is_some_and(|at| at <= now_ms)
    }

    pub(super) fn info(&self) -> InviteInfo {
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

impl State {
    /// An empty world that keeps at most `message_capacity` posted messages.
    pub(super) fn new(
        bot: BotInfo,
        delay: EventDelay,
        message_capacity: usize,
        oauth2: OAuth2Options,
        wake: Arc<Condvar>,
    ) -> Self {
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
            messages: MessageStore::new(message_capacity),
            commands: Vec::new(),
            interactions: InteractionStore::new(message_capacity),
            interactions_url: None,
            deliveries: None,
            oauth2: OAuth2Store::new(oauth2),
            sessions: Sessions::new(delay, Arc::clone(&wake)),
            deferred: BinaryHeap::new(),
            deferred_seq: 0,
            wake,
            members_search: super::search::MembersSearchOptions::default(),
            member_requests: super::member_requests::MemberRequests::default(),
        }
    }

    /// Runs what is due at `now` (deferred counters, delayed dispatches); when the next
    /// Facts about the bot.
    pub fn bot(&self) -> &BotInfo {
        &self.bot
    }

    /// Simulated now, in Unix ms (wall clock plus
    /// [`World::advance_clock`](crate::World::advance_clock)).
    pub fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis() + self.clock_offset_ms
    }

    /// Runs `f` with the state readable and the session registry writable at once, so a
    /// payload can borrow from the state while it is dispatched.
    pub(super) fn with_sessions(&mut self, f: impl FnOnce(&State, &mut Sessions)) {
        let mut sessions = std::mem::take(&mut self.sessions);
        f(self, &mut sessions);
        self.sessions = sessions;
    }

    /// INVITE_CREATE/DELETE only reach a bot with MANAGE_CHANNELS on the invite's channel;
    /// the simulated bot role has it exactly when it has MANAGE_GUILD.
    pub(super) fn sees_invite_events(&self, guild_id: Id<GuildMarker>) -> bool {
        self.guilds.get(&guild_id).is_some_and(|g| g.manage_guild)
    }

    pub(super) fn user(&self, id: Id<UserMarker>) -> wire::User<'_> {
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

    /// A member of `guild` as the guild member object shows it, without `guild_id`: the bot
    /// with its role (GUILD_CREATE), anyone else as GUILD_MEMBER_ADD showed them (no roles).
    /// `None` when the user is not a current member. Every payload carrying a member
    /// (GUILD_CREATE, GUILD_MEMBER_ADD, GUILD_MEMBERS_CHUNK, the member search) takes it
    /// from here.
    pub(super) fn guild_member<'a>(
        &'a self,
        guild: &'a Guild,
        user_id: Id<UserMarker>,
    ) -> Option<wire::GuildMember<'a>> {
        if user_id == self.bot.user_id {
            return Some(wire::GuildMember::new(
                self.bot.user(),
                std::slice::from_ref(&guild.bot_role_id),
                guild.bot_joined_at_ms,
                0,
            ));
        }
        let member = guild.members.get(&user_id)?;
        Some(wire::GuildMember::new(
            self.user(user_id),
            &[],
            member.joined_at_ms,
            member.flags,
        ))
    }

    /// Whether the world has seen this user (a member, a former member, an inviter, the
    /// bot).
    pub(super) fn knows_user(&self, id: Id<UserMarker>) -> bool {
        id == self.bot.user_id || self.users.contains_key(&id)
    }

    pub(super) fn ensure_user(&mut self, id: Id<UserMarker>, avatar: bool) {
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

    pub(super) fn guild(&self, guild_id: Id<GuildMarker>) -> Result<&Guild, WorldError> {
        self.guilds
            .get(&guild_id)
            .ok_or(WorldError::UnknownGuild(guild_id))
    }

    pub(super) fn channel(
        &self,
        channel_id: Id<ChannelMarker>,
    ) -> Result<&TextChannel, WorldError> {
        self.channels
            .get(&channel_id)
            .ok_or(WorldError::UnknownChannel(channel_id))
    }

    /// The bot's permissions in a channel, computed as Discord does for a member with one role
    /// and a role overwrite: the guild's permissions less what the overwrite denies, then the
    /// implicit denials.
    pub(super) fn bot_channel_permissions(&self, channel: &TextChannel) -> Result<u64, WorldError> {
        let base = self.guild(channel.guild_id)?.bot_permissions();
        Ok(wire::permissions::implicit(base & !channel.bot_deny))
    }

    pub(super) fn code_taken(&self, code: &str) -> bool {
        self.invites.contains_key(code) || self.vanity_codes.contains_key(code)
    }

    pub(super) fn random_code(&self) -> String {
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
    /// Removes the invite `code` if it has expired (silently: Discord sends no event).
    pub(super) fn purge_if_expired(&mut self, code: &str, now_ms: i64) -> bool {
        let expired = self.invites.get(code).is_some_and(|i| i.expired(now_ms));
        if expired {
            self.remove_invite(code);
        }
        expired
    }

    pub(super) fn remove_invite(&mut self, code: &str) -> Option<Invite> {
        let invite = self.invites.remove(code)?;
        if let Some(guild) = self.guilds.get_mut(&invite.guild_id) {
            guild.invite_codes.retain(|c| c != code);
        }
        Some(invite)
    }

    pub(super) fn purge_expired_in_guild(&mut self, guild_id: Id<GuildMarker>, now_ms: i64) {
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
}
