//! Membership: what GUILD_MEMBER_ADD and GUILD_MEMBER_REMOVE do to a member's record, and what
//! that record says about a join when it is decided (`docs/counting.md#rejoins-and-leaves`).
//! The worker keeps one [`Membership`] per member (the `members` table) and applies these rules
//! in stream order.

use chrono::{DateTime, Utc};

/// Discord's guild member flag `DID_REJOIN`: the member has left and rejoined the guild.
pub const DID_REJOIN: u32 = 1 << 0;

/// A member's latest membership of a guild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub present: bool,
    /// Start of the latest membership (Discord's `joined_at`).
    pub joined_at: DateTime<Utc>,
    /// End of the latest membership, once it ended.
    pub left_at: Option<DateTime<Utc>>,
    pub has_avatar: bool,
    /// The member was here before this membership (seen by us, or flagged `DID_REJOIN`).
    pub rejoined: bool,
    /// Memberships seen, this one included.
    pub join_count: i32,
}

/// What a GUILD_MEMBER_ADD turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// The member is already present with this join time: Discord repeated the event, which it
    /// may do; nothing changes.
    Repeated,
    /// A new membership.
    New,
}

/// Applies a GUILD_MEMBER_ADD to the member's record (`None` for a member never seen).
/// `flagged_rejoin` is Discord's `DID_REJOIN` member flag.
pub fn member_joined(
    record: &mut Option<Membership>,
    joined_at: DateTime<Utc>,
    has_avatar: bool,
    flagged_rejoin: bool,
) -> JoinKind {
    match record {
        Some(m) if m.present && m.joined_at == joined_at => JoinKind::Repeated,
        Some(m) => {
            *m = Membership {
                present: true,
                joined_at,
                left_at: None,
                has_avatar,
                rejoined: true,
                join_count: m.join_count.saturating_add(1),
            };
            JoinKind::New
        }
        None => {
            *record = Some(Membership {
                present: true,
                joined_at,
                left_at: None,
                has_avatar,
                rejoined: flagged_rejoin,
                join_count: 1,
            });
            JoinKind::New
        }
    }
}

/// Applies a GUILD_MEMBER_REMOVE. Returns the start of the membership that ended, or `None`
/// when the member was not known to be present (nothing changes then).
pub fn member_left(
    record: &mut Option<Membership>,
    left_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let member = record.as_mut().filter(|m| m.present)?;
    member.present = false;
    member.left_at = Some(left_at);
    Some(member.joined_at)
}

/// What the member's record says about a join decided now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinFacts {
    /// The member was in the guild before this join: the rejoin rule's input.
    pub joined_before: bool,
    /// When the membership this join started ended, if it did already.
    pub left_at: Option<DateTime<Utc>>,
    /// Unknown members count as having an avatar, so a missing record never makes a fake.
    pub has_avatar: bool,
}

/// The facts of the join that started at `joined_at`, given the member's record as it is now
/// and the earliest join of the member already decided (stored or earlier in the batch).
#[must_use]
pub fn join_facts(
    record: Option<&Membership>,
    joined_at: DateTime<Utc>,
    earliest_decided_join: Option<DateTime<Utc>>,
) -> JoinFacts {
    let same_membership = record.is_some_and(|m| m.joined_at == joined_at);
    let joined_before = (same_membership && record.is_some_and(|m| m.rejoined))
        || earliest_decided_join.is_some_and(|first| first < joined_at);
    let left_at = match record {
        Some(m) if same_membership => m.left_at.filter(|_| !m.present),
        // The member has joined again since: this membership ended by then at the latest.
        Some(m) => Some(m.joined_at),
        None => None,
    };
    JoinFacts {
        joined_before,
        left_at,
        has_avatar: record.is_none_or(|m| m.has_avatar),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("in range")
    }

    fn present(joined: i64, rejoined: bool) -> Membership {
        Membership {
            present: true,
            joined_at: at(joined),
            left_at: None,
            has_avatar: true,
            rejoined,
            join_count: 1,
        }
    }

    #[test]
    fn joins() {
        // (record before, joined_at, DID_REJOIN) -> (kind, rejoined after, join_count after)
        let gone = Membership {
            present: false,
            left_at: Some(at(5)),
            ..present(0, false)
        };
        let table = [
            (None, 0, false, JoinKind::New, false, 1),
            (None, 0, true, JoinKind::New, true, 1),
            (
                Some(present(0, false)),
                0,
                false,
                JoinKind::Repeated,
                false,
                1,
            ),
            (Some(present(0, false)), 9, false, JoinKind::New, true, 2),
            (Some(gone), 9, false, JoinKind::New, true, 2),
            (Some(gone), 0, false, JoinKind::New, true, 2),
        ];
        for (before, joined, flag, kind, rejoined, count) in table {
            let mut record = before;
            assert_eq!(
                member_joined(&mut record, at(joined), false, flag),
                kind,
                "{before:?}"
            );
            let after = record.expect("recorded");
            assert!(after.present && after.left_at.is_none());
            assert_eq!(
                (after.rejoined, after.join_count),
                (rejoined, count),
                "{before:?}"
            );
            assert_eq!(after.joined_at, at(joined));
        }
    }

    #[test]
    fn leaves() {
        let mut none = None;
        assert_eq!(member_left(&mut none, at(1)), None);
        assert_eq!(none, None);
        let mut record = Some(present(0, false));
        assert_eq!(member_left(&mut record, at(3)), Some(at(0)));
        assert_eq!(
            record.map(|m| (m.present, m.left_at)),
            Some((false, Some(at(3))))
        );
        // A second leave changes nothing.
        assert_eq!(member_left(&mut record, at(4)), None);
        assert_eq!(record.and_then(|m| m.left_at), Some(at(3)));
    }

    #[test]
    fn facts_of_a_decided_join() {
        let left = Membership {
            present: false,
            left_at: Some(at(5)),
            ..present(0, false)
        };
        // (record, join decided at, earliest decided join) -> (joined_before, left_at)
        let table = [
            (None, 0, None, false, None),
            (Some(present(0, false)), 0, None, false, None),
            (Some(present(0, true)), 0, None, true, None),
            (Some(present(0, false)), 0, Some(-10), true, None),
            (Some(present(0, false)), 0, Some(0), false, None),
            (Some(left), 0, None, false, Some(at(5))),
            // Decided after the member came back at 9: its membership ended by 9 at the latest,
            // and the record's `rejoined` belongs to the later membership.
            (Some(present(9, true)), 0, None, false, Some(at(9))),
        ];
        for (record, joined, earliest, before, left_at) in table {
            let facts = join_facts(record.as_ref(), at(joined), earliest.map(at));
            assert_eq!(
                (facts.joined_before, facts.left_at),
                (before, left_at),
                "{record:?} {joined} {earliest:?}"
            );
        }
        assert!(join_facts(None, at(0), None).has_avatar);
    }
}
