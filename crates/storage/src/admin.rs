//! Admin writes: bonus invites, soft resets and their restore, guild settings. Each write runs in
//! one transaction that also adjusts the maintained `inviter_counts` and appends to the audit
//! log, so counters and audit never disagree with the rows.
//!
//! Counters are adjusted by deltas computed from the rows each statement changed (never
//! recomputed wholesale), so a worker inserting joins or marking leaves at the same time keeps
//! its own increments: row locks order the two, and both sides add.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use crate::StorageError;
use crate::counts::InviterCounts;
use crate::schema::{audit_log, bonus_invites, guild_settings, inviter_counts, resets};
use invitrack_messages::{MessageKind, Template, Templates};
use invitrack_model::{ChannelId, FakeReasons, FakeSettings, GuildKey, UserId};

/// Who makes a write: the API key and the person the caller names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor<'a> {
    pub key_id: i64,
    pub key_label: &'a str,
    /// Free text given by the caller (e.g. a Discord user id or a dashboard user name).
    pub author: &'a str,
}

/// One bonus adjustment.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = bonus_invites)]
pub struct BonusRow {
    pub id: i64,
    pub inviter_id: UserId,
    pub amount: i64,
    pub reason: String,
    pub author: String,
    pub key_id: i64,
    pub created_at: DateTime<Utc>,
    pub cleared: bool,
    pub cleared_by: Option<i64>,
}

/// One reset.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = resets)]
pub struct ResetRow {
    pub id: i64,
    pub inviter_id: Option<UserId>,
    pub reason: String,
    pub author: String,
    pub key_id: i64,
    pub created_at: DateTime<Utc>,
    pub joins_cleared: i64,
    pub bonus_cleared: i64,
    pub restored_at: Option<DateTime<Utc>>,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: i64,
    pub key_id: i64,
    pub key_label: String,
    pub author: String,
    pub action: String,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// What restoring a reset did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreOutcome {
    Restored(ResetRow),
    NotFound,
    AlreadyRestored(ResetRow),
}

pub(crate) async fn audit(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    actor: &Actor<'_>,
    action: &str,
    details: serde_json::Value,
) -> Result<(), StorageError> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::bot_id.eq(guild.bot_id),
            audit_log::guild_id.eq(guild.guild_id),
            audit_log::key_id.eq(actor.key_id),
            audit_log::key_label.eq(actor.key_label),
            audit_log::author.eq(actor.author),
            audit_log::action.eq(action),
            audit_log::details.eq(details),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Adds a bonus adjustment (`amount` may be negative, never 0) and returns it with the
/// inviter's counters after it.
///
/// # Errors
/// On database errors.
pub async fn add_bonus(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    inviter_id: UserId,
    amount: i64,
    reason: &str,
    actor: &Actor<'_>,
) -> Result<(BonusRow, InviterCounts), StorageError> {
    conn.transaction::<_, StorageError, _>(async |c| {
        let row: BonusRow = diesel::insert_into(bonus_invites::table)
            .values((
                bonus_invites::bot_id.eq(guild.bot_id),
                bonus_invites::guild_id.eq(guild.guild_id),
                bonus_invites::inviter_id.eq(inviter_id),
                bonus_invites::amount.eq(amount),
                bonus_invites::reason.eq(reason),
                bonus_invites::author.eq(actor.author),
                bonus_invites::key_id.eq(actor.key_id),
            ))
            .returning(BonusRow::as_returning())
            .get_result(c)
            .await?;
        use inviter_counts::dsl as ic;
        let counts: InviterCounts = diesel::insert_into(ic::inviter_counts)
            .values((
                ic::bot_id.eq(guild.bot_id),
                ic::guild_id.eq(guild.guild_id),
                ic::inviter_id.eq(inviter_id),
                ic::bonus.eq(amount),
            ))
            .on_conflict((ic::bot_id, ic::guild_id, ic::inviter_id))
            .do_update()
            .set(ic::bonus.eq(ic::bonus + excluded(ic::bonus)))
            .returning(InviterCounts::as_returning())
            .get_result(c)
            .await?;
        audit(
            c,
            guild,
            actor,
            "bonus.add",
            json!({
                "bonus_id": row.id,
                "inviter_id": inviter_id.to_string(),
                "amount": amount,
                "reason": reason,
            }),
        )
        .await?;
        Ok((row, counts))
    })
    .await
}

/// An inviter's bonus adjustments, newest first (cleared ones included).
///
/// # Errors
/// On database errors.
pub async fn list_bonus(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    inviter_id: UserId,
) -> Result<Vec<BonusRow>, StorageError> {
    Ok(bonus_invites::table
        .filter(bonus_invites::bot_id.eq(guild.bot_id))
        .filter(bonus_invites::guild_id.eq(guild.guild_id))
        .filter(bonus_invites::inviter_id.eq(inviter_id))
        .order(bonus_invites::id.desc())
        .select(BonusRow::as_select())
        .load(conn)
        .await?)
}

#[derive(QueryableByName)]
struct Changed {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The statement that clears (reset) or unclears (restore) joins and moves the counters by
/// what those rows counted. Fixed strings only: nothing from a request reaches the SQL text.
fn joins_statement(clear: bool) -> &'static str {
    if clear {
        "WITH c AS ( \
           UPDATE joins SET cleared = TRUE, updated_at = now() \
           WHERE bot_id = $1 AND guild_id = $2 AND NOT cleared \
             AND ($4::BIGINT IS NULL OR inviter_id = $4) \
           RETURNING id, inviter_id, fake, has_left), \
         r AS (INSERT INTO reset_joins (reset_id, join_id) SELECT $3, id FROM c), \
         d AS ( \
           SELECT inviter_id, count(*) AS joins, count(*) FILTER (WHERE fake <> 0) AS fake, \
                  count(*) FILTER (WHERE fake = 0 AND has_left) AS leaves \
           FROM c WHERE inviter_id IS NOT NULL GROUP BY inviter_id), \
         u AS ( \
           INSERT INTO inviter_counts AS ic (bot_id, guild_id, inviter_id, joins, fake, leaves) \
           SELECT $1, $2, inviter_id, -joins, -fake, -leaves FROM d \
           ON CONFLICT (bot_id, guild_id, inviter_id) DO UPDATE SET \
             joins = ic.joins + excluded.joins, fake = ic.fake + excluded.fake, \
             leaves = ic.leaves + excluded.leaves) \
         SELECT count(*) AS n FROM c"
    } else {
        "WITH c AS ( \
           UPDATE joins SET cleared = FALSE, updated_at = now() \
           FROM reset_joins rj \
           WHERE rj.reset_id = $3 AND joins.id = rj.join_id \
             AND joins.bot_id = $1 AND joins.guild_id = $2 AND joins.cleared \
             AND ($4::BIGINT IS NULL OR joins.inviter_id = $4) \
           RETURNING joins.inviter_id, joins.fake, joins.has_left), \
         d AS ( \
           SELECT inviter_id, count(*) AS joins, count(*) FILTER (WHERE fake <> 0) AS fake, \
                  count(*) FILTER (WHERE fake = 0 AND has_left) AS leaves \
           FROM c WHERE inviter_id IS NOT NULL GROUP BY inviter_id), \
         u AS ( \
           INSERT INTO inviter_counts AS ic (bot_id, guild_id, inviter_id, joins, fake, leaves) \
           SELECT $1, $2, inviter_id, joins, fake, leaves FROM d \
           ON CONFLICT (bot_id, guild_id, inviter_id) DO UPDATE SET \
             joins = ic.joins + excluded.joins, fake = ic.fake + excluded.fake, \
             leaves = ic.leaves + excluded.leaves) \
         SELECT count(*) AS n FROM c"
    }
}

fn bonus_statement(clear: bool) -> String {
    let (set, filter, sign) = if clear {
        (
            "cleared = TRUE, cleared_by = $3",
            "NOT cleared AND ($4::BIGINT IS NULL OR inviter_id = $4)",
            "-",
        )
    } else {
        (
            "cleared = FALSE, cleared_by = NULL",
            "cleared_by = $3 AND ($4::BIGINT IS NULL OR inviter_id = $4)",
            "+",
        )
    };
    format!(
        "WITH c AS ( \
           UPDATE bonus_invites SET {set} \
           WHERE bot_id = $1 AND guild_id = $2 AND {filter} \
           RETURNING inviter_id, amount), \
         d AS (SELECT inviter_id, sum(amount)::BIGINT AS bonus FROM c GROUP BY inviter_id), \
         u AS ( \
           INSERT INTO inviter_counts AS ic (bot_id, guild_id, inviter_id, bonus) \
           SELECT $1, $2, inviter_id, {sign}bonus FROM d \
           ON CONFLICT (bot_id, guild_id, inviter_id) DO UPDATE SET \
             bonus = ic.bonus + excluded.bonus \
           RETURNING 1) \
         SELECT count(*) AS n FROM c"
    )
}

async fn change_cleared(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    reset_id: i64,
    inviter_id: Option<UserId>,
    clear: bool,
) -> Result<(i64, i64), StorageError> {
    let joins: Changed = diesel::sql_query(joins_statement(clear))
        .bind::<BigInt, _>(guild.bot_id)
        .bind::<BigInt, _>(guild.guild_id)
        .bind::<BigInt, _>(reset_id)
        .bind::<Nullable<BigInt>, _>(inviter_id)
        .get_result(conn)
        .await?;
    let bonus: Changed = diesel::sql_query(bonus_statement(clear))
        .bind::<BigInt, _>(guild.bot_id)
        .bind::<BigInt, _>(guild.guild_id)
        .bind::<BigInt, _>(reset_id)
        .bind::<Nullable<BigInt>, _>(inviter_id)
        .get_result(conn)
        .await?;
    Ok((joins.n, bonus.n))
}

/// Most attempts of a reset or restore that PostgreSQL aborted as a deadlock victim or a
/// serialization failure: both touch many rows the worker may be updating at the same time.
const MAX_ATTEMPTS: u32 = 5;

/// Whether a transaction failed only because of concurrent ones (SQLSTATE 40001 or 40P01), so
/// running it again can succeed. diesel has no kind for deadlocks; PostgreSQL's message for
/// 40P01 is "deadlock detected".
fn is_transient(error: &StorageError) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        StorageError::Query(Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => {
            true
        }
        StorageError::Query(Error::DatabaseError(_, info)) => {
            info.message().contains("deadlock detected")
        }
        _ => false,
    }
}

/// Evaluates the `attempt` future expression until it succeeds, fails for good, or
/// [`MAX_ATTEMPTS`] transient failures. A macro, not a function over an async closure: the
/// futures of async closures are not provably `Send` to rustc yet, and the bot runs these
/// writes in spawned tasks.
macro_rules! retrying {
    ($what:literal, $attempt:expr) => {{
        let mut tries = 1;
        loop {
            match $attempt.await {
                Err(error) if tries < MAX_ATTEMPTS && is_transient(&error) => {
                    tracing::warn!(what = $what, tries, error = %diesel_cause(&error), "retrying after a transient failure");
                    tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(tries))).await;
                    tries += 1;
                }
                result => break result,
            }
        }
    }};
}

fn diesel_cause(error: &StorageError) -> String {
    match error {
        StorageError::Query(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// Resets one inviter's counts (`Some`) or the whole guild's (`None`), softly: their joins and
/// bonus rows not yet cleared are marked cleared by a new reset, and the counters drop by what
/// those rows counted. [`restore`] undoes it. Retried when PostgreSQL aborts it because of
/// concurrent writes (deadlock, serialization failure), at most [`MAX_ATTEMPTS`] times.
///
/// # Errors
/// On database errors.
pub async fn reset(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    inviter_id: Option<UserId>,
    reason: &str,
    actor: &Actor<'_>,
) -> Result<ResetRow, StorageError> {
    retrying!("reset", reset_once(conn, guild, inviter_id, reason, actor))
}

async fn reset_once(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    inviter_id: Option<UserId>,
    reason: &str,
    actor: &Actor<'_>,
) -> Result<ResetRow, StorageError> {
    conn.transaction::<_, StorageError, _>(async |c| {
        let id: i64 = diesel::insert_into(resets::table)
            .values((
                resets::bot_id.eq(guild.bot_id),
                resets::guild_id.eq(guild.guild_id),
                resets::inviter_id.eq(inviter_id),
                resets::reason.eq(reason),
                resets::author.eq(actor.author),
                resets::key_id.eq(actor.key_id),
            ))
            .returning(resets::id)
            .get_result(c)
            .await?;
        let (joins, bonus) = change_cleared(c, guild, id, inviter_id, true).await?;
        let row: ResetRow = diesel::update(resets::table.find(id))
            .set((
                resets::joins_cleared.eq(joins),
                resets::bonus_cleared.eq(bonus),
            ))
            .returning(ResetRow::as_returning())
            .get_result(c)
            .await?;
        audit(
            c,
            guild,
            actor,
            "reset",
            json!({
                "reset_id": id,
                "inviter_id": inviter_id.map(|i| i.to_string()),
                "reason": reason,
                "joins_cleared": joins,
                "bonus_cleared": bonus,
            }),
        )
        .await?;
        Ok(row)
    })
    .await
}

/// Undoes a reset: the joins and bonus rows it cleared count again. Retried like [`reset`].
///
/// # Errors
/// On database errors.
pub async fn restore(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    reset_id: i64,
    reason: &str,
    actor: &Actor<'_>,
) -> Result<RestoreOutcome, StorageError> {
    retrying!(
        "restore",
        restore_once(conn, guild, reset_id, reason, actor)
    )
}

async fn restore_once(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    reset_id: i64,
    reason: &str,
    actor: &Actor<'_>,
) -> Result<RestoreOutcome, StorageError> {
    conn.transaction::<_, StorageError, _>(async |c| {
        let found: Option<ResetRow> = resets::table
            .find(reset_id)
            .filter(resets::bot_id.eq(guild.bot_id))
            .filter(resets::guild_id.eq(guild.guild_id))
            .select(ResetRow::as_select())
            .for_update()
            .first(c)
            .await
            .optional()?;
        let Some(found) = found else {
            return Ok(RestoreOutcome::NotFound);
        };
        if found.restored_at.is_some() {
            return Ok(RestoreOutcome::AlreadyRestored(found));
        }
        let (joins, bonus) = change_cleared(c, guild, reset_id, None, false).await?;
        let row: ResetRow = diesel::update(resets::table.find(reset_id))
            .set(resets::restored_at.eq(Some(Utc::now())))
            .returning(ResetRow::as_returning())
            .get_result(c)
            .await?;
        audit(
            c,
            guild,
            actor,
            "reset.restore",
            json!({
                "reset_id": reset_id,
                "inviter_id": row.inviter_id.map(|i| i.to_string()),
                "reason": reason,
                "joins_restored": joins,
                "bonus_restored": bonus,
            }),
        )
        .await?;
        Ok(RestoreOutcome::Restored(row))
    })
    .await
}

/// A guild's resets, newest first.
///
/// # Errors
/// On database errors.
pub async fn list_resets(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
) -> Result<Vec<ResetRow>, StorageError> {
    Ok(resets::table
        .filter(resets::bot_id.eq(guild.bot_id))
        .filter(resets::guild_id.eq(guild.guild_id))
        .order(resets::id.desc())
        .select(ResetRow::as_select())
        .load(conn)
        .await?)
}

/// A guild's settings: its fake rules, where the bot posts its join and leave messages, and
/// its message templates.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GuildSettings {
    pub fake: FakeSettings,
    pub join_log_channel_id: Option<ChannelId>,
    pub leave_log_channel_id: Option<ChannelId>,
    pub templates: Templates,
    /// Where `/invite link` creates members' invites (`None`: the command is off).
    pub invite_channel_id: Option<ChannelId>,
}

/// A `guild_settings` row: fake reasons, young-account days, log channels, templates, the
/// invite channel.
type SettingsRow = (
    FakeReasons,
    i32,
    Option<ChannelId>,
    Option<ChannelId>,
    serde_json::Value,
    Option<ChannelId>,
);

/// A guild's settings, the defaults when never set.
///
/// # Errors
/// On database errors, or stored templates that no longer parse.
pub async fn guild_settings(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
) -> Result<GuildSettings, StorageError> {
    use guild_settings::dsl as g;
    let row: Option<SettingsRow> = g::guild_settings
        .find((guild.bot_id, guild.guild_id))
        .select((
            g::fake_reasons,
            g::young_account_days,
            g::join_log_channel_id,
            g::leave_log_channel_id,
            g::templates,
            g::invite_channel_id,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((reasons, days, join_log, leave_log, templates, invite_channel)) = row else {
        return Ok(GuildSettings::default());
    };
    Ok(GuildSettings {
        fake: FakeSettings {
            enabled: reasons,
            young_account_days: days.cast_unsigned(),
        },
        join_log_channel_id: join_log,
        leave_log_channel_id: leave_log,
        templates: serde_json::from_value(templates)?,
        invite_channel_id: invite_channel,
    })
}

/// A change of a guild's settings: fake reasons to turn on and off, the young-account
/// threshold, log channels (`Some(None)` turns one off) and templates (`None` per kind goes
/// back to the default). Absent fields are unchanged.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SettingsChange {
    pub enable: FakeReasons,
    pub disable: FakeReasons,
    pub young_account_days: Option<u32>,
    pub join_log_channel_id: Option<Option<ChannelId>>,
    pub leave_log_channel_id: Option<Option<ChannelId>>,
    pub templates: Vec<(MessageKind, Option<Template>)>,
    pub invite_channel_id: Option<Option<ChannelId>>,
}

/// Applies a change to a guild's settings (fake rules are read by the worker for joins decided
/// from now on, channels and templates by the bot for messages from now on) and audits it, in
/// one transaction with the settings row locked, so two concurrent changes of different fields
/// both take effect.
///
/// # Errors
/// On database errors.
pub async fn update_settings(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    change: SettingsChange,
    actor: &Actor<'_>,
) -> Result<GuildSettings, StorageError> {
    conn.transaction::<_, StorageError, _>(async |c| {
        use guild_settings::dsl as g;
        // The row with the defaults if there is none, so there is always a row to lock.
        diesel::insert_into(g::guild_settings)
            .values((g::bot_id.eq(guild.bot_id), g::guild_id.eq(guild.guild_id)))
            .on_conflict_do_nothing()
            .execute(c)
            .await?;
        g::guild_settings
            .find((guild.bot_id, guild.guild_id))
            .select(g::bot_id)
            .for_update()
            .first::<invitrack_model::BotId>(c)
            .await?;
        let before = guild_settings(c, guild).await?;
        let mut after = before.clone();
        after.fake = FakeSettings {
            enabled: before
                .fake
                .enabled
                .union(change.enable)
                .without(change.disable),
            young_account_days: change
                .young_account_days
                .unwrap_or(before.fake.young_account_days),
        };
        if let Some(channel) = change.join_log_channel_id {
            after.join_log_channel_id = channel;
        }
        if let Some(channel) = change.leave_log_channel_id {
            after.leave_log_channel_id = channel;
        }
        if let Some(channel) = change.invite_channel_id {
            after.invite_channel_id = channel;
        }
        for (kind, template) in change.templates {
            match template {
                Some(template) => after.templates.set(kind, template),
                None => after.templates.reset(kind),
            };
        }
        diesel::update(g::guild_settings.find((guild.bot_id, guild.guild_id)))
            .set((
                g::fake_reasons.eq(after.fake.enabled),
                g::young_account_days.eq(after.fake.young_account_days.cast_signed()),
                g::join_log_channel_id.eq(after.join_log_channel_id),
                g::leave_log_channel_id.eq(after.leave_log_channel_id),
                g::templates.eq(serde_json::to_value(&after.templates)?),
                g::invite_channel_id.eq(after.invite_channel_id),
            ))
            .execute(c)
            .await?;
        audit(
            c,
            guild,
            actor,
            "settings.update",
            json!({
                "before": settings_json(&before)?,
                "after": settings_json(&after)?,
            }),
        )
        .await?;
        Ok(after)
    })
    .await
}

/// What the audit log keeps of a guild's settings.
fn settings_json(settings: &GuildSettings) -> Result<serde_json::Value, StorageError> {
    let channel = |c: Option<ChannelId>| c.map(|c| c.get().to_string());
    Ok(json!({
        "fake_reasons": settings.fake.enabled.bits(),
        "young_account_days": settings.fake.young_account_days,
        "join_log_channel_id": channel(settings.join_log_channel_id),
        "leave_log_channel_id": channel(settings.leave_log_channel_id),
        "invite_channel_id": channel(settings.invite_channel_id),
        "templates": serde_json::to_value(&settings.templates)?,
    }))
}

/// A guild's audit entries, newest first, `limit` of them with ids below `before` (paging).
///
/// # Errors
/// On database errors.
pub async fn audit_entries(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, StorageError> {
    Ok(audit_log::table
        .filter(audit_log::bot_id.eq(guild.bot_id))
        .filter(audit_log::guild_id.eq(guild.guild_id))
        .filter(audit_log::id.lt(before.unwrap_or(i64::MAX)))
        .order(audit_log::id.desc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
        .await?)
}
