//! Webhooks (`docs/webhooks.md`): the ones a guild's admins registered, and each event's
//! delivery to each of them, from its first attempt until it is delivered or given up.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Int4, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use crate::StorageError;
use crate::admin::{Actor, audit};
use crate::schema::{webhook_deliveries, webhooks};
use invitrack_model::GuildKey;

/// Webhooks one guild may have.
pub const MAX_WEBHOOKS_PER_GUILD: i64 = 10;

/// A registered webhook, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub author: String,
    pub created_at: DateTime<Utc>,
}

type WebhookColumns = (
    webhooks::id,
    webhooks::url,
    webhooks::events,
    webhooks::author,
    webhooks::created_at,
);
const WEBHOOK_COLUMNS: WebhookColumns = (
    webhooks::id,
    webhooks::url,
    webhooks::events,
    webhooks::author,
    webhooks::created_at,
);
type WebhookRow = (i64, String, Vec<Option<String>>, String, DateTime<Utc>);

impl From<WebhookRow> for Webhook {
    fn from((id, url, events, author, created_at): WebhookRow) -> Self {
        Self {
            id,
            url,
            events: events.into_iter().flatten().collect(),
            author,
            created_at,
        }
    }
}

/// What creating a webhook did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created(Webhook),
    /// The guild has [`MAX_WEBHOOKS_PER_GUILD`] already.
    TooMany,
}

/// Registers a webhook of `guild` (in the audit log too). `url` and `events` are checked by the
/// caller; `secret` is what the deliveries are signed with.
///
/// # Errors
/// On database errors.
pub async fn create(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    url: &str,
    events: &[&str],
    secret: &str,
    actor: &Actor<'_>,
) -> Result<Created, StorageError> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        // Serialises creations of one guild, so two at once cannot pass the limit.
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind::<diesel::sql_types::Integer, _>(WEBHOOK_LOCK_SPACE)
            .bind::<diesel::sql_types::Integer, _>(lock_key(guild))
            .execute(conn)
            .await?;
        let existing: i64 = webhooks::table
            .filter(webhooks::bot_id.eq(guild.bot_id))
            .filter(webhooks::guild_id.eq(guild.guild_id))
            .count()
            .get_result(conn)
            .await?;
        if existing >= MAX_WEBHOOKS_PER_GUILD {
            return Ok(Created::TooMany);
        }
        let row: WebhookRow = diesel::insert_into(webhooks::table)
            .values((
                webhooks::bot_id.eq(guild.bot_id),
                webhooks::guild_id.eq(guild.guild_id),
                webhooks::url.eq(url),
                webhooks::events.eq(events),
                webhooks::secret.eq(secret),
                webhooks::author.eq(actor.author),
                webhooks::key_id.eq(actor.key_id),
            ))
            .returning(WEBHOOK_COLUMNS)
            .get_result(conn)
            .await?;
        let webhook = Webhook::from(row);
        audit(
            conn,
            guild,
            actor,
            "webhook.create",
            json!({"webhook_id": webhook.id, "url": url, "events": events}),
        )
        .await?;
        Ok(Created::Created(webhook))
    })
    .await
}

/// The advisory lock space of webhook creations (any constant no other lock uses).
const WEBHOOK_LOCK_SPACE: i32 = 0x5748_4b53;

fn lock_key(guild: GuildKey) -> i32 {
    let id = guild.guild_id.get() ^ guild.bot_id.get();
    // Only spreads guilds over locks: a collision makes two guilds wait for each other.
    #[allow(clippy::cast_possible_truncation)]
    let folded = (id ^ (id >> 32)) as u32;
    folded.cast_signed()
}

/// How a webhook's deliveries stand.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryCounts {
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
}

/// A guild's webhooks, oldest first, with their deliveries' counts (of the deliveries kept:
/// `docs/webhooks.md#retention`).
///
/// # Errors
/// On database errors.
pub async fn list(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
) -> Result<Vec<(Webhook, DeliveryCounts)>, StorageError> {
    let rows: Vec<WebhookRow> = webhooks::table
        .filter(webhooks::bot_id.eq(guild.bot_id))
        .filter(webhooks::guild_id.eq(guild.guild_id))
        .order(webhooks::id)
        .select(WEBHOOK_COLUMNS)
        .load(conn)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
    let counted: Vec<(i64, String, i64)> = webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq_any(&ids))
        .group_by((webhook_deliveries::webhook_id, webhook_deliveries::status))
        .select((
            webhook_deliveries::webhook_id,
            webhook_deliveries::status,
            diesel::dsl::count_star(),
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut counts = DeliveryCounts::default();
            for (_, status, n) in counted.iter().filter(|(id, _, _)| *id == row.0) {
                match status.as_str() {
                    "pending" => counts.pending = *n,
                    "delivered" => counts.delivered = *n,
                    _ => counts.failed = *n,
                }
            }
            (Webhook::from(row), counts)
        })
        .collect())
}

/// Removes webhook `id` of `guild` and its deliveries (in the audit log too); `false` when the
/// guild has no such webhook.
///
/// # Errors
/// On database errors.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    id: i64,
    actor: &Actor<'_>,
) -> Result<bool, StorageError> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        let url: Option<String> = diesel::delete(
            webhooks::table
                .filter(webhooks::id.eq(id))
                .filter(webhooks::bot_id.eq(guild.bot_id))
                .filter(webhooks::guild_id.eq(guild.guild_id)),
        )
        .returning(webhooks::url)
        .get_result(conn)
        .await
        .optional()?;
        let Some(url) = url else {
            return Ok(false);
        };
        audit(
            conn,
            guild,
            actor,
            "webhook.delete",
            json!({"webhook_id": id, "url": url}),
        )
        .await?;
        Ok(true)
    })
    .await
}

/// Queues event `event_type` of decision `decision_id` for every webhook of `guild` that takes
/// it, with `body` as it will be sent. A decision queued before is not queued again. Returns
/// how many deliveries were queued.
///
/// # Errors
/// On database errors.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    decision_id: i64,
    event_type: &str,
    body: &str,
) -> Result<usize, StorageError> {
    Ok(crate::prepared::prepared(
        "INSERT INTO webhook_deliveries (decision_id, event_type, body, webhook_id) \
         SELECT e.decision_id, e.event_type, e.body, w.id \
         FROM (SELECT $1::int8 AS decision_id, $2::text AS event_type, $3::text AS body) e \
         JOIN webhooks w ON w.bot_id = $4 AND w.guild_id = $5 AND e.event_type = ANY(w.events) \
         ON CONFLICT (webhook_id, decision_id) DO NOTHING",
    )
    .bind::<BigInt, _>(decision_id)
    .bind::<Text, _>(event_type)
    .bind::<Text, _>(body)
    .bind::<BigInt, _>(guild.bot_id)
    .bind::<BigInt, _>(guild.guild_id)
    .execute(conn)
    .await?)
}

/// A delivery taken for an attempt.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct DueDelivery {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub webhook_id: i64,
    #[diesel(sql_type = BigInt)]
    pub decision_id: i64,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Text)]
    pub secret: String,
    #[diesel(sql_type = Text)]
    pub body: String,
    /// This attempt's number, from 1.
    #[diesel(sql_type = Int4)]
    pub attempt: i32,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

/// Takes up to `limit` deliveries that are due, oldest first, for one attempt each: their
/// `next_attempt_at` moves `lease_ms` ahead, so no other sender takes them meanwhile, and a
/// sender that dies mid-attempt leaves them to be taken again then.
///
/// # Errors
/// On database errors.
pub async fn take_due(
    conn: &mut AsyncPgConnection,
    limit: i64,
    lease_ms: i64,
) -> Result<Vec<DueDelivery>, StorageError> {
    Ok(crate::prepared::prepared(
        "UPDATE webhook_deliveries d \
         SET attempts = d.attempts + 1, \
             next_attempt_at = now() + $1 * interval '1 millisecond' \
         FROM webhooks w \
         WHERE w.id = d.webhook_id AND d.id IN ( \
           SELECT id FROM webhook_deliveries \
           WHERE status = 'pending' AND next_attempt_at <= now() \
           ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING d.id, d.webhook_id, d.decision_id, d.event_type, w.url, w.secret, d.body, \
           d.attempts AS attempt, d.created_at",
    )
    .bind::<BigInt, _>(lease_ms)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered 2xx.
    Delivered { status: i32 },
    /// Another answer, or none (`status` `None`): again at `retry_at`, or never (`None`: given
    /// up, a failed delivery).
    NotDelivered {
        status: Option<i32>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

/// Records how delivery `id`'s attempt ended.
///
/// # Errors
/// On database errors.
pub async fn record_attempt(
    conn: &mut AsyncPgConnection,
    id: i64,
    attempt: &Attempt,
) -> Result<(), StorageError> {
    let target = webhook_deliveries::table.find(id);
    match attempt {
        Attempt::Delivered { status } => {
            diesel::update(target)
                .set((
                    webhook_deliveries::status.eq("delivered"),
                    webhook_deliveries::last_status.eq(status),
                    webhook_deliveries::last_error.eq(None::<String>),
                    webhook_deliveries::finished_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
        }
        Attempt::NotDelivered {
            status,
            error,
            retry_at: Some(at),
        } => {
            diesel::update(target)
                .set((
                    webhook_deliveries::last_status.eq(status),
                    webhook_deliveries::last_error.eq(error),
                    webhook_deliveries::next_attempt_at.eq(at),
                ))
                .execute(conn)
                .await?;
        }
        Attempt::NotDelivered {
            status,
            error,
            retry_at: None,
        } => {
            diesel::update(target)
                .set((
                    webhook_deliveries::status.eq("failed"),
                    webhook_deliveries::last_status.eq(status),
                    webhook_deliveries::last_error.eq(error),
                    webhook_deliveries::finished_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

/// One delivery, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Delivery {
    pub id: i64,
    pub decision_id: i64,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Webhook `webhook_id`'s deliveries (of `guild`, else none), newest first, with `status` if
/// given, at most `limit`, older than delivery `before` if given.
///
/// # Errors
/// On database errors.
pub async fn deliveries(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    webhook_id: i64,
    status: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>, StorageError> {
    let mut query = webhook_deliveries::table
        .inner_join(webhooks::table)
        .filter(webhooks::id.eq(webhook_id))
        .filter(webhooks::bot_id.eq(guild.bot_id))
        .filter(webhooks::guild_id.eq(guild.guild_id))
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(webhook_deliveries::status.eq(status));
    }
    if let Some(before) = before {
        query = query.filter(webhook_deliveries::id.lt(before));
    }
    Ok(query
        .order(webhook_deliveries::id.desc())
        .limit(limit)
        .select((
            webhook_deliveries::id,
            webhook_deliveries::decision_id,
            webhook_deliveries::event_type,
            webhook_deliveries::status,
            webhook_deliveries::attempts,
            webhook_deliveries::next_attempt_at,
            webhook_deliveries::last_status,
            webhook_deliveries::last_error,
            webhook_deliveries::created_at,
            webhook_deliveries::finished_at,
        ))
        .load(conn)
        .await?)
}

/// Whether webhook `webhook_id` belongs to `guild`.
///
/// # Errors
/// On database errors.
pub async fn exists(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    webhook_id: i64,
) -> Result<bool, StorageError> {
    Ok(diesel::select(diesel::dsl::exists(
        webhooks::table
            .filter(webhooks::id.eq(webhook_id))
            .filter(webhooks::bot_id.eq(guild.bot_id))
            .filter(webhooks::guild_id.eq(guild.guild_id)),
    ))
    .get_result(conn)
    .await?)
}

/// Deletes delivered deliveries finished before `delivered_before` and failed ones finished
/// before `failed_before`; returns how many.
///
/// # Errors
/// On database errors.
pub async fn prune(
    conn: &mut AsyncPgConnection,
    delivered_before: DateTime<Utc>,
    failed_before: DateTime<Utc>,
) -> Result<usize, StorageError> {
    Ok(crate::prepared::prepared(
        "DELETE FROM webhook_deliveries \
         WHERE (status = 'delivered' AND finished_at < $1) \
            OR (status = 'failed' AND finished_at < $2)",
    )
    .bind::<Timestamptz, _>(delivered_before)
    .bind::<Timestamptz, _>(failed_before)
    .execute(conn)
    .await?)
}

/// The count of deliveries waiting (due now or later).
///
/// # Errors
/// On database errors.
pub async fn pending_count(conn: &mut AsyncPgConnection) -> Result<i64, StorageError> {
    Ok(webhook_deliveries::table
        .filter(webhook_deliveries::status.eq("pending"))
        .count()
        .get_result(conn)
        .await?)
}
