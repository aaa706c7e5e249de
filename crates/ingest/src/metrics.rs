//! What ingest counts, and the Prometheus endpoint that shows it.
//!
//! Counters are plain atomics shared by the shard readers, the snapshot scheduler and the
//! publisher; `GET /metrics` (`invitrack_telemetry::MetricsEndpoint`) renders them in
//! Prometheus' text format.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use invitrack_bus::proto::guild_event::Kind;
use invitrack_discord::DiscordGate;

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
#[derive(Debug)]
pub struct IngestMetrics {
    /// Every request to Discord goes through it; it counts what Discord rejected.
    pub(crate) discord: Arc<DiscordGate>,
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
    pub(crate) discord_not_found: AtomicU64,
    pub(crate) discord_server_errors: AtomicU64,
    pub(crate) discord_other_errors: AtomicU64,
    pub(crate) shards: AtomicU64,
    pub(crate) shards_connected: AtomicU64,
    pub(crate) guilds: AtomicU64,
    /// Largest proven lead of this host's clock over Discord's, ms (0 = none seen).
    pub(crate) clock_ahead_ms: AtomicU64,
    pub(crate) interactions_forwarded: AtomicU64,
}

impl IngestMetrics {
    #[must_use]
    pub fn new(discord: Arc<DiscordGate>) -> Self {
        Self {
            discord,
            received: Default::default(),
            published: Default::default(),
            buffered: AtomicI64::default(),
            buffer_capacity: AtomicU64::default(),
            buffer_full_waits: AtomicU64::default(),
            publish_retries: AtomicU64::default(),
            publish_failing: AtomicU64::default(),
            snapshot_requests: AtomicU64::default(),
            snapshots_coalesced: AtomicU64::default(),
            snapshot_retries: AtomicU64::default(),
            discord_not_found: AtomicU64::default(),
            discord_server_errors: AtomicU64::default(),
            discord_other_errors: AtomicU64::default(),
            shards: AtomicU64::default(),
            shards_connected: AtomicU64::default(),
            guilds: AtomicU64::default(),
            clock_ahead_ms: AtomicU64::default(),
            interactions_forwarded: AtomicU64::default(),
        }
    }

    /// The gate every request to Discord goes through.
    #[must_use]
    pub fn discord(&self) -> &DiscordGate {
        &self.discord
    }

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
        let plain: [(&str, &str, &str, &AtomicU64); 12] = [
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
                "ingest_interactions_forwarded_total",
                "counter",
                "Interactions (commands, buttons, modals) published for the bot.",
                &self.interactions_forwarded,
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
        invitrack_discord::write_gate_metrics(
            &mut out,
            "ingest",
            &self.discord,
            &[
                ("404", load(&self.discord_not_found)),
                ("5xx", load(&self.discord_server_errors)),
                ("other", load(&self.discord_other_errors)),
            ],
        );
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}
