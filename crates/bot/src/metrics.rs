//! What the bot shows at `GET /metrics` (`BOT_METRICS_BIND`): its messages by outcome, the
//! decisions waiting for it, the channels paused after a 403, and its calls to Discord
//! (`docs/metrics.md`). The webhook sender registers its own in the same registry.

use std::sync::Arc;
use std::time::Duration;

use invitrack_bus::Bus;
use invitrack_discord::DiscordGate;
use invitrack_model::BotId;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use tokio_util::sync::CancellationToken;

/// How often the decisions waiting are read from JetStream.
const WAITING_EVERY: Duration = Duration::from_secs(5);

pub(crate) struct BotMetrics {
    pub(crate) registry: Registry,
    /// Messages by how they ended: `posted`, `missing_permissions`, `unknown_channel`,
    /// `refused`.
    pub(crate) messages: IntCounterVec,
    /// Decisions the posted messages carried (more than the messages in a raid).
    pub(crate) decisions_posted: IntCounter,
    /// Messages Discord could not take now (5xx, 429, timeouts), tried again.
    pub(crate) retries: IntCounter,
    /// Channels paused after a 403.
    pub(crate) channels_paused: IntGauge,
    waiting: IntGaugeVec,
}

impl BotMetrics {
    pub(crate) fn new(gate: Arc<DiscordGate>) -> Self {
        let registry = Registry::new();
        let messages = IntCounterVec::new(
            Opts::new(
                "invitrack_bot_messages_total",
                "Messages the bot sent to Discord, by outcome.",
            ),
            &["outcome"],
        )
        .expect("a valid metric");
        let decisions_posted = IntCounter::new(
            "invitrack_bot_decisions_posted_total",
            "Decisions carried by posted messages (a raid's message carries several).",
        )
        .expect("a valid metric");
        let retries = IntCounter::new(
            "invitrack_bot_message_retries_total",
            "Messages Discord could not take at once (5xx, 429, timeout), tried again.",
        )
        .expect("a valid metric");
        let channels_paused = IntGauge::new(
            "invitrack_bot_channels_paused",
            "Channels that answered 403 and get nothing for BOT_FORBIDDEN_PAUSE_SECS.",
        )
        .expect("a valid metric");
        let waiting = IntGaugeVec::new(
            Opts::new(
                "invitrack_bot_decisions_waiting",
                "Decisions of this bot not yet handled, by partition (the same in every replica: they share the queue).",
            ),
            &["partition"],
        )
        .expect("a valid metric");
        for metric in [
            Box::new(messages.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(decisions_posted.clone()),
            Box::new(retries.clone()),
            Box::new(channels_paused.clone()),
            Box::new(waiting.clone()),
        ] {
            registry.register(metric).expect("registered once");
        }
        for outcome in [
            "posted",
            "missing_permissions",
            "unknown_channel",
            "refused",
        ] {
            messages.with_label_values(&[outcome]);
        }
        invitrack_discord::GateMetrics::register("invitrack_bot", gate, &registry)
            .expect("registered once");
        Self {
            registry,
            messages,
            decisions_posted,
            retries,
            channels_paused,
            waiting,
        }
    }

    /// Keeps `invitrack_bot_decisions_waiting` up to date until `stop`.
    pub(crate) async fn watch_waiting(
        self: Arc<Self>,
        bus: Bus,
        bot_id: BotId,
        stop: CancellationToken,
    ) {
        loop {
            for partition in 0..bus.layout.partitions() {
                let name = crate::consumer::consumer_name(bot_id, partition);
                let waiting = async {
                    let stream = bus
                        .jetstream
                        .get_stream(bus.layout.decision_stream())
                        .await
                        .ok()?;
                    let mut consumer = stream
                        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&name)
                        .await
                        .ok()?;
                    let info = consumer.info().await.ok()?;
                    Some(info.num_pending + info.num_ack_pending as u64)
                };
                if let Some(waiting) = waiting.await {
                    self.waiting
                        .with_label_values(&[&partition.to_string()])
                        .set(i64::try_from(waiting).unwrap_or(i64::MAX));
                }
            }
            tokio::select! {
                () = tokio::time::sleep(WAITING_EVERY) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}
