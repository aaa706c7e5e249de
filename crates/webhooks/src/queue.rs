//! Queuing deliveries from the decision stream (`docs/decisions.md`): one durable consumer per
//! partition, shared by every process that sends webhooks. Each decision becomes a delivery
//! row per webhook of its guild that takes its event, written once whatever the stream brings
//! twice, before the decision is acknowledged.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures_util::StreamExt as _;
use invitrack_bus::{Bus, Decision};
use invitrack_model::{BotId, GuildId, GuildKey};
use invitrack_storage::Pool;
use prost::Message as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::WebhookError;
use crate::event::WebhookEvent;

const ACK_WAIT: Duration = Duration::from_secs(30);
/// Decisions in flight per partition: queuing needs no order (each delivery is retried on its
/// own schedule), so a partition's decisions are taken many at a time.
const MAX_ACK_PENDING: i64 = 256;
const RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

pub(crate) struct Queue {
    pub(crate) pool: Pool,
    pub(crate) bus: Bus,
    pub(crate) queued: Arc<Notify>,
}

impl Queue {
    /// Queues partition `partition`'s decisions until `stop`, starting again after any failure.
    pub(crate) async fn run(self: Arc<Self>, partition: u32, stop: CancellationToken) {
        let mut retry_delays = invitrack_telemetry::backoff(RETRY_DELAY, MAX_RETRY_DELAY);
        while !stop.is_cancelled() {
            match self.read(partition, &stop).await {
                Ok(()) => return,
                Err(error) => {
                    let retry_delay = retry_delays.next().unwrap_or(MAX_RETRY_DELAY);
                    tracing::warn!(
                        partition,
                        error = &error as &dyn std::error::Error,
                        retry_in_ms = retry_delay.as_millis(),
                        "webhook queue failed"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(retry_delay) => {}
                        () = stop.cancelled() => return,
                    }
                }
            }
        }
    }

    async fn read(&self, partition: u32, stop: &CancellationToken) -> Result<(), WebhookError> {
        let layout = &self.bus.layout;
        let name = format!("webhooks-{partition}");
        let stream = self
            .bus
            .jetstream
            .get_stream(layout.decision_stream())
            .await
            .map_err(|e| WebhookError::jetstream("get the decision stream", e))?;
        let mut messages = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: format!("{}.decision.{partition}.>", layout.prefix()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    max_ack_pending: MAX_ACK_PENDING,
                    // Webhooks registered now take decisions from now on.
                    deliver_policy: DeliverPolicy::New,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| WebhookError::jetstream("create the webhook consumer", e))?
            .messages()
            .await
            .map_err(|e| WebhookError::jetstream("pull decisions", e))?;
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                () = stop.cancelled() => return Ok(()),
            };
            let Some(message) = next else {
                return Err(WebhookError::jetstream(
                    "pull decisions",
                    "the consumer ended",
                ));
            };
            let message = message.map_err(|e| WebhookError::jetstream("receive a decision", e))?;
            let ack = match self.queue(&message.payload).await {
                Ok(()) => AckKind::Ack,
                Err(error) => {
                    tracing::warn!(
                        partition,
                        error = &error as &dyn std::error::Error,
                        "decision not queued for webhooks; retrying"
                    );
                    AckKind::Nak(Some(RETRY_DELAY * 5))
                }
            };
            message
                .ack_with(ack)
                .await
                .map_err(|e| WebhookError::jetstream("acknowledge", e))?;
        }
    }

    async fn queue(&self, payload: &[u8]) -> Result<(), WebhookError> {
        let Ok(decision) = Decision::decode(payload) else {
            // Nothing can be sent of it; it must not come back forever.
            tracing::error!("not a decision: skipped");
            return Ok(());
        };
        let (Some(event), Some(guild_id)) = (
            WebhookEvent::from_decision(&decision),
            GuildId::new_checked(decision.guild_id),
        ) else {
            return Ok(());
        };
        let guild = GuildKey::new(BotId::new(decision.bot_id), guild_id);
        let mut conn = self.pool.get().await.map_err(WebhookError::pool)?;
        let queued = invitrack_storage::webhooks::enqueue(
            &mut conn,
            guild,
            decision.id,
            event.event_type.as_str(),
            &event.to_body(),
        )
        .await?;
        if queued > 0 {
            tracing::debug!(guild_id = %guild.guild_id, decision_id = decision.id, queued, "webhook deliveries queued");
            self.queued.notify_one();
        }
        Ok(())
    }
}
