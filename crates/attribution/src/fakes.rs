//! Fake-join reasons (DOMAIN.md): a bitfield, each reason switchable per guild.

use serde::{Deserialize, Serialize};

use crate::model::{Millis, UserId};

/// Why a join does not count as real. Stored as a bitfield.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FakeReasons(pub u32);

impl FakeReasons {
    pub const NONE: Self = Self(0);
    /// The account is younger than the guild's threshold.
    pub const YOUNG: Self = Self(1);
    /// The member is the inviter.
    pub const SELF: Self = Self(2);
    /// The account has no avatar.
    pub const NO_AVATAR: Self = Self(4);
    /// The member joined this guild before.
    pub const ALREADY_JOINED: Self = Self(8);

    #[must_use]
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    #[must_use]
    pub fn is_fake(self) -> bool {
        self.0 != 0
    }

    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// A guild's fake settings: which reasons count, and the account-age threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeSettings {
    pub enabled: FakeReasons,
    pub young_account_days: u32,
}

impl Default for FakeSettings {
    fn default() -> Self {
        Self {
            enabled: FakeReasons(
                FakeReasons::YOUNG.0 | FakeReasons::SELF.0 | FakeReasons::ALREADY_JOINED.0,
            ),
            young_account_days: 7,
        }
    }
}

/// What is known about a joining member when its join is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberFacts {
    pub user_id: UserId,
    pub joined_at: Millis,
    pub has_avatar: bool,
    /// A previous join of this member in this guild is on record, or Discord flagged the member
    /// `DID_REJOIN`.
    pub joined_before: bool,
}

impl FakeSettings {
    /// The reasons, among the enabled ones, that make this join fake.
    #[must_use]
    pub fn reasons(&self, member: &MemberFacts, inviter_id: Option<UserId>) -> FakeReasons {
        let age_ms = member.joined_at - member.user_id.created_at();
        let threshold_ms = i64::from(self.young_account_days) * 86_400_000;
        let mut found = FakeReasons::NONE;
        if age_ms < threshold_ms {
            found = found.union(FakeReasons::YOUNG);
        }
        if inviter_id == Some(member.user_id) {
            found = found.union(FakeReasons::SELF);
        }
        if !member.has_avatar {
            found = found.union(FakeReasons::NO_AVATAR);
        }
        if member.joined_before {
            found = found.union(FakeReasons::ALREADY_JOINED);
        }
        FakeReasons(found.0 & self.enabled.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn user_created_at(ms: i64) -> UserId {
        UserId(u64::try_from(ms - 1_420_070_400_000).expect("after epoch") << 22)
    }

    #[test]
    fn young_self_avatar_rejoin() {
        let settings = FakeSettings::default();
        let joined_at = 1_700_000_000_000;
        let young = MemberFacts {
            user_id: user_created_at(joined_at - 2 * DAY),
            joined_at,
            has_avatar: false,
            joined_before: false,
        };
        // NO_AVATAR is off by default.
        assert_eq!(settings.reasons(&young, None), FakeReasons::YOUNG);
        let old = MemberFacts {
            user_id: user_created_at(joined_at - 30 * DAY),
            ..young
        };
        assert_eq!(settings.reasons(&old, None), FakeReasons::NONE);
        assert_eq!(settings.reasons(&old, Some(old.user_id)), FakeReasons::SELF);
        let rejoin = MemberFacts {
            joined_before: true,
            ..old
        };
        assert_eq!(settings.reasons(&rejoin, None), FakeReasons::ALREADY_JOINED);
        let strict = FakeSettings {
            enabled: FakeReasons(15),
            young_account_days: 60,
        };
        assert_eq!(strict.reasons(&old, None), FakeReasons(1 | 4));
    }
}
