//! Sending deliveries: takes the due ones from PostgreSQL (any number of senders share them:
//! `FOR UPDATE SKIP LOCKED` and a lease), POSTs each signed, and records the outcome or the
//! next attempt.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use futures_util::StreamExt as _;
use invitrack_storage::Pool;
use invitrack_storage::webhooks::{self, Attempt, DueDelivery};
use reqwest::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::destination::{self, WebhookUrl};
use crate::metrics::WebhookMetrics;
use crate::schedule::RetrySchedule;
use crate::{WebhookError, signature};

/// Deliveries taken at once, per concurrent request.
const TAKE_PER_REQUEST: i64 = 4;
/// How often due deliveries are looked for without a wake-up (retries come due by time).
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How often the pending deliveries are counted (a metric).
const COUNT_EVERY: Duration = Duration::from_secs(5);
/// How often old deliveries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Longest `last_error` kept.
const ERROR_MAX: usize = 500;

pub(crate) struct Sender {
    pub(crate) metrics: WebhookMetrics,
    pub(crate) pool: Pool,
    pub(crate) client: reqwest::Client,
    pub(crate) allow_private: bool,
    pub(crate) concurrency: usize,
    pub(crate) schedule: RetrySchedule,
    pub(crate) timeout: Duration,
    pub(crate) keep_delivered: TimeDelta,
    pub(crate) keep_failed: TimeDelta,
    /// Woken when deliveries were queued.
    pub(crate) queued: Arc<Notify>,
}

/// The HTTP client of deliveries: no redirects (a redirect could lead to a private address,
/// and the signature was made for this URL), the resolver that keeps private addresses out.
pub(crate) fn client(
    timeout: Duration,
    allow_private: bool,
) -> Result<reqwest::Client, WebhookError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(30));
    if let Some(resolver) = destination::resolver(allow_private) {
        builder = builder.dns_resolver(resolver);
    }
    builder.build().map_err(WebhookError::Client)
}

impl Sender {
    pub(crate) async fn run(self, stop: CancellationToken) {
        let mut last_prune = tokio::time::Instant::now();
        let mut last_count: Option<tokio::time::Instant> = None;
        loop {
            if let Err(error) = self.send_due(&stop).await {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "webhook deliveries not taken"
                );
            }
            if last_count.is_none_or(|at| at.elapsed() >= COUNT_EVERY) {
                last_count = Some(tokio::time::Instant::now());
                self.count_pending().await;
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = tokio::time::Instant::now();
                self.prune().await;
            }
            tokio::select! {
                () = self.queued.notified() => {}
                () = tokio::time::sleep(POLL_EVERY) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Sends what is due until nothing is.
    async fn send_due(&self, stop: &CancellationToken) -> Result<(), WebhookError> {
        let take = i64::try_from(self.concurrency).unwrap_or(i64::MAX) * TAKE_PER_REQUEST;
        // An attempt not recorded by then is taken again (its sender died).
        let lease_ms = i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX / 4) * 2 + 5_000;
        while !stop.is_cancelled() {
            let due = {
                let mut conn = self.pool.get().await.map_err(WebhookError::pool)?;
                webhooks::take_due(&mut conn, take, lease_ms).await?
            };
            if due.is_empty() {
                return Ok(());
            }
            futures_util::stream::iter(due)
                .for_each_concurrent(self.concurrency, |delivery| self.attempt(delivery))
                .await;
        }
        Ok(())
    }

    async fn attempt(&self, delivery: DueDelivery) {
        let outcome = self.post(&delivery).await;
        let attempt = match outcome {
            Ok(status) if (200..300).contains(&status) => {
                self.metrics
                    .attempts
                    .with_label_values(&["delivered"])
                    .inc();
                Attempt::Delivered { status }
            }
            not_delivered => {
                let (status, error) = match not_delivered {
                    Ok(status) => (Some(status), format!("answered HTTP {status}")),
                    Err(error) => (None, error),
                };
                let retry_at = self.schedule.next_attempt(
                    delivery.attempt,
                    delivery.created_at,
                    Utc::now(),
                    rand::random::<f64>(),
                );
                tracing::info!(
                    webhook_id = delivery.webhook_id,
                    delivery_id = delivery.id,
                    attempt = delivery.attempt,
                    status,
                    error = %error,
                    retry_at = ?retry_at,
                    "webhook not delivered"
                );
                let result = if retry_at.is_some() {
                    "retrying"
                } else {
                    "failed"
                };
                self.metrics.attempts.with_label_values(&[result]).inc();
                Attempt::NotDelivered {
                    status,
                    error: truncate(error),
                    retry_at,
                }
            }
        };
        let recorded = async {
            let mut conn = self.pool.get().await.map_err(WebhookError::pool)?;
            webhooks::record_attempt(&mut conn, delivery.id, &attempt).await?;
            Ok::<_, WebhookError>(())
        };
        if let Err(error) = recorded.await {
            // The lease runs out and the delivery is attempted again: at least once.
            tracing::warn!(
                delivery_id = delivery.id,
                error = &error as &dyn std::error::Error,
                "webhook attempt not recorded"
            );
        }
    }

    /// POSTs `delivery`: the receiver's status, or why there is none.
    async fn post(&self, delivery: &DueDelivery) -> Result<i32, String> {
        // Checked again: the deployment may have stopped allowing private networks since.
        let url = WebhookUrl::parse(&delivery.url, self.allow_private)
            .map_err(|e| format!("the URL {e}"))?;
        let now = Utc::now().timestamp();
        let signed = signature::sign(&delivery.secret, now, delivery.body.as_bytes());
        let header = |value: &str| HeaderValue::from_str(value).map_err(|e| e.to_string());
        let response = self
            .client
            .post(url.as_str())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(USER_AGENT, HeaderValue::from_static(crate::USER_AGENT))
            .header("Invitrack-Signature", header(&signed)?)
            .header(
                "Invitrack-Delivery",
                header(&delivery.decision_id.to_string())?,
            )
            .header("Invitrack-Event", header(&delivery.event_type)?)
            .header("Invitrack-Attempt", header(&delivery.attempt.to_string())?)
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(|e| invitrack_telemetry::error_chain(&e))?;
        Ok(i32::from(response.status().as_u16()))
    }

    async fn count_pending(&self) {
        let counted = async {
            let mut conn = self.pool.get().await.map_err(WebhookError::pool)?;
            Ok::<_, WebhookError>(webhooks::pending_count(&mut conn).await?)
        };
        if let Ok(pending) = counted.await {
            self.metrics.pending.set(pending);
        }
    }

    async fn prune(&self) {
        let now = Utc::now();
        let pruned = async {
            let mut conn = self.pool.get().await.map_err(WebhookError::pool)?;
            Ok::<_, WebhookError>(
                webhooks::prune(&mut conn, now - self.keep_delivered, now - self.keep_failed)
                    .await?,
            )
        };
        match pruned.await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "old webhook deliveries deleted"),
            Err(error) => tracing::warn!(error = &error as &dyn std::error::Error, "prune failed"),
        }
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > ERROR_MAX {
        let mut end = ERROR_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
