//! Worker throughput from a pre-filled stream, and end-to-end lag under a steady load.
//!
//! With `RATE` 0 (the default) it publishes `EVENTS` synthetic guild events (joins, their
//! snapshots, leaves) for `GUILDS` guilds into a fresh stream, then starts `WORKERS` workers
//! (each with its own pool and partition-lock session, as separate processes would have) and
//! reports how fast they apply everything.
//!
//! With `RATE` > 0 it starts the workers first, waits until they own every partition, then
//! publishes the events at `RATE` per second with `observed_at` = the moment of publishing,
//! and reports the lag from `observed_at` to commit (p50/p99) the workers recorded.
//!
//! ```text
//! cargo run --release -p invitrack-worker --example apply_throughput -- EVENTS GUILDS WORKERS [RATE]
//! cargo run --release -p invitrack-worker --example apply_throughput -- 100000 1000 1
//! cargo run --release -p invitrack-worker --example apply_throughput -- 100000 1000 1 5000
//! ```
//! `WORKER_BATCH`, `WORKER_DB_CONNECTIONS` and `WORKER_SYNCHRONOUS_COMMIT=true` override the
//! workers' defaults. `POISON_MEMBER_MODULO=N` makes PostgreSQL refuse (a trigger) every
//! member row whose id is a multiple of N, to measure what isolating refused messages costs.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use invitrack_bus::proto::{self, guild_event::Kind};
use invitrack_bus::{BusConfig, GuildEvent};
use invitrack_worker::{WorkerConfig, WorkerStats};
use tokio_util::sync::CancellationToken;

const PG: &str = "postgres://postgres@127.0.0.1:5432";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    invitrack_telemetry::init();
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let events = args.first().copied().unwrap_or(100_000);
    let guilds = args.get(1).copied().unwrap_or(1_000).max(1);
    let workers = args.get(2).copied().unwrap_or(1).max(1);
    let run = format!("{:08x}", rand::random::<u32>());
    let database_url = format!("{PG}/invitrack_bench_{run}");
    let bus = BusConfig {
        nats_url: std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        bus_prefix: format!("bench-{run}"),
        bus_partitions: 16,
        bus_max_age_hours: 1,
        ..BusConfig::default()
    };
    let rate = args.get(3).copied().unwrap_or(0);
    invitrack_storage::prepare_database(&database_url).await?;
    let connected = bus.connect().await?;
    let mut config = WorkerConfig::new(database_url.clone(), bus.clone());
    if let Some(batch) = env_usize("WORKER_BATCH") {
        config.batch = batch;
    }
    if let Some(connections) = env_usize("WORKER_DB_CONNECTIONS") {
        config.db_connections = connections;
    }
    config.synchronous_commit =
        std::env::var("WORKER_SYNCHRONOUS_COMMIT").is_ok_and(|v| v == "true");
    if let Some(modulo) = env_usize("POISON_MEMBER_MODULO") {
        let mut conn = invitrack_storage::connect(&database_url).await?;
        for statement in [
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'member % is poison', NEW.member_id; END $$"
                .to_owned(),
            format!(
                "CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON members FOR EACH ROW \
                 WHEN (NEW.member_id % {modulo} = 0) EXECUTE FUNCTION refuse_poison()"
            ),
        ] {
            diesel_async::RunQueryDsl::execute(diesel::sql_query(statement), &mut conn).await?;
        }
    }
    let shutdown = CancellationToken::new();
    let stats: Vec<Arc<WorkerStats>> = (0..workers).map(|_| Arc::default()).collect();
    let start_workers = || {
        for stat in &stats {
            tokio::spawn(invitrack_worker::run_with_stats(
                config.clone(),
                shutdown.clone(),
                Arc::clone(stat),
            ));
        }
    };
    let mut generator = Generator::new(guilds);

    let started = if rate == 0 {
        // Fill the stream first.
        let started = Instant::now();
        let mut acks = Vec::new();
        // In the past: a worker clamps times ahead of its own clock.
        let base =
            invitrack_model::time::now_millis() - i64::try_from(events).unwrap_or(0) * 10 - 60_000;
        for n in 0..events {
            let t = base + i64::try_from(n).unwrap_or(0) * 10;
            let event = generator.event(n, t, t + 50);
            acks.push(
                invitrack_bus::publish_event(
                    &connected.jetstream,
                    &connected.layout,
                    &event,
                    &format!("b{n}"),
                )
                .await?,
            );
            if acks.len() >= 5_000 {
                for ack in acks.drain(..) {
                    ack.await?;
                }
            }
        }
        for ack in acks.drain(..) {
            ack.await?;
        }
        println!(
            "published {events} events for {guilds} guilds in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let started = Instant::now();
        start_workers();
        started
    } else {
        start_workers();
        let partitions = u64::from(bus.bus_partitions);
        while stats
            .iter()
            .map(|s| s.owned_partitions.load(Ordering::Relaxed))
            .sum::<u64>()
            < partitions
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let started = Instant::now();
        let js = connected.jetstream.clone();
        let layout = connected.layout.clone();
        // The publisher keeps to the schedule; acknowledgements are awaited off the path.
        let (ack_tx, mut ack_rx) = tokio::sync::mpsc::channel(100_000);
        let acker = tokio::spawn(async move {
            while let Some(ack) = ack_rx.recv().await {
                let ack: async_nats::jetstream::context::PublishAckFuture = ack;
                ack.await?;
            }
            anyhow::Ok(())
        });
        for n in 0..events {
            let due = Duration::from_secs_f64(n as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
            let now = invitrack_model::time::now_millis();
            let event = generator.event(n, now, now);
            let ack = invitrack_bus::publish_event(&js, &layout, &event, &format!("s{n}")).await?;
            ack_tx.send(ack).await?;
        }
        drop(ack_tx);
        acker.await??;
        println!(
            "published {events} events for {guilds} guilds at {rate}/s in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        started
    };
    let mut last_report = Instant::now();
    loop {
        let applied: u64 = stats
            .iter()
            .map(|s| s.applied.load(Ordering::Relaxed) + s.dead_letters.load(Ordering::Relaxed))
            .sum();
        if applied >= events {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            println!(
                "  {applied} applied after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let decisions: u64 = stats
        .iter()
        .map(|s| s.decisions.load(Ordering::Relaxed))
        .sum();
    println!(
        "{workers} worker(s), batch {}, {} connections each, synchronous commit {}: applied {events} events in {seconds:.2} s = {:.0} events/s ({decisions} decisions)",
        config.batch,
        config.db_connections,
        config.synchronous_commit,
        events as f64 / seconds
    );
    let batches: u64 = stats
        .iter()
        .map(|s| s.batches.load(Ordering::Relaxed))
        .sum();
    let apply_micros: u64 = stats
        .iter()
        .map(|s| s.apply_micros.load(Ordering::Relaxed))
        .sum();
    let dead_letters: u64 = stats
        .iter()
        .map(|s| s.dead_letters.load(Ordering::Relaxed))
        .sum();
    if dead_letters > 0 {
        println!("{dead_letters} messages refused by the database, each a dead letter");
    }
    println!(
        "{batches} transactions, {:.0} events each, {:.1} ms each on average",
        events as f64 / batches.max(1) as f64,
        apply_micros as f64 / 1000.0 / batches.max(1) as f64
    );
    if rate > 0 {
        // Every worker's events, merged: percentiles of the whole run.
        let merged = invitrack_worker::LagHistogram::default();
        for stat in &stats {
            stat.lag.merge_into(&merged);
        }
        println!(
            "lag observed_at -> commit over {} events: p50 {} ms, p99 {} ms, max {} ms",
            merged.count(),
            merged.percentile(50.0).unwrap_or(0),
            merged.percentile(99.0).unwrap_or(0),
            merged.percentile(100.0).unwrap_or(0),
        );
    }
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;
    invitrack_bus::delete_streams(&connected.jetstream, &connected.layout).await;
    let mut conn = invitrack_storage::connect(&format!("{PG}/postgres")).await?;
    {
        use diesel_async::RunQueryDsl as _;
        diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS \"invitrack_bench_{run}\" WITH (FORCE)"
        ))
        .execute(&mut conn)
        .await?;
    }
    Ok(())
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The synthetic workload: per guild a baseline snapshot, then rounds of join → snapshot
/// showing one more use, and leaves of earlier joiners. Every join is explained by the one
/// invite, so every join is decided by the snapshot after it.
struct Generator {
    guilds: u64,
    uses: Vec<u64>,
}

impl Generator {
    fn new(guilds: u64) -> Self {
        Self {
            guilds,
            uses: vec![0; usize::try_from(guilds).unwrap_or(0)],
        }
    }

    /// The `n`th event, happening at `t` and observed at `observed_at`.
    fn event(&mut self, n: u64, t: i64, observed_at: i64) -> GuildEvent {
        let guilds = self.guilds;
        let g = usize::try_from(n % guilds).unwrap_or(0);
        let round = n / guilds;
        let kind = match round % 5 {
            0 if round == 0 => snapshot(t, self.uses[g]),
            1 | 3 => Kind::MemberAdd(proto::MemberAdd {
                user_id: 5_000_000_000 + n,
                joined_at_ms: t,
                has_avatar: true,
                bot: false,
                flags: 0,
            }),
            4 => Kind::MemberRemove(proto::MemberRemove {
                user_id: 5_000_000_000 + n - 3 * guilds,
            }),
            _ => {
                self.uses[g] += 1;
                snapshot(t, self.uses[g])
            }
        };
        GuildEvent {
            bot_id: 1,
            guild_id: 1_000_000 + n % guilds,
            observed_at_ms: observed_at,
            shard_id: 0,
            kind: Some(kind),
        }
    }
}

fn snapshot(t: i64, uses: u64) -> Kind {
    Kind::InviteSnapshot(proto::InviteSnapshot {
        requested_at_ms: t + 150,
        received_at_ms: t + 300,
        invites: vec![proto::Invite {
            code: "code".into(),
            inviter_id: 42,
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
