//! The decision stream (`docs/decisions.md`): every join the worker stores and every leave it
//! sees is published once, in order, with the inviter's counts right after it. Real NATS and
//! PostgreSQL; the worker's `run`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use invitrack_bus::proto::{self, decision, guild_event::Kind};
use invitrack_bus::{BusConfig, GuildEvent, publish_event};
use invitrack_model::time::now_millis;
use invitrack_testkit::TestDatabase;
use invitrack_worker::{WorkerConfig, WorkerStats};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

mod support;

use support::{ALICE, BOB, BOT, GUILD, INVITER, event, join, snapshot};

#[tokio::test]
async fn each_join_and_leave_is_published_once_in_order_with_the_counts_after_it() {
    let database = TestDatabase::new("invitrack_decisions");
    let bus = BusConfig {
        nats_url: invitrack_testkit::nats_url(),
        bus_prefix: invitrack_testkit::unique("decisions"),
        bus_partitions: 2,
        bus_max_age_hours: 1,
        ..BusConfig::default()
    };
    let connected = bus.connect().await.expect("NATS with JetStream is up");
    let stats = Arc::new(WorkerStats::default());
    let shutdown = CancellationToken::new();
    let mut config = WorkerConfig::new(database.url(), bus.clone());
    config.tick_ms = 50;
    let worker = tokio::spawn(invitrack_worker::run_with_stats(
        config,
        shutdown.clone(),
        Arc::clone(&stats),
    ));

    // Alice joins through the code, then Bob; Alice leaves. Then ingest's clock passes them.
    let t0 = now_millis() - 60_000;
    let partition = connected
        .layout
        .partition_of(invitrack_model::GuildKey::new(
            invitrack_model::BotId::new(BOT),
            invitrack_model::GuildId::new(GUILD),
        ));
    let clock = |at| GuildEvent {
        guild_id: 0,
        ..event(
            at,
            Kind::ShardClock(proto::ShardClock {
                partition,
                shard_total: 1,
                first_shard: 0,
                last_shard: 0,
                delivery_lag_ms: None,
            }),
        )
    };
    let publish = async |events: &[GuildEvent], first: usize| {
        for (n, e) in events.iter().enumerate() {
            let id = format!("e{}", first + n);
            publish_event(&connected.jetstream, &connected.layout, e, &id)
                .await
                .expect("published")
                .await
                .expect("stored");
        }
    };
    let published = |count| {
        let stats = Arc::clone(&stats);
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while stats
                .decisions_published
                .load(std::sync::atomic::Ordering::Relaxed)
                < count
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "decisions not published"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    // Only ingest's clock lets time pass: Alice's join is decided at the first clock, which
    // Bob's join and Alice's leave come after.
    publish(
        &[
            event(t0, snapshot(t0 - 200, 0)),
            event(t0 + 1_100, join(ALICE, t0 + 1_000)),
            event(t0 + 1_400, snapshot(t0 + 1_200, 1)),
            clock(t0 + 4_000),
        ],
        0,
    )
    .await;
    published(1).await;
    publish(
        &[
            event(t0 + 5_100, join(BOB, t0 + 5_000)),
            event(t0 + 5_400, snapshot(t0 + 5_200, 2)),
            event(
                t0 + 9_000,
                Kind::MemberRemove(proto::MemberRemove { user_id: ALICE }),
            ),
            clock(now_millis()),
        ],
        4,
    )
    .await;

    let stream = connected
        .jetstream
        .get_stream(connected.layout.decision_stream())
        .await
        .expect("the decision stream exists");
    published(3).await;
    // Nothing more comes: the leave and the two joins, no copies.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let info = stream.get_info().await.expect("stream info");
    assert_eq!(info.state.messages, 3, "{info:?}");
    let mut decisions = Vec::new();
    for sequence in 1..=3 {
        let stored = stream.get_raw_message(sequence).await.expect("a decision");
        assert_eq!(
            stored.subject.as_str(),
            format!("{}.decision.{partition}.{BOT}.{GUILD}", bus.bus_prefix)
        );
        let message = proto::Decision::decode(stored.payload).expect("a Decision");
        let id_header = stored
            .headers
            .get("Nats-Msg-Id")
            .map(ToString::to_string)
            .expect("a message id");
        assert_eq!(id_header, format!("decision:{}", message.id));
        decisions.push(message);
    }
    assert!(
        decisions.windows(2).all(|w| w[0].id < w[1].id),
        "ids grow in stream order"
    );

    let counts = |total, leaves| proto::InviterCounts {
        total,
        fake: 0,
        leaves,
        bonus: 0,
        real: total - leaves,
    };
    match &decisions[0].kind {
        Some(decision::Kind::Join(join)) => {
            assert_eq!(decisions[0].member_id, ALICE);
            assert_eq!(
                (join.source.as_str(), join.code.as_str(), join.inviter_id),
                ("invite", "code", INVITER)
            );
            assert_eq!(join.inviter_counts, Some(counts(1, 0)), "after Alice");
        }
        other => panic!("Alice's join first, got {other:?}"),
    }
    // Alice's leave is seen before Bob's join is decided (it waits for ingest's clock): the
    // stream is in the order of the decisions.
    match &decisions[1].kind {
        Some(decision::Kind::Leave(leave)) => {
            assert_eq!(decisions[1].member_id, ALICE);
            assert_eq!(leave.inviter_id, INVITER);
            assert_eq!(leave.joined_at_ms, t0 + 1_000);
            assert_eq!(leave.inviter_counts, Some(counts(1, 1)), "after Alice left");
        }
        other => panic!("Alice's leave second, got {other:?}"),
    }
    match &decisions[2].kind {
        Some(decision::Kind::Join(join)) => {
            assert_eq!(decisions[2].member_id, BOB);
            assert_eq!(join.inviter_counts, Some(counts(2, 1)), "after Bob");
        }
        other => panic!("Bob's join last, got {other:?}"),
    }

    // A consumer of the stream sees the same (the documented integration point).
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let first = messages.next().await.expect("a message").expect("readable");
    assert_eq!(
        proto::Decision::decode(first.payload.clone())
            .expect("a Decision")
            .id,
        decisions[0].id
    );

    shutdown.cancel();
    let _ = worker.await;
    invitrack_bus::delete_streams(&connected.jetstream, &connected.layout).await;
}
