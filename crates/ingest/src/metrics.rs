//! What ingest counts, in a Prometheus registry that its operations endpoint serves
//! (`docs/metrics.md`). The shard readers, the snapshot scheduler and the publisher update the
//! metrics directly; the accessors below are for the demo, tests and benchmarks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use invitrack_bus::proto::guild_event::Kind;
use invitrack_discord::{DiscordGate, GateMetrics};
use prometheus::core::Collector;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// The kinds of event ingest publishes, as metric labels.
const KINDS: [&str; 10] = [
    "member_add",
    "member_remove",
    "invite_create",
    "invite_delete",
    "invite_snapshot",
    "snapshot_failed",
    "shard_clock",
    "join_source_report",
    "members_found",
    "guild_available",
];
/// How a member search was answered, as metric labels.
const SEARCH_ANSWERS: [&str; 5] = ["found", "indexing", "refused", "route_refused", "failed"];
const SNAPSHOT: usize = 4;

pub(crate) fn kind_index(kind: &Kind) -> usize {
    match kind {
        Kind::MemberAdd(_) => 0,
        Kind::MemberRemove(_) => 1,
        Kind::InviteCreate(_) => 2,
        Kind::InviteDelete(_) => 3,
        Kind::InviteSnapshot(_) => SNAPSHOT,
        Kind::SnapshotFailed(_) => 5,
        Kind::ShardClock(_) => 6,
        Kind::JoinSourceReport(_) => 7,
        Kind::MembersFound(_) => 8,
        Kind::GuildAvailable(_) => 9,
    }
}

/// Every metric of one ingest instance.
pub struct IngestMetrics {
    registry: Registry,
    /// Every request to Discord goes through it; it counts what Discord rejected.
    pub(crate) discord: Arc<DiscordGate>,
    /// The gate's families, and the error statuses ingest classifies itself.
    pub(crate) gate: GateMetrics,
    received: [IntCounter; KINDS.len()],
    published: [IntCounter; KINDS.len()],
    /// Events queued for NATS and not yet acknowledged by JetStream. The drain task may
    /// acknowledge an event a moment before its sender counts it in (it dips below zero).
    pub(crate) buffered: IntGauge,
    pub(crate) buffer_capacity: IntGauge,
    /// Times a producer found the buffer full and had to wait (the shards stop reading).
    pub(crate) buffer_full_waits: IntCounter,
    pub(crate) publish_retries: IntCounter,
    /// 1 while the last publish attempt failed (NATS unreachable or refusing).
    pub(crate) publish_failing: IntGauge,
    pub(crate) snapshot_requests: IntCounter,
    pub(crate) snapshots_coalesced: IntCounter,
    pub(crate) snapshot_retries: IntCounter,
    pub(crate) shards: IntGauge,
    pub(crate) shards_connected: IntGauge,
    pub(crate) guilds: IntGauge,
    /// Guilds whose invites have been read (or found unreadable) since this process started.
    pub(crate) guilds_read: IntGauge,
    /// Seconds until every guild's invites are read at the current pace (0 when all are).
    pub(crate) startup_eta: Gauge,
    /// Largest proven lead of this host's clock over Discord's, ms (0 = none seen).
    clock_ahead_ms: AtomicU64,
    clock_ahead: Gauge,
    pub(crate) interactions_forwarded: IntCounter,
    members_searches: IntCounterVec,
    /// Members Discord's member search reported on.
    pub(crate) members_search_reported: IntCounter,
    /// Members given up on (never found, or the search kept failing).
    pub(crate) members_search_given_up: IntCounter,
    /// Members waiting to be asked about.
    pub(crate) members_search_waiting: IntGauge,
}

impl std::fmt::Debug for IngestMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestMetrics")
            .field("received", &self.received_total())
            .field("published", &self.published_total())
            .field("guilds", &self.guilds())
            .finish_non_exhaustive()
    }
}

/// `metric`, registered in `registry` (names are constants: a failure is a bug).
fn registered<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: Result<M, prometheus::Error>,
) -> M {
    let metric = metric.expect("a valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    registered(registry, IntCounter::new(name, help))
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    registered(registry, IntGauge::new(name, help))
}

fn float_gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    registered(registry, Gauge::new(name, help))
}

fn by_kind(registry: &Registry, name: &str, help: &str) -> [IntCounter; KINDS.len()] {
    let family = registered(
        registry,
        IntCounterVec::new(Opts::new(name, help), &["kind"]),
    );
    KINDS.map(|kind| family.with_label_values(&[kind]))
}

impl IngestMetrics {
    #[must_use]
    pub fn new(discord: Arc<DiscordGate>) -> Self {
        let registry = Registry::new();
        let r = &registry;
        let gate = GateMetrics::register("invitrack_ingest", Arc::clone(&discord), r)
            .expect("registered once");
        for status in ["404", "5xx", "other"] {
            gate.errors().with_label_values(&[status]);
        }
        Self {
            discord,
            gate,
            received: by_kind(
                r,
                "invitrack_ingest_events_received_total",
                "Events ingest produced (gateway dispatches and invite snapshots), by kind.",
            ),
            published: by_kind(
                r,
                "invitrack_ingest_events_published_total",
                "Events JetStream acknowledged, by kind.",
            ),
            buffered: gauge(
                r,
                "invitrack_ingest_buffer_events",
                "Events waiting in memory for NATS to acknowledge them.",
            ),
            buffer_capacity: gauge(
                r,
                "invitrack_ingest_buffer_capacity",
                "Most events held in memory (INGEST_BUFFER); when full the shards stop reading.",
            ),
            buffer_full_waits: counter(
                r,
                "invitrack_ingest_buffer_full_waits_total",
                "Times the buffer was full and an event had to wait for room.",
            ),
            publish_retries: counter(
                r,
                "invitrack_ingest_publish_retries_total",
                "Publishes retried because NATS did not acknowledge them.",
            ),
            publish_failing: gauge(
                r,
                "invitrack_ingest_publish_failing",
                "1 while publishing to NATS fails.",
            ),
            snapshot_requests: counter(
                r,
                "invitrack_ingest_snapshot_requests_total",
                "Invite-list and vanity requests sent to Discord.",
            ),
            snapshots_coalesced: counter(
                r,
                "invitrack_ingest_snapshots_coalesced_total",
                "Snapshot requests folded into one already queued.",
            ),
            snapshot_retries: counter(
                r,
                "invitrack_ingest_snapshot_retries_total",
                "Snapshots retried after a 5xx or unreadable answer.",
            ),
            shards: gauge(r, "invitrack_ingest_shards", "Shards this process runs."),
            shards_connected: gauge(
                r,
                "invitrack_ingest_shards_connected",
                "Shards with a live gateway session.",
            ),
            guilds: gauge(
                r,
                "invitrack_ingest_guilds",
                "Guilds available on this process' shards.",
            ),
            guilds_read: gauge(
                r,
                "invitrack_ingest_guilds_read",
                "Guilds whose invites were read (or found unreadable) since this process started; below invitrack_ingest_guilds during start-up.",
            ),
            startup_eta: float_gauge(
                r,
                "invitrack_ingest_startup_eta_seconds",
                "Seconds until every guild's invites are read at the current pace (0 once they are).",
            ),
            clock_ahead_ms: AtomicU64::new(0),
            clock_ahead: float_gauge(
                r,
                "invitrack_ingest_clock_ahead_of_discord_seconds",
                "Largest proven lead of this host's clock over Discord's (from answers' Date header); above ATTRIBUTION_CLOCK_SKEW_MS attribution may be wrong.",
            ),
            interactions_forwarded: counter(
                r,
                "invitrack_ingest_interactions_forwarded_total",
                "Interactions (commands, buttons, modals) published for the bot.",
            ),
            members_searches: {
                let family = registered(
                    r,
                    IntCounterVec::new(
                        Opts::new(
                            "invitrack_ingest_members_searches_total",
                            "Discord member searches (ATTRIBUTION_DISCORD_JOIN_SOURCE), by answer: found, indexing (202), refused (403/404 in a guild), route_refused (400: off for the process), failed.",
                        ),
                        &["answer"],
                    ),
                );
                for answer in SEARCH_ANSWERS {
                    family.with_label_values(&[answer]);
                }
                family
            },
            members_search_reported: counter(
                r,
                "invitrack_ingest_members_search_reported_total",
                "Members whose join source Discord's member search reported.",
            ),
            members_search_given_up: counter(
                r,
                "invitrack_ingest_members_search_given_up_total",
                "Members the member search never found (or kept failing for) within INGEST_MEMBERS_SEARCH_ATTEMPTS.",
            ),
            members_search_waiting: gauge(
                r,
                "invitrack_ingest_members_search_waiting",
                "Members waiting to be asked about in a member search.",
            ),
            registry,
        }
    }

    /// Members waiting to be asked about in a member search.
    #[must_use]
    pub fn members_search_waiting(&self) -> i64 {
        self.members_search_waiting.get()
    }

    pub(crate) fn count_members_search(&self, answer: &str) {
        self.members_searches.with_label_values(&[answer]).inc();
    }

    /// The registry `/metrics` serves.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every metric in Prometheus' text format, as `/metrics` serves it.
    #[must_use]
    pub fn render(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }

    /// The gate every request to Discord goes through.
    #[must_use]
    pub fn discord(&self) -> &DiscordGate {
        &self.discord
    }

    pub(crate) fn count_received(&self, kind: &Kind) {
        self.received[kind_index(kind)].inc();
    }

    pub(crate) fn count_published(&self, kind: &Kind) {
        self.published[kind_index(kind)].inc();
    }

    /// Counts an error answer of a status the gate does not classify (`404`, `5xx`, `other`).
    pub(crate) fn count_discord_error(&self, status: &str) {
        self.gate.errors().with_label_values(&[status]).inc();
    }

    /// Records a proven lead of this host's clock; returns the largest lead seen before.
    pub(crate) fn clock_ahead_by(&self, ahead_ms: u64) -> u64 {
        let before = self.clock_ahead_ms.fetch_max(ahead_ms, Ordering::Relaxed);
        self.clock_ahead.set(before.max(ahead_ms) as f64 / 1000.0);
        before
    }

    /// Events of every kind produced so far.
    #[must_use]
    pub fn received_total(&self) -> u64 {
        self.received.iter().map(IntCounter::get).sum()
    }

    /// Events of every kind JetStream has acknowledged.
    #[must_use]
    pub fn published_total(&self) -> u64 {
        self.published.iter().map(IntCounter::get).sum()
    }

    /// Invite snapshots JetStream has acknowledged.
    #[must_use]
    pub fn snapshots_published(&self) -> u64 {
        self.published[SNAPSHOT].get()
    }

    /// Events waiting for NATS.
    #[must_use]
    pub fn buffered(&self) -> u64 {
        self.buffered.get().max(0).cast_unsigned()
    }

    /// Invite-list and vanity requests sent to Discord.
    #[must_use]
    pub fn snapshot_requests(&self) -> u64 {
        self.snapshot_requests.get()
    }

    /// 5xx (or unreadable) answers to snapshot requests, each retried.
    #[must_use]
    pub fn discord_server_errors(&self) -> u64 {
        self.gate.errors().with_label_values(&["5xx"]).get()
    }

    /// Publish attempts NATS did not acknowledge.
    #[must_use]
    pub fn publish_retries(&self) -> u64 {
        self.publish_retries.get()
    }

    #[must_use]
    pub fn shards_connected(&self) -> u64 {
        self.shards_connected.get().max(0).cast_unsigned()
    }

    /// Guilds this instance tracks.
    #[must_use]
    pub fn guilds(&self) -> u64 {
        self.guilds.get().max(0).cast_unsigned()
    }

    /// Guilds whose invites were read since start.
    #[must_use]
    pub fn guilds_read(&self) -> u64 {
        self.guilds_read.get().max(0).cast_unsigned()
    }

    /// Largest proven lead of this host's clock over Discord's, ms (0 = none).
    #[must_use]
    pub fn clock_ahead_ms(&self) -> u64 {
        self.clock_ahead_ms.load(Ordering::Relaxed)
    }
}
