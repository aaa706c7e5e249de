//! The worker's step function: a batch of one partition's messages in, effects committed to
//! PostgreSQL in one transaction together with the partition's progress.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use invitrack_attribution::{EngineConfig, GuildAttribution, Observation};
use invitrack_bus::{BusLayout, EventKind, decode_event};
use invitrack_storage::members::MemberKey;
use invitrack_storage::progress::{self, GuildKey, GuildStateRow, PartitionClaim};
use invitrack_storage::{AsyncConnection, AsyncPgConnection, millis_to_time};

use crate::WorkerError;
use crate::convert;
use crate::effects::{BatchEffects, MemberJoin};
use crate::lag::LagHistogram;

/// One message of the partition as the stream delivered it.
#[derive(Debug, Clone)]
pub struct StreamMessage {
    pub sequence: u64,
    pub subject: String,
    pub payload: Bytes,
}

/// A message that could not be applied, with why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub sequence: u64,
    pub subject: String,
    pub reason: String,
    pub payload: Bytes,
}

/// What a step did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub applied: usize,
    pub skipped: usize,
    pub decisions: usize,
    pub dead_letters: Vec<DeadLetter>,
}

/// A partition this worker has claimed: its progress, fence and the engine state of the guilds
/// it has touched.
pub struct Partition {
    stream: String,
    number: u32,
    claim: PartitionClaim,
    layout: BusLayout,
    engine: EngineConfig,
    guilds: HashMap<GuildKey, CachedGuild>,
    /// Most guild states kept in memory; the least recently used idle ones are dropped
    /// beyond it (their state is in PostgreSQL).
    max_cached: usize,
    clock: u64,
    /// Where the time from `observed_at` to commit is recorded, if anywhere.
    lag: Option<Arc<LagHistogram>>,
    /// Commit without waiting for the WAL flush (see `progress::relax_commit`).
    relaxed_commit: bool,
    /// How far ingest's clock has come, per bot and shard: time for undecided joins.
    clocks: ShardClocks,
}

struct CachedGuild {
    state: GuildAttribution,
    last_used: u64,
}

impl Partition {
    #[must_use]
    pub fn new(
        stream: String,
        number: u32,
        claim: PartitionClaim,
        layout: BusLayout,
        engine: EngineConfig,
        max_cached: usize,
    ) -> Self {
        Self {
            stream,
            number,
            claim,
            layout,
            engine,
            guilds: HashMap::new(),
            max_cached: max_cached.max(1),
            clock: 0,
            lag: None,
            relaxed_commit: false,
            clocks: ShardClocks::default(),
        }
    }

    /// Commits without waiting for PostgreSQL's WAL flush: safe for exactly-once (a lost
    /// commit loses effects and sequence together, and they are applied again), and much
    /// faster on slow disks.
    #[must_use]
    pub fn with_relaxed_commit(mut self, relaxed: bool) -> Self {
        self.relaxed_commit = relaxed;
        self
    }

    /// Records each applied event's end-to-end lag (its `observed_at` to its commit) in `lag`.
    #[must_use]
    pub fn with_lag(mut self, lag: Arc<LagHistogram>) -> Self {
        self.lag = Some(lag);
        self
    }

    /// Drops the least recently used guilds with nothing pending while over `max_cached`.
    fn evict_idle(&mut self) {
        let excess = self.guilds.len().saturating_sub(self.max_cached);
        if excess == 0 {
            return;
        }
        let mut idle: Vec<(u64, GuildKey)> = self
            .guilds
            .iter()
            .filter(|(_, g)| !g.state.has_pending())
            .map(|(k, g)| (g.last_used, *k))
            .collect();
        idle.sort_unstable();
        for (_, key) in idle.into_iter().take(excess) {
            self.guilds.remove(&key);
        }
    }

    #[must_use]
    pub fn number(&self) -> u32 {
        self.number
    }

    #[must_use]
    pub fn last_sequence(&self) -> u64 {
        self.claim.last_sequence
    }

    /// Guilds whose engine state is held in memory.
    #[must_use]
    pub fn cached_guilds(&self) -> usize {
        self.guilds.len()
    }

    /// Applies a batch in stream order. Messages at or below the committed sequence are skipped
    /// (redeliveries). On error nothing is committed and this `Partition` must be dropped: its
    /// in-memory state may be ahead of the database.
    ///
    /// The whole batch is one transaction of a fixed number of statements: reads of the rows it
    /// needs, then multi-row writes of its effects, the touched guilds' engine states and the
    /// partition's new sequence, fenced by the claim's epoch.
    ///
    /// # Errors
    /// On database errors, or when another worker claimed the partition meanwhile.
    pub async fn apply(
        &mut self,
        conn: &mut AsyncPgConnection,
        batch: &[StreamMessage],
    ) -> Result<Outcome, WorkerError> {
        let fresh: Vec<&StreamMessage> = batch
            .iter()
            .filter(|m| m.sequence > self.claim.last_sequence)
            .collect();
        let Some(last) = fresh.last().map(|m| m.sequence) else {
            return Ok(Outcome {
                skipped: batch.len(),
                ..Outcome::default()
            });
        };
        let mut outcome = Outcome {
            skipped: batch.len() - fresh.len(),
            ..Outcome::default()
        };
        let mut steps = Vec::with_capacity(fresh.len());
        let mut clocks = Vec::new();
        for message in fresh {
            match self.decode(message) {
                Ok(Decoded::Step(step)) => steps.push(step),
                Ok(Decoded::Clock(clock)) => clocks.push(clock),
                Err(reason) => outcome.dead_letters.push(DeadLetter {
                    sequence: message.sequence,
                    subject: message.subject.clone(),
                    reason,
                    payload: message.payload.clone(),
                }),
            }
        }
        outcome.applied = steps.len() + clocks.len();
        let observed: Vec<i64> = steps.iter().map(|s| s.observed_at).collect();
        let outcome = conn
            .transaction::<_, WorkerError, _>(async |c| {
                if self.relaxed_commit {
                    progress::relax_commit(c).await?;
                }
                let mut touched = BTreeSet::new();
                let mut effects = self.read_for(c, &steps).await?;
                for step in steps {
                    self.apply_step(&mut effects, step, &mut touched, &mut outcome)?;
                }
                effects.finish(c).await?;
                effects.write(c).await?;
                self.commit(c, &touched, last).await?;
                Ok(outcome)
            })
            .await?;
        self.claim.last_sequence = last;
        // Only now: the clocks say that the events before them, committed above, are known.
        for clock in clocks {
            self.clocks.advance(&clock);
        }
        self.evict_idle();
        if let Some(lag) = &self.lag {
            let now = invitrack_bus::unix_millis_now();
            for at in observed {
                lag.record(now - at);
            }
        }
        Ok(outcome)
    }

    /// Lets time pass for guilds with undecided joins, each up to its shard's latest clock
    /// from ingest (not this host's clock: events still on their way must not be overtaken).
    ///
    /// # Errors
    /// On database errors, or when another worker claimed the partition meanwhile.
    pub async fn tick(&mut self, conn: &mut AsyncPgConnection) -> Result<Outcome, WorkerError> {
        if !self.guilds.values().any(|g| g.state.has_pending()) {
            return Ok(Outcome::default());
        }
        let last = self.claim.last_sequence;
        conn.transaction::<_, WorkerError, _>(async |c| {
            if self.relaxed_commit {
                progress::relax_commit(c).await?;
            }
            let mut outcome = Outcome::default();
            let mut touched = BTreeSet::new();
            let mut effects = BatchEffects::default();
            let keys: Vec<GuildKey> = self
                .guilds
                .iter()
                .filter(|(_, g)| g.state.has_pending())
                .map(|(k, _)| *k)
                .collect();
            for key in keys {
                let Some(now) = self.clocks.now_of(key.0, key.1) else {
                    continue;
                };
                let decisions = match self.guilds.get_mut(&key) {
                    Some(guild) => guild.state.tick(&self.engine, now),
                    None => continue,
                };
                if !decisions.is_empty() {
                    touched.insert(key);
                    outcome.decisions += decisions.len();
                    for decision in decisions {
                        effects.decided(key, decision)?;
                    }
                }
            }
            effects.finish(c).await?;
            effects.write(c).await?;
            self.commit(c, &touched, last).await?;
            Ok(outcome)
        })
        .await
    }

    /// Loads this partition's guilds with undecided joins, so [`Partition::tick`] decides them
    /// on time even when no further event of theirs arrives (after a takeover, a restart).
    /// Returns how many were loaded.
    ///
    /// # Errors
    /// On database errors, or when a stored state is not readable.
    pub async fn resume_pending(
        &mut self,
        conn: &mut AsyncPgConnection,
    ) -> Result<usize, WorkerError> {
        let mut loaded = 0;
        for (key, state) in progress::pending_guild_states(conn).await? {
            if self.layout.partition_of(key.0, key.1) != self.number
                || self.guilds.contains_key(&key)
            {
                continue;
            }
            let state: GuildAttribution =
                serde_json::from_value(state).map_err(invitrack_storage::StorageError::from)?;
            self.guilds.insert(
                key,
                CachedGuild {
                    state,
                    last_used: 0,
                },
            );
            loaded += 1;
        }
        Ok(loaded)
    }

    /// Loads the engine state of guilds not in memory, and reads the rows the batch's events
    /// touch: a handful of statements for the whole batch.
    async fn read_for(
        &mut self,
        c: &mut AsyncPgConnection,
        steps: &[Step],
    ) -> Result<BatchEffects, WorkerError> {
        let mut guilds: Vec<GuildKey> = steps.iter().map(|s| s.guild).collect();
        guilds.sort_unstable();
        guilds.dedup();
        let missing: Vec<GuildKey> = guilds
            .iter()
            .filter(|k| !self.guilds.contains_key(k))
            .copied()
            .collect();
        if !missing.is_empty() {
            // First events of these guilds since the partition was claimed: resume their state.
            let mut stored = progress::load_guild_states(c, &missing).await?;
            for key in missing {
                let state = match stored.remove(&key) {
                    Some(value) => serde_json::from_value(value)
                        .map_err(invitrack_storage::StorageError::from)?,
                    None => GuildAttribution::new(),
                };
                self.guilds.insert(
                    key,
                    CachedGuild {
                        state,
                        last_used: 0,
                    },
                );
            }
        }
        let mut members: Vec<MemberKey> = steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::MemberAdd { user_id, .. } | Action::MemberRemove { user_id, .. } => {
                    Some((s.guild.0, s.guild.1, *user_id))
                }
                Action::Observe(_) => None,
            })
            .collect();
        members.sort_unstable();
        members.dedup();
        Ok(BatchEffects::read(c, &members, &guilds).await?)
    }

    async fn commit(
        &self,
        c: &mut AsyncPgConnection,
        touched: &BTreeSet<GuildKey>,
        last: u64,
    ) -> Result<(), WorkerError> {
        let mut rows = Vec::with_capacity(touched.len());
        for key in touched {
            if let Some(CachedGuild { state: guild, .. }) = self.guilds.get(key) {
                let row = GuildStateRow {
                    state: serde_json::to_value(guild)
                        .map_err(invitrack_storage::StorageError::from)?,
                    pending_joins: i32::try_from(guild.pending_joins()).unwrap_or(i32::MAX),
                    missing_permissions: guild.missing_permissions(),
                    last_snapshot_at: guild
                        .last_snapshot_at()
                        .and_then(|ms| millis_to_time(ms).ok()),
                };
                rows.push((*key, row));
            }
        }
        progress::save_guild_states(c, &rows).await?;
        let advanced = progress::advance_sequence(
            c,
            &self.stream,
            self.number,
            self.claim.epoch,
            self.claim.last_sequence,
            last,
        )
        .await?;
        if !advanced {
            return Err(WorkerError::Fenced {
                partition: self.number,
            });
        }
        Ok(())
    }

    /// Checks a message and turns it into what applying it takes. Errors are dead-letter
    /// reasons: such a message can never be applied.
    fn decode(&self, message: &StreamMessage) -> Result<Decoded, String> {
        let (partition, bot_id, guild_id) = self
            .layout
            .parse_guild_subject(&message.subject)
            .map_err(|e| e.to_string())?;
        let event = decode_event(&message.payload).map_err(|e| e.to_string())?;
        if (event.bot_id, event.guild_id) != (bot_id, guild_id) || partition != self.number {
            return Err(format!(
                "event for bot {} guild {} on subject {}",
                event.bot_id, event.guild_id, message.subject
            ));
        }
        let Some(kind) = event.kind.as_ref() else {
            return Err("no event kind".into());
        };
        if let EventKind::ShardClock(clock) = kind {
            return ClockReading::check(event.bot_id, clock, event.observed_at_ms, self.number)
                .map(Decoded::Clock);
        }
        let action = match kind {
            EventKind::MemberAdd(add) => Action::MemberAdd {
                user_id: add.user_id,
                joined_at: millis_to_time(add.joined_at_ms).map_err(|e| e.to_string())?,
                has_avatar: add.has_avatar,
                flagged_rejoin: add.flags & 1 != 0,
                observation: convert::observation(kind),
            },
            EventKind::MemberRemove(remove) => Action::MemberRemove {
                user_id: remove.user_id,
                left_at: millis_to_time(event.observed_at_ms).map_err(|e| e.to_string())?,
            },
            _ => Action::Observe(convert::observation(kind)),
        };
        Ok(Decoded::Step(Step {
            guild: (bot_id, guild_id),
            observed_at: event.observed_at_ms,
            action,
        }))
    }

    fn apply_step(
        &mut self,
        effects: &mut BatchEffects,
        step: Step,
        touched: &mut BTreeSet<GuildKey>,
        outcome: &mut Outcome,
    ) -> Result<(), WorkerError> {
        let key = step.guild;
        let observation = match step.action {
            Action::MemberAdd {
                user_id,
                joined_at,
                has_avatar,
                flagged_rejoin,
                observation,
            } => {
                let member = (key.0, key.1, user_id);
                if effects.member_joined(member, joined_at, has_avatar, flagged_rejoin)
                    == MemberJoin::Repeated
                {
                    tracing::debug!(
                        guild_id = key.1,
                        member_id = user_id,
                        "repeated GUILD_MEMBER_ADD ignored"
                    );
                    return Ok(());
                }
                observation
            }
            Action::MemberRemove { user_id, left_at } => {
                effects.member_left((key.0, key.1, user_id), left_at);
                return Ok(());
            }
            Action::Observe(observation) => observation,
        };
        let Some(observation) = observation else {
            return Ok(());
        };
        self.clock += 1;
        let Some(cached) = self.guilds.get_mut(&key) else {
            // read_for loaded every guild of the batch.
            return Err(WorkerError::Internal(format!(
                "guild {} of the batch was not loaded",
                key.1
            )));
        };
        cached.last_used = self.clock;
        let decisions = cached
            .state
            .observe(&self.engine, observation, step.observed_at);
        touched.insert(key);
        outcome.decisions += decisions.len();
        for decision in decisions {
            effects.decided(key, decision)?;
        }
        Ok(())
    }
}

/// A checked message: an event of a guild, or ingest's clock.
enum Decoded {
    Step(Step),
    Clock(ClockReading),
}

/// Most shards a bot may have: bounds what a clock message can make a worker allocate.
const MAX_SHARDS: u32 = 1 << 20;

/// One checked `ShardClock`: every event of these shards observed before `at` is applied.
struct ClockReading {
    bot_id: u64,
    shard_total: u32,
    shards: std::ops::RangeInclusive<u32>,
    at: i64,
}

impl ClockReading {
    fn check(
        bot_id: u64,
        clock: &invitrack_bus::proto::ShardClock,
        at: i64,
        partition: u32,
    ) -> Result<Self, String> {
        if clock.partition != partition {
            return Err(format!(
                "clock for partition {} in partition {partition}",
                clock.partition
            ));
        }
        if clock.shard_total == 0
            || clock.shard_total > MAX_SHARDS
            || clock.first_shard > clock.last_shard
            || clock.last_shard >= clock.shard_total
        {
            return Err(format!(
                "clock for shards {}..={} of {}",
                clock.first_shard, clock.last_shard, clock.shard_total
            ));
        }
        Ok(Self {
            bot_id,
            shard_total: clock.shard_total,
            shards: clock.first_shard..=clock.last_shard,
            at,
        })
    }
}

/// Ingest's latest clock per bot and shard (a guild's shard is Discord's
/// `(guild_id >> 22) % shard_total`). Kept in memory only: after a restart the next clock,
/// half a second away, sets it again.
#[derive(Debug, Default)]
struct ShardClocks {
    bots: HashMap<u64, BotClocks>,
}

#[derive(Debug)]
struct BotClocks {
    shard_total: u32,
    at: Vec<Option<i64>>,
}

impl ShardClocks {
    fn advance(&mut self, clock: &ClockReading) {
        let fresh = || BotClocks {
            shard_total: clock.shard_total,
            at: vec![None; clock.shard_total as usize],
        };
        let bot = self.bots.entry(clock.bot_id).or_insert_with(fresh);
        if bot.shard_total != clock.shard_total {
            // Resharded: times of the old layout say nothing about the new shards.
            *bot = fresh();
        }
        for shard in clock.shards.clone() {
            let at = &mut bot.at[shard as usize];
            *at = Some(at.map_or(clock.at, |at| at.max(clock.at)));
        }
    }

    fn now_of(&self, bot_id: u64, guild_id: u64) -> Option<i64> {
        let bot = self.bots.get(&bot_id)?;
        let shard = (guild_id >> 22) % u64::from(bot.shard_total);
        bot.at[usize::try_from(shard).ok()?]
    }
}

/// One checked message of a batch.
struct Step {
    guild: GuildKey,
    observed_at: i64,
    action: Action,
}

enum Action {
    MemberAdd {
        user_id: u64,
        joined_at: DateTime<Utc>,
        has_avatar: bool,
        flagged_rejoin: bool,
        observation: Option<Observation>,
    },
    MemberRemove {
        user_id: u64,
        left_at: DateTime<Utc>,
    },
    Observe(Option<Observation>),
}
