//! The worker's step function: a batch of one partition's messages in, effects committed to
//! PostgreSQL in one transaction together with the partition's progress.
//!
//! The jobs of a step live beside it: checking messages (`decode`), the guilds' engine states
//! (`guild_cache`), ingest's clock (`clock`), the batch's rows (`effects`) and the fenced
//! commit (`commit`).

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::Notify;

use invitrack_attribution::{
    Decision, DeliveryClock, EngineConfig, GuildAttribution, MissedJoins, Observation,
};
use invitrack_bus::BusLayout;
use invitrack_model::membership::JoinKind;
use invitrack_model::{GuildKey, JoinSource, MemberKey, Millis, UserId};
use invitrack_storage::progress::{self, PartitionClaim};
use invitrack_storage::{AsyncConnection, AsyncPgConnection};

use crate::WorkerError;
use crate::clock::{ClockReading, MAX_CLOCK_AHEAD_MS, ShardClocks};
use crate::commit::Progress;
use crate::convert::FoundMember;
use crate::decode::{
    Action, DeadLetter, DeadLetterReason, Decoded, InviteEvent, Step, StreamMessage, decode,
};
use crate::effects::BatchEffects;
use crate::guild_cache::GuildCache;
use crate::lag::LagHistogram;
use crate::reports::ReportEffects;

/// What a step did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub applied: usize,
    pub skipped: usize,
    pub decisions: usize,
    /// The decisions by join source, in the order of `JoinSource::ALL`.
    pub by_source: [usize; JoinSource::ALL.len()],
    /// Discord's reported join sources, by judgement (`crate::reports::JUDGEMENTS`).
    pub reports_judged: [usize; crate::reports::JUDGEMENTS.len()],
    /// Decisions recorded for the relay (joins stored, members who left).
    pub recorded: usize,
    pub dead_letters: Vec<DeadLetter>,
    /// Messages dated ahead of this worker's clock by more than the allowance, whose times
    /// were clamped to it.
    pub times_clamped: usize,
    /// Joins found in the member list that the gateway never delivered.
    pub joins_found_late: usize,
    /// Guilds whose uses wait for joins the gateway may not have delivered: the members who
    /// joined in the window are to be asked of ingest
    /// (`docs/attribution.md#joins-made-while-away`).
    pub missed_joins: Vec<(GuildKey, MissedJoins)>,
}

impl Outcome {
    /// Adds what a later part of the same batch did.
    fn absorb(&mut self, later: Self) {
        self.applied += later.applied;
        self.skipped += later.skipped;
        self.decisions += later.decisions;
        for (mine, theirs) in self.by_source.iter_mut().zip(later.by_source) {
            *mine += theirs;
        }
        for (mine, theirs) in self.reports_judged.iter_mut().zip(later.reports_judged) {
            *mine += theirs;
        }
        self.recorded += later.recorded;
        self.dead_letters.extend(later.dead_letters);
        self.times_clamped += later.times_clamped;
        self.joins_found_late += later.joins_found_late;
        self.missed_joins.extend(later.missed_joins);
    }
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
    /// Guilds a clock inside the batch being applied let time pass for: like the batch's own
    /// guilds, their states are ahead of the database if its transaction fails.
    ticked_in_batch: BTreeSet<GuildKey>,
    /// Woken when a commit recorded decisions for the relay.
    relay: Option<Arc<Notify>>,
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
            ticked_in_batch: BTreeSet::new(),
            relay: None,
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

    /// Wakes `relay` after each commit that recorded decisions.
    #[must_use]
    pub fn with_relay(mut self, relay: Arc<Notify>) -> Self {
        self.relay = Some(relay);
        self
    }

    /// Records each applied event's end-to-end lag (its `observed_at` to its commit) in `lag`.
    #[must_use]
    pub fn with_lag(mut self, lag: Arc<LagHistogram>) -> Self {
        self.lag = Some(lag);
        self
    }

    #[must_use]
    pub fn pending_joins(&self) -> usize {
        self.guilds.pending_joins()
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
    /// (redeliveries). On error nothing more is committed and this `Partition` must be
    /// dropped: its in-memory state may be ahead of the database.
    ///
    /// The batch is one transaction when PostgreSQL takes it. When PostgreSQL refuses it
    /// ([`WorkerError::refused_by_database`]), its halves are applied apart, and so on down to
    /// the one message it refuses, which is tried alone a second time and then committed as a
    /// dead letter with the database's reason: one bad message costs its partition a few
    /// transactions, and every other message is applied, in order.
    ///
    /// # Errors
    /// On database errors other than refusals, or when another worker claimed the partition
    /// meanwhile.
    pub async fn apply(
        &mut self,
        conn: &mut AsyncPgConnection,
        batch: &[StreamMessage],
    ) -> Result<Outcome, WorkerError> {
        let error = match self.apply_together(conn, batch).await {
            Err(error) if error.refused_by_database() => error,
            other => return other,
        };
        tracing::warn!(
            partition = self.number(),
            messages = batch.len(),
            error = &error as &dyn std::error::Error,
            "the database refused a batch: applying its parts apart"
        );
        let started = std::time::Instant::now();
        let mut transactions = 1;
        let mut outcome = Outcome::default();
        // Parts still to apply, the next one last.
        let mut parts = vec![batch];
        let mut refused_once = None;
        // Guilds with undecided joins forgotten on the way: tick() must still see them.
        let mut pending = self.forget_guilds_of(batch);
        while let Some(part) = parts.pop() {
            transactions += 1;
            let error = match self.apply_together(conn, part).await {
                Ok(applied) => {
                    outcome.absorb(applied);
                    continue;
                }
                Err(error) if error.refused_by_database() => error,
                Err(error) => return Err(error),
            };
            pending.extend(self.forget_guilds_of(part));
            match part {
                [message] if refused_once == Some(message.sequence) => {
                    outcome.absorb(self.refuse(conn, message, &error).await?);
                }
                [message] => {
                    refused_once = Some(message.sequence);
                    parts.push(part);
                }
                _ => {
                    let (first, second) = part.split_at(part.len() / 2);
                    parts.push(second);
                    parts.push(first);
                }
            }
        }
        let pending: Vec<GuildKey> = pending.into_iter().collect();
        self.guilds.load_missing(conn, &pending).await?;
        tracing::info!(
            partition = self.number(),
            messages = batch.len(),
            dead_letters = outcome.dead_letters.len(),
            transactions,
            elapsed_ms = started.elapsed().as_millis(),
            "refused batch applied apart"
        );
        Ok(outcome)
    }

    /// Forgets the engine states of the guilds of `messages`, which a failed transaction may
    /// have left ahead of the database: they are loaded again when next used. Returns those
    /// that had undecided joins.
    fn forget_guilds_of(&mut self, messages: &[StreamMessage]) -> BTreeSet<GuildKey> {
        let ticked = std::mem::take(&mut self.ticked_in_batch);
        messages
            .iter()
            .filter_map(|m| self.layout.parse_guild_subject(&m.subject).ok())
            .map(|(_, guild)| guild)
            .chain(ticked)
            .filter(|guild| self.guilds.forget(*guild))
            .collect()
    }

    /// Commits the partition past `message`, which the database refused, as a dead letter.
    async fn refuse(
        &mut self,
        conn: &mut AsyncPgConnection,
        message: &StreamMessage,
        error: &WorkerError,
    ) -> Result<Outcome, WorkerError> {
        tracing::error!(
            partition = self.number(),
            sequence = message.sequence,
            subject = %message.subject,
            error = error as &dyn std::error::Error,
            "the database refuses this message: it goes to the dead letters"
        );
        conn.transaction::<_, WorkerError, _>(async |c| {
            self.progress.commit(c, &[], message.sequence).await
        })
        .await?;
        self.progress.claim.last_sequence = message.sequence;
        Ok(Outcome {
            dead_letters: vec![DeadLetter {
                sequence: message.sequence,
                subject: message.subject.clone(),
                reason: DeadLetterReason::Refused(invitrack_telemetry::error_chain(error)),
                payload: message.payload.clone(),
            }],
            ..Outcome::default()
        })
    }

    /// Applies a batch in one transaction of a fixed number of statements: reads of the rows
    /// it needs, then multi-row writes of its effects, the touched guilds' engine states and
    /// the partition's new sequence, fenced by the claim's epoch.
    async fn apply_together(
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
        // Each clock with the number of steps before it in the stream.
        let mut clocks: Vec<(usize, ClockReading)> = Vec::new();
        let latest = invitrack_model::time::now_millis() + MAX_CLOCK_AHEAD_MS;
        for message in fresh {
            let checked = match decode(&self.layout, self.number(), message, latest) {
                Ok(checked) => checked,
                Err(reason) => {
                    outcome.dead_letters.push(DeadLetter {
                        sequence: message.sequence,
                        subject: message.subject.clone(),
                        reason: reason.into(),
                        payload: message.payload.clone(),
                    });
                    continue;
                }
            };
            if checked.times_clamped {
                outcome.times_clamped += 1;
                tracing::warn!(
                    partition = self.number(),
                    sequence = message.sequence,
                    clamped_to = latest,
                    "a message is dated ahead of this worker's clock: its times were clamped"
                );
            }
            match checked.decoded {
                Decoded::Step(step) => steps.push(step),
                Decoded::Clock(clock) => clocks.push((steps.len(), clock)),
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
                let mut steps = steps;
                let mut owners = crate::owners::Owners::new();
                for (guild, codes) in crate::owners::bot_made(&steps) {
                    let found = invitrack_storage::member_invites::owners(c, guild, &codes).await?;
                    owners.insert(guild, found);
                }
                crate::owners::credit(&mut steps, &owners);
                let mut effects = self.read_for(c, &steps).await?;
                // Time passes at each clock where it stands in the stream, as it did live: a
                // worker catching up decides a join before the member's later leave or rejoin
                // in the same batch, as one keeping up would have.
                let mut pending_clocks = clocks.iter().peekable();
                for (index, step) in steps.into_iter().enumerate() {
                    while let Some((_, clock)) = pending_clocks.next_if(|(at, _)| *at <= index) {
                        self.tick_within(&mut effects, clock, &mut touched, &mut outcome)?;
                    }
                    self.apply_step(&mut effects, step, &mut touched, &mut outcome)?;
                }
                for (_, clock) in pending_clocks {
                    self.tick_within(&mut effects, clock, &mut touched, &mut outcome)?;
                }
                outcome.recorded = self.finish(c, effects, &touched, last).await?;
                Ok(outcome)
            })
            .await?;
        self.wake_relay(outcome.recorded);
        self.progress.claim.last_sequence = last;
        self.ticked_in_batch.clear();
        // Only now: the clocks say that the events before them, committed above, are known.
        for (_, clock) in clocks {
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

    /// Lets time pass up to `clock`, met in the batch being applied, for the guilds with
    /// undecided joins of its shards.
    fn tick_within(
        &mut self,
        effects: &mut BatchEffects,
        clock: &ClockReading,
        touched: &mut BTreeSet<GuildKey>,
        outcome: &mut Outcome,
    ) -> Result<(), WorkerError> {
        for key in self.guilds.pending() {
            if !clock.covers(key) {
                continue;
            }
            let Some(guild) = self.guilds.get_mut(key) else {
                continue;
            };
            self.ticked_in_batch.insert(key);
            let clock = clock.delivery_clock();
            tick_guild(guild, &self.engine, key, clock, effects, touched, outcome)?;
        }
        Ok(())
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
                let Some(clock) = self.clocks.clock_of(key) else {
                    continue;
                };
                let Some(guild) = self.guilds.get_mut(key) else {
                    continue;
                };
                tick_guild(
                    guild,
                    &self.engine,
                    key,
                    clock,
                    &mut effects,
                    &mut touched,
                    &mut outcome,
                )?;
            }
            outcome.recorded = self.finish(c, effects, &touched, last).await?;
            Ok(outcome)
        })
        .await
        .inspect(|outcome| self.wake_relay(outcome.recorded))
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
            .flat_map(|s| s.members().map(|user| s.guild.member(user)))
            .collect();
        members.sort_unstable();
        members.dedup();
        let reported: Vec<_> = steps
            .iter()
            .flat_map(|s| match &s.action {
                Action::JoinSources { reports, .. } => reports
                    .iter()
                    .map(|r| (s.guild.member(r.user_id), r.joined_at))
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        let mut effects = BatchEffects::read(c, &members, &guilds).await?;
        effects.reports = ReportEffects::read(c, &reported).await?;
        Ok(effects)
    }

    /// Writes the effects and the decisions for the relay, and commits the touched guilds'
    /// states with the new sequence. Returns how many decisions it recorded.
    async fn finish(
        &self,
        c: &mut AsyncPgConnection,
        mut effects: BatchEffects,
        touched: &BTreeSet<GuildKey>,
        last: u64,
    ) -> Result<usize, WorkerError> {
        effects.finish(c).await?;
        let written = effects.write(c).await?;
        let decisions = effects.decisions(&written);
        if !decisions.is_empty() {
            invitrack_storage::decisions::record(c, &self.progress.stream, &decisions).await?;
        }
        let states = self.guilds.state_rows(touched)?;
        self.progress.commit(c, &states, last).await?;
        Ok(decisions.len())
    }

    /// Tells the relay that committed decisions wait.
    fn wake_relay(&self, recorded: usize) {
        if let (true, Some(relay)) = (recorded > 0, &self.relay) {
            relay.notify_one();
        }
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
            Action::MembersFound { window, members } => {
                let joins = joins_found_late(effects, key, members);
                outcome.joins_found_late += joins.len();
                Observation::JoinsFoundLate { window, joins }
            }
            Action::JoinSources { reports, refused } => {
                if let Some((status, detail)) = refused {
                    effects.reports.refused(key, status, detail);
                } else {
                    let engine = self.guilds.use_guild(key)?;
                    let judged = effects.reports.judge(key, engine, &self.engine, reports);
                    for (total, n) in outcome.reports_judged.iter_mut().zip(judged) {
                        *total += n;
                    }
                }
                return Ok(());
            }
        };
        let decisions =
            self.guilds
                .use_guild(key)?
                .observe(&self.engine, observation, step.observed_at);
        touched.insert(key);
        record_decisions(effects, key, decisions, outcome)
    }
}

/// Lets time pass for one guild up to `clock`: records what it decides, and notes the members
/// it wants looked for in the member list.
fn tick_guild(
    guild: &mut GuildAttribution,
    engine: &EngineConfig,
    key: GuildKey,
    clock: DeliveryClock,
    effects: &mut BatchEffects,
    touched: &mut BTreeSet<GuildKey>,
    outcome: &mut Outcome,
) -> Result<(), WorkerError> {
    let decisions = guild.tick(engine, clock);
    if let Some(window) = guild.missed_joins_wanted() {
        outcome.missed_joins.push((key, window));
    }
    if !decisions.is_empty() {
        touched.insert(key);
        record_decisions(effects, key, decisions, outcome)?;
    }
    Ok(())
}

/// The members found whose join was never delivered: the ones not present with that
/// `joined_at` already (`docs/attribution.md#joins-made-while-away`), recorded as joined.
fn joins_found_late(
    effects: &mut BatchEffects,
    key: GuildKey,
    members: Vec<FoundMember>,
) -> Vec<(UserId, Millis)> {
    let mut joins = Vec::new();
    for member in members {
        let joined = effects.member_joined(
            key.member(member.user_id),
            member.joined_at,
            member.has_avatar,
            member.flagged_rejoin,
        );
        if joined == JoinKind::Repeated {
            continue;
        }
        tracing::info!(
            guild_id = %key.guild_id,
            member_id = %member.user_id,
            joined_at = member.joined_at_ms,
            "join found in the member list after ingest was away"
        );
        joins.push((member.user_id, member.joined_at_ms));
    }
    joins
}

fn record_decisions(
    effects: &mut BatchEffects,
    guild: GuildKey,
    decisions: Vec<Decision>,
    outcome: &mut Outcome,
) -> Result<(), WorkerError> {
    outcome.decisions += decisions.len();
    for decision in decisions {
        let source = decision.verdict.source();
        if let Some(index) = JoinSource::ALL.iter().position(|s| *s == source) {
            outcome.by_source[index] += 1;
        }
        effects.decided(guild, decision)?;
    }
    Ok(())
}
