//! End-to-end lag: from the moment ingest observed an event (`observed_at`) to the commit of
//! its effects.

use std::sync::atomic::{AtomicU64, Ordering};

const FINE_MS: u64 = 1_000;
const MEDIUM_MS: u64 = 10_000;
const COARSE_MS: u64 = 100_000;
/// 1 ms buckets below 1 s, 10 ms below 10 s, 100 ms below 100 s, then one overflow bucket.
const BUCKETS: usize =
    (FINE_MS + (MEDIUM_MS - FINE_MS) / 10 + (COARSE_MS - MEDIUM_MS) / 100 + 1) as usize;

/// A lock-free histogram of lag in milliseconds, shared by every partition of a worker.
pub struct LagHistogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for LagHistogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl std::fmt::Debug for LagHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LagHistogram")
            .field("count", &self.count())
            .field("p50_ms", &self.percentile(50.0))
            .field("p99_ms", &self.percentile(99.0))
            .finish()
    }
}

impl LagHistogram {
    /// Counts one event that took `lag_ms` (negative values, from clock differences, count as 0).
    pub fn record(&self, lag_ms: i64) {
        let ms = u64::try_from(lag_ms).unwrap_or(0);
        let index = if ms < FINE_MS {
            ms
        } else if ms < MEDIUM_MS {
            FINE_MS + (ms - FINE_MS) / 10
        } else if ms < COARSE_MS {
            FINE_MS + (MEDIUM_MS - FINE_MS) / 10 + (ms - MEDIUM_MS) / 100
        } else {
            BUCKETS as u64 - 1
        };
        let index = usize::try_from(index).unwrap_or(BUCKETS - 1);
        self.buckets[index.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// Events recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The lag at or below which `percent` % of the events were applied, in ms (the upper edge
    /// of its bucket; `None` before any event; the overflow bucket reads as 100 s).
    #[must_use]
    pub fn percentile(&self, percent: f64) -> Option<u64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((percent / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(upper_edge(index as u64));
            }
        }
        Some(COARSE_MS)
    }

    /// Adds this histogram's events to `other` (to merge several workers' figures).
    pub fn merge_into(&self, other: &Self) {
        for (mine, theirs) in self.buckets.iter().zip(other.buckets.iter()) {
            theirs.fetch_add(mine.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Forgets every event (to measure a new window).
    pub fn reset(&self) {
        for bucket in &self.buckets {
            bucket.store(0, Ordering::Relaxed);
        }
    }
}

fn upper_edge(index: u64) -> u64 {
    let medium_start = FINE_MS;
    let coarse_start = FINE_MS + (MEDIUM_MS - FINE_MS) / 10;
    if index < medium_start {
        index + 1
    } else if index < coarse_start {
        FINE_MS + (index - medium_start + 1) * 10
    } else {
        (MEDIUM_MS + (index - coarse_start + 1) * 100).min(COARSE_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_the_recorded_lags() {
        let lag = LagHistogram::default();
        assert_eq!(lag.percentile(50.0), None);
        for ms in 0..100 {
            lag.record(ms);
        }
        lag.record(2_345);
        lag.record(-5);
        assert_eq!(lag.count(), 102);
        assert_eq!(lag.percentile(50.0), Some(50));
        assert_eq!(lag.percentile(100.0), Some(2_350));
        lag.record(1_000_000);
        assert_eq!(lag.percentile(100.0), Some(100_000));
        lag.reset();
        assert_eq!(lag.count(), 0);
    }
}
