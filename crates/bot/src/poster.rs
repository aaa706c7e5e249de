//! One decision's message (with the guild's next ones for the same channel, in a raid): the
//! guild's settings, the rendered message, the post through the bot's [`DiscordGate`], and the
//! markers that keep each decision from being posted twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use invitrack_bus::proto;
use invitrack_discord::{DiscordGate, GateError, status_of};
use invitrack_model::{BotId, ChannelId, GuildId, GuildKey};
use invitrack_storage::posts::{self, PostOutcome, PostState};
use invitrack_storage::{Pool, admin};
use tokio::time::Instant;
use twilight_http::Client;

use crate::BotError;
use crate::message::{self, LogChannel};
use crate::metrics::BotMetrics;

/// What became of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    /// Posted, refused for good, or nothing to post: the next decision may go.
    Done,
    /// Discord could not take it now (5xx, 429, a timeout): again after this long, before any
    /// later decision of its partition.
    RetryAfter(Duration),
}

/// Posts decisions' messages for one bot.
pub(crate) struct Poster {
    pub(crate) http: Arc<Client>,
    pub(crate) gate: Arc<DiscordGate>,
    pub(crate) pool: Pool,
    pub(crate) bot_id: BotId,
    pub(crate) forbidden_pause: Duration,
    /// Channels that answered 403, until when nothing is sent to them.
    pub(crate) paused: Mutex<HashMap<(GuildKey, ChannelId), Instant>>,
    pub(crate) metrics: Arc<BotMetrics>,
}

/// Decisions of a guild the bot looks ahead at for a message.
const LOOK_AHEAD: i64 = 50;

impl Poster {
    /// Posts `decision`'s message, with the guild's next decisions for the same channel that
    /// are already waiting (a raid): one message instead of a queue paced by the channel's
    /// bucket (`docs/bot.md#raids`).
    pub(crate) async fn handle(&self, decision: &proto::Decision) -> Result<Handled, BotError> {
        let Some(guild_id) = GuildId::new_checked(decision.guild_id) else {
            return Ok(Handled::Done);
        };
        let guild = GuildKey::new(self.bot_id, guild_id);
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        let state = posts::state(&mut conn, decision.id).await?;
        if state == PostState::Done {
            return Ok(Handled::Done);
        }
        let settings = admin::guild_settings(&mut conn, guild).await?;
        let Some(planned) = message::plan(decision, &settings.templates) else {
            return Ok(Handled::Done);
        };
        let channel_of = |log: LogChannel| match log {
            LogChannel::Join => settings.join_log_channel_id,
            LogChannel::Leave => settings.leave_log_channel_id,
        };
        let Some(channel) = channel_of(planned.channel) else {
            return Ok(Handled::Done);
        };
        let (batch_id, batch) = match state {
            // Sent before a crash, or about to be: the same batch again, under the same nonce.
            PostState::Pending { batch_id } => {
                let recorded = posts::batch(&mut conn, batch_id).await?;
                let messages = recorded
                    .iter()
                    .filter_map(|(_, payload)| decode(payload))
                    .filter_map(|d| message::plan(&d, &settings.templates))
                    .map(|p| p.message)
                    .collect();
                (batch_id, messages)
            }
            PostState::New | PostState::Done => {
                let mut ids = vec![decision.id];
                let mut messages = vec![planned.message];
                for (id, payload) in
                    posts::waiting_after(&mut conn, guild, decision.id, LOOK_AHEAD).await?
                {
                    let next = decode(&payload)
                        .and_then(|d| message::plan(&d, &settings.templates))
                        .filter(|p| channel_of(p.channel) == Some(channel));
                    if let Some(next) = next {
                        ids.push(id);
                        messages.push(next.message);
                    }
                }
                let taken = message::combine(&messages).1;
                ids.truncate(taken);
                messages.truncate(taken);
                posts::begin_batch(&mut conn, guild, channel, &ids).await?;
                (decision.id, messages)
            }
        };
        drop(conn);
        if self.is_paused(guild, channel) {
            return self
                .finish(
                    batch_id,
                    PostOutcome::MissingPermissions,
                    Some("not sent: the channel answered 403 a moment ago"),
                )
                .await;
        }
        let (combined, _) = message::combine(&batch);
        let body = message::create_body(&combined, batch_id);
        let request = self
            .http
            .create_message(twilight_model::id::Id::new(channel.get()))
            .payload_json(&body);
        match self.gate.send(request).await {
            Ok(response) => {
                // Posted: a body we cannot read still means it is there.
                let message_id = response.model().await.map_or(0, |m| m.id.get());
                tracing::debug!(guild_id = %guild.guild_id, batch_id, decisions = batch.len(), message_id, "posted");
                self.metrics.messages.with_label_values(&["posted"]).inc();
                self.metrics.decisions_posted.inc_by(batch.len() as u64);
                self.finish(batch_id, PostOutcome::Posted { message_id }, None)
                    .await
            }
            Err(GateError::Http(error)) => {
                let detail = error.to_string();
                let outcome = match status_of(&error) {
                    Some(403) => {
                        self.pause(guild, channel);
                        PostOutcome::MissingPermissions
                    }
                    Some(404) => PostOutcome::UnknownChannel,
                    Some(400..=499) => PostOutcome::Refused,
                    // 5xx, timeouts, connection errors: Discord may take it later.
                    _ => {
                        tracing::warn!(guild_id = %guild.guild_id, %detail, "message not posted; retrying");
                        self.metrics.retries.inc();
                        return Ok(Handled::RetryAfter(Duration::from_secs(5)));
                    }
                };
                self.metrics
                    .messages
                    .with_label_values(&[outcome.as_str()])
                    .inc();
                tracing::warn!(guild_id = %guild.guild_id, channel_id = %channel, outcome = outcome.as_str(), %detail, "Discord refused the message");
                self.finish(batch_id, outcome, Some(&detail)).await
            }
            Err(GateError::RateLimited { pause }) => {
                self.metrics.retries.inc();
                Ok(Handled::RetryAfter(pause))
            }
            Err(GateError::Halted { resume_in, .. }) => Ok(Handled::RetryAfter(resume_in)),
            Err(error) => Err(BotError::Discord(error)),
        }
    }

    async fn finish(
        &self,
        batch_id: i64,
        outcome: PostOutcome,
        detail: Option<&str>,
    ) -> Result<Handled, BotError> {
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        posts::finish_batch(&mut conn, batch_id, outcome, detail).await?;
        Ok(Handled::Done)
    }

    fn is_paused(&self, guild: GuildKey, channel: ChannelId) -> bool {
        let mut paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        paused.retain(|_, until| *until > now);
        self.metrics.channels_paused.set(paused.len() as i64);
        paused.contains_key(&(guild, channel))
    }

    /// A 403: nothing more is sent to that channel for a while (a new channel in the guild's
    /// settings is not paused).
    fn pause(&self, guild: GuildKey, channel: ChannelId) {
        let mut paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
        paused.insert((guild, channel), Instant::now() + self.forbidden_pause);
        self.metrics.channels_paused.set(paused.len() as i64);
    }
}

/// A recorded decision's bus message; one that does not decode (it cannot happen: the worker
/// wrote it) is left out.
fn decode(payload: &[u8]) -> Option<proto::Decision> {
    use prost::Message as _;
    proto::Decision::decode(payload).ok()
}
