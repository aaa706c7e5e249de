//! The one way a process sends requests to Discord's REST API with a bot token
//! (`docs/discord.md#rate-limits`):
//! - every request, retries included, takes its turn in one [`RequestBudget`];
//! - twilight-http never resends a request on its own: a 429 comes back to the gate, which
//!   pauses every request, for a second doubled at each 429 in a row (up to a minute); after
//!   a pause one request (a probe) goes alone, and the others follow only once it is answered
//!   with something other than a 429;
//! - a 401 stops every request for good: the token is no longer valid, and Discord asks that
//!   nothing more be sent with it;
//! - 401, 403 and 429 answers of the last 10 minutes are counted, and past a ceiling (well
//!   under the 10,000 at which Discord bans the IP address) nothing is sent until old ones age
//!   out of the window.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use twilight_http::error::ErrorType;
use twilight_http::response::{Response, ResponseFuture};

use crate::budget::RequestBudget;

/// The window over which Discord counts invalid requests.
pub const REJECTION_WINDOW: Duration = Duration::from_secs(600);
/// Discord bans the IP address at 10,000 invalid requests in [`REJECTION_WINDOW`]; the gate
/// stops at a quarter of that by default.
pub const DEFAULT_REJECTION_CEILING: u32 = 2_500;
/// The first pause after a 429, doubled at each further 429 in a row.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(60);
/// How long the others wait for a probe's answer at most (twilight-http gives up on a request
/// after 15 s by default): a probe admitted but never sent cannot hold the gate shut.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// A twilight-http request (the builders `Client`'s methods return), answered with a `Model`.
pub trait Request:
    IntoFuture<
        Output = Result<Response<Self::Model>, twilight_http::Error>,
        IntoFuture = ResponseFuture<Self::Model>,
    >
{
    type Model: Unpin;
}

impl<T: Unpin, R> Request for R
where
    R: IntoFuture<
            Output = Result<Response<T>, twilight_http::Error>,
            IntoFuture = ResponseFuture<T>,
        >,
{
    type Model = T;
}

/// Why the gate did not give an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// Discord answered with an error (a 4xx other than 429, a 5xx), or did not answer
    /// (timeouts, connection errors).
    #[error(transparent)]
    Http(#[from] twilight_http::Error),
    /// Discord answered 429; the request was not resent and every request is paused.
    #[error("Discord answered 429: every request paused for {pause:?}")]
    RateLimited { pause: Duration },
    /// Too many 401, 403 and 429 answers in 10 minutes: nothing was sent.
    #[error(
        "{rejected} requests rejected by Discord in the last 10 minutes (ceiling {ceiling}): \
         nothing is sent for {resume_in:?}"
    )]
    Halted {
        rejected: u32,
        ceiling: u32,
        resume_in: Duration,
    },
    /// Discord answered 401 to an earlier request: the token is not valid any more, so
    /// nothing was sent.
    #[error("the bot token was refused (401): no further request is sent with it")]
    InvalidToken,
    /// The request could not be watched (its client has no rate limiter), so it was not sent:
    /// twilight-http would resend a 429 past the gate.
    #[error("the twilight-http client must have its rate limiter")]
    Unwatched,
}

/// What the gate has done so far, for metrics.
#[derive(Debug, Default)]
pub struct GateStats {
    /// Requests sent to Discord.
    pub sent: AtomicU64,
    /// Answers of 429, 401 and 403.
    pub rate_limited: AtomicU64,
    pub unauthorized: AtomicU64,
    pub forbidden: AtomicU64,
    /// Requests not sent because the rejections of the window reached the ceiling.
    pub halted: AtomicU64,
}

#[derive(Debug)]
struct GateState {
    /// No request leaves before this.
    paused_until: Instant,
    /// Rounds of 429s in a row (a round: the requests sent together before the first 429 came
    /// back, or a probe), without an answer of another kind between them: sets the next pause.
    strikes: u32,
    /// A probe has been admitted and its answer is awaited.
    probe_out: bool,
    token_invalid: bool,
    /// When each 401, 403 and 429 of the window came, oldest first. At most about the ceiling
    /// long: once it is reached nothing more is sent.
    rejections: VecDeque<Instant>,
}

impl GateState {
    fn forget_old(&mut self, now: Instant) {
        while self
            .rejections
            .front()
            .is_some_and(|&at| now.duration_since(at) >= REJECTION_WINDOW)
        {
            self.rejections.pop_front();
        }
    }
}

/// The requests of one bot token in this process. Share it (`Arc`) between every task that
/// calls Discord with that token.
#[derive(Debug)]
pub struct DiscordGate {
    budget: RequestBudget,
    ceiling: u32,
    state: Mutex<GateState>,
    /// Wakes the requests waiting out a pause when it changes (a probe answered).
    changed: Notify,
    stats: GateStats,
}

impl DiscordGate {
    /// A gate letting `per_second` requests leave (bursts of
    /// [`crate::BURST_REQUESTS`]), halting at `rejection_ceiling` rejections in 10 minutes.
    #[must_use]
    pub fn new(per_second: u32, rejection_ceiling: u32) -> Self {
        Self::with_budget(RequestBudget::new(per_second), rejection_ceiling)
    }

    /// A gate over `budget`, halting at `rejection_ceiling` rejections in 10 minutes.
    #[must_use]
    pub fn with_budget(budget: RequestBudget, rejection_ceiling: u32) -> Self {
        Self {
            budget,
            ceiling: rejection_ceiling.max(1),
            state: Mutex::new(GateState {
                paused_until: Instant::now(),
                strikes: 0,
                probe_out: false,
                token_invalid: false,
                rejections: VecDeque::new(),
            }),
            changed: Notify::new(),
            stats: GateStats::default(),
        }
    }

    #[must_use]
    pub fn stats(&self) -> &GateStats {
        &self.stats
    }

    /// 401, 403 and 429 answers in the last 10 minutes.
    #[must_use]
    pub fn rejected_in_window(&self) -> usize {
        let mut state = self.lock();
        state.forget_old(Instant::now());
        state.rejections.len()
    }

    /// Whether a 401 has stopped every request.
    #[must_use]
    pub fn token_invalid(&self) -> bool {
        self.lock().token_invalid
    }

    /// The ceiling on rejections in 10 minutes.
    #[must_use]
    pub fn ceiling(&self) -> u32 {
        self.ceiling
    }

    /// Waits until `requests` requests may leave together: past any pause, then their turn
    /// in the budget. Each must then be sent with [`DiscordGate::send`].
    ///
    /// # Errors
    /// [`GateError::InvalidToken`] after a 401, [`GateError::Halted`] while the rejections of
    /// the window are at the ceiling.
    pub async fn admit(&self, requests: u32) -> Result<(), GateError> {
        loop {
            let paused_until = self.check()?;
            if paused_until > Instant::now() {
                tokio::select! {
                    () = tokio::time::sleep_until(paused_until) => {}
                    () = self.changed.notified() => {}
                }
                continue;
            }
            self.budget.acquire(requests).await;
            self.check()?;
            let mut state = self.lock();
            let now = Instant::now();
            // A 429 may have paused everything during the budget's wait.
            if state.paused_until > now {
                continue;
            }
            if state.strikes > 0 {
                // The first request after a pause goes alone.
                state.probe_out = true;
                state.paused_until = now + PROBE_TIMEOUT;
            }
            return Ok(());
        }
    }

    /// [`DiscordGate::admit`] one request, then [`DiscordGate::send`] it.
    ///
    /// # Errors
    /// As those two.
    pub async fn call<R: Request>(
        &self,
        request: impl FnOnce() -> R,
    ) -> Result<Response<R::Model>, GateError> {
        self.admit(1).await?;
        self.send(request()).await
    }

    /// Sends one admitted request, and learns from its answer. twilight-http resends a request
    /// answered 429 as soon as its own limiter allows, which for a global 429 is at once (the
    /// answer carries no bucket to wait for): the request's pre-flight check refuses any
    /// attempt after the first, so the 429 comes back here instead.
    ///
    /// # Errors
    /// [`GateError::RateLimited`] on a 429, [`GateError::Http`] on any other error.
    pub async fn send<R: Request>(&self, request: R) -> Result<Response<R::Model>, GateError> {
        let mut request = request.into_future();
        let attempts = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&attempts);
        if !request.set_pre_flight(move || counted.fetch_add(1, Ordering::Relaxed) == 0) {
            return Err(GateError::Unwatched);
        }
        let result = request.await;
        if attempts.load(Ordering::Relaxed) > 0 {
            self.stats.sent.fetch_add(1, Ordering::Relaxed);
        }
        match result {
            Ok(response) => {
                self.answered();
                Ok(response)
            }
            Err(error)
                if matches!(error.kind(), ErrorType::RequestCanceled)
                    && attempts.load(Ordering::Relaxed) > 1 =>
            {
                Err(GateError::RateLimited {
                    pause: self.rate_limited(),
                })
            }
            Err(error) => {
                match status_of(&error) {
                    Some(401) => self.unauthorized(),
                    Some(403) => {
                        self.stats.forbidden.fetch_add(1, Ordering::Relaxed);
                        self.reject(Instant::now());
                        self.answered();
                    }
                    _ => self.answered(),
                }
                Err(GateError::Http(error))
            }
        }
    }

    /// When requests may leave, or why none may.
    fn check(&self) -> Result<Instant, GateError> {
        let now = Instant::now();
        let mut state = self.lock();
        if state.token_invalid {
            return Err(GateError::InvalidToken);
        }
        state.forget_old(now);
        if state.rejections.len() >= self.ceiling as usize {
            self.stats.halted.fetch_add(1, Ordering::Relaxed);
            let oldest = state.rejections.front().copied().unwrap_or(now);
            return Err(GateError::Halted {
                rejected: u32::try_from(state.rejections.len()).unwrap_or(u32::MAX),
                ceiling: self.ceiling,
                resume_in: (oldest + REJECTION_WINDOW).saturating_duration_since(now),
            });
        }
        Ok(state.paused_until)
    }

    /// Discord answered with something other than a 429: a pause is over, and the requests
    /// waiting for a probe's answer may go.
    fn answered(&self) {
        let mut state = self.lock();
        if state.strikes > 0 || state.probe_out {
            state.strikes = 0;
            state.probe_out = false;
            state.paused_until = state.paused_until.min(Instant::now());
            drop(state);
            self.changed.notify_waiters();
        }
    }

    /// A 429: pauses every request (unless it belongs to a round already paused for); how
    /// long from now.
    fn rate_limited(&self) -> Duration {
        self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let pause = {
            let mut state = self.lock();
            // Requests that left together before the first 429 came back are one round.
            if state.probe_out || now >= state.paused_until {
                let pause = FIRST_PAUSE
                    .saturating_mul(1 << state.strikes.min(6))
                    .min(LONGEST_PAUSE);
                state.strikes = state.strikes.saturating_add(1);
                state.probe_out = false;
                state.paused_until = now + pause;
            }
            state.paused_until.saturating_duration_since(now)
        };
        self.changed.notify_waiters();
        let rejected = self.reject(now);
        tracing::warn!(
            pause_ms = pause.as_millis(),
            rejected_in_window = rejected,
            "Discord answered 429: every request paused"
        );
        pause
    }

    fn unauthorized(&self) {
        self.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
        self.lock().token_invalid = true;
        self.reject(Instant::now());
        tracing::error!("Discord refused the bot token (401): no further request is sent");
    }

    /// Counts a rejection; how many the window holds.
    fn reject(&self, now: Instant) -> usize {
        let mut state = self.lock();
        state.forget_old(now);
        state.rejections.push_back(now);
        let rejected = state.rejections.len();
        if rejected == self.ceiling as usize {
            tracing::error!(
                rejected,
                "Discord rejected too many requests in 10 minutes: nothing is sent until older \
                 rejections age out"
            );
        }
        rejected
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The HTTP status of an error answer, if Discord answered.
#[must_use]
pub fn status_of(error: &twilight_http::Error) -> Option<u16> {
    match error.kind() {
        ErrorType::Response { status, .. } => Some(status.get()),
        ErrorType::Unauthorized => Some(401),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_every_request_and_a_probe_goes_alone() {
        let gate = Arc::new(DiscordGate::new(40, 100));
        let start = Instant::now();
        gate.admit(1).await.expect("admitted");
        assert_eq!(Instant::now(), start, "an idle gate makes nobody wait");

        // Four requests left together; their 429s are one round: one pause of a second.
        assert_eq!(gate.rate_limited(), Duration::from_secs(1));
        for _ in 0..3 {
            tokio::time::advance(Duration::from_millis(5)).await;
            assert!(gate.rate_limited() < Duration::from_secs(1), "not extended");
        }
        assert_eq!(gate.lock().strikes, 1);

        // After the pause one probe goes; the others wait for its answer.
        gate.admit(1).await.expect("the probe");
        assert!(Instant::now() >= start + Duration::from_secs(1));
        let waiting = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.admit(1).await }
        });
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!waiting.is_finished(), "nobody follows an unanswered probe");

        // The probe meets a 429 too: twice as long.
        assert_eq!(gate.rate_limited(), Duration::from_secs(2));
        let second_pause = Instant::now();
        tokio::time::advance(Duration::from_millis(2_100)).await;
        // The waiting request was the next probe; it is answered: everything goes again.
        waiting.await.expect("joined").expect("admitted");
        assert!(Instant::now() >= second_pause + Duration::from_secs(2));
        gate.answered();
        let reopened = Instant::now();
        gate.admit(1).await.expect("admitted");
        gate.admit(1).await.expect("admitted");
        assert_eq!(
            Instant::now(),
            reopened,
            "a successful answer ends the pause"
        );

        // Rounds of 429s in a row double the pause up to a minute.
        for _ in 0..10 {
            gate.lock().probe_out = true;
            gate.rate_limited();
        }
        assert_eq!(gate.lock().paused_until - Instant::now(), LONGEST_PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn rejections_past_the_ceiling_halt_until_they_age_out() {
        let gate = DiscordGate::new(40, 3);
        for _ in 0..3 {
            gate.reject(Instant::now());
            tokio::time::advance(Duration::from_secs(60)).await;
        }
        assert_eq!(gate.rejected_in_window(), 3);
        match gate.admit(1).await {
            Err(GateError::Halted {
                rejected: 3,
                ceiling: 3,
                resume_in,
            }) => assert_eq!(resume_in, Duration::from_secs(420)),
            other => panic!("expected a halt, got {other:?}"),
        }
        assert_eq!(gate.stats().halted.load(Ordering::Relaxed), 1);
        // The oldest rejection leaves the window: one more request may go.
        tokio::time::advance(Duration::from_secs(420)).await;
        assert_eq!(gate.rejected_in_window(), 2);
        gate.admit(1).await.expect("admitted again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_401_stops_every_request() {
        let gate = DiscordGate::new(40, 100);
        gate.unauthorized();
        assert!(gate.token_invalid());
        assert!(matches!(gate.admit(1).await, Err(GateError::InvalidToken)));
        assert_eq!(gate.rejected_in_window(), 1);
    }
}
