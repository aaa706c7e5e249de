//! Start-up with many guilds: every guild's baseline snapshot, within the request budget,
//! without a single 429. (`examples/startup.rs` does the same with 10,000 guilds.)

use std::collections::HashSet;
use std::time::{Duration, Instant};

use invitrack_bus::proto::guild_event::Kind;
use invitrack_sim::{GuildSpec, JoinSpec, JoinVia, SimConfig};

use crate::helpers::{
    RunningIngest, TestBus, guild_with_invite, ingest_config, nats_url, snapshots, start_sim,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_guilds_are_snapshotted_within_the_budget_without_429s() {
    const GUILDS: u64 = 300;
    const PER_SECOND: u32 = 40;
    let bus = TestBus::new(&nats_url()).await;
    let sim = start_sim(SimConfig {
        shards: 2,
        ..SimConfig::default()
    })
    .await;
    let world = sim.world();
    let mut guild_ids = HashSet::new();
    for i in 0..GUILDS {
        let guild = world
            .create_guild(GuildSpec {
                name: format!("g{i}"),
                ..GuildSpec::default()
            })
            .expect("guild");
        guild_ids.insert(guild.guild_id.get());
    }
    world.reset_rest_stats();
    let started = Instant::now();
    let ingest = RunningIngest::start(invitrack_ingest::IngestConfig {
        requests_per_second: PER_SECOND,
        ..ingest_config(&sim, &bus.config)
    })
    .await;
    ingest
        .wait_metrics(Duration::from_secs(60), "every baseline", |m| {
            m.snapshots_published() == GUILDS
        })
        .await;
    let elapsed = started.elapsed();
    // The budget lets its first `BURST_REQUESTS` requests leave at once, then one every
    // 1/PER_SECOND s.
    let budget_floor = Duration::from_secs_f64(
        (GUILDS - u64::from(invitrack_discord::BURST_REQUESTS)) as f64 / f64::from(PER_SECOND),
    );
    assert!(
        elapsed >= budget_floor,
        "{elapsed:?}: faster than the budget allows"
    );
    let stats = world.rest_stats();
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert_eq!(ingest.metrics.snapshot_requests(), GUILDS);
    assert_eq!(ingest.metrics.guilds(), GUILDS);
    // The simulator shares this host's clock: its `Date` headers must not look behind ours.
    assert_eq!(ingest.metrics.clock_ahead_ms(), 0);
    let events = bus.events().await;
    let baselines = snapshots(&events);
    assert_eq!(baselines.len() as u64, GUILDS);
    assert_eq!(
        baselines.iter().map(|e| e.guild_id).collect::<HashSet<_>>(),
        guild_ids
    );
    eprintln!("{GUILDS} guilds snapshotted in {elapsed:?} at {PER_SECOND} requests/s, 0 429s");

    ingest.stop().await;
    bus.cleanup().await;
}

/// A join in a guild still waiting for its start-up read is read at once, ahead of the guilds
/// still waiting, not in its turn minutes later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_during_start_up_is_read_before_the_guilds_still_waiting() {
    const GUILDS: u64 = 150;
    // Fifteen seconds of start-up reads.
    const PER_SECOND: u32 = 10;
    let bus = TestBus::new(&nats_url()).await;
    let sim = start_sim(SimConfig::default()).await;
    let world = sim.world();
    for i in 0..GUILDS - 1 {
        world
            .create_guild(GuildSpec {
                name: format!("g{i}"),
                ..GuildSpec::default()
            })
            .expect("guild");
    }
    // Created last: its start-up read comes last.
    let (guild_id, code) = guild_with_invite(&sim, "joined during start-up");
    let ingest = RunningIngest::start(invitrack_ingest::IngestConfig {
        requests_per_second: PER_SECOND,
        ..ingest_config(&sim, &bus.config)
    })
    .await;
    ingest
        .wait_metrics(Duration::from_secs(30), "a few start-up reads", |m| {
            m.snapshots_published() >= 10
        })
        .await;
    let truth = world
        .join(guild_id, JoinVia::Invite(code), JoinSpec::default())
        .expect("join");
    let joined_at = truth.joined_at.timestamp_millis();
    let events = bus
        .wait_for(Duration::from_secs(30), "the joined guild's read", |events| {
            snapshots(events).iter().any(|e| {
                e.guild_id == guild_id.get()
                    && matches!(&e.kind, Some(Kind::InviteSnapshot(s)) if s.requested_at_ms > joined_at)
            })
        })
        .await;
    let read_before = snapshots(&events).len() as u64;
    assert!(
        read_before < GUILDS / 2,
        "the joined guild was read after {read_before} of {GUILDS} guilds"
    );
    // The rest still follow, each once.
    ingest
        .wait_metrics(Duration::from_secs(60), "every start-up read", |m| {
            m.guilds_read() == GUILDS
        })
        .await;
    assert_eq!(ingest.metrics.snapshot_requests(), GUILDS);
    assert_eq!(world.rest_stats().rate_limited, 0);

    ingest.stop().await;
    bus.cleanup().await;
}
