//! Snowflakes and timestamps, the way Discord encodes them.
//!
//! A snowflake's top 42 bits are milliseconds since the Discord epoch (2015-01-01), so a
//! user id also says when the account was created: `(id >> 22) + 1420070400000` Unix ms.

use chrono::{DateTime, TimeZone, Utc};

/// The Discord epoch (2015-01-01T00:00:00Z) in Unix milliseconds.
pub const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

/// Unix milliseconds encoded in a snowflake.
pub fn created_at_ms(id: u64) -> i64 {
    i64::try_from(id >> 22).unwrap_or(i64::MAX) + DISCORD_EPOCH_MS
}

/// Hands out unique snowflakes. The low 22 bits are a counter, so two ids made in the same
/// millisecond still differ; ids made with a timestamp in the past (an old account) stay
/// unique for the same reason.
#[derive(Debug, Default)]
pub struct SnowflakeGen {
    counter: u64,
}

impl SnowflakeGen {
    /// A snowflake whose timestamp is `unix_ms` (clamped to the Discord epoch).
    pub fn at(&mut self, unix_ms: i64) -> u64 {
        self.counter = (self.counter + 1) & 0x3F_FFFF;
        // The counter never reaches zero together with a zero timestamp: ids are never 0.
        let since_epoch = u64::try_from(unix_ms.saturating_sub(DISCORD_EPOCH_MS)).unwrap_or(0);
        let id = (since_epoch << 22) | self.counter;
        id.max(1)
    }
}

/// Discord's timestamp format: `2016-03-31T19:15:39.954000+00:00` (valid RFC 3339).
pub fn format_ts(unix_ms: i64) -> String {
    to_datetime(unix_ms)
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

/// Unix milliseconds to a chrono time (the epoch if out of range).
pub fn to_datetime(unix_ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(unix_ms)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_round_trips_its_time() {
        let mut ids = SnowflakeGen::default();
        let ms = 1_700_000_000_123;
        let a = ids.at(ms);
        let b = ids.at(ms);
        assert_ne!(a, b);
        assert_eq!(created_at_ms(a), ms);
        assert_eq!(created_at_ms(b), ms);
    }

    #[test]
    fn discord_timestamp_format() {
        assert_eq!(
            format_ts(1_459_451_739_954),
            "2016-03-31T19:15:39.954000+00:00"
        );
        assert!(DateTime::parse_from_rfc3339(&format_ts(1_459_451_739_954)).is_ok());
    }
}
