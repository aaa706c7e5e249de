//! Composite keys: which bot's view of which guild, and which member in it.

use serde::{Deserialize, Serialize};

use crate::id::{BotId, GuildId, UserId};

/// One guild as one bot sees it: the key of everything the worker keeps per guild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GuildKey {
    pub bot_id: BotId,
    pub guild_id: GuildId,
}

impl GuildKey {
    #[must_use]
    pub const fn new(bot_id: BotId, guild_id: GuildId) -> Self {
        Self { bot_id, guild_id }
    }

    /// The bot as a user: a bot's id is its user id (what Discord names as the inviter of the
    /// invites the bot creates).
    #[must_use]
    pub const fn bot_user(self) -> UserId {
        UserId::new(self.bot_id.get())
    }

    /// The key of one member of this guild.
    #[must_use]
    pub const fn member(self, member_id: UserId) -> MemberKey {
        MemberKey {
            bot_id: self.bot_id,
            guild_id: self.guild_id,
            member_id,
        }
    }
}

/// One member of one guild as one bot sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MemberKey {
    pub bot_id: BotId,
    pub guild_id: GuildId,
    pub member_id: UserId,
}

impl MemberKey {
    #[must_use]
    pub const fn guild(self) -> GuildKey {
        GuildKey {
            bot_id: self.bot_id,
            guild_id: self.guild_id,
        }
    }
}
