//! Joins made while ingest was away (`docs/attribution.md#joins-made-while-away`). A worker
//! holding uses that joins the gateway may not have delivered could explain asks, on
//! `{prefix}.missed-joins.{bot}`, for the members who joined a guild in a window; the process
//! holding the guild's shard asks the gateway for the guild's member list (Request Guild
//! Members, opcode 8) and, once every GUILD_MEMBERS_CHUNK of the answer is in, publishes the
//! members whose `joined_at` lies in the window as one `MembersFound` event on the guild's
//! stream (none is an answer too: the engine then knows no join is missing).
//!
//! Discord answers one request for all of a guild's members per guild every 30 seconds and
//! answers the others with RATE_LIMITED, which twilight 0.18 cannot read (its metadata type
//! does not match Discord's), so this process never asks one guild twice within that time nor
//! while an answer is still coming; a request that got no answer is forgotten after
//! [`ANSWER_WAIT`] and the worker, which asks again every 30 s while it waits, is heard again.

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
const PER_GUILD_INTERVAL: Duration = Duration::from_secs(30);
/// How long the chunks of a request are waited for before it is forgotten. Long: a shard sends
/// at most 120 commands a minute, so after a restart requests may queue in twilight for a
/// while, and a late answer still records the joins it finds.
const ANSWER_WAIT: Duration = Duration::from_secs(600);

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
    /// Guilds whose member list may not be asked for before the time given: 30 s after the
    /// last request, or when Discord's RATE_LIMITED says.
    not_before: HashMap<GuildId, Instant>,
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
    /// shards, was not asked for in the last [`PER_GUILD_INTERVAL`] (or since Discord said to
    /// wait) and no answer for it is still coming.
    fn ask(&self, request: &MissedJoinsRequest, now: Instant) {
        let Some(guild_id) = GuildId::new_checked(request.guild_id) else {
            return;
        };
        let shard = guild_id.shard(self.shard_total);
        if request.bot_id != self.bot_id.get() || !self.shards.contains(&shard) {
            return;
        }
        let window = request.joined_from_ms..=request.joined_to_ms;
        let mut state = self.state();
        state
            .asked
            .retain(|_, asked| now.duration_since(asked.at) < ANSWER_WAIT);
        state.not_before.retain(|_, until| *until > now);
        if state.not_before.contains_key(&guild_id)
            || state.asked.values().any(|asked| asked.guild_id == guild_id)
        {
            tracing::debug!(%guild_id, "member list asked for recently or still answering: not again yet");
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
        state.not_before.insert(guild_id, now + PER_GUILD_INTERVAL);
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

    /// Reads a gateway message twilight could not: Discord's RATE_LIMITED for Request Guild
    /// Members ends the request it names, which gets no chunk, and holds its guild back for
    /// `retry_after`. Whether it was one.
    pub(crate) fn rate_limited(&self, raw: &str) -> bool {
        let Some(limited) = member_request_rate_limited(raw) else {
            return false;
        };
        let mut state = self.state();
        if let Some(asked) = limited.nonce.and_then(|nonce| state.asked.remove(&nonce)) {
            tracing::warn!(guild_id = %asked.guild_id, retry_after_ms = limited.retry_after.as_millis(), "member list request rate limited");
            state
                .not_before
                .insert(asked.guild_id, Instant::now() + limited.retry_after);
        }
        true
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

/// A RATE_LIMITED dispatch for Request Guild Members.
#[derive(Debug, PartialEq)]
struct RateLimited {
    nonce: Option<String>,
    retry_after: Duration,
}

/// Reads Discord's RATE_LIMITED dispatch for opcode 8 from a raw gateway frame: twilight 0.18
/// cannot (its metadata type expects another shape), so the frame comes as an error.
fn member_request_rate_limited(raw: &str) -> Option<RateLimited> {
    #[derive(serde::Deserialize)]
    struct Frame {
        t: String,
        d: Data,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        opcode: u8,
        retry_after: f64,
        meta: Meta,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        nonce: Option<String>,
    }
    let frame: Frame = serde_json::from_str(raw).ok()?;
    if frame.t != "RATE_LIMITED" || frame.d.opcode != 8 {
        return None;
    }
    Some(RateLimited {
        nonce: frame.d.meta.nonce,
        // At most the longest answer wait: a nonsense figure must not silence a guild for long.
        retry_after: Duration::try_from_secs_f64(frame.d.retry_after)
            .unwrap_or(PER_GUILD_INTERVAL)
            .min(ANSWER_WAIT),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discords_rate_limited_dispatch_is_read_from_the_raw_frame() {
        // The shape of Discord's change log (2025-08-14), as the simulator sends it.
        let raw = r#"{"t":"RATE_LIMITED","s":7,"op":0,"d":{"opcode":8,"retry_after":21.5,"meta":{"guild_id":"81384788765712384","nonce":"121c-19a"}}}"#;
        assert_eq!(
            member_request_rate_limited(raw),
            Some(RateLimited {
                nonce: Some("121c-19a".into()),
                retry_after: Duration::from_millis(21_500),
            })
        );
        let no_nonce = r#"{"t":"RATE_LIMITED","s":7,"op":0,"d":{"opcode":8,"retry_after":1e9,"meta":{"guild_id":"1"}}}"#;
        assert_eq!(
            member_request_rate_limited(no_nonce),
            Some(RateLimited {
                nonce: None,
                retry_after: ANSWER_WAIT,
            })
        );
        // Another opcode's limit, another event, or no JSON: not ours.
        for other in [
            r#"{"t":"RATE_LIMITED","s":7,"op":0,"d":{"opcode":3,"retry_after":1.0,"meta":{}}}"#,
            r#"{"t":"GUILD_CREATE","s":7,"op":0,"d":{}}"#,
            "not json",
        ] {
            assert_eq!(member_request_rate_limited(other), None, "{other}");
        }
    }
}
