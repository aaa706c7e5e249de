//! The worker's step function: a batch of one partition's messages in, effects committed to
//! PostgreSQL in one transaction together with the partition's progress.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use invitrack_attribution::{
    Decision, EngineConfig, FakeReasons, FakeSettings, GuildAttribution, MemberFacts, UserId,
    Verdict,
};
use invitrack_bus::{BusLayout, EventKind, decode_event};
use invitrack_storage::joins::{JoinSource, NewJoin};
use invitrack_storage::progress::{self, GuildStateRow, PartitionClaim};
use invitrack_storage::{AsyncConnection, AsyncPgConnection, joins, members, millis_to_time};

use crate::WorkerError;
use crate::convert;

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

type GuildKey = (u64, u64);

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
        }
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
        let skipped = batch.len() - fresh.len();
        let outcome = conn
            .transaction::<_, WorkerError, _>(async |c| {
                let mut outcome = Outcome {
                    skipped,
                    ..Outcome::default()
                };
                let mut touched = BTreeSet::new();
                for message in fresh {
                    match self.apply_one(c, message, &mut touched, &mut outcome).await {
                        Ok(()) => outcome.applied += 1,
                        Err(WorkerError::Malformed(reason)) => {
                            outcome.dead_letters.push(DeadLetter {
                                sequence: message.sequence,
                                subject: message.subject.clone(),
                                reason,
                                payload: message.payload.clone(),
                            })
                        }
                        Err(e) => return Err(e),
                    }
                }
                self.commit(c, &touched, last).await?;
                Ok(outcome)
            })
            .await?;
        self.claim.last_sequence = last;
        self.evict_idle();
        Ok(outcome)
    }

    /// Lets time pass for guilds with undecided joins.
    ///
    /// # Errors
    /// On database errors, or when another worker claimed the partition meanwhile.
    pub async fn tick(
        &mut self,
        conn: &mut AsyncPgConnection,
        now: i64,
    ) -> Result<Outcome, WorkerError> {
        if !self.guilds.values().any(|g| g.state.has_pending()) {
            return Ok(Outcome::default());
        }
        let last = self.claim.last_sequence;
        conn.transaction::<_, WorkerError, _>(async |c| {
            let mut outcome = Outcome::default();
            let mut touched = BTreeSet::new();
            let keys: Vec<GuildKey> = self
                .guilds
                .iter()
                .filter(|(_, g)| g.state.has_pending())
                .map(|(k, _)| *k)
                .collect();
            for key in keys {
                let decisions = match self.guilds.get_mut(&key) {
                    Some(guild) => guild.state.tick(&self.engine, now),
                    None => continue,
                };
                if !decisions.is_empty() {
                    touched.insert(key);
                    outcome.decisions += decisions.len();
                    for decision in &decisions {
                        record_decision(c, key, decision).await?;
                    }
                }
            }
            self.commit(c, &touched, last).await?;
            Ok(outcome)
        })
        .await
    }

    async fn commit(
        &self,
        c: &mut AsyncPgConnection,
        touched: &BTreeSet<GuildKey>,
        last: u64,
    ) -> Result<(), WorkerError> {
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
                progress::save_guild_state(c, key.0, key.1, &row).await?;
            }
        }
        if !progress::advance_sequence(c, &self.stream, self.number, self.claim.epoch, last).await?
        {
            return Err(WorkerError::Fenced {
                partition: self.number,
            });
        }
        Ok(())
    }

    async fn apply_one(
        &mut self,
        c: &mut AsyncPgConnection,
        message: &StreamMessage,
        touched: &mut BTreeSet<GuildKey>,
        outcome: &mut Outcome,
    ) -> Result<(), WorkerError> {
        let malformed = |reason: String| WorkerError::Malformed(reason);
        let (partition, bot_id, guild_id) = self
            .layout
            .parse_guild_subject(&message.subject)
            .map_err(|e| malformed(e.to_string()))?;
        let event = decode_event(&message.payload).map_err(|e| malformed(e.to_string()))?;
        if (event.bot_id, event.guild_id) != (bot_id, guild_id) || partition != self.number {
            return Err(malformed(format!(
                "event for bot {} guild {} on subject {}",
                event.bot_id, event.guild_id, message.subject
            )));
        }
        let Some(kind) = event.kind.as_ref() else {
            return Err(malformed("no event kind".into()));
        };
        let key = (bot_id, guild_id);
        match kind {
            EventKind::MemberAdd(add) => {
                let joined_at =
                    millis_to_time(add.joined_at_ms).map_err(|e| malformed(e.to_string()))?;
                let outcome = members::member_joined(
                    c,
                    bot_id,
                    guild_id,
                    add.user_id,
                    joined_at,
                    add.has_avatar,
                    add.flags & 1 != 0,
                )
                .await?;
                if outcome == members::MemberJoin::Repeated {
                    tracing::debug!(
                        guild_id,
                        member_id = add.user_id,
                        "repeated GUILD_MEMBER_ADD ignored"
                    );
                    return Ok(());
                }
            }
            EventKind::MemberRemove(remove) => {
                let left_at =
                    millis_to_time(event.observed_at_ms).map_err(|e| malformed(e.to_string()))?;
                if let Some(joined_at) =
                    members::member_left(c, bot_id, guild_id, remove.user_id, left_at).await?
                {
                    joins::mark_left(c, bot_id, guild_id, remove.user_id, joined_at, left_at)
                        .await?;
                }
                return Ok(());
            }
            _ => {}
        }
        let Some(observation) = convert::observation(kind) else {
            return Ok(());
        };
        self.clock += 1;
        let last_used = self.clock;
        let cached = match self.guilds.entry(key) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                // First event of this guild since the partition was claimed: resume its state.
                let state = match progress::load_guild_state(c, bot_id, guild_id).await? {
                    Some(value) => serde_json::from_value(value)
                        .map_err(invitrack_storage::StorageError::from)?,
                    None => GuildAttribution::new(),
                };
                entry.insert(CachedGuild { state, last_used })
            }
        };
        cached.last_used = last_used;
        let decisions = cached
            .state
            .observe(&self.engine, observation, event.observed_at_ms);
        touched.insert(key);
        outcome.decisions += decisions.len();
        for decision in &decisions {
            record_decision(c, key, decision).await?;
        }
        Ok(())
    }
}

/// Stores one decided join with its fake reasons.
async fn record_decision(
    c: &mut AsyncPgConnection,
    (bot_id, guild_id): GuildKey,
    decision: &Decision,
) -> Result<(), WorkerError> {
    let member_id = decision.user_id.0;
    let joined_at = millis_to_time(decision.joined_at)?;
    let member = members::member(c, bot_id, guild_id, member_id).await?;
    let same_membership = member.as_ref().is_some_and(|m| m.joined_at == joined_at);
    let joined_before = (same_membership && member.as_ref().is_some_and(|m| m.rejoined))
        || joins::joined_before(c, bot_id, guild_id, member_id, joined_at).await?;
    let left_at = match &member {
        Some(m) if same_membership => m.left_at.filter(|_| !m.present),
        // The member has joined again since: this membership ended by then at the latest.
        Some(m) => Some(m.joined_at),
        None => None,
    };
    let settings = match progress::fake_settings(c, bot_id, guild_id).await? {
        Some((enabled, days)) => FakeSettings {
            enabled: FakeReasons(enabled.cast_unsigned()),
            young_account_days: days.cast_unsigned(),
        },
        None => FakeSettings::default(),
    };
    let facts = MemberFacts {
        user_id: UserId(member_id),
        joined_at: decision.joined_at,
        has_avatar: member.as_ref().is_none_or(|m| m.has_avatar),
        joined_before,
    };
    let fake = settings.reasons(&facts, decision.inviter_id());
    let (source, candidates, unknown_reason) = match &decision.verdict {
        Verdict::Invite { .. } => (JoinSource::Invite, Vec::new(), None),
        Verdict::Vanity { .. } => (JoinSource::Vanity, Vec::new(), None),
        Verdict::Ambiguous { candidates, .. } => (JoinSource::Ambiguous, candidates.clone(), None),
        Verdict::Unknown { reason } => (JoinSource::Unknown, Vec::new(), Some(reason.as_str())),
    };
    let join = NewJoin {
        bot_id,
        guild_id,
        member_id,
        joined_at,
        source,
        invite_code: decision.code().map(str::to_owned),
        inviter_id: decision.inviter_id().map(|u| u.0),
        candidates,
        unknown_reason,
        fake: fake.0.cast_signed(),
        left_at,
    };
    tracing::debug!(guild_id, member_id, source = source.as_str(), invite_code = ?join.invite_code, "join decided");
    joins::insert_join(c, &join).await?;
    Ok(())
}
