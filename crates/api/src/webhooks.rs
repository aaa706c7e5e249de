//! A guild's webhooks (`docs/webhooks.md`): register one (its secret is shown once), list them
//! with how their deliveries stand, remove one, and read its deliveries, failed ones included.

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse, web};
use invitrack_storage::webhooks::{self as queries, Created, Delivery, DeliveryCounts, Webhook};
use invitrack_webhooks::{EventType, MAX_URL_LEN, WebhookUrl};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::admin::{AUTHOR_MAX, actor};
use crate::auth::{Caller, GuildPath};
use crate::error::ApiError;
use crate::openapi_parts::{
    CommonErrors, ConflictError, GuildParams, NotFoundError, WebhookParams,
};
use crate::params::{Body, BodyBytes, Params, path_id};

/// Body of `POST .../webhooks`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct NewWebhook {
    /// `http` or `https`, at most 2048 characters; a private, loopback or link-local host is
    /// refused unless the deployment sets `WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true`.
    #[schema(example = "https://example.com/invitrack")]
    url: String,
    /// Any of `member.join`, `member.leave`; at least one.
    #[schema(example = json!(["member.join", "member.leave"]))]
    events: Vec<String>,
    /// 1 to 100 characters: who registers it (for the audit log).
    author: String,
}

/// A webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub author: String,
    pub created_at: String,
    /// Deliveries kept (delivered: 7 days, failed: 30 days) by status.
    pub deliveries: DeliveryCountsView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryCountsView {
    /// Not delivered yet, still being retried.
    pub pending: i64,
    pub delivered: i64,
    /// Given up after a day of retries.
    pub failed: i64,
}

impl From<DeliveryCounts> for DeliveryCountsView {
    fn from(c: DeliveryCounts) -> Self {
        Self {
            pending: c.pending,
            delivered: c.delivered,
            failed: c.failed,
        }
    }
}

impl WebhookView {
    fn new(webhook: Webhook, counts: DeliveryCounts) -> Self {
        Self {
            id: webhook.id,
            url: webhook.url,
            events: webhook.events,
            author: webhook.author,
            created_at: webhook.created_at.to_rfc3339(),
            deliveries: counts.into(),
        }
    }
}

/// A webhook just registered, with its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The key of each delivery's `Invitrack-Signature`. Shown only now: keep it.
    pub secret: String,
}

/// A guild's webhooks.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// Registers a webhook: from now on each of its events is POSTed to `url`, signed with the
/// secret in the answer (`Invitrack-Signature`), and retried with backoff for a day. At most 10
/// per guild.
#[utoipa::path(
    post,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/webhooks",
    tag = "admin",
    params(GuildParams),
    request_body = NewWebhook,
    responses(
        (status = 201, description = "registered", body = CreatedWebhook),
        ConflictError,
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn create(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    BodyBytes(body): BodyBytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let body = Body::parse(&req, &body)?;
    let raw_url = body.required_text("url", MAX_URL_LEN)?;
    let url = WebhookUrl::parse(&raw_url, state.webhooks_allow_private_networks).map_err(|e| {
        ApiError::InvalidParameter {
            name: "url",
            problem: e.to_string(),
        }
    })?;
    let events = events(body.value("events"))?;
    let author = body.required_text("author", AUTHOR_MAX)?;
    let secret = invitrack_webhooks::signature::new_secret();
    let mut conn = state.connection().await?;
    let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    match queries::create(
        &mut conn,
        guild.key(),
        url.as_str(),
        &names,
        &secret,
        &actor(&caller, &author),
    )
    .await?
    {
        Created::Created(webhook) => Ok(HttpResponse::Created().json(CreatedWebhook {
            webhook: WebhookView::new(webhook, DeliveryCounts::default()),
            secret,
        })),
        Created::TooMany => Err(ApiError::Conflict {
            code: "too_many_webhooks",
            message: "this guild has 10 webhooks already: remove one first",
        }),
    }
}

/// `events`: a non-empty array of known event names, each once.
fn events(value: Option<&Value>) -> Result<BTreeSet<EventType>, ApiError> {
    let invalid = |problem: String| ApiError::InvalidParameter {
        name: "events",
        problem,
    };
    let known = || {
        EventType::ALL
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(value) = value else {
        return Err(ApiError::MissingParameter("events"));
    };
    let Value::Array(items) = value else {
        return Err(invalid(format!("must be an array of {}", known())));
    };
    let mut events = BTreeSet::new();
    for item in items {
        let event = item
            .as_str()
            .and_then(EventType::from_name)
            .ok_or_else(|| invalid(format!("{item} is not one of {}", known())))?;
        events.insert(event);
    }
    if events.is_empty() {
        return Err(invalid(format!("must name at least one of {}", known())));
    }
    Ok(events)
}

/// A guild's webhooks, oldest first, with their deliveries by status (admin keys only: URLs may
/// carry tokens).
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/webhooks",
    tag = "admin",
    params(GuildParams),
    responses((status = 200, description = "the webhooks", body = WebhookList), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn list(
    caller: Caller,
    guild: GuildPath,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let mut conn = state.connection().await?;
    let webhooks = queries::list(&mut conn, guild.key()).await?;
    Ok(HttpResponse::Ok().json(WebhookList {
        webhooks: webhooks
            .into_iter()
            .map(|(webhook, counts)| WebhookView::new(webhook, counts))
            .collect(),
    }))
}

/// Removes a webhook and its deliveries: nothing more is sent to it. `author` (1 to 100
/// characters, for the audit log) is a query parameter.
#[utoipa::path(
    delete,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/webhooks/{webhook_id}",
    tag = "admin",
    params(
        WebhookParams,
        ("author" = String, Query, description = "who removes it, for the audit log")
    ),
    responses(
        (status = 204, description = "removed"),
        NotFoundError,
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id, webhook_id))]
pub async fn delete(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let id = path_id(&req, "webhook_id")?;
    tracing::Span::current().record("webhook_id", id);
    let author = Body::from_query(&req)?.required_text("author", AUTHOR_MAX)?;
    let mut conn = state.connection().await?;
    if queries::delete(&mut conn, guild.key(), id, &actor(&caller, &author)).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(webhook_not_found())
    }
}

fn webhook_not_found() -> ApiError {
    ApiError::NotFound {
        code: "webhook_not_found",
        what: "webhook",
    }
}

/// One delivery of an event to a webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    /// The event's id (`Invitrack-Delivery`): the decision's.
    pub event_id: String,
    /// `member.join` or `member.leave`.
    pub event: String,
    /// `pending` (being retried), `delivered` or `failed` (given up).
    pub status: String,
    pub attempts: i32,
    /// When it is tried next, while pending.
    pub next_attempt_at: Option<String>,
    /// The receiver's HTTP status at the last attempt; `null` when it did not answer.
    pub last_status: Option<i32>,
    /// What went wrong at the last attempt.
    pub last_error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            event_id: d.decision_id.to_string(),
            event: d.event_type,
            next_attempt_at: (d.status == "pending").then(|| d.next_attempt_at.to_rfc3339()),
            status: d.status,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at.to_rfc3339(),
            finished_at: d.finished_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next_before: Option<i64>,
}

/// A webhook's deliveries, newest first: what was sent, what is being retried and what was given
/// up, with the receiver's last answer.
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/webhooks/{webhook_id}/deliveries",
    tag = "admin",
    params(
        WebhookParams,
        ("status" = Option<String>, Query, description = "`pending`, `delivered` or `failed`"),
        ("before" = Option<i64>, Query, description = "only deliveries with a smaller id"),
        ("limit" = Option<i64>, Query, description = "1 to 100, default 50"),
    ),
    responses(
        (status = 200, description = "the deliveries", body = DeliveryList),
        NotFoundError,
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id, webhook_id))]
pub async fn deliveries(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let id = path_id(&req, "webhook_id")?;
    tracing::Span::current().record("webhook_id", id);
    let params = Params::from_query(&req)?;
    let status = params.choice(
        "status",
        &[
            ("pending", Some("pending")),
            ("delivered", Some("delivered")),
            ("failed", Some("failed")),
        ],
        None,
    )?;
    let before = params.integer("before", 1, i64::MAX, i64::MAX)?;
    let limit = params.integer("limit", 1, 100, 50)?;
    let mut conn = state.connection().await?;
    if !queries::exists(&mut conn, guild.key(), id).await? {
        return Err(webhook_not_found());
    }
    let rows = queries::deliveries(&mut conn, guild.key(), id, status, Some(before), limit).await?;
    let next_before = (rows.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| rows.last().map(|d| d.id))
        .flatten();
    Ok(HttpResponse::Ok().json(DeliveryList {
        deliveries: rows.into_iter().map(Into::into).collect(),
        next_before,
    }))
}
