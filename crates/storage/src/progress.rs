//! What a worker commits with its effects: the last applied stream sequence of a partition, the
//! attribution state of each guild it touched, and the guild's fake settings it reads.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use invitrack_model::{BotId, FakeReasons, FakeSettings, GuildId, GuildKey};

use crate::StorageError;
use crate::schema::{guild_states, partition_progress};

/// A worker's claim on a partition: where to resume, and the epoch that fences its commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionClaim {
    pub epoch: i64,
    /// The last stream sequence applied for the partition, 0 when none.
    pub last_sequence: u64,
    /// When the stream those sequences count in was created; `None` before it was recorded.
    pub stream_created_at: Option<DateTime<Utc>>,
}

/// Claims a partition: bumps its epoch, so commits of any earlier owner are refused from now
/// on, and returns where to resume.
///
/// # Errors
/// On database errors.
pub async fn claim_partition(
    conn: &mut AsyncPgConnection,
    stream: &str,
    partition: u32,
) -> Result<PartitionClaim, StorageError> {
    use partition_progress::dsl as p;
    let (epoch, last, stream_created_at): (i64, i64, Option<DateTime<Utc>>) =
        diesel::insert_into(p::partition_progress)
            .values((
                p::stream.eq(stream),
                p::partition.eq(partition.cast_signed()),
                p::last_sequence.eq(0_i64),
                p::epoch.eq(1_i64),
                p::updated_at.eq(Utc::now()),
            ))
            .on_conflict((p::stream, p::partition))
            .do_update()
            .set((p::epoch.eq(p::epoch + 1), p::updated_at.eq(Utc::now())))
            .returning((p::epoch, p::last_sequence, p::stream_created_at))
            .get_result(conn)
            .await?;
    Ok(PartitionClaim {
        epoch,
        last_sequence: last.cast_unsigned(),
        stream_created_at,
    })
}

/// Records that a partition applied everything from `previous` up to `sequence`, if the
/// partition is still claimed with `epoch` and its committed sequence is still `previous`.
/// Call it inside the transaction that writes the effects: when it returns `false` the caller
/// was fenced off (another claim), or its picture of the partition is ahead of the database
/// (a commit lost in a crash), and must roll back and resume from what is stored.
///
/// # Errors
/// On database errors.
pub async fn advance_sequence(
    conn: &mut AsyncPgConnection,
    stream: &str,
    partition: u32,
    epoch: i64,
    previous: u64,
    sequence: u64,
) -> Result<bool, StorageError> {
    use partition_progress::dsl as p;
    let updated = diesel::update(
        p::partition_progress
            .find((stream, partition.cast_signed()))
            .filter(p::epoch.eq(epoch))
            .filter(p::last_sequence.eq(previous.cast_signed())),
    )
    .set((
        p::last_sequence.eq(sequence.cast_signed()),
        p::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// Records which stream the partition's progress counts in (its creation time, as JetStream
/// reports it), if the partition is still claimed with `epoch` and its committed sequence is
/// still `previous`; with `restart`, the progress starts again from the stream's beginning (a
/// stream made again under the same name). `false` when fenced off.
///
/// # Errors
/// On database errors.
pub async fn set_stream(
    conn: &mut AsyncPgConnection,
    stream: &str,
    partition: u32,
    epoch: i64,
    previous: u64,
    created_at: DateTime<Utc>,
    restart: bool,
) -> Result<bool, StorageError> {
    use partition_progress::dsl as p;
    let last_sequence = if restart { 0 } else { previous.cast_signed() };
    let updated = diesel::update(
        p::partition_progress
            .find((stream, partition.cast_signed()))
            .filter(p::epoch.eq(epoch))
            .filter(p::last_sequence.eq(previous.cast_signed())),
    )
    .set((
        p::last_sequence.eq(last_sequence),
        p::stream_created_at.eq(created_at),
        p::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// Makes the current transaction's commit return before its WAL reaches disk. A crash of
/// PostgreSQL may then lose the last few hundred milliseconds of commits, but effects and the
/// partition's sequence are lost together, and the stream still holds the events: they are
/// applied again, once. Commits stop waiting for a disk flush each.
///
/// # Errors
/// On database errors.
pub async fn relax_commit(conn: &mut AsyncPgConnection) -> Result<(), StorageError> {
    crate::prepared::prepared("SET LOCAL synchronous_commit = off")
        .execute(conn)
        .await?;
    Ok(())
}

/// A guild's engine state, as the worker saves it.
#[derive(Debug, Clone, PartialEq)]
pub struct GuildStateRow {
    pub state: serde_json::Value,
    pub pending_joins: i32,
    pub missing_permissions: bool,
    pub last_snapshot_at: Option<DateTime<Utc>>,
}

/// The stored engine states of many guilds (guilds without one are missing from the map).
///
/// # Errors
/// On database errors.
pub async fn load_guild_states(
    conn: &mut AsyncPgConnection,
    keys: &[GuildKey],
) -> Result<HashMap<GuildKey, serde_json::Value>, StorageError> {
    #[derive(QueryableByName)]
    struct State {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        bot_id: BotId,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        guild_id: GuildId,
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        state: serde_json::Value,
    }
    let rows: Vec<State> = crate::keyed::rows_for_guilds(
        conn,
        "SELECT s.bot_id, s.guild_id, s.state FROM guild_states s \
         JOIN unnest($1::int8[], $2::int8[]) AS k(bot_id, guild_id) \
         ON s.bot_id = k.bot_id AND s.guild_id = k.guild_id",
        keys,
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (GuildKey::new(row.bot_id, row.guild_id), row.state))
        .collect())
}

/// The engine states of every guild with undecided joins (few: joins wait seconds for their
/// evidence). A worker that claims a partition picks its own out of them.
///
/// # Errors
/// On database errors.
pub async fn pending_guild_states(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<(GuildKey, serde_json::Value)>, StorageError> {
    let rows: Vec<(BotId, GuildId, serde_json::Value)> = guild_states::table
        .filter(guild_states::pending_joins.gt(0))
        .select((
            guild_states::bot_id,
            guild_states::guild_id,
            guild_states::state,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(bot, guild, state)| (GuildKey::new(bot, guild), state))
        .collect())
}

/// Saves the engine states of many guilds in a few statements. Each guild may appear at most
/// once.
///
/// # Errors
/// On database errors.
pub async fn save_guild_states(
    conn: &mut AsyncPgConnection,
    rows: &[(GuildKey, GuildStateRow)],
) -> Result<(), StorageError> {
    use diesel::sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Timestamptz};
    // One array per column: 6 parameters to parse and plan instead of 6 per row.
    for chunk in rows.chunks(crate::ARRAY_CHUNK) {
        let (bots, guilds) =
            crate::keyed::split_guild_keys(&chunk.iter().map(|(k, _)| *k).collect::<Vec<_>>());
        crate::prepared::prepared(
            "INSERT INTO guild_states (bot_id, guild_id, state, pending_joins, \
               missing_permissions, last_snapshot_at, updated_at) \
             SELECT s.*, now() FROM unnest($1::int8[], $2::int8[], $3::jsonb[], $4::int4[], \
               $5::bool[], $6::timestamptz[]) AS s \
             ON CONFLICT (bot_id, guild_id) DO UPDATE SET \
               state = excluded.state, pending_joins = excluded.pending_joins, \
               missing_permissions = excluded.missing_permissions, \
               last_snapshot_at = excluded.last_snapshot_at, updated_at = excluded.updated_at",
        )
        .bind::<Array<BigInt>, _>(bots)
        .bind::<Array<BigInt>, _>(guilds)
        .bind::<Array<Jsonb>, _>(chunk.iter().map(|(_, r)| &r.state).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(
            chunk
                .iter()
                .map(|(_, r)| r.pending_joins)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Bool>, _>(
            chunk
                .iter()
                .map(|(_, r)| r.missing_permissions)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Timestamptz>>, _>(
            chunk
                .iter()
                .map(|(_, r)| r.last_snapshot_at)
                .collect::<Vec<_>>(),
        )
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// The fake settings of many guilds: guilds that never changed theirs are missing (they have
/// [`FakeSettings::default`]).
///
/// # Errors
/// On database errors.
pub async fn fake_settings_of(
    conn: &mut AsyncPgConnection,
    keys: &[GuildKey],
) -> Result<HashMap<GuildKey, FakeSettings>, StorageError> {
    #[derive(QueryableByName)]
    struct Settings {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        bot_id: BotId,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        guild_id: GuildId,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        fake_reasons: FakeReasons,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        young_account_days: i32,
    }
    let rows: Vec<Settings> = crate::keyed::rows_for_guilds(
        conn,
        "SELECT s.bot_id, s.guild_id, s.fake_reasons, s.young_account_days \
         FROM guild_settings s JOIN unnest($1::int8[], $2::int8[]) AS k(bot_id, guild_id) \
         ON s.bot_id = k.bot_id AND s.guild_id = k.guild_id",
        keys,
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let settings = FakeSettings {
                enabled: row.fake_reasons,
                young_account_days: row.young_account_days.cast_unsigned(),
            };
            (GuildKey::new(row.bot_id, row.guild_id), settings)
        })
        .collect())
}

/// Takes the session-level advisory lock that says "this worker owns this partition". It is
/// released when the session ends, so a worker that dies frees its partitions at once.
///
/// # Errors
/// On database errors.
pub async fn try_lock_partition(
    conn: &mut AsyncPgConnection,
    stream: &str,
    partition: u32,
) -> Result<bool, StorageError> {
    #[derive(diesel::QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    let row: Locked = crate::prepared::prepared("SELECT pg_try_advisory_lock($1, $2) AS locked")
        .bind::<diesel::sql_types::Integer, _>(stream_lock_key(stream))
        .bind::<diesel::sql_types::Integer, _>(partition.cast_signed())
        .get_result(conn)
        .await?;
    Ok(row.locked)
}

/// Releases a partition lock taken with [`try_lock_partition`].
///
/// # Errors
/// On database errors.
pub async fn unlock_partition(
    conn: &mut AsyncPgConnection,
    stream: &str,
    partition: u32,
) -> Result<(), StorageError> {
    crate::prepared::prepared("SELECT pg_advisory_unlock($1, $2)")
        .bind::<diesel::sql_types::Integer, _>(stream_lock_key(stream))
        .bind::<diesel::sql_types::Integer, _>(partition.cast_signed())
        .execute(conn)
        .await?;
    Ok(())
}

/// FNV-1a of the stream name: the first half of the two-int advisory lock key.
fn stream_lock_key(stream: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in stream.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.cast_signed()
}

/// Workers not seen for this long are considered gone.
pub const WORKER_TIMEOUT_SECS: i64 = 10;

/// Records that a worker is alive and returns how many workers of the stream are.
///
/// # Errors
/// On database errors.
pub async fn worker_heartbeat(
    conn: &mut AsyncPgConnection,
    stream: &str,
    worker_id: &str,
) -> Result<usize, StorageError> {
    use crate::schema::workers::dsl as w;
    let now = Utc::now();
    diesel::insert_into(w::workers)
        .values((
            w::stream.eq(stream),
            w::worker_id.eq(worker_id),
            w::last_seen.eq(now),
        ))
        .on_conflict((w::stream, w::worker_id))
        .do_update()
        .set(w::last_seen.eq(now))
        .execute(conn)
        .await?;
    let cutoff = now - chrono::Duration::seconds(WORKER_TIMEOUT_SECS);
    diesel::delete(
        w::workers
            .filter(w::stream.eq(stream))
            .filter(w::last_seen.lt(cutoff)),
    )
    .execute(conn)
    .await?;
    let live: i64 = w::workers
        .filter(w::stream.eq(stream))
        .count()
        .get_result(conn)
        .await?;
    Ok(usize::try_from(live).unwrap_or(1).max(1))
}

/// Removes a worker that stops cleanly, so the others rebalance at once.
///
/// # Errors
/// On database errors.
pub async fn worker_gone(
    conn: &mut AsyncPgConnection,
    stream: &str,
    worker_id: &str,
) -> Result<(), StorageError> {
    use crate::schema::workers::dsl as w;
    diesel::delete(w::workers.find((stream, worker_id)))
        .execute(conn)
        .await?;
    Ok(())
}
