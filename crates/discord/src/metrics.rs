//! The gate's figures as Prometheus metrics under a service's prefix: the same families for
//! every service that calls Discord. They are read from the gate when scraped.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::DiscordGate;

/// `{prefix}_discord_*`: requests sent, error answers by status (the gate's 401, 403 and 429,
/// and whatever statuses the service counts itself in [`GateMetrics::errors`]), rejections in
/// the window, the ceiling, requests halted by it, and whether the token was refused.
#[derive(Clone)]
pub struct GateMetrics {
    gate: Arc<DiscordGate>,
    requests: IntCounter,
    errors: IntCounterVec,
    rejected: IntGauge,
    ceiling: IntGauge,
    halted: IntCounter,
    token_invalid: IntGauge,
}

impl GateMetrics {
    /// Registers the families in `registry`.
    ///
    /// # Errors
    /// When `prefix` makes an invalid name or the families are already registered.
    pub fn register(
        prefix: &str,
        gate: Arc<DiscordGate>,
        registry: &Registry,
    ) -> Result<Self, prometheus::Error> {
        let name = |suffix: &str| format!("{prefix}_discord_{suffix}");
        let metrics = Self {
            gate,
            requests: IntCounter::new(
                name("requests_total"),
                "Requests sent to Discord's REST API (every route, retries included).",
            )?,
            errors: IntCounterVec::new(
                Opts::new(
                    name("errors_total"),
                    "Error answers from Discord's REST API, by status.",
                ),
                &["status"],
            )?,
            rejected: IntGauge::new(
                name("rejected_last_10m"),
                "401, 403 and 429 answers in the last 10 minutes (Discord bans the IP address at 10,000).",
            )?,
            ceiling: IntGauge::new(
                name("rejection_ceiling"),
                "DISCORD_REJECTION_CEILING: past it nothing is sent until older rejections age out.",
            )?,
            halted: IntCounter::new(
                name("halted_total"),
                "Requests not sent because the rejections of the last 10 minutes reached the ceiling.",
            )?,
            token_invalid: IntGauge::new(
                name("token_invalid"),
                "1 once Discord refused the token (401): nothing more is sent.",
            )?,
        };
        for status in ["401", "403", "429"] {
            metrics.errors.with_label_values(&[status]);
        }
        registry.register(Box::new(metrics.clone()))?;
        Ok(metrics)
    }

    /// The error counter, for the statuses the service classifies itself (`404`, `5xx`, ...).
    #[must_use]
    pub fn errors(&self) -> &IntCounterVec {
        &self.errors
    }

    /// Brings the counters up to the gate's figures (they only grow).
    fn refresh(&self) {
        let stats = self.gate.stats();
        let catch_up = |counter: &IntCounter, total: u64| {
            counter.inc_by(total.saturating_sub(counter.get()));
        };
        catch_up(&self.requests, stats.sent.load(Ordering::Relaxed));
        catch_up(&self.halted, stats.halted.load(Ordering::Relaxed));
        for (status, total) in [
            ("401", &stats.unauthorized),
            ("403", &stats.forbidden),
            ("429", &stats.rate_limited),
        ] {
            catch_up(
                &self.errors.with_label_values(&[status]),
                total.load(Ordering::Relaxed),
            );
        }
        self.rejected
            .set(i64::try_from(self.gate.rejected_in_window()).unwrap_or(i64::MAX));
        self.ceiling.set(i64::from(self.gate.ceiling()));
        self.token_invalid.set(i64::from(self.gate.token_invalid()));
    }

    fn parts(&self) -> [&dyn Collector; 6] {
        [
            &self.requests,
            &self.errors,
            &self.rejected,
            &self.ceiling,
            &self.halted,
            &self.token_invalid,
        ]
    }
}

impl Collector for GateMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.parts().into_iter().flat_map(Collector::desc).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        self.parts()
            .into_iter()
            .flat_map(Collector::collect)
            .collect()
    }
}
