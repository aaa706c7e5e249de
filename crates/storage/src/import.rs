//! Imports into a guild (`docs/dashboard.md#import`): joins from invitrack's own export (to move
//! between deployments) and bonus per inviter (to carry counts over from another tracker). Each
//! import is one transaction, audited once; the guild's counters are then what its rows say.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use invitrack_model::{FakeReasons, GuildKey, InviteCode, JoinSource, UnknownReason, UserId};
use serde_json::json;

use crate::StorageError;
use crate::admin::{Actor, audit};
use crate::dashboard::recount_guild;
use crate::schema::{bonus_invites, inviter_counts, joins};

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

/// Writes the joins the guild does not have yet (a join is the same when its member and join
/// time are), then rewrites the guild's counters from its rows.
///
/// # Errors
/// On database errors; nothing is written then.
pub async fn import_joins(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    imported: &[ImportedJoin],
    actor: &Actor<'_>,
) -> Result<Imported, StorageError> {
    conn.transaction::<_, StorageError, _>(async |c| {
        use joins::dsl as j;
        let existing: std::collections::HashSet<(UserId, DateTime<Utc>)> = j::joins
            .filter(j::bot_id.eq(guild.bot_id))
            .filter(j::guild_id.eq(guild.guild_id))
            .select((j::member_id, j::created_at))
            .load::<(UserId, DateTime<Utc>)>(c)
            .await?
            .into_iter()
            .collect();
        let fresh: Vec<&ImportedJoin> = imported
            .iter()
            .filter(|i| !existing.contains(&(i.member_id, i.created_at)))
            .collect();
        for chunk in fresh.chunks(CHUNK) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|i| {
                    (
                        j::bot_id.eq(guild.bot_id),
                        j::guild_id.eq(guild.guild_id),
                        j::member_id.eq(i.member_id),
                        j::created_at.eq(i.created_at),
                        j::updated_at.eq(Utc::now()),
                        j::decided_at.eq(i.decided_at),
                        j::source.eq(i.source),
                        j::invite_code.eq(i.invite_code.as_ref()),
                        j::inviter_id.eq(i.inviter_id),
                        j::candidates.eq(&i.candidates),
                        j::unknown_reason.eq(i.unknown_reason),
                        j::fake.eq(i.fake),
                        j::has_left.eq(i.left_at.is_some()),
                        j::left_at.eq(i.left_at),
                        j::cleared.eq(i.cleared),
                    )
                })
                .collect();
            diesel::insert_into(j::joins)
                .values(rows)
                .execute(c)
                .await?;
        }
        let inviters = rewrite_counts(c, guild).await?;
        audit(
            c,
            guild,
            actor,
            "joins.import",
            json!({"joins": fresh.len(), "already_there": imported.len() - fresh.len()}),
        )
        .await?;
        Ok(Imported {
            written: fresh.len(),
            already_there: imported.len() - fresh.len(),
            inviters,
        })
    })
    .await
}
