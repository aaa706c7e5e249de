//! Reading a bot's decisions in per-guild order, with any number of replicas: one durable
//! consumer per decision partition, filtered to this bot, with at most one message in flight.
//! Replicas share each consumer, so a partition's decisions are handled one after the other
//! whichever replica takes them, and a decision not acknowledged (a crash, a retry) comes back
//! before any later one of its partition.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures_util::StreamExt as _;
use invitrack_bus::{Bus, proto};
use invitrack_model::BotId;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use crate::BotError;
use crate::poster::{Handled, Poster};

/// How long a decision may go unacknowledged before the server hands it out again: what a
/// replica killed mid-post costs its partitions. A replica still at work (waiting out a 429
/// pause) says so every `PROGRESS_EVERY`.
const ACK_WAIT: Duration = Duration::from_secs(10);
const PROGRESS_EVERY: Duration = Duration::from_secs(4);
const RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// The durable consumer of `bot_id`'s decisions of `partition`, shared by its replicas.
pub(crate) fn consumer_name(bot_id: BotId, partition: u32) -> String {
    format!("bot-{bot_id}-{partition}")
}

/// Handles partition `partition`'s decisions of `bot_id` until `stop`; an error only for what
/// stops the bot (the token refused).
pub(crate) async fn consume_partition(
    poster: Arc<Poster>,
    bus: Bus,
    bot_id: BotId,
    partition: u32,
    stop: CancellationToken,
) -> Result<(), BotError> {
    let mut retry_delays = invitrack_telemetry::backoff(RETRY_DELAY, MAX_RETRY_DELAY);
    while !stop.is_cancelled() {
        match read(&poster, &bus, bot_id, partition, &stop).await {
            Ok(()) => return Ok(()),
            Err(error @ BotError::Discord(_)) => return Err(error),
            Err(error) => {
                let retry_delay = retry_delays.next().unwrap_or(MAX_RETRY_DELAY);
                tracing::warn!(
                    partition,
                    error = &error as &dyn std::error::Error,
                    retry_in_ms = retry_delay.as_millis(),
                    "decision consumer failed"
                );
                tokio::select! {
                    () = tokio::time::sleep(retry_delay) => {}
                    () = stop.cancelled() => return Ok(()),
                }
            }
        }
    }
    Ok(())
}

async fn read(
    poster: &Poster,
    bus: &Bus,
    bot_id: BotId,
    partition: u32,
    stop: &CancellationToken,
) -> Result<(), BotError> {
    let layout = &bus.layout;
    let name = consumer_name(bot_id, partition);
    let stream = bus
        .jetstream
        .get_stream(layout.decision_stream())
        .await
        .map_err(|e| BotError::jetstream("get the decision stream", e))?;
    let consumer: pull::Stream = stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: format!("{}.decision.{partition}.{bot_id}.>", layout.prefix()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: 1,
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| BotError::jetstream("create the decision consumer", e))?
        .messages()
        .await
        .map_err(|e| BotError::jetstream("pull decisions", e))?;
    let mut messages = consumer;
    loop {
        let next = tokio::select! {
            next = messages.next() => next,
            () = stop.cancelled() => return Ok(()),
        };
        let Some(message) = next else {
            return Err(BotError::jetstream("pull decisions", "the consumer ended"));
        };
        let message = message.map_err(|e| BotError::jetstream("receive a decision", e))?;
        let decision = match proto::Decision::decode(message.payload.clone()) {
            Ok(decision) => decision,
            Err(error) => {
                // Nothing can post it; it must not hold its partition.
                tracing::error!(partition, subject = %message.subject, %error, "not a decision: skipped");
                message
                    .ack()
                    .await
                    .map_err(|e| BotError::jetstream("acknowledge", e))?;
                continue;
            }
        };
        let handling = poster.handle(&decision);
        tokio::pin!(handling);
        let handled = loop {
            tokio::select! {
                handled = &mut handling => break handled,
                () = tokio::time::sleep(PROGRESS_EVERY) => {
                    message
                        .ack_with(AckKind::Progress)
                        .await
                        .map_err(|e| BotError::jetstream("acknowledge progress", e))?;
                }
            }
        };
        let ack = match handled {
            Ok(Handled::Done) => AckKind::Ack,
            Ok(Handled::RetryAfter(delay)) => AckKind::Nak(Some(delay)),
            Err(error @ BotError::Discord(_)) => return Err(error),
            Err(error) => {
                tracing::warn!(
                    partition,
                    decision_id = decision.id,
                    error = &error as &dyn std::error::Error,
                    "decision not handled; retrying"
                );
                AckKind::Nak(Some(RETRY_DELAY * 5))
            }
        };
        message
            .ack_with(ack)
            .await
            .map_err(|e| BotError::jetstream("acknowledge", e))?;
    }
}
