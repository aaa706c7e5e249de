//! When a delivery that failed is tried again (`docs/webhooks.md#retries`): exponential backoff
//! from the first retry delay, doubled at each attempt up to an hour, with "equal jitter" (half
//! the delay fixed, half random) so receivers coming back are not met by every sender at once;
//! given up once the next attempt would fall past the give-up time after the event.
//!
//! Written here rather than with a backoff crate: the attempt count lives in PostgreSQL, not in
//! a retrying future, so what is needed is one pure function of it.

use chrono::{DateTime, TimeDelta, Utc};

/// The longest wait between two attempts.
pub const MAX_DELAY: TimeDelta = TimeDelta::hours(1);

/// How retries are spaced and when they stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    /// The wait after the first attempt (before jitter).
    pub first_delay: TimeDelta,
    /// How long after the event attempts stop.
    pub give_up_after: TimeDelta,
}

impl RetrySchedule {
    /// When to try again after attempt `attempt` (from 1) of an event created at `created_at`
    /// failed at `now`, with `jitter` in [0, 1] picking within the delay's random half; `None`
    /// when that would be past the give-up time.
    #[must_use]
    pub fn next_attempt(
        &self,
        attempt: i32,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Option<DateTime<Utc>> {
        let doublings = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        let full = self
            .first_delay
            .checked_mul(1_i32 << doublings)
            .unwrap_or(MAX_DELAY)
            .min(MAX_DELAY);
        let half_ms = full.num_milliseconds() / 2;
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let random_ms = (half_ms as f64 * jitter.clamp(0.0, 1.0)) as i64;
        let at = now + TimeDelta::milliseconds(half_ms + random_ms);
        (at <= created_at + self.give_up_after).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SCHEDULE: RetrySchedule = RetrySchedule {
        first_delay: TimeDelta::seconds(10),
        give_up_after: TimeDelta::hours(24),
    };

    #[test]
    fn delays_double_up_to_an_hour_then_stop_after_a_day() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).expect("a time");
        let delays: Vec<i64> = (1..=12)
            .map(|attempt| {
                (SCHEDULE
                    .next_attempt(attempt, start, start, 1.0)
                    .expect("within a day")
                    - start)
                    .num_seconds()
            })
            .collect();
        assert_eq!(
            delays,
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600]
        );
        // Jitter 0 waits half.
        assert_eq!(
            SCHEDULE.next_attempt(1, start, start, 0.0),
            Some(start + TimeDelta::seconds(5))
        );
        // Retries over a day: nine in the first 85 minutes, then hourly.
        let mut now = start;
        let mut retries = 0;
        while let Some(next) = SCHEDULE.next_attempt(retries + 1, start, now, 1.0) {
            now = next;
            retries += 1;
        }
        assert_eq!(retries, 31);
        assert!(now <= start + TimeDelta::hours(24));
        assert!(now > start + TimeDelta::hours(23));
    }

    proptest! {
        #[test]
        fn the_next_attempt_is_later_bounded_and_never_past_give_up(
            attempt in 1_i32..1_000,
            age_s in 0_i64..200_000,
            jitter in 0.0_f64..=1.0,
        ) {
            let created = DateTime::from_timestamp(1_700_000_000, 0).expect("a time");
            let now = created + TimeDelta::seconds(age_s);
            match SCHEDULE.next_attempt(attempt, created, now, jitter) {
                Some(at) => {
                    prop_assert!(at > now);
                    prop_assert!(at - now <= MAX_DELAY);
                    prop_assert!(at <= created + SCHEDULE.give_up_after);
                }
                None => prop_assert!(now + MAX_DELAY > created + SCHEDULE.give_up_after),
            }
        }
    }
}
