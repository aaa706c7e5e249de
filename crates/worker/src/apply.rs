//! The worker's step function: a batch of one partition's messages in, effects committed to
//! PostgreSQL in one transaction together with the partition's progress.
//!
//! The jobs of a step live beside it: checking messages (`decode`), the guilds' engine states
//! (`guild_cache`), ingest's clock (`clock`), the batch's rows (`effects`) and the fenced
//! commit (`commit`).

use std::collections::BTreeSet;
use std::sync::Arc;

use invitrack_attribution::{Decision, EngineConfig};
use invitrack_bus::BusLayout;
use invitrack_model::membership::JoinKind;
use invitrack_model::{GuildKey, MemberKey, Millis};
use invitrack_storage::progress::{self, PartitionClaim};
use invitrack_storage::{AsyncConnection, AsyncPgConnection};

use crate::WorkerError;
use crate::clock::{MAX_CLOCK_AHEAD_MS, ShardClocks};
use crate::commit::Progress;
use crate::decode::{Action, DeadLetter, Decoded, InviteEvent, Step, StreamMessage, decode};
use crate::effects::BatchEffects;
use crate::guild_cache::GuildCache;
use crate::lag::LagHistogram;

/// What a step did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub applied: usize,
    pub skipped: usize,
    pub decisions: usize,
    pub dead_letters: Vec<DeadLetter>,
    /// Clocks of ingest found ahead of this worker's own by more than the allowance, and
    /// clamped to it.
    pub clocks_clamped: usize,
}

/// A partition this worker has claimed: its progress, fence and the engine state of the guilds
/// it has touched.
pub struct Partition {
    progress: Progress,
    layout: BusLayout,
    engine: EngineConfig,
    guilds: GuildCache,
    /// Where the time from `observed_at` to commit is recorded, if anywhere.
    lag: Option<Arc<LagHistogram>>,
    /// Commit without waiting for the WAL flush (see `progress::relax_commit`).
    relaxed_commit: bool,
    /// How far ingest's clock has come, per bot and shard: time for undecided joins.
    clocks: ShardClocks,
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
            progress: Progress {
                stream,
                partition: number,
                claim,
            },
            layout,
            engine,
            guilds: GuildCache::new(max_cached),
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

    #[must_use]
    pub fn number(&self) -> u32 {
        self.progress.partition
    }

    #[must_use]
    pub fn last_sequence(&self) -> u64 {
        self.progress.claim.last_sequence
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
        let committed = self.last_sequence();
        let fresh: Vec<&StreamMessage> = batch.iter().filter(|m| m.sequence > committed).collect();
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
        let latest_clock = invitrack_model::time::now_millis() + MAX_CLOCK_AHEAD_MS;
        for message in fresh {
            match decode(&self.layout, self.number(), message) {
                Ok(Decoded::Step(step)) => steps.push(step),
                Ok(Decoded::Clock(mut clock)) => {
                    let at = clock.at();
                    if clock.clamp_to(latest_clock) {
                        outcome.clocks_clamped += 1;
                        tracing::warn!(
                            partition = self.number(),
                            sequence = message.sequence,
                            clock_at = at,
                            clamped_to = latest_clock,
                            "ingest's clock is ahead of this worker's: clamped"
                        );
                    }
                    clocks.push(clock);
                }
                Err(reason) => outcome.dead_letters.push(DeadLetter {
                    sequence: message.sequence,
                    subject: message.subject.clone(),
                    reason,
                    payload: message.payload.clone(),
                }),
            }
        }
        outcome.applied = steps.len() + clocks.len();
        let observed: Vec<Millis> = steps.iter().map(|s| s.observed_at).collect();
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
                self.finish(c, effects, &touched, last).await?;
                Ok(outcome)
            })
            .await?;
        self.progress.claim.last_sequence = last;
        // Only now: the clocks say that the events before them, committed above, are known.
        for clock in clocks {
            self.clocks.advance(&clock);
        }
        self.guilds.evict_idle();
        if let Some(lag) = &self.lag {
            let now = invitrack_model::time::now_millis();
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
        if !self.guilds.any_pending() {
            return Ok(Outcome::default());
        }
        let last = self.last_sequence();
        conn.transaction::<_, WorkerError, _>(async |c| {
            if self.relaxed_commit {
                progress::relax_commit(c).await?;
            }
            let mut outcome = Outcome::default();
            let mut touched = BTreeSet::new();
            let mut effects = BatchEffects::default();
            for key in self.guilds.pending() {
                let Some(now) = self.clocks.now_of(key) else {
                    continue;
                };
                let Some(guild) = self.guilds.get_mut(key) else {
                    continue;
                };
                let decisions = guild.tick(&self.engine, now);
                if !decisions.is_empty() {
                    touched.insert(key);
                    record_decisions(&mut effects, key, decisions, &mut outcome)?;
                }
            }
            self.finish(c, effects, &touched, last).await?;
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
        self.guilds
            .load_pending(conn, &self.layout, self.progress.partition)
            .await
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
        self.guilds.load_missing(c, &guilds).await?;
        let mut members: Vec<MemberKey> = steps
            .iter()
            .filter_map(|s| s.member().map(|user| s.guild.member(user)))
            .collect();
        members.sort_unstable();
        members.dedup();
        Ok(BatchEffects::read(c, &members, &guilds).await?)
    }

    /// Writes the effects and commits the touched guilds' states with the new sequence.
    async fn finish(
        &self,
        c: &mut AsyncPgConnection,
        mut effects: BatchEffects,
        touched: &BTreeSet<GuildKey>,
        last: u64,
    ) -> Result<(), WorkerError> {
        effects.finish(c).await?;
        effects.write(c).await?;
        let states = self.guilds.state_rows(touched)?;
        self.progress.commit(c, &states, last).await
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
                let member = key.member(user_id);
                if effects.member_joined(member, joined_at, has_avatar, flagged_rejoin)
                    == JoinKind::Repeated
                {
                    tracing::debug!(
                        guild_id = %key.guild_id,
                        member_id = %user_id,
                        "repeated GUILD_MEMBER_ADD ignored"
                    );
                    return Ok(());
                }
                observation
            }
            Action::MemberRemove { user_id, left_at } => {
                effects.member_left(key.member(user_id), left_at);
                return Ok(());
            }
            Action::Invites {
                change,
                at,
                observation,
            } => {
                match change {
                    InviteEvent::Created(invite) => effects.invite_created(key, invite, at),
                    InviteEvent::Deleted(code) => effects.invite_deleted(key, code, at),
                    InviteEvent::Snapshot {
                        requested_at,
                        received_at,
                        invites,
                    } => effects.invite_snapshot(key, requested_at, received_at, invites),
                }
                observation
            }
            Action::Observe(observation) => observation,
        };
        let decisions =
            self.guilds
                .use_guild(key)?
                .observe(&self.engine, observation, step.observed_at);
        touched.insert(key);
        record_decisions(effects, key, decisions, outcome)
    }
}

fn record_decisions(
    effects: &mut BatchEffects,
    guild: GuildKey,
    decisions: Vec<Decision>,
    outcome: &mut Outcome,
) -> Result<(), WorkerError> {
    outcome.decisions += decisions.len();
    for decision in decisions {
        effects.decided(guild, decision)?;
    }
    Ok(())
}
