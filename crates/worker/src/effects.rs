//! The effects of one batch, gathered in memory and written with a few multi-row statements.
//!
//! The rows a batch needs are read up front in one statement per table, every event is applied
//! to that in-memory picture in stream order with the membership and fake rules of
//! `invitrack-model`, and the result is written at the end: joins, leaves of joins stored
//! earlier, per-inviter counter deltas summed per key, member records and invites. The caller
//! commits this together with the guild states and the partition's sequence, so a batch takes
//! effect entirely or not at all.
//!
//! Public so that tests of other crates seed their data through what production runs.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use invitrack_attribution::{Decision, Verdict};
use invitrack_model::membership::{self, JoinKind, Membership};
use invitrack_model::time::millis_to_time;
use invitrack_model::{FakeSettings, GuildKey, InviteCode, MemberFacts, MemberKey};
use invitrack_storage::decisions::NewDecision;
use invitrack_storage::invites::{InviteChanges, SeenInvite};
use invitrack_storage::joins::{self, Leave, NewJoin, WrittenJoins};

use crate::outbox::DecisionLog;
use crate::reports::ReportEffects;
use invitrack_storage::members;
use invitrack_storage::progress;
use invitrack_storage::{AsyncPgConnection, StorageError};

/// A decision whose member this batch has not read: finished once all of them are read.
struct Deferred {
    guild: GuildKey,
    decision: Decision,
}

/// A batch's reads and writes.
#[derive(Default)]
pub struct BatchEffects {
    /// Members this batch reads or changes; `None` for members never seen.
    members: HashMap<MemberKey, Option<Membership>>,
    /// Members to write back, in a stable order.
    changed_members: BTreeSet<MemberKey>,
    /// Earliest join stored before this batch, per member read.
    stored_first_join: HashMap<MemberKey, DateTime<Utc>>,
    /// Earliest join decided so far in this batch, per member.
    batch_first_join: HashMap<MemberKey, DateTime<Utc>>,
    settings: HashMap<GuildKey, FakeSettings>,
    settings_read: HashSet<GuildKey>,
    new_joins: Vec<NewJoin>,
    /// Index into `new_joins` by `(member, joined_at)`.
    new_join_at: HashMap<(MemberKey, DateTime<Utc>), usize>,
    leaves: Vec<Leave>,
    deferred: Vec<Deferred>,
    invites: InviteChanges,
    /// The decisions to publish, in the order they were made.
    decisions: DecisionLog,
    /// Discord's reported join sources and what they change.
    pub(crate) reports: ReportEffects,
}

impl BatchEffects {
    /// Reads the members (and their earliest joins) and the fake settings a batch touches: three
    /// statements, whatever the batch size.
    ///
    /// # Errors
    /// On database errors.
    pub async fn read(
        conn: &mut AsyncPgConnection,
        members: &[MemberKey],
        guilds: &[GuildKey],
    ) -> Result<Self, StorageError> {
        let mut effects = Self::default();
        effects.read_members(conn, members).await?;
        effects.read_settings(conn, guilds).await?;
        Ok(effects)
    }

    async fn read_members(
        &mut self,
        conn: &mut AsyncPgConnection,
        keys: &[MemberKey],
    ) -> Result<(), StorageError> {
        let keys: Vec<MemberKey> = keys
            .iter()
            .filter(|k| !self.members.contains_key(k))
            .copied()
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let mut stored = members::load_members(conn, &keys).await?;
        self.stored_first_join
            .extend(joins::first_joins(conn, &keys).await?);
        for key in keys {
            self.members.insert(key, stored.remove(&key));
        }
        Ok(())
    }

    async fn read_settings(
        &mut self,
        conn: &mut AsyncPgConnection,
        guilds: &[GuildKey],
    ) -> Result<(), StorageError> {
        let guilds: Vec<GuildKey> = guilds
            .iter()
            .filter(|g| !self.settings_read.contains(g))
            .copied()
            .collect();
        if guilds.is_empty() {
            return Ok(());
        }
        self.settings
            .extend(progress::fake_settings_of(conn, &guilds).await?);
        self.settings_read.extend(guilds);
        Ok(())
    }

    /// Records a GUILD_MEMBER_ADD of a member read by [`BatchEffects::read`].
    pub fn member_joined(
        &mut self,
        key: MemberKey,
        joined_at: DateTime<Utc>,
        has_avatar: bool,
        flagged_rejoin: bool,
    ) -> JoinKind {
        let record = self.members.entry(key).or_default();
        let kind = membership::member_joined(record, joined_at, has_avatar, flagged_rejoin);
        if kind == JoinKind::New {
            self.changed_members.insert(key);
        }
        kind
    }

    /// Records a GUILD_MEMBER_REMOVE of a member read by [`BatchEffects::read`], and marks the
    /// join of the membership that ended as left (in this batch's joins, or among the stored
    /// ones at write time). A join still pending in the engine is stored with its leave when it
    /// is decided.
    pub fn member_left(&mut self, key: MemberKey, left_at: DateTime<Utc>) {
        let Some(record) = self.members.get_mut(&key) else {
            return;
        };
        let Some(joined_at) = membership::member_left(record, left_at) else {
            return;
        };
        self.changed_members.insert(key);
        let new_join = self.new_join_at.get(&(key, joined_at)).copied();
        match new_join {
            Some(index) => {
                let join = &mut self.new_joins[index];
                if join.left_at.is_none() {
                    join.left_at = Some(left_at);
                }
            }
            None => self.leaves.push(Leave {
                member: key,
                joined_at,
                left_at,
            }),
        }
        self.decisions.leave(key, joined_at, left_at, new_join);
    }

    /// Records an invite snapshot for the `invites` table.
    pub fn invite_snapshot(
        &mut self,
        guild: GuildKey,
        requested_at: DateTime<Utc>,
        received_at: DateTime<Utc>,
        invites: Vec<SeenInvite>,
    ) {
        self.invites
            .snapshot(guild, requested_at, received_at, invites);
    }

    /// Records an INVITE_CREATE for the `invites` table.
    pub fn invite_created(&mut self, guild: GuildKey, invite: SeenInvite, at: DateTime<Utc>) {
        self.invites.created(guild, invite, at);
    }

    /// Records an INVITE_DELETE for the `invites` table.
    pub fn invite_deleted(&mut self, guild: GuildKey, code: InviteCode, at: DateTime<Utc>) {
        self.invites.deleted(guild, code, at);
    }

    /// Records a decided join. When its member was not read for this batch it waits for
    /// [`BatchEffects::finish`]: no event of this batch touches such a member, so its stored
    /// record is still what the decision must see.
    ///
    /// # Errors
    /// When the join time is out of range.
    pub fn decided(&mut self, guild: GuildKey, decision: Decision) -> Result<(), StorageError> {
        let key = guild.member(decision.user_id);
        if self.members.contains_key(&key) && self.settings_read.contains(&guild) {
            self.record(guild, &decision)
        } else {
            self.deferred.push(Deferred { guild, decision });
            Ok(())
        }
    }

    /// Reads what the deferred decisions need (two or three statements) and records them.
    ///
    /// # Errors
    /// On database errors.
    pub async fn finish(&mut self, conn: &mut AsyncPgConnection) -> Result<(), StorageError> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        let deferred = std::mem::take(&mut self.deferred);
        let keys: Vec<MemberKey> = deferred
            .iter()
            .map(|d| d.guild.member(d.decision.user_id))
            .collect();
        let guilds: Vec<GuildKey> = deferred.iter().map(|d| d.guild).collect();
        self.read_members(conn, &keys).await?;
        self.read_settings(conn, &guilds).await?;
        for d in deferred {
            self.record(d.guild, &d.decision)?;
        }
        Ok(())
    }

    /// Writes the batch's joins, leaves, counter deltas, member records and invites.
    ///
    /// # Errors
    /// On database errors.
    pub async fn write(
        &mut self,
        conn: &mut AsyncPgConnection,
    ) -> Result<WrittenJoins, StorageError> {
        debug_assert!(self.deferred.is_empty(), "finish() before write()");
        let written = joins::write_joins(conn, &self.new_joins, &self.leaves).await?;
        let records: Vec<(MemberKey, Membership)> = self
            .changed_members
            .iter()
            .filter_map(|k| self.members.get(k).copied().flatten().map(|m| (*k, m)))
            .collect();
        members::save_members(conn, &records).await?;
        if !self.invites.is_empty() {
            self.invites.write(conn).await?;
        }
        let mut written = written;
        // After the joins: a credit moves counters on top of what this batch counted.
        written.counts.extend(self.reports.write(conn).await?);
        Ok(written)
    }

    /// The decisions of the batch that took effect, as bus messages for the relay
    /// (`docs/decisions.md`), once [`BatchEffects::write`] wrote them.
    pub fn decisions(&mut self, written: &WrittenJoins) -> Vec<NewDecision> {
        std::mem::take(&mut self.decisions).finish(&self.new_joins, written)
    }

    /// Turns a decision into a join row, with the membership facts as they are at this point
    /// of the batch.
    fn record(&mut self, guild: GuildKey, decision: &Decision) -> Result<(), StorageError> {
        let key = guild.member(decision.user_id);
        let joined_at = millis_to_time(decision.joined_at)?;
        let record = self.members.get(&key).copied().flatten();
        let earliest = [
            self.stored_first_join.get(&key),
            self.batch_first_join.get(&key),
        ]
        .into_iter()
        .flatten()
        .min()
        .copied();
        let facts = membership::join_facts(record.as_ref(), joined_at, earliest);
        let settings = self.settings.get(&guild).copied().unwrap_or_default();
        let fake = settings.reasons(
            &MemberFacts {
                user_id: decision.user_id,
                joined_at: decision.joined_at,
                has_avatar: facts.has_avatar,
                joined_before: facts.joined_before,
            },
            decision.inviter_id(),
        );
        let (candidates, unknown_reason) = match &decision.verdict {
            Verdict::Ambiguous { candidates, .. } => (candidates.clone(), None),
            Verdict::Unknown { reason } => (Vec::new(), Some(*reason)),
            Verdict::Invite { .. } | Verdict::Vanity { .. } => (Vec::new(), None),
        };
        let join = NewJoin {
            member: key,
            joined_at,
            source: decision.verdict.source(),
            invite_code: decision.code().cloned(),
            inviter_id: decision.inviter_id(),
            candidates,
            unknown_reason,
            fake,
            left_at: facts.left_at,
        };
        tracing::debug!(
            guild_id = %guild.guild_id,
            member_id = %key.member_id,
            source = %join.source,
            invite_code = ?join.invite_code,
            "join decided"
        );
        // The same decision twice (it cannot happen, but the table says it is one join) keeps
        // the first, as the unique key in PostgreSQL would.
        if let std::collections::hash_map::Entry::Vacant(slot) =
            self.new_join_at.entry((key, joined_at))
        {
            slot.insert(self.new_joins.len());
            self.decisions
                .join(self.new_joins.len(), facts.joined_before);
            self.new_joins.push(join);
            let first = self.batch_first_join.entry(key).or_insert(joined_at);
            *first = (*first).min(joined_at);
        }
        Ok(())
    }
}
