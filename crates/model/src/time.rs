//! Time as the bus, the engine and the database exchange it: Unix milliseconds, converted to
//! and from PostgreSQL's `timestamptz` (chrono) here and nowhere else.

use chrono::{DateTime, Utc};

/// Unix time in milliseconds. Join times come from Discord's `joined_at`, snapshot and clock
/// times from ingest's host clock.
pub type Millis = i64;

/// 2015-01-01T00:00:00Z, the origin of Discord's snowflake timestamps.
pub const DISCORD_EPOCH_MS: Millis = 1_420_070_400_000;

/// One day.
pub const DAY_MS: Millis = 86_400_000;

/// A millisecond time outside what chrono (and PostgreSQL) can hold, or outside the window
/// [`discord_time`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("time out of range: {0} ms since the Unix epoch")]
pub struct TimeOutOfRange(pub Millis);

/// # Errors
/// When `ms` is outside chrono's range.
pub fn millis_to_time(ms: Millis) -> Result<DateTime<Utc>, TimeOutOfRange> {
    DateTime::from_timestamp_millis(ms).ok_or(TimeOutOfRange(ms))
}

/// 9999-12-31T23:59:59.999Z: PostgreSQL's `timestamptz` goes further, but no time of Discord's or
/// of ingest's clock can.
pub const LATEST_MS: Millis = 253_402_300_799_999;

/// A time read from Discord or from ingest's clock: not before Discord's epoch and not past
/// [`LATEST_MS`]. Anything else is a forged or corrupt message, and would be refused by
/// PostgreSQL or mislead the engine.
///
/// # Errors
/// When `ms` is outside that window.
pub fn discord_time(ms: Millis) -> Result<DateTime<Utc>, TimeOutOfRange> {
    if (DISCORD_EPOCH_MS..=LATEST_MS).contains(&ms) {
        millis_to_time(ms)
    } else {
        Err(TimeOutOfRange(ms))
    }
}

#[must_use]
pub fn time_to_millis(time: DateTime<Utc>) -> Millis {
    time.timestamp_millis()
}

/// Now, by this host's clock.
#[must_use]
pub fn now_millis() -> Millis {
    time_to_millis(Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_bounds() {
        for ms in [0, 1_700_000_000_123, -5] {
            assert_eq!(millis_to_time(ms).map(time_to_millis), Ok(ms));
        }
        assert_eq!(millis_to_time(i64::MAX), Err(TimeOutOfRange(i64::MAX)));
    }

    #[test]
    fn discord_times_lie_between_discords_epoch_and_the_year_9999() {
        for ms in [DISCORD_EPOCH_MS, 1_800_000_000_000, LATEST_MS] {
            assert_eq!(discord_time(ms).map(time_to_millis), Ok(ms));
        }
        for ms in [
            -1_000_000_000_000_000,
            0,
            DISCORD_EPOCH_MS - 1,
            LATEST_MS + 1,
            i64::MAX,
        ] {
            assert_eq!(discord_time(ms), Err(TimeOutOfRange(ms)));
        }
    }
}
