//! The effects of one batch, gathered in memory and written with a few multi-row statements.
//!
//! Applying an event used to read and write PostgreSQL several times (the member row, earlier
//! joins, fake settings, the join, the counters). Here the rows a batch needs are read up
//! front in one statement per table, every event is applied to that in-memory picture in
//! stream order, and the result is written at the end: joins, leaves of joins stored earlier,
//! per-inviter counter deltas summed per key, member rows. The caller commits this together
//! with the guild states and the partition's sequence, so a batch takes effect entirely or not
//! at all.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use invitrack_attribution::{Decision, FakeReasons, FakeSettings, MemberFacts, UserId, Verdict};
use invitrack_storage::joins::{self, JoinSource, Leave, NewJoin};
use invitrack_storage::members::{self, MemberKey, MemberRow};
use invitrack_storage::progress::{self, GuildKey};
use invitrack_storage::{AsyncPgConnection, StorageError, db_id, millis_to_time};

/// What a GUILD_MEMBER_ADD turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberJoin {
    /// The member is already present with this join time: Discord repeated the event.
    Repeated,
    New,
}

/// A decision whose member this batch has not read: finished once all of them are read.
struct Deferred {
    guild: GuildKey,
    decision: Decision,
}

#[derive(Default)]
pub(crate) struct BatchEffects {
    /// Members this batch reads or changes; `None` for members never seen.
    members: HashMap<MemberKey, Option<MemberRow>>,
    /// Members to write back, in a stable order.
    changed_members: BTreeMap<MemberKey, ()>,
    /// Earliest join stored before this batch, per member read.
    stored_first_join: HashMap<MemberKey, DateTime<Utc>>,
    /// Earliest join decided so far in this batch, per member.
    batch_first_join: HashMap<MemberKey, DateTime<Utc>>,
    settings: HashMap<GuildKey, (i32, i32)>,
    settings_read: std::collections::HashSet<GuildKey>,
    new_joins: Vec<NewJoin>,
    /// Index into `new_joins` by `(member, joined_at)`.
    new_join_at: HashMap<(MemberKey, DateTime<Utc>), usize>,
    leaves: Vec<Leave>,
    deferred: Vec<Deferred>,
}

impl BatchEffects {
    /// Reads the members (and their earliest joins) and the fake settings a batch touches: three
    /// statements, whatever the batch size.
    pub(crate) async fn read(
        conn: &mut AsyncPgConnection,
        member_keys: &[MemberKey],
        guilds: &[GuildKey],
    ) -> Result<Self, StorageError> {
        let mut effects = Self::default();
        effects.read_members(conn, member_keys).await?;
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
    pub(crate) fn member_joined(
        &mut self,
        key: MemberKey,
        joined_at: DateTime<Utc>,
        has_avatar: bool,
        flagged_rejoin: bool,
    ) -> MemberJoin {
        let slot = self.members.entry(key).or_default();
        match slot {
            Some(m) if m.present && m.joined_at == joined_at => return MemberJoin::Repeated,
            Some(m) => {
                m.present = true;
                m.joined_at = joined_at;
                m.left_at = None;
                m.has_avatar = has_avatar;
                m.rejoined = true;
                m.join_count = m.join_count.saturating_add(1);
            }
            None => {
                *slot = Some(MemberRow {
                    bot_id: db_id(key.0),
                    guild_id: db_id(key.1),
                    member_id: db_id(key.2),
                    present: true,
                    joined_at,
                    left_at: None,
                    has_avatar,
                    rejoined: flagged_rejoin,
                    join_count: 1,
                });
            }
        }
        self.changed_members.insert(key, ());
        MemberJoin::New
    }

    /// Records a GUILD_MEMBER_REMOVE of a member read by [`BatchEffects::read`], and marks the
    /// join of the membership that ended as left (in this batch's joins, or among the stored
    /// ones at write time). A join still pending in the engine is stored with its leave when it
    /// is decided.
    pub(crate) fn member_left(&mut self, key: MemberKey, left_at: DateTime<Utc>) {
        let Some(Some(member)) = self.members.get_mut(&key) else {
            return;
        };
        if !member.present {
            return;
        }
        member.present = false;
        member.left_at = Some(left_at);
        let joined_at = member.joined_at;
        self.changed_members.insert(key, ());
        match self.new_join_at.get(&(key, joined_at)) {
            Some(&index) => {
                let join = &mut self.new_joins[index];
                if join.left_at.is_none() {
                    join.left_at = Some(left_at);
                }
            }
            None => self.leaves.push(Leave {
                bot_id: key.0,
                guild_id: key.1,
                member_id: key.2,
                joined_at,
                left_at,
            }),
        }
    }

    /// Records a decided join. When its member was not read for this batch it waits for
    /// [`BatchEffects::finish`]: no event of this batch touches such a member, so its stored
    /// row is still what the decision must see.
    pub(crate) fn decided(
        &mut self,
        guild: GuildKey,
        decision: Decision,
    ) -> Result<(), StorageError> {
        let key = (guild.0, guild.1, decision.user_id.0);
        if self.members.contains_key(&key) && self.settings_read.contains(&guild) {
            self.record(guild, &decision)
        } else {
            self.deferred.push(Deferred { guild, decision });
            Ok(())
        }
    }

    /// Reads what the deferred decisions need (two or three statements) and records them.
    pub(crate) async fn finish(
        &mut self,
        conn: &mut AsyncPgConnection,
    ) -> Result<(), StorageError> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        let deferred = std::mem::take(&mut self.deferred);
        let keys: Vec<MemberKey> = deferred
            .iter()
            .map(|d| (d.guild.0, d.guild.1, d.decision.user_id.0))
            .collect();
        let guilds: Vec<GuildKey> = deferred.iter().map(|d| d.guild).collect();
        self.read_members(conn, &keys).await?;
        self.read_settings(conn, &guilds).await?;
        for d in deferred {
            self.record(d.guild, &d.decision)?;
        }
        Ok(())
    }

    /// Writes the batch's joins, leaves, counter deltas and member rows.
    pub(crate) async fn write(
        &mut self,
        conn: &mut AsyncPgConnection,
    ) -> Result<joins::WrittenJoins, StorageError> {
        debug_assert!(self.deferred.is_empty(), "finish() before write()");
        let written = joins::write_joins(conn, &self.new_joins, &self.leaves).await?;
        let rows: Vec<MemberRow> = self
            .changed_members
            .keys()
            .filter_map(|k| self.members.get(k).cloned().flatten())
            .collect();
        members::save_members(conn, &rows).await?;
        Ok(written)
    }

    /// Turns a decision into a join row, with the membership facts as they are at this point
    /// of the batch.
    fn record(
        &mut self,
        (bot_id, guild_id): GuildKey,
        decision: &Decision,
    ) -> Result<(), StorageError> {
        let member_id = decision.user_id.0;
        let key = (bot_id, guild_id, member_id);
        let joined_at = millis_to_time(decision.joined_at)?;
        let member = self.members.get(&key).cloned().flatten();
        let same_membership = member.as_ref().is_some_and(|m| m.joined_at == joined_at);
        let earlier = |first: Option<&DateTime<Utc>>| first.is_some_and(|t| *t < joined_at);
        let joined_before = (same_membership && member.as_ref().is_some_and(|m| m.rejoined))
            || earlier(self.stored_first_join.get(&key))
            || earlier(self.batch_first_join.get(&key));
        let left_at = match &member {
            Some(m) if same_membership => m.left_at.filter(|_| !m.present),
            // The member has joined again since: this membership ended by then at the latest.
            Some(m) => Some(m.joined_at),
            None => None,
        };
        let settings = match self.settings.get(&(bot_id, guild_id)) {
            Some(&(enabled, days)) => FakeSettings {
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
            Verdict::Ambiguous { candidates, .. } => {
                (JoinSource::Ambiguous, candidates.clone(), None)
            }
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
        // The same decision twice (it cannot happen, but the table says it is one join) keeps
        // the first, as the unique key in PostgreSQL would.
        if let std::collections::hash_map::Entry::Vacant(slot) =
            self.new_join_at.entry((key, joined_at))
        {
            slot.insert(self.new_joins.len());
            self.new_joins.push(join);
            let first = self.batch_first_join.entry(key).or_insert(joined_at);
            *first = (*first).min(joined_at);
        }
        Ok(())
    }
}
