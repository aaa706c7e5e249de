//! What the commands answer, as text: pure functions of the data and the speaker's language
//! (`docs/commands.md`). The words are in the catalogue (`catalogue.rs`); this file only chooses
//! the messages and fills in their arguments.

use chrono::{DateTime, Utc};
use invitrack_model::{ChannelId, FakeReasons, FakeSettings, JoinSource, UnknownReason, UserId};
use invitrack_storage::admin::{GuildSettings, ResetRow};
use invitrack_storage::counts::InviterCounts;
use invitrack_storage::dashboard::{GuildSummary, InviterCode, LeaderboardPage, MemberJoinRow};

use super::catalogue::{Speaker, number, text};

/// Inviters on one leaderboard page.
pub const LEADERBOARD_PAGE_SIZE: i64 = 10;

/// Codes listed by `/invitecodes` (Discord's 2,000 characters hold about 20 lines).
pub const CODES_SHOWN: usize = 15;

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

    fn words(self, speaker: &Speaker) -> String {
        speaker.say(match self {
            Self::All => "range-all",
            Self::Days7 => "range-7d",
            Self::Days30 => "range-30d",
        })
    }
}

fn mention(user: UserId) -> String {
    format!("<@{user}>")
}

fn channel_mention(channel: ChannelId) -> String {
    format!("<#{channel}>")
}

/// Discord's timestamp markup: each reader sees it in their own time zone.
fn timestamp(at: DateTime<Utc>) -> String {
    format!("<t:{}:f>", at.timestamp())
}

/// Discord's relative timestamp ("in 3 days", "2 hours ago").
fn relative(at: DateTime<Utc>) -> String {
    format!("<t:{}:R>", at.timestamp())
}

/// `/invites`: one inviter's counts, the same numbers as `GET /v1/invites/user`.
#[must_use]
pub fn invites(speaker: &Speaker, user: UserId, counts: &InviterCounts) -> String {
    speaker.say_with(
        "invites",
        &[
            text("user", mention(user)),
            number("total", counts.total()),
            number("real", counts.real()),
            number("fake", counts.fake),
            number("left", counts.leaves),
            number("bonus", counts.bonus),
        ],
    )
}

/// `/leaderboard`: one page, ranked by real invites.
#[must_use]
pub fn leaderboard(speaker: &Speaker, range: Range, page: i64, result: &LeaderboardPage) -> String {
    let range_words = text("range", range.words(speaker));
    if result.entries.is_empty() {
        return if page > 1 {
            speaker.say_with("leaderboard-no-page", &[range_words, number("page", page)])
        } else {
            speaker.say_with("leaderboard-empty", &[range_words])
        };
    }
    let mut lines = vec![speaker.say_with(
        "leaderboard-title",
        &[
            range_words,
            number("page", page),
            number("pages", pages(result.total_inviters)),
        ],
    )];
    let first_rank = (page - 1) * LEADERBOARD_PAGE_SIZE + 1;
    for (rank, entry) in (first_rank..).zip(&result.entries) {
        let c = &entry.counts;
        lines.push(speaker.say_with(
            "leaderboard-line",
            &[
                number("rank", rank),
                text("inviter", mention(entry.inviter_id)),
                number("real", c.real()),
                number("total", c.total()),
                number("fake", c.fake),
                number("left", c.leaves),
                number("bonus", c.bonus),
            ],
        ));
    }
    lines.join("\n")
}

/// Pages of a leaderboard of `inviters`.
#[must_use]
pub fn pages(inviters: i64) -> i64 {
    ((inviters + LEADERBOARD_PAGE_SIZE - 1) / LEADERBOARD_PAGE_SIZE).max(1)
}

/// Words for why a join is unknown.
fn reason_words(speaker: &Speaker, reason: Option<UnknownReason>) -> String {
    speaker.say(match reason {
        Some(UnknownReason::Untracked) => "reason-untracked",
        Some(UnknownReason::MissingPermissions) => "reason-missing-permissions",
        Some(UnknownReason::NoSnapshot) => "reason-no-snapshot",
        Some(UnknownReason::JoinedWhileOffline) => "reason-joined-while-offline",
        None => "reason-none",
    })
}

/// `/inviter`: how the member's latest join is explained.
#[must_use]
pub fn inviter(speaker: &Speaker, member: UserId, latest: Option<&MemberJoinRow>) -> String {
    let member_arg = text("member", mention(member));
    let Some(join) = latest else {
        return speaker.say_with("inviter-none", &[member_arg]);
    };
    let when = text("when", timestamp(join.created_at));
    let inviter = text(
        "inviter",
        join.inviter_id
            .map_or_else(|| speaker.say("inviter-nobody"), mention),
    );
    let code = text(
        "code",
        join.invite_code
            .as_ref()
            .map_or_else(|| speaker.say("inviter-unknown-code"), |c| format!("`{c}`")),
    );
    let mut text_parts = vec![match join.source {
        JoinSource::Invite => {
            speaker.say_with("inviter-invite", &[member_arg, when, code, inviter])
        }
        JoinSource::Vanity => speaker.say_with("inviter-vanity", &[member_arg, when, code]),
        JoinSource::Ambiguous => {
            let codes = join
                .candidates
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let id = if join.inviter_id.is_some() {
                "inviter-ambiguous-one-owner"
            } else {
                "inviter-ambiguous"
            };
            speaker.say_with(id, &[member_arg, when, text("codes", codes), inviter])
        }
        JoinSource::Unknown => speaker.say_with(
            "inviter-unknown",
            &[
                member_arg,
                when,
                text("reason", reason_words(speaker, join.unknown_reason)),
            ],
        ),
    }];
    if join.fake.bits() != 0 {
        text_parts.push(speaker.say("inviter-fake"));
    }
    if join.has_left {
        text_parts.push(speaker.say("inviter-left"));
    }
    text_parts.join(" ")
}

/// `/invitecodes`: the user's codes, most used first, at most [`CODES_SHOWN`].
#[must_use]
pub fn invite_codes(
    speaker: &Speaker,
    user: UserId,
    codes: &[InviterCode],
    now: DateTime<Utc>,
) -> String {
    if codes.is_empty() {
        return speaker.say_with("invitecodes-none", &[text("user", mention(user))]);
    }
    let mut sorted: Vec<&InviterCode> = codes.iter().collect();
    sorted.sort_by_key(|c| {
        (
            std::cmp::Reverse(c.live.as_ref().map_or(c.uses.joins, |l| l.uses)),
            c.code.to_string(),
        )
    });
    let mut lines = vec![speaker.say_with("invitecodes-title", &[text("user", mention(user))])];
    for code in sorted.iter().take(CODES_SHOWN) {
        let (uses, max, expiry) = match &code.live {
            Some(live) if live.vanished_at.is_none() => (
                live.uses,
                live.max_uses,
                match live.expires_at {
                    Some(at) if at > now => {
                        speaker.say_with("invitecodes-expires", &[text("when", relative(at))])
                    }
                    Some(_) => speaker.say("invitecodes-gone"),
                    None => speaker.say("invitecodes-never-expires"),
                },
            ),
            Some(live) => (live.uses, live.max_uses, speaker.say("invitecodes-gone")),
            None => (code.uses.joins, 0, speaker.say("invitecodes-unseen")),
        };
        lines.push(speaker.say_with(
            "invitecodes-line",
            &[
                text("code", code.code.to_string()),
                number("uses", uses),
                number("max", max),
                text("expiry", expiry),
                number("credited", code.uses.counted),
                number("fake", code.uses.fake),
                number("left", code.uses.leaves),
            ],
        ));
    }
    if sorted.len() > CODES_SHOWN {
        lines.push(speaker.say_with(
            "invitecodes-more",
            &[number(
                "more",
                i64::try_from(sorted.len() - CODES_SHOWN).unwrap_or(i64::MAX),
            )],
        ));
    }
    lines.join("\n")
}

/// `/bonus add|remove`: what changed and the user's counts after it.
#[must_use]
pub fn bonus(speaker: &Speaker, user: UserId, amount: i64, after: &InviterCounts) -> String {
    let id = if amount >= 0 {
        "bonus-added"
    } else {
        "bonus-removed"
    };
    speaker.say_with(
        id,
        &[
            text("user", mention(user)),
            number("amount", amount.abs()),
            text("summary", invites(speaker, user, after)),
        ],
    )
}

fn whose(speaker: &Speaker, inviter: Option<UserId>) -> String {
    inviter.map_or_else(|| speaker.say("everyone"), mention)
}

/// `/resetinvites`: the question the confirmation button answers.
#[must_use]
pub fn reset_question(speaker: &Speaker, inviter: Option<UserId>) -> String {
    match inviter {
        Some(user) => speaker.say_with("reset-ask-user", &[text("user", mention(user))]),
        None => speaker.say("reset-ask-everyone"),
    }
}

/// A reset made.
#[must_use]
pub fn reset_done(speaker: &Speaker, reset: &ResetRow) -> String {
    speaker.say_with(
        "reset-done",
        &[
            number("joins", reset.joins_cleared),
            number("bonus", reset.bonus_cleared),
            text("who", whose(speaker, reset.inviter_id)),
        ],
    )
}

/// A reset undone.
#[must_use]
pub fn restore_done(speaker: &Speaker, reset: &ResetRow) -> String {
    speaker.say_with(
        "restore-done",
        &[
            text("who", whose(speaker, reset.inviter_id)),
            text("when", relative(reset.created_at)),
            number("joins", reset.joins_cleared),
            number("bonus", reset.bonus_cleared),
        ],
    )
}

/// The fake rules in words.
#[must_use]
pub fn fake_rules(speaker: &Speaker, fake: &FakeSettings) -> String {
    let mut rules = Vec::new();
    for (reason, id) in [
        (FakeReasons::YOUNG, "config-fake-young"),
        (FakeReasons::SELF, "config-fake-self"),
        (FakeReasons::NO_AVATAR, "config-fake-no-avatar"),
        (FakeReasons::ALREADY_JOINED, "config-fake-already-joined"),
    ] {
        if fake.enabled.contains(reason) {
            rules.push(speaker.say_with(id, &[number("days", i64::from(fake.young_account_days))]));
        }
    }
    if rules.is_empty() {
        speaker.say("config-fake-none")
    } else {
        rules.join(", ")
    }
}

/// `/config show`.
#[must_use]
pub fn settings(speaker: &Speaker, settings: &GuildSettings) -> String {
    let channel =
        |c: Option<ChannelId>| c.map_or_else(|| speaker.say("config-off"), channel_mention);
    [
        speaker.say("config-title"),
        speaker.say_with(
            "config-join-channel",
            &[text("channel", channel(settings.join_log_channel_id))],
        ),
        speaker.say_with(
            "config-leave-channel",
            &[text("channel", channel(settings.leave_log_channel_id))],
        ),
        speaker.say_with(
            "config-fake",
            &[text("rules", fake_rules(speaker, &settings.fake))],
        ),
        speaker.say_with(
            "config-invite-channel",
            &[text("channel", channel(settings.invite_channel_id))],
        ),
    ]
    .join("\n")
}

/// `/config invite-channel`: where `/invite link` creates invites now.
#[must_use]
pub fn invite_channel_set(speaker: &Speaker, channel: Option<ChannelId>) -> String {
    match channel {
        Some(c) => speaker.say_with(
            "config-invite-channel-set",
            &[text("channel", channel_mention(c))],
        ),
        None => speaker.say("config-invite-channel-off"),
    }
}

/// `/config join-channel` and `leave-channel`: where messages go now.
#[must_use]
pub fn channel_set(speaker: &Speaker, leave: bool, channel: Option<ChannelId>) -> String {
    match (leave, channel) {
        (false, Some(c)) => speaker.say_with(
            "config-join-channel-set",
            &[text("channel", channel_mention(c))],
        ),
        (false, None) => speaker.say("config-join-channel-off"),
        (true, Some(c)) => speaker.say_with(
            "config-leave-channel-set",
            &[text("channel", channel_mention(c))],
        ),
        (true, None) => speaker.say("config-leave-channel-off"),
    }
}

/// `/tracking`: whether tracking works, and the last 7 days' joins by source.
#[must_use]
pub fn tracking(
    speaker: &Speaker,
    summary: &GuildSummary,
    unknown: &[(UnknownReason, i64)],
) -> String {
    let health = &summary.health;
    let mut lines = vec![speaker.say("tracking-title")];
    if !health.tracked {
        lines.push(speaker.say("tracking-not-seen"));
        return lines.join("\n");
    }
    lines.push(speaker.say(if health.missing_permissions {
        "tracking-missing-permissions"
    } else {
        "tracking-ok"
    }));
    lines.push(match health.last_snapshot_at {
        Some(at) => speaker.say_with("tracking-last-read", &[text("when", relative(at))]),
        None => speaker.say("tracking-never-read"),
    });
    if health.pending_joins > 0 {
        lines.push(speaker.say_with(
            "tracking-pending",
            &[number("pending", i64::from(health.pending_joins))],
        ));
    }
    let sum = |f: fn(&invitrack_storage::dashboard::DayActivity) -> i64| {
        summary.days.iter().map(f).sum::<i64>()
    };
    lines.push(speaker.say_with(
        "tracking-week",
        &[
            number("invite", sum(|d| d.invite)),
            number("vanity", sum(|d| d.vanity)),
            number("ambiguous", sum(|d| d.ambiguous)),
            number("unknown", sum(|d| d.unknown)),
        ],
    ));
    for &(reason, count) in unknown {
        lines.push(speaker.say_with(
            "tracking-unknown-reason",
            &[
                number("count", count),
                text("reason", reason_words(speaker, Some(reason))),
            ],
        ));
    }
    lines.join("\n")
}

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
            invites(&Speaker::default(), UserId::new(7), &counts(5, 1, 1, 2)),
            "<@7> has **7** invites (5 real, 1 fake, 1 left, 2 bonus)."
        );
    }

    #[test]
    fn a_leaderboard_page_ranks_from_its_first_place() {
        let speaker = Speaker::default();
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
        let text = leaderboard(&speaker, Range::Days7, 2, &page);
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
        assert!(leaderboard(&speaker, Range::All, 1, &empty).starts_with("Nobody has brought"));
        assert_eq!(pages(0), 1);
        assert_eq!(pages(10), 1);
        assert_eq!(pages(11), 2);
    }

    #[test]
    fn fake_rules_name_each_rule_on() {
        let speaker = Speaker::default();
        let fake = FakeSettings {
            enabled: FakeReasons::YOUNG.union(FakeReasons::ALREADY_JOINED),
            young_account_days: 1,
        };
        assert_eq!(
            fake_rules(&speaker, &fake),
            "accounts younger than 1 day, members who had joined before"
        );
        let none = FakeSettings {
            enabled: FakeReasons::NONE,
            young_account_days: 7,
        };
        assert_eq!(fake_rules(&speaker, &none), "no rule");
    }
}
