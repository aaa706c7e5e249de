//! Messages the bot posts through `POST /channels/{id}/messages`: what Discord checks once
//! the body is valid (the channel, the bot's permissions in it, an empty message), the
//! `enforce_nonce` deduplication, and the bounded store tests read back.

use super::{
    model::State,
    specs::{NewMessage, PostedMessage},
};
use crate::{
    error::WorldError,
    snowflake,
    wire::{self, permissions},
};
use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};
use twilight_model::id::{
    Id,
    marker::{ChannelMarker, MessageMarker},
};

/// How long a message's nonce keeps answering a create with `enforce_nonce`. Discord says
/// "the past few minutes" without a figure; the simulator takes the low end, so that a client
/// tested here relies on no longer a window than Discord grants.
pub const NONCE_WINDOW: Duration = Duration::from_secs(120);

/// Default number of posted messages a world keeps (the oldest go first).
pub const DEFAULT_MESSAGE_CAPACITY: usize = 100_000;

/// The posted messages (the newest `capacity`) and the nonces of the last [`NONCE_WINDOW`].
#[derive(Debug)]
pub(super) struct MessageStore {
    capacity: usize,
    messages: VecDeque<PostedMessage>,
    /// Messages with a nonce, oldest first, kept for [`NONCE_WINDOW`] whatever the capacity:
    /// a retry must find its message even after the store dropped it.
    recent: VecDeque<(i64, PostedMessage)>,
    /// Nonce text to the newest message of `recent` with that nonce.
    by_nonce: HashMap<String, PostedMessage>,
}

impl MessageStore {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            messages: VecDeque::new(),
            recent: VecDeque::new(),
            by_nonce: HashMap::new(),
        }
    }

    /// Forgets the nonces older than the window.
    fn expire_nonces(&mut self, now_ms: i64) {
        let window_ms = i64::try_from(NONCE_WINDOW.as_millis()).unwrap_or(i64::MAX);
        while let Some((at, message)) = self.recent.front() {
            if now_ms - at < window_ms {
                break;
            }
            if let Some(nonce) = &message.nonce {
                let key = nonce.text();
                if self.by_nonce.get(&key).is_some_and(|m| m.id == message.id) {
                    self.by_nonce.remove(&key);
                }
            }
            self.recent.pop_front();
        }
    }

    /// The message created with this nonce within the window, if any.
    fn with_nonce(&mut self, nonce: &wire::Nonce, now_ms: i64) -> Option<&PostedMessage> {
        self.expire_nonces(now_ms);
        self.by_nonce.get(&nonce.text())
    }

    /// A kept message by id.
    pub(super) fn find(&self, id: Id<MessageMarker>) -> Option<&PostedMessage> {
        self.messages.iter().rev().find(|m| m.id == id)
    }

    fn push(&mut self, message: PostedMessage, now_ms: i64) {
        if let Some(nonce) = &message.nonce {
            self.by_nonce.insert(nonce.text(), message.clone());
            self.recent.push_back((now_ms, message.clone()));
        }
        if self.messages.len() == self.capacity {
            self.messages.pop_front();
        }
        self.messages.push_back(message);
    }
}

impl State {
    /// Every message the bot posted that the store still keeps, oldest first.
    pub fn messages(&self) -> Vec<PostedMessage> {
        self.messages.messages.iter().cloned().collect()
    }

    /// The kept messages of one channel, oldest first.
    pub fn channel_messages(
        &self,
        channel_id: Id<ChannelMarker>,
    ) -> Result<Vec<PostedMessage>, WorldError> {
        self.channel(channel_id)?;
        Ok(self
            .messages
            .messages
            .iter()
            .filter(|m| m.channel_id == channel_id)
            .cloned()
            .collect())
    }

    /// `POST /channels/{id}/messages` body: the message created, or with `enforce_nonce` the
    /// one the bot created with the same nonce in the last [`NONCE_WINDOW`] (Discord keys it
    /// by author and nonce, not by channel). Without VIEW_CHANNEL the bot gets Missing Access,
    /// without SEND_MESSAGES Missing Permissions; without EMBED_LINKS its embeds are dropped,
    /// as Discord drops them.
    pub fn rest_post_message(
        &mut self,
        channel_id: Id<ChannelMarker>,
        message: NewMessage,
    ) -> Result<String, WorldError> {
        let channel = self.channel(channel_id)?;
        let guild_id = channel.guild_id;
        let allowed = self.bot_channel_permissions(channel)?;
        if allowed & permissions::VIEW_CHANNEL == 0 {
            return Err(WorldError::MissingAccess);
        }
        if allowed & permissions::SEND_MESSAGES == 0 {
            return Err(WorldError::MissingPermissions);
        }
        let now = self.now_ms();
        if message.enforce_nonce
            && let Some(nonce) = &message.nonce
            && let Some(earlier) = self.messages.with_nonce(nonce, now).cloned()
        {
            tracing::debug!(channel_id = %channel_id, message_id = %earlier.id, "nonce seen: the earlier message is answered");
            return self.message_body(&earlier);
        }
        let embeds = if allowed & permissions::EMBED_LINKS == 0 {
            Vec::new()
        } else {
            message.embeds
        };
        if message.content.trim().is_empty() && embeds.is_empty() {
            return Err(WorldError::EmptyMessage);
        }
        let posted = PostedMessage {
            id: Id::new(self.ids.at(now)),
            channel_id,
            guild_id,
            content: message.content,
            embeds,
            nonce: message.nonce,
            allowed_mentions: message.allowed_mentions,
            created_at: snowflake::to_datetime(now),
        };
        let body = self.message_body(&posted);
        tracing::debug!(channel_id = %channel_id, message_id = %posted.id, "message posted");
        self.messages.push(posted, now);
        body
    }

    fn message_body(&self, posted: &PostedMessage) -> Result<String, WorldError> {
        let body = wire::Message {
            nonce: posted.nonce.as_ref(),
            ..wire::Message::in_guild(
                posted.id,
                posted.channel_id,
                posted.guild_id,
                self.bot.user(),
                &posted.content,
                snowflake::format_ts(posted.created_at.timestamp_millis()),
                &posted.embeds,
            )
        };
        serde_json::to_string(&body).map_err(|e| WorldError::Invalid(e.to_string()))
    }
}
