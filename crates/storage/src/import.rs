//! Imports into a guild (`docs/dashboard.md#import`): joins from invitrack's own export (to move
//! between deployments; staged batch by batch as the file streams in, then moved in one
//! transaction) and bonus per inviter (to carry counts over from another tracker). Each import
//! is audited once; the guild's counters are then what its rows say.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use invitrack_model::{FakeReasons, GuildKey, InviteCode, JoinSource, UnknownReason, UserId};
use serde_json::json;

use crate::StorageError;
use crate::admin::{Actor, audit};
use crate::dashboard::recount_guild;
use crate::schema::{bonus_invites, inviter_counts, join_imports};

/// Rows written per statement.
const CHUNK: usize = 1_000;

/// One bonus line of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BonusLine {
    pub inviter_id: UserId,
    /// Positive or negative, never 0.
    pub amount: i64,
    pub reason: String,
}

/// One join of an export, to be written again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedJoin {
    pub member_id: UserId,
    pub created_at: DateTime<Utc>,
    pub decided_at: DateTime<Utc>,
    pub source: JoinSource,
    pub invite_code: Option<InviteCode>,
    pub inviter_id: Option<UserId>,
    pub candidates: Vec<InviteCode>,
    pub unknown_reason: Option<UnknownReason>,
    pub fake: FakeReasons,
    pub left_at: Option<DateTime<Utc>>,
    pub cleared: bool,
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Rows written.
    pub written: usize,
    /// Joins already in the guild (same member, same join time), left as they were.
    pub already_there: usize,
    /// Inviters whose counters the guild now has.
    pub inviters: usize,
}

/// Rewrites the guild's counters from its join and bonus rows.
async fn rewrite_counts(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
) -> Result<usize, StorageError> {
    use inviter_counts::dsl as c;
    let counts = recount_guild(conn, guild).await?;
    diesel::delete(
        c::inviter_counts
            .filter(c::bot_id.eq(guild.bot_id))
            .filter(c::guild_id.eq(guild.guild_id)),
    )
    .execute(conn)
    .await?;
    let rows: Vec<_> = counts
        .iter()
        .map(|(inviter, n)| {
            (
                c::bot_id.eq(guild.bot_id),
                c::guild_id.eq(guild.guild_id),
                c::inviter_id.eq(*inviter),
                c::joins.eq(n.joins),
                c::fake.eq(n.fake),
                c::leaves.eq(n.leaves),
                c::bonus.eq(n.bonus),
            )
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        diesel::insert_into(c::inviter_counts)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    Ok(counts.len())
}

/// Adds every bonus line (checked by the caller), then the guild's counters follow.
///
/// # Errors
/// On database errors; nothing is written then.
pub async fn import_bonus(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    lines: &[BonusLine],
    actor: &Actor<'_>,
) -> Result<Imported, StorageError> {
    conn.transaction::<_, StorageError, _>(async |c| {
        use bonus_invites::dsl as b;
        for chunk in lines.chunks(CHUNK) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|l| {
                    (
                        b::bot_id.eq(guild.bot_id),
                        b::guild_id.eq(guild.guild_id),
                        b::inviter_id.eq(l.inviter_id),
                        b::amount.eq(l.amount),
                        b::reason.eq(&l.reason),
                        b::author.eq(actor.author),
                        b::key_id.eq(actor.key_id),
                    )
                })
                .collect();
            diesel::insert_into(b::bonus_invites)
                .values(rows)
                .execute(c)
                .await?;
        }
        let inviters = rewrite_counts(c, guild).await?;
        let total: i64 = lines.iter().map(|l| l.amount).sum();
        audit(
            c,
            guild,
            actor,
            "bonus.import",
            json!({"lines": lines.len(), "total": total}),
        )
        .await?;
        Ok(Imported {
            written: lines.len(),
            already_there: 0,
            inviters,
        })
    })
    .await
}

/// Rows of imports that never finished are removed after this long.
const STAGED_FOR: &str = "1 hour";

/// Stages a batch of joins of import `import_id` (each batch is committed on its own).
///
/// # Errors
/// On database errors.
pub async fn stage_joins(
    conn: &mut AsyncPgConnection,
    import_id: i64,
    batch: &[ImportedJoin],
) -> Result<(), StorageError> {
    use join_imports::dsl as s;
    for chunk in batch.chunks(CHUNK) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|i| {
                (
                    s::import_id.eq(import_id),
                    s::member_id.eq(i.member_id),
                    s::created_at.eq(i.created_at),
                    s::decided_at.eq(i.decided_at),
                    s::source.eq(i.source),
                    s::invite_code.eq(i.invite_code.as_ref()),
                    s::inviter_id.eq(i.inviter_id),
                    s::candidates.eq(i
                        .candidates
                        .iter()
                        .map(InviteCode::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")),
                    s::unknown_reason.eq(i.unknown_reason),
                    s::fake.eq(i.fake),
                    s::left_at.eq(i.left_at),
                    s::cleared.eq(i.cleared),
                )
            })
            .collect();
        diesel::insert_into(s::join_imports)
            .values(rows)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Forgets an import that will not finish, and any left over from imports that never did.
///
/// # Errors
/// On database errors.
pub async fn discard_import(
    conn: &mut AsyncPgConnection,
    import_id: i64,
) -> Result<(), StorageError> {
    diesel::sql_query(format!(
        "DELETE FROM join_imports WHERE import_id = $1 OR staged_at < now() - interval '{STAGED_FOR}'"
    ))
    .bind::<diesel::sql_types::BigInt, _>(import_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves the staged joins of `import_id` into the guild in one transaction: the joins it does
/// not have yet (a join is the same when its member and join time are), then its counters are
/// rewritten from its rows. `staged` is how many were staged.
///
/// # Errors
/// On database errors; nothing is written then (the staged rows stay until discarded).
pub async fn finish_join_import(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    import_id: i64,
    staged: usize,
    actor: &Actor<'_>,
) -> Result<Imported, StorageError> {
    conn.transaction::<_, StorageError, _>(async |c| {
        let written = diesel::sql_query(
            "INSERT INTO joins (bot_id, guild_id, member_id, created_at, updated_at, decided_at, \
             source, invite_code, inviter_id, candidates, unknown_reason, fake, has_left, left_at, \
             cleared) \
             SELECT $1, $2, s.member_id, s.created_at, now(), s.decided_at, s.source, \
             s.invite_code, s.inviter_id, \
             CASE WHEN s.candidates = '' THEN '{}'::TEXT[] ELSE string_to_array(s.candidates, ' ') END, \
             s.unknown_reason, s.fake, s.left_at IS NOT NULL, s.left_at, s.cleared \
             FROM join_imports s WHERE s.import_id = $3 AND NOT EXISTS ( \
               SELECT 1 FROM joins j WHERE j.bot_id = $1 AND j.guild_id = $2 \
               AND j.created_at = s.created_at AND j.member_id = s.member_id) \
             ORDER BY s.id",
        )
        .bind::<diesel::sql_types::BigInt, _>(guild.bot_id)
        .bind::<diesel::sql_types::BigInt, _>(guild.guild_id)
        .bind::<diesel::sql_types::BigInt, _>(import_id)
        .execute(c)
        .await?;
        discard_import(c, import_id).await?;
        let inviters = rewrite_counts(c, guild).await?;
        let already_there = staged.saturating_sub(written);
        audit(
            c,
            guild,
            actor,
            "joins.import",
            json!({"joins": written, "already_there": already_there}),
        )
        .await?;
        Ok(Imported {
            written,
            already_there,
            inviters,
        })
    })
    .await
}
