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
    /// Every recorded lag added up, ms (Prometheus' `_sum`).
    sum_ms: AtomicU64,
}

impl Default for LagHistogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_ms: AtomicU64::new(0),
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
        self.sum_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// For each of `bounds_ms` (each an edge of the fine buckets: whole ms below 1 s, tens
    /// below 10 s, hundreds below 100 s), the events of the buckets that end at or below it
    /// (events under the bound); then the count and the sum in ms. Prometheus' cumulative
    /// buckets.
    #[must_use]
    pub fn cumulative(&self, bounds_ms: &[u64]) -> (Vec<u64>, u64, u64) {
        let mut below = vec![0; bounds_ms.len()];
        let mut count = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            let n = bucket.load(Ordering::Relaxed);
            count += n;
            let edge = if index == BUCKETS - 1 {
                u64::MAX
            } else {
                upper_edge(index as u64)
            };
            for (bound, total) in bounds_ms.iter().zip(below.iter_mut()) {
                if edge <= *bound {
                    *total += n;
                }
            }
        }
        (below, count, self.sum_ms.load(Ordering::Relaxed))
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
        other
            .sum_ms
            .fetch_add(self.sum_ms.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Forgets every event (to measure a new window).
    pub fn reset(&self) {
        for bucket in &self.buckets {
            bucket.store(0, Ordering::Relaxed);
        }
        self.sum_ms.store(0, Ordering::Relaxed);
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

    #[test]
    fn cumulative_buckets_count_every_event_at_or_below_each_bound() {
        let lag = LagHistogram::default();
        for ms in [0, 4, 5, 6, 999, 1_000, 2_345, 150_000] {
            lag.record(ms);
        }
        let (below, count, sum) = lag.cumulative(&[5, 1_000, 2_500, 100_000]);
        // A bucket counts below a bound when its upper edge is: 0 and 4 lie in buckets ending
        // at 1 and 5, but 5 in the one ending at 6, and 1,000 in the one ending at 1,010.
        assert_eq!(below, vec![2, 5, 7, 7]);
        assert_eq!(count, 8);
        assert_eq!(sum, 4 + 5 + 6 + 999 + 1_000 + 2_345 + 150_000);
    }
}
