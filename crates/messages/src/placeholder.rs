//! The placeholders a template may use (the table in the crate's README says what each shows).

use std::fmt;

/// One `{name}` of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placeholder {
    MemberMention,
    MemberName,
    MemberId,
    MemberAge,
    MemberStayed,
    InviterMention,
    InviterName,
    InviterId,
    InviterTotal,
    InviterReal,
    InviterFake,
    InviterLeaves,
    InviterBonus,
    Code,
    CodeUses,
    Candidates,
    JoinHow,
    JoinPosition,
    UnknownReason,
    FakeReasons,
}

impl Placeholder {
    pub const ALL: [Self; 20] = [
        Self::MemberMention,
        Self::MemberName,
        Self::MemberId,
        Self::MemberAge,
        Self::MemberStayed,
        Self::InviterMention,
        Self::InviterName,
        Self::InviterId,
        Self::InviterTotal,
        Self::InviterReal,
        Self::InviterFake,
        Self::InviterLeaves,
        Self::InviterBonus,
        Self::Code,
        Self::CodeUses,
        Self::Candidates,
        Self::JoinHow,
        Self::JoinPosition,
        Self::UnknownReason,
        Self::FakeReasons,
    ];

    /// The name written between the braces.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::MemberMention => "member.mention",
            Self::MemberName => "member.name",
            Self::MemberId => "member.id",
            Self::MemberAge => "member.age",
            Self::MemberStayed => "member.stayed",
            Self::InviterMention => "inviter.mention",
            Self::InviterName => "inviter.name",
            Self::InviterId => "inviter.id",
            Self::InviterTotal => "inviter.total",
            Self::InviterReal => "inviter.real",
            Self::InviterFake => "inviter.fake",
            Self::InviterLeaves => "inviter.leaves",
            Self::InviterBonus => "inviter.bonus",
            Self::Code => "code",
            Self::CodeUses => "code.uses",
            Self::Candidates => "candidates",
            Self::JoinHow => "join.how",
            Self::JoinPosition => "join.position",
            Self::UnknownReason => "unknown.reason",
            Self::FakeReasons => "fake.reasons",
        }
    }

    /// The placeholder written `{name}`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_round_trip() {
        for p in Placeholder::ALL {
            assert_eq!(Placeholder::from_name(p.name()), Some(p));
        }
        let mut names: Vec<_> = Placeholder::ALL.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Placeholder::ALL.len());
        assert_eq!(Placeholder::from_name("member"), None);
        assert_eq!(Placeholder::MemberName.to_string(), "{member.name}");
    }

    #[test]
    fn the_readme_lists_every_placeholder() {
        let readme = include_str!("../README.md");
        for p in Placeholder::ALL {
            assert!(
                readme.contains(&format!("| `{p}` |")),
                "{p} is not in the README's table"
            );
        }
    }
}
