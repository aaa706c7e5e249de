//! A storm of global 429s (another process spending the bot token's global limit): ingest keeps
//! every request, retries included, inside its budget, pauses everything after a 429 and sends
//! one probe after each pause, and stops altogether at its rejection ceiling.

use std::sync::atomic::Ordering;
use std::time::Duration;

use invitrack_ingest::IngestConfig;
use invitrack_sim::{GlobalLimit, RunningSim, SimConfig};

use crate::helpers::{
    RunningIngest, TestBus, guild_with_invite, ingest_config, metric, nats_url, snapshots,
    start_sim,
};

const PER_SECOND: u32 = 10;
const GUILDS: usize = 60;

/// Another process leaves the bot one request per 10 s.
const STORM: GlobalLimit = GlobalLimit {
    limit: 1,
    window_ms: 10_000,
};

async fn storm_sim() -> RunningSim {
    let sim = start_sim(SimConfig::default()).await;
    for i in 0..GUILDS {
        guild_with_invite(&sim, &format!("storm{i}"));
    }
    sim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_429_storm_is_met_with_pauses_and_probes_not_retries() {
    let bus = TestBus::new(&nats_url()).await;
    let sim = storm_sim().await;
    let world = sim.world();
    let ingest = RunningIngest::start(IngestConfig {
        requests_per_second: PER_SECOND,
        ..ingest_config(&sim, &bus.config)
    })
    .await;
    // Start-up's requests are through; every baseline meets the storm.
    world.reset_rest_stats();
    world.set_global_limit(STORM);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let storm = world.rest_stats();
    eprintln!(
        "8 s of global 429s: {} requests, {} answered 429, at most {} in one second",
        storm.requests, storm.global_rate_limited, storm.most_in_one_second
    );
    assert!(
        storm.most_in_one_second <= u64::from(PER_SECOND + invitrack_discord::BURST_REQUESTS),
        "{storm:?}"
    );
    // A round of requests that left together, then one probe after each pause (1, 2, 4 s):
    // not the 25 a second twilight-http's own resending sent.
    assert!(storm.global_rate_limited >= 2, "{storm:?}");
    assert!(storm.requests <= 12, "{storm:?}");
    let gate = ingest.metrics.discord().stats();
    assert_eq!(
        gate.rate_limited.load(Ordering::Relaxed),
        storm.global_rate_limited,
        "every 429 is counted"
    );
    let scraped = ingest.scrape().await;
    assert_eq!(
        metric(&scraped, "invitrack_ingest_discord_rejected_last_10m"),
        storm.global_rate_limited as f64
    );

    // The storm ends: the next probe is answered and every guild gets its baseline.
    world.set_global_limit(GlobalLimit::default());
    bus.wait_for(
        Duration::from_secs(60),
        "every guild's baseline after the storm",
        |events| snapshots(events).len() >= GUILDS,
    )
    .await;
    let after = world.rest_stats();
    assert!(
        after.most_in_one_second <= u64::from(PER_SECOND + invitrack_discord::BURST_REQUESTS),
        "{after:?}"
    );
    ingest.stop().await;
    bus.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_rejection_ceiling_nothing_more_is_sent() {
    let bus = TestBus::new(&nats_url()).await;
    let sim = storm_sim().await;
    let world = sim.world();
    let ceiling = 3;
    let ingest = RunningIngest::start(IngestConfig {
        requests_per_second: PER_SECOND,
        rejection_ceiling: ceiling,
        ..ingest_config(&sim, &bus.config)
    })
    .await;
    world.reset_rest_stats();
    world.set_global_limit(STORM);
    ingest
        .wait_metrics(Duration::from_secs(30), "the ceiling", |m| {
            m.discord().stats().halted.load(Ordering::Relaxed) > 0
        })
        .await;
    let halted = world.rest_stats();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = world.rest_stats();
    eprintln!(
        "ceiling {ceiling}: {} requests, {} answered 429, then {} in 3 s",
        halted.requests,
        halted.global_rate_limited,
        later.requests - halted.requests
    );
    assert_eq!(
        later.requests, halted.requests,
        "nothing is sent at the ceiling"
    );
    assert_eq!(
        ingest.metrics.discord().rejected_in_window(),
        ceiling as usize
    );
    let scraped = ingest.scrape().await;
    assert!(metric(&scraped, "invitrack_ingest_discord_halted_total") >= 1.0);
    ingest.stop().await;
    bus.cleanup().await;
}
