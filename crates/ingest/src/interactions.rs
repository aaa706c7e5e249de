//! Interactions (slash commands, buttons, modals) go to the bot at once, beside the guild
//! events rather than behind them: Discord gives 3 seconds to answer
//! (`docs/commands.md#how-an-interaction-reaches-the-bot`). Core NATS, no JetStream: one that
//! nobody takes in time is worth nothing later.

use std::sync::Arc;

use invitrack_bus::{Bus, InteractionReceived};
use invitrack_model::BotId;
use prost::Message as _;
use twilight_model::application::interaction::Interaction;

use crate::IngestMetrics;

#[derive(Clone)]
pub(crate) struct InteractionForwarder {
    client: async_nats::Client,
    subject: String,
    bot_id: BotId,
    metrics: Arc<IngestMetrics>,
}

impl InteractionForwarder {
    pub(crate) fn new(bus: &Bus, bot_id: BotId, metrics: Arc<IngestMetrics>) -> Self {
        Self {
            client: bus.client.clone(),
            subject: bus.layout.interaction_subject(bot_id),
            bot_id,
            metrics,
        }
    }

    /// Publishes `interaction` as received; a failure is logged (Discord shows the user that
    /// the interaction failed).
    pub(crate) async fn forward(&self, shard_id: u32, interaction: &Interaction) {
        let json = match serde_json::to_vec(interaction) {
            Ok(json) => json,
            Err(error) => {
                tracing::warn!(%error, "interaction not serializable: dropped");
                return;
            }
        };
        let message = InteractionReceived {
            bot_id: self.bot_id.get(),
            received_at_ms: invitrack_model::time::now_millis(),
            shard_id,
            interaction_json: json,
        };
        match self
            .client
            .publish(self.subject.clone(), message.encode_to_vec().into())
            .await
        {
            Ok(()) => {
                self.metrics.interactions_forwarded.inc();
            }
            Err(error) => {
                tracing::warn!(%error, interaction_id = %interaction.id, "interaction not forwarded");
            }
        }
    }
}
