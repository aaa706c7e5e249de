//! A partition stream made again under a deployment (NATS lost its store, or the bus moved to a
//! cluster) starts its sequences again at 1: the worker tells it apart by its creation time and
//! applies it from its first message, instead of skipping sequences it already passed in the old
//! one. Real NATS and PostgreSQL; the worker's `run`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use diesel::{ExpressionMethods as _, QueryDsl as _};
use invitrack_bus::proto::{self, guild_event::Kind};
use invitrack_bus::{BusConfig, GuildEvent, publish_event};
use invitrack_model::time::now_millis;
use invitrack_model::{BotId, GuildId, GuildKey};
use invitrack_testkit::TestDatabase;
use invitrack_worker::{WorkerConfig, WorkerStats};
use tokio_util::sync::CancellationToken;

mod support;

use support::{ALICE, BOB, BOT, GUILD, event, join, snapshot};

/// A guild's rounds of evidence: the join of `member` between two snapshots, then ingest's
/// clock past it.
fn round(t: i64, member: u64, uses_before: u64, partition: u32) -> Vec<GuildEvent> {
    vec![
        event(t, snapshot(t - 200, uses_before)),
        event(t + 1_100, join(member, t + 1_000)),
        event(t + 1_400, snapshot(t + 1_200, uses_before + 1)),
        GuildEvent {
            guild_id: 0,
            ..event(
                now_millis(),
                Kind::ShardClock(proto::ShardClock {
                    partition,
                    shard_total: 1,
                    first_shard: 0,
                    last_shard: 0,
                    delivery_lag_ms: None,
                }),
            )
        },
    ]
}

async fn publish_all(bus: &invitrack_bus::Bus, events: &[GuildEvent], tag: &str) {
    for (n, e) in events.iter().enumerate() {
        publish_event(&bus.jetstream, &bus.layout, e, &format!("{tag}{n}"))
            .await
            .expect("published")
            .await
            .expect("stored");
    }
}

async fn joins_of_guild(url: &str) -> Vec<i64> {
    use diesel_async::RunQueryDsl as _;
    use invitrack_storage::schema::joins::dsl as j;
    let mut conn = invitrack_storage::connect(url).await.expect("database");
    let mut members: Vec<i64> = j::joins
        .filter(j::guild_id.eq(GUILD.cast_signed()))
        .select(j::member_id)
        .load(&mut conn)
        .await
        .expect("joins");
    members.sort_unstable();
    members
}

async fn wait_for_joins(url: &str, expected: &[i64]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = joins_of_guild(url).await;
        if found == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "joins {found:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_recreated_partition_stream_is_applied_from_its_first_message() {
    let database = TestDatabase::new("invitrack_recreated");
    invitrack_storage::prepare_database(&database.url())
        .await
        .expect("database");
    let bus = BusConfig {
        nats_url: invitrack_testkit::nats_url(),
        bus_prefix: invitrack_testkit::unique("recreated"),
        bus_partitions: 1,
        bus_max_age_hours: 1,
        ..BusConfig::default()
    };
    let connected = bus.connect().await.expect("NATS with JetStream is up");
    let partition = connected
        .layout
        .partition_of(GuildKey::new(BotId::new(BOT), GuildId::new(GUILD)));
    let start_worker = |shutdown: CancellationToken, stats: Arc<WorkerStats>| {
        let mut config = WorkerConfig::new(database.url(), bus.clone());
        config.tick_ms = 50;
        tokio::spawn(invitrack_worker::run_with_stats(config, shutdown, stats))
    };

    // A first life of the stream: one join, applied.
    let t0 = now_millis() - 60_000;
    publish_all(&connected, &round(t0, ALICE, 0, partition), "a").await;
    let shutdown = CancellationToken::new();
    let stats = Arc::new(WorkerStats::default());
    let worker = start_worker(shutdown.clone(), Arc::clone(&stats));
    wait_for_joins(&database.url(), &[ALICE.cast_signed()]).await;
    assert!(stats.applied.load(Ordering::Relaxed) >= 4);
    shutdown.cancel();
    worker.await.expect("worker task").expect("worker stops");

    // NATS loses the stream; it is made again, and the next round takes the same sequences
    // (1 to 4) as the round applied before: only the stream's creation time tells them apart.
    let stream = connected.layout.partition_stream(partition);
    connected
        .jetstream
        .delete_stream(&stream)
        .await
        .expect("stream deleted");
    let connected = bus.connect().await.expect("streams made again");
    let t1 = now_millis() - 30_000;
    publish_all(&connected, &round(t1, BOB, 1, partition), "b").await;

    let shutdown = CancellationToken::new();
    let worker = start_worker(shutdown.clone(), Arc::new(WorkerStats::default()));
    wait_for_joins(&database.url(), &[ALICE.cast_signed(), BOB.cast_signed()]).await;
    shutdown.cancel();
    worker.await.expect("worker task").expect("worker stops");
    invitrack_bus::delete_streams(&connected.jetstream, &connected.layout).await;
}
