//! Discord's JSON shapes, as documented by Discord (not only what twilight happens to accept).
//!
//! Why our own structs instead of serializing twilight-model types: twilight-model writes
//! what twilight needs, not what Discord sends (a discriminator `0` becomes `"0000"`, invites
//! lose `type` and `expires_at`, `null` fields are skipped). These borrow from the state, so a
//! dispatch costs one serialization and no intermediate copies. Every shape is checked against
//! twilight-model's deserializers in the tests below and in `tests/`.

use serde::Serialize;
use twilight_model::id::{
    Id,
    marker::{
        ApplicationMarker, ChannelMarker, GuildMarker, MessageMarker, RoleMarker, UserMarker,
    },
};

/// `null` in JSON, whatever the field's real type would be.
pub type Null = Option<()>;

/// Discord permission bits used by the simulator.
pub mod permissions {
    /// CREATE_INSTANT_INVITE.
    pub const CREATE_INSTANT_INVITE: u64 = 1 << 0;
    /// ADMINISTRATOR (every permission).
    pub const ADMINISTRATOR: u64 = 1 << 3;
    /// MANAGE_CHANNELS.
    pub const MANAGE_CHANNELS: u64 = 1 << 4;
    /// MANAGE_GUILD.
    pub const MANAGE_GUILD: u64 = 1 << 5;
    /// VIEW_CHANNEL.
    pub const VIEW_CHANNEL: u64 = 1 << 10;
    /// SEND_MESSAGES.
    pub const SEND_MESSAGES: u64 = 1 << 11;
    /// EMBED_LINKS.
    pub const EMBED_LINKS: u64 = 1 << 14;
    /// READ_MESSAGE_HISTORY.
    pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
    /// Every permission Discord documents (bits 0 to 52; bit 47 is unused): what an owner or
    /// an administrator has.
    pub const ALL: u64 = ((1 << 53) - 1) & !(1 << 47);
    /// What `@everyone` gets in a simulated guild.
    pub const EVERYONE: u64 =
        CREATE_INSTANT_INVITE | VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | READ_MESSAGE_HISTORY;
    /// The channel permissions a test can deny the bot, by Discord's names.
    pub const CHANNEL_NAMED: [(&str, u64); 5] = [
        ("CREATE_INSTANT_INVITE", CREATE_INSTANT_INVITE),
        ("VIEW_CHANNEL", VIEW_CHANNEL),
        ("SEND_MESSAGES", SEND_MESSAGES),
        ("EMBED_LINKS", EMBED_LINKS),
        ("READ_MESSAGE_HISTORY", READ_MESSAGE_HISTORY),
    ];

    /// The bit of a channel permission named as Discord names it (`"SEND_MESSAGES"`).
    pub fn channel_permission(name: &str) -> Option<u64> {
        CHANNEL_NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, bit)| *bit)
    }

    /// Applies Discord's implicit denials to a member's permissions in a text channel: without
    /// VIEW_CHANNEL nothing else counts; without SEND_MESSAGES neither does EMBED_LINKS.
    pub fn implicit(permissions: u64) -> u64 {
        if permissions & VIEW_CHANNEL == 0 {
            0
        } else if permissions & SEND_MESSAGES == 0 {
            permissions & !EMBED_LINKS
        } else {
            permissions
        }
    }
}

/// Discord's user object.
#[derive(Debug, Serialize)]
pub struct User<'a> {
    pub id: Id<UserMarker>,
    pub username: &'a str,
    /// Always `"0"`: users migrated to unique usernames.
    pub discriminator: &'static str,
    pub global_name: Option<&'a str>,
    pub avatar: Option<&'a str>,
    pub avatar_decoration_data: Null,
    pub banner: Null,
    pub accent_color: Null,
    pub public_flags: u64,
    pub flags: u64,
    #[serde(skip_serializing_if = "is_false")]
    pub bot: bool,
}

/// The bot's own user (`READY.user`, `GET /users/@me`): a user plus account fields.
#[derive(Debug, Serialize)]
pub struct CurrentUser<'a> {
    pub id: Id<UserMarker>,
    pub username: &'a str,
    pub discriminator: &'static str,
    pub global_name: Option<&'a str>,
    pub avatar: Option<&'a str>,
    pub banner: Null,
    pub accent_color: Null,
    pub public_flags: u64,
    pub flags: u64,
    pub bot: bool,
    pub mfa_enabled: bool,
    pub verified: bool,
    pub locale: &'static str,
    pub email: Null,
    pub premium_type: u8,
}

impl<'a> CurrentUser<'a> {
    /// A bot account with Discord's defaults for everything else.
    pub fn bot(id: Id<UserMarker>, username: &'a str) -> Self {
        Self {
            id,
            username,
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

/// A user as an OAuth2 application sees it (`GET /users/@me` with a Bearer token): the user
/// object with the fields the `identify` scope gives, and `email` / `verified` with the
/// `email` scope.
#[derive(Debug, Serialize)]
pub struct OAuth2User<'a> {
    pub id: Id<UserMarker>,
    pub username: &'a str,
    pub discriminator: &'static str,
    pub global_name: Option<&'a str>,
    pub avatar: Option<&'a str>,
    pub avatar_decoration_data: Null,
    pub banner: Null,
    pub accent_color: Null,
    pub public_flags: u64,
    pub flags: u64,
    pub mfa_enabled: bool,
    pub locale: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

/// A partial guild of `GET /users/@me/guilds`.
#[derive(Debug, Serialize)]
pub struct PartialGuild<'a> {
    pub id: Id<GuildMarker>,
    pub name: &'a str,
    pub icon: Null,
    pub banner: Null,
    pub owner: bool,
    /// The user's permissions, a decimal string.
    pub permissions: String,
    pub features: &'a [&'static str],
    /// Only with `with_counts=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_member_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_presence_count: Option<u64>,
}

/// `GET /oauth2/@me`: the current authorization.
#[derive(Debug, Serialize)]
pub struct AuthorizationInfo<'a> {
    pub application: AuthorizedApplication<'a>,
    pub scopes: &'a [String],
    pub expires: String,
    /// With the `identify` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<OAuth2User<'a>>,
}

/// The partial application of [`AuthorizationInfo`].
#[derive(Debug, Serialize)]
pub struct AuthorizedApplication<'a> {
    pub id: Id<ApplicationMarker>,
    pub name: &'a str,
    pub icon: Null,
    pub description: &'static str,
    pub hook: bool,
    pub bot_public: bool,
    pub bot_require_code_grant: bool,
    pub verify_key: &'a str,
}

/// Guild member; with `guild_id` set it is the `GUILD_MEMBER_ADD` payload.
#[derive(Debug, Serialize)]
pub struct GuildMember<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guild_id: Option<Id<GuildMarker>>,
    pub user: User<'a>,
    pub nick: Null,
    pub avatar: Null,
    pub banner: Null,
    pub roles: &'a [Id<RoleMarker>],
    pub joined_at: String,
    pub premium_since: Null,
    pub deaf: bool,
    pub mute: bool,
    /// `DID_REJOIN = 1 << 0`.
    pub flags: u64,
    pub pending: bool,
    pub communication_disabled_until: Null,
    pub avatar_decoration_data: Null,
}

impl<'a> GuildMember<'a> {
    /// A member as the simulator has them: no nickname, avatar, boost, mute or timeout, not
    /// pending; `guild_id` unset.
    pub fn new(user: User<'a>, roles: &'a [Id<RoleMarker>], joined_at_ms: i64, flags: u64) -> Self {
        Self {
            guild_id: None,
            user,
            nick: None,
            avatar: None,
            banner: None,
            roles,
            joined_at: crate::snowflake::format_ts(joined_at_ms),
            premium_since: None,
            deaf: false,
            mute: false,
            flags,
            pending: false,
            communication_disabled_until: None,
            avatar_decoration_data: None,
        }
    }
}

/// `GUILD_MEMBER_REMOVE`.
#[derive(Debug, Serialize)]
pub struct MemberRemove<'a> {
    pub guild_id: Id<GuildMarker>,
    pub user: User<'a>,
}

/// `GUILD_MEMBERS_CHUNK`: one of the answers to op 8 (Request Guild Members).
#[derive(Debug, Serialize)]
pub struct MembersChunk<'a> {
    pub guild_id: Id<GuildMarker>,
    /// Guild member objects without `guild_id`, at most 1000.
    pub members: &'a [GuildMember<'a>],
    pub chunk_index: u32,
    pub chunk_count: u32,
    /// The requested ids that are not members (requests by `user_ids` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_found: Option<&'a [Id<UserMarker>]>,
    /// The request's nonce, when it had a valid one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
}

/// `RATE_LIMITED` (a dispatch): a gateway command over its limit.
#[derive(Debug, Serialize)]
pub struct GatewayRateLimited<'a> {
    /// The opcode of the command (8).
    pub opcode: u8,
    /// Seconds to wait before sending it again.
    pub retry_after: f64,
    pub meta: RequestMembersMeta<'a>,
}

/// `meta` of [`GatewayRateLimited`] for op 8: the request's guild and nonce.
#[derive(Debug, Serialize)]
pub struct RequestMembersMeta<'a> {
    pub guild_id: Id<GuildMarker>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
}

/// `INVITE_CREATE`.
#[derive(Debug, Serialize)]
pub struct InviteCreate<'a> {
    pub channel_id: Id<ChannelMarker>,
    pub code: &'a str,
    pub created_at: String,
    pub guild_id: Id<GuildMarker>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inviter: Option<User<'a>>,
    pub max_age: u32,
    pub max_uses: u32,
    pub temporary: bool,
    /// Always 0 in this event.
    pub uses: u32,
    /// Invite type: 0 = guild.
    #[serde(rename = "type")]
    pub kind: u8,
    pub expires_at: Option<String>,
}

/// `INVITE_DELETE`: only these three fields.
#[derive(Debug, Serialize)]
pub struct InviteDelete<'a> {
    pub channel_id: Id<ChannelMarker>,
    pub guild_id: Id<GuildMarker>,
    pub code: &'a str,
}

/// The partial guild inside an invite.
#[derive(Debug, Serialize)]
pub struct InviteGuild<'a> {
    pub id: Id<GuildMarker>,
    pub name: &'a str,
    pub splash: Null,
    pub banner: Null,
    pub description: Null,
    pub icon: Null,
    pub features: &'a [&'static str],
    pub verification_level: u8,
    pub vanity_url_code: Option<&'a str>,
    pub nsfw_level: u8,
    pub nsfw: bool,
    pub premium_subscription_count: u64,
}

/// The partial channel inside an invite.
#[derive(Debug, Serialize)]
pub struct InviteChannel<'a> {
    pub id: Id<ChannelMarker>,
    #[serde(rename = "type")]
    pub kind: u8,
    pub name: &'a str,
}

/// An invite; with the metadata fields set it is an "invite with metadata" (what
/// `GET /guilds/{id}/invites` and `GET /channels/{id}/invites` list).
#[derive(Debug, Serialize)]
pub struct Invite<'a> {
    #[serde(rename = "type")]
    pub kind: u8,
    pub code: &'a str,
    pub guild_id: Id<GuildMarker>,
    pub guild: InviteGuild<'a>,
    pub channel: InviteChannel<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inviter: Option<User<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_member_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_presence_count: Option<u64>,
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporary: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// `GET /guilds/{id}/vanity-url`.
#[derive(Debug, Serialize)]
pub struct VanityUrl<'a> {
    pub code: Option<&'a str>,
    pub uses: u64,
}

/// `{"primary_color":0,...}` of a role.
#[derive(Debug, Serialize)]
pub struct RoleColors {
    pub primary_color: u32,
    pub secondary_color: Option<u32>,
    pub tertiary_color: Option<u32>,
}

/// A role.
#[derive(Debug, Serialize)]
pub struct Role<'a> {
    pub id: Id<RoleMarker>,
    pub name: &'a str,
    pub color: u32,
    pub colors: RoleColors,
    pub hoist: bool,
    pub icon: Null,
    pub unicode_emoji: Null,
    pub position: i64,
    /// Decimal string, as Discord sends permissions.
    pub permissions: String,
    pub managed: bool,
    pub mentionable: bool,
    pub flags: u64,
}

impl<'a> Role<'a> {
    pub fn new(
        id: Id<RoleMarker>,
        name: &'a str,
        position: i64,
        permissions: u64,
        managed: bool,
    ) -> Self {
        Self {
            id,
            name,
            color: 0,
            colors: RoleColors {
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
}

/// A guild text channel.
#[derive(Debug, Serialize)]
pub struct Channel<'a> {
    pub id: Id<ChannelMarker>,
    #[serde(rename = "type")]
    pub kind: u8,
    pub guild_id: Id<GuildMarker>,
    pub name: &'a str,
    pub position: i32,
    pub permission_overwrites: Vec<Overwrite>,
    pub topic: Null,
    pub nsfw: bool,
    pub last_message_id: Null,
    pub rate_limit_per_user: u16,
    pub parent_id: Null,
    pub flags: u64,
}

/// A channel permission overwrite.
#[derive(Debug, Serialize)]
pub struct Overwrite {
    pub id: Id<RoleMarker>,
    /// 0 = a role's overwrite, 1 = a member's.
    #[serde(rename = "type")]
    pub kind: u8,
    /// Decimal strings, as Discord sends permissions.
    pub allow: String,
    pub deny: String,
}

impl Overwrite {
    /// A role's overwrite that only denies.
    pub fn deny_role(role_id: Id<RoleMarker>, deny: u64) -> Self {
        Self {
            id: role_id,
            kind: 0,
            allow: "0".to_owned(),
            deny: deny.to_string(),
        }
    }
}

impl<'a> Channel<'a> {
    /// A text channel at `position` with these overwrites.
    pub fn text(
        id: Id<ChannelMarker>,
        guild_id: Id<GuildMarker>,
        name: &'a str,
        position: i32,
        permission_overwrites: Vec<Overwrite>,
    ) -> Self {
        Self {
            id,
            kind: 0,
            guild_id,
            name,
            position,
            permission_overwrites,
            topic: None,
            nsfw: false,
            last_message_id: None,
            rate_limit_per_user: 0,
            parent_id: None,
            flags: 0,
        }
    }
}

/// `GUILD_CREATE`: the guild object plus the gateway-only fields.
#[derive(Debug, Serialize)]
pub struct GuildCreate<'a> {
    pub id: Id<GuildMarker>,
    pub name: &'a str,
    pub icon: Null,
    pub icon_hash: Null,
    pub splash: Null,
    pub discovery_splash: Null,
    pub owner_id: Id<UserMarker>,
    pub afk_channel_id: Null,
    pub afk_timeout: u32,
    pub widget_enabled: bool,
    pub widget_channel_id: Null,
    pub verification_level: u8,
    pub default_message_notifications: u8,
    pub explicit_content_filter: u8,
    pub roles: Vec<Role<'a>>,
    pub emojis: [(); 0],
    pub features: &'a [&'static str],
    pub mfa_level: u8,
    pub application_id: Null,
    pub system_channel_id: Id<ChannelMarker>,
    pub system_channel_flags: u64,
    pub rules_channel_id: Null,
    pub max_presences: Null,
    pub max_members: u64,
    pub vanity_url_code: Option<&'a str>,
    pub description: Null,
    pub banner: Null,
    pub premium_tier: u8,
    pub premium_subscription_count: u64,
    pub preferred_locale: &'static str,
    pub public_updates_channel_id: Null,
    pub max_video_channel_users: u32,
    pub max_stage_video_channel_users: u32,
    pub nsfw_level: u8,
    pub stickers: [(); 0],
    pub premium_progress_bar_enabled: bool,
    pub safety_alerts_channel_id: Null,
    // gateway-only fields
    pub joined_at: String,
    pub large: bool,
    pub unavailable: bool,
    pub member_count: u64,
    pub voice_states: [(); 0],
    pub members: Vec<GuildMember<'a>>,
    pub channels: Vec<Channel<'a>>,
    pub threads: [(); 0],
    pub presences: [(); 0],
    pub stage_instances: [(); 0],
    pub guild_scheduled_events: [(); 0],
    pub soundboard_sounds: [(); 0],
}

/// `GUILD_ROLE_UPDATE`.
#[derive(Debug, Serialize)]
pub struct RoleUpdate<'a> {
    pub guild_id: Id<GuildMarker>,
    pub role: Role<'a>,
}

/// An entry of `READY.guilds`.
#[derive(Debug, Serialize)]
pub struct UnavailableGuild {
    pub id: Id<GuildMarker>,
    pub unavailable: bool,
}

/// `READY.application`.
#[derive(Debug, Serialize)]
pub struct PartialApplication {
    pub id: Id<ApplicationMarker>,
    pub flags: u64,
}

/// `READY`.
#[derive(Debug, Serialize)]
pub struct Ready<'a> {
    pub v: u8,
    pub user_settings: Empty,
    pub user: CurrentUser<'a>,
    pub guilds: Vec<UnavailableGuild>,
    pub guild_join_requests: [(); 0],
    pub relationships: [(); 0],
    pub private_channels: [(); 0],
    pub presences: [(); 0],
    pub session_id: &'a str,
    pub session_type: &'static str,
    pub resume_gateway_url: &'a str,
    pub shard: [u32; 2],
    pub application: PartialApplication,
}

/// `{}`.
#[derive(Debug, Serialize)]
pub struct Empty {}

/// `GET /gateway/bot`.
#[derive(Debug, Serialize)]
pub struct GatewayBot<'a> {
    pub url: &'a str,
    pub shards: u32,
    pub session_start_limit: SessionStartLimit,
}

/// `session_start_limit` of `GET /gateway/bot`.
#[derive(Debug, Serialize)]
pub struct SessionStartLimit {
    pub total: u32,
    pub remaining: u32,
    pub reset_after: u64,
    pub max_concurrency: u32,
}

/// `GET /gateway`.
#[derive(Debug, Serialize)]
pub struct Gateway<'a> {
    pub url: &'a str,
}

/// `GET /applications/@me`.
#[derive(Debug, Serialize)]
pub struct Application<'a> {
    pub id: Id<ApplicationMarker>,
    pub name: &'a str,
    pub icon: Null,
    pub description: &'static str,
    pub summary: &'static str,
    #[serde(rename = "type")]
    pub kind: Null,
    pub bot_public: bool,
    pub bot_require_code_grant: bool,
    pub verify_key: &'a str,
    pub flags: u64,
    pub team: Null,
    pub bot: User<'a>,
    pub owner: User<'a>,
    pub approximate_guild_count: u64,
    pub redirect_uris: &'a [String],
    pub interactions_endpoint_url: Null,
    pub hook: bool,
}

impl<'a> Application<'a> {
    /// A public bot's application, owned by `owner`.
    pub fn of_bot(
        id: Id<ApplicationMarker>,
        name: &'a str,
        verify_key: &'a str,
        bot: User<'a>,
        owner: User<'a>,
        approximate_guild_count: u64,
    ) -> Self {
        Self {
            id,
            name,
            icon: None,
            description: "",
            summary: "",
            kind: None,
            bot_public: true,
            bot_require_code_grant: false,
            verify_key,
            flags: 0,
            team: None,
            bot,
            owner,
            approximate_guild_count,
            redirect_uris: &[],
            interactions_endpoint_url: None,
            hook: true,
        }
    }
}

/// A message, as `POST /channels/{id}/messages` answers.
#[derive(Debug, Serialize)]
pub struct Message<'a> {
    pub id: Id<MessageMarker>,
    #[serde(rename = "type")]
    pub kind: u8,
    pub channel_id: Id<ChannelMarker>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guild_id: Option<Id<GuildMarker>>,
    pub author: User<'a>,
    pub content: &'a str,
    pub timestamp: String,
    pub edited_timestamp: Null,
    pub tts: bool,
    pub mention_everyone: bool,
    pub mentions: [(); 0],
    pub mention_roles: [(); 0],
    pub attachments: [(); 0],
    pub embeds: &'a [serde_json::Value],
    pub pinned: bool,
    pub flags: u64,
    pub components: [(); 0],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a Nonce>,
}

/// A message nonce: Discord takes an integer or a string (up to 25 characters) and answers
/// it as it was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Nonce {
    /// A JSON integer.
    Integer(serde_json::Number),
    /// A JSON string.
    String(String),
}

impl Nonce {
    /// The nonce as text: `7` and `"7"` are the same nonce (Discord keeps nonces as strings).
    pub fn text(&self) -> String {
        match self {
            Self::Integer(n) => n.to_string(),
            Self::String(s) => s.clone(),
        }
    }
}

impl<'a> Message<'a> {
    /// A plain message in a guild channel.
    pub fn in_guild(
        id: Id<MessageMarker>,
        channel_id: Id<ChannelMarker>,
        guild_id: Id<GuildMarker>,
        author: User<'a>,
        content: &'a str,
        timestamp: String,
        embeds: &'a [serde_json::Value],
    ) -> Self {
        Self {
            id,
            kind: 0,
            channel_id,
            guild_id: Some(guild_id),
            author,
            content,
            timestamp,
            edited_timestamp: None,
            tts: false,
            mention_everyone: false,
            mentions: [],
            mention_roles: [],
            attachments: [],
            embeds,
            pinned: false,
            flags: 0,
            components: [],
            nonce: None,
        }
    }
}

/// A REST error body: `{"message":"Unknown Guild","code":10004}`; an invalid form body also
/// says what is wrong with which field in `errors`.
#[derive(Debug, Serialize)]
pub struct ApiError<'a> {
    pub message: &'a str,
    pub code: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<&'a serde_json::Value>,
}

/// A 429 body.
#[derive(Debug, Serialize)]
pub struct RateLimited {
    pub message: &'static str,
    pub retry_after: f64,
    pub global: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    //! Every shape must deserialize with twilight-model (what our ingest uses).
    use super::*;
    use twilight_model::{
        channel::{Channel as TChannel, Message as TMessage},
        gateway::payload::incoming::{
            GuildCreate as TGuildCreate, InviteCreate as TInviteCreate,
            InviteDelete as TInviteDelete, MemberAdd, MemberRemove as TMemberRemove,
            Ready as TReady,
        },
        guild::{
            Guild,
            invite::Invite as TInvite,
            {MemberFlags, VanityUrl as TVanity},
        },
        oauth::Application as TApplication,
        user::CurrentUser as TCurrentUser,
    };

    const AVATAR: &str = "0123456789abcdef0123456789abcdef";

    fn user(bot: bool) -> User<'static> {
        User {
            id: Id::new(175_928_847_299_117_063),
            username: "alice",
            discriminator: "0",
            global_name: Some("Alice"),
            avatar: Some(AVATAR),
            avatar_decoration_data: None,
            banner: None,
            accent_color: None,
            public_flags: 0,
            flags: 0,
            bot,
        }
    }

    fn current_user() -> CurrentUser<'static> {
        CurrentUser::bot(Id::new(42), "sim-bot")
    }

    fn guild() -> InviteGuild<'static> {
        InviteGuild {
            id: Id::new(1),
            name: "g",
            splash: None,
            banner: None,
            description: None,
            icon: None,
            features: &["VANITY_URL"],
            verification_level: 0,
            vanity_url_code: Some("cool"),
            nsfw_level: 0,
            nsfw: false,
            premium_subscription_count: 0,
        }
    }

    #[test]
    fn member_add_deserializes() {
        let m = GuildMember {
            guild_id: Some(Id::new(1)),
            user: user(false),
            nick: None,
            avatar: None,
            banner: None,
            roles: &[],
            joined_at: crate::snowflake::format_ts(1_700_000_000_000),
            premium_since: None,
            deaf: false,
            mute: false,
            flags: 1,
            pending: false,
            communication_disabled_until: None,
            avatar_decoration_data: None,
        };
        let json = serde_json::to_string(&m).expect("serialize");
        assert!(json.contains(r#""discriminator":"0""#));
        let parsed: MemberAdd = serde_json::from_str(&json).expect("twilight accepts");
        assert_eq!(parsed.guild_id, Id::new(1));
        assert!(parsed.member.flags.contains(MemberFlags::DID_REJOIN));
        assert_eq!(
            parsed.member.user.avatar.map(|a| a.to_string()).as_deref(),
            Some(AVATAR)
        );
        let removed = MemberRemove {
            guild_id: Id::new(1),
            user: user(false),
        };
        let _: TMemberRemove =
            serde_json::from_str(&serde_json::to_string(&removed).expect("ser")).expect("de");
    }

    #[test]
    fn members_chunk_deserializes_and_rate_limited_is_discords_shape() {
        let members = [GuildMember::new(user(false), &[], 1_700_000_000_000, 0)];
        let not_found = [Id::new(77)];
        let chunk = MembersChunk {
            guild_id: Id::new(1),
            members: &members,
            chunk_index: 0,
            chunk_count: 1,
            not_found: Some(&not_found),
            nonce: Some("n1"),
        };
        let json = serde_json::to_string(&chunk).expect("serialize");
        let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert!(value["members"][0].get("guild_id").is_none(), "{json}");
        assert!(value.get("presences").is_none(), "{json}");
        let parsed: twilight_model::gateway::payload::incoming::MemberChunk =
            serde_json::from_str(&json).expect("twilight accepts");
        assert_eq!(parsed.members.len(), 1);
        assert_eq!(parsed.not_found, [Id::new(77)]);
        assert_eq!(parsed.nonce.as_deref(), Some("n1"));
        let limited = GatewayRateLimited {
            opcode: 8,
            retry_after: 12.5,
            meta: RequestMembersMeta {
                guild_id: Id::new(1),
                nonce: None,
            },
        };
        assert_eq!(
            serde_json::to_string(&limited).expect("serialize"),
            r#"{"opcode":8,"retry_after":12.5,"meta":{"guild_id":"1"}}"#
        );
    }

    #[test]
    fn invite_events_deserialize() {
        let create = InviteCreate {
            channel_id: Id::new(2),
            code: "abc",
            created_at: crate::snowflake::format_ts(1_700_000_000_000),
            guild_id: Id::new(1),
            inviter: Some(user(false)),
            max_age: 0,
            max_uses: 3,
            temporary: false,
            uses: 0,
            kind: 0,
            expires_at: None,
        };
        let parsed: TInviteCreate =
            serde_json::from_str(&serde_json::to_string(&create).expect("ser")).expect("de");
        assert_eq!(parsed.max_uses, 3);
        let delete = InviteDelete {
            channel_id: Id::new(2),
            guild_id: Id::new(1),
            code: "abc",
        };
        let json = serde_json::to_string(&delete).expect("ser");
        assert_eq!(json, r#"{"channel_id":"2","guild_id":"1","code":"abc"}"#);
        let _: TInviteDelete = serde_json::from_str(&json).expect("de");
    }

    #[test]
    fn invite_with_metadata_deserializes() {
        let invite = Invite {
            kind: 0,
            code: "abc",
            guild_id: Id::new(1),
            guild: guild(),
            channel: InviteChannel {
                id: Id::new(2),
                kind: 0,
                name: "general",
            },
            inviter: Some(user(false)),
            approximate_member_count: None,
            approximate_presence_count: None,
            expires_at: Some(crate::snowflake::format_ts(1_700_000_060_000)),
            uses: Some(7),
            max_uses: Some(0),
            max_age: Some(60),
            temporary: Some(false),
            created_at: Some(crate::snowflake::format_ts(1_700_000_000_000)),
        };
        let parsed: Vec<TInvite> =
            serde_json::from_str(&serde_json::to_string(&[invite]).expect("ser")).expect("de");
        assert_eq!(parsed[0].uses, Some(7));
        assert!(parsed[0].expires_at.is_some());
        let vanity = VanityUrl {
            code: None,
            uses: 0,
        };
        let json = serde_json::to_string(&vanity).expect("ser");
        assert_eq!(json, r#"{"code":null,"uses":0}"#);
        let _: TVanity = serde_json::from_str(&json).expect("de");
    }

    #[test]
    fn ready_and_guild_create_deserialize() {
        let ready = Ready {
            v: 10,
            user_settings: Empty {},
            user: current_user(),
            guilds: vec![UnavailableGuild {
                id: Id::new(1),
                unavailable: true,
            }],
            guild_join_requests: [],
            relationships: [],
            private_channels: [],
            presences: [],
            session_id: "abc",
            session_type: "normal",
            resume_gateway_url: "ws://127.0.0.1:1",
            shard: [0, 1],
            application: PartialApplication {
                id: Id::new(42),
                flags: 0,
            },
        };
        let parsed: TReady =
            serde_json::from_str(&serde_json::to_string(&ready).expect("ser")).expect("de");
        assert_eq!(parsed.guilds.len(), 1);

        let create = GuildCreate {
            id: Id::new(1),
            name: "g",
            icon: None,
            icon_hash: None,
            splash: None,
            discovery_splash: None,
            owner_id: Id::new(5),
            afk_channel_id: None,
            afk_timeout: 300,
            widget_enabled: false,
            widget_channel_id: None,
            verification_level: 0,
            default_message_notifications: 0,
            explicit_content_filter: 0,
            roles: vec![Role::new(
                Id::new(1),
                "@everyone",
                0,
                permissions::EVERYONE,
                false,
            )],
            emojis: [],
            features: &[],
            mfa_level: 0,
            application_id: None,
            system_channel_id: Id::new(2),
            system_channel_flags: 0,
            rules_channel_id: None,
            max_presences: None,
            max_members: 500_000,
            vanity_url_code: None,
            description: None,
            banner: None,
            premium_tier: 0,
            premium_subscription_count: 0,
            preferred_locale: "en-US",
            public_updates_channel_id: None,
            max_video_channel_users: 25,
            max_stage_video_channel_users: 50,
            nsfw_level: 0,
            stickers: [],
            premium_progress_bar_enabled: false,
            safety_alerts_channel_id: None,
            joined_at: crate::snowflake::format_ts(1_700_000_000_000),
            large: false,
            unavailable: false,
            member_count: 1,
            voice_states: [],
            members: vec![],
            channels: vec![Channel::text(
                Id::new(2),
                Id::new(1),
                "general",
                0,
                vec![Overwrite::deny_role(Id::new(3), permissions::SEND_MESSAGES)],
            )],
            threads: [],
            presences: [],
            stage_instances: [],
            guild_scheduled_events: [],
            soundboard_sounds: [],
        };
        let json = serde_json::to_string(&create).expect("ser");
        match serde_json::from_str::<TGuildCreate>(&json).expect("de") {
            TGuildCreate::Available(g) => {
                assert_eq!(g.channels.len(), 1);
                assert_eq!(g.member_count, Some(1));
            }
            TGuildCreate::Unavailable(_) => panic!("guild parsed as unavailable"),
        }
        let _: Guild = serde_json::from_str(&json).expect("guild");
    }

    #[test]
    fn rest_shapes_deserialize() {
        let _: TCurrentUser =
            serde_json::from_str(&serde_json::to_string(&current_user()).expect("ser"))
                .expect("current user");
        let app = Application::of_bot(Id::new(42), "sim", "00", user(true), user(false), 1);
        let _: TApplication =
            serde_json::from_str(&serde_json::to_string(&app).expect("ser")).expect("app");
        let embeds = [serde_json::json!({"type":"rich","title":"hi"})];
        let nonce = Nonce::String("decision-1".into());
        let msg = Message {
            nonce: Some(&nonce),
            ..Message::in_guild(
                Id::new(9),
                Id::new(2),
                Id::new(1),
                user(true),
                "hello",
                crate::snowflake::format_ts(1_700_000_000_000),
                &embeds,
            )
        };
        let json = serde_json::to_string(&msg).expect("ser");
        assert!(json.contains(r#""nonce":"decision-1""#), "{json}");
        let parsed: TMessage = serde_json::from_str(&json).expect("message");
        assert_eq!(parsed.embeds.len(), 1);
        let integer = serde_json::to_string(&Nonce::Integer(7.into())).expect("ser");
        assert_eq!(integer, "7");
    }

    #[test]
    fn channel_with_overwrite_deserializes() {
        let channel = Channel::text(
            Id::new(2),
            Id::new(1),
            "logs",
            1,
            vec![Overwrite::deny_role(
                Id::new(3),
                permissions::SEND_MESSAGES | permissions::EMBED_LINKS,
            )],
        );
        let parsed: TChannel =
            serde_json::from_str(&serde_json::to_string(&channel).expect("ser")).expect("channel");
        let overwrites = parsed.permission_overwrites.expect("overwrites");
        assert_eq!(overwrites.len(), 1);
        assert_eq!(overwrites[0].deny.bits(), (1 << 11) | (1 << 14));
    }
}
