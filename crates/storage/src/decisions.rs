//! The decisions outbox (`docs/decisions.md`): the worker records each decision in the
//! transaction that applies it, and a relay publishes the unsent ones of a partition stream in
//! order and marks them sent. Sent rows are kept for a while (replays, audits), then pruned.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use invitrack_model::{GuildKey, UserId};

use crate::StorageError;
use crate::schema::decisions;

/// A decision to record: whose, and the encoded bus message without its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDecision {
    pub guild: GuildKey,
    pub member_id: UserId,
    pub payload: Vec<u8>,
}

/// A recorded decision not yet published.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct UnsentDecision {
    pub id: i64,
    pub bot_id: invitrack_model::BotId,
    pub guild_id: invitrack_model::GuildId,
    pub payload: Vec<u8>,
}

impl UnsentDecision {
    #[must_use]
    pub fn guild(&self) -> GuildKey {
        GuildKey::new(self.bot_id, self.guild_id)
    }
}

/// Records decisions of partition stream `stream`, in the order given (their ids grow with it):
/// one statement.
///
/// # Errors
/// On database errors.
pub async fn record(
    conn: &mut AsyncPgConnection,
    stream: &str,
    new: &[NewDecision],
) -> Result<(), StorageError> {
    for chunk in new.chunks(crate::ARRAY_CHUNK) {
        let mut bots = Vec::with_capacity(chunk.len());
        let mut guilds = Vec::with_capacity(chunk.len());
        let mut members = Vec::with_capacity(chunk.len());
        let mut payloads = Vec::with_capacity(chunk.len());
        for decision in chunk {
            bots.push(decision.guild.bot_id);
            guilds.push(decision.guild.guild_id);
            members.push(decision.member_id);
            payloads.push(decision.payload.as_slice());
        }
        // WITH ORDINALITY: ids are handed out in the order of the arrays.
        crate::prepared::prepared(
            "INSERT INTO decisions (stream, bot_id, guild_id, member_id, payload) \
             SELECT $1, d.bot_id, d.guild_id, d.member_id, d.payload \
             FROM unnest($2::int8[], $3::int8[], $4::int8[], $5::bytea[]) WITH ORDINALITY \
               AS d(bot_id, guild_id, member_id, payload, n) \
             ORDER BY d.n",
        )
        .bind::<Text, _>(stream)
        .bind::<Array<BigInt>, _>(bots)
        .bind::<Array<BigInt>, _>(guilds)
        .bind::<Array<BigInt>, _>(members)
        .bind::<Array<Bytea>, _>(payloads)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// The oldest `limit` unsent decisions of partition stream `stream`, in id order, once they are
/// on disk.
///
/// The worker commits its batches, these decisions with them, without waiting for the disk
/// (`WORKER_SYNCHRONOUS_COMMIT=false`): a batch is visible before it is durable, and a
/// PostgreSQL crash may lose it after it was read here. The worker then applies the batch
/// again and records its decisions again, under new ids, and what was published from the lost
/// commit would be published a second time. So before the rows are returned, a transaction of
/// this session commits synchronously: WAL is flushed in order, so its flush makes every commit
/// read before it durable.
///
/// # Errors
/// On database errors.
pub async fn unsent(
    conn: &mut AsyncPgConnection,
    stream: &str,
    limit: i64,
) -> Result<Vec<UnsentDecision>, StorageError> {
    let rows: Vec<UnsentDecision> = decisions::table
        .filter(decisions::stream.eq(stream))
        .filter(decisions::sent_at.is_null())
        .order(decisions::id)
        .limit(limit)
        .select((
            decisions::id,
            decisions::bot_id,
            decisions::guild_id,
            decisions::payload,
        ))
        .load(conn)
        .await?;
    if !rows.is_empty() {
        // An xid makes the statement's transaction write a commit record, and a synchronous
        // commit waits until the WAL up to it is flushed.
        diesel::sql_query("SELECT txid_current()")
            .execute(conn)
            .await?;
    }
    Ok(rows)
}

/// Marks decisions as published.
///
/// # Errors
/// On database errors.
pub async fn mark_sent(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
    at: DateTime<Utc>,
) -> Result<usize, StorageError> {
    Ok(diesel::update(decisions::table)
        .filter(decisions::id.eq_any(ids))
        .set(decisions::sent_at.eq(at))
        .execute(conn)
        .await?)
}

/// Deletes the decisions of partition stream `stream` sent before `before`; how many.
///
/// # Errors
/// On database errors.
pub async fn prune_sent(
    conn: &mut AsyncPgConnection,
    stream: &str,
    before: DateTime<Utc>,
) -> Result<usize, StorageError> {
    Ok(diesel::delete(decisions::table)
        .filter(decisions::stream.eq(stream))
        .filter(decisions::sent_at.lt(before))
        .execute(conn)
        .await?)
}
