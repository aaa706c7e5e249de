//! How a join was explained: the `source` of a join row and why an unknown join is unknown
//! (`docs/counting.md#join-rows`).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// How a join was explained (the `source` column and API field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Text)
)]
pub enum JoinSource {
    /// The evidence forces one invite code.
    Invite,
    /// The evidence forces the guild's vanity URL.
    Vanity,
    /// Several codes fit; the inviter may still be known.
    Ambiguous,
    /// Nothing explains the join; see [`UnknownReason`].
    Unknown,
}

impl JoinSource {
    pub const ALL: [Self; 4] = [Self::Invite, Self::Vanity, Self::Ambiguous, Self::Unknown];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::Vanity => "vanity",
            Self::Ambiguous => "ambiguous",
            Self::Unknown => "unknown",
        }
    }
}

/// Why a join could not be explained at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Text)
)]
pub enum UnknownReason {
    /// No invite counter moved for it: discovery, OAuth2, a one-use invite created and consumed
    /// between snapshots, or a counter we could not read.
    Untracked,
    /// The bot could not read the guild's invites (no MANAGE_GUILD).
    MissingPermissions,
    /// The join happened before the first snapshot of the guild, or snapshots kept failing.
    NoSnapshot,
}

impl UnknownReason {
    pub const ALL: [Self; 3] = [Self::Untracked, Self::MissingPermissions, Self::NoSnapshot];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Untracked => "untracked",
            Self::MissingPermissions => "missing_permissions",
            Self::NoSnapshot => "no_snapshot",
        }
    }
}

/// Why an invite stopped being one of the guild's invites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Text)
)]
pub enum VanishedReason {
    /// INVITE_DELETE: a moderator deleted it, or it reached its max uses.
    Deleted,
    /// A snapshot no longer showed it and its expiry had passed.
    Expired,
    /// A snapshot no longer showed it before its expiry, and no INVITE_DELETE was seen (the bot
    /// may not see invite events of every channel).
    Missing,
}

impl VanishedReason {
    pub const ALL: [Self; 3] = [Self::Deleted, Self::Expired, Self::Missing];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::Expired => "expired",
            Self::Missing => "missing",
        }
    }
}

/// A name that is not one of an enum's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    what: &'static str,
    name: String,
}

macro_rules! names {
    ($ty:ty, $what:literal) => {
        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownName {
                        what: $what,
                        name: s.chars().take(40).collect(),
                    })
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
names!(JoinSource, "join source");
names!(UnknownReason, "unknown reason");
names!(VanishedReason, "vanished reason");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in JoinSource::ALL {
            assert_eq!(s.as_str().parse(), Ok(s));
        }
        for r in UnknownReason::ALL {
            assert_eq!(r.as_str().parse(), Ok(r));
        }
        assert!("guess".parse::<JoinSource>().is_err());
    }
}
