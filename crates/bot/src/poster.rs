//! One decision's message: the guild's settings, the rendered message, the post through the
//! bot's [`DiscordGate`], and the marker that keeps it from being posted twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use invitrack_bus::proto;
use invitrack_discord::{DiscordGate, GateError, status_of};
use invitrack_model::{BotId, ChannelId, GuildId, GuildKey};
use invitrack_storage::posts::{self, PostOutcome};
use invitrack_storage::{Pool, admin};
use tokio::time::Instant;
use twilight_http::Client;

use crate::BotError;
use crate::message::{self, LogChannel};

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
}

impl Poster {
    pub(crate) async fn handle(&self, decision: &proto::Decision) -> Result<Handled, BotError> {
        let Some(guild_id) = GuildId::new_checked(decision.guild_id) else {
            return Ok(Handled::Done);
        };
        let guild = GuildKey::new(self.bot_id, guild_id);
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        if posts::handled(&mut conn, decision.id).await? {
            return Ok(Handled::Done);
        }
        let settings = admin::guild_settings(&mut conn, guild).await?;
        drop(conn);
        let Some(planned) = message::plan(decision, &settings.templates) else {
            return Ok(Handled::Done);
        };
        let channel = match planned.channel {
            LogChannel::Join => settings.join_log_channel_id,
            LogChannel::Leave => settings.leave_log_channel_id,
        };
        let Some(channel) = channel else {
            return Ok(Handled::Done);
        };
        if self.is_paused(guild, channel) {
            return self
                .record(
                    decision.id,
                    guild,
                    channel,
                    PostOutcome::MissingPermissions,
                    Some("not sent: the channel answered 403 a moment ago"),
                )
                .await;
        }
        let body = message::create_body(&planned.message, decision.id);
        let request = self
            .http
            .create_message(twilight_model::id::Id::new(channel.get()))
            .payload_json(&body);
        match self.gate.send(request).await {
            Ok(response) => {
                // Posted: a body we cannot read still means it is there.
                let message_id = response.model().await.map_or(0, |m| m.id.get());
                tracing::debug!(guild_id = %guild.guild_id, member_id = decision.member_id, kind = %planned.kind, message_id, "posted");
                self.record(
                    decision.id,
                    guild,
                    channel,
                    PostOutcome::Posted { message_id },
                    None,
                )
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
                        return Ok(Handled::RetryAfter(Duration::from_secs(5)));
                    }
                };
                tracing::warn!(guild_id = %guild.guild_id, channel_id = %channel, outcome = outcome.as_str(), %detail, "Discord refused the message");
                self.record(decision.id, guild, channel, outcome, Some(&detail))
                    .await
            }
            Err(GateError::RateLimited { pause }) => Ok(Handled::RetryAfter(pause)),
            Err(GateError::Halted { resume_in, .. }) => Ok(Handled::RetryAfter(resume_in)),
            Err(error) => Err(BotError::Discord(error)),
        }
    }

    async fn record(
        &self,
        decision_id: i64,
        guild: GuildKey,
        channel: ChannelId,
        outcome: PostOutcome,
        detail: Option<&str>,
    ) -> Result<Handled, BotError> {
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        posts::record(&mut conn, decision_id, guild, channel, outcome, detail).await?;
        Ok(Handled::Done)
    }

    fn is_paused(&self, guild: GuildKey, channel: ChannelId) -> bool {
        let mut paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        paused.retain(|_, until| *until > now);
        paused.contains_key(&(guild, channel))
    }

    /// A 403: nothing more is sent to that channel for a while (a new channel in the guild's
    /// settings is not paused).
    fn pause(&self, guild: GuildKey, channel: ChannelId) {
        self.paused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((guild, channel), Instant::now() + self.forbidden_pause);
    }
}
