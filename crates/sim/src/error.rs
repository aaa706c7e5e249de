//! Errors of the simulator: starting it ([`SimError`]) and driving its world ([`WorldError`]).

use twilight_model::id::{
    Id,
    marker::{ApplicationMarker, ChannelMarker, GuildMarker, UserMarker},
};

/// Starting the simulator failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listening socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration is not usable.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A world operation (control API or [`crate::World`] method) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    /// No such guild.
    #[error("unknown guild {0}")]
    UnknownGuild(Id<GuildMarker>),
    /// No such channel.
    #[error("unknown channel {0}")]
    UnknownChannel(Id<ChannelMarker>),
    /// No such invite (never existed, deleted, used up or expired).
    #[error("unknown invite {0:?}")]
    UnknownInvite(String),
    /// The guild has no vanity URL.
    #[error("guild {0} has no vanity url")]
    NoVanity(Id<GuildMarker>),
    /// The user is not a member of the guild.
    #[error("user {user_id} is not a member of guild {guild_id}")]
    NotMember {
        /// Guild.
        guild_id: Id<GuildMarker>,
        /// User.
        user_id: Id<UserMarker>,
    },
    /// The user is already a member of the guild.
    #[error("user {user_id} is already a member of guild {guild_id}")]
    AlreadyMember {
        /// Guild.
        guild_id: Id<GuildMarker>,
        /// User.
        user_id: Id<UserMarker>,
    },
    /// An invite or vanity code is taken.
    #[error("code {0:?} is already in use")]
    CodeTaken(String),
    /// The bot lacks a permission for this (MANAGE_GUILD, SEND_MESSAGES).
    #[error("missing permissions")]
    MissingPermissions,
    /// The bot cannot see the channel (no VIEW_CHANNEL).
    #[error("missing access")]
    MissingAccess,
    /// A message would have no content and no embeds.
    #[error("cannot send an empty message")]
    EmptyMessage,
    /// Input that cannot be right (bad code, ...).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A form Discord refuses field by field (400 code 50035 with this `errors` object).
    #[error("invalid form body: {0}")]
    InvalidForm(serde_json::Value),
    /// Not the bot's application.
    #[error("unknown application {0}")]
    UnknownApplication(Id<ApplicationMarker>),
    /// No interaction with this id and token, or its 3 seconds to answer are over.
    #[error("unknown interaction")]
    UnknownInteraction,
    /// The interaction already has its initial response.
    #[error("interaction has already been acknowledged")]
    InteractionAcknowledged,
    /// No interaction webhook with this application id and token (or the interaction was
    /// never acknowledged within its 3 seconds).
    #[error("unknown webhook")]
    UnknownWebhook,
    /// The interaction token is older than 15 minutes.
    #[error("invalid webhook token")]
    InvalidWebhookToken,
    /// The message does not exist (e.g. the original response before the interaction is
    /// acknowledged).
    #[error("unknown message")]
    UnknownMessage,
    /// No valid credentials for this (an unknown, expired or revoked OAuth2 access token, or
    /// one without the scope the route needs).
    #[error("unauthorized")]
    Unauthorized,
}
