#![doc = include_str!("../README.md")]

mod fakes;
mod id;
mod invite_code;
mod join;
mod keys;
pub mod membership;
pub mod time;

#[cfg(feature = "diesel")]
mod sql;

pub use fakes::{FakeReasons, FakeSettings, MemberFacts};
pub use id::{
    BotId, BotMarker, ChannelId, ChannelMarker, GuildId, GuildMarker, Id, IdError, UserId,
    UserMarker,
};
pub use invite_code::{InviteCode, InviteCodeError, MAX_INVITE_CODE_LEN};
pub use join::{
    DecidedBy, DiscordJoinSource, JoinSource, UnknownName, UnknownReason, VanishedReason,
};
pub use keys::{GuildKey, MemberKey};
pub use time::Millis;
