//! Crash tests with real processes: our own nats-server and PostgreSQL cluster on free ports,
//! three `invitrack-worker` processes, and in the middle of the stream: `kill -9` of a worker,
//! a new worker, a NATS restart and a PostgreSQL crash-restart. At the end the database must
//! hold exactly what the events imply: every join once, counters equal to a recount from the
//! join rows, the leaves, and every partition caught up.
//!
//! - `synthetic_stream_survives_crashes`: 101,000 events of a deterministic stream whose
//!   joins and leaves are known in advance (publishing them through the simulator would take
//!   far longer than a CI test may).
//! - `simulated_guilds_survive_crashes`: a smaller run from the simulator through real ingest
//!   (twilight), compared with the simulator's ground truth.
//!
//! - `replicated_bus_survives_a_node_crash`: the simulator through ingest and two workers over
//!   three clustered nats-servers (`BUS_REPLICAS=3`, `NATS_URL` listing all three); the leader
//!   of a partition stream is killed mid-workload and restarted.
//! - `nats_outage_longer_than_the_duplicate_window`: NATS down for five duplicate windows while
//!   ingest buffers, then back; events published again after the window (as ingest does when
//!   the acknowledgement of a stored event was lost) are stored twice and applied once.
//!
//! `INVITRACK_KEEP_TEST_DIRS=1` keeps the processes' logs. Both skip, saying why, when `nats-server` or PostgreSQL's `initdb` is not installed.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use invitrack_bus::proto::{self, guild_event::Kind};
use invitrack_bus::{BusConfig, GuildEvent};
use invitrack_sim::JoinTruth;
use invitrack_storage::schema::{inviter_counts, joins, partition_progress};
use invitrack_testkit::{NatsServer, PostgresCluster, TempDir, tail};

const PARTITIONS: u32 = 8;
const BOT: u64 = 1;

/// The two tests each run a NATS server, a PostgreSQL cluster and several processes: one at a
/// time is enough for a 2-core CI machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn missing_tools() -> Option<String> {
    if NatsServer::binary().is_none() {
        return Some("nats-server is not installed (PATH or NATS_SERVER_BIN)".into());
    }
    if PostgresCluster::bin_dir().is_none() {
        return Some("PostgreSQL's initdb is not installed (PG_BIN_DIR or pg_config)".into());
    }
    None
}

/// One `invitrack-worker` process, killed on drop.
struct WorkerProcess {
    child: Child,
    log: PathBuf,
}

impl WorkerProcess {
    fn spawn(dir: &Path, name: &str, database_url: &str, bus: &BusConfig) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("worker log");
        let child = Command::new(env!("CARGO_BIN_EXE_invitrack-worker"))
            .env("DATABASE_URL", database_url)
            .env("NATS_URL", &bus.nats_url)
            .env("BUS_PREFIX", &bus.bus_prefix)
            .env("BUS_PARTITIONS", bus.bus_partitions.to_string())
            .env("BUS_MAX_AGE_HOURS", "1")
            .env("BUS_REPLICAS", bus.bus_replicas.to_string())
            .env("BUS_MAX_BYTES", bus.bus_max_bytes.to_string())
            .env(
                "BUS_DUPLICATE_WINDOW_SECS",
                bus.bus_duplicate_window_secs.to_string(),
            )
            .env("WORKER_DB_CONNECTIONS", "3")
            .env("WORKER_TICK_MS", "200")
            .env("ATTRIBUTION_MAX_PENDING_MS", "15000")
            .env("RUST_LOG", "warn,invitrack_worker=info")
            .env("NO_COLOR", "1")
            // tracing writes to stdout: both go to the worker's log file.
            .stdout(file.try_clone().expect("worker log"))
            .stderr(file)
            .spawn()
            .expect("invitrack-worker starts");
        Self { child, log }
    }

    /// `kill -9`.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Everything a test runs, torn down in the right order on drop (workers, then the servers,
/// then the directory).
struct Cluster {
    workers: Vec<WorkerProcess>,
    pg: PostgresCluster,
    nats: NatsServer,
    dir: TempDir,
    database_url: String,
    bus: BusConfig,
}

impl Cluster {
    fn start(name: &str) -> Self {
        let dir = TempDir::new(name);
        let nats = NatsServer::start();
        let pg = PostgresCluster::start(dir.path());
        let database_url = pg.url("invitrack");
        let bus = BusConfig {
            nats_url: nats.url(),
            bus_prefix: format!("chaos-{name}"),
            bus_partitions: PARTITIONS,
            bus_max_age_hours: 1,
            ..BusConfig::default()
        };
        Self {
            workers: Vec::new(),
            pg,
            nats,
            dir,
            database_url,
            bus,
        }
    }

    fn spawn_worker(&mut self) {
        let name = format!("worker-{}", self.workers.len());
        self.workers.push(WorkerProcess::spawn(
            self.dir.path(),
            &name,
            &self.database_url,
            &self.bus,
        ));
    }

    fn worker_logs(&self) -> String {
        worker_logs(&self.workers)
    }

    async fn connect_db(&self) -> AsyncPgConnection {
        connect_db(&self.database_url).await
    }

    /// Waits until each partition's committed sequence reaches the last stream sequence of
    /// its events: no partition stalled.
    async fn wait_caught_up(&self, last_sequences: &BTreeMap<u32, u64>, within: Duration) {
        let deadline = Instant::now() + within;
        let mut last_print = Instant::now();
        loop {
            let mut conn = self.connect_db().await;
            let progress: HashMap<i32, i64> = partition_progress::table
                .select((
                    partition_progress::partition,
                    partition_progress::last_sequence,
                ))
                .load::<(i32, i64)>(&mut conn)
                .await
                .unwrap_or_default()
                .into_iter()
                .collect();
            let behind: Vec<(u32, u64, i64)> = last_sequences
                .iter()
                .filter_map(|(p, last)| {
                    let done = progress.get(&p.cast_signed()).copied().unwrap_or_default();
                    (done < last.cast_signed()).then_some((*p, *last, done))
                })
                .collect();
            if behind.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "partitions stalled (partition, last published, committed): {behind:?}\n{}",
                self.worker_logs()
            );
            if last_print.elapsed() > Duration::from_secs(10) {
                eprintln!("behind (partition, last, committed): {behind:?}");
                last_print = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Events of guild `g` in the synthetic stream: a baseline snapshot of its one invite, then
/// cycles of: A joins, snapshot (+1 use), B joins, A leaves, snapshot (+1 use), and a last
/// snapshot that only lets time pass (the engine settles a join once nothing observed later
/// can change it). Every join is explained by the invite, so the stream implies `2 × CYCLES`
/// joins and `CYCLES` leaves per guild, all credited to `INVITER`, none fake.
mod synthetic {
    use super::{BOT, GuildEvent, Kind, proto};

    pub const GUILDS: u64 = 500;
    pub const CYCLES: u64 = 40;
    pub const STEPS: u64 = 1 + 5 * CYCLES + 1;
    pub const INVITER: u64 = 42;
    pub const CODE: &str = "chaos";
    /// After every this many events, ingest's clock goes to every partition.
    pub const CLOCK_EVERY: u64 = 100;

    pub fn guild_id(g: u64) -> u64 {
        1_000_000 + g
    }

    /// Member A (`second` false) or B of a cycle: old accounts (the snowflakes are small).
    pub fn member_id(g: u64, cycle: u64, second: bool) -> u64 {
        5_000_000_000 + g * 1_000 + cycle * 2 + u64::from(second)
    }

    /// The `index`th event of the stream (steps go round every guild), happening at `t`.
    pub fn event(index: u64, base: i64) -> GuildEvent {
        let g = index % GUILDS;
        let step = index / GUILDS;
        let t = base + i64::try_from(index).unwrap_or(0) * 10;
        let kind = if step == 0 {
            snapshot(t, 0)
        } else if step == STEPS - 1 {
            snapshot(t, 2 * CYCLES)
        } else {
            let cycle = (step - 1) / 5;
            match (step - 1) % 5 {
                0 => add(member_id(g, cycle, false), t),
                1 => snapshot(t, 2 * cycle + 1),
                2 => add(member_id(g, cycle, true), t),
                3 => Kind::MemberRemove(proto::MemberRemove {
                    user_id: member_id(g, cycle, false),
                }),
                _ => snapshot(t, 2 * cycle + 2),
            }
        };
        GuildEvent {
            bot_id: BOT,
            guild_id: guild_id(g),
            observed_at_ms: t + 50,
            shard_id: 0,
            kind: Some(kind),
        }
    }

    /// Ingest's clock after event `index`, to `partition`: every event so far is in the stream.
    pub fn clock(index: u64, base: i64, partition: u32) -> GuildEvent {
        GuildEvent {
            bot_id: BOT,
            guild_id: 0,
            observed_at_ms: event(index, base).observed_at_ms + 1,
            shard_id: 0,
            kind: Some(Kind::ShardClock(proto::ShardClock {
                partition,
                shard_total: 1,
                first_shard: 0,
                last_shard: 0,
                delivery_lag_ms: None,
            })),
        }
    }

    fn add(user_id: u64, t: i64) -> Kind {
        Kind::MemberAdd(proto::MemberAdd {
            user_id,
            joined_at_ms: t,
            has_avatar: true,
            bot: false,
            flags: 0,
        })
    }

    fn snapshot(t: i64, uses: u64) -> Kind {
        Kind::InviteSnapshot(proto::InviteSnapshot {
            requested_at_ms: t + 150,
            received_at_ms: t + 300,
            invites: vec![proto::Invite {
                code: CODE.into(),
                inviter_id: INVITER,
                uses,
                max_uses: 0,
                max_age_secs: 0,
                temporary: false,
                created_at_ms: t - 1_000_000,
                expires_at_ms: 0,
                channel_id: 7,
            }],
            vanity: Some(proto::Vanity::default()),
        })
    }
}

/// Publishes events `range` of the synthetic stream, in order, each confirmed by JetStream.
/// Records the last stream sequence of each partition.
async fn publish_synthetic(
    bus: &invitrack_bus::Bus,
    range: std::ops::Range<u64>,
    base: i64,
    last_sequences: &mut BTreeMap<u32, u64>,
) {
    const CHUNK: u64 = 2_000;
    let mut start = range.start;
    while start < range.end {
        let end = (start + CHUNK).min(range.end);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match publish_chunk(bus, start..end, base).await {
                Ok(acks) => {
                    for (partition, sequence) in acks {
                        let last = last_sequences.entry(partition).or_default();
                        *last = (*last).max(sequence);
                    }
                    break;
                }
                // The same message ids again: JetStream drops what it already stored.
                Err(error) if attempt < 20 => {
                    eprintln!("publish failed ({error}); again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => panic!("cannot publish: {error}"),
            }
        }
        start = end;
    }
}

async fn publish_chunk(
    bus: &invitrack_bus::Bus,
    range: std::ops::Range<u64>,
    base: i64,
) -> Result<Vec<(u32, u64)>, String> {
    let mut pending = Vec::with_capacity(usize::try_from(range.end - range.start).unwrap_or(0));
    for index in range {
        let event = synthetic::event(index, base);
        let partition = bus.layout.partition_of(event.guild());
        let ack = invitrack_bus::publish_event(
            &bus.jetstream,
            &bus.layout,
            &event,
            &format!("chaos-{index}"),
        )
        .await
        .map_err(|e| e.to_string())?;
        pending.push((partition, ack));
        if index % synthetic::CLOCK_EVERY == synthetic::CLOCK_EVERY - 1 {
            for partition in 0..bus.layout.partitions() {
                let clock = synthetic::clock(index, base, partition);
                let ack = invitrack_bus::publish_event(
                    &bus.jetstream,
                    &bus.layout,
                    &clock,
                    &format!("chaos-clock-{index}-{partition}"),
                )
                .await
                .map_err(|e| e.to_string())?;
                pending.push((partition, ack));
            }
        }
    }
    let mut acks = Vec::with_capacity(pending.len());
    for (partition, ack) in pending {
        let ack = ack.await.map_err(|e| e.to_string())?;
        acks.push((partition, ack.sequence));
    }
    Ok(acks)
}

/// Connects to NATS, waiting for it (it may be restarting).
async fn connect_bus(config: &BusConfig) -> invitrack_bus::Bus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match config.connect().await {
            Ok(bus) => return bus,
            Err(error) if Instant::now() < deadline => {
                eprintln!("waiting for NATS: {error}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(error) => panic!("NATS unreachable: {error}"),
        }
    }
}

/// Asserts the invariants every run must keep whatever crashed: each membership's join
/// stored once, and every inviter's maintained counters equal to a recount from the join
/// rows.
async fn assert_joins_once_and_counters_recount(conn: &mut AsyncPgConnection) {
    #[derive(QueryableByName, Debug)]
    struct Doubled {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        doubled: i64,
    }
    let doubled: Doubled = diesel::sql_query(
        "SELECT count(*) AS doubled FROM (SELECT 1 FROM joins \
         GROUP BY bot_id, guild_id, member_id, created_at HAVING count(*) > 1) d",
    )
    .get_result(conn)
    .await
    .expect("doubled joins query");
    assert_eq!(doubled.doubled, 0, "joins stored twice");

    // docs/counting.md#inviter-counts: over joins not cleared, joins = rows, fake = rows with a reason, leaves =
    // left rows without one.
    let recount: Vec<(i64, i64, Option<i64>, i64, i64, i64)> = diesel::sql_query(
        "SELECT bot_id, guild_id, inviter_id, count(*) AS joins, \
           count(*) FILTER (WHERE fake <> 0) AS fake, \
           count(*) FILTER (WHERE fake = 0 AND has_left) AS leaves \
         FROM joins WHERE NOT cleared AND inviter_id IS NOT NULL \
         GROUP BY bot_id, guild_id, inviter_id ORDER BY 1, 2, 3",
    )
    .load::<Recount>(conn)
    .await
    .expect("recount")
    .into_iter()
    .map(|r| {
        (
            r.bot_id,
            r.guild_id,
            r.inviter_id,
            r.joins,
            r.fake,
            r.leaves,
        )
    })
    .collect();
    let maintained: Vec<(i64, i64, Option<i64>, i64, i64, i64)> = inviter_counts::table
        .filter(
            inviter_counts::joins
                .ne(0)
                .or(inviter_counts::fake.ne(0))
                .or(inviter_counts::leaves.ne(0)),
        )
        .order((
            inviter_counts::bot_id,
            inviter_counts::guild_id,
            inviter_counts::inviter_id,
        ))
        .select((
            inviter_counts::bot_id,
            inviter_counts::guild_id,
            inviter_counts::inviter_id.nullable(),
            inviter_counts::joins,
            inviter_counts::fake,
            inviter_counts::leaves,
        ))
        .load(conn)
        .await
        .expect("counters");
    assert_eq!(
        maintained.len(),
        recount.len(),
        "inviters with counters vs inviters with joins"
    );
    for (kept, counted) in maintained.iter().zip(&recount) {
        assert_eq!(
            kept, counted,
            "maintained counters (left) vs recount (right)"
        );
    }
}

/// `(guild, member, source, code, inviter, fake, has_left)` of a stored join.
type StoredJoin = (i64, i64, String, Option<String>, Option<i64>, i32, bool);

#[derive(QueryableByName)]
struct Recount {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    bot_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    guild_id: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    inviter_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    joins: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    fake: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    leaves: i64,
}

async fn dead_letters(bus: &invitrack_bus::Bus) -> u64 {
    match bus
        .jetstream
        .get_stream(bus.layout.dead_letter_stream())
        .await
    {
        Ok(mut stream) => stream.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_stream_survives_crashes() {
    if let Some(why) = missing_tools() {
        eprintln!("SKIPPED synthetic_stream_survives_crashes: {why}");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let mut cluster = Cluster::start("synthetic");
    // Migrate once up front, as an operator's first start would (workers migrate too, under a
    // lock; this only takes it off the clock).
    invitrack_storage::prepare_database(&cluster.database_url)
        .await
        .expect("database");
    let bus = connect_bus(&cluster.bus).await;
    for _ in 0..3 {
        cluster.spawn_worker();
    }
    // Event times end a minute ago (a worker clamps times ahead of its own clock). Time passes
    // for a guild only by the ShardClocks interleaved with the events, as ingest sends them, so
    // the outcome is the same however long the crashes last.
    let total = synthetic::GUILDS * synthetic::STEPS;
    let base =
        invitrack_model::time::now_millis() - i64::try_from(total).unwrap_or(0) * 10 - 60_000;
    let quarter = total / 4;
    let mut last_sequences = BTreeMap::new();

    publish_synthetic(&bus, 0..quarter, base, &mut last_sequences).await;
    eprintln!(
        "[{:>5.1} s] published {quarter}; kill -9 worker-0, start worker-3",
        started.elapsed().as_secs_f64()
    );
    cluster.workers[0].kill();
    cluster.spawn_worker();

    publish_synthetic(&bus, quarter..2 * quarter, base, &mut last_sequences).await;
    eprintln!(
        "[{:>5.1} s] published {}; restart NATS",
        started.elapsed().as_secs_f64(),
        2 * quarter
    );
    drop(bus);
    cluster.nats.restart();
    let bus = connect_bus(&cluster.bus).await;

    publish_synthetic(&bus, 2 * quarter..3 * quarter, base, &mut last_sequences).await;
    eprintln!(
        "[{:>5.1} s] published {}; crash-restart PostgreSQL",
        started.elapsed().as_secs_f64(),
        3 * quarter
    );
    cluster.pg.crash_restart();

    publish_synthetic(&bus, 3 * quarter..total, base, &mut last_sequences).await;
    eprintln!(
        "[{:>5.1} s] published all {total} events",
        started.elapsed().as_secs_f64()
    );
    cluster
        .wait_caught_up(&last_sequences, Duration::from_secs(240))
        .await;
    eprintln!(
        "[{:>5.1} s] every partition caught up",
        started.elapsed().as_secs_f64()
    );

    for (index, worker) in cluster.workers.iter_mut().enumerate().skip(1) {
        assert!(
            worker.is_running(),
            "worker-{index} exited:\n{}",
            tail(&worker.log, 30)
        );
    }
    let mut conn = cluster.connect_db().await;
    assert_joins_once_and_counters_recount(&mut conn).await;

    // Exactly the joins and leaves the stream implies.
    let rows: Vec<StoredJoin> = joins::table
        .select((
            joins::guild_id,
            joins::member_id,
            joins::source,
            joins::invite_code,
            joins::inviter_id,
            joins::fake,
            joins::has_left,
        ))
        .load(&mut conn)
        .await
        .expect("joins");
    let mut expected: HashMap<(i64, i64), bool> = HashMap::new();
    for g in 0..synthetic::GUILDS {
        for cycle in 0..synthetic::CYCLES {
            let guild = synthetic::guild_id(g).cast_signed();
            expected.insert(
                (guild, synthetic::member_id(g, cycle, false).cast_signed()),
                true,
            );
            expected.insert(
                (guild, synthetic::member_id(g, cycle, true).cast_signed()),
                false,
            );
        }
    }
    assert_eq!(
        rows.len(),
        expected.len(),
        "stored joins vs joins in the stream"
    );
    for (guild, member, source, code, inviter, fake, left) in &rows {
        let Some(should_have_left) = expected.remove(&(*guild, *member)) else {
            panic!("unexpected join of member {member} in guild {guild}");
        };
        assert_eq!(source, "invite", "member {member}");
        assert_eq!(code.as_deref(), Some(synthetic::CODE), "member {member}");
        assert_eq!(*inviter, Some(synthetic::INVITER.cast_signed()));
        assert_eq!(*fake, 0, "member {member}");
        assert_eq!(
            *left, should_have_left,
            "leave of member {member} in guild {guild}"
        );
    }
    assert!(
        expected.is_empty(),
        "joins never stored: {}",
        expected.len()
    );
    let per_guild: Vec<(i64, i64, i64)> = inviter_counts::table
        .select((
            inviter_counts::joins,
            inviter_counts::fake,
            inviter_counts::leaves,
        ))
        .load(&mut conn)
        .await
        .expect("counters");
    assert_eq!(
        per_guild.len(),
        usize::try_from(synthetic::GUILDS).unwrap_or(0)
    );
    let cycles = i64::try_from(synthetic::CYCLES).unwrap_or(0);
    assert!(
        per_guild.iter().all(|c| *c == (2 * cycles, 0, cycles)),
        "counters per guild"
    );
    let bus = connect_bus(&cluster.bus).await;
    assert_eq!(dead_letters(&bus).await, 0, "dead letters");

    // Every join and leave left on the decision stream exactly once, whatever crashed.
    let leaves = rows.iter().filter(|r| r.6).count();
    let published = published_decisions(&bus, rows.len() + leaves).await;
    assert_eq!(
        published.len(),
        rows.len() + leaves,
        "decisions on the stream: one per join and leave"
    );
    let mut unique = published.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), published.len(), "a decision published twice");
    eprintln!(
        "[{:>5.1} s] {total} events: {} joins once each, {leaves} leaves, counters = recount, \
         {} decisions published once each",
        started.elapsed().as_secs_f64(),
        rows.len(),
        published.len()
    );
}

/// `(kind, guild, member, joined_at)` of every decision on the stream, once `expected` are
/// there (or 60 s passed: the relays publish after their partitions' commits).
async fn published_decisions(
    bus: &invitrack_bus::Bus,
    expected: usize,
) -> Vec<(bool, u64, u64, i64)> {
    use invitrack_bus::proto::decision;
    use prost::Message as _;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stream = bus
        .jetstream
        .get_stream(bus.layout.decision_stream())
        .await
        .expect("the decision stream");
    loop {
        let stored = stream.info().await.expect("stream info").state.messages;
        if usize::try_from(stored).unwrap_or(0) >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let last = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    let mut published = Vec::new();
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await.expect("a decision");
        let decision = proto::Decision::decode(message.payload).expect("a Decision");
        let (is_join, joined_at) = match decision.kind {
            Some(decision::Kind::Join(join)) => (true, join.joined_at_ms),
            Some(decision::Kind::Leave(leave)) => (false, leave.joined_at_ms),
            None => panic!("a decision without its kind"),
        };
        published.push((is_join, decision.guild_id, decision.member_id, joined_at));
    }
    published
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simulated_guilds_survive_crashes() {
    use invitrack_sim::workload::WorkloadSpec;
    use invitrack_sim::{SimConfig, Simulator};

    if let Some(why) = missing_tools() {
        eprintln!("SKIPPED simulated_guilds_survive_crashes: {why}");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let mut cluster = Cluster::start("sim");
    invitrack_storage::prepare_database(&cluster.database_url)
        .await
        .expect("database");
    for _ in 0..3 {
        cluster.spawn_worker();
    }
    let sim = Simulator::start(SimConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let world = sim.world();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _stop_ingest = shutdown.clone().drop_guard();
    tokio::spawn(invitrack_ingest::run(
        invitrack_ingest::IngestConfig {
            discord_gateway_url: Some(sim.gateway_url()),
            discord_api_proxy: Some(sim.api_proxy()),
            ..invitrack_ingest::IngestConfig::new(
                SimConfig::default().bot_token,
                cluster.bus.clone(),
            )
        },
        shutdown.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while world.connected_sessions() == 0 {
        assert!(Instant::now() < deadline, "ingest never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let spec = WorkloadSpec {
        seed: 7,
        guilds: 12,
        duration_ms: 40_000,
        joins_per_sec: 0.8,
        leave_share: 0.3,
        leave_after_ms: [1_000, 15_000],
        rejoin_share: 0.3,
        rejoin_after_ms: [1_000, 10_000],
        ..WorkloadSpec::default()
    };
    let play = {
        let world = world.clone();
        tokio::spawn(async move { invitrack_sim::workload::run(&world, &spec, None).await })
    };
    tokio::time::sleep(Duration::from_secs(10)).await;
    eprintln!(
        "[{:>5.1} s] kill -9 worker-0, start worker-3",
        started.elapsed().as_secs_f64()
    );
    cluster.workers[0].kill();
    cluster.spawn_worker();
    tokio::time::sleep(Duration::from_secs(10)).await;
    eprintln!("[{:>5.1} s] restart NATS", started.elapsed().as_secs_f64());
    cluster.nats.restart();
    tokio::time::sleep(Duration::from_secs(10)).await;
    eprintln!(
        "[{:>5.1} s] crash-restart PostgreSQL",
        started.elapsed().as_secs_f64()
    );
    cluster.pg.crash_restart();
    let played = play.await.expect("workload task").expect("valid workload");
    assert_eq!(
        played.failed, 0,
        "workload steps failed: {:?}",
        played.errors
    );
    let truth = world.ground_truth();
    eprintln!(
        "[{:>5.1} s] workload played: {} joins, {} leaves",
        started.elapsed().as_secs_f64(),
        truth.len(),
        truth.iter().filter(|t| t.left_at.is_some()).count()
    );

    // Every join decided (the engine gives up on undecided ones after 15 s), every leave
    // applied, nothing pending. Worker 0 was killed on purpose: the others must still run.
    let expected_left = assert_stored_as_truth(
        &cluster.database_url,
        &mut cluster.workers[1..],
        &truth,
        Duration::from_secs(120),
        Duration::from_secs(2),
    )
    .await;
    let bus = connect_bus(&cluster.bus).await;
    assert_eq!(dead_letters(&bus).await, 0, "dead letters");
    eprintln!(
        "[{:>5.1} s] {} simulated joins stored once each, {} leaves, counters = recount",
        started.elapsed().as_secs_f64(),
        truth.len(),
        expected_left
    );
    shutdown.cancel();
    sim.stop().await;
}

/// Waits (at most `within`) until the database holds as many joins and leaves as the
/// simulator's ground truth, lets what is in flight land for `settle`, then checks: `workers`
/// still run, each join stored once with its leave, exactly the simulator's joins, counters equal
/// to a recount. The number of leaves.
async fn assert_stored_as_truth(
    database_url: &str,
    workers: &mut [WorkerProcess],
    truth: &[JoinTruth],
    within: Duration,
    settle: Duration,
) -> usize {
    let deadline = Instant::now() + within;
    let expected_left = truth.iter().filter(|t| t.left_at.is_some()).count();
    loop {
        let mut conn = connect_db(database_url).await;
        let stored: i64 = joins::table
            .count()
            .get_result(&mut conn)
            .await
            .unwrap_or(0);
        let left: i64 = joins::table
            .filter(joins::has_left.eq(true))
            .count()
            .get_result(&mut conn)
            .await
            .unwrap_or(0);
        if usize::try_from(stored).unwrap_or(0) >= truth.len()
            && usize::try_from(left).unwrap_or(0) >= expected_left
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "joins stored {stored}/{}, left {left}/{expected_left}\n{}",
            truth.len(),
            worker_logs(workers)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Let anything still in flight land, so a doubled effect would show.
    tokio::time::sleep(settle).await;
    for worker in workers.iter_mut() {
        assert!(
            worker.is_running(),
            "the worker of {} exited:\n{}",
            worker.log.display(),
            tail(&worker.log, 30)
        );
    }
    let mut conn = connect_db(database_url).await;
    assert_joins_once_and_counters_recount(&mut conn).await;
    let rows: Vec<(i64, i64, DateTime<Utc>, bool)> = joins::table
        .select((
            joins::guild_id,
            joins::member_id,
            joins::created_at,
            joins::has_left,
        ))
        .load(&mut conn)
        .await
        .expect("joins");
    let mut stored: HashMap<(u64, u64, i64), bool> = rows
        .iter()
        .map(|(g, m, at, left)| {
            (
                (g.cast_unsigned(), m.cast_unsigned(), at.timestamp_millis()),
                *left,
            )
        })
        .collect();
    assert_eq!(
        rows.len(),
        truth.len(),
        "stored joins vs the simulator's joins"
    );
    for t in truth {
        let key = (
            t.guild_id.get(),
            t.user_id.get(),
            t.joined_at.timestamp_millis(),
        );
        let Some(left) = stored.remove(&key) else {
            panic!(
                "join of {} in guild {} at {} not stored",
                t.user_id, t.guild_id, t.joined_at
            );
        };
        assert_eq!(
            left,
            t.left_at.is_some(),
            "leave of {} in guild {}",
            t.user_id,
            t.guild_id
        );
    }
    expected_left
}

fn worker_logs(workers: &[WorkerProcess]) -> String {
    workers
        .iter()
        .map(|w| format!("--- {}\n{}", w.log.display(), tail(&w.log, 15)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A connection to the test's database, waiting up to 30 s for a PostgreSQL that restarts.
async fn connect_db(database_url: &str) -> AsyncPgConnection {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match invitrack_storage::connect(database_url).await {
            Ok(conn) => return conn,
            Err(error) if Instant::now() < deadline => {
                eprintln!("waiting for PostgreSQL: {error}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(error) => panic!("PostgreSQL unreachable: {error}"),
        }
    }
}

/// Ingest (in this process), worker processes and the simulator over a bus of the test's own,
/// with a database of its own on the shared PostgreSQL: for the bus failure tests.
mod bus_failures {
    use std::collections::{HashMap, HashSet};
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use invitrack_bus::{BusConfig, EventKind};
    use invitrack_ingest::{IngestConfig, IngestMetrics};
    use invitrack_sim::workload::WorkloadSpec;
    use invitrack_sim::{JoinTruth, RunningSim, SimConfig, Simulator};
    use invitrack_testkit::{TempDir, TestDatabase};
    use tokio_util::sync::CancellationToken;

    use super::{
        WorkerProcess, assert_stored_as_truth, connect_bus, dead_letters, published_decisions,
    };

    pub struct Stack {
        pub workers: Vec<WorkerProcess>,
        pub sim: RunningSim,
        pub ingest: Arc<IngestMetrics>,
        pub shutdown: CancellationToken,
        pub database_url: String,
        pub bus: BusConfig,
        pub started: Instant,
        _database: TestDatabase,
        dir: TempDir,
    }

    impl Stack {
        /// Migrates a fresh database, starts two workers, the simulator and ingest, and waits
        /// until ingest's gateway session is up.
        pub async fn start(name: &str, bus: BusConfig) -> Self {
            let started = Instant::now();
            let dir = TempDir::new(name);
            let database = TestDatabase::new(&format!("invitrack_{name}"));
            let database_url = database.url();
            invitrack_storage::prepare_database(&database_url)
                .await
                .expect("database");
            let workers = (0..2)
                .map(|i| {
                    WorkerProcess::spawn(dir.path(), &format!("worker-{i}"), &database_url, &bus)
                })
                .collect();
            let sim = Simulator::start(SimConfig {
                bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                ..SimConfig::default()
            })
            .await
            .expect("simulator starts");
            let ingest = invitrack_ingest::Ingest::build(IngestConfig {
                discord_gateway_url: Some(sim.gateway_url()),
                discord_api_proxy: Some(sim.api_proxy()),
                ..IngestConfig::new(SimConfig::default().bot_token, bus.clone())
            })
            .await
            .expect("ingest starts");
            let metrics = ingest.metrics();
            let shutdown = CancellationToken::new();
            tokio::spawn(ingest.run(shutdown.clone()));
            let world = sim.world();
            let deadline = Instant::now() + Duration::from_secs(30);
            while world.connected_sessions() == 0 {
                assert!(Instant::now() < deadline, "ingest never connected");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Self {
                workers,
                sim,
                ingest: metrics,
                shutdown,
                database_url,
                bus,
                started,
                _database: database,
                dir,
            }
        }

        pub fn log(&self, what: &str) {
            eprintln!("[{:>5.1} s] {what}", self.started.elapsed().as_secs_f64());
        }

        /// Plays a workload of joins, leaves and rejoins in several guilds in the background.
        /// Leaves and rejoins come at least 5 s after the step before them.
        pub fn play(
            &self,
            seed: u64,
            duration_ms: u64,
        ) -> tokio::task::JoinHandle<invitrack_sim::scenario::RunReport> {
            let world = self.sim.world();
            let spec = WorkloadSpec {
                seed,
                guilds: 10,
                duration_ms,
                joins_per_sec: 0.8,
                leave_share: 0.3,
                leave_after_ms: [5_000, 15_000],
                rejoin_share: 0.3,
                rejoin_after_ms: [5_000, 10_000],
                ..WorkloadSpec::default()
            };
            tokio::spawn(async move {
                invitrack_sim::workload::run(&world, &spec, None)
                    .await
                    .expect("valid workload")
            })
        }

        /// Waits until the workload's every join and leave is stored (at most `within`), then
        /// checks: each join once, counters equal to a recount, exactly the simulator's joins
        /// and leaves, no dead letter, each join and leave published once on the decision
        /// stream, and both workers still running.
        pub async fn assert_ground_truth(&mut self, truth: &[JoinTruth], within: Duration) {
            let expected_left = assert_stored_as_truth(
                &self.database_url,
                &mut self.workers,
                truth,
                within,
                Duration::from_secs(3),
            )
            .await;
            let bus = connect_bus(&self.bus).await;
            assert_eq!(dead_letters(&bus).await, 0, "dead letters");
            let published = published_decisions(&bus, truth.len() + expected_left).await;
            let unique: HashSet<_> = published.iter().collect();
            assert_eq!(unique.len(), published.len(), "a decision published twice");
            assert_eq!(
                published.len(),
                truth.len() + expected_left,
                "decisions on the stream: one per join and leave"
            );
            self.log(&format!(
                "{} simulated joins stored once each, {expected_left} leaves, counters = \
                 recount, {} decisions published once each",
                truth.len(),
                published.len()
            ));
        }

        pub async fn stop(self) {
            self.shutdown.cancel();
            let bus = connect_bus(&self.bus).await;
            invitrack_bus::delete_streams(&bus.jetstream, &bus.layout).await;
            drop(self.workers);
            self.sim.stop().await;
            drop(self.dir);
        }
    }

    /// The member event (join or leave) of a stored guild event, if it is one.
    fn member_event(payload: &[u8]) -> Option<&'static str> {
        match invitrack_bus::decode_event(payload).ok()?.kind? {
            EventKind::MemberAdd(_) => Some("join"),
            EventKind::MemberRemove(_) => Some("leave"),
            _ => None,
        }
    }

    /// What ingest does when NATS stored an event but the acknowledgement was lost and the
    /// retry comes after the duplicate window: the same event with the same `Nats-Msg-Id`
    /// again, right behind the original in its guild. Until `stop`, every 250 ms: each
    /// guild whose latest event is a join or a leave stored more than `window` ago (nothing
    /// came after it) has that event published again, once. Returns how many JetStream
    /// stored a second time (not recognised as duplicates), by kind.
    pub async fn republish_after_window(
        bus: BusConfig,
        window: Duration,
        stop: CancellationToken,
    ) -> HashMap<&'static str, usize> {
        let mut stored_again: HashMap<&'static str, usize> = HashMap::new();
        let mut republished: HashSet<String> = HashSet::new();
        // Per partition: the next sequence to read; per guild subject: its latest event.
        let mut next: HashMap<u32, u64> = HashMap::new();
        // With when this test first saw it: stored at least that long ago.
        let mut latest: HashMap<String, (async_nats::jetstream::message::StreamMessage, Instant)> =
            HashMap::new();
        let mut connected = None;
        while !stop.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if connected.is_none() {
                // NATS may be away: try again on the next round.
                connected = tokio::time::timeout(Duration::from_secs(2), bus.connect())
                    .await
                    .ok()
                    .and_then(Result::ok);
            }
            let Some(connected) = &connected else {
                continue;
            };
            let js = &connected.jetstream;
            for partition in 0..connected.layout.partitions() {
                let name = connected.layout.partition_stream(partition);
                let Ok(Ok(mut stream)) =
                    tokio::time::timeout(Duration::from_secs(2), js.get_stream(&name)).await
                else {
                    continue;
                };
                let Ok(info) = stream.info().await else {
                    continue;
                };
                let last = info.state.last_sequence;
                let from = next.entry(partition).or_insert(1);
                while *from <= last {
                    let Ok(message) = stream.get_raw_message(*from).await else {
                        break;
                    };
                    latest.insert(message.subject.to_string(), (message, Instant::now()));
                    *from += 1;
                }
            }
            for (message, seen) in latest.values() {
                let Some(kind) = member_event(&message.payload) else {
                    continue;
                };
                let Some(id) = message
                    .headers
                    .get("Nats-Msg-Id")
                    .map(|v| v.as_str().to_owned())
                else {
                    continue;
                };
                if seen.elapsed() < window + Duration::from_millis(300) || republished.contains(&id)
                {
                    continue;
                }
                republished.insert(id);
                let Ok(ack) = js
                    .publish_with_headers(
                        message.subject.clone(),
                        message.headers.clone(),
                        message.payload.clone(),
                    )
                    .await
                else {
                    continue;
                };
                if let Ok(ack) = ack.await
                    && !ack.duplicate
                {
                    *stored_again.entry(kind).or_default() += 1;
                }
            }
        }
        stored_again
    }

    /// Counts the events stored more than once on the partition streams (by `Nats-Msg-Id`).
    pub async fn stored_twice(bus: &BusConfig) -> usize {
        let bus = connect_bus(bus).await;
        let mut seen = HashSet::new();
        let mut twice = 0;
        for name in bus.layout.partition_streams() {
            let mut stream = bus.jetstream.get_stream(&name).await.expect("stream");
            let last = stream.info().await.expect("info").state.last_sequence;
            for sequence in 1..=last {
                let message = stream.get_raw_message(sequence).await.expect("message");
                if let Some(id) = message.headers.get("Nats-Msg-Id")
                    && !seen.insert(id.as_str().to_owned())
                {
                    twice += 1;
                }
            }
        }
        twice
    }

    pub fn ingest_buffered(metrics: &IngestMetrics) -> (u64, u64) {
        (metrics.buffered(), metrics.publish_retries())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicated_bus_survives_a_node_crash() {
    use std::collections::HashSet;

    use invitrack_testkit::NatsCluster;

    if NatsServer::binary().is_none() {
        eprintln!("SKIPPED replicated_bus_survives_a_node_crash: nats-server is not installed");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let mut nats = tokio::task::spawn_blocking(NatsCluster::start)
        .await
        .expect("the NATS cluster");
    let bus = BusConfig {
        nats_url: nats.url(),
        bus_prefix: invitrack_testkit::unique("replicated"),
        bus_partitions: 4,
        bus_max_age_hours: 1,
        bus_replicas: 3,
        // JetStream reserves each stream's limit on every server holding a replica.
        bus_max_bytes: 64 << 20,
        ..BusConfig::default()
    };
    let mut stack = bus_failures::Stack::start("replicated", bus.clone()).await;
    let client = connect_bus(&bus).await;
    for name in client.layout.partition_streams().into_iter().chain([
        client.layout.decision_stream(),
        client.layout.dead_letter_stream(),
    ]) {
        let mut stream = client.jetstream.get_stream(&name).await.expect("stream");
        let info = stream.info().await.expect("stream info");
        assert_eq!(info.config.num_replicas, 3, "{name}");
        assert_eq!(info.config.max_bytes, 64 << 20, "{name}");
        // The leader and its followers (while a leader is elected, every peer is listed).
        let peers: HashSet<String> = info.cluster.as_ref().map_or_else(HashSet::new, |c| {
            c.leader
                .iter()
                .cloned()
                .chain(c.replicas.iter().map(|r| r.name.clone()))
                .collect()
        });
        assert_eq!(peers.len(), 3, "{name}: servers holding a copy: {peers:?}");
    }
    stack.log("3 nats-servers, every stream R3; workload starts");
    let play = stack.play(11, 36_000);
    tokio::time::sleep(Duration::from_secs(10)).await;

    // The leader of partition 0's stream: its events must move to another server.
    let stream_name = client.layout.partition_stream(0);
    let leader = client
        .jetstream
        .get_stream(&stream_name)
        .await
        .expect("stream")
        .info()
        .await
        .expect("stream info")
        .cluster
        .clone()
        .and_then(|c| c.leader)
        .expect("the stream has a leader");
    let victim = nats.index_of(&leader).expect("a server of the cluster");
    stack.log(&format!(
        "kill -9 {leader}, leader of {stream_name} (meta leader: {:?})",
        nats.meta_leader((victim + 1) % 3)
    ));
    nats.kill(victim);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let new_leader = match client.jetstream.get_stream(&stream_name).await {
            Ok(mut stream) => stream
                .info()
                .await
                .ok()
                .and_then(|i| i.cluster.clone())
                .and_then(|c| c.leader),
            Err(_) => None,
        };
        if let Some(new_leader) = new_leader.filter(|l| *l != leader) {
            stack.log(&format!("{stream_name} is led by {new_leader}"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader for {stream_name}\n{}",
            nats.logs(20)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    stack.log(&format!("restart {leader}"));
    let nats = tokio::task::spawn_blocking(move || {
        nats.restart(victim);
        nats
    })
    .await
    .expect("restart");
    stack.log(&format!("{leader} is back and current"));
    let played = play.await.expect("workload task");
    assert_eq!(
        played.failed, 0,
        "workload steps failed: {:?}",
        played.errors
    );
    let truth = stack.sim.world().ground_truth();
    stack.log(&format!("workload played: {} joins", truth.len()));
    assert!(
        truth.len() >= 50,
        "too few joins to mean anything: {}",
        truth.len()
    );
    stack
        .assert_ground_truth(&truth, Duration::from_secs(150))
        .await;
    drop(client);
    stack.stop().await;
    nats.wait_ready(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_outage_longer_than_the_duplicate_window() {
    if NatsServer::binary().is_none() {
        eprintln!(
            "SKIPPED nats_outage_longer_than_the_duplicate_window: nats-server is not installed"
        );
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let mut nats = NatsServer::start();
    let window = Duration::from_secs(1);
    let bus = BusConfig {
        nats_url: nats.url(),
        bus_prefix: invitrack_testkit::unique("outage"),
        bus_partitions: 4,
        bus_max_age_hours: 1,
        bus_max_bytes: 64 << 20,
        bus_duplicate_window_secs: window.as_secs(),
        ..BusConfig::default()
    };
    let stack = bus_failures::Stack::start("outage", bus.clone()).await;
    let play = stack.play(13, 32_000);
    tokio::time::sleep(Duration::from_secs(8)).await;

    stack.log("kill -9 NATS");
    nats.kill();
    let outage = window * 6;
    tokio::time::sleep(outage).await;
    let (buffered, retries) = bus_failures::ingest_buffered(&stack.ingest);
    stack.log(&format!(
        "NATS down {outage:?}: ingest holds {buffered} events, {retries} publish retries; restart"
    ));
    assert!(
        retries > 0,
        "ingest never tried to publish during the outage"
    );
    nats.resume();

    // Events stored before the outage or after it, published again once the window is over.
    let stop = tokio_util::sync::CancellationToken::new();
    let republish = tokio::spawn(bus_failures::republish_after_window(
        bus.clone(),
        window,
        stop.clone(),
    ));
    let played = play.await.expect("workload task");
    assert_eq!(
        played.failed, 0,
        "workload steps failed: {:?}",
        played.errors
    );
    // The last leaves wait past the window before they are published again.
    tokio::time::sleep(window * 3).await;
    stop.cancel();
    let stored_again = republish.await.expect("republishing task");
    let truth = stack.sim.world().ground_truth();
    let twice = bus_failures::stored_twice(&bus).await;
    stack.log(&format!(
        "workload played: {} joins; published again after the window and stored twice: \
         {stored_again:?}; events stored twice in all: {twice}",
        truth.len()
    ));
    assert!(
        stored_again.values().sum::<usize>() >= 5,
        "too few events stored twice to prove anything: {stored_again:?}"
    );
    assert!(twice >= stored_again.values().sum::<usize>());
    // The shard clocks publish every 100 ms, so one event may be in flight at any instant:
    // the buffer must drain, not be empty at one arbitrary moment.
    invitrack_testkit::eventually(Duration::from_secs(10), "ingest's buffer to drain", || {
        let (buffered, _) = bus_failures::ingest_buffered(&stack.ingest);
        std::future::ready((buffered == 0).then_some(()))
    })
    .await;
    let mut stack = stack;
    stack
        .assert_ground_truth(&truth, Duration::from_secs(150))
        .await;
    stack.stop().await;
}
