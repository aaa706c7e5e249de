//! The gateway connection drops: the shard RESUMEs, the simulator replays what was missed, and
//! every event reaches the stream once. The shard's clock stands still meanwhile, so no clock
//! overtakes the joins the resume replays.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use invitrack_bus::GuildEvent;
use invitrack_bus::proto::guild_event::Kind;

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
    let away: Vec<u64> = (0..5).map(|_| join()).collect();
    truth.extend(&away);
    ingest
        .wait_metrics(Duration::from_secs(20), "the shard back", |m| {
            m.shards_connected() == 1
        })
        .await;
    // A second drop, right after more events, replays from the sequence the shard last saw.
    truth.extend((0..5).map(|_| join()));
    world.drop_shard(Some(0));
    let away_again: Vec<u64> = (0..5).map(|_| join()).collect();
    truth.extend(&away_again);

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
    let replayed: BTreeSet<u64> = away.into_iter().chain(away_again).collect();
    no_clock_overtakes(&bus, &bus.events().await, &replayed);

    ingest.stop().await;
    bus.cleanup().await;
}

/// Every clock in a partition before a join made while its shard was away is older than the
/// join: the clock stood still from the drop until the resume had replayed it. (The simulator
/// resumes within milliseconds, so this mostly guards the order of clock and replay; the
/// engine's model covers long outages: `crates/attribution/tests/model_properties.rs`.)
fn no_clock_overtakes(bus: &TestBus, events: &[(String, GuildEvent)], replayed: &BTreeSet<u64>) {
    let mut latest_clock: BTreeMap<u32, i64> = BTreeMap::new();
    let mut checked = 0;
    for (subject, event) in events {
        match &event.kind {
            Some(Kind::ShardClock(clock)) => {
                let latest = latest_clock.entry(clock.partition).or_default();
                *latest = (*latest).max(event.observed_at_ms);
            }
            Some(Kind::MemberAdd(add)) if replayed.contains(&add.user_id) => {
                let (partition, _) = bus.layout.parse_guild_subject(subject).expect("subject");
                let clock = latest_clock.get(&partition).copied().unwrap_or_default();
                assert!(
                    clock < add.joined_at_ms,
                    "a clock at {clock} overtook member {} who joined at {}",
                    add.user_id,
                    add.joined_at_ms
                );
                checked += 1;
            }
            _ => {}
        }
    }
    assert_eq!(checked, replayed.len());
}
