//! The plain data the engine takes in and gives out.

use serde::{Deserialize, Serialize};

/// Unix time in milliseconds. Join times come from Discord's `joined_at`, snapshot times from
/// the ingest clock; `EngineConfig::clock_skew_ms` allows for the difference.
pub type Millis = i64;

/// A Discord user id (snowflake).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UserId(pub u64);

impl UserId {
    /// When the account was created, from the snowflake: `(id >> 22) + 1420070400000`.
    #[must_use]
    pub fn created_at(self) -> Millis {
        i64::try_from(self.0 >> 22).unwrap_or(i64::MAX) + 1_420_070_400_000
    }
}

/// What the engine knows about one invite from a snapshot or an INVITE_CREATE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteInfo {
    pub code: String,
    pub inviter_id: Option<UserId>,
    pub uses: u64,
    /// 0 = unlimited.
    pub max_uses: u64,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
}

/// The vanity URL as read from `GET /guilds/{id}/vanity-url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VanityInfo {
    /// `None` when the guild has no vanity URL.
    pub code: Option<String>,
    pub uses: u64,
}

/// Why a snapshot could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotFailure {
    MissingPermissions,
    Unavailable,
}

/// One thing the bot observed about a guild, in the order the guild's events were produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    MemberJoined {
        user_id: UserId,
        joined_at: Millis,
    },
    InviteCreated {
        invite: InviteInfo,
    },
    InviteDeleted {
        code: String,
    },
    /// A complete invite list, read somewhere between `requested_at` and `received_at`.
    Snapshot {
        requested_at: Millis,
        received_at: Millis,
        invites: Vec<InviteInfo>,
        /// `None` when the vanity URL could not be read.
        vanity: Option<VanityInfo>,
    },
    SnapshotFailed {
        requested_at: Millis,
        failure: SnapshotFailure,
    },
}

/// What a join can be explained by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Target {
    Invite {
        code: String,
        inviter_id: Option<UserId>,
    },
    Vanity {
        code: String,
    },
}

impl Target {
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            Self::Invite { code, .. } | Self::Vanity { code } => code,
        }
    }

    #[must_use]
    pub fn inviter_id(&self) -> Option<UserId> {
        match self {
            Self::Invite { inviter_id, .. } => *inviter_id,
            Self::Vanity { .. } => None,
        }
    }
}

/// Why a join could not be explained at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Untracked => "untracked",
            Self::MissingPermissions => "missing_permissions",
            Self::NoSnapshot => "no_snapshot",
        }
    }
}

/// The engine's answer for one join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// The evidence forces this invite code.
    Invite {
        code: String,
        inviter_id: Option<UserId>,
    },
    /// The evidence forces the vanity URL.
    Vanity {
        code: String,
    },
    /// Several explanations fit. `inviter_id` is set when the join certainly came through an
    /// invite and every candidate belongs to that inviter.
    Ambiguous {
        candidates: Vec<String>,
        inviter_id: Option<UserId>,
    },
    Unknown {
        reason: UnknownReason,
    },
}

/// A decided join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub user_id: UserId,
    pub joined_at: Millis,
    pub verdict: Verdict,
}

impl Decision {
    /// The code the join is credited to, if any.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Invite { code, .. } | Verdict::Vanity { code } => Some(code),
            Verdict::Ambiguous { .. } | Verdict::Unknown { .. } => None,
        }
    }

    /// The inviter the join is credited to, if any.
    #[must_use]
    pub fn inviter_id(&self) -> Option<UserId> {
        match &self.verdict {
            Verdict::Invite { inviter_id, .. } | Verdict::Ambiguous { inviter_id, .. } => {
                *inviter_id
            }
            Verdict::Vanity { .. } | Verdict::Unknown { .. } => None,
        }
    }
}
