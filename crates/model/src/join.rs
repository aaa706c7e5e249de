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
        assert!("guess".parse::<JoinSource>().is_err());
    }
}
