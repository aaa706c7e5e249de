//! Ingest's clock on the bus: every 100 ms, a [`ShardClock`] to each partition this process
//! published guild events to lately, queued behind everything published before.
//!
//! Workers let time pass for a guild's undecided joins only up to its shard's latest clock,
//! never by their own clock: a join still in ingest's buffer (NATS away) or not yet read by a
//! worker (catching up after a restart) is then never overtaken by a decision that it would
//! have changed. A shard's clock advances only while its session is live and its reader is up
//! to date ([`ShardWatch`]), and carries the delivery lag measured on its joins, which is how
//! long the worker waits for a join still on its way from Discord.

use invitrack_model::{BotId, Millis};
use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use invitrack_bus::proto::{GuildEvent, ShardClock, guild_event::Kind};
use invitrack_model::time::now_millis;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::publisher::Publisher;

/// How often the clock is sent: a join's decision waits up to this long for it. Each active
/// partition gets one small message per interval and run of live shards.
const CLOCK_INTERVAL: Duration = Duration::from_millis(100);
/// A partition gets clocks for this long after its last guild event: longer than a join may
/// stay undecided (`ATTRIBUTION_MAX_PENDING_MS`), and no clocks at all for idle partitions.
const ACTIVE_FOR_MS: i64 = 10 * 60 * 1000;
/// The delivery lag is measured over a shard's latest joins: this many.
const LAG_WINDOW: usize = 512;
/// Fewer joins than this say too little of the lag's tail: the clock carries none, and workers
/// assume `ATTRIBUTION_GATEWAY_LAG_MS`.
const LAG_MIN_SAMPLES: usize = 20;
/// The quantile of the window's lags the clock carries, in percent.
const LAG_QUANTILE_PERCENT: usize = 99;

/// The bot and shard count this process' clocks name.
#[derive(Debug, Clone)]
pub(crate) struct ClockSource {
    pub bot_id: BotId,
    pub shard_total: u32,
}

/// The delivery lags (ingest's receipt minus Discord's `joined_at`) of a shard's latest joins.
/// A ring buffer rather than a histogram crate: the window is "the latest joins", which a
/// cumulative histogram (hdrhistogram) only approximates by rotating several, and sorting 512
/// numbers ten times a second costs microseconds.
#[derive(Debug, Default)]
struct DeliveryLags {
    latest: VecDeque<Millis>,
}

impl DeliveryLags {
    fn record(&mut self, lag: Millis) {
        if self.latest.len() == LAG_WINDOW {
            self.latest.pop_front();
        }
        self.latest.push_back(lag);
    }

    fn quantile(&self) -> Option<Millis> {
        if self.latest.len() < LAG_MIN_SAMPLES {
            return None;
        }
        let mut sorted: Vec<Millis> = self.latest.iter().copied().collect();
        sorted.sort_unstable();
        let rank = (sorted.len() * LAG_QUANTILE_PERCENT).div_ceil(100);
        sorted.get(rank.max(1) - 1).copied()
    }
}

/// What the clock may say of one shard.
#[derive(Debug, Default)]
struct ShardState {
    /// The session is live: READY or RESUMED came, and no close or error since. While a shard
    /// reconnects or resumes (and replays what it missed) its clock stands still.
    live: bool,
    /// The reader took an event from the gateway at this time and has not yet queued it: the
    /// shard's events are published up to here only.
    reading_since: Option<Millis>,
    lags: DeliveryLags,
}

/// The state of this process' shards, shared by their readers and the clock.
#[derive(Debug, Clone)]
pub(crate) struct ShardWatch {
    first: u32,
    shards: Arc<Mutex<Vec<ShardState>>>,
}

impl ShardWatch {
    pub(crate) fn new(shards: &RangeInclusive<u32>) -> Self {
        Self {
            first: *shards.start(),
            shards: Arc::new(Mutex::new(
                shards.clone().map(|_| ShardState::default()).collect(),
            )),
        }
    }

    fn with<T>(&self, shard: u32, f: impl FnOnce(&mut ShardState) -> T) -> Option<T> {
        let mut shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        let index = usize::try_from(shard.checked_sub(self.first)?).ok()?;
        shards.get_mut(index).map(f)
    }

    pub(crate) fn set_live(&self, shard: u32, live: bool) {
        self.with(shard, |s| s.live = live);
    }

    /// The reader took an event: returns its observation time, before which the shard's clock
    /// stays until [`ShardWatch::queued`].
    pub(crate) fn reading(&self, shard: u32) -> Millis {
        // Taken under the lock, so a clock reads either the time before it or this state.
        self.with(shard, |s| *s.reading_since.insert(now_millis()))
            .unwrap_or_else(now_millis)
    }

    /// The reader queued what it took: the shard's events are published up to now.
    pub(crate) fn queued(&self, shard: u32) {
        self.with(shard, |s| s.reading_since = None);
    }

    /// A GUILD_MEMBER_ADD observed `lag` ms after its `joined_at`. Only joins of a live session
    /// count: those a resume replays are late by the outage, not by the gateway's lag.
    pub(crate) fn join_delivered(&self, shard: u32, lag: Millis) {
        self.with(shard, |s| {
            if s.live {
                s.lags.record(lag);
            }
        });
    }

    /// The clocks to send now: each run of consecutive live shards whose lag is measured (or
    /// not), up to when the slowest reader of the run has queued everything, with the highest
    /// lag of the run.
    fn readings(&self) -> Vec<ClockReading> {
        let shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        let now = now_millis();
        let mut readings: Vec<ClockReading> = Vec::new();
        for (number, state) in (self.first..).zip(shards.iter()) {
            if !state.live {
                continue;
            }
            let at = state.reading_since.unwrap_or(now);
            let lag = state.lags.quantile();
            match readings.last_mut() {
                Some(run)
                    if *run.shards.end() + 1 == number
                        && run.delivery_lag.is_some() == lag.is_some() =>
                {
                    run.shards = *run.shards.start()..=number;
                    run.at = run.at.min(at);
                    run.delivery_lag = run.delivery_lag.max(lag);
                }
                _ => readings.push(ClockReading {
                    shards: number..=number,
                    at,
                    delivery_lag: lag,
                }),
            }
        }
        readings
    }
}

/// One clock to send: every event of `shards` observed before `at` is queued.
#[derive(Debug, PartialEq, Eq)]
struct ClockReading {
    shards: RangeInclusive<u32>,
    at: Millis,
    delivery_lag: Option<Millis>,
}

/// Sends the clock until `stop`.
pub(crate) async fn publish_clocks(
    publisher: Publisher,
    source: ClockSource,
    watch: ShardWatch,
    stop: CancellationToken,
) {
    let mut interval = tokio::time::interval(CLOCK_INTERVAL);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.cancelled() => return,
        }
        let readings = watch.readings();
        if readings.is_empty() {
            continue;
        }
        for partition in publisher.partitions_active_since(now_millis() - ACTIVE_FOR_MS) {
            for reading in &readings {
                let (first, last) = (*reading.shards.start(), *reading.shards.end());
                let event = GuildEvent {
                    bot_id: source.bot_id.get(),
                    guild_id: 0,
                    observed_at_ms: reading.at,
                    shard_id: first,
                    kind: Some(Kind::ShardClock(ShardClock {
                        partition,
                        shard_total: source.shard_total,
                        first_shard: first,
                        last_shard: last,
                        delivery_lag_ms: reading.delivery_lag,
                    })),
                };
                let message_id =
                    format!("clock:{}:{first}:{partition}:{}", source.bot_id, reading.at);
                publisher.send(event, message_id).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_is_a_high_quantile_of_the_latest_joins() {
        let mut lags = DeliveryLags::default();
        for lag in 1..LAG_MIN_SAMPLES {
            lags.record(i64::try_from(lag).unwrap_or(0));
        }
        assert_eq!(lags.quantile(), None, "too few joins");
        lags.record(20);
        assert_eq!(
            lags.quantile(),
            Some(20),
            "of 20 joins, the 99th percentile is the top"
        );
        for _ in 0..LAG_WINDOW {
            lags.record(100);
        }
        lags.record(5_000);
        assert_eq!(
            lags.quantile(),
            Some(100),
            "one spike in 512 is above the 99th"
        );
        for _ in 0..10 {
            lags.record(5_000);
        }
        assert_eq!(lags.quantile(), Some(5_000), "eleven are not");
    }

    #[test]
    fn only_live_shards_get_a_clock_up_to_what_their_reader_queued() {
        let watch = ShardWatch::new(&(4..=7));
        assert_eq!(watch.readings(), vec![], "no session yet");
        for shard in 4..=7 {
            watch.set_live(shard, true);
        }
        // Shard 6 is resuming: its replayed joins must not be overtaken, nor measured.
        watch.set_live(6, false);
        watch.join_delivered(6, 60_000);
        for _ in 0..LAG_MIN_SAMPLES {
            watch.join_delivered(4, 100);
            watch.join_delivered(5, 180);
        }
        let taken = watch.reading(5);
        let readings = watch.readings();
        assert_eq!(readings.len(), 2, "{readings:?}");
        assert_eq!(readings[0].shards, 4..=5);
        assert_eq!(
            readings[0].at, taken,
            "held back by the event shard 5 is reading"
        );
        assert_eq!(readings[0].delivery_lag, Some(180));
        assert_eq!(readings[1].shards, 7..=7);
        assert_eq!(readings[1].delivery_lag, None, "no joins measured");
        assert!(readings[1].at >= taken);

        watch.queued(5);
        watch.set_live(6, true);
        let readings = watch.readings();
        assert_eq!(readings[0].shards, 4..=5);
        assert!(readings[0].at >= taken);
        assert_eq!(
            readings[1].shards,
            6..=7,
            "nothing measured on either while live"
        );
    }
}
