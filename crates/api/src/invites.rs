//! The InviteLogger-compatible endpoints (`docs/counting.md#invitelogger-endpoints`).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use invitrack_model::GuildKey;
use invitrack_storage::counts;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::openapi_parts::{CodeQuery, CommonErrors, UserQuery};
use crate::params::{BodyBytes, Params};

/// `{total, leaves, fake, bonus, real}` for one inviter.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserInvites {
    pub total: i64,
    pub leaves: i64,
    pub fake: i64,
    pub bonus: i64,
    pub real: i64,
}

/// One member invited through a code.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodeMember {
    pub created_at: String,
    pub updated_at: String,
    pub member_id: String,
    pub fake: bool,
    pub left: bool,
    pub cleared: bool,
}

/// InviteLogger's timestamps: milliseconds and a `Z`, e.g. `2020-08-04T08:14:37.000Z`.
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An inviter's counts (InviteLogger's `GET /v1/invites/user`). The parameters may also come
/// as a JSON body (`{"bot_id": "...", ...}`), as InviteLogger documents them.
#[utoipa::path(
    get,
    path = "/v1/invites/user",
    tag = "invitelogger",
    params(
        UserQuery,
    ),
    responses((status = 200, description = "the inviter's counts", body = UserInvites), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id, inviter_id))]
pub async fn user(
    caller: Caller,
    req: HttpRequest,
    BodyBytes(body): BodyBytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let guild = GuildKey::new(params.snowflake("bot_id")?, params.snowflake("guild_id")?);
    let inviter_id = params.snowflake("inviter_id")?;
    caller.may_read(guild)?;
    let c = match state
        .counts
        .as_ref()
        .map(|cache| cache.get_counts(guild, inviter_id))
    {
        Some(Ok(cached)) => cached,
        miss => {
            let mut conn = state.connection().await?;
            let c = counts::inviter_counts(&mut conn, guild, inviter_id).await?;
            if let (Some(cache), Some(Err(Some(ticket)))) = (&state.counts, miss) {
                cache.put_counts(ticket, guild, inviter_id, c);
            }
            c
        }
    };
    Ok(HttpResponse::Ok().json(UserInvites {
        total: c.total(),
        leaves: c.leaves,
        fake: c.fake,
        bonus: c.bonus,
        real: c.real(),
    }))
}

/// The members who joined through a code (InviteLogger's `GET /v1/invites/code`), oldest
/// first. The parameters may also come as a JSON body.
#[utoipa::path(
    get,
    path = "/v1/invites/code",
    tag = "invitelogger",
    params(
        CodeQuery,
    ),
    responses((status = 200, description = "the joins through this code", body = Vec<CodeMember>), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id, invite_code))]
pub async fn code(
    caller: Caller,
    req: HttpRequest,
    BodyBytes(body): BodyBytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let guild = GuildKey::new(params.snowflake("bot_id")?, params.snowflake("guild_id")?);
    let invite_code = params.invite_code("invite_code")?;
    caller.may_read(guild)?;
    let mut conn = state.connection().await?;
    let rows = counts::joins_by_code(&mut conn, guild, &invite_code).await?;
    let members: Vec<CodeMember> = rows
        .into_iter()
        .map(|row| CodeMember {
            created_at: timestamp(row.created_at),
            updated_at: timestamp(row.updated_at),
            member_id: row.member_id.to_string(),
            fake: row.fake.is_fake(),
            left: row.has_left,
            cleared: row.cleared,
        })
        .collect();
    Ok(HttpResponse::Ok().json(members))
}
