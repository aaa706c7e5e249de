//! What the commands answer, as text: pure functions of the data (`docs/commands.md`). Every
//! string a user reads is here, in English.

use chrono::{DateTime, Utc};
use invitrack_model::{JoinSource, UserId};
use invitrack_storage::counts::InviterCounts;
use invitrack_storage::dashboard::{LeaderboardPage, MemberJoinRow};

/// Inviters on one leaderboard page.
pub const LEADERBOARD_PAGE_SIZE: i64 = 10;

/// A leaderboard's time range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    All,
    Days7,
    Days30,
}

impl Range {
    pub const ALL: [Self; 3] = [Self::All, Self::Days7, Self::Days30];

    /// The option value and button id part.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Days7 => "7d",
            Self::Days30 => "30d",
        }
    }

    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    #[must_use]
    pub const fn days(self) -> Option<i64> {
        match self {
            Self::All => None,
            Self::Days7 => Some(7),
            Self::Days30 => Some(30),
        }
    }

    const fn words(self) -> &'static str {
        match self {
            Self::All => "all time",
            Self::Days7 => "last 7 days",
            Self::Days30 => "last 30 days",
        }
    }
}

/// `/invites`: one inviter's counts, the same numbers as `GET /v1/invites/user`.
#[must_use]
pub fn invites(user: UserId, counts: &InviterCounts) -> String {
    format!(
        "<@{user}> has **{}** invites ({} real, {} fake, {} left, {} bonus).",
        counts.total(),
        counts.real(),
        counts.fake,
        counts.leaves,
        counts.bonus,
    )
}

/// `/leaderboard`: one page, ranked by real invites; `pages` counts every page.
#[must_use]
pub fn leaderboard(range: Range, page: i64, result: &LeaderboardPage) -> String {
    if result.entries.is_empty() {
        return if page > 1 {
            format!("The leaderboard ({}) has no page {page}.", range.words())
        } else {
            format!(
                "Nobody has brought a member yet ({}). Invites with the bot present are counted from now on.",
                range.words()
            )
        };
    }
    let pages = pages(result.total_inviters);
    let mut text = format!(
        "**Leaderboard** ({}), page {page} of {pages}",
        range.words()
    );
    let first_rank = (page - 1) * LEADERBOARD_PAGE_SIZE + 1;
    for (rank, entry) in (first_rank..).zip(&result.entries) {
        let c = &entry.counts;
        text.push_str(&format!(
            "\n{rank}. <@{}>: **{}** real ({} total, {} fake, {} left, {} bonus)",
            entry.inviter_id,
            c.real(),
            c.total(),
            c.fake,
            c.leaves,
            c.bonus
        ));
    }
    text
}

/// Pages of a leaderboard of `inviters`.
#[must_use]
pub fn pages(inviters: i64) -> i64 {
    ((inviters + LEADERBOARD_PAGE_SIZE - 1) / LEADERBOARD_PAGE_SIZE).max(1)
}

/// `/inviter`: how the member's latest join is explained.
#[must_use]
pub fn inviter(member: UserId, latest: Option<&MemberJoinRow>) -> String {
    let Some(join) = latest else {
        return format!(
            "invitrack has no join of <@{member}>: they joined before the bot was tracking, or their join is still being decided."
        );
    };
    let when = timestamp(join.created_at);
    let inviter =
        |id: Option<UserId>| id.map_or_else(|| "nobody".to_owned(), |id| format!("<@{id}>"));
    let code = |c: Option<&invitrack_model::InviteCode>| {
        c.map_or_else(|| "an unknown code".to_owned(), |c| format!("`{c}`"))
    };
    let mut text = match join.source {
        JoinSource::Invite => format!(
            "<@{member}> joined {when} with invite {} from {}.",
            code(join.invite_code.as_ref()),
            inviter(join.inviter_id)
        ),
        JoinSource::Vanity => format!(
            "<@{member}> joined {when} through the vanity URL {}.",
            code(join.invite_code.as_ref())
        ),
        JoinSource::Ambiguous => {
            let candidates = join
                .candidates
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ");
            match join.inviter_id {
                Some(id) => format!(
                    "<@{member}> joined {when} with one of {candidates}, all from <@{id}>, who is credited."
                ),
                None => format!(
                    "<@{member}> joined {when} with one of {candidates}; they belong to different people, so nobody is credited."
                ),
            }
        }
        JoinSource::Unknown => format!(
            "<@{member}> joined {when}; invitrack cannot tell how: {}.",
            join.unknown_reason.map_or(
                "no reason was recorded",
                invitrack_messages::unknown_reason_words
            )
        ),
    };
    if join.fake.bits() != 0 {
        text.push_str(" The join counts as fake.");
    }
    if join.has_left {
        text.push_str(" They have left since.");
    }
    text
}

/// Discord's timestamp markup: each reader sees it in their own time zone.
fn timestamp(at: DateTime<Utc>) -> String {
    format!("<t:{}:f>", at.timestamp())
}

/// The answer to a command this bot does not know (an old registration).
pub const UNKNOWN_COMMAND: &str = "This command is not available any more.";
/// The answer when the data cannot be read.
pub const UNAVAILABLE: &str = "invitrack cannot read its data right now; try again in a moment.";
/// The answer outside a server.
pub const GUILD_ONLY: &str = "invitrack's commands work in a server.";
/// The leaderboard buttons.
pub const PREVIOUS: &str = "Previous";
pub const NEXT: &str = "Next";

#[cfg(test)]
mod tests {
    use super::*;
    use invitrack_storage::dashboard::LeaderboardEntry;

    fn counts(joins: i64, fake: i64, leaves: i64, bonus: i64) -> InviterCounts {
        InviterCounts {
            joins,
            fake,
            leaves,
            bonus,
        }
    }

    #[test]
    fn invites_say_the_api_numbers() {
        assert_eq!(
            invites(UserId::new(7), &counts(5, 1, 1, 2)),
            "<@7> has **7** invites (5 real, 1 fake, 1 left, 2 bonus)."
        );
    }

    #[test]
    fn a_leaderboard_page_ranks_from_its_first_place() {
        let page = LeaderboardPage {
            total_inviters: 12,
            entries: vec![
                LeaderboardEntry {
                    inviter_id: UserId::new(1),
                    counts: counts(3, 0, 0, 0),
                },
                LeaderboardEntry {
                    inviter_id: UserId::new(2),
                    counts: counts(1, 0, 1, 0),
                },
            ],
        };
        let text = leaderboard(Range::Days7, 2, &page);
        assert!(
            text.starts_with("**Leaderboard** (last 7 days), page 2 of 2\n11. <@1>: **3** real"),
            "{text}"
        );
        assert!(
            text.contains("\n12. <@2>: **0** real (1 total, 0 fake, 1 left, 0 bonus)"),
            "{text}"
        );
        let empty = LeaderboardPage {
            total_inviters: 0,
            entries: vec![],
        };
        assert!(leaderboard(Range::All, 1, &empty).starts_with("Nobody has brought"));
        assert_eq!(pages(0), 1);
        assert_eq!(pages(10), 1);
        assert_eq!(pages(11), 2);
    }
}
