//! The harness: a simulator on port 0, a bus prefix of its own on the shared NATS (or a
//! nats-server of the test's own), ingest instances run in-process, and readers of the stream.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use invitrack_bus::{BusConfig, BusLayout, GuildEvent, proto::guild_event::Kind};
use invitrack_ingest::{Ingest, IngestConfig, IngestError, IngestMetrics};
use invitrack_sim::{GuildSpec, InviteSpec, RunningSim, SimConfig, Simulator};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;
use twilight_model::id::{Id, marker::GuildMarker};

/// Logs when `TEST_LOG` is set.
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let fmt = std::env::var_os("TEST_LOG").map(|_| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(tracing_subscriber::EnvFilter::new(
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
                ))
        });
        use tracing_subscriber::Layer as _;
        let _ = tracing_subscriber::registry().with(fmt).try_init();
    });
}

pub use invitrack_testkit::{NatsServer, nats_url, unique};

pub async fn start_sim(config: SimConfig) -> RunningSim {
    init_tracing();
    Simulator::start(SimConfig {
        bind: "127.0.0.1:0".parse().expect("address"),
        ..config
    })
    .await
    .expect("simulator starts")
}

/// A guild with one unlimited invite.
pub fn guild_with_invite(sim: &RunningSim, name: &str) -> (Id<GuildMarker>, String) {
    let world = sim.world();
    let guild = world
        .create_guild(GuildSpec {
            name: name.into(),
            ..GuildSpec::default()
        })
        .expect("guild");
    let invite = world
        .create_invite(
            guild.guild_id,
            InviteSpec::by(Id::new(777_000_000_000_000_001)),
        )
        .expect("invite");
    (guild.guild_id, invite.code)
}

/// A bus prefix of the test's own on a NATS server; its streams are deleted by `cleanup`.
pub struct TestBus {
    pub config: BusConfig,
    pub layout: BusLayout,
    pub js: jetstream::Context,
}

impl TestBus {
    pub async fn new(nats_url: &str) -> Self {
        let config = BusConfig {
            nats_url: nats_url.to_owned(),
            bus_prefix: unique("it-ingest"),
            bus_partitions: 4,
            bus_max_age_hours: 1,
            ..BusConfig::default()
        };
        let bus = config.connect().await.expect("NATS reachable");
        Self {
            layout: bus.layout,
            js: bus.jetstream,
            config,
        }
    }

    /// Every event in the streams, in the order they were stored, with its subject.
    pub async fn events(&self) -> Vec<(String, GuildEvent)> {
        invitrack_bus::read_events(&self.js, &self.layout)
            .await
            .expect("events readable")
    }

    /// Waits until `done` holds for the stream's events (at most `within`), and returns them.
    pub async fn wait_for(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&[(String, GuildEvent)]) -> bool,
    ) -> Vec<(String, GuildEvent)> {
        let deadline = Instant::now() + within;
        loop {
            let events = self.events().await;
            if done(&events) {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the stream has {} events",
                events.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn cleanup(&self) {
        invitrack_bus::delete_streams(&self.js, &self.layout).await;
    }
}

pub fn member_adds(events: &[(String, GuildEvent)]) -> Vec<(u64, u64)> {
    events
        .iter()
        .filter_map(|(_, e)| match &e.kind {
            Some(Kind::MemberAdd(add)) => Some((e.guild_id, add.user_id)),
            _ => None,
        })
        .collect()
}

pub fn snapshots(events: &[(String, GuildEvent)]) -> Vec<&GuildEvent> {
    events
        .iter()
        .filter(|(_, e)| matches!(e.kind, Some(Kind::InviteSnapshot(_))))
        .map(|(_, e)| e)
        .collect()
}

/// Ingest pointed at the simulator, with the test's bus.
pub fn ingest_config(sim: &RunningSim, bus: &BusConfig) -> IngestConfig {
    IngestConfig {
        discord_gateway_url: Some(sim.gateway_url()),
        discord_api_proxy: Some(sim.api_proxy()),
        metrics_bind: Some("127.0.0.1:0".parse().expect("address")),
        ..IngestConfig::new(sim_token(sim), bus.clone())
    }
}

fn sim_token(sim: &RunningSim) -> String {
    sim.world().bot().token.clone()
}

/// One ingest instance running in the background.
pub struct RunningIngest {
    pub bot_id: invitrack_model::BotId,
    pub metrics: Arc<IngestMetrics>,
    pub metrics_addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), IngestError>>,
}

impl RunningIngest {
    pub async fn start(config: IngestConfig) -> Self {
        let ingest = Ingest::build(config).await.expect("ingest builds");
        let shutdown = CancellationToken::new();
        Self {
            bot_id: ingest.bot_id(),
            metrics: ingest.metrics(),
            metrics_addr: ingest.metrics_addr().expect("metrics enabled"),
            shutdown: shutdown.clone(),
            task: tokio::spawn(ingest.run(shutdown)),
        }
    }

    /// Waits until `done` holds for the metrics.
    pub async fn wait_metrics(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&IngestMetrics) -> bool,
    ) {
        let deadline = Instant::now() + within;
        while !done(&self.metrics) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.metrics.render()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /metrics` over HTTP, as Prometheus would.
    pub async fn scrape(&self) -> String {
        http_get(self.metrics_addr, "/metrics").await.1
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("ingest stops")
            .expect("ingest task");
        result.expect("ingest ends cleanly");
    }
}

/// One metric's value from a Prometheus text exposition.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, body.to_owned())
}
