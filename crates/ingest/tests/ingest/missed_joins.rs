//! A worker asks for the members who joined a guild in a window (`{prefix}.missed-joins.{bot}`):
//! ingest reads the gateway's member list (opcode 8) and publishes, once, the members whose
//! `joined_at` lies in the window (`docs/attribution.md#joins-made-while-away`). Each
//! GUILD_CREATE is published too (`GuildAvailable`), before the guild's first read.

use std::time::Duration;

use invitrack_bus::proto::guild_event::Kind;
use invitrack_bus::{GuildEvent, MissedJoinsRequest};
use invitrack_sim::{JoinSpec, JoinVia, SimConfig};
use prost::Message as _;

use crate::helpers::{
    RunningIngest, TestBus, guild_with_invite, ingest_config, nats_url, start_sim,
};

fn members_found(events: &[(String, GuildEvent)]) -> Vec<Vec<u64>> {
    events
        .iter()
        .filter_map(|(_, e)| match &e.kind {
            Some(Kind::MembersFound(found)) => {
                Some(found.members.iter().map(|m| m.user_id).collect())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_members_who_joined_in_the_window_are_published_once() {
    let bus = TestBus::new(&nats_url()).await;
    let sim = start_sim(SimConfig::default()).await;
    let (guild_id, code) = guild_with_invite(&sim, "missed joins");
    let ingest = RunningIngest::start(ingest_config(&sim, &bus.config)).await;
    ingest
        .wait_metrics(Duration::from_secs(20), "the baseline snapshot", |m| {
            m.snapshots_published() == 1
        })
        .await;
    let events = bus.events().await;
    let position = |wanted: fn(&Kind) -> bool| {
        events
            .iter()
            .position(|(_, e)| e.kind.as_ref().is_some_and(wanted))
    };
    assert!(
        position(|k| matches!(k, Kind::GuildAvailable(_)))
            < position(|k| matches!(k, Kind::InviteSnapshot(_))),
        "GUILD_CREATE is published before the guild's first read: {events:?}"
    );

    let world = sim.world();
    let join = || {
        let truth = world
            .join(guild_id, JoinVia::Invite(code.clone()), JoinSpec::default())
            .expect("join");
        (truth.user_id.get(), truth.joined_at.timestamp_millis())
    };
    let before = join();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let inside = [join(), join()];
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after = join();
    let ask = |bot_id: u64| {
        let request = MissedJoinsRequest {
            bot_id,
            guild_id: guild_id.get(),
            joined_from_ms: inside[0].1,
            joined_to_ms: inside[1].1,
        };
        let client = bus.js.client();
        let subject = bus.layout.missed_joins_subject(ingest.bot_id);
        async move {
            client
                .publish(subject, request.encode_to_vec().into())
                .await
                .expect("published");
            client.flush().await.expect("flushed");
        }
    };
    // Another bot's request is not this process's to answer.
    ask(ingest.bot_id.get() + 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(members_found(&bus.events().await).is_empty());
    ask(ingest.bot_id.get()).await;
    let events = bus
        .wait_for(
            Duration::from_secs(20),
            "the member list's answer",
            |events| !members_found(events).is_empty(),
        )
        .await;
    let mut found = members_found(&events).remove(0);
    found.sort_unstable();
    let mut expected = vec![inside[0].0, inside[1].0];
    expected.sort_unstable();
    assert_eq!(found, expected, "not {before:?} nor {after:?}");

    // Asked again at once: Discord answers one request per guild every 30 s, so ingest waits.
    ask(ingest.bot_id.get()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(members_found(&bus.events().await).len(), 1);
    ingest.stop().await;
    bus.cleanup().await;
}
