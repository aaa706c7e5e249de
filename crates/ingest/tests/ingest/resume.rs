//! The gateway connection drops: the shard RESUMEs, the simulator replays what was missed, and
//! every event reaches the stream once.

use std::time::Duration;

use invitrack_sim::{JoinSpec, JoinVia, SimConfig};

use crate::helpers::{
    RunningIngest, TestBus, guild_with_invite, ingest_config, member_adds, nats_url, start_sim,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_across_a_dropped_connection_arrive_once_in_order() {
    let bus = TestBus::new(&nats_url()).await;
    let sim = start_sim(SimConfig::default()).await;
    let (guild_id, code) = guild_with_invite(&sim, "resume");
    let ingest = RunningIngest::start(ingest_config(&sim, &bus.config)).await;
    ingest
        .wait_metrics(Duration::from_secs(20), "the baseline snapshot", |m| {
            m.snapshots_published() == 1
        })
        .await;
    let world = sim.world();
    let join = || {
        world
            .join(guild_id, JoinVia::Invite(code.clone()), JoinSpec::default())
            .expect("join")
            .user_id
            .get()
    };
    let mut truth: Vec<u64> = (0..5).map(|_| join()).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(world.drop_shard(Some(0)), 1, "one connection dropped");
    // These happen while the shard is away; the RESUME replays them.
    truth.extend((0..5).map(|_| join()));
    ingest
        .wait_metrics(Duration::from_secs(20), "the shard back", |m| {
            m.shards_connected() == 1
        })
        .await;
    // A second drop, right after more events, replays from the sequence the shard last saw.
    truth.extend((0..5).map(|_| join()));
    world.drop_shard(Some(0));
    truth.extend((0..5).map(|_| join()));

    bus.wait_for(Duration::from_secs(30), "20 joins", |events| {
        member_adds(events).len() >= 20
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let joined: Vec<u64> = member_adds(&bus.events().await)
        .into_iter()
        .map(|(_, user)| user)
        .collect();
    assert_eq!(joined, truth, "no gap, no duplicate, same order");

    ingest.stop().await;
    bus.cleanup().await;
}
