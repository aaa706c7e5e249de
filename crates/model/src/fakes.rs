//! Fake joins: the reasons a join does not count as real, each switchable per guild, and the
//! rule that finds them (`docs/counting.md#fake-joins`).

use serde::{Deserialize, Serialize};

use crate::id::UserId;
use crate::time::{DAY_MS, Millis};

/// Why a join does not count as real. Stored as a bitfield (`joins.fake`,
/// `guild_settings.fake_reasons`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Integer)
)]
pub struct FakeReasons(u32);

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
    /// Every reason, with the name the API and audit log use for it.
    pub const NAMED: [(Self, &'static str); 4] = [
        (Self::YOUNG, "young"),
        (Self::SELF, "self"),
        (Self::NO_AVATAR, "no_avatar"),
        (Self::ALREADY_JOINED, "already_joined"),
    ];
    const ALL_BITS: u32 = 15;

    /// The reasons of a stored bitfield; unknown bits are dropped.
    #[must_use]
    pub const fn from_bits_truncate(bits: u32) -> Self {
        Self(bits & Self::ALL_BITS)
    }

    #[must_use]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// As PostgreSQL's `int4` column holds it.
    #[must_use]
    pub const fn to_db(self) -> i32 {
        self.0.cast_signed()
    }

    #[must_use]
    pub const fn from_db(bits: i32) -> Self {
        Self::from_bits_truncate(bits.cast_unsigned())
    }

    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    #[must_use]
    pub const fn is_fake(self) -> bool {
        self.0 != 0
    }

    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    #[must_use]
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    #[must_use]
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// The reason of this name (`young`, `self`, `no_avatar`, `already_joined`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMED
            .into_iter()
            .find(|(_, n)| *n == name)
            .map(|(reason, _)| reason)
    }

    /// The names of the reasons set, in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMED
            .into_iter()
            .filter(move |(reason, _)| self.contains(*reason))
            .map(|(_, name)| name)
    }
}

/// A guild's fake settings: which reasons count, and the account-age threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeSettings {
    pub enabled: FakeReasons,
    pub young_account_days: u32,
}

impl FakeSettings {
    /// The threshold's accepted range, as the API and the database check it.
    pub const MAX_YOUNG_ACCOUNT_DAYS: u32 = 3650;
}

impl Default for FakeSettings {
    /// A guild that never changed its settings (the `guild_settings` column defaults match):
    /// young accounts, self-invites and rejoins count as fake, a missing avatar does not.
    fn default() -> Self {
        Self {
            enabled: FakeReasons::YOUNG
                .union(FakeReasons::SELF)
                .union(FakeReasons::ALREADY_JOINED),
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
        let threshold_ms = i64::from(self.young_account_days) * DAY_MS;
        let found = [
            (age_ms < threshold_ms, FakeReasons::YOUNG),
            (inviter_id == Some(member.user_id), FakeReasons::SELF),
            (!member.has_avatar, FakeReasons::NO_AVATAR),
            (member.joined_before, FakeReasons::ALREADY_JOINED),
        ]
        .into_iter()
        .filter(|(holds, _)| *holds)
        .fold(FakeReasons::NONE, |all, (_, reason)| all.union(reason));
        found.intersection(self.enabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DISCORD_EPOCH_MS;

    const JOINED_AT: Millis = 1_700_000_000_000;
    const INVITER: UserId = UserId::new(1 << 22);

    fn account_created(days_before_join: i64) -> UserId {
        let ms = JOINED_AT - days_before_join * DAY_MS - DISCORD_EPOCH_MS;
        UserId::new(u64::try_from(ms).expect("after epoch") << 22)
    }

    fn facts(age_days: i64, has_avatar: bool, joined_before: bool) -> MemberFacts {
        MemberFacts {
            user_id: account_created(age_days),
            joined_at: JOINED_AT,
            has_avatar,
            joined_before,
        }
    }

    #[test]
    fn each_rule_alone() {
        let all = FakeSettings {
            enabled: FakeReasons::from_bits_truncate(15),
            young_account_days: 7,
        };
        // (account age in days, avatar, joined before, inviter is self) -> reasons
        let table = [
            (30, true, false, false, FakeReasons::NONE),
            (6, true, false, false, FakeReasons::YOUNG),
            (7, true, false, false, FakeReasons::NONE),
            (30, true, false, true, FakeReasons::SELF),
            (30, false, false, false, FakeReasons::NO_AVATAR),
            (30, true, true, false, FakeReasons::ALREADY_JOINED),
            (1, false, true, true, FakeReasons::from_bits_truncate(15)),
        ];
        for (age, avatar, before, is_self, expected) in table {
            let member = facts(age, avatar, before);
            let inviter = if is_self { member.user_id } else { INVITER };
            assert_eq!(
                all.reasons(&member, Some(inviter)),
                expected,
                "age {age}, avatar {avatar}, before {before}, self {is_self}"
            );
        }
    }

    #[test]
    fn disabled_reasons_and_defaults() {
        let defaults = FakeSettings::default();
        assert_eq!(defaults.enabled.bits(), 11);
        // NO_AVATAR is off by default.
        assert_eq!(
            defaults.reasons(&facts(2, false, false), None),
            FakeReasons::YOUNG
        );
        let strict = FakeSettings {
            enabled: FakeReasons::from_bits_truncate(15),
            young_account_days: 60,
        };
        assert_eq!(
            strict.reasons(&facts(30, false, false), None),
            FakeReasons::YOUNG.union(FakeReasons::NO_AVATAR)
        );
        let none = FakeSettings {
            enabled: FakeReasons::NONE,
            ..strict
        };
        assert_eq!(
            none.reasons(&facts(1, false, true), None),
            FakeReasons::NONE
        );
    }

    #[test]
    fn names_follow_bits() {
        let r = FakeReasons::SELF.union(FakeReasons::ALREADY_JOINED);
        assert_eq!(r.names().collect::<Vec<_>>(), ["self", "already_joined"]);
        assert_eq!(FakeReasons::from_db(-1).bits(), 15);
    }
}
