//! "Login with Discord" for the dashboard (`docs/dashboard.md#login`): Discord's OAuth2
//! authorization code flow with a `state` bound to the browser by a cookie, scopes `identify
//! guilds`. The user gets a session (an HttpOnly, SameSite cookie) for the guilds where they
//! have Manage Server and the bot is present; writes also need the session's CSRF token. The
//! Discord token is revoked as soon as the guilds are read: invitrack keeps none.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use invitrack_model::{BotId, GuildId, UserId};
use invitrack_storage::sessions::{self, Session};
use serde::Deserialize;

use crate::AppState;
use crate::StartError;
use crate::error::ApiError;

/// The session's cookie.
pub(crate) const SESSION_COOKIE: &str = "invitrack_session";
/// The cookie binding a login's `state` to the browser that started it.
const STATE_COOKIE: &str = "invitrack_login_state";
/// Header a signed-in browser sends its CSRF token in, with every write.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// Manage Server and Administrator.
const MANAGE_GUILD: u64 = 1 << 5;
const ADMINISTRATOR: u64 = 1 << 3;

/// How the dashboard signs people in with Discord.
#[derive(Debug, Clone, clap::Args)]
pub struct LoginOptions {
    /// The Discord application's client id (its bot's id) for "Login with Discord".
    #[arg(long, env = "DISCORD_CLIENT_ID")]
    pub discord_client_id: Option<u64>,
    /// The application's client secret (developer portal, OAuth2).
    #[arg(long, env = "DISCORD_CLIENT_SECRET", hide_env_values = true)]
    pub discord_client_secret: Option<String>,
    /// Where people reach the API, e.g. `https://invites.example.org`; the redirect URI
    /// `{this}/auth/callback` must be registered with the application.
    #[arg(long, env = "DASHBOARD_PUBLIC_URL")]
    pub dashboard_public_url: Option<String>,
    /// Discord's REST API (the simulator's for tests and the demo).
    #[arg(
        long,
        env = "DISCORD_API_URL",
        default_value = "https://discord.com/api/v10"
    )]
    pub discord_api_url: String,
    /// Discord's authorization page.
    #[arg(
        long,
        env = "DISCORD_AUTHORIZE_URL",
        default_value = "https://discord.com/oauth2/authorize"
    )]
    pub discord_authorize_url: String,
    /// Hours a dashboard session lasts.
    #[arg(long, env = "DASHBOARD_SESSION_HOURS", default_value_t = 12)]
    pub session_hours: u32,
}

impl Default for LoginOptions {
    fn default() -> Self {
        Self {
            discord_client_id: None,
            discord_client_secret: None,
            dashboard_public_url: None,
            discord_api_url: "https://discord.com/api/v10".into(),
            discord_authorize_url: "https://discord.com/oauth2/authorize".into(),
            session_hours: 12,
        }
    }
}

/// Discord login, configured.
#[derive(Debug)]
pub(crate) struct DiscordLogin {
    client_id: u64,
    client_secret: String,
    redirect_uri: String,
    api_url: String,
    authorize_url: String,
    /// Cookies marked `Secure` (the public URL is https).
    secure: bool,
    session_hours: u32,
    http: reqwest::Client,
}

impl DiscordLogin {
    pub(crate) fn from_options(options: &LoginOptions) -> Result<Option<Self>, StartError> {
        match (
            options.discord_client_id,
            &options.discord_client_secret,
            &options.dashboard_public_url,
        ) {
            (None, None, None) => Ok(None),
            (Some(client_id), Some(secret), Some(public)) => {
                let public = public.trim_end_matches('/');
                Ok(Some(Self {
                    client_id,
                    client_secret: secret.clone(),
                    redirect_uri: format!("{public}/auth/callback"),
                    api_url: options.discord_api_url.trim_end_matches('/').to_owned(),
                    authorize_url: options.discord_authorize_url.clone(),
                    secure: public.starts_with("https://"),
                    session_hours: options.session_hours.max(1),
                    http: reqwest::Client::builder()
                        .timeout(std::time::Duration::from_secs(10))
                        .build()
                        .map_err(|e| StartError::Config(format!("HTTP client: {e}")))?,
                }))
            }
            _ => Err(StartError::Config(
                "DISCORD_CLIENT_ID, DISCORD_CLIENT_SECRET and DASHBOARD_PUBLIC_URL go together"
                    .into(),
            )),
        }
    }

    fn cookie<'c>(
        &self,
        name: &'c str,
        value: String,
        path: &'c str,
        age: CookieAge,
    ) -> Cookie<'c> {
        Cookie::build(name, value)
            .path(path)
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(age)
            .finish()
    }
}

fn configured(state: &AppState) -> Result<&DiscordLogin, ApiError> {
    state.login.as_ref().ok_or(ApiError::NotFound {
        code: "login_not_configured",
        what: "Discord login (not configured: use an API key)",
    })
}

/// `GET /auth/config`: whether the dashboard offers "Login with Discord".
pub async fn config(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "discord_login": state.login.is_some() }))
}

/// `GET /auth/login`: to Discord's authorization page, with a fresh `state` kept in a cookie.
pub async fn start(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let login = configured(&state)?;
    let nonce = sessions::new_token();
    let mut target = reqwest::Url::parse(&login.authorize_url)
        .map_err(|_| ApiError::Internal("DISCORD_AUTHORIZE_URL is not a URL"))?;
    target
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &login.client_id.to_string())
        .append_pair("scope", "identify guilds")
        .append_pair("redirect_uri", &login.redirect_uri)
        .append_pair("state", &nonce)
        .append_pair("prompt", "none");
    Ok(HttpResponse::Found()
        .cookie(login.cookie(STATE_COOKIE, nonce, "/auth", CookieAge::minutes(10)))
        .insert_header((header::LOCATION, target.as_str()))
        .finish())
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Back to the dashboard, saying why the login did not happen.
fn back_with(reason: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/dashboard/#/?login={reason}")))
        .finish()
}

#[derive(Debug, Deserialize)]
struct Token {
    access_token: String,
}

#[derive(Debug, Deserialize)]
struct DiscordUser {
    id: String,
    username: String,
    global_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UserGuild {
    id: String,
    #[serde(default)]
    owner: bool,
    /// A decimal string.
    permissions: String,
}

impl UserGuild {
    /// Whether the user may manage this guild: owner, Manage Server or Administrator.
    fn managed(&self) -> bool {
        self.owner
            || self
                .permissions
                .parse::<u64>()
                .is_ok_and(|bits| bits & (MANAGE_GUILD | ADMINISTRATOR) != 0)
    }
}

/// What Discord says of the user behind `code`: who, and the guilds they manage.
async fn discord_user(
    login: &DiscordLogin,
    code: &str,
) -> Result<(DiscordUser, Vec<GuildId>), String> {
    let token: Token = login
        .http
        .post(format!("{}/oauth2/token", login.api_url))
        .basic_auth(login.client_id, Some(&login.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &login.redirect_uri),
        ])
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("token exchange: {e}"))?
        .json()
        .await
        .map_err(|e| format!("token exchange: {e}"))?;
    let read = |path: &'static str| {
        login
            .http
            .get(format!("{}{path}", login.api_url))
            .bearer_auth(&token.access_token)
            .send()
    };
    let user: DiscordUser = read("/users/@me")
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("/users/@me: {e}"))?
        .json()
        .await
        .map_err(|e| format!("/users/@me: {e}"))?;
    let guilds: Vec<UserGuild> = read("/users/@me/guilds")
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("/users/@me/guilds: {e}"))?
        .json()
        .await
        .map_err(|e| format!("/users/@me/guilds: {e}"))?;
    // invitrack keeps no Discord token: done with it.
    let revoked = login
        .http
        .post(format!("{}/oauth2/token/revoke", login.api_url))
        .basic_auth(login.client_id, Some(&login.client_secret))
        .form(&[
            ("token", token.access_token.as_str()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await;
    if let Err(error) = revoked {
        tracing::warn!(%error, "the Discord token could not be revoked; it expires on its own");
    }
    let managed = guilds
        .iter()
        .filter(|g| g.managed())
        .filter_map(|g| g.id.parse::<u64>().ok().and_then(GuildId::new_checked))
        .collect();
    Ok((user, managed))
}

/// `GET /auth/callback`: Discord sends the browser back here with a code (or an error).
pub async fn callback(
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let login = configured(&state)?;
    let expected = req.cookie(STATE_COOKIE).map(|c| c.value().to_owned());
    if expected.is_none() || query.state != expected {
        tracing::warn!("a login came back with a state this browser did not start");
        return Ok(back_with("state_mismatch"));
    }
    if let Some(error) = &query.error {
        tracing::info!(error, "login not granted on Discord");
        return Ok(back_with("denied"));
    }
    let Some(code) = &query.code else {
        return Ok(back_with("no_code"));
    };
    let (user, managed) = match discord_user(login, code).await {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, "Discord did not confirm a login");
            return Ok(back_with("discord_error"));
        }
    };
    let Some(user_id) = user.id.parse::<u64>().ok().and_then(UserId::new_checked) else {
        return Ok(back_with("discord_error"));
    };
    let bot_id = BotId::new(login.client_id);
    let mut conn = state.connection().await?;
    let present: Vec<GuildId> = invitrack_storage::export::tracked_guilds(&mut conn, bot_id)
        .await?
        .into_iter()
        .map(|g| g.guild_id)
        .collect();
    let guild_ids: Vec<GuildId> = managed
        .into_iter()
        .filter(|g| present.contains(g))
        .collect();
    let session = Session {
        bot_id,
        user_id,
        username: user.global_name.unwrap_or(user.username),
        guild_ids,
        csrf_token: sessions::new_token(),
        expires_at: Utc::now() + chrono::Duration::hours(i64::from(login.session_hours)),
    };
    let token = sessions::create(&mut conn, &session).await?;
    tracing::info!(user_id = %user_id, guilds = session.guild_ids.len(), "signed in with Discord");
    let age = CookieAge::hours(i64::from(login.session_hours));
    let mut clear_state = login.cookie(STATE_COOKIE, String::new(), "/auth", CookieAge::ZERO);
    clear_state.make_removal();
    Ok(HttpResponse::SeeOther()
        .cookie(login.cookie(SESSION_COOKIE, token, "/", age))
        .cookie(clear_state)
        .insert_header((header::LOCATION, "/dashboard/#/"))
        .finish())
}

/// `POST /auth/logout`: ends the session (its CSRF token required), clears the cookie.
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(HttpResponse::NoContent().finish());
    };
    let mut conn = state.connection().await?;
    if let Some(session) = sessions::find(&mut conn, &token).await? {
        check_csrf(&req, &session)?;
        sessions::delete(&mut conn, &token).await?;
        tracing::info!(user_id = %session.user_id, "signed out");
    }
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

/// 403 unless the request carries the session's CSRF token: a cookie is sent by the browser
/// whoever made the page, the header only by our own script.
pub(crate) fn check_csrf(req: &HttpRequest, session: &Session) -> Result<(), ApiError> {
    let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if sent == Some(session.csrf_token.as_str()) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "writes without the session's X-CSRF-Token",
        ))
    }
}

/// The session of a request's cookie, if it has a live one.
pub(crate) async fn session_of(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<Session>, ApiError> {
    let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let mut conn = state.connection().await?;
    Ok(sessions::find(&mut conn, &token).await?)
}
