//! An in-memory cache of per-inviter counts (`GET /v1/invites/user`), kept correct by
//! PostgreSQL: a statement-level trigger on `inviter_counts` sends `NOTIFY
//! invitrack_inviter_counts` with the guilds a statement changed, delivered when (and only if)
//! the transaction commits; [`listen`] drops those guilds' entries.
//!
//! How stale an answer can be: a committed change stops being hidden as soon as its
//! notification is handled, i.e. after PostgreSQL's delivery to our listening connection and
//! one wake-up of [`listen`] (well under a millisecond on loopback, see `BENCHMARKS.md`). Two
//! races are closed:
//! - a read that started before a commit and finishes after its notification was handled would
//!   store the old value: every read takes a [`Ticket`] (its shard's epoch) *before* querying,
//!   and an invalidation bumps the epoch, so such a value is never stored;
//! - a lost or broken listening connection would stop invalidations: then the whole cache is
//!   dropped and bypassed until the connection is back and `LISTEN` is in effect again. A
//!   connection that hangs silently is found by a ping after [`PING_AFTER`] without traffic
//!   (answer within [`PING_TIMEOUT`]), so even then no answer is older than about 2 s.
//!
//! `max_age` bounds every entry's age as well, as a last line of defence.

use invitrack_model::{GuildKey, UserId};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use futures_util::StreamExt as _;
use invitrack_storage::counts::InviterCounts;
use invitrack_storage::dashboard::{COUNTS_CHANNEL, CountsChange};
use prometheus::IntCounterVec;
use tokio_util::sync::CancellationToken;

/// Shards of the cache, each with its own lock and epoch: an invalidation of one guild only
/// refuses the stores of reads racing with it in the same shard.
const SHARDS: usize = 64;
/// With no notification for this long, the listening connection is pinged.
pub const PING_AFTER: Duration = Duration::from_secs(1);
/// A ping not answered within this long counts as a lost connection.
pub const PING_TIMEOUT: Duration = Duration::from_millis(500);
/// `application_name` of the listening connection, to find it in `pg_stat_activity`.
pub const LISTENER_NAME: &str = "invitrack-api-counts-listener";
/// Wait between reconnection attempts.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// What is cached about one guild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKey {
    /// An inviter's counts.
    Inviter(UserId),
    /// A leaderboard page: order, range, page, rows per page (as the handler names them).
    Leaderboard {
        order: u8,
        range: u8,
        page: i64,
        per_page: i64,
    },
}

#[derive(Debug, Clone)]
enum Value {
    Counts(InviterCounts),
    Body(Bytes),
}

#[derive(Default)]
struct Shard {
    /// Bumped by every invalidation touching this shard.
    epoch: u64,
    entries: usize,
    /// Per guild, each entry with its expiry.
    guilds: HashMap<GuildKey, HashMap<EntryKey, (Value, Instant)>>,
}

/// Proof that a read began at a given epoch of its shard; see [`CountsCache::put_counts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    shard: usize,
    epoch: u64,
}

/// Cached counts and leaderboard pages by bot and guild; see the module documentation.
pub struct CountsCache {
    max_age: Duration,
    shard_capacity: usize,
    /// Whether invalidations are being received; off, the cache is empty and bypassed.
    live: AtomicBool,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
    events: Option<IntCounterVec>,
}

impl CountsCache {
    /// A cache of at most about `capacity` entries, each at most `max_age` old. It serves
    /// nothing until [`listen`] has its `LISTEN` in effect.
    #[must_use]
    pub fn new(capacity: usize, max_age: Duration, events: Option<IntCounterVec>) -> Self {
        Self {
            max_age,
            shard_capacity: capacity.div_ceil(SHARDS).max(1),
            live: AtomicBool::new(false),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            events,
        }
    }

    fn count(&self, event: &str) {
        if let Some(events) = &self.events {
            events.with_label_values(&[event]).inc();
        }
    }

    fn shard(&self, key: GuildKey) -> (usize, std::sync::MutexGuard<'_, Shard>) {
        // The modulo keeps the value below SHARDS, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let index = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        let guard = self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (index, guard)
    }

    fn get(&self, guild: GuildKey, key: EntryKey) -> Result<Value, Option<Ticket>> {
        if !self.live.load(Ordering::Acquire) {
            self.count("bypass");
            return Err(None);
        }
        let (shard, entries) = self.shard(guild);
        let now = Instant::now();
        let found = entries
            .guilds
            .get(&guild)
            .and_then(|guild| guild.get(&key))
            .filter(|(_, expires)| now < *expires)
            .map(|(value, _)| value.clone());
        let epoch = entries.epoch;
        drop(entries);
        if let Some(value) = found {
            self.count("hit");
            Ok(value)
        } else {
            self.count("miss");
            Err(Some(Ticket { shard, epoch }))
        }
    }

    fn put(&self, ticket: Ticket, guild: GuildKey, key: EntryKey, value: Value, max_age: Duration) {
        let Some(expires) = Instant::now().checked_add(max_age.min(self.max_age)) else {
            return;
        };
        let (index, mut shard) = self.shard(guild);
        if index != ticket.shard
            || shard.epoch != ticket.epoch
            || !self.live.load(Ordering::Acquire)
        {
            return;
        }
        if shard.entries >= self.shard_capacity {
            shard.guilds.clear();
            shard.entries = 0;
        }
        let previous = shard
            .guilds
            .entry(guild)
            .or_default()
            .insert(key, (value, expires));
        if previous.is_none() {
            shard.entries += 1;
        }
    }

    /// The cached counts, or a ticket to store the counts read from the database (`None` while
    /// the cache is bypassed).
    ///
    /// # Errors
    /// On a miss, with the ticket (or `None`).
    pub fn get_counts(
        &self,
        guild: GuildKey,
        inviter_id: UserId,
    ) -> Result<InviterCounts, Option<Ticket>> {
        match self.get(guild, EntryKey::Inviter(inviter_id))? {
            Value::Counts(counts) => Ok(counts),
            Value::Body(_) => Err(None),
        }
    }

    /// Stores counts read from the database after `ticket` was taken, unless the guild's shard
    /// was invalidated meanwhile (the value may predate a committed change).
    pub fn put_counts(
        &self,
        ticket: Ticket,
        guild: GuildKey,
        inviter_id: UserId,
        counts: InviterCounts,
    ) {
        self.put(
            ticket,
            guild,
            EntryKey::Inviter(inviter_id),
            Value::Counts(counts),
            self.max_age,
        );
    }

    /// A cached response body of a guild, or a ticket to store one.
    ///
    /// # Errors
    /// On a miss, with the ticket (or `None` while the cache is bypassed).
    pub fn get_body(&self, guild: GuildKey, key: EntryKey) -> Result<Bytes, Option<Ticket>> {
        match self.get(guild, key)? {
            Value::Body(body) => Ok(body),
            Value::Counts(_) => Err(None),
        }
    }

    /// Stores a response body computed from the guild's counters (or the joins and bonus rows
    /// they are maintained from) for at most `max_age`, unless the shard was invalidated since
    /// `ticket`.
    pub fn put_body(
        &self,
        ticket: Ticket,
        guild: GuildKey,
        key: EntryKey,
        body: Bytes,
        max_age: Duration,
    ) {
        self.put(ticket, guild, key, Value::Body(body), max_age);
    }

    /// Drops a guild's entries.
    pub fn invalidate_guild(&self, guild: GuildKey) {
        let (_, mut shard) = self.shard(guild);
        shard.epoch += 1;
        if let Some(inviters) = shard.guilds.remove(&guild) {
            shard.entries -= inviters.len();
        }
    }

    /// Drops everything.
    pub fn invalidate_all(&self) {
        for shard in &*self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard.epoch += 1;
            shard.guilds.clear();
            shard.entries = 0;
        }
    }

    fn apply(&self, change: &CountsChange) {
        self.count("invalidation");
        match change {
            CountsChange::All => self.invalidate_all(),
            CountsChange::Guilds(guilds) => {
                for guild in guilds {
                    self.invalidate_guild(*guild);
                }
            }
        }
    }

    /// Starts serving (the listener's `LISTEN` is in effect) or stops and empties the cache.
    fn set_live(&self, live: bool) {
        if live {
            // Whatever was stored before LISTEN took effect may have missed invalidations.
            self.invalidate_all();
            self.live.store(true, Ordering::Release);
        } else {
            self.live.store(false, Ordering::Release);
            self.invalidate_all();
        }
    }
}

/// Keeps a connection that `LISTEN`s for counter changes and applies them to `cache`, until
/// `stop`. While it has no working connection the cache is empty and bypassed.
pub async fn listen(cache: Arc<CountsCache>, database_url: String, stop: CancellationToken) {
    loop {
        match listen_once(&cache, &database_url, &stop).await {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(%error, "counts cache: listening connection lost; cache bypassed");
            }
        }
        cache.set_live(false);
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(RECONNECT_AFTER) => {}
        }
    }
    cache.set_live(false);
}

/// One listening connection's life: `Ok` when stopped, `Err` when the connection failed.
async fn listen_once(
    cache: &CountsCache,
    database_url: &str,
    stop: &CancellationToken,
) -> Result<(), invitrack_storage::StorageError> {
    use diesel_async::RunQueryDsl as _;
    let separator = if database_url.contains('?') { '&' } else { '?' };
    let url = format!("{database_url}{separator}application_name={LISTENER_NAME}");
    let mut conn = invitrack_storage::connect(&url).await?;
    diesel::sql_query(format!("LISTEN {COUNTS_CHANNEL}"))
        .execute(&mut conn)
        .await?;
    cache.set_live(true);
    tracing::debug!("counts cache: listening");
    loop {
        let next = {
            let mut notifications = std::pin::pin!(conn.notifications_stream());
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                next = tokio::time::timeout(PING_AFTER, notifications.next()) => next,
            }
        };
        match next {
            Ok(Some(Ok(notification))) => {
                cache.apply(&CountsChange::parse(&notification.payload));
            }
            Ok(Some(Err(error))) => return Err(error.into()),
            Ok(None) => {
                return Err(invitrack_storage::StorageError::Pool(
                    "listening connection closed".into(),
                ));
            }
            // Quiet for a while: make sure the connection still works.
            Err(_) => {
                match tokio::time::timeout(
                    PING_TIMEOUT,
                    diesel::sql_query("SELECT 1").execute(&mut conn),
                )
                .await
                {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Err(error.into()),
                    Err(_) => {
                        return Err(invitrack_storage::StorageError::Pool(
                            "listening connection does not answer".into(),
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: GuildKey = GuildKey::new(
        invitrack_model::BotId::new(1),
        invitrack_model::GuildId::new(2),
    );

    fn user(id: u64) -> UserId {
        UserId::new(id)
    }

    fn counts(joins: i64) -> InviterCounts {
        InviterCounts {
            joins,
            ..InviterCounts::default()
        }
    }

    #[test]
    fn serves_only_while_live_and_refuses_values_older_than_an_invalidation() {
        let cache = CountsCache::new(1000, Duration::from_secs(60), None);
        // Not live: bypassed, nothing stored.
        assert!(matches!(cache.get_counts(G, user(3)), Err(None)));
        cache.set_live(true);
        let Err(Some(ticket)) = cache.get_counts(G, user(3)) else {
            panic!("expected a miss with a ticket");
        };
        cache.put_counts(ticket, G, user(3), counts(5));
        assert_eq!(cache.get_counts(G, user(3)), Ok(counts(5)));

        // A read races with a commit: its ticket predates the invalidation, so its (possibly
        // old) value is not stored.
        cache.invalidate_guild(G);
        let Err(Some(ticket)) = cache.get_counts(G, user(3)) else {
            panic!("expected a miss");
        };
        cache.apply(&CountsChange::Guilds(vec![G]));
        cache.put_counts(ticket, G, user(3), counts(5));
        assert!(cache.get_counts(G, user(3)).is_err());

        // Losing the listener empties and bypasses the cache; values read before are refused.
        let Err(Some(ticket)) = cache.get_counts(G, user(4)) else {
            panic!("expected a miss");
        };
        cache.set_live(false);
        cache.put_counts(ticket, G, user(4), counts(1));
        cache.set_live(true);
        assert!(cache.get_counts(G, user(4)).is_err());
    }

    #[test]
    fn entries_expire_and_capacity_is_bounded() {
        let cache = CountsCache::new(SHARDS, Duration::ZERO, None);
        cache.set_live(true);
        let Err(Some(ticket)) = cache.get_counts(G, user(3)) else {
            panic!("expected a miss");
        };
        cache.put_counts(ticket, G, user(3), counts(1));
        assert!(
            cache.get_counts(G, user(3)).is_err(),
            "max_age 0 serves nothing"
        );

        let cache = CountsCache::new(SHARDS, Duration::from_secs(60), None);
        cache.set_live(true);
        for inviter in 0..1000 {
            if let Err(Some(ticket)) = cache.get_counts(G, user(inviter)) {
                cache.put_counts(ticket, G, user(inviter), counts(1));
            }
        }
        let stored: usize = cache
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).entries)
            .sum();
        assert!(stored <= SHARDS, "{stored} entries kept");
    }
}
