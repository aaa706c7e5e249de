//! Gateway sessions: who gets which dispatch, with which sequence number.
//!
//! A session outlives its websocket connection (that is what RESUME is for): it keeps its
//! shard, intents, sequence counter and a bounded replay buffer of the dispatches it was sent.
//! A live connection is "attached" to it through a bounded channel, so producing an event
//! never waits on a socket; a client too slow to keep up (its channel is full) is
//! disconnected with close code 4000, as Discord drops slow consumers, and can RESUME.
//! The registry sits inside the world's `State` (`world/model.rs`), under its mutex, so dispatch
//! order is exactly the order of the state changes. With an [`EventDelay`], dispatches wait
//! in an outbox (still in order) until they are due.

use serde::{Deserialize, Serialize};
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Condvar},
    time::{Duration, Instant},
};
use tokio::sync::mpsc::{Sender, error::TrySendError};
use tokio_util::sync::CancellationToken;
use twilight_model::id::{Id, marker::GuildMarker};

/// Delay of gateway dispatches relative to the state change that caused them, uniform in
/// `[min_ms, max_ms]` per event.
///
/// A positive delay `D` sends the dispatch `D` ms after the change (a join's `uses` counter
/// moves at once, its GUILD_MEMBER_ADD comes `D` later). A negative delay applies to joins
/// only and works the other way round: GUILD_MEMBER_ADD goes out at once and the invite's
/// (or the vanity URL's) `uses` moves `|D|` ms later. Dispatches always keep their order;
/// `joined_at` is always the moment of the join.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDelay {
    /// Smallest delay, ms (negative: the counter lags the event).
    pub min_ms: i64,
    /// Largest delay, ms.
    pub max_ms: i64,
}

impl EventDelay {
    /// No delay at all.
    pub fn is_zero(&self) -> bool {
        self.min_ms == 0 && self.max_ms == 0
    }

    /// Checks the range.
    ///
    /// # Errors
    ///
    /// A message when `min_ms > max_ms` or a bound exceeds 10 minutes.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_ms > self.max_ms || self.min_ms.abs() > 600_000 || self.max_ms.abs() > 600_000 {
            return Err("event delay must be min_ms <= max_ms, within ±600000".into());
        }
        Ok(())
    }

    /// Draws one delay, in ms.
    pub fn sample(&self) -> i64 {
        use rand::Rng;
        if self.max_ms > self.min_ms {
            rand::rng().random_range(self.min_ms..=self.max_ms)
        } else {
            self.min_ms
        }
    }

    /// Parses `MIN..MAX` (or a single value), e.g. `50..150`, `-100..-50`.
    ///
    /// # Errors
    ///
    /// A message saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (min, max) = text.split_once("..").unwrap_or((text, text));
        let parse = |v: &str| {
            v.trim()
                .parse::<i64>()
                .map_err(|e| format!("event delay {text:?}: {e}"))
        };
        let delay = Self {
            min_ms: parse(min)?,
            max_ms: parse(max)?,
        };
        delay.validate()?;
        Ok(delay)
    }
}

/// Gateway intent bits.
pub mod intents {
    /// GUILDS.
    pub const GUILDS: u64 = 1 << 0;
    /// GUILD_MEMBERS (privileged).
    pub const GUILD_MEMBERS: u64 = 1 << 1;
    /// GUILD_INVITES.
    pub const GUILD_INVITES: u64 = 1 << 6;
    /// GUILD_PRESENCES (privileged).
    pub const GUILD_PRESENCES: u64 = 1 << 8;
    /// MESSAGE_CONTENT (privileged).
    pub const MESSAGE_CONTENT: u64 = 1 << 15;
    /// The privileged intents: an IDENTIFY with one the application has not turned on is
    /// closed with 4014.
    pub const PRIVILEGED: u64 = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT;
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
    pub const CHANNEL_CREATE: Self = Self {
        name: "CHANNEL_CREATE",
        intent: intents::GUILDS,
    };
    pub const CHANNEL_UPDATE: Self = Self {
        name: "CHANNEL_UPDATE",
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
    /// Needs no intent.
    pub const INTERACTION_CREATE: Self = Self {
        name: "INTERACTION_CREATE",
        intent: 0,
    };
    /// The answer to a session's op 8 (Request Guild Members); needs no intent of its own.
    pub const GUILD_MEMBERS_CHUNK: Self = Self {
        name: "GUILD_MEMBERS_CHUNK",
        intent: 0,
    };
    /// A gateway command of the session was over its limit (op 8 for all of a guild's
    /// members); needs no intent.
    pub const RATE_LIMITED: Self = Self {
        name: "RATE_LIMITED",
        intent: 0,
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
}

/// How many dispatches a session keeps for RESUME.
const REPLAY_CAPACITY: usize = 20_000;
/// How long a session without a connection stays resumable.
const RESUME_WINDOW: Duration = Duration::from_secs(180);

/// The sending side of a live connection.
#[derive(Debug, Clone)]
pub struct Link {
    /// Frames and control messages for the connection task (bounded).
    pub tx: Sender<Outbound>,
    /// Cancelled to make the connection task close at once (slow consumer, dropped shard).
    pub kill: CancellationToken,
}

#[derive(Debug)]
struct Attached {
    conn_id: u64,
    link: Link,
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
        if let Some(conn) = &self.conn {
            match conn.link.tx.try_send(Outbound::Frame(frame.clone())) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    tracing::warn!(
                        shard = self.shard_id,
                        conn_id = conn.conn_id,
                        "gateway client too slow: its queue is full, disconnecting it"
                    );
                    conn.link.kill.cancel();
                    self.conn = None;
                    self.detached_at = Some(Instant::now());
                }
                Err(TrySendError::Closed(_)) => {
                    self.conn = None;
                    self.detached_at = Some(Instant::now());
                }
            }
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

/// Who a queued dispatch goes to.
#[derive(Debug)]
enum Target {
    /// Every session of the guild's shard (with the intent).
    Guild(Id<GuildMarker>),
    /// One session: the answer to its own request.
    Session(String),
}

/// A dispatch waiting for its time.
#[derive(Debug)]
struct Queued {
    due: Instant,
    to: Target,
    t: &'static str,
    intent: u64,
    d: Arc<str>,
}

/// Registry of gateway sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    entries: HashMap<String, SessionEntry>,
    next_conn_id: u64,
    /// Delay of every broadcast dispatch.
    delay: EventDelay,
    /// Delayed dispatches, due times non-decreasing.
    outbox: VecDeque<Queued>,
    /// Told when the outbox gets its first entry.
    wake: Option<Arc<Condvar>>,
    /// Dispatches sent (to at least one session) or queued.
    dispatched: u64,
}

impl Sessions {
    /// A registry whose delayed dispatches wake `wake`.
    pub fn new(delay: EventDelay, wake: Arc<Condvar>) -> Self {
        Self {
            delay,
            wake: Some(wake),
            ..Self::default()
        }
    }

    /// The dispatch delay.
    pub fn delay(&self) -> EventDelay {
        self.delay
    }

    /// Changes the dispatch delay (already queued dispatches keep their time).
    pub fn set_delay(&mut self, delay: EventDelay) {
        self.delay = delay;
    }

    /// Broadcasts dispatches that are due; the time of the next one, if any.
    pub fn flush_due(&mut self, now: Instant) -> Option<Instant> {
        while let Some(front) = self.outbox.front() {
            if front.due > now {
                return Some(front.due);
            }
            if let Some(q) = self.outbox.pop_front() {
                match &q.to {
                    Target::Guild(guild_id) => {
                        self.broadcast_now(*guild_id, q.t, q.intent, &q.d);
                    }
                    Target::Session(session_id) => self.push_to(session_id, q.t, q.intent, &q.d),
                }
            }
        }
        None
    }

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
        link: Link,
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
                conn: Some(Attached { conn_id, link }),
                detached_at: None,
            },
        );
    }

    /// Sends one dispatch to one session (READY, the initial GUILD_CREATEs, RESUMED).
    pub fn send_to<T: Serialize>(&mut self, session_id: &str, kind: EventKind, payload: &T) {
        if self
            .entries
            .get(session_id)
            .is_some_and(|e| kind.intent == 0 || e.intents & kind.intent != 0)
            && let Some(d) = serialize(payload)
        {
            self.push_to(session_id, kind.name, kind.intent, &d);
        }
    }

    /// Sends one dispatch to one session after every dispatch still waiting for its
    /// [`EventDelay`], so it overtakes none of them (a shard's stream keeps its order): the
    /// answers to a session's own requests (GUILD_MEMBERS_CHUNK, RATE_LIMITED). At once when
    /// nothing waits.
    pub fn send_in_order<T: Serialize>(&mut self, session_id: &str, kind: EventKind, payload: &T) {
        let Some(last_due) = self.outbox.back().map(|last| last.due) else {
            self.send_to(session_id, kind, payload);
            return;
        };
        let Some(d) = serialize(payload) else { return };
        // The outbox is not empty, so the scheduler is already awake for it.
        self.outbox.push_back(Queued {
            due: last_due,
            to: Target::Session(session_id.to_owned()),
            t: kind.name,
            intent: kind.intent,
            d,
        });
    }

    fn push_to(&mut self, session_id: &str, t: &'static str, intent: u64, d: &Arc<str>) {
        if let Some(entry) = self.entries.get_mut(session_id)
            && (intent == 0 || entry.intents & intent != 0)
        {
            entry.push(t, d);
        }
    }

    /// The intents a session identified with (`None`: no such session).
    pub fn intents_of(&self, session_id: &str) -> Option<u64> {
        self.entries.get(session_id).map(|e| e.intents)
    }

    /// Whether `guild_id` is on the shard of the session (`false` for no such session).
    pub fn session_owns(&self, session_id: &str, guild_id: Id<GuildMarker>) -> bool {
        self.entries
            .get(session_id)
            .is_some_and(|e| e.owns(guild_id))
    }

    /// Sends a guild's dispatch to every session of the shard owning the guild that asked
    /// for the event's intent, after the configured [`EventDelay`] (negative delays count as
    /// none here). Serializes the payload at most once.
    pub fn broadcast<T: Serialize>(
        &mut self,
        guild_id: Id<GuildMarker>,
        kind: EventKind,
        payload: &T,
    ) {
        let delay = u64::try_from(self.delay.sample()).unwrap_or(0);
        self.broadcast_after(guild_id, kind, payload, delay);
    }

    /// Like [`Sessions::broadcast`] with this delay (ms); still after every queued dispatch.
    pub fn broadcast_after<T: Serialize>(
        &mut self,
        guild_id: Id<GuildMarker>,
        kind: EventKind,
        payload: &T,
        delay_ms: u64,
    ) {
        if delay_ms == 0 && self.outbox.is_empty() {
            let wanted = self
                .entries
                .values()
                .any(|e| (kind.intent == 0 || e.intents & kind.intent != 0) && e.owns(guild_id));
            if wanted && let Some(d) = serialize(payload) {
                self.broadcast_now(guild_id, kind.name, kind.intent, &d);
            }
            return;
        }
        let Some(d) = serialize(payload) else { return };
        let now = Instant::now();
        let mut due = now + Duration::from_millis(delay_ms);
        if let Some(last) = self.outbox.back() {
            due = due.max(last.due);
        }
        let was_empty = self.outbox.is_empty();
        self.outbox.push_back(Queued {
            due,
            to: Target::Guild(guild_id),
            t: kind.name,
            intent: kind.intent,
            d,
        });
        if was_empty && let Some(wake) = &self.wake {
            wake.notify_all();
        }
    }

    fn broadcast_now(
        &mut self,
        guild_id: Id<GuildMarker>,
        t: &'static str,
        intent: u64,
        d: &Arc<str>,
    ) {
        self.dispatched += 1;
        for entry in self.entries.values_mut() {
            if (intent != 0 && entry.intents & intent == 0) || !entry.owns(guild_id) {
                continue;
            }
            entry.push(t, d);
        }
    }

    /// Guild dispatches produced so far.
    pub fn dispatched(&self) -> u64 {
        self.dispatched
    }

    /// Attaches a new connection to an existing session and replays what it missed.
    pub fn resume(
        &mut self,
        session_id: &str,
        seq: u64,
        conn_id: u64,
        link: Link,
    ) -> Result<(), ResumeRefused> {
        self.prune();
        let entry = self
            .entries
            .get_mut(session_id)
            .ok_or(ResumeRefused::UnknownSession)?;
        let oldest_kept = entry.replay.front().map_or(entry.seq + 1, |f| f.seq);
        let missed = entry.seq.saturating_sub(seq);
        if seq > entry.seq
            || seq + 1 < oldest_kept
            || usize::try_from(missed).unwrap_or(usize::MAX) >= link.tx.max_capacity()
        {
            return Err(ResumeRefused::TooOld);
        }
        if let Some(old) = entry.conn.take() {
            // Discord drops the old connection of a resumed session.
            old.link.kill.cancel();
        }
        for frame in entry.replay.iter().filter(|f| f.seq > seq) {
            if link.tx.try_send(Outbound::Frame(frame.clone())).is_err() {
                entry.detached_at = Some(Instant::now());
                return Ok(());
            }
        }
        entry.conn = Some(Attached { conn_id, link });
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
                let _ = conn.link.tx.try_send(msg.clone());
            }
        }
    }

    /// Cuts the connection of every session of `shard` (all shards for `None`) at once, as
    /// a network failure would: the connection closes with 4000 and the shard can RESUME.
    /// Returns how many connections were cut.
    pub fn drop_shard(&mut self, shard: Option<u32>) -> usize {
        let mut dropped = 0;
        for entry in self.entries.values_mut() {
            if shard.is_some_and(|s| s != entry.shard_id) {
                continue;
            }
            if let Some(conn) = entry.conn.take() {
                conn.link.kill.cancel();
                entry.detached_at = Some(Instant::now());
                dropped += 1;
            }
        }
        dropped
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
    use tokio::sync::mpsc::{Receiver, channel};

    fn link(cap: usize) -> (Link, Receiver<Outbound>) {
        let (tx, rx) = channel(cap);
        (
            Link {
                tx,
                kill: CancellationToken::new(),
            },
            rx,
        )
    }

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
        let (tx0, mut rx0) = link(16);
        let (tx1, mut rx1) = link(16);
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
        let (tx, rx) = link(16);
        s.create("a".into(), [0, 1], intents::GUILDS, 1, tx);
        drop(rx);
        let g = Id::new(1 << 22);
        s.broadcast(g, EventKind::GUILD_CREATE, &1);
        s.broadcast(g, EventKind::GUILD_CREATE, &2);
        s.broadcast(g, EventKind::GUILD_CREATE, &3);
        let (tx, mut rx) = link(16);
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

    #[test]
    fn slow_consumer_is_cut() {
        let mut s = Sessions::default();
        let (l, _rx) = link(2);
        let kill = l.kill.clone();
        s.create("a".into(), [0, 1], intents::GUILDS, 1, l);
        let g = Id::new(1 << 22);
        for i in 0..3 {
            s.broadcast(g, EventKind::GUILD_CREATE, &i);
        }
        assert!(kill.is_cancelled());
        assert_eq!(s.connected(), 0);
        // Still resumable: the replay buffer kept all three.
        let (l, mut rx) = link(16);
        s.resume("a", 1, 2, l).expect("resumable");
        assert!(matches!(rx.try_recv(), Ok(Outbound::Frame(f)) if f.seq == 2));
    }

    #[test]
    fn delayed_dispatches_keep_order() {
        let mut s = Sessions::new(
            EventDelay {
                min_ms: 0,
                max_ms: 0,
            },
            Arc::new(Condvar::new()),
        );
        let (l, mut rx) = link(16);
        s.create("a".into(), [0, 1], intents::GUILDS, 1, l);
        let g = Id::new(1 << 22);
        s.broadcast_after(g, EventKind::GUILD_CREATE, &1, 50);
        s.broadcast_after(g, EventKind::GUILD_CREATE, &2, 0);
        assert!(rx.try_recv().is_err());
        let now = Instant::now();
        assert!(s.flush_due(now).is_some());
        assert!(s.flush_due(now + Duration::from_millis(60)).is_none());
        let ds: Vec<String> = std::iter::from_fn(|| match rx.try_recv() {
            Ok(Outbound::Frame(f)) => Some(f.d.to_string()),
            _ => None,
        })
        .collect();
        assert_eq!(ds, vec!["1", "2"]);
        assert_eq!(EventDelay::parse("-100..-50").expect("ok").min_ms, -100);
        assert!(EventDelay::parse("5..1").is_err());
    }
}
