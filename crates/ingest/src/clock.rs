//! Ingest's clock on the bus: every half second, a [`ShardClock`] to each partition this
//! process published guild events to lately, queued behind everything published before.
//!
//! Workers let time pass for a guild's undecided joins only up to its shard's latest clock,
//! never by their own clock: a join still in ingest's buffer (NATS away) or not yet read by a
//! worker (catching up after a restart) is then never overtaken by a decision that it would
//! have changed.

use invitrack_model::BotId;
use std::ops::RangeInclusive;
use std::time::Duration;

use invitrack_bus::proto::{GuildEvent, ShardClock, guild_event::Kind};
use invitrack_model::time::now_millis;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::publisher::Publisher;

/// How often the clock is sent: a join's decision waits up to this long for it.
const CLOCK_INTERVAL: Duration = Duration::from_millis(500);
/// A partition gets clocks for this long after its last guild event: longer than a join may
/// stay undecided (`ATTRIBUTION_MAX_PENDING_MS`), and no clocks at all for idle partitions.
const ACTIVE_FOR_MS: i64 = 10 * 60 * 1000;

/// Which shards this process runs, as its clocks name them.
#[derive(Debug, Clone)]
pub(crate) struct ClockSource {
    pub bot_id: BotId,
    pub shard_total: u32,
    pub shards: RangeInclusive<u32>,
}

/// Sends the clock until `stop`.
pub(crate) async fn publish_clocks(
    publisher: Publisher,
    source: ClockSource,
    stop: CancellationToken,
) {
    let mut interval = tokio::time::interval(CLOCK_INTERVAL);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.cancelled() => return,
        }
        let now = now_millis();
        for partition in publisher.partitions_active_since(now - ACTIVE_FOR_MS) {
            let event = GuildEvent {
                bot_id: source.bot_id.get(),
                guild_id: 0,
                observed_at_ms: now,
                shard_id: *source.shards.start(),
                kind: Some(Kind::ShardClock(ShardClock {
                    partition,
                    shard_total: source.shard_total,
                    first_shard: *source.shards.start(),
                    last_shard: *source.shards.end(),
                })),
            };
            let message_id = format!(
                "clock:{}:{}:{partition}:{now}",
                source.bot_id,
                source.shards.start()
            );
            publisher.send(event, message_id).await;
        }
    }
}
