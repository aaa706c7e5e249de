//! Gateway op 8, Request Guild Members, and its answers, as Discord documents them in
//! `developers/events/gateway-events.mdx` ("Request Guild Members", "Guild Members Chunk",
//! "Rate Limited") with the rate limit of `developers/change-log.mdx` ("Introducing Rate Limit
//! When Requesting All Guild Members", 2025-08-14).
//!
//! The websocket side (decoding `d`, closing 4002 on a payload that does not decode) is
//! `crate::gateway`; this file decides what a decoded request gets and sends it through the
//! session registry (`crate::sessions`), like every dispatch: the answer takes the session's
//! next sequence numbers, is kept for RESUME, and overtakes no dispatch still waiting for its
//! event delay.
//!
//! - `query: ""` with `limit: 0`: every current member (the bot too: it is a member, and
//!   GUILD_CREATE's `member_count` counts it), oldest first. Needs the GUILD_MEMBERS intent and
//!   is limited to one per guild per [`MemberRequestOptions::all_members_window_ms`] (30 s).
//! - another `query`: the members whose username starts with it (ignoring case), oldest first,
//!   at most `limit` and never more than 100.
//! - `user_ids`: those of the (first 100 distinct) ids who are members; the others in
//!   `not_found`.
//!
//! Members go out in GUILD_MEMBERS_CHUNKs of up to 1000, each with `chunk_index` and
//! `chunk_count`; a request matching nobody still gets one chunk (`chunk_count` 1, no
//! members).

use super::model::{Guild, State};
use crate::{
    ratelimit::Window,
    sessions::{EventKind, intents},
    wire,
};
use serde::{Deserialize, Serialize};
use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};
use twilight_model::id::{
    Id,
    marker::{GuildMarker, UserMarker},
};

/// Default of [`MemberRequestOptions::all_members_window_ms`]: Discord's 30 s.
pub const DEFAULT_ALL_MEMBERS_WINDOW_MS: u64 = 30_000;

/// Members per GUILD_MEMBERS_CHUNK ("up to 1000 members per chunk").
const MEMBERS_PER_CHUNK: usize = 1000;

/// Most members a `query` returns ("a maximum of 100 members"), and most `user_ids` looked up
/// ("limited to returning 100 members").
const MAX_MEMBERS_QUERIED: usize = 100;

/// Longest nonce echoed ("Nonce can only be up to 32 bytes").
const MAX_NONCE_BYTES: usize = 32;

/// How op 8 behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemberRequestOptions {
    /// After a request for all of a guild's members (`query` `""`, `limit` 0) is answered,
    /// how long further such requests for that guild get RATE_LIMITED instead, ms. Discord:
    /// 1 request per guild per bot every 30 s ([`DEFAULT_ALL_MEMBERS_WINDOW_MS`]); 0 turns
    /// the limit off.
    pub all_members_window_ms: u64,
}

impl Default for MemberRequestOptions {
    fn default() -> Self {
        Self {
            all_members_window_ms: DEFAULT_ALL_MEMBERS_WINDOW_MS,
        }
    }
}

/// Op 8's options and the windows of its all-members limit (in the world's `State`: the limit
/// is per bot, whichever session asks).
#[derive(Debug, Default)]
pub(crate) struct MemberRequests {
    options: MemberRequestOptions,
    /// Per guild, the window opened by its last answered all-members request.
    windows: HashMap<Id<GuildMarker>, Window>,
}

impl MemberRequests {
    /// Takes the guild's one all-members request of the window, or tells how many seconds
    /// are left of it.
    fn take_all_members(&mut self, guild_id: Id<GuildMarker>, now: Instant) -> Result<(), f64> {
        if self.options.all_members_window_ms == 0 {
            return Ok(());
        }
        let len = Duration::from_millis(self.options.all_members_window_ms);
        self.windows
            .entry(guild_id)
            .or_insert(Window::starting(now))
            .take(now, len, 1)
            .map(|_| ())
            .map_err(|reset_at| reset_at.saturating_duration_since(now).as_secs_f64())
    }
}

/// Which members op 8 asks for (exactly one of `query` and `user_ids`, checked by the
/// gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MemberSelection {
    /// A username prefix (`""`: everyone) and the most members wanted (`""` with 0: all).
    Query { query: String, limit: u64 },
    /// These users.
    UserIds(Vec<Id<UserMarker>>),
}

impl MemberSelection {
    /// The request for the entire member list (`query` `""`, `limit` 0): the rate-limited
    /// one.
    fn is_all_members(&self) -> bool {
        matches!(self, Self::Query { query, limit: 0 } if query.is_empty())
    }
}

/// An op 8 request, decoded by the gateway.
#[derive(Debug, Clone)]
pub(crate) struct MemberRequest {
    pub guild_id: Id<GuildMarker>,
    pub selection: MemberSelection,
    /// `nonce` as sent; only a string of at most 32 bytes is valid (and echoed).
    pub nonce: Option<serde_json::Value>,
}

impl MemberRequest {
    /// The nonce to echo: "If you send an invalid nonce it will be ignored and the reply
    /// member_chunk(s) will not have a nonce set". Anything but a string of at most 32 bytes
    /// is invalid (and left out of RATE_LIMITED's `meta` too).
    fn valid_nonce(&self) -> Option<&str> {
        match &self.nonce {
            Some(serde_json::Value::String(nonce)) if nonce.len() <= MAX_NONCE_BYTES => Some(nonce),
            _ => None,
        }
    }
}

/// What became of a request (the gateway logs it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MemberRequestOutcome {
    /// GUILD_MEMBERS_CHUNKs were sent.
    Answered { chunks: usize, members: usize },
    /// RATE_LIMITED was sent instead.
    RateLimited { retry_after: f64 },
    /// Nothing was sent, for this reason.
    Unanswered(&'static str),
}

impl State {
    /// Sets how op 8 behaves (the all-members windows start afresh).
    pub(super) fn set_member_requests(&mut self, options: MemberRequestOptions) {
        self.member_requests = MemberRequests {
            options,
            windows: HashMap::new(),
        };
    }

    /// How op 8 behaves.
    pub(super) fn member_requests(&self) -> MemberRequestOptions {
        self.member_requests.options
    }

    /// Answers op 8 sent on `session_id`: GUILD_MEMBERS_CHUNKs, RATE_LIMITED, or nothing.
    pub(crate) fn request_guild_members(
        &mut self,
        session_id: &str,
        request: &MemberRequest,
    ) -> MemberRequestOutcome {
        let guild_id = request.guild_id;
        // A guild the session does not see (not one of the bot's guilds, or on another shard):
        // Discord's documentation gives no answer for it, and Discord sends nothing useful
        // back. Closing the connection would be an invention, so the simulator sends nothing
        // and keeps the connection: a client waiting for chunks times out, as on Discord.
        if !self.guilds.contains_key(&guild_id) {
            return MemberRequestOutcome::Unanswered("not one of the bot's guilds");
        }
        if !self.sessions.session_owns(session_id, guild_id) {
            return MemberRequestOutcome::Unanswered("the guild is on another shard");
        }
        // "GUILD_MEMBERS intent is required to request the entire member list—(query=‘’,
        // limit=0<=n)": an empty query, whatever the limit. The documentation says the intent
        // is required but not what happens without it. Not a close 4013: that code is
        // documented for IDENTIFY ("You sent an invalid intent for a Gateway Intent. You may
        // have incorrectly calculated the bitwise value"), not for a later command. Discord
        // is seen to answer nothing (discord/discord-api-docs#5855: a client whose intents
        // lacked GUILD_MEMBERS got no chunks and no close), so the simulator sends nothing.
        let needs_intent =
            matches!(&request.selection, MemberSelection::Query { query, .. } if query.is_empty());
        let intents = self.sessions.intents_of(session_id).unwrap_or(0);
        if needs_intent && intents & intents::GUILD_MEMBERS == 0 {
            return MemberRequestOutcome::Unanswered(
                "an empty query needs the GUILD_MEMBERS intent",
            );
        }
        let nonce = request.valid_nonce();
        if request.selection.is_all_members()
            && let Err(retry_after) = self
                .member_requests
                .take_all_members(guild_id, Instant::now())
        {
            let limited = wire::GatewayRateLimited {
                opcode: 8,
                retry_after,
                meta: wire::RequestMembersMeta { guild_id, nonce },
            };
            self.sessions
                .send_in_order(session_id, EventKind::RATE_LIMITED, &limited);
            return MemberRequestOutcome::RateLimited { retry_after };
        }
        let mut outcome = MemberRequestOutcome::Unanswered("the guild went away");
        self.with_sessions(|state, sessions| {
            let Some(guild) = state.guilds.get(&guild_id) else {
                return;
            };
            let (members, not_found) = state.selected_members(guild, &request.selection);
            let chunk_count = members.len().div_ceil(MEMBERS_PER_CHUNK).max(1);
            for chunk_index in 0..chunk_count {
                let from = chunk_index * MEMBERS_PER_CHUNK;
                let to = (from + MEMBERS_PER_CHUNK).min(members.len());
                let chunk = wire::MembersChunk {
                    guild_id,
                    members: members.get(from..to).unwrap_or_default(),
                    chunk_index: u32::try_from(chunk_index).unwrap_or(u32::MAX),
                    chunk_count: u32::try_from(chunk_count).unwrap_or(u32::MAX),
                    not_found: not_found.as_deref(),
                    nonce,
                };
                sessions.send_in_order(session_id, EventKind::GUILD_MEMBERS_CHUNK, &chunk);
            }
            outcome = MemberRequestOutcome::Answered {
                chunks: chunk_count,
                members: members.len(),
            };
        });
        outcome
    }

    /// The members a selection names, as member objects (in order), and for `user_ids` the
    /// ids that are not members.
    fn selected_members<'a>(
        &'a self,
        guild: &'a Guild,
        selection: &MemberSelection,
    ) -> (Vec<wire::GuildMember<'a>>, Option<Vec<Id<UserMarker>>>) {
        match selection {
            MemberSelection::Query { query, limit } => {
                let most = if selection.is_all_members() {
                    usize::MAX
                } else if *limit == 0 {
                    // 0 is documented for the entire list; with a prefix it asks for no
                    // particular number, so the prefix maximum applies (discord.js sends
                    // `limit: 0` with every query by default).
                    MAX_MEMBERS_QUERIED
                } else {
                    usize::try_from(*limit)
                        .unwrap_or(usize::MAX)
                        .min(MAX_MEMBERS_QUERIED)
                };
                let mut everyone: Vec<(i64, Id<UserMarker>)> = guild
                    .members
                    .iter()
                    .map(|(id, member)| (member.joined_at_ms, *id))
                    .chain([(guild.bot_joined_at_ms, self.bot.user_id)])
                    .collect();
                everyone.sort_unstable();
                let prefix = query.to_lowercase();
                let members = everyone
                    .into_iter()
                    .filter(|(_, id)| {
                        prefix.is_empty()
                            || self.user(*id).username.to_lowercase().starts_with(&prefix)
                    })
                    .filter_map(|(_, id)| self.guild_member(guild, id))
                    .take(most)
                    .collect();
                (members, None)
            }
            MemberSelection::UserIds(ids) => {
                let mut seen = HashSet::new();
                let mut members = Vec::new();
                let mut not_found = Vec::new();
                for &id in ids
                    .iter()
                    .filter(|id| seen.insert(**id))
                    .take(MAX_MEMBERS_QUERIED)
                {
                    match self.guild_member(guild, id) {
                        Some(member) => members.push(member),
                        None => not_found.push(id),
                    }
                }
                (members, Some(not_found))
            }
        }
    }
}
