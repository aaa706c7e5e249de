//! One request to Discord's member search, `POST /guilds/{guild_id}/members-search`
//! (`docs/discord-members-search.md`): which of up to ten members it finds, and how each
//! joined. The route is undocumented, so every answer outside what the note describes is an
//! error that says so, never a guess.

use std::time::Duration;

use invitrack_bus::proto;
use invitrack_discord::{DiscordGate, GateError};
use invitrack_model::{GuildId, UserId};
use serde::Deserialize;
use twilight_http::Client;
use twilight_http::api_error::ApiError;
use twilight_http::error::ErrorType;
use twilight_http::request::{Method, Request, RequestBuilder};

/// Discord takes at most ten values per query array.
pub(crate) const MAX_MEMBERS_PER_SEARCH: usize = 10;
/// `retry_after` of a 202 is waited, within these bounds; 5 s when Discord says 0 or nothing
/// (`docs/discord-members-search.md`). A guild that stays unindexed is asked every ten minutes.
const DEFAULT_INDEX_WAIT: Duration = Duration::from_secs(5);
const MIN_INDEX_WAIT: Duration = Duration::from_secs(1);
const MAX_INDEX_WAIT: Duration = Duration::from_secs(600);

/// What one search came to.
#[derive(Debug)]
pub(crate) enum SearchAnswer {
    /// The members found (those not found are not searchable yet).
    Found(Vec<proto::ReportedJoin>),
    /// 202: the guild is being indexed; ask again after this.
    Indexing(Duration),
}

/// Why a search gave no answer, by what ingest does about it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SearchError {
    /// 403, or 404 `10004`: this guild refuses; ask nothing more of it for a while.
    #[error("Discord refused the member search in this guild ({status}: {detail})")]
    GuildRefused { status: u16, detail: String },
    /// 400, or a 404 that is not about the guild: our request no longer matches the route (or
    /// the route is gone); the same request is sent for every guild, so stop asking at all.
    #[error("Discord no longer takes the member search as ingest sends it ({status}: {detail})")]
    RouteRefused { status: u16, detail: String },
    /// 401: the gate stopped every request.
    #[error("the bot token was refused")]
    InvalidToken,
    /// 429, 5xx, the gate's ceiling, a timeout, an answer not in the documented shape: ask
    /// again later.
    #[error("member search failed for now: {0}")]
    Transient(String),
}

#[derive(serde::Serialize)]
struct Body<'a> {
    limit: usize,
    and_query: AndQuery<'a>,
}

#[derive(serde::Serialize)]
struct AndQuery<'a> {
    user_id: OrQuery<'a>,
}

#[derive(serde::Serialize)]
struct OrQuery<'a> {
    or_query: &'a [String],
}

#[derive(Deserialize)]
struct Found {
    members: Vec<FoundMember>,
}

#[derive(Deserialize)]
struct FoundMember {
    member: Member,
    #[serde(default)]
    join_source_type: Option<u32>,
    #[serde(default)]
    source_invite_code: Option<String>,
    #[serde(default)]
    inviter_id: Option<String>,
}

#[derive(Deserialize)]
struct Member {
    user: User,
    joined_at: String,
}

#[derive(Deserialize)]
struct User {
    id: String,
}

#[derive(Deserialize)]
struct NotIndexed {
    #[serde(default)]
    retry_after: Option<f64>,
}

/// Asks how `users` (at most [`MAX_MEMBERS_PER_SEARCH`]) joined `guild_id`. The request must
/// already be admitted by `gate`.
pub(crate) async fn search(
    http: &Client,
    gate: &DiscordGate,
    guild_id: GuildId,
    users: &[UserId],
) -> Result<SearchAnswer, SearchError> {
    let ids: Vec<String> = users
        .iter()
        .take(MAX_MEMBERS_PER_SEARCH)
        .map(ToString::to_string)
        .collect();
    let request = request(guild_id, &ids)?;
    let response = gate
        .send(http.request::<serde_json::Value>(request))
        .await
        .map_err(classify)?;
    let status = response.status().get();
    let body = response
        .bytes()
        .await
        .map_err(|e| SearchError::Transient(format!("reading the answer: {e}")))?;
    if status == 202 {
        let wait = serde_json::from_slice::<NotIndexed>(&body)
            .ok()
            .and_then(|n| n.retry_after)
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(DEFAULT_INDEX_WAIT, Duration::from_secs_f64);
        return Ok(SearchAnswer::Indexing(
            wait.clamp(MIN_INDEX_WAIT, MAX_INDEX_WAIT),
        ));
    }
    let found: Found = serde_json::from_slice(&body).map_err(|e| {
        SearchError::Transient(format!("an answer not in the documented shape: {e}"))
    })?;
    Ok(SearchAnswer::Found(
        found
            .members
            .into_iter()
            .filter_map(reported_join)
            .filter(|r| users.iter().any(|u| u.get() == r.user_id))
            .collect(),
    ))
}

/// twilight-http has no route for the undocumented search: a raw request, authorised with
/// the bot token and rate limited by twilight under its path like any other.
fn request(guild_id: GuildId, ids: &[String]) -> Result<Request, SearchError> {
    RequestBuilder::raw(Method::Post, format!("guilds/{guild_id}/members-search"))
        .json(&Body {
            limit: ids.len().max(1),
            and_query: AndQuery {
                user_id: OrQuery { or_query: ids },
            },
        })
        .build()
        .map_err(|e| SearchError::Transient(format!("building the request: {e}")))
}

/// A found member as the bus carries it; `None` when its ids or time are unreadable.
fn reported_join(found: FoundMember) -> Option<proto::ReportedJoin> {
    let user_id = found.member.user.id.parse::<u64>().ok()?;
    let joined_at = chrono::DateTime::parse_from_rfc3339(&found.member.joined_at).ok()?;
    Some(proto::ReportedJoin {
        user_id,
        joined_at_ms: joined_at.timestamp_millis(),
        join_source_type: found.join_source_type.unwrap_or(0),
        source_invite_code: found.source_invite_code.unwrap_or_default(),
        inviter_id: found.inviter_id.and_then(|id| id.parse().ok()).unwrap_or(0),
    })
}

fn classify(error: GateError) -> SearchError {
    match error {
        GateError::InvalidToken => SearchError::InvalidToken,
        GateError::Http(http) => {
            let status = invitrack_discord::status_of(&http);
            let (code, message) = match http.kind() {
                ErrorType::Response {
                    error: ApiError::General(general),
                    ..
                } => (Some(general.code), general.message.clone()),
                _ => (None, http.to_string()),
            };
            match (status, code) {
                (Some(401), _) => SearchError::InvalidToken,
                (Some(403), _) | (Some(404), Some(10_004)) => SearchError::GuildRefused {
                    status: status.unwrap_or(0),
                    detail: message,
                },
                (Some(status @ (400 | 404 | 405)), _) => SearchError::RouteRefused {
                    status,
                    detail: message,
                },
                _ => SearchError::Transient(message),
            }
        }
        other => SearchError::Transient(other.to_string()),
    }
}
