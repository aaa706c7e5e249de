//! Discord's errors: a bad token, or a privileged intent the application has not turned on,
//! stops ingest at once with a clear message; 5xx and 429 on invite reads are retried until the
//! snapshot is taken, and counted.

use std::collections::HashMap;
use std::time::Duration;

use invitrack_bus::proto::guild_event::Kind;
use invitrack_ingest::{Ingest, IngestConfig, IngestError};
use invitrack_sim::{GlobalLimit, JoinSpec, JoinVia, Route, RouteFaults, SimConfig};

use crate::helpers::{
    RunningIngest, TestBus, guild_with_invite, ingest_config, member_adds, metric, nats_url,
    snapshots, start_sim,
};

#[tokio::test]
async fn a_bad_token_is_a_clear_error() {
    let bus = TestBus::new(&nats_url()).await;
    let sim = start_sim(SimConfig::default()).await;
    let config = IngestConfig {
        discord_token: "not-the-token".into(),
        ..ingest_config(&sim, &bus.config)
    };
    let error = Ingest::build(config)
        .await
        .err()
        .expect("a 401 stops ingest");
    assert!(matches!(error, IngestError::InvalidToken), "{error:?}");
    assert!(error.to_string().contains("DISCORD_TOKEN"), "{error}");
    bus.cleanup().await;
}

#[tokio::test]
async fn a_disallowed_intent_names_the_server_members_intent_and_where_to_turn_it_on() {
    let bus = TestBus::new(&nats_url()).await;
    // The application has no privileged intent turned on: the gateway closes with 4014.
    let sim = start_sim(SimConfig {
        privileged_intents: 0,
        ..SimConfig::default()
    })
    .await;
    let stopped = tokio::time::timeout(
        Duration::from_secs(30),
        invitrack_ingest::run(
            ingest_config(&sim, &bus.config),
            tokio_util::sync::CancellationToken::new(),
        ),
    )
    .await
    .expect("ingest stops by itself");
    let error = stopped.expect_err("4014 stops ingest");
    assert!(
        matches!(error, IngestError::DisallowedIntents { shard: 0 }),
        "{error:?}"
    );
    let message = error.to_string();
    for needed in [
        "4014",
        "Server Members",
        "Developer Portal",
        "Privileged Gateway Intents",
    ] {
        assert!(message.contains(needed), "{needed:?} missing: {message}");
    }
    bus.cleanup().await;
}

#[tokio::test]
async fn the_binary_exits_non_zero_on_a_bad_token() {
    let sim = start_sim(SimConfig::default()).await;
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_invitrack-ingest"))
            .env_clear()
            .env("DISCORD_TOKEN", "not-the-token")
            .env("DISCORD_GATEWAY_URL", sim.gateway_url())
            .env("DISCORD_API_PROXY", sim.api_proxy())
            .env("BUS_PREFIX", crate::helpers::unique("it-ingest-badtoken"))
            .output(),
    )
    .await
    .expect("the binary exits by itself")
    .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("DISCORD_TOKEN"),
        "stderr: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_rate_limits_on_invite_reads_are_retried_and_counted() {
    let bus = TestBus::new(&nats_url()).await;
    let sim = start_sim(SimConfig::default()).await;
    let world = sim.world();
    let guilds: Vec<_> = (0..6)
        .map(|i| guild_with_invite(&sim, &format!("flaky{i}")))
        .collect();
    // First a global limit far below ingest's budget: the six baselines meet 429s, which
    // pause every request and are tried again.
    world.set_global_limit(GlobalLimit {
        limit: 2,
        window_ms: 1000,
    });
    let ingest = RunningIngest::start(ingest_config(&sim, &bus.config)).await;
    ingest
        .wait_metrics(Duration::from_secs(30), "every baseline", |m| {
            m.snapshots_published() == guilds.len() as u64
        })
        .await;
    assert!(
        world.rest_stats().rate_limited > 0,
        "the simulator answered 429"
    );
    // Then Discord's limit again, and half of the invite reads answer 500/502/503.
    world.set_global_limit(GlobalLimit::default());
    world
        .set_faults(
            Some(Route::GuildInvites),
            RouteFaults {
                error_rate: 0.5,
                ..RouteFaults::default()
            },
        )
        .expect("faults");
    for (guild_id, code) in &guilds {
        for _ in 0..2 {
            world
                .join(
                    *guild_id,
                    JoinVia::Invite(code.clone()),
                    JoinSpec::default(),
                )
                .expect("join");
        }
    }
    // Every guild ends with a snapshot showing both of its joins.
    let events = bus
        .wait_for(
            Duration::from_secs(90),
            "a settled snapshot per guild",
            |events| {
                let mut latest: HashMap<u64, u64> = HashMap::new();
                for (_, event) in events {
                    if let Some(Kind::InviteSnapshot(s)) = &event.kind {
                        latest.insert(event.guild_id, s.invites.iter().map(|i| i.uses).sum());
                    }
                }
                latest.len() == guilds.len() && latest.values().all(|&uses| uses == 2)
            },
        )
        .await;
    assert_eq!(member_adds(&events).len(), 12);
    assert!(snapshots(&events).len() >= guilds.len());
    assert!(
        events
            .iter()
            .all(|(_, e)| !matches!(e.kind, Some(Kind::SnapshotFailed(_)))),
        "a transient error is retried, not reported as a failed snapshot"
    );
    let stats = world.rest_stats();
    assert!(
        stats.server_errors > 0,
        "the simulator answered 5xx: {stats:?}"
    );
    assert!(
        stats.rate_limited > 0,
        "the simulator answered 429: {stats:?}"
    );
    let scraped = ingest.scrape().await;
    assert!(
        metric(
            &scraped,
            "invitrack_ingest_discord_errors_total{status=\"5xx\"}"
        ) >= 1.0
    );
    assert!(metric(&scraped, "invitrack_ingest_snapshot_retries_total") >= 1.0);
    assert!(
        ingest
            .metrics
            .discord()
            .stats()
            .rate_limited
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "429s counted:\n{scraped}"
    );
    assert!(
        metric(
            &scraped,
            "invitrack_ingest_discord_errors_total{status=\"429\"}"
        ) >= 1.0
    );

    ingest.stop().await;
    bus.cleanup().await;
}
