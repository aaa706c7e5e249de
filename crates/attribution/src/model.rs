//! The plain data the engine takes in and gives out.

use invitrack_model::{InviteCode, JoinSource, Millis, UnknownReason, UserId};
use serde::{Deserialize, Serialize};

/// What the engine knows about one invite from a snapshot or an INVITE_CREATE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteInfo {
    pub code: InviteCode,
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
    pub code: Option<InviteCode>,
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
    /// The guild became available (GUILD_CREATE): the bot may not have seen it before, on a
    /// session that ended without being resumed or while the guild was unavailable.
    GuildAvailable {
        at: Millis,
    },
    /// The member list's answer for `window` (see
    /// [`crate::GuildAttribution::missed_joins_wanted`]): the members who joined in it whose
    /// joins the gateway never delivered, `(member, joined_at)`, all of them at once (none is
    /// an answer too).
    JoinsFoundLate {
        window: crate::MissedJoins,
        joins: Vec<(UserId, Millis)>,
    },
    InviteCreated {
        invite: InviteInfo,
    },
    InviteDeleted {
        code: InviteCode,
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
        code: InviteCode,
        inviter_id: Option<UserId>,
    },
    Vanity {
        code: InviteCode,
    },
}

impl Target {
    #[must_use]
    pub fn code(&self) -> &InviteCode {
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

/// The engine's answer for one join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// The evidence forces this invite code.
    Invite {
        code: InviteCode,
        inviter_id: Option<UserId>,
    },
    /// The evidence forces the vanity URL.
    Vanity {
        code: InviteCode,
    },
    /// Several explanations fit. `inviter_id` is set when the join certainly came through an
    /// invite and every candidate belongs to that inviter.
    Ambiguous {
        candidates: Vec<InviteCode>,
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
    pub fn code(&self) -> Option<&InviteCode> {
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

impl Verdict {
    /// How the join is recorded.
    #[must_use]
    pub fn source(&self) -> JoinSource {
        match self {
            Self::Invite { .. } => JoinSource::Invite,
            Self::Vanity { .. } => JoinSource::Vanity,
            Self::Ambiguous { .. } => JoinSource::Ambiguous,
            Self::Unknown { .. } => JoinSource::Unknown,
        }
    }
}
