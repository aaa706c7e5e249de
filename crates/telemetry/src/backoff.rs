//! The one retry schedule of every retry loop: exponential with jitter (so processes that
//! failed together do not retry together), from backon. Its `std` feature seeds each schedule
//! at random; without it every process would draw the same "random" delays.

use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};

/// Delays from about `first`, doubling up to `max`, each with jitter, never ending.
pub fn backoff(first: Duration, max: Duration) -> impl Iterator<Item = Duration> + Send {
    ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_ceiling_with_jitter_and_never_end() {
        let first = Duration::from_millis(50);
        let max = Duration::from_secs(2);
        let delays: Vec<Duration> = backoff(first, max).take(40).collect();
        assert_eq!(delays.len(), 40);
        assert!(delays.iter().all(|d| *d >= first), "{delays:?}");
        // Jitter may add up to one more delay on top of the ceiling.
        assert!(delays.iter().all(|d| *d <= max * 2), "{delays:?}");
        assert!(delays[10..].iter().any(|d| *d >= max), "{delays:?}");
        let again: Vec<Duration> = backoff(first, max).take(40).collect();
        assert_ne!(delays, again, "jitter makes two schedules differ");
    }
}
