//! How a join was explained: the `source` of a join row and why an unknown join is unknown
//! (`docs/counting.md#join-rows`).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// A name that is not one of an enum's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    what: &'static str,
    name: String,
}

/// An enum stored and sent by name: `ALL`, `as_str`, `FromStr`, `Display`, and `TEXT` in
/// PostgreSQL (behind the `diesel` feature). Serde attributes are the caller's: some names
/// are saved in the engine's state as serde wrote them before.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $what:literal enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(
            feature = "diesel",
            derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
            diesel(sql_type = diesel::sql_types::Text)
        )]
        $(#[$meta])*
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownName {
                        what: $what,
                        name: s.chars().take(40).collect(),
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// How a join was explained (the `source` column and API field).
    #[serde(rename_all = "snake_case")]
    "join source" enum JoinSource {
        /// The evidence forces one invite code.
        Invite = "invite",
        /// The evidence forces the guild's vanity URL.
        Vanity = "vanity",
        /// Several codes fit; the inviter may still be known.
        Ambiguous = "ambiguous",
        /// Nothing explains the join; see [`UnknownReason`].
        Unknown = "unknown",
    }
}

named_enum! {
    /// Why a join could not be explained at all.
    "unknown reason" enum UnknownReason {
        /// No invite counter moved for it: discovery, OAuth2, a one-use invite created and
        /// consumed between snapshots, or a counter we could not read.
        Untracked = "untracked",
        /// The bot could not read the guild's invites (no MANAGE_GUILD).
        MissingPermissions = "missing_permissions",
        /// The join happened before the first snapshot of the guild, or snapshots kept failing.
        NoSnapshot = "no_snapshot",
        /// The member joined while the bot was not connected, was found afterwards in the
        /// member list, and the counters that moved meanwhile do not say which was theirs.
        JoinedWhileOffline = "joined_while_offline",
    }
}

named_enum! {
    /// Why an invite stopped being one of the guild's invites.
    #[serde(rename_all = "snake_case")]
    "vanished reason" enum VanishedReason {
        /// INVITE_DELETE: a moderator deleted it, or it reached its max uses.
        Deleted = "deleted",
        /// A snapshot no longer showed it and its expiry had passed.
        Expired = "expired",
        /// A snapshot no longer showed it before its expiry, and no INVITE_DELETE was seen (the
        /// bot may not see invite events of every channel).
        Missing = "missing",
    }
}

named_enum! {
    /// How Discord itself says a member joined: `join_source_type` of the member search
    /// (`docs/discord-members-search.md#join_source_type`). Only `Invite` and `Vanity` name a
    /// code; the others say the join came through nothing a counter shows.
    #[serde(rename_all = "snake_case")]
    "Discord join source" enum DiscordJoinSource {
        /// 0, or a value we do not know: Discord does not say.
        Unknown = "unknown",
        /// 1: a bot or OAuth2 `guilds.join`.
        Bot = "bot",
        /// 2: an integration (Twitch, YouTube).
        Integration = "integration",
        /// 3: Server Discovery.
        Discovery = "discovery",
        /// 4: a Student Hub.
        Hub = "hub",
        /// 5: an invite, named by `source_invite_code`.
        Invite = "invite",
        /// 6: the vanity URL.
        Vanity = "vanity",
        /// 7: a moderator's manual verification.
        Manual = "manual",
        /// 8: a linked lobby.
        LinkedLobby = "linked_lobby",
    }
}

impl DiscordJoinSource {
    /// The `join_source_type` Discord sends; values it may add later read as `Unknown`.
    #[must_use]
    pub const fn from_type(value: u32) -> Self {
        match value {
            1 => Self::Bot,
            2 => Self::Integration,
            3 => Self::Discovery,
            4 => Self::Hub,
            5 => Self::Invite,
            6 => Self::Vanity,
            7 => Self::Manual,
            8 => Self::LinkedLobby,
            _ => Self::Unknown,
        }
    }

    /// The `join_source_type` this stands for (0 for `Unknown`).
    #[must_use]
    pub const fn as_type(self) -> u32 {
        match self {
            Self::Unknown => 0,
            Self::Bot => 1,
            Self::Integration => 2,
            Self::Discovery => 3,
            Self::Hub => 4,
            Self::Invite => 5,
            Self::Vanity => 6,
            Self::Manual => 7,
            Self::LinkedLobby => 8,
        }
    }

    /// Whether the join came through a code whose counter moved (an invite or the vanity URL).
    #[must_use]
    pub const fn through_a_code(self) -> bool {
        matches!(self, Self::Invite | Self::Vanity)
    }
}

named_enum! {
    /// Which evidence decided a join row (`docs/attribution.md#discords-reported-source`).
    #[serde(rename_all = "snake_case")]
    "deciding evidence" enum DecidedBy {
        /// The invite counters, as the engine read them.
        Counters = "counters",
        /// Discord's reported join source, where the counters allowed it but did not force it.
        Discord = "discord",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &s in JoinSource::ALL {
            assert_eq!(s.as_str().parse(), Ok(s));
        }
        for &r in UnknownReason::ALL {
            assert_eq!(r.as_str().parse(), Ok(r));
        }
        for &r in VanishedReason::ALL {
            assert_eq!(r.to_string().parse(), Ok(r));
        }
        for &s in DiscordJoinSource::ALL {
            assert_eq!(s.as_str().parse(), Ok(s));
            assert_eq!(DiscordJoinSource::from_type(s.as_type()), s);
        }
        assert_eq!(DiscordJoinSource::from_type(99), DiscordJoinSource::Unknown);
        for &d in DecidedBy::ALL {
            assert_eq!(d.as_str().parse(), Ok(d));
        }
        assert!("guess".parse::<JoinSource>().is_err());
    }
}
