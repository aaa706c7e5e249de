//! Discord's OAuth2 endpoints, for a dashboard's "Login with Discord" (authorization code
//! grant), as `developers/topics/oauth2.mdx` documents them:
//!
//! - `GET /oauth2/authorize` (at the root, as on discord.com, and under `/api/v10` and
//!   `/api`): no consent screen; the user signed in through the control API answers at once
//!   (302 to the redirect URI with a `code`, or an error page).
//! - `POST /oauth2/token`, `POST /oauth2/token/revoke` (under `/api/v10` and `/api`):
//!   `application/x-www-form-urlencoded` only, client credentials by HTTP Basic or in the
//!   body; errors are RFC 6749's `{"error", "error_description"}`.
//! - Bearer requests: `GET /users/@me` (in `rest.rs`, beside the bot's), `GET
//!   /users/@me/guilds` (also with the bot token), `GET /oauth2/@me`.
//!
//! The decisions are the world's (`world/oauth2.rs`); the parsing is `oauth2_form.rs`.

use crate::{
    oauth2_form::{self, ClientCredentials},
    ratelimit::Route,
    rest::{self, ApiError},
    world::{AuthorizeRequest, Authorized, GuildsPage, OAuth2Error, State, World},
};
use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use std::collections::HashMap;

/// Mounts the OAuth2 routes on an API scope (`/api/v10` or `/api`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth2/authorize", web::get().to(authorize))
        .route("/oauth2/token", web::post().to(token))
        .route("/oauth2/token/revoke", web::post().to(revoke))
        .route("/oauth2/@me", web::get().to(authorization_info));
}

/// The unversioned `/api` scope: only the OAuth2 routes (Discord's documented token URLs
/// are `https://discord.com/api/oauth2/token` and `.../token/revoke`).
pub fn configure_unversioned(cfg: &mut web::ServiceConfig) {
    configure(cfg);
    cfg.default_service(web::to(rest::not_found));
}

/// The token of an `Authorization: Bearer …` header.
pub(crate) fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// A Bearer request: the `oauth2_bearer` route's faults and bucket (per token), then `f`
/// under the state lock.
pub(crate) async fn bearer_answer(
    world: &World,
    token: &str,
    f: impl FnOnce(&State, &str) -> Result<String, crate::WorldError>,
) -> HttpResponse {
    rest::answer_unauthenticated(world, Route::OAuth2Bearer, rest::token_major(token), |s| {
        rest::ok(f(s, token)?)
    })
    .await
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An error page of the authorization screen (no redirect).
fn error_page(message: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><title>Discord</title><h1>Authorization failed</h1><p>{}</p>",
            escape_html(message)
        ))
}

/// `GET /oauth2/authorize`.
pub async fn authorize(req: HttpRequest, world: web::Data<World>) -> HttpResponse {
    let params = match oauth2_form::parse_params(req.query_string().as_bytes()) {
        Ok(params) => params,
        Err(e) => return error_page(&format!("Invalid OAuth2 request: {e}")),
    };
    let request = AuthorizeRequest {
        client_id: params.get("client_id").cloned(),
        redirect_uri: params.get("redirect_uri").cloned(),
        response_type: params.get("response_type").cloned(),
        scope: params.get("scope").cloned(),
        state: params.get("state").cloned(),
    };
    let outcome = world.lock().oauth2_authorize(request);
    match outcome {
        Authorized::Redirect(url) => HttpResponse::Found()
            .insert_header((header::LOCATION, url))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Authorized::Page(message) => error_page(&message),
    }
}

/// The parameters and client of a token or revocation request, or its error.
fn token_request(
    req: &HttpRequest,
    body: &[u8],
) -> Result<(Option<ClientCredentials>, HashMap<String, String>), OAuth2Error> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(OAuth2Error::InvalidRequest(
            "the token endpoints only accept application/x-www-form-urlencoded".into(),
        ));
    }
    let params = oauth2_form::parse_params(body).map_err(OAuth2Error::InvalidRequest)?;
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let client = oauth2_form::client_credentials(authorization, &params)
        .map_err(OAuth2Error::InvalidRequest)?;
    Ok((client, params))
}

/// A token endpoint's answer: JSON, never cached (RFC 6749 §5.1).
async fn token_answer(
    world: &World,
    f: impl FnOnce(&mut State) -> Result<serde_json::Value, OAuth2Error>,
) -> HttpResponse {
    let mut res = rest::answer_unauthenticated(world, Route::OAuth2Token, 0, |s| {
        let (status, body) = match f(s) {
            Ok(body) => (StatusCode::OK, body),
            Err(e) => (
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
                e.body(),
            ),
        };
        Ok((status, Some(body.to_string())))
    })
    .await;
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res.headers_mut()
        .insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    res
}

/// `POST /oauth2/token`.
async fn token(req: HttpRequest, body: web::Bytes, world: web::Data<World>) -> HttpResponse {
    let request = token_request(&req, &body);
    token_answer(&world, |s| {
        let (client, params) = request?;
        let answer = s.oauth2_token(client, &params)?;
        serde_json::to_value(answer).map_err(|e| OAuth2Error::InvalidRequest(e.to_string()))
    })
    .await
}

/// `POST /oauth2/token/revoke`: 200 `{}`, also for a token that is not (or no longer) valid
/// (RFC 7009 §2.2).
async fn revoke(req: HttpRequest, body: web::Bytes, world: web::Data<World>) -> HttpResponse {
    let request = token_request(&req, &body);
    token_answer(&world, |s| {
        let (client, params) = request?;
        s.oauth2_revoke(client, &params)?;
        Ok(serde_json::json!({}))
    })
    .await
}

/// `GET /oauth2/@me` (Bearer only).
async fn authorization_info(req: HttpRequest, world: web::Data<World>) -> HttpResponse {
    match bearer_token(&req) {
        Some(token) => {
            bearer_answer(&world, &token, |s, token| {
                s.rest_oauth2_authorization(token)
            })
            .await
        }
        None => rest::reject(
            &world,
            Route::OAuth2Bearer,
            0,
            ApiError::new(StatusCode::UNAUTHORIZED, "401: Unauthorized", 0),
        ),
    }
}

/// `GET /users/@me/guilds`'s query string, checked as Discord checks it.
fn guilds_page(query: &str) -> Result<GuildsPage, ApiError> {
    let params = oauth2_form::parse_params(query.as_bytes())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e, 50035))?;
    let snowflake = |name: &str| -> Result<Option<u64>, ApiError> {
        params
            .get(name)
            .map(|raw| {
                raw.parse::<u64>().map_err(|_| {
                    ApiError::form(
                        name,
                        "NUMBER_TYPE_COERCE",
                        &format!("Value \"{raw}\" is not snowflake."),
                    )
                })
            })
            .transpose()
    };
    let limit = match params.get("limit") {
        None => crate::MAX_USER_GUILDS,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if n < 1 => {
                return Err(ApiError::form(
                    "limit",
                    "NUMBER_TYPE_MIN",
                    "int value should be greater than or equal to 1.",
                ));
            }
            Ok(n) if n > 200 => {
                return Err(ApiError::form(
                    "limit",
                    "NUMBER_TYPE_MAX",
                    "int value should be less than or equal to 200.",
                ));
            }
            Ok(n) => usize::try_from(n).unwrap_or(crate::MAX_USER_GUILDS),
            Err(_) => {
                return Err(ApiError::form(
                    "limit",
                    "NUMBER_TYPE_COERCE",
                    &format!("Value \"{raw}\" is not int."),
                ));
            }
        },
    };
    // Discord's boolean query strings: `true`/`True`/`1`, `false`/`False`/`0`.
    let with_counts = match params.get("with_counts").map(String::as_str) {
        None | Some("false" | "False" | "0") => false,
        Some("true" | "True" | "1") => true,
        Some(raw) => {
            return Err(ApiError::form(
                "with_counts",
                "BOOLEAN_TYPE_COERCE",
                &format!("Value \"{raw}\" is not a valid boolean."),
            ));
        }
    };
    Ok(GuildsPage {
        before: snowflake("before")?,
        after: snowflake("after")?,
        limit,
        with_counts,
    })
}

/// `GET /users/@me/guilds`: the user's guilds with a Bearer token (`guilds` scope), the
/// bot's with the bot token.
pub async fn current_user_guilds(req: HttpRequest, world: web::Data<World>) -> HttpResponse {
    let bearer = bearer_token(&req);
    let (route, major) = match &bearer {
        Some(token) => (Route::OAuth2Bearer, rest::token_major(token)),
        None => (Route::CurrentUserGuilds, 0),
    };
    let page = match guilds_page(req.query_string()) {
        Ok(page) => page,
        Err(e) => return rest::reject(&world, route, major, e),
    };
    match bearer {
        Some(token) => {
            bearer_answer(&world, &token, |s, token| {
                s.rest_oauth2_user_guilds(token, page)
            })
            .await
        }
        None => {
            rest::answer(&req, &world, route, 0, |s| {
                rest::ok(s.rest_bot_guilds(page)?)
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guilds_query_is_checked_as_discord_checks_it() {
        let page = guilds_page("limit=2&after=10&with_counts=true").unwrap_or(GuildsPage {
            before: None,
            after: None,
            limit: 0,
            with_counts: false,
        });
        assert_eq!(
            page,
            GuildsPage {
                before: None,
                after: Some(10),
                limit: 2,
                with_counts: true
            }
        );
        assert_eq!(guilds_page("").map(|p| p.limit).ok(), Some(200));
        for bad in [
            "limit=0",
            "limit=201",
            "limit=x",
            "before=abc",
            "with_counts=yes",
        ] {
            assert!(guilds_page(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
