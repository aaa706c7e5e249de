//! Throughput benchmark: how many GUILD_MEMBER_ADD dispatches per second the simulator
//! delivers to real twilight shards across many guilds.
//!
//! ```text
//! cargo run --release -p invitrack-sim --example throughput -- [GUILDS] [SECONDS] [SHARDS] [RATE]
//! ```
//!
//! Defaults: 10,000 guilds, 10 s, 2 shards, RATE 0 = as fast as the pipeline goes (the
//! producer keeps at most 20,000 dispatches in flight, so the bounded gateway queues never
//! cut a shard). With RATE > 0 the producer aims at that many joins per second.
//! Prints joins produced per second, join dispatches per second received by the twilight
//! shards, and the process's peak RSS (VmHWM).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use invitrack_sim::{GuildSpec, InviteSpec, JoinSpec, JoinVia, SimConfig, Simulator};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use twilight_gateway::{
    ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _,
    queue::InMemoryQueue,
};
use twilight_model::id::Id;

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let guild_count = arg(1, 10_000) as usize;
    let seconds = arg(2, 10);
    let shard_count = arg(3, 2) as u32;
    let rate = arg(4, 0);
    const MAX_IN_FLIGHT: u64 = 20_000;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = Simulator::start(SimConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        shards: shard_count,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let world = sim.world();

    let setup = Instant::now();
    let mut targets = Vec::with_capacity(guild_count);
    for n in 0..guild_count {
        let guild = world
            .create_guild(GuildSpec {
                name: format!("bench-{n}"),
                vanity_code: None,
                manage_guild: true,
            })
            .unwrap();
        let invite = world
            .create_invite(
                guild.guild_id,
                InviteSpec::by(Id::new(1_000_000 + n as u64)),
            )
            .unwrap();
        targets.push((guild.guild_id, invite.code));
    }
    println!(
        "setup: {guild_count} guilds and invites in {:?}",
        setup.elapsed()
    );

    // Real twilight shards, each counting the GUILD_MEMBER_ADDs it parses.
    let received = Arc::new(AtomicU64::new(0));
    let closes = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for id in 0..shard_count {
        let config = ConfigBuilder::new(
            "sim-token".to_owned(),
            Intents::GUILDS | Intents::GUILD_MEMBERS | Intents::GUILD_INVITES,
        )
        .proxy_url(sim.gateway_url())
        .queue(InMemoryQueue::new(0, 0, Duration::ZERO, 0))
        .build();
        let mut shard = Shard::with_config(ShardId::new(id, shard_count), config);
        let (received, closes, stop, ready) = (
            Arc::clone(&received),
            Arc::clone(&closes),
            Arc::clone(&stop),
            Arc::clone(&ready),
        );
        tasks.push(tokio::spawn(async move {
            let mut expected = None;
            let mut seen = 0usize;
            let flags =
                EventTypeFlags::READY | EventTypeFlags::GUILD_CREATE | EventTypeFlags::MEMBER_ADD;
            while !stop.load(Ordering::Relaxed) {
                let next =
                    tokio::time::timeout(Duration::from_millis(200), shard.next_event(flags)).await;
                match next {
                    Ok(Some(Ok(Event::MemberAdd(_)))) => {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Some(Ok(Event::Ready(r)))) => expected = Some(r.guilds.len()),
                    Ok(Some(Ok(Event::GuildCreate(_)))) => {
                        seen += 1;
                        if Some(seen) == expected {
                            ready.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(Some(Ok(Event::GatewayClose(_)))) => {
                        closes.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Some(Ok(_))) | Err(_) => {}
                    Ok(Some(Err(e))) => eprintln!("shard {id}: {e}"),
                    Ok(None) => break,
                }
            }
        }));
    }
    let connect = Instant::now();
    while ready.load(Ordering::Relaxed) < u64::from(shard_count) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "{shard_count} shard(s) ready with {guild_count} GUILD_CREATEs in {:?}; peak RSS {} MiB",
        connect.elapsed(),
        vm_hwm_kib() / 1024
    );

    // Producer: joins round-robin over the guilds, on its own thread.
    let producer = {
        let world = world.clone();
        let received = Arc::clone(&received);
        std::thread::spawn(move || {
            let started = Instant::now();
            let end = started + Duration::from_secs(seconds);
            let mut produced = 0u64;
            let mut n = 0usize;
            while Instant::now() < end {
                if let Some(due) = (produced * 1_000_000).checked_div(rate) {
                    let now = started.elapsed().as_micros() as u64;
                    if due > now {
                        std::thread::sleep(Duration::from_micros((due - now).min(1000)));
                        continue;
                    }
                }
                if produced - received.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
                let (guild, code) = &targets[n % targets.len()];
                n += 1;
                world
                    .join(*guild, JoinVia::Invite(code.clone()), JoinSpec::default())
                    .unwrap();
                produced += 1;
            }
            (produced, started.elapsed())
        })
    };
    let window_start = Instant::now();
    let received_at_start = received.load(Ordering::Relaxed);
    let (produced, producing) = tokio::task::spawn_blocking(move || producer.join().unwrap())
        .await
        .unwrap();
    let received_in_window = received.load(Ordering::Relaxed) - received_at_start;
    let window = window_start.elapsed();
    let drain = Instant::now();
    while received.load(Ordering::Relaxed) < produced && drain.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let total = received.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    println!(
        "produced {produced} joins in {producing:.2?}: {:.0} joins/s",
        produced as f64 / producing.as_secs_f64()
    );
    println!(
        "received {received_in_window} GUILD_MEMBER_ADD by twilight in {window:.2?}: {:.0} dispatches/s ({total} of {produced} after draining in {:.2?})",
        received_in_window as f64 / window.as_secs_f64(),
        drain.elapsed()
    );
    println!(
        "gateway closes seen: {}; peak RSS (VmHWM): {} MiB",
        closes.load(Ordering::Relaxed),
        vm_hwm_kib() / 1024
    );
    sim.stop().await;
}
