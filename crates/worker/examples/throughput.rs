//! Worker throughput from a pre-filled stream.
//!
//! Publishes `EVENTS` synthetic guild events (joins, their snapshots, leaves) for `GUILDS`
//! guilds into a fresh stream, then starts `WORKERS` workers (each with its own pool and
//! partition-lock session, as separate processes would have) and reports how fast they apply
//! everything.
//!
//! ```text
//! cargo run --release -p invitrack-worker --example throughput -- 100000 1000 1
//! ```

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
    };
    invitrack_storage::prepare_database(&database_url).await?;
    let connected = bus.connect().await?;

    // Fill the stream: per guild a baseline snapshot, then join → snapshot pairs, some leaves.
    let started = Instant::now();
    let mut acks = Vec::new();
    let base = 1_800_000_000_000_i64;
    let mut uses = vec![0_u64; guilds as usize];
    for n in 0..events {
        let g = n % guilds;
        let guild_id = 1_000_000 + g;
        let round = n / guilds;
        let t = base + i64::try_from(n).unwrap_or(0) * 10;
        let kind = match round % 5 {
            0 if round == 0 => snapshot(t, uses[g as usize]),
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
                uses[g as usize] += 1;
                snapshot(t, uses[g as usize])
            }
        };
        let event = GuildEvent {
            bot_id: 1,
            guild_id,
            observed_at_ms: t + 50,
            shard_id: 0,
            kind: Some(kind),
        };
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

    let shutdown = CancellationToken::new();
    let stats: Vec<Arc<WorkerStats>> = (0..workers).map(|_| Arc::default()).collect();
    let started = Instant::now();
    for stat in &stats {
        let config = WorkerConfig::new(database_url.clone(), bus.clone());
        tokio::spawn(invitrack_worker::run_with_stats(
            config,
            shutdown.clone(),
            Arc::clone(stat),
        ));
    }
    let mut last_report = Instant::now();
    loop {
        let applied: u64 = stats
            .iter()
            .map(|s| s.applied.load(Ordering::Relaxed))
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
        "{workers} worker(s): applied {events} events in {seconds:.2} s = {:.0} events/s ({decisions} decisions)",
        events as f64 / seconds
    );
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = connected
        .jetstream
        .delete_stream(connected.layout.events_stream())
        .await;
    let _ = connected
        .jetstream
        .delete_stream(connected.layout.dead_letter_stream())
        .await;
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
