//! Which message a decided join or a leave gets.

use std::fmt;

use invitrack_model::{FakeReasons, JoinSource, UserId};
use serde::{Deserialize, Serialize};

/// The messages a guild can word, one template each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A join credited to one invite code.
    Invite,
    /// A join through the guild's vanity URL.
    Vanity,
    /// A join through one of several codes, all of one inviter: the inviter is credited.
    AmbiguousInviter,
    /// A join through one of several codes of different (or unknown) inviters: nobody is
    /// credited.
    Ambiguous,
    /// A join nothing explains.
    Unknown,
    /// A join with a fake reason, whatever explains it.
    Fake,
    /// A member left.
    Leave,
}

impl MessageKind {
    pub const ALL: [Self; 7] = [
        Self::Invite,
        Self::Vanity,
        Self::AmbiguousInviter,
        Self::Ambiguous,
        Self::Unknown,
        Self::Fake,
        Self::Leave,
    ];

    /// The name in JSON and in the API.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::Vanity => "vanity",
            Self::AmbiguousInviter => "ambiguous_inviter",
            Self::Ambiguous => "ambiguous",
            Self::Unknown => "unknown",
            Self::Fake => "fake",
            Self::Leave => "leave",
        }
    }

    /// The message for a decided join. A fake join gets [`MessageKind::Fake`] whatever its
    /// source: what a moderator reading the join log must notice is that it does not count
    /// (the fake message still says how the member came, through `{join.how}`, inviter
    /// included). An ambiguous join is [`MessageKind::AmbiguousInviter`] when the engine
    /// credited an inviter.
    #[must_use]
    pub fn for_join(source: JoinSource, inviter_id: Option<UserId>, fake: FakeReasons) -> Self {
        if fake.is_fake() {
            return Self::Fake;
        }
        match (source, inviter_id) {
            (JoinSource::Invite, _) => Self::Invite,
            (JoinSource::Vanity, _) => Self::Vanity,
            (JoinSource::Ambiguous, Some(_)) => Self::AmbiguousInviter,
            (JoinSource::Ambiguous, None) => Self::Ambiguous,
            (JoinSource::Unknown, _) => Self::Unknown,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decided_joins_get_their_message() {
        let inviter = Some(UserId::new(7));
        let real = FakeReasons::NONE;
        let table = [
            (JoinSource::Invite, inviter, real, MessageKind::Invite),
            (JoinSource::Invite, None, real, MessageKind::Invite),
            (JoinSource::Vanity, None, real, MessageKind::Vanity),
            (
                JoinSource::Ambiguous,
                inviter,
                real,
                MessageKind::AmbiguousInviter,
            ),
            (JoinSource::Ambiguous, None, real, MessageKind::Ambiguous),
            (JoinSource::Unknown, None, real, MessageKind::Unknown),
        ];
        for (source, inviter_id, fake, kind) in table {
            assert_eq!(
                MessageKind::for_join(source, inviter_id, fake),
                kind,
                "{source}"
            );
        }
    }

    #[test]
    fn fake_wins_over_every_source() {
        for &source in JoinSource::ALL {
            for (reason, _) in FakeReasons::NAMED {
                for inviter_id in [None, Some(UserId::new(7))] {
                    assert_eq!(
                        MessageKind::for_join(source, inviter_id, reason),
                        MessageKind::Fake
                    );
                }
            }
        }
    }

    #[test]
    fn names_match_json() {
        for kind in MessageKind::ALL {
            let json = serde_json::to_string(&kind).expect("serializes");
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<MessageKind>(&json).ok(), Some(kind));
        }
    }
}
