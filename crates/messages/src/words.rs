//! The facts of a join said in English: durations, why a join is unknown, why it is fake.

use invitrack_model::time::{DAY_MS, Millis};
use invitrack_model::{FakeReasons, UnknownReason};

const MINUTE_MS: Millis = 60_000;
const HOUR_MS: Millis = 60 * MINUTE_MS;
/// Below this, days say a duration more exactly than "1 month".
const COUNTED_IN_DAYS_BELOW_MS: Millis = 60 * DAY_MS;
const MONTH_MS: Millis = 30 * DAY_MS;
const YEAR_MS: Millis = 365 * DAY_MS;

/// A duration in its largest whole unit: "less than a minute", "5 minutes", "3 days",
/// "4 months", "2 years". `None` when negative (times out of order say nothing true).
pub(crate) fn duration_words(ms: Millis) -> Option<String> {
    let (count, unit) = match ms {
        ..0 => return None,
        0..MINUTE_MS => return Some("less than a minute".to_owned()),
        MINUTE_MS..HOUR_MS => (ms / MINUTE_MS, "minute"),
        HOUR_MS..DAY_MS => (ms / HOUR_MS, "hour"),
        DAY_MS..COUNTED_IN_DAYS_BELOW_MS => (ms / DAY_MS, "day"),
        COUNTED_IN_DAYS_BELOW_MS..YEAR_MS => (ms / MONTH_MS, "month"),
        _ => (ms / YEAR_MS, "year"),
    };
    let plural = if count == 1 { "" } else { "s" };
    Some(format!("{count} {unit}{plural}"))
}

/// Why a join is unknown, as a moderator reads it (`{unknown.reason}`).
#[must_use]
pub const fn unknown_reason_words(reason: UnknownReason) -> &'static str {
    match reason {
        UnknownReason::Untracked => {
            "no invite's use count went up for it (Server Discovery, an app adding the \
             member, or a one-use invite created and used up between two reads)"
        }
        UnknownReason::MissingPermissions => {
            "the bot lacks the Manage Server permission it needs to read the invites"
        }
        UnknownReason::NoSnapshot => {
            "there was no reading of the invites to compare with (the member joined before \
             the first one, or reading them kept failing)"
        }
        UnknownReason::JoinedWhileOffline => {
            "the member joined while the bot was offline; found afterwards, but the invites \
             that moved meanwhile do not say which was theirs"
        }
    }
}

/// Each fake reason in words, in the order of [`FakeReasons::NAMED`] (its length makes a new
/// reason a compile error here).
pub(crate) const FAKE_REASON_WORDS: [(FakeReasons, &str); FakeReasons::NAMED.len()] = [
    (FakeReasons::YOUNG, "new account"),
    (FakeReasons::SELF, "invited themselves"),
    (FakeReasons::NO_AVATAR, "no avatar"),
    (FakeReasons::ALREADY_JOINED, "joined before"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_their_largest_unit() {
        let table = [
            (0, "less than a minute"),
            (59_999, "less than a minute"),
            (MINUTE_MS, "1 minute"),
            (59 * MINUTE_MS, "59 minutes"),
            (HOUR_MS, "1 hour"),
            (23 * HOUR_MS + 59 * MINUTE_MS, "23 hours"),
            (DAY_MS, "1 day"),
            (3 * DAY_MS + 5 * HOUR_MS, "3 days"),
            (59 * DAY_MS, "59 days"),
            (60 * DAY_MS, "2 months"),
            (364 * DAY_MS, "12 months"),
            (YEAR_MS, "1 year"),
            (10 * YEAR_MS + 200 * DAY_MS, "10 years"),
            (Millis::MAX, "292471208 years"),
        ];
        for (ms, words) in table {
            assert_eq!(duration_words(ms).as_deref(), Some(words), "{ms}");
        }
        assert_eq!(duration_words(-1), None);
        assert_eq!(duration_words(Millis::MIN), None);
    }

    #[test]
    fn every_unknown_reason_has_its_own_words() {
        let mut words: Vec<_> = UnknownReason::ALL
            .iter()
            .map(|&reason| unknown_reason_words(reason))
            .collect();
        assert!(words.iter().all(|w| !w.is_empty() && !w.ends_with('.')));
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), UnknownReason::ALL.len());
    }

    #[test]
    fn fake_reason_words_follow_the_named_reasons() {
        let reasons: Vec<_> = FAKE_REASON_WORDS.iter().map(|(r, _)| *r).collect();
        let named: Vec<_> = FakeReasons::NAMED.iter().map(|(r, _)| *r).collect();
        assert_eq!(reasons, named);
    }
}
