//! The sender's metrics, in the registry of the service that runs it (`docs/metrics.md`).

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub(crate) struct WebhookMetrics {
    /// Attempts by result: `delivered`, `retrying`, `failed` (given up).
    pub(crate) attempts: IntCounterVec,
    /// Deliveries not finished yet (due now or later).
    pub(crate) pending: IntGauge,
}

impl WebhookMetrics {
    pub(crate) fn new(registry: Option<&Registry>) -> Self {
        let attempts = IntCounterVec::new(
            Opts::new(
                "invitrack_webhooks_attempts_total",
                "Webhook delivery attempts by this process, by result (delivered, retrying, failed: given up).",
            ),
            &["result"],
        )
        .expect("a valid metric");
        for result in ["delivered", "retrying", "failed"] {
            attempts.with_label_values(&[result]);
        }
        let pending = IntGauge::new(
            "invitrack_webhooks_deliveries_pending",
            "Webhook deliveries of the deployment not delivered or given up yet.",
        )
        .expect("a valid metric");
        if let Some(registry) = registry {
            // A second sender in one process (tests) keeps the first one's.
            let _ = registry.register(Box::new(attempts.clone()));
            let _ = registry.register(Box::new(pending.clone()));
        }
        Self { attempts, pending }
    }
}
