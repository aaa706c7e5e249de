//! The engine states of a partition's guilds held in memory, loaded from PostgreSQL on first
//! use and dropped when idle beyond a bound.

use std::collections::{BTreeSet, HashMap};

use invitrack_attribution::GuildAttribution;
use invitrack_bus::BusLayout;
use invitrack_model::GuildKey;
use invitrack_model::time::millis_to_time;
use invitrack_storage::progress::{self, GuildStateRow};
use invitrack_storage::{AsyncPgConnection, StorageError};

use crate::WorkerError;
use crate::clock::MAX_CLOCK_AHEAD_MS;

pub(crate) struct GuildCache {
    guilds: HashMap<GuildKey, CachedGuild>,
    /// Most guild states kept; the least recently used idle ones are dropped beyond it (their
    /// state is in PostgreSQL).
    max_cached: usize,
    /// Counts uses, to find the least recently used.
    uses: u64,
}

struct CachedGuild {
    state: GuildAttribution,
    last_used: u64,
}

/// A stored engine state, its times clamped to this worker's clock plus the allowance: a state
/// saved ahead of it by a version that did not check clocks heals when it is loaded
/// (`docs/architecture.md#ingests-clock`).
fn decode_state(key: GuildKey, value: serde_json::Value) -> Result<GuildAttribution, StorageError> {
    let mut state: GuildAttribution = serde_json::from_value(value)?;
    let latest = invitrack_model::time::now_millis() + MAX_CLOCK_AHEAD_MS;
    if state.clamp_times(latest) {
        tracing::warn!(
            bot_id = %key.bot_id,
            guild_id = %key.guild_id,
            clamped_to = latest,
            "the guild's stored state was dated ahead of this worker's clock: clamped"
        );
    }
    Ok(state)
}

impl GuildCache {
    pub(crate) fn new(max_cached: usize) -> Self {
        Self {
            guilds: HashMap::new(),
            max_cached: max_cached.max(1),
            uses: 0,
        }
    }

    /// Loads the stored state of the guilds not in memory (a new engine for guilds never
    /// seen): one statement.
    pub(crate) async fn load_missing(
        &mut self,
        conn: &mut AsyncPgConnection,
        keys: &[GuildKey],
    ) -> Result<(), WorkerError> {
        let missing: Vec<GuildKey> = keys
            .iter()
            .filter(|k| !self.guilds.contains_key(k))
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut stored = progress::load_guild_states(conn, &missing).await?;
        for key in missing {
            let state = match stored.remove(&key) {
                Some(value) => decode_state(key, value)?,
                None => GuildAttribution::new(),
            };
            self.insert(key, state);
        }
        Ok(())
    }

    /// Loads the guilds of `partition` with undecided joins, so they are decided on time even
    /// when no further event of theirs arrives (after a takeover, a restart). Returns how many
    /// were loaded.
    pub(crate) async fn load_pending(
        &mut self,
        conn: &mut AsyncPgConnection,
        layout: &BusLayout,
        partition: u32,
    ) -> Result<usize, WorkerError> {
        let mut loaded = 0;
        for (key, state) in progress::pending_guild_states(conn).await? {
            if layout.partition_of(key) != partition || self.guilds.contains_key(&key) {
                continue;
            }
            self.insert(key, decode_state(key, state)?);
            loaded += 1;
        }
        Ok(loaded)
    }

    /// Forgets a guild's state held in memory (it is loaded again on next use); whether it
    /// had undecided joins.
    pub(crate) fn forget(&mut self, key: GuildKey) -> bool {
        self.guilds
            .remove(&key)
            .is_some_and(|g| g.state.has_pending())
    }

    fn insert(&mut self, key: GuildKey, state: GuildAttribution) {
        self.guilds.insert(
            key,
            CachedGuild {
                state,
                last_used: 0,
            },
        );
    }

    /// A loaded guild's engine, marked as just used.
    pub(crate) fn use_guild(
        &mut self,
        key: GuildKey,
    ) -> Result<&mut GuildAttribution, WorkerError> {
        self.uses += 1;
        let cached = self
            .guilds
            .get_mut(&key)
            .ok_or(WorkerError::GuildNotLoaded { guild: key })?;
        cached.last_used = self.uses;
        Ok(&mut cached.state)
    }

    /// A loaded guild's engine, without counting a use (time passing).
    pub(crate) fn get_mut(&mut self, key: GuildKey) -> Option<&mut GuildAttribution> {
        self.guilds.get_mut(&key).map(|g| &mut g.state)
    }

    pub(crate) fn any_pending(&self) -> bool {
        self.guilds.values().any(|g| g.state.has_pending())
    }

    /// Undecided joins over the cached guilds (guilds with any are always cached).
    pub(crate) fn pending_joins(&self) -> usize {
        self.guilds.values().map(|g| g.state.pending_joins()).sum()
    }

    pub(crate) fn pending(&self) -> Vec<GuildKey> {
        self.guilds
            .iter()
            .filter(|(_, g)| g.state.has_pending())
            .map(|(k, _)| *k)
            .collect()
    }

    /// The rows that save these guilds' engine states.
    pub(crate) fn state_rows(
        &self,
        keys: &BTreeSet<GuildKey>,
    ) -> Result<Vec<(GuildKey, GuildStateRow)>, StorageError> {
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(CachedGuild { state: guild, .. }) = self.guilds.get(key) {
                let row = GuildStateRow {
                    state: serde_json::to_value(guild)?,
                    pending_joins: i32::try_from(guild.pending_joins()).unwrap_or(i32::MAX),
                    missing_permissions: guild.missing_permissions(),
                    last_snapshot_at: guild
                        .last_snapshot_at()
                        .and_then(|ms| millis_to_time(ms).ok()),
                };
                rows.push((*key, row));
            }
        }
        Ok(rows)
    }

    /// Drops the least recently used guilds with nothing pending while over the bound.
    pub(crate) fn evict_idle(&mut self) {
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
}
