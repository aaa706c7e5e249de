//! Start-up at scale: a bot in 10,000 guilds (the simulator) is snapshotted within the request
//! budget; prints the time it takes, the 429s met, ingest's memory per guild, and how soon a
//! join made once every guild is available, in the guild created last, is read (what makes it
//! attributable) while the start-up reads are still going on.
//!
//! ```text
//! cargo run --release -p invitrack-ingest --example startup -- [GUILDS] [REQUESTS_PER_SECOND] [SHARDS]
//! ```
//!
//! Defaults: 10000 guilds, 40 requests/s (ingest's default), 5 shards. NATS at `NATS_URL`
//! (default `nats://127.0.0.1:4222`); the stream gets a prefix of its own and is deleted after.
//!
//! The simulator runs in a child process (this same program, `sim-child` mode) so that the
//! memory measured is ingest's alone: RSS with every guild snapshotted minus RSS of the same
//! process running ingest with no guild, divided by the guild count.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use invitrack_bus::EventKind;
use invitrack_ingest::{BusConfig, Ingest, IngestConfig, IngestMetrics};
use invitrack_model::{GuildId, GuildKey};
use invitrack_sim::{GuildSpec, InviteSpec, JoinSpec, JoinVia, SimConfig, Simulator};
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if args.get(1).map(String::as_str) == Some("sim-child") {
        let shards = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
        return runtime.block_on(sim_child(shards));
    }
    // Ingest's own log, on stderr: its start-up progress lines among them.
    invitrack_telemetry::init();
    let guilds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let per_second: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(40);
    let shards: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    runtime.block_on(measure(guilds, per_second, shards))
}

/// The simulator, driven over stdin/stdout: `guilds N` creates N guilds, `join` makes a member
/// join the guild created last through a new invite, `stats` prints the REST counters. It
/// stops when stdin closes.
async fn sim_child(shards: u32) -> anyhow::Result<()> {
    let sim = Simulator::start(SimConfig {
        bind: "127.0.0.1:0".parse()?,
        shards,
        ..SimConfig::default()
    })
    .await?;
    let world = sim.world();
    println!("ready {} {}", sim.gateway_url(), sim.api_proxy());
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(tokio::io::stdin()));
    let mut last = None;
    while let Some(line) = lines.next_line().await? {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("guilds"), Some(n)) => {
                for i in 0..n.parse::<u64>()? {
                    last = Some(world.create_guild(GuildSpec {
                        name: format!("g{i}"),
                        ..GuildSpec::default()
                    })?);
                    // Spread the guilds over the shards: a guild's shard is its creation
                    // millisecond modulo the shard count.
                    if i % 50 == 49 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                world.reset_rest_stats();
                println!("ok");
            }
            (Some("join"), _) => {
                let guild = last.ok_or_else(|| anyhow::anyhow!("no guild"))?;
                let invite = world.create_invite(
                    guild.guild_id,
                    InviteSpec::by(twilight_model::id::Id::new(1_100_000_000_000_000_001)),
                )?;
                world.join(
                    guild.guild_id,
                    JoinVia::Invite(invite.code),
                    JoinSpec::default(),
                )?;
                println!("joined {}", guild.guild_id);
            }
            (Some("stats"), _) => {
                let stats = world.rest_stats();
                println!(
                    "stats {} {} {}",
                    stats.requests, stats.rate_limited, stats.server_errors
                );
            }
            _ => println!("unknown command"),
        }
    }
    sim.stop().await;
    Ok(())
}

struct Child {
    process: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Child {
    fn ask(&mut self, command: &str) -> anyhow::Result<String> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        Ok(line.trim().to_owned())
    }
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

async fn wait(metrics: &IngestMetrics, within: Duration, done: impl Fn(&IngestMetrics) -> bool) {
    let deadline = Instant::now() + within;
    while !done(metrics) {
        assert!(
            Instant::now() < deadline,
            "timed out:\n{}",
            metrics.render()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn measure(guilds: u64, per_second: u32, shards: u32) -> anyhow::Result<()> {
    let mut process = Command::new(std::env::current_exe()?)
        .args(["sim-child", &shards.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut child = Child {
        stdin: process.stdin.take().unwrap(),
        stdout: BufReader::new(process.stdout.take().unwrap()),
        process,
    };
    let mut ready = String::new();
    child.stdout.read_line(&mut ready)?;
    let mut words = ready.split_whitespace().skip(1);
    let (gateway_url, api_proxy) = (
        words.next().unwrap().to_owned(),
        words.next().unwrap().to_owned(),
    );

    let bus = BusConfig {
        nats_url: std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        bus_prefix: format!("bench-ingest-startup-{}", std::process::id()),
        bus_partitions: 16,
        bus_max_age_hours: 1,
        ..BusConfig::default()
    };
    let config = IngestConfig {
        discord_gateway_url: Some(gateway_url),
        discord_api_proxy: Some(api_proxy),
        requests_per_second: per_second,
        ..IngestConfig::new(SimConfig::default().bot_token, bus.clone())
    };

    // 1. Baseline: ingest with every shard connected and no guild.
    // Identifies are 5 s apart (the simulator's `max_concurrency` is 1).
    let identified = Duration::from_secs(60 + 6 * u64::from(shards));
    let (metrics, stop, task, _) = start(config.clone()).await?;
    wait(&metrics, identified, |m| {
        m.shards_connected() == u64::from(shards)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_baseline = rss_kib("VmRSS:");
    stop.cancel();
    task.await??;

    // 2. The same process, the same ingest, and `guilds` guilds to snapshot at start-up.
    anyhow::ensure!(
        child.ask(&format!("guilds {guilds}"))? == "ok",
        "simulator refused the guilds"
    );
    let started = Instant::now();
    let (metrics, stop, task, bot_id) = start(config).await?;
    wait(&metrics, identified, |m| m.guilds() == guilds).await;
    let all_available = started.elapsed();
    let read_at_available = metrics.snapshots_published();

    // 3. A join now, in the guild created last: how long until its invites are read.
    let joined = child.ask("join")?;
    let joined_in = joined
        .strip_prefix("joined ")
        .and_then(|id| GuildId::parse(id).ok())
        .ok_or_else(|| anyhow::anyhow!("the simulator did not join: {joined}"))?;
    let join_made = Instant::now();
    let client = bus.client().await?;
    let subject = bus
        .layout()?
        .guild_subject(GuildKey::new(bot_id, joined_in));
    let mut events = client.subscribe(subject).await?;
    let join_read = tokio::time::timeout(Duration::from_secs(3600), async {
        while let Some(message) = events.next().await {
            let event = invitrack_bus::decode_event(&message.payload)?;
            if matches!(event.kind, Some(EventKind::InviteSnapshot(_))) {
                return Ok::<_, anyhow::Error>(join_made.elapsed());
            }
        }
        anyhow::bail!("the subscription ended")
    })
    .await??;
    drop(events);
    let read_at_join = metrics.snapshots_published();
    wait(&metrics, Duration::from_secs(3600), |m| {
        m.snapshots_published() == guilds
    })
    .await;
    let all_snapshotted = started.elapsed();
    let rss_loaded = rss_kib("VmRSS:");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_settled = rss_kib("VmRSS:");
    let peak = rss_kib("VmHWM:");
    let stats = child.ask("stats")?;
    stop.cancel();
    task.await??;
    drop(child.stdin);
    child.process.wait()?;
    let js = async_nats::jetstream::new(client);
    let layout = bus.layout()?;
    invitrack_bus::delete_streams(&js, &layout).await;

    let mut stats = stats
        .split_whitespace()
        .skip(1)
        .map(|s| s.parse::<u64>().unwrap_or(0));
    let (requests, rate_limited, server_errors) = (
        stats.next().unwrap_or(0),
        stats.next().unwrap_or(0),
        stats.next().unwrap_or(0),
    );
    let per_guild = |rss: u64| (rss.saturating_sub(rss_baseline) * 1024) as f64 / guilds as f64;
    println!("guilds                      {guilds}");
    println!("shards                      {shards}");
    println!("request budget              {per_second}/s");
    println!(
        "all GUILD_CREATEs received  {:.1} s",
        all_available.as_secs_f64()
    );
    println!(
        "a join in the last guild    read {:.2} s after it, when {read_at_join} guilds were \
         read ({read_at_available} when every guild was available)",
        join_read.as_secs_f64()
    );
    println!(
        "all snapshots published     {:.1} s ({:.1} snapshots/s; budget floor {:.1} s)",
        all_snapshotted.as_secs_f64(),
        guilds as f64 / all_snapshotted.as_secs_f64(),
        guilds as f64 / f64::from(per_second)
    );
    println!("REST requests (simulator)   {requests}, 429s {rate_limited}, 5xx {server_errors}");
    println!("RSS baseline (no guild)     {rss_baseline} KiB");
    println!(
        "RSS all snapshotted         {rss_loaded} KiB -> {:.0} bytes/guild",
        per_guild(rss_loaded)
    );
    println!(
        "RSS 3 s later               {rss_settled} KiB -> {:.0} bytes/guild",
        per_guild(rss_settled)
    );
    println!("peak RSS (VmHWM)            {peak} KiB");
    Ok(())
}

async fn start(
    config: IngestConfig,
) -> anyhow::Result<(
    Arc<IngestMetrics>,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), invitrack_ingest::IngestError>>,
    invitrack_model::BotId,
)> {
    let ingest = Ingest::build(config).await?;
    let metrics = ingest.metrics();
    let bot_id = ingest.bot_id();
    let stop = CancellationToken::new();
    let task = tokio::spawn(ingest.run(stop.clone()));
    Ok((metrics, stop, task, bot_id))
}
