//! Messages that must not stop or poison a partition, published to real NATS and applied by the
//! worker's `run` into real PostgreSQL:
//! - a message PostgreSQL refuses goes to the dead letters with the database's reason while
//!   every other message of its partition (other guilds too) is applied, without re-claiming;
//! - a clock from the future, and a guild state saved ahead of time by an earlier version,
//!   cannot leave a guild's later joins unknown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use invitrack_attribution::{
    DeliveryClock, EngineConfig, GuildAttribution, InviteInfo, Observation,
};
use invitrack_bus::proto::{self, guild_event::Kind};
use invitrack_bus::{Bus, BusConfig, GuildEvent, publish_event};
use invitrack_model::time::now_millis;
use invitrack_model::{BotId, GuildId, GuildKey, InviteCode, UserId};
use invitrack_storage::progress::{self, GuildStateRow};
use invitrack_storage::schema::{joins, partition_progress};
use invitrack_testkit::{TestDatabase, eventually};
use invitrack_worker::{WorkerConfig, WorkerStats};
use tokio_util::sync::CancellationToken;

const BOT: u64 = 7;
const GUILD_A: u64 = 81_384_788_765_712_384;
const GUILD_B: u64 = 81_384_788_765_712_385;
const INVITER: u64 = 42;
/// The member PostgreSQL refuses (a trigger stands for a value no check at decoding foresaw).
const POISON: u64 = 666;

fn event(guild_id: u64, observed_at_ms: i64, kind: Kind) -> GuildEvent {
    GuildEvent {
        bot_id: BOT,
        guild_id,
        observed_at_ms,
        shard_id: 0,
        kind: Some(kind),
    }
}

fn snapshot(requested_at_ms: i64, uses: u64) -> Kind {
    Kind::InviteSnapshot(proto::InviteSnapshot {
        requested_at_ms,
        received_at_ms: requested_at_ms + 100,
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

/// Ingest's clock at `at_ms` for the one partition and shard of these tests.
fn clock(at_ms: i64) -> GuildEvent {
    event(
        0,
        at_ms,
        Kind::ShardClock(proto::ShardClock {
            partition: 0,
            shard_total: 1,
            first_shard: 0,
            last_shard: 0,
            delivery_lag_ms: None,
        }),
    )
}

struct Stack {
    database: TestDatabase,
    bus: BusConfig,
    connected: Bus,
    stats: Arc<WorkerStats>,
    shutdown: CancellationToken,
    worker: tokio::task::JoinHandle<Result<(), invitrack_worker::WorkerError>>,
}

impl Stack {
    async fn start(name: &str) -> Self {
        let database = TestDatabase::new(&format!("invitrack_{name}"));
        invitrack_storage::prepare_database(&database.url())
            .await
            .expect("the test database is created and migrated");
        let bus = BusConfig {
            nats_url: invitrack_testkit::nats_url(),
            bus_prefix: invitrack_testkit::unique(name),
            bus_partitions: 1,
            bus_max_age_hours: 1,
            ..BusConfig::default()
        };
        let connected = bus.connect().await.expect("NATS with JetStream is up");
        let mut stack = Self {
            database,
            bus,
            connected,
            stats: Arc::default(),
            shutdown: CancellationToken::new(),
            worker: tokio::spawn(async { Ok(()) }),
        };
        stack.start_worker();
        stack
    }

    fn start_worker(&mut self) {
        let mut config = WorkerConfig::new(self.database.url(), self.bus.clone());
        config.tick_ms = 50;
        self.shutdown = CancellationToken::new();
        self.worker = tokio::spawn(invitrack_worker::run_with_stats(
            config,
            self.shutdown.clone(),
            Arc::clone(&self.stats),
        ));
    }

    async fn stop_worker(&mut self) {
        self.shutdown.cancel();
        let _ = (&mut self.worker).await;
    }

    async fn publish(&self, events: &[GuildEvent]) {
        for e in events {
            let id = format!("{}-{}-{:?}", e.observed_at_ms, e.guild_id, e.kind);
            publish_event(&self.connected.jetstream, &self.connected.layout, e, &id)
                .await
                .expect("published")
                .await
                .expect("stored");
        }
    }

    async fn conn(&self) -> AsyncPgConnection {
        invitrack_storage::connect(&self.database.url())
            .await
            .expect("the test database is reachable")
    }

    async fn finish(mut self) {
        self.stop_worker().await;
        invitrack_bus::delete_streams(&self.connected.jetstream, &self.connected.layout).await;
    }
}

/// `(member_id, source, invite_code)` of every decided join.
async fn decided(conn: &mut AsyncPgConnection) -> Vec<(i64, String, Option<String>)> {
    joins::table
        .select((joins::member_id, joins::source, joins::invite_code))
        .order(joins::member_id)
        .load(conn)
        .await
        .expect("joins are readable")
}

/// The decided joins once there are `count` of them (30 s at most).
async fn decided_at_least(
    conn: &mut AsyncPgConnection,
    count: usize,
) -> Vec<(i64, String, Option<String>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = decided(conn).await;
        if rows.len() >= count {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {count} joins decided: {rows:?}",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_message_the_database_refuses_is_dead_lettered_and_the_partition_goes_on() {
    let stack = Stack::start("poison").await;
    let mut conn = stack.conn().await;
    for statement in [
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'member % is poison', NEW.member_id; END $$",
        "CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON members FOR EACH ROW \
         WHEN (NEW.member_id = 666) EXECUTE FUNCTION refuse_poison()",
    ] {
        diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .expect("the trigger is created");
    }

    // Two guilds of one partition, a minute ago: a baseline each, then joins one at a time,
    // each read by a snapshot; the poison member joins guild A in the middle of them.
    let t0 = now_millis() - 60_000;
    let mut events = vec![
        event(GUILD_A, t0, snapshot(t0 - 200, 0)),
        event(GUILD_B, t0, snapshot(t0 - 200, 0)),
    ];
    let mut uses = [0, 0];
    let mut good = Vec::new();
    for n in 0..20_u64 {
        let at = t0 + 1_000 + i64::try_from(n).expect("small") * 1_000;
        let (guild, side) = if n % 2 == 0 {
            (GUILD_A, 0)
        } else {
            (GUILD_B, 1)
        };
        let member = 5_000_000_000 + n;
        if n == 10 {
            // The poison member takes a use of guild A's code, read on its own.
            events.push(event(GUILD_A, at + 400, join(POISON, at + 300)));
            uses[0] += 1;
            events.push(event(GUILD_A, at + 700, snapshot(at + 600, uses[0])));
            // What once stopped partitions for good: a code PostgreSQL's JSONB refuses (a NUL)
            // and a join time out of PostgreSQL's range. Caught when decoded.
            events.push(event(
                GUILD_B,
                at + 750,
                Kind::InviteCreate(proto::InviteCreate {
                    invite: Some(proto::Invite {
                        code: "nul\0code".into(),
                        inviter_id: INVITER,
                        channel_id: 1,
                        created_at_ms: at,
                        ..proto::Invite::default()
                    }),
                }),
            ));
            events.push(event(GUILD_B, at + 800, join(777, -1_000_000_000_000_000)));
        }
        events.push(event(guild, at + 100, join(member, at)));
        uses[side] += 1;
        events.push(event(guild, at + 300, snapshot(at + 200, uses[side])));
        good.push(i64::try_from(member).expect("small"));
    }
    events.push(clock(now_millis()));
    stack.publish(&events).await;

    let rows = decided_at_least(&mut conn, good.len()).await;
    let members: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(members, good, "every join but the refused one is applied");
    for (member, source, code) in &rows {
        assert_eq!(
            (source.as_str(), code.as_deref()),
            ("invite", Some("code")),
            "member {member}"
        );
    }

    // Three dead letters, in stream order: the refused message with the database's reason,
    // then the two caught when decoded.
    assert_eq!(
        AtomicU64::load(&stack.stats.dead_letters, Ordering::Relaxed),
        3
    );
    let dead_letters = stack
        .connected
        .jetstream
        .get_stream(stack.connected.layout.dead_letter_stream())
        .await
        .expect("the dead-letter stream exists");
    let mut reasons = Vec::new();
    for sequence in 1..=3 {
        let dead = dead_letters
            .get_raw_message(sequence)
            .await
            .expect("a dead letter");
        let reason = dead
            .headers
            .get("Invitrack-Reason")
            .expect("a reason")
            .to_string();
        let original = invitrack_bus::decode_event(&dead.payload).expect("the original message");
        reasons.push((reason, original.kind));
    }
    assert!(
        reasons[0].0.contains("refused by the database")
            && reasons[0].0.contains("member 666 is poison"),
        "{reasons:?}"
    );
    assert!(matches!(&reasons[0].1, Some(Kind::MemberAdd(add)) if add.user_id == POISON));
    assert!(reasons[1].0.contains("invite code"), "{reasons:?}");
    assert!(reasons[2].0.contains("time out of range"), "{reasons:?}");

    // The partition was never given up and claimed again for it.
    let epoch: i64 = partition_progress::table
        .select(partition_progress::epoch)
        .first(&mut conn)
        .await
        .expect("the partition's progress");
    assert_eq!(epoch, 1, "the partition was re-claimed");

    // And it goes on with later events.
    let later = now_millis();
    stack
        .publish(&[
            event(GUILD_B, later + 100, join(6_000_000_000, later)),
            event(GUILD_B, later + 300, snapshot(later + 200, uses[1] + 1)),
            clock(later + 5_000),
        ])
        .await;
    decided_at_least(&mut conn, good.len() + 1).await;
    drop(conn);
    stack.finish().await;
}

#[tokio::test]
async fn neither_a_clock_from_the_future_nor_a_state_saved_ahead_leaves_joins_unknown() {
    let mut stack = Stack::start("future").await;
    let hour = 3_600_000;
    let t0 = now_millis() - 60_000;
    let code = || InviteInfo {
        code: InviteCode::parse("code").expect("valid"),
        inviter_id: Some(UserId::new(INVITER)),
        uses: 0,
        max_uses: 0,
        created_at: t0 - hour,
        expires_at: None,
    };

    // Guild A's state as a version that trusted every clock saved it: read once, then an hour
    // ahead.
    let mut poisoned = GuildAttribution::new();
    let config = EngineConfig::default();
    poisoned.observe(
        &config,
        Observation::Snapshot {
            requested_at: t0 - 200,
            received_at: t0 - 100,
            invites: vec![code()],
            vanity: None,
        },
        t0,
    );
    poisoned.tick(
        &config,
        DeliveryClock {
            now: now_millis() + hour,
            delivery_lag: None,
        },
    );
    let guild_a = GuildKey::new(BotId::new(BOT), GuildId::new(GUILD_A));
    let mut conn = stack.conn().await;
    progress::save_guild_states(
        &mut conn,
        &[(
            guild_a,
            GuildStateRow {
                state: serde_json::to_value(&poisoned).expect("serializable"),
                pending_joins: 0,
                missing_permissions: false,
                last_snapshot_at: None,
            },
        )],
    )
    .await
    .expect("saved");

    // Guild B: a baseline, then a clock an hour ahead (forged, or a host whose clock stepped).
    stack
        .publish(&[
            event(GUILD_B, t0, snapshot(t0 - 200, 0)),
            clock(now_millis() + hour),
        ])
        .await;
    eventually(Duration::from_secs(30), "the clock applied", async || {
        (AtomicU64::load(&stack.stats.times_clamped, Ordering::Relaxed) >= 1).then_some(())
    })
    .await;
    // A restart: what a worker keeps is what it saved.
    stack.stop_worker().await;
    stack.start_worker();

    let at = now_millis() - 5_000;
    stack
        .publish(&[
            event(GUILD_A, at + 100, join(5_000_000_001, at)),
            event(GUILD_A, at + 300, snapshot(at + 200, 1)),
            event(GUILD_B, at + 100, join(5_000_000_002, at)),
            event(GUILD_B, at + 300, snapshot(at + 200, 1)),
            clock(now_millis()),
        ])
        .await;
    let rows = decided_at_least(&mut conn, 2).await;
    for (member, source, code) in &rows {
        assert_eq!(
            (source.as_str(), code.as_deref()),
            ("invite", Some("code")),
            "member {member} left without evidence"
        );
    }
    drop(conn);
    stack.finish().await;
}
