//! The worker's Prometheus metrics (`docs/metrics.md`), read from [`WorkerStats`] when scraped:
//! the partitions keep plain atomics on their hot path and this turns them into families.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use invitrack_model::JoinSource;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::WorkerStats;
use crate::reports::JUDGEMENTS;

/// The lag histogram's bounds, ms (edges of the fine buckets of `LagHistogram`).
const LAG_BOUNDS_MS: [u64; 14] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 100_000,
];

/// The worker's families, brought up to `WorkerStats` at each scrape.
#[derive(Clone)]
pub struct WorkerMetrics {
    stats: Arc<WorkerStats>,
    applied: IntCounter,
    decisions: IntCounterVec,
    join_source_reports: IntCounterVec,
    published: IntCounter,
    dead_letters: IntCounter,
    clamped: IntCounter,
    missed_joins_asked: IntCounter,
    joins_found_late: IntCounter,
    transactions: IntCounter,
    transaction_seconds: prometheus::Counter,
    partitions: IntGauge,
    pending: IntGauge,
    /// Only its description: the buckets come from `WorkerStats::lag`.
    lag: Histogram,
}

impl WorkerMetrics {
    /// Registers the worker's families in `registry`.
    ///
    /// # Errors
    /// When they are already registered there.
    pub fn register(
        stats: Arc<WorkerStats>,
        registry: &Registry,
    ) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            stats,
            applied: IntCounter::new(
                "invitrack_worker_events_applied_total",
                "Bus messages applied to PostgreSQL (each exactly once).",
            )?,
            decisions: IntCounterVec::new(
                Opts::new(
                    "invitrack_worker_decisions_total",
                    "Joins decided, by source: invite, vanity, ambiguous, unknown.",
                ),
                &["source"],
            )?,
            join_source_reports: IntCounterVec::new(
                Opts::new(
                    "invitrack_worker_join_source_reports_total",
                    "Discord's reported join sources, by judgement against the invite counters: confirmed, credited, disagreed, uninformative, join_not_stored.",
                ),
                &["judgement"],
            )?,
            published: IntCounter::new(
                "invitrack_worker_decisions_published_total",
                "Decisions relayed to the decision stream (for the bot and webhooks).",
            )?,
            dead_letters: IntCounter::new(
                "invitrack_worker_dead_letters_total",
                "Messages that could not be applied, set aside on the dead-letter stream.",
            )?,
            clamped: IntCounter::new(
                "invitrack_worker_times_clamped_total",
                "Messages dated ahead of this worker's clock beyond the allowance (their times clamped).",
            )?,
            missed_joins_asked: IntCounter::new(
                "invitrack_worker_missed_joins_requests_total",
                "Requests to ingest for the members who joined a guild in a window whose uses wait for joins the gateway may not have delivered.",
            )?,
            joins_found_late: IntCounter::new(
                "invitrack_worker_joins_found_late_total",
                "Joins found in the member list after ingest was away, whose GUILD_MEMBER_ADD never arrived.",
            )?,
            transactions: IntCounter::new(
                "invitrack_worker_transactions_total",
                "Transactions that applied messages.",
            )?,
            transaction_seconds: prometheus::Counter::new(
                "invitrack_worker_transaction_seconds_total",
                "Time spent applying messages in transactions, summed over partitions.",
            )?,
            partitions: IntGauge::new(
                "invitrack_worker_partitions_owned",
                "Partitions this worker applies (its share of the live workers').",
            )?,
            pending: IntGauge::new(
                "invitrack_worker_pending_joins",
                "Joins this worker holds undecided, waiting for evidence (as of each partition's last tick).",
            )?,
            lag: Histogram::with_opts(HistogramOpts::new(
                "invitrack_worker_lag_seconds",
                "From ingest observing an event to the commit of its effects.",
            ))?,
        };
        for source in JoinSource::ALL {
            metrics.decisions.with_label_values(&[source.as_str()]);
        }
        for judgement in JUDGEMENTS {
            metrics.join_source_reports.with_label_values(&[judgement]);
        }
        registry.register(Box::new(metrics.clone()))?;
        Ok(metrics)
    }

    fn refresh(&self) {
        let stats = &self.stats;
        let catch_up = |counter: &IntCounter, total: u64| {
            counter.inc_by(total.saturating_sub(counter.get()));
        };
        catch_up(&self.applied, stats.applied.load(Ordering::Relaxed));
        catch_up(
            &self.published,
            stats.decisions_published.load(Ordering::Relaxed),
        );
        catch_up(
            &self.dead_letters,
            stats.dead_letters.load(Ordering::Relaxed),
        );
        catch_up(&self.clamped, stats.times_clamped.load(Ordering::Relaxed));
        catch_up(
            &self.missed_joins_asked,
            stats.missed_joins_asked.load(Ordering::Relaxed),
        );
        catch_up(
            &self.joins_found_late,
            stats.joins_found_late.load(Ordering::Relaxed),
        );
        catch_up(&self.transactions, stats.batches.load(Ordering::Relaxed));
        for (source, total) in JoinSource::ALL.iter().zip(&stats.decisions_by_source) {
            catch_up(
                &self.decisions.with_label_values(&[source.as_str()]),
                total.load(Ordering::Relaxed),
            );
        }
        for (judgement, total) in JUDGEMENTS.iter().zip(&stats.join_source_reports) {
            catch_up(
                &self.join_source_reports.with_label_values(&[judgement]),
                total.load(Ordering::Relaxed),
            );
        }
        let seconds = stats.apply_micros.load(Ordering::Relaxed) as f64 / 1e6;
        self.transaction_seconds
            .inc_by((seconds - self.transaction_seconds.get()).max(0.0));
        self.partitions
            .set(i64::try_from(stats.owned_partitions.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        self.pending
            .set(i64::try_from(stats.pending_joins()).unwrap_or(i64::MAX));
    }

    fn lag_family(&self) -> MetricFamily {
        let (below, count, sum_ms) = self.stats.lag.cumulative(&LAG_BOUNDS_MS);
        let mut histogram = prometheus::proto::Histogram::default();
        histogram.set_sample_count(count);
        histogram.set_sample_sum(sum_ms as f64 / 1000.0);
        histogram.set_bucket(
            LAG_BOUNDS_MS
                .iter()
                .zip(below)
                .map(|(bound, cumulative)| {
                    let mut bucket = prometheus::proto::Bucket::default();
                    bucket.set_upper_bound(*bound as f64 / 1000.0);
                    bucket.set_cumulative_count(cumulative);
                    bucket
                })
                .collect(),
        );
        let mut metric = prometheus::proto::Metric::default();
        metric.set_histogram(histogram);
        let mut family = prometheus::proto::MetricFamily::default();
        family.set_name("invitrack_worker_lag_seconds".to_owned());
        family.set_help("From ingest observing an event to the commit of its effects.".to_owned());
        family.set_field_type(prometheus::proto::MetricType::HISTOGRAM);
        family.mut_metric().push(metric);
        family
    }

    fn parts(&self) -> [&dyn Collector; 12] {
        [
            &self.applied,
            &self.decisions,
            &self.join_source_reports,
            &self.published,
            &self.dead_letters,
            &self.clamped,
            &self.missed_joins_asked,
            &self.joins_found_late,
            &self.transactions,
            &self.transaction_seconds,
            &self.partitions,
            &self.pending,
        ]
    }
}

impl Collector for WorkerMetrics {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs: Vec<&Desc> = self.parts().into_iter().flat_map(Collector::desc).collect();
        descs.extend(self.lag.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        let mut families: Vec<MetricFamily> = self
            .parts()
            .into_iter()
            .flat_map(Collector::collect)
            .collect();
        families.push(self.lag_family());
        families
    }
}
