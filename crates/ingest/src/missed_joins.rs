//! Joins made while ingest was away (`docs/attribution.md#joins-made-while-away`). A worker
//! whose counters moved more often than joins arrived asks, on
//! `{prefix}.missed-joins.{bot}`, for the members who joined a guild in a window; the process
//! holding the guild's shard asks the gateway for the guild's member list (Request Guild
//! Members, opcode 8) and, once every GUILD_MEMBERS_CHUNK of the answer is in, publishes the
//! members whose `joined_at` lies in the window as one `MembersFound` event on the guild's
//! stream (none is an answer too: the engine then knows no join is missing).
//!
//! Discord answers one request for all of a guild's members per guild every 30 seconds and
//! answers the others with RATE_LIMITED, which twilight 0.18 cannot read (its metadata type
//! does not match Discord's), so this process never asks one guild twice within that time; a
//! request that got no chunk is forgotten after [`ANSWER_WAIT`] and the worker asks again.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use invitrack_bus::proto::{self, guild_event::Kind};
use invitrack_bus::{Bus, MissedJoinsRequest};
use invitrack_model::{BotId, GuildId, Millis};
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use twilight_gateway::MessageSender;
use twilight_model::gateway::payload::incoming::MemberChunk;
use twilight_model::gateway::payload::outgoing::RequestGuildMembers;

use crate::convert;
use crate::publisher::Publisher;

/// Discord's limit on requests for all of a guild's members, per guild and bot.
pub(crate) const PER_GUILD_INTERVAL: Duration = Duration::from_secs(30);
/// How long the chunks of a request are waited for before it is forgotten.
const ANSWER_WAIT: Duration = Duration::from_secs(60);

/// A member-list request in flight.
struct Asked {
    guild_id: GuildId,
    window: RangeInclusive<Millis>,
    at: Instant,
    /// The members in the window from the chunks so far.
    found: Vec<proto::MemberAdd>,
    chunks_seen: u32,
}

#[derive(Default)]
struct State {
    /// Each shard's command channel, while its reader runs.
    senders: HashMap<u32, MessageSender>,
    /// Requests in flight, by nonce.
    asked: HashMap<String, Asked>,
    /// When each guild's member list was last asked for.
    last_asked: HashMap<GuildId, Instant>,
}

/// Finds the members who joined while ingest was away, for the workers that ask.
#[derive(Clone)]
pub(crate) struct MissedJoinsFinder {
    bot_id: BotId,
    shard_total: u32,
    shards: RangeInclusive<u32>,
    publisher: Publisher,
    state: Arc<Mutex<State>>,
}

impl MissedJoinsFinder {
    pub(crate) fn new(
        bot_id: BotId,
        shard_total: u32,
        shards: RangeInclusive<u32>,
        publisher: Publisher,
    ) -> Self {
        Self {
            bot_id,
            shard_total,
            shards,
            publisher,
            state: Arc::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets requests for `shard`'s guilds go out through its command channel.
    pub(crate) fn shard_started(&self, shard: u32, sender: MessageSender) {
        self.state().senders.insert(shard, sender);
    }

    /// Answers the workers' requests until `stop`.
    pub(crate) async fn run(self, bus: Bus, stop: CancellationToken) {
        let subject = bus.layout.missed_joins_subject(self.bot_id);
        let mut requests = match bus.client.subscribe(subject.clone()).await {
            Ok(requests) => requests,
            Err(error) => {
                tracing::error!(%error, %subject, "cannot take requests for missed joins");
                return;
            }
        };
        loop {
            let message = tokio::select! {
                message = requests.next() => message,
                () = stop.cancelled() => return,
            };
            let Some(message) = message else { return };
            match MissedJoinsRequest::decode(message.payload) {
                Ok(request) => self.ask(&request, Instant::now()),
                Err(error) => tracing::warn!(%error, "unreadable missed-joins request: ignored"),
            }
        }
    }

    /// Sends Request Guild Members for the guild of `request` when it is on this process's
    /// shards and was not asked for in the last [`PER_GUILD_INTERVAL`].
    fn ask(&self, request: &MissedJoinsRequest, now: Instant) {
        let Some(guild_id) = GuildId::new_checked(request.guild_id) else {
            return;
        };
        let shard = u32::try_from((guild_id.get() >> 22) % u64::from(self.shard_total.max(1)))
            .unwrap_or(u32::MAX);
        if request.bot_id != self.bot_id.get() || !self.shards.contains(&shard) {
            return;
        }
        let window = request.joined_from_ms..=request.joined_to_ms;
        let mut state = self.state();
        state
            .asked
            .retain(|_, asked| now.duration_since(asked.at) < ANSWER_WAIT);
        state
            .last_asked
            .retain(|_, at| now.duration_since(*at) < PER_GUILD_INTERVAL);
        if state.last_asked.contains_key(&guild_id) {
            tracing::debug!(%guild_id, "member list asked for less than 30 s ago: not again yet");
            return;
        }
        let Some(sender) = state.senders.get(&shard) else {
            return;
        };
        // Unique across restarts (a reused nonce would make the publish ids collide), at most
        // 32 bytes as Discord requires: 16 hex digits of the guild, 11 of the time.
        let nonce = format!(
            "{:x}-{:x}",
            guild_id.get(),
            invitrack_model::time::now_millis()
        );
        let command = RequestGuildMembers::builder(twilight_model::id::Id::new(guild_id.get()))
            .nonce(nonce.clone())
            .query("", None);
        if let Err(error) = sender.command(&command) {
            tracing::warn!(%error, %guild_id, shard, "shard gone: member list not asked for");
            return;
        }
        tracing::info!(%guild_id, shard, from = request.joined_from_ms, to = request.joined_to_ms, "asking the gateway for the member list: joins may have been missed");
        state.last_asked.insert(guild_id, now);
        state.asked.insert(
            nonce,
            Asked {
                guild_id,
                window,
                at: now,
                found: Vec::new(),
                chunks_seen: 0,
            },
        );
    }

    /// Keeps the members of `chunk` who joined in its request's window, and publishes them
    /// with the last chunk; chunks of requests this process did not make (or forgot) are
    /// ignored.
    pub(crate) async fn chunk(&self, shard_id: u32, chunk: &MemberChunk, observed_at: Millis) {
        let Some(nonce) = chunk.nonce.as_deref() else {
            return;
        };
        let answered = {
            let mut state = self.state();
            let Some(asked) = state.asked.get_mut(nonce) else {
                return;
            };
            if asked.guild_id.get() != chunk.guild_id.get() {
                return;
            }
            asked.chunks_seen += 1;
            let window = asked.window.clone();
            asked.found.extend(
                chunk
                    .members
                    .iter()
                    .map(|member| convert::member(member, observed_at))
                    .filter(|member| window.contains(&member.joined_at_ms)),
            );
            tracing::debug!(
                guild_id = %asked.guild_id,
                chunk = chunk.chunk_index,
                chunks = chunk.chunk_count,
                "member list chunk"
            );
            // Chunks come in order on one connection; a lost one shows as a count short.
            if asked.chunks_seen >= chunk.chunk_count {
                state.asked.remove(nonce)
            } else {
                None
            }
        };
        let Some(asked) = answered else {
            return;
        };
        tracing::info!(
            guild_id = %asked.guild_id,
            found = asked.found.len(),
            from = asked.window.start(),
            to = asked.window.end(),
            "member list read: members who joined in the window"
        );
        let event = proto::GuildEvent {
            bot_id: self.bot_id.get(),
            guild_id: asked.guild_id.get(),
            observed_at_ms: observed_at,
            shard_id,
            kind: Some(Kind::MembersFound(proto::MembersFound {
                joined_from_ms: *asked.window.start(),
                joined_to_ms: *asked.window.end(),
                members: asked.found,
            })),
        };
        let message_id = format!("found:{}:{}:{nonce}", self.bot_id, asked.guild_id);
        self.publisher.send(event, message_id).await;
    }
}
