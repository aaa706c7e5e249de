//! NATS goes away: ingest buffers up to INGEST_BUFFER, says so in /metrics, stops reading the
//! gateway when full, and publishes everything exactly once, in order, when NATS is back.

use std::time::Duration;

use invitrack_bus::proto::guild_event::Kind;
use invitrack_sim::{JoinSpec, JoinVia, SimConfig};

use crate::helpers::{
    NatsServer, RunningIngest, TestBus, guild_with_invite, http_get, ingest_config, member_adds,
    metric, start_sim,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffers_while_nats_is_down_then_publishes_everything_once_in_order() {
    let mut nats = NatsServer::start();
    let bus = TestBus::new(&nats.url()).await;
    let sim = start_sim(SimConfig::default()).await;
    let (guild_id, code) = guild_with_invite(&sim, "buffered");
    const BUFFER: u64 = 12;
    let ingest = RunningIngest::start(invitrack_ingest::IngestConfig {
        buffer: BUFFER as usize,
        ..ingest_config(&sim, &bus.config)
    })
    .await;
    ingest
        .wait_metrics(Duration::from_secs(20), "the baseline snapshot", |m| {
            m.snapshots_published() == 1
        })
        .await;
    let scraped = ingest.scrape().await;
    assert_eq!(
        metric(&scraped, "invitrack_ingest_buffer_capacity"),
        BUFFER as f64
    );
    assert_eq!(metric(&scraped, "invitrack_ingest_buffer_events"), 0.0);
    assert_eq!(metric(&scraped, "invitrack_ingest_shards_connected"), 1.0);
    assert_eq!(metric(&scraped, "invitrack_ingest_guilds"), 1.0);
    assert_eq!(http_get(ingest.metrics_addr, "/other").await.0, 404);
    let published_before = ingest.metrics.published_total();

    nats.kill();
    // More joins than the buffer holds: the shard must stop reading, not drop.
    const JOINS: usize = 30;
    let mut truth = Vec::new();
    for _ in 0..JOINS {
        let join = sim
            .world()
            .join(guild_id, JoinVia::Invite(code.clone()), JoinSpec::default())
            .expect("join");
        truth.push(join.user_id.get());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ingest
        .wait_metrics(Duration::from_secs(20), "a full buffer", |m| {
            m.buffered() == BUFFER
        })
        .await;
    // JetStream's acknowledgement times out (5 s) before the publish counts as failed.
    ingest
        .wait_metrics(Duration::from_secs(20), "a failed publish", |m| {
            m.publish_retries() >= 1
        })
        .await;
    let scraped = ingest.scrape().await;
    assert_eq!(
        metric(&scraped, "invitrack_ingest_buffer_events"),
        BUFFER as f64
    );
    assert_eq!(metric(&scraped, "invitrack_ingest_publish_failing"), 1.0);
    assert!(metric(&scraped, "invitrack_ingest_buffer_full_waits_total") >= 1.0);
    assert!(metric(&scraped, "invitrack_ingest_publish_retries_total") >= 1.0);
    assert_eq!(
        ingest.metrics.published_total(),
        published_before,
        "nothing published while NATS is down"
    );
    // Beyond the buffer: the event the publishing task holds, and one waiting event per
    // producer (the shard reader, the clock).
    assert!(
        ingest.metrics.received_total() <= published_before + BUFFER + 3,
        "the shard stopped reading at a full buffer (received {})",
        ingest.metrics.received_total()
    );

    nats.resume();
    let events = bus
        .wait_for(Duration::from_secs(60), "every join", |events| {
            member_adds(events).len() >= JOINS
        })
        .await;
    ingest
        .wait_metrics(Duration::from_secs(30), "an empty buffer", |m| {
            m.buffered() == 0
        })
        .await;
    let events = {
        // Whatever was still on its way (the last snapshot) has landed.
        drop(events);
        bus.events().await
    };
    let joined: Vec<u64> = member_adds(&events)
        .into_iter()
        .map(|(_, user)| user)
        .collect();
    assert_eq!(
        joined, truth,
        "every join exactly once, in the order it happened"
    );
    // The snapshot that settles the joins comes after the last join in the stream.
    let last_join = events
        .iter()
        .rposition(|(_, e)| matches!(e.kind, Some(Kind::MemberAdd(_))))
        .expect("joins");
    let last_snapshot = events
        .iter()
        .rposition(|(_, e)| matches!(e.kind, Some(Kind::InviteSnapshot(_))))
        .expect("snapshots");
    assert!(last_snapshot > last_join);
    if let Some(Kind::InviteSnapshot(snapshot)) = &events[last_snapshot].1.kind {
        let uses = snapshot
            .invites
            .iter()
            .find(|i| i.code == code)
            .expect("the invite")
            .uses;
        assert_eq!(uses, JOINS as u64);
    }
    let scraped = ingest.scrape().await;
    assert_eq!(metric(&scraped, "invitrack_ingest_publish_failing"), 0.0);
    assert_eq!(
        metric(
            &scraped,
            "invitrack_ingest_events_published_total{kind=\"member_add\"}"
        ),
        JOINS as f64
    );
    assert_eq!(
        metric(
            &scraped,
            "invitrack_ingest_events_received_total{kind=\"member_add\"}"
        ),
        JOINS as f64
    );

    ingest.stop().await;
    bus.cleanup().await;
}
