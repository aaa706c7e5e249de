//! Time passes for undecided joins by ingest's clock, never by the worker's: a join that is
//! still on its way (buffered in ingest while NATS was away, or not yet read by a worker
//! catching up) must not be overtaken by a decision it would have changed.
//!
//! Real NATS and PostgreSQL; the stream is published by hand so that the worker reads it
//! long after the events happened, as a worker catching up does.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use invitrack_bus::proto::{self, guild_event::Kind};
use invitrack_bus::{BusConfig, GuildEvent, publish_event};
use invitrack_model::time::now_millis;
use invitrack_storage::schema::joins;
use invitrack_testkit::TestDatabase;
use invitrack_worker::WorkerConfig;
use tokio_util::sync::CancellationToken;

const BOT: u64 = 7;
const GUILD: u64 = 81_384_788_765_712_384;
const INVITER: u64 = 42;
/// Joins through no invite (untracked) and through `code`.
const UNTRACKED_MEMBER: u64 = 5_000_000_001;
const INVITED_MEMBER: u64 = 5_000_000_002;

fn event(observed_at_ms: i64, kind: Kind) -> GuildEvent {
    GuildEvent {
        bot_id: BOT,
        guild_id: GUILD,
        observed_at_ms,
        shard_id: 0,
        kind: Some(kind),
    }
}

fn snapshot(requested_at_ms: i64, received_at_ms: i64, uses: u64) -> Kind {
    Kind::InviteSnapshot(proto::InviteSnapshot {
        requested_at_ms,
        received_at_ms,
        invites: vec![proto::Invite {
            code: "code".into(),
            inviter_id: INVITER,
            uses,
            channel_id: 1,
            created_at_ms: requested_at_ms - 3_600_000,
            ..proto::Invite::default()
        }],
        vanity: None,
    })
}

fn join(user_id: u64, joined_at_ms: i64) -> Kind {
    Kind::MemberAdd(proto::MemberAdd {
        user_id,
        joined_at_ms,
        has_avatar: true,
        bot: false,
        flags: 0,
    })
}

fn clock(partition: u32) -> Kind {
    measured_clock(partition, None)
}

/// Ingest's clock with the delivery lag it measured for the shard.
fn measured_clock(partition: u32, delivery_lag_ms: Option<i64>) -> Kind {
    Kind::ShardClock(proto::ShardClock {
        partition,
        shard_total: 1,
        first_shard: 0,
        last_shard: 0,
        delivery_lag_ms,
    })
}

/// `(member_id, source, invite_code, inviter_id)` of every decided join.
type Decided = (i64, String, Option<String>, Option<i64>);

async fn decided(conn: &mut diesel_async::AsyncPgConnection) -> Vec<Decided> {
    joins::table
        .select((
            joins::member_id,
            joins::source,
            joins::invite_code,
            joins::inviter_id,
        ))
        .order(joins::member_id)
        .load(conn)
        .await
        .expect("joins are readable")
}

/// A database and a one-partition bus of this test's own.
struct Setup {
    database: TestDatabase,
    bus: BusConfig,
    connected: invitrack_bus::Bus,
}

async fn setup(name: &str) -> Setup {
    let database = TestDatabase::new(&format!("invitrack_{name}"));
    let bus = BusConfig {
        nats_url: invitrack_testkit::nats_url(),
        bus_prefix: invitrack_testkit::unique(&name.replace('_', "-")),
        bus_partitions: 1,
        bus_max_age_hours: 1,
        ..BusConfig::default()
    };
    let connected = bus.connect().await.expect("NATS with JetStream is up");
    Setup {
        database,
        bus,
        connected,
    }
}

/// A worker on a test's database and bus, and a connection to read what it decides.
struct RunningWorker {
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), invitrack_worker::WorkerError>>,
    conn: diesel_async::AsyncPgConnection,
}

impl Setup {
    /// Migrates the database (so the joins can be read at once) and starts a worker ticking
    /// every 50 ms.
    async fn start_worker(&self) -> RunningWorker {
        let database_url = self.database.url();
        invitrack_storage::prepare_database(&database_url)
            .await
            .expect("database");
        let shutdown = CancellationToken::new();
        let mut config = WorkerConfig::new(database_url.clone(), self.bus.clone());
        config.tick_ms = 50;
        let handle = tokio::spawn(invitrack_worker::run(config, shutdown.clone()));
        let conn = invitrack_storage::connect(&database_url)
            .await
            .expect("database reachable");
        RunningWorker {
            shutdown,
            handle,
            conn,
        }
    }

    /// Stops the worker and deletes the test's streams.
    async fn stop(&self, worker: RunningWorker) {
        worker.shutdown.cancel();
        let _ = worker.handle.await;
        invitrack_bus::delete_streams(&self.connected.jetstream, &self.connected.layout).await;
    }

    /// Publishes `events` in order, each stored before the next leaves.
    async fn publish(&self, events: &[GuildEvent]) {
        for (n, e) in events.iter().enumerate() {
            let id = format!("{}-{n}-{}", e.observed_at_ms, e.guild_id);
            publish_event(&self.connected.jetstream, &self.connected.layout, e, &id)
                .await
                .expect("published")
                .await
                .expect("stored");
        }
    }
}

#[tokio::test]
async fn a_join_still_on_its_way_is_not_overtaken_by_the_workers_clock() {
    let test = setup("clock").await;

    // A minute ago: a baseline, an untracked join, then a read showing one use of `code`. The
    // member who used `code` joined just after the untracked one, but their GUILD_MEMBER_ADD
    // is still on its way (within the gateway's lag), so the read looks explained by the
    // untracked member alone.
    let t0 = now_millis() - 60_000;
    test.publish(&[
        event(t0, snapshot(t0 - 200, t0, 0)),
        event(t0 + 1_100, join(UNTRACKED_MEMBER, t0 + 1_000)),
        event(t0 + 1_400, snapshot(t0 + 1_200, t0 + 1_400, 1)),
    ])
    .await;

    let mut worker = test.start_worker().await;
    let conn = &mut worker.conn;
    // The worker's own clock is a minute past the read: with it, the untracked join would be
    // credited to `code` on the first tick. Many ticks go by.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        decided(conn).await,
        vec![],
        "nothing may be decided before ingest's clock says the stream is complete"
    );

    // The invited member's join arrives, a later read settles it, and ingest's clock follows.
    test.publish(&[
        event(t0 + 2_500, join(INVITED_MEMBER, t0 + 1_050)),
        event(t0 + 2_800, snapshot(t0 + 2_600, t0 + 2_800, 1)),
        GuildEvent {
            guild_id: 0,
            ..event(now_millis(), clock(0))
        },
    ])
    .await;
    let rows = decided_when(conn, |rows| rows.len() == 2).await;
    test.stop(worker).await;

    // One use, two joins that could have made it: neither may be credited with the code, nor
    // with its inviter (one of them came through no invite).
    let members: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(
        members,
        vec![UNTRACKED_MEMBER as i64, INVITED_MEMBER as i64],
        "both joins decided once ingest's clock passed them: {rows:?}"
    );
    for (member, source, code, inviter) in &rows {
        assert!(
            source != "invite" && code.is_none() && inviter.is_none(),
            "member {member} credited: {source} {code:?} {inviter:?}"
        );
    }
}

/// Decided joins once `until` holds of them, or after 30 s.
async fn decided_when(
    conn: &mut diesel_async::AsyncPgConnection,
    until: impl Fn(&[Decided]) -> bool,
) -> Vec<Decided> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = decided(conn).await;
        if until(&rows) || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_measured_lag_decides_sooner_and_a_shard_away_stops_time() {
    let test = setup("clock_measured").await;
    let ingest_clock = |at: i64, lag: Option<i64>| GuildEvent {
        guild_id: 0,
        ..event(at, measured_clock(0, lag))
    };

    let mut worker = test.start_worker().await;
    let conn = &mut worker.conn;

    // A join read 400 ms after it, and a shard whose joins arrive within 100 ms: the
    // allowance is the 250 ms floor, so the join is decided 300 ms after the read was answered
    // (the fixed 2 s allowance would wait until 2,050 ms after).
    let t0 = now_millis() - 60_000;
    test.publish(&[
        event(t0, snapshot(t0 - 200, t0, 0)),
        event(t0 + 1_100, join(INVITED_MEMBER, t0 + 1_000)),
        event(t0 + 1_400, snapshot(t0 + 1_200, t0 + 1_400, 1)),
        ingest_clock(t0 + 1_650, Some(100)),
    ])
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(decided(conn).await, vec![], "within the allowance");
    test.publish(&[ingest_clock(t0 + 1_800, Some(100))]).await;
    let rows = decided_when(conn, |rows| !rows.is_empty()).await;
    assert_eq!(
        rows,
        vec![(
            INVITED_MEMBER as i64,
            "invite".to_owned(),
            Some("code".to_owned()),
            Some(INVITER as i64)
        )]
    );

    // The shard drops between a join and its GUILD_MEMBER_ADD: ingest sends it no clock until
    // its session resumed and replayed that join. A read answered meanwhile, seconds later,
    // does not let time pass: the untracked join beside it is not credited with the use.
    test.publish(&[
        event(t0 + 5_100, join(UNTRACKED_MEMBER, t0 + 5_000)),
        event(t0 + 5_400, snapshot(t0 + 5_200, t0 + 5_400, 2)),
        event(t0 + 9_400, snapshot(t0 + 9_200, t0 + 9_400, 2)),
    ])
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(decided(conn).await.len(), 1, "time stood still");
    let replayed_member = INVITED_MEMBER + 10;
    test.publish(&[
        event(t0 + 10_000, join(replayed_member, t0 + 5_050)),
        ingest_clock(t0 + 10_100, Some(100)),
    ])
    .await;
    let rows = decided_when(conn, |rows| rows.len() == 3).await;
    test.stop(worker).await;
    let after_resume: Vec<&Decided> = rows
        .iter()
        .filter(|r| r.0 != INVITED_MEMBER as i64)
        .collect();
    assert_eq!(
        after_resume.len(),
        2,
        "both decided after the resume: {rows:?}"
    );
    for (member, source, code, inviter) in after_resume {
        assert!(
            source != "invite" && code.is_none() && inviter.is_none(),
            "member {member} credited: {source} {code:?} {inviter:?}"
        );
    }
}

#[tokio::test]
async fn a_worker_catching_up_lets_time_pass_at_each_clock_in_the_stream() {
    let test = setup("clock_catch_up").await;
    let ingest_clock = |at: i64| GuildEvent {
        guild_id: 0,
        ..event(at, measured_clock(0, Some(100)))
    };
    // A minute of history, read by a worker started afterwards, in one batch: a join, its read
    // and a clock past it; the member leaves and joins again. Live, the first join was decided
    // at that clock, before the rejoin; so it must be when catching up, or the rejoin would
    // look like a replay of a join still pending.
    let t0 = now_millis() - 60_000;
    let events = [
        event(t0, snapshot(t0 - 200, t0, 0)),
        event(t0 + 1_100, join(INVITED_MEMBER, t0 + 1_000)),
        event(t0 + 1_400, snapshot(t0 + 1_200, t0 + 1_400, 1)),
        ingest_clock(t0 + 2_000),
        event(
            t0 + 5_000,
            Kind::MemberRemove(proto::MemberRemove {
                user_id: INVITED_MEMBER,
            }),
        ),
        event(t0 + 8_100, join(INVITED_MEMBER, t0 + 8_000)),
        event(t0 + 8_400, snapshot(t0 + 8_200, t0 + 8_400, 1)),
        ingest_clock(now_millis()),
    ];
    test.publish(&events).await;

    let mut worker = test.start_worker().await;
    let conn = &mut worker.conn;
    let mut rows = decided_when(conn, |rows| rows.len() == 2).await;
    // Both rows are the one member's: in the order of their sources.
    rows.sort();
    test.stop(worker).await;
    assert_eq!(
        rows,
        vec![
            (
                INVITED_MEMBER as i64,
                "invite".to_owned(),
                Some("code".to_owned()),
                Some(INVITER as i64)
            ),
            (INVITED_MEMBER as i64, "unknown".to_owned(), None, None),
        ],
        "the join credited, the rejoin (no use) unknown"
    );
}
