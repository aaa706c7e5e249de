//! Gateway sessions: who gets which dispatch, with which sequence number.
//!
//! A session outlives its websocket connection (that is what RESUME is for): it keeps its
//! shard, intents, sequence counter and a bounded replay buffer of the dispatches it was sent.
//! A live connection is "attached" to it through an unbounded channel, so producing an event
//! never waits on a socket. The registry sits inside [`crate::state::State`], under the
//! world's mutex, so dispatch order is exactly the order of the state changes.

use serde::Serialize;
use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::mpsc::UnboundedSender;
use twilight_model::id::{Id, marker::GuildMarker};

/// Gateway intent bits.
pub mod intents {
    /// GUILDS.
    pub const GUILDS: u64 = 1 << 0;
    /// GUILD_MEMBERS (privileged).
    pub const GUILD_MEMBERS: u64 = 1 << 1;
    /// GUILD_INVITES.
    pub const GUILD_INVITES: u64 = 1 << 6;
}

/// A dispatch event name and the intent a session needs to receive it.
#[derive(Debug, Clone, Copy)]
pub struct EventKind {
    /// `t` of the frame.
    pub name: &'static str,
    /// Required intent bits (0 = always sent).
    pub intent: u64,
}

impl EventKind {
    pub const READY: Self = Self {
        name: "READY",
        intent: 0,
    };
    pub const RESUMED: Self = Self {
        name: "RESUMED",
        intent: 0,
    };
    pub const GUILD_CREATE: Self = Self {
        name: "GUILD_CREATE",
        intent: intents::GUILDS,
    };
    pub const GUILD_ROLE_UPDATE: Self = Self {
        name: "GUILD_ROLE_UPDATE",
        intent: intents::GUILDS,
    };
    pub const GUILD_MEMBER_ADD: Self = Self {
        name: "GUILD_MEMBER_ADD",
        intent: intents::GUILD_MEMBERS,
    };
    pub const GUILD_MEMBER_REMOVE: Self = Self {
        name: "GUILD_MEMBER_REMOVE",
        intent: intents::GUILD_MEMBERS,
    };
    pub const INVITE_CREATE: Self = Self {
        name: "INVITE_CREATE",
        intent: intents::GUILD_INVITES,
    };
    pub const INVITE_DELETE: Self = Self {
        name: "INVITE_DELETE",
        intent: intents::GUILD_INVITES,
    };
}

/// One dispatch as sent to one session.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Sequence number in this session.
    pub seq: u64,
    /// Event name.
    pub t: &'static str,
    /// Serialized `d`, shared by every session that gets this event.
    pub d: Arc<str>,
}

impl Frame {
    /// Compact JSON in the `t, s, op, d` key order twilight's scanner expects.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.d.len() + self.t.len() + 40);
        out.push_str("{\"t\":\"");
        out.push_str(self.t);
        out.push_str("\",\"s\":");
        out.push_str(&self.seq.to_string());
        out.push_str(",\"op\":0,\"d\":");
        out.push_str(&self.d);
        out.push('}');
        out
    }
}

/// What a connection task is told to send.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A dispatch (op 0).
    Frame(Frame),
    /// op 9 with `d` = resumable.
    InvalidSession(bool),
    /// op 7: reconnect and resume.
    Reconnect,
    /// Close the websocket with this code.
    Close {
        /// Close code (4004 = authentication failed, ...).
        code: u16,
        /// Close reason.
        reason: &'static str,
    },
}

/// How many dispatches a session keeps for RESUME.
const REPLAY_CAPACITY: usize = 20_000;
/// How long a session without a connection stays resumable.
const RESUME_WINDOW: Duration = Duration::from_secs(180);

#[derive(Debug)]
struct Attached {
    conn_id: u64,
    tx: UnboundedSender<Outbound>,
}

#[derive(Debug)]
struct SessionEntry {
    shard_id: u32,
    shard_count: u32,
    intents: u64,
    seq: u64,
    replay: VecDeque<Frame>,
    conn: Option<Attached>,
    detached_at: Option<Instant>,
}

impl SessionEntry {
    fn owns(&self, guild_id: Id<GuildMarker>) -> bool {
        shard_of(guild_id, self.shard_count) == self.shard_id
    }

    fn push(&mut self, t: &'static str, d: &Arc<str>) {
        self.seq += 1;
        let frame = Frame {
            seq: self.seq,
            t,
            d: Arc::clone(d),
        };
        if self.replay.len() == REPLAY_CAPACITY {
            self.replay.pop_front();
        }
        if let Some(conn) = &self.conn
            && conn.tx.send(Outbound::Frame(frame.clone())).is_err()
        {
            self.conn = None;
            self.detached_at = Some(Instant::now());
        }
        self.replay.push_back(frame);
    }
}

/// The shard a guild belongs to: `(guild_id >> 22) % shard_count`.
pub fn shard_of(guild_id: Id<GuildMarker>, shard_count: u32) -> u32 {
    let count = u64::from(shard_count.max(1));
    u32::try_from((guild_id.get() >> 22) % count).unwrap_or(0)
}

/// Why a RESUME was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeRefused {
    /// Unknown or expired session.
    UnknownSession,
    /// The replay buffer no longer reaches back to the client's sequence.
    TooOld,
}

/// Registry of gateway sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    entries: HashMap<String, SessionEntry>,
    next_conn_id: u64,
}

impl Sessions {
    /// A fresh id for a websocket connection.
    pub fn next_conn_id(&mut self) -> u64 {
        self.next_conn_id += 1;
        self.next_conn_id
    }

    /// Registers a new identified session attached to `conn_id`.
    pub fn create(
        &mut self,
        session_id: String,
        shard: [u32; 2],
        intents: u64,
        conn_id: u64,
        tx: UnboundedSender<Outbound>,
    ) {
        self.prune();
        self.entries.insert(
            session_id,
            SessionEntry {
                shard_id: shard[0],
                shard_count: shard[1],
                intents,
                seq: 0,
                replay: VecDeque::new(),
                conn: Some(Attached { conn_id, tx }),
                detached_at: None,
            },
        );
    }

    /// Sends one dispatch to one session (READY, the initial GUILD_CREATEs, RESUMED).
    pub fn send_to<T: Serialize>(&mut self, session_id: &str, kind: EventKind, payload: &T) {
        if let Some(entry) = self.entries.get_mut(session_id)
            && (kind.intent == 0 || entry.intents & kind.intent != 0)
            && let Some(d) = serialize(payload)
        {
            entry.push(kind.name, &d);
        }
    }

    /// Sends a guild's dispatch to every session of the shard owning the guild that asked
    /// for the event's intent. Serializes the payload at most once.
    pub fn broadcast<T: Serialize>(
        &mut self,
        guild_id: Id<GuildMarker>,
        kind: EventKind,
        payload: &T,
    ) {
        let mut encoded: Option<Arc<str>> = None;
        for entry in self.entries.values_mut() {
            if (kind.intent != 0 && entry.intents & kind.intent == 0) || !entry.owns(guild_id) {
                continue;
            }
            if encoded.is_none() {
                encoded = serialize(payload);
            }
            if let Some(d) = &encoded {
                entry.push(kind.name, d);
            }
        }
    }

    /// Attaches a new connection to an existing session and replays what it missed.
    pub fn resume(
        &mut self,
        session_id: &str,
        seq: u64,
        conn_id: u64,
        tx: UnboundedSender<Outbound>,
    ) -> Result<(), ResumeRefused> {
        self.prune();
        let entry = self
            .entries
            .get_mut(session_id)
            .ok_or(ResumeRefused::UnknownSession)?;
        let oldest_kept = entry.replay.front().map_or(entry.seq + 1, |f| f.seq);
        if seq > entry.seq || seq + 1 < oldest_kept {
            return Err(ResumeRefused::TooOld);
        }
        if let Some(old) = entry.conn.take() {
            // Discord drops the old connection of a resumed session.
            let _ = old.tx.send(Outbound::Close {
                code: 4000,
                reason: "Session resumed elsewhere.",
            });
        }
        for frame in entry.replay.iter().filter(|f| f.seq > seq) {
            if tx.send(Outbound::Frame(frame.clone())).is_err() {
                entry.detached_at = Some(Instant::now());
                return Ok(());
            }
        }
        entry.conn = Some(Attached { conn_id, tx });
        entry.detached_at = None;
        Ok(())
    }

    /// The connection `conn_id` went away; the session stays resumable for a while.
    pub fn detach(&mut self, session_id: &str, conn_id: u64) {
        if let Some(entry) = self.entries.get_mut(session_id)
            && entry.conn.as_ref().is_some_and(|c| c.conn_id == conn_id)
        {
            entry.conn = None;
            entry.detached_at = Some(Instant::now());
        }
    }

    /// Forgets a session (after an invalid session or a normal close).
    pub fn remove(&mut self, session_id: &str) {
        self.entries.remove(session_id);
    }

    /// Sends a control message (op 7, op 9, close) to every attached connection.
    pub fn tell_all(&mut self, msg: &Outbound) {
        for entry in self.entries.values_mut() {
            if let Some(conn) = &entry.conn {
                let _ = conn.tx.send(msg.clone());
            }
        }
    }

    /// Drops every connection channel (their tasks then close the sockets).
    pub fn disconnect_all(&mut self) {
        for entry in self.entries.values_mut() {
            entry.conn = None;
        }
        self.entries.clear();
    }

    /// Number of sessions with a live connection.
    pub fn connected(&self) -> usize {
        self.entries.values().filter(|e| e.conn.is_some()).count()
    }

    fn prune(&mut self) {
        let now = Instant::now();
        self.entries.retain(|_, e| {
            e.detached_at
                .is_none_or(|at| now.duration_since(at) < RESUME_WINDOW)
        });
    }
}

fn serialize<T: Serialize>(payload: &T) -> Option<Arc<str>> {
    match serde_json::to_string(payload) {
        Ok(s) => Some(Arc::from(s)),
        Err(error) => {
            tracing::error!(%error, "cannot serialize a dispatch");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::unbounded_channel;

    #[test]
    fn frame_key_order() {
        let f = Frame {
            seq: 3,
            t: "X",
            d: Arc::from("{\"a\":1}"),
        };
        assert_eq!(f.encode(), r#"{"t":"X","s":3,"op":0,"d":{"a":1}}"#);
    }

    #[test]
    fn shard_routing_and_intents() {
        let mut s = Sessions::default();
        let (tx0, mut rx0) = unbounded_channel();
        let (tx1, mut rx1) = unbounded_channel();
        s.create("a".into(), [0, 2], intents::GUILD_MEMBERS, 1, tx0);
        s.create("b".into(), [1, 2], intents::GUILDS, 2, tx1);
        let g0 = Id::new(2 << 22);
        let g1 = Id::new(3 << 22);
        s.broadcast(g0, EventKind::GUILD_MEMBER_ADD, &1);
        s.broadcast(g1, EventKind::GUILD_MEMBER_ADD, &2);
        s.broadcast(g1, EventKind::GUILD_CREATE, &3);
        assert!(matches!(rx0.try_recv(), Ok(Outbound::Frame(f)) if &*f.d == "1" && f.seq == 1));
        assert!(rx0.try_recv().is_err());
        assert!(matches!(rx1.try_recv(), Ok(Outbound::Frame(f)) if &*f.d == "3" && f.seq == 1));
        assert!(rx1.try_recv().is_err());
    }

    #[test]
    fn resume_replays_missed() {
        let mut s = Sessions::default();
        let (tx, rx) = unbounded_channel();
        s.create("a".into(), [0, 1], intents::GUILDS, 1, tx);
        drop(rx);
        let g = Id::new(1 << 22);
        s.broadcast(g, EventKind::GUILD_CREATE, &1);
        s.broadcast(g, EventKind::GUILD_CREATE, &2);
        s.broadcast(g, EventKind::GUILD_CREATE, &3);
        let (tx, mut rx) = unbounded_channel();
        assert_eq!(
            s.resume("nope", 1, 2, tx.clone()),
            Err(ResumeRefused::UnknownSession)
        );
        assert_eq!(s.resume("a", 9, 2, tx.clone()), Err(ResumeRefused::TooOld));
        s.resume("a", 1, 2, tx).expect("resumable");
        let seqs: Vec<u64> = std::iter::from_fn(|| match rx.try_recv() {
            Ok(Outbound::Frame(f)) => Some(f.seq),
            _ => None,
        })
        .collect();
        assert_eq!(seqs, vec![2, 3]);
    }
}
