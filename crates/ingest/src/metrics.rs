//! What ingest counts, and the Prometheus endpoint that shows it.
//!
//! Counters are plain atomics shared by the shard readers, the snapshot scheduler and the
//! publisher; `GET /metrics` renders them in Prometheus' text format. The server is a bare
//! hyper HTTP/1 connection loop: one route, no framework.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use invitrack_bus::proto::guild_event::Kind;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The kinds of event ingest publishes, as metric labels.
const KINDS: [&str; 7] = [
    "member_add",
    "member_remove",
    "invite_create",
    "invite_delete",
    "invite_snapshot",
    "snapshot_failed",
    "shard_clock",
];

pub(crate) fn kind_index(kind: &Kind) -> usize {
    match kind {
        Kind::MemberAdd(_) => 0,
        Kind::MemberRemove(_) => 1,
        Kind::InviteCreate(_) => 2,
        Kind::InviteDelete(_) => 3,
        Kind::InviteSnapshot(_) => 4,
        Kind::SnapshotFailed(_) => 5,
        Kind::ShardClock(_) => 6,
    }
}

/// Every counter and gauge of one ingest instance.
#[derive(Debug, Default)]
pub struct IngestMetrics {
    received: [AtomicU64; KINDS.len()],
    published: [AtomicU64; KINDS.len()],
    /// Events queued for NATS and not yet acknowledged by JetStream. Signed: the drain task may
    /// acknowledge an event a moment before its sender counts it in.
    pub(crate) buffered: AtomicI64,
    pub(crate) buffer_capacity: AtomicU64,
    /// Times a producer found the buffer full and had to wait (the shards stop reading).
    pub(crate) buffer_full_waits: AtomicU64,
    pub(crate) publish_retries: AtomicU64,
    /// 1 while the last publish attempt failed (NATS unreachable or refusing).
    pub(crate) publish_failing: AtomicU64,
    pub(crate) snapshot_requests: AtomicU64,
    pub(crate) snapshots_coalesced: AtomicU64,
    pub(crate) snapshot_retries: AtomicU64,
    pub(crate) discord_unauthorized: AtomicU64,
    pub(crate) discord_forbidden: AtomicU64,
    pub(crate) discord_not_found: AtomicU64,
    pub(crate) discord_server_errors: AtomicU64,
    pub(crate) discord_other_errors: AtomicU64,
    pub(crate) shards: AtomicU64,
    pub(crate) shards_connected: AtomicU64,
    pub(crate) guilds: AtomicU64,
    /// Largest proven lead of this host's clock over Discord's, ms (0 = none seen).
    pub(crate) clock_ahead_ms: AtomicU64,
}

impl IngestMetrics {
    pub(crate) fn count_received(&self, kind: &Kind) {
        self.received[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_published(&self, kind: &Kind) {
        self.published[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
    }

    /// Events of every kind produced so far.
    #[must_use]
    pub fn received_total(&self) -> u64 {
        self.received
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Events of every kind JetStream has acknowledged.
    #[must_use]
    pub fn published_total(&self) -> u64 {
        self.published
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Invite snapshots JetStream has acknowledged.
    #[must_use]
    pub fn snapshots_published(&self) -> u64 {
        self.published[4].load(Ordering::Relaxed)
    }

    /// Events waiting for NATS.
    #[must_use]
    pub fn buffered(&self) -> u64 {
        self.buffered.load(Ordering::Relaxed).max(0).cast_unsigned()
    }

    /// Invite-list and vanity requests sent to Discord.
    #[must_use]
    pub fn snapshot_requests(&self) -> u64 {
        self.snapshot_requests.load(Ordering::Relaxed)
    }

    /// 5xx (or unreadable) answers to snapshot requests, each retried.
    #[must_use]
    pub fn discord_server_errors(&self) -> u64 {
        self.discord_server_errors.load(Ordering::Relaxed)
    }

    /// Publish attempts NATS did not acknowledge.
    #[must_use]
    pub fn publish_retries(&self) -> u64 {
        self.publish_retries.load(Ordering::Relaxed)
    }

    #[must_use]
    pub fn shards_connected(&self) -> u64 {
        self.shards_connected.load(Ordering::Relaxed)
    }

    /// Guilds this instance tracks.
    #[must_use]
    pub fn guilds(&self) -> u64 {
        self.guilds.load(Ordering::Relaxed)
    }

    /// Largest proven lead of this host's clock over Discord's, ms (0 = none).
    #[must_use]
    pub fn clock_ahead_ms(&self) -> u64 {
        self.clock_ahead_ms.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every metric.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        family(
            &mut out,
            "ingest_events_received_total",
            "counter",
            "Events ingest produced (gateway dispatches and invite snapshots), by kind.",
        );
        for (name, counter) in KINDS.iter().zip(&self.received) {
            let _ = writeln!(
                out,
                "ingest_events_received_total{{kind=\"{name}\"}} {}",
                load(counter)
            );
        }
        family(
            &mut out,
            "ingest_events_published_total",
            "counter",
            "Events JetStream acknowledged, by kind.",
        );
        for (name, counter) in KINDS.iter().zip(&self.published) {
            let _ = writeln!(
                out,
                "ingest_events_published_total{{kind=\"{name}\"}} {}",
                load(counter)
            );
        }
        family(
            &mut out,
            "ingest_buffer_events",
            "gauge",
            "Events waiting in memory for NATS to acknowledge them.",
        );
        let _ = writeln!(out, "ingest_buffer_events {}", self.buffered());
        let plain: [(&str, &str, &str, &AtomicU64); 11] = [
            (
                "ingest_buffer_capacity",
                "gauge",
                "Most events held in memory (INGEST_BUFFER); when full the shards stop reading.",
                &self.buffer_capacity,
            ),
            (
                "ingest_buffer_full_waits_total",
                "counter",
                "Times the buffer was full and an event had to wait for room.",
                &self.buffer_full_waits,
            ),
            (
                "ingest_publish_retries_total",
                "counter",
                "Publishes retried because NATS did not acknowledge them.",
                &self.publish_retries,
            ),
            (
                "ingest_publish_failing",
                "gauge",
                "1 while publishing to NATS fails.",
                &self.publish_failing,
            ),
            (
                "ingest_snapshot_requests_total",
                "counter",
                "Invite-list and vanity requests sent to Discord.",
                &self.snapshot_requests,
            ),
            (
                "ingest_snapshots_coalesced_total",
                "counter",
                "Snapshot requests folded into one already queued.",
                &self.snapshots_coalesced,
            ),
            (
                "ingest_snapshot_retries_total",
                "counter",
                "Snapshots retried after a 5xx or unreadable answer.",
                &self.snapshot_retries,
            ),
            (
                "ingest_shards",
                "gauge",
                "Shards this process runs.",
                &self.shards,
            ),
            (
                "ingest_shards_connected",
                "gauge",
                "Shards with a live gateway session.",
                &self.shards_connected,
            ),
            (
                "ingest_guilds",
                "gauge",
                "Guilds available on this process' shards.",
                &self.guilds,
            ),
            (
                "ingest_clock_ahead_of_discord_ms",
                "gauge",
                "Largest proven lead of this host's clock over Discord's (from answers' Date header); above ATTRIBUTION_CLOCK_SKEW_MS attribution may be wrong.",
                &self.clock_ahead_ms,
            ),
        ];
        for (name, kind, help, value) in plain {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {}", load(value));
        }
        family(
            &mut out,
            "ingest_discord_errors_total",
            "counter",
            "Error answers from Discord REST, by status. 429s are retried inside twilight-http and counted process-wide.",
        );
        let statuses = [
            ("401", load(&self.discord_unauthorized)),
            ("403", load(&self.discord_forbidden)),
            ("404", load(&self.discord_not_found)),
            ("429", rate_limited_total()),
            ("5xx", load(&self.discord_server_errors)),
            ("other", load(&self.discord_other_errors)),
        ];
        for (status, value) in statuses {
            let _ = writeln!(
                out,
                "ingest_discord_errors_total{{status=\"{status}\"}} {value}"
            );
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A bound metrics endpoint, not yet serving.
pub(crate) struct MetricsServer {
    listener: TcpListener,
}

impl MetricsServer {
    pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
        })
    }

    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Answers `GET /metrics` until `shutdown` fires.
    pub(crate) async fn serve(self, metrics: Arc<IngestMetrics>, shutdown: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = shutdown.cancelled() => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "metrics endpoint could not accept a connection");
                    continue;
                }
            };
            let metrics = Arc::clone(&metrics);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let metrics = Arc::clone(&metrics);
                    async move { Ok::<_, Infallible>(answer(&request, &metrics)) }
                });
                if let Err(error) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%error, "metrics connection ended with an error");
                }
            });
        }
    }
}

fn answer(request: &Request<Incoming>, metrics: &IngestMetrics) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method().as_str(), request.uri().path()) {
        ("GET", "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found; metrics are at /metrics\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// 429s twilight-http met and retried, in this process.
static RATE_LIMITED: AtomicU64 = AtomicU64::new(0);

/// 429 answers twilight-http received and retried in this process (needs
/// [`RateLimitCounter`] installed in the tracing subscriber).
#[must_use]
pub fn rate_limited_total() -> u64 {
    RATE_LIMITED.load(Ordering::Relaxed)
}

/// A tracing layer that counts the 429s twilight-http retries on its own.
///
/// twilight-http waits for the bucket and resends a request answered 429 without telling the
/// caller; the only trace is its `rate limited; retrying` event. This layer counts those
/// events, process-wide (one ingest per process in production). Install it with
/// [`rate_limit_layer`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimitCounter;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RateLimitCounter {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Message(bool);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}").starts_with("rate limited");
                }
            }
        }
        if !event.metadata().target().starts_with("twilight_http") {
            return;
        }
        let mut message = Message(false);
        event.record(&mut message);
        if message.0 {
            RATE_LIMITED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// [`RateLimitCounter`] filtered to twilight-http's info events, whatever `RUST_LOG` says.
#[must_use]
pub fn rate_limit_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer as _;
    RateLimitCounter.with_filter(
        tracing_subscriber::filter::Targets::new()
            .with_target("twilight_http", tracing::Level::INFO),
    )
}
