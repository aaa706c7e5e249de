//! What callers hand the world and what it hands back: the specs of new guilds, channels,
//! invites, joins and posted messages (`GuildSpec`, `ChannelSpec`, `InviteSpec`, `JoinSpec`,
//! `JoinVia`, `NewMessage`), the records it answers (`CreatedGuild`, `InviteInfo`,
//! `JoinTruth` with its `JoinPath`, `MemberInfo`, `PostedMessage`) and the fixed facts about
//! the bot (`BotInfo`). Plain data, public through the crate root (`NewMessage` only inside
//! the crate: REST checks a request's body into it).

use crate::{
    snowflake,
    wire::{self, Nonce},
};
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use std::time::Duration;
use twilight_model::id::{
    Id,
    marker::{
        ApplicationMarker, ChannelMarker, CommandMarker, CommandVersionMarker, GuildMarker,
        InteractionMarker, MessageMarker, UserMarker,
    },
};

/// Member flag `DID_REJOIN`.
pub const DID_REJOIN: u64 = 1 << 0;

/// What [`World::create_guild`](crate::World::create_guild) makes.
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

/// A guild made by [`World::create_guild`](crate::World::create_guild).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CreatedGuild {
    /// The guild.
    pub guild_id: Id<GuildMarker>,
    /// Its text channel (invites point at it).
    pub channel_id: Id<ChannelMarker>,
}

/// What [`World::create_channel`](crate::World::create_channel) makes: a guild text channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    /// Channel name.
    pub name: String,
    /// Permissions an overwrite of the bot's role denies in the channel (bits of
    /// [`crate::permissions`]; 0 = no overwrite), e.g. `SEND_MESSAGES` for a channel where the
    /// bot cannot post.
    pub bot_deny: u64,
}

/// What [`World::create_invite`](crate::World::create_invite) makes.
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
    /// Embeds as Discord keeps them (`type` `rich`, text fields trimmed, read-only fields
    /// dropped); none when the bot lacks EMBED_LINKS in the channel.
    pub embeds: Vec<serde_json::Value>,
    /// The nonce sent with it, if any.
    pub nonce: Option<Nonce>,
    /// `allowed_mentions` as sent (`None` when absent: Discord then parses mentions from the
    /// content).
    pub allowed_mentions: Option<serde_json::Value>,
    /// When it was created (the simulated clock).
    #[serde(serialize_with = "ser_time")]
    pub created_at: DateTime<Utc>,
}

/// A Create Message body that passed Discord's form checks (REST builds it).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct NewMessage {
    pub(crate) content: String,
    pub(crate) embeds: Vec<serde_json::Value>,
    pub(crate) nonce: Option<Nonce>,
    /// Answer the message created recently with the same nonce instead of a new one.
    pub(crate) enforce_nonce: bool,
    pub(crate) allowed_mentions: Option<serde_json::Value>,
}

/// A user's interaction for [`World::interact`](crate::World::interact): a slash command
/// or a button press in a guild.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionSpec {
    /// Where.
    pub guild_id: Id<GuildMarker>,
    /// Who (a member of the guild, or any user: the simulator does not model the
    /// memberships of inviters).
    pub user_id: Id<UserMarker>,
    /// The user's permissions in the channel (bits, sent as `member.permissions`).
    pub member_permissions: u64,
    /// A command or a component.
    pub kind: InteractionKind,
    /// The user's locale, e.g. `en-US`.
    pub locale: String,
}

/// What the user did.
#[derive(Debug, Clone, PartialEq)]
pub enum InteractionKind {
    /// A slash command (type 2, APPLICATION_COMMAND).
    Command {
        /// Command name (need not be registered).
        name: String,
        /// Discord's option objects, e.g. `[{"name":"user","type":6,"value":"123"}]`
        /// (`null` = none).
        options: serde_json::Value,
    },
    /// A button press (type 3, MESSAGE_COMPONENT).
    Component {
        /// The button's `custom_id`.
        custom_id: String,
        /// The message the button is on (a fresh id when `None`).
        message_id: Option<Id<MessageMarker>>,
    },
    /// The user submits the modal the bot answered interaction `of` with (type 5,
    /// MODAL_SUBMIT).
    ModalSubmit {
        /// The interaction whose response was the modal.
        of: Id<InteractionMarker>,
        /// What the user typed, by text input `custom_id`; an input not named keeps its
        /// pre-filled `value` (empty when it has none).
        values: std::collections::BTreeMap<String, String>,
    },
}

/// An interaction made by [`World::interact`](crate::World::interact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InteractionInfo {
    /// The interaction id.
    pub id: Id<InteractionMarker>,
    /// Its token (for the callback and the webhook routes).
    pub token: String,
}

/// How the bot answered an interaction
/// ([`World::interaction_reply`](crate::World::interaction_reply)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InteractionReply {
    /// Callback type: 4 CHANNEL_MESSAGE_WITH_SOURCE, 5 DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
    /// 6 DEFERRED_UPDATE_MESSAGE, 7 UPDATE_MESSAGE, 9 MODAL.
    pub callback_type: u8,
    /// The response's content, after the edits (`None`: none yet, or cleared).
    pub content: Option<String>,
    /// Its embeds, after the edits (as Discord keeps them).
    pub embeds: Vec<serde_json::Value>,
    /// Its components (a modal's for type 9), after the edits; `[]` when none.
    pub components: serde_json::Value,
    /// Message flags of the callback (64 = EPHEMERAL).
    pub flags: u64,
    /// Successful edits of the original response.
    pub edits: u32,
    /// Time from the interaction to its callback (the simulated clock).
    pub acknowledged_after_ms: u64,
    /// Follow-up messages (`POST /webhooks/{application_id}/{token}`), oldest first.
    pub followups: Vec<FollowUp>,
    /// Whether the interaction went to the interactions endpoint URL (else the gateway).
    pub over_http: bool,
}

/// A follow-up message of an interaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowUp {
    /// Message id.
    pub id: Id<MessageMarker>,
    pub content: Option<String>,
    pub embeds: Vec<serde_json::Value>,
    pub components: serde_json::Value,
    /// Message flags (64 = EPHEMERAL).
    pub flags: u64,
}

/// A registered (global) application command, as `PUT /applications/{id}/commands` stored
/// it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegisteredCommand {
    /// Command id (kept across overwrites for the same name and type).
    pub id: Id<CommandMarker>,
    /// Name.
    pub name: String,
    /// 1 CHAT_INPUT, 2 USER, 3 MESSAGE, 4 PRIMARY_ENTRY_POINT.
    pub kind: u8,
    /// Description (empty for user and message commands).
    pub description: String,
    /// Version (changes when an overwrite changes the command).
    pub version: Id<CommandVersionMarker>,
    /// The command object as REST answers it.
    pub object: serde_json::Value,
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
        wire::CurrentUser::bot(self.user_id, &self.username)
    }
}
