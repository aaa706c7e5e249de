//! Invite codes, parsed once where they enter (the bus, the API) and trusted inward.

use std::{borrow::Borrow, fmt, ops::Deref};

use serde::{Deserialize, Serialize};

/// Longest code accepted. Discord's generated codes are 7–10 characters and vanity codes at
/// most 32 (`docs/discord.md#invites`); the margin keeps room for Discord changing its format
/// without letting arbitrary text through.
pub const MAX_INVITE_CODE_LEN: usize = 64;

/// An invite code (or vanity code): 1 to [`MAX_INVITE_CODE_LEN`] ASCII letters, digits, `-`
/// or `_`. That excludes anything PostgreSQL or a URL could trip on (NUL bytes, spaces, `/`).
///
/// Deserializing does not validate: it reads what this program wrote itself (the engine's saved
/// state). Text from outside goes through [`InviteCode::parse`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Text)
)]
pub struct InviteCode(String);

/// A text that is not an invite code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{shown:?} is not an invite code (1 to {MAX_INVITE_CODE_LEN} letters, digits, '-' or '_')")]
pub struct InviteCodeError {
    shown: String,
}

impl InviteCode {
    /// # Errors
    /// When `raw` is empty, too long, or has a character outside the alphabet.
    pub fn parse(raw: impl Into<String>) -> Result<Self, InviteCodeError> {
        let raw = raw.into();
        let valid = !raw.is_empty()
            && raw.len() <= MAX_INVITE_CODE_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(raw))
        } else {
            Err(InviteCodeError {
                shown: raw.chars().take(MAX_INVITE_CODE_LEN + 1).collect(),
            })
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl Deref for InviteCode {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for InviteCode {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for InviteCode {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InviteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for InviteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl PartialEq<str> for InviteCode {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for InviteCode {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_discord_codes() {
        for ok in ["a", "AbC123xy", "my-server", "under_score", &"x".repeat(64)] {
            assert_eq!(
                InviteCode::parse(ok).map(|c| c.to_string()),
                Ok(ok.to_owned())
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_code() {
        for bad in [
            "",
            "a b",
            "nul\0",
            "a/b",
            "é",
            "discord.gg/x",
            &"x".repeat(65),
        ] {
            assert!(InviteCode::parse(bad).is_err(), "{bad:?}");
        }
    }
}
