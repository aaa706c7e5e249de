//! Ingest's clock: how far each shard's events have been published, which is how far time may
//! pass for the undecided joins of its guilds (`docs/architecture.md#ingests-clock`).

use std::collections::HashMap;
use std::ops::RangeInclusive;

use invitrack_attribution::DeliveryClock;
use invitrack_bus::proto::ShardClock;
use invitrack_model::{BotId, GuildKey, Millis};

use crate::decode::DecodeError;

/// How far ahead of this worker's own clock ingest's clock may be taken to be: the skew two
/// NTP-synchronised hosts may have, with a wide margin. A clock further ahead (a forged message,
/// an ingest host whose clock stepped forward) is clamped to it, so that no guild's time can run
/// ahead of what is true and leave its later joins without evidence.
pub(crate) const MAX_CLOCK_AHEAD_MS: Millis = 10_000;

/// Most shards a bot may have: bounds what a clock message can make a worker allocate.
const MAX_SHARDS: u32 = 1 << 20;

/// One checked `ShardClock`: every event of these shards observed before `at` is applied, and
/// their joins' delivery lag as ingest measured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClockReading {
    bot_id: BotId,
    shard_total: u32,
    shards: RangeInclusive<u32>,
    at: Millis,
    delivery_lag: Option<Millis>,
}

impl ClockReading {
    pub(crate) fn check(
        bot_id: BotId,
        clock: &ShardClock,
        at: Millis,
        partition: u32,
    ) -> Result<Self, DecodeError> {
        if clock.partition != partition {
            return Err(DecodeError::ClockPartition {
                named: clock.partition,
                partition,
            });
        }
        if clock.shard_total == 0
            || clock.shard_total > MAX_SHARDS
            || clock.first_shard > clock.last_shard
            || clock.last_shard >= clock.shard_total
        {
            return Err(DecodeError::ClockShards {
                first: clock.first_shard,
                last: clock.last_shard,
                total: clock.shard_total,
            });
        }
        Ok(Self {
            bot_id,
            shard_total: clock.shard_total,
            shards: clock.first_shard..=clock.last_shard,
            at,
            delivery_lag: clock.delivery_lag_ms,
        })
    }
}

impl ClockReading {
    /// Whether it is the clock of this guild's shard.
    pub(crate) fn covers(&self, guild: GuildKey) -> bool {
        guild.bot_id == self.bot_id
            && self
                .shards
                .contains(&guild.guild_id.shard(self.shard_total))
    }

    /// The time and lag it gives the engine.
    pub(crate) fn delivery_clock(&self) -> DeliveryClock {
        DeliveryClock {
            now: self.at,
            delivery_lag: self.delivery_lag,
        }
    }
}

/// Ingest's latest clock per bot and shard (a guild's shard is Discord's
/// `(guild_id >> 22) % shard_total`). Kept in memory only: after a restart the next clock,
/// a tenth of a second away, sets it again.
#[derive(Debug, Default)]
pub(crate) struct ShardClocks {
    bots: HashMap<BotId, BotClocks>,
}

#[derive(Debug)]
struct BotClocks {
    shard_total: u32,
    at: Vec<Option<DeliveryClock>>,
}

impl ShardClocks {
    pub(crate) fn advance(&mut self, clock: &ClockReading) {
        let fresh = || BotClocks {
            shard_total: clock.shard_total,
            at: vec![None; clock.shard_total as usize],
        };
        let bot = self.bots.entry(clock.bot_id).or_insert_with(fresh);
        if bot.shard_total != clock.shard_total {
            // Resharded: times of the old layout say nothing about the new shards.
            *bot = fresh();
        }
        let reading = clock.delivery_clock();
        for shard in clock.shards.clone() {
            let at = &mut bot.at[shard as usize];
            // An older clock (from another publisher of the shard) says nothing new.
            if at.is_none_or(|at| at.now <= reading.now) {
                *at = Some(reading);
            }
        }
    }

    /// How far time may pass for this guild, and the lag measured for its shard, if its
    /// shard's clock is known.
    pub(crate) fn clock_of(&self, guild: GuildKey) -> Option<DeliveryClock> {
        let bot = self.bots.get(&guild.bot_id)?;
        *bot.at
            .get(usize::try_from(guild.guild_id.shard(bot.shard_total)).ok()?)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use invitrack_model::GuildId;

    const BOT: BotId = BotId::new(7);

    fn clock(first: u32, last: u32, total: u32) -> ShardClock {
        ShardClock {
            partition: 3,
            shard_total: total,
            first_shard: first,
            last_shard: last,
            delivery_lag_ms: None,
        }
    }

    #[test]
    fn readings_are_checked() {
        assert!(ClockReading::check(BOT, &clock(0, 1, 2), 5, 3).is_ok());
        assert!(matches!(
            ClockReading::check(BOT, &clock(0, 1, 2), 5, 4),
            Err(DecodeError::ClockPartition {
                named: 3,
                partition: 4
            })
        ));
        for (first, last, total) in [(0, 0, 0), (1, 0, 2), (0, 2, 2), (0, 0, MAX_SHARDS + 1)] {
            assert!(
                matches!(
                    ClockReading::check(BOT, &clock(first, last, total), 5, 3),
                    Err(DecodeError::ClockShards { .. })
                ),
                "{first}..={last} of {total}"
            );
        }
    }

    #[test]
    fn time_passes_per_shard_and_never_goes_back() {
        let mut clocks = ShardClocks::default();
        // Guild ids whose shard (of 2) is 0 and 1.
        let on_shard = |s: u64| GuildKey::new(BOT, GuildId::new(s << 22));
        let reading = |first, last, at| {
            ClockReading::check(BOT, &clock(first, last, 2), at, 3).expect("valid")
        };
        let now_of = |clocks: &ShardClocks, guild| clocks.clock_of(guild).map(|c| c.now);
        assert_eq!(now_of(&clocks, on_shard(0)), None);
        clocks.advance(&reading(0, 0, 100));
        assert_eq!(now_of(&clocks, on_shard(0)), Some(100));
        assert_eq!(now_of(&clocks, on_shard(1)), None);
        clocks.advance(&reading(0, 1, 90));
        assert_eq!(now_of(&clocks, on_shard(0)), Some(100));
        assert_eq!(now_of(&clocks, on_shard(1)), Some(90));
        // Resharding forgets the old layout.
        let resharded = ClockReading::check(BOT, &clock(0, 0, 4), 200, 3).expect("valid");
        clocks.advance(&resharded);
        assert_eq!(now_of(&clocks, on_shard(1)), None);
    }

    #[test]
    fn the_measured_lag_comes_with_the_latest_clock_of_the_shard() {
        let mut clocks = ShardClocks::default();
        let guild = GuildKey::new(BOT, GuildId::new(0));
        let reading = |at, lag| {
            let measured = ShardClock {
                delivery_lag_ms: lag,
                ..clock(0, 0, 1)
            };
            ClockReading::check(BOT, &measured, at, 3).expect("valid")
        };
        clocks.advance(&reading(100, Some(180)));
        let expected = DeliveryClock {
            now: 100,
            delivery_lag: Some(180),
        };
        assert_eq!(clocks.clock_of(guild), Some(expected));
        // An older clock changes neither the time nor the lag.
        clocks.advance(&reading(90, Some(20)));
        assert_eq!(clocks.clock_of(guild), Some(expected));
        // An ingest that does not measure: the engine's fallback applies.
        clocks.advance(&reading(110, None));
        let unmeasured = DeliveryClock {
            now: 110,
            delivery_lag: None,
        };
        assert_eq!(clocks.clock_of(guild), Some(unmeasured));
    }
}
