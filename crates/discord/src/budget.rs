//! One token bucket of requests per second shared by every request of a bot token in a
//! process (`docs/discord.md#rate-limits`).

use std::time::Duration;

use tokio::time::Instant;

/// Requests the budget lets leave at once after a quiet spell: two snapshots (an invite list
/// and a vanity URL each) that become due together leave together instead of one waiting a
/// turn, which would delay its read and widen its window of evidence. Any second then holds at
/// most `per_second + BURST_REQUESTS` requests (44 at the default 40/s, under Discord's 50).
pub const BURST_REQUESTS: u32 = 4;

/// Keeps all guilds together under `per_second` requests: a token bucket of `burst` tokens
/// (`BURST_REQUESTS` by default) refilled at `per_second`. Written here rather than with
/// governor (which limits the API's keys): each request books its turn on tokio's clock, so the
/// gate's pauses and the budget share one clock, which tests pause and advance; governor keeps
/// a clock of its own.
#[derive(Debug)]
pub struct RequestBudget {
    interval: Duration,
    burst: u32,
    /// When the bucket will be full again, given the requests booked so far.
    full_at: tokio::sync::Mutex<Instant>,
}

impl RequestBudget {
    #[must_use]
    pub fn new(per_second: u32) -> Self {
        Self::with_burst(per_second, BURST_REQUESTS)
    }

    /// A budget whose bucket holds `burst` requests (at least 1): any second holds at most
    /// `per_second + burst` of them.
    #[must_use]
    pub fn with_burst(per_second: u32, burst: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.max(1),
            burst: burst.max(1),
            full_at: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for the turn of `requests` requests sent together. They take one turn of
    /// `requests` tokens, not one turn each: a snapshot's invite list and vanity URL must
    /// leave at once, as the wait between them would delay the invite list (and so widen every
    /// window of evidence) without lowering the rate.
    pub async fn acquire(&self, requests: u32) {
        tokio::time::sleep_until(self.reserve(requests).await).await;
    }

    /// Books the next turn for `requests` requests and says when it starts: once the bucket
    /// holds `requests` tokens.
    pub(crate) async fn reserve(&self, requests: u32) -> Instant {
        let mut full_at = self.full_at.lock().await;
        let now = Instant::now();
        let short = self.interval * self.burst.saturating_sub(requests);
        let slot = now.max(full_at.checked_sub(short).unwrap_or(now));
        *full_at = (*full_at).max(slot) + self.interval * requests;
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_snapshots_requests_leave_together_and_a_burst_is_bounded() {
        let budget = RequestBudget::new(40);
        let start = Instant::now();
        // Three snapshots due at once: the first two leave at once, the third waits for two
        // tokens.
        let first = budget.reserve(2).await;
        let second = budget.reserve(2).await;
        let third = budget.reserve(2).await;
        assert_eq!(first, start, "an idle budget makes nobody wait");
        assert_eq!(
            second, start,
            "the burst allowance covers a second snapshot"
        );
        assert_eq!(third - start, Duration::from_millis(50));
    }

    #[tokio::test(start_paused = true)]
    async fn no_second_holds_more_than_the_rate_and_the_burst() {
        let per_second = 40;
        let budget = RequestBudget::new(per_second);
        let mut sent = Vec::new();
        // Bursty demand: idle spells (which must not save up more than the burst), then more
        // snapshots than the rate allows.
        for round in 0..6 {
            if round % 2 == 0 {
                tokio::time::advance(Duration::from_millis(700)).await;
            }
            for _ in 0..30 {
                let requests = 1 + (sent.len() % 2) as u32;
                let at = budget.reserve(requests).await;
                sent.extend(std::iter::repeat_n(at, requests as usize));
            }
        }
        sent.sort();
        let most_in_a_second = sent
            .iter()
            .enumerate()
            .map(|(i, &from)| {
                sent[i..]
                    .iter()
                    .take_while(|&&at| at < from + Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or_default();
        assert!(
            most_in_a_second <= (per_second + BURST_REQUESTS) as usize,
            "{most_in_a_second} requests in one second"
        );
        assert!(
            most_in_a_second >= per_second as usize,
            "the budget must still allow its rate: {most_in_a_second}"
        );
    }
}
