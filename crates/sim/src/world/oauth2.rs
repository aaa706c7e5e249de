//! OAuth2 for a web dashboard's "Login with Discord": the application's client (the bot's
//! application id, a secret, the registered redirect URIs), the user signed in to the
//! simulated Discord in "the browser", the guilds users are in (with their permissions),
//! and the authorization code grant as Discord documents it (`developers/topics/oauth2.mdx`,
//! which defers to RFC 6749): codes (single use, short-lived), access tokens (7 days) and
//! refresh tokens, revocation, and the Bearer views (`/users/@me`, `/users/@me/guilds`,
//! `/oauth2/@me`). Everything is timed by the simulated clock.

use super::model::State;
use super::to_json;
use crate::{error::WorldError, snowflake, wire, wire::permissions};
use rand::Rng;
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, HashMap};
use twilight_model::id::{
    Id,
    marker::{ApplicationMarker, GuildMarker, UserMarker},
};

/// Lifetime of an authorization code. Discord documents no figure; RFC 6749 §4.1.2
/// recommends at most 10 minutes.
pub const AUTHORIZATION_CODE_LIFETIME_MS: i64 = 10 * 60 * 1000;
/// Lifetime of an access token: Discord's `expires_in` (7 days).
pub const ACCESS_TOKEN_LIFETIME_SECS: u64 = 604_800;
/// The client secret when none is configured.
pub const DEFAULT_CLIENT_SECRET: &str = "sim-client-secret";
/// Most guilds a (non-bot) user can be in, and what `GET /users/@me/guilds` answers at most.
pub const MAX_USER_GUILDS: usize = 200;

/// The OAuth2 application at start ([`crate::SimConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Options {
    /// The client secret.
    pub client_secret: String,
    /// Registered redirect URIs (compared exactly, as Discord does).
    pub redirect_uris: Vec<String>,
}

impl Default for OAuth2Options {
    fn default() -> Self {
        Self {
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            redirect_uris: Vec::new(),
        }
    }
}

/// The OAuth2 client of the bot's application
/// ([`World::oauth2_client`](crate::World::oauth2_client)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuth2Client {
    /// The client id: the application id (= the bot's user id).
    pub client_id: Id<ApplicationMarker>,
    /// The client secret.
    pub client_secret: String,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
}

/// What the signed-in user does on the authorization screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Consent {
    /// Authorizes: the browser goes back with a `code`.
    Approve,
    /// Cancels: the browser goes back with `error=access_denied`.
    Deny,
}

/// One guild a user is in, for
/// [`World::set_user_guilds`](crate::World::set_user_guilds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGuildSpec {
    /// A guild of the world (the bot is in it), another guild's id, or `None` for a new
    /// guild elsewhere (the bot is not in it).
    pub guild_id: Option<Id<GuildMarker>>,
    /// Name of a guild the bot is not in (default `guild`); must be `None` for the world's.
    pub name: Option<String>,
    /// The user's guild-wide permissions (bits of [`crate::permissions`]); ADMINISTRATOR
    /// means all of them.
    pub permissions: u64,
    /// Whether the user owns a guild the bot is not in (all permissions). A guild of the
    /// world is owned by its owner (GUILD_CREATE's `owner_id`): `true` is only accepted there
    /// for that user.
    pub owner: bool,
}

impl UserGuildSpec {
    /// A membership of a guild of the world with these permissions.
    pub fn member_of(guild_id: Id<GuildMarker>, permissions: u64) -> Self {
        Self {
            guild_id: Some(guild_id),
            name: None,
            permissions,
            owner: false,
        }
    }

    /// A membership of a new guild the bot is not in.
    pub fn elsewhere(name: &str, permissions: u64, owner: bool) -> Self {
        Self {
            guild_id: None,
            name: Some(name.to_owned()),
            permissions,
            owner,
        }
    }
}

/// A guild as a user sees it in `GET /users/@me/guilds`
/// ([`World::user_guilds`](crate::World::user_guilds)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserGuild {
    /// The guild.
    pub id: Id<GuildMarker>,
    /// Its name.
    pub name: String,
    /// Whether the user owns it.
    pub owner: bool,
    /// The user's permissions (all of them for the owner and administrators), a decimal
    /// string in JSON.
    #[serde(serialize_with = "ser_decimal")]
    pub permissions: u64,
    /// The guild's features.
    pub features: Vec<&'static str>,
    /// Whether the bot is in it (a guild of the world).
    pub bot_in_guild: bool,
    /// Its members (the bot included for the world's; 1 elsewhere).
    pub approximate_member_count: u64,
}

fn ser_decimal<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

/// An OAuth2 error answer of the token endpoints (RFC 6749 §5.2): its status and
/// `{"error", "error_description"}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OAuth2Error {
    /// 400 `invalid_request`: a parameter is missing, repeated or malformed.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// 401 `invalid_client`: no, unknown or wrong client credentials.
    #[error("invalid_client")]
    InvalidClient,
    /// 400 `invalid_grant`, with Discord's description (`Invalid "code" in request.`).
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// 400 `unsupported_grant_type`.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType(Option<&'static str>),
}

impl OAuth2Error {
    /// HTTP status.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Self::InvalidClient => 401,
            _ => 400,
        }
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::InvalidRequest(d) => json!({"error": "invalid_request", "error_description": d}),
            Self::InvalidClient => json!({"error": "invalid_client"}),
            Self::InvalidGrant(d) => json!({"error": "invalid_grant", "error_description": d}),
            Self::UnsupportedGrantType(None) => json!({"error": "unsupported_grant_type"}),
            Self::UnsupportedGrantType(Some(d)) => {
                json!({"error": "unsupported_grant_type", "error_description": d})
            }
        }
    }
}

const INVALID_CODE: &str = "Invalid \"code\" in request.";
const INVALID_REDIRECT_URI: &str = "Invalid \"redirect_uri\" in request.";
/// As Discord documents it (without a final period).
const INVALID_REFRESH_TOKEN: &str = "Invalid \"refresh_token\" in request";

/// The parameters of `GET /oauth2/authorize` the simulator reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AuthorizeRequest {
    pub(crate) client_id: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) response_type: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) state: Option<String>,
}

/// Where `GET /oauth2/authorize` sends the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Authorized {
    /// 302 to this URL (a `code`, or an error RFC 6749 §4.1.2.1 sends back to the client).
    Redirect(String),
    /// An error page without a redirect (unknown client, unregistered redirect URI, or what
    /// the simulator cannot do).
    Page(String),
}

/// A successful token answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TokenAnswer {
    pub(crate) access_token: String,
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: u64,
    pub(crate) refresh_token: String,
    pub(crate) scope: String,
}

/// `GET /users/@me/guilds`'s query, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GuildsPage {
    pub(crate) before: Option<u64>,
    pub(crate) after: Option<u64>,
    pub(crate) limit: usize,
    pub(crate) with_counts: bool,
}

#[derive(Debug, Clone)]
struct Membership {
    guild_id: Id<GuildMarker>,
    /// For a guild the bot is not in.
    name: String,
    permissions: u64,
    owner: bool,
}

#[derive(Debug, Clone)]
struct Code {
    user_id: Id<UserMarker>,
    scopes: Vec<String>,
    redirect_uri: String,
    /// Whether the authorization request named the redirect URI (then the token request
    /// must name the same, RFC 6749 §4.1.3).
    redirect_uri_given: bool,
    expires_at_ms: i64,
    /// The authorization made from it, once exchanged.
    exchanged: Option<u64>,
}

#[derive(Debug, Clone)]
struct Grant {
    user_id: Id<UserMarker>,
    scopes: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
struct Access {
    grant: u64,
    expires_at_ms: i64,
}

/// The OAuth2 part of the world.
#[derive(Debug)]
pub(crate) struct OAuth2Store {
    client_secret: String,
    redirect_uris: Vec<String>,
    signed_in: Option<(Id<UserMarker>, Consent)>,
    memberships: HashMap<Id<UserMarker>, Vec<Membership>>,
    codes: HashMap<String, Code>,
    grants: HashMap<u64, Grant>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, u64>,
    next_grant: u64,
}

impl OAuth2Store {
    pub(crate) fn new(options: OAuth2Options) -> Self {
        Self {
            client_secret: options.client_secret,
            redirect_uris: options.redirect_uris,
            signed_in: None,
            memberships: HashMap::new(),
            codes: HashMap::new(),
            grants: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            next_grant: 0,
        }
    }

    /// Removes an authorization and every token made from it.
    fn revoke_grant(&mut self, grant: u64) {
        self.grants.remove(&grant);
        self.access.retain(|_, a| a.grant != grant);
        self.refresh.retain(|_, g| *g != grant);
    }

    fn new_tokens(&mut self, grant: u64, now_ms: i64) -> (String, String) {
        let access = random_token();
        let refresh = random_token();
        self.access.insert(
            access.clone(),
            Access {
                grant,
                expires_at_ms: now_ms + ACCESS_TOKEN_LIFETIME_SECS as i64 * 1000,
            },
        );
        self.refresh.insert(refresh.clone(), grant);
        (access, refresh)
    }
}

/// 30 random letters and digits, the length of Discord's codes and tokens.
fn random_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..30)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Checks a redirect URI before it is registered: an absolute URL without a fragment
/// (RFC 6749 §3.1.2).
pub(crate) fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(uri).map_err(|e| format!("{uri:?} is not a URL: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("{uri:?} has a fragment"));
    }
    Ok(())
}

/// `uri` with `params` added to its query.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    match reqwest::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.into()
        }
        // Registered URIs were checked.
        Err(_) => uri.to_owned(),
    }
}

/// The description Discord sends with `error=access_denied`.
const ACCESS_DENIED: &str = "The resource owner or authorization server denied the request";

impl State {
    // ---- the client and the signed-in user ----------------------------------------------

    /// The application's OAuth2 client.
    pub fn oauth2_client(&self) -> OAuth2Client {
        OAuth2Client {
            client_id: self.bot.application_id(),
            client_secret: self.oauth2.client_secret.clone(),
            redirect_uris: self.oauth2.redirect_uris.clone(),
        }
    }

    /// The registered redirect URIs.
    pub(crate) fn oauth2_redirect_uris(&self) -> &[String] {
        &self.oauth2.redirect_uris
    }

    /// Replaces the registered redirect URIs.
    pub fn set_oauth2_redirect_uris(&mut self, uris: Vec<String>) -> Result<(), WorldError> {
        for uri in &uris {
            check_redirect_uri(uri).map_err(WorldError::Invalid)?;
        }
        if uris.len() > 10 {
            return Err(WorldError::Invalid(
                "at most 10 redirect URIs (Discord's limit)".into(),
            ));
        }
        self.oauth2.redirect_uris = uris;
        Ok(())
    }

    /// Signs `user_id` in to the simulated Discord: the next authorizations are that user's.
    pub fn sign_in(&mut self, user_id: Id<UserMarker>, consent: Consent) {
        self.ensure_user(user_id, true);
        self.oauth2.signed_in = Some((user_id, consent));
    }

    /// Signs the user out of the simulated Discord (authorizations then fail).
    pub fn sign_out(&mut self) {
        self.oauth2.signed_in = None;
    }

    /// Who is signed in, and what they answer on the authorization screen.
    pub fn signed_in(&self) -> Option<(Id<UserMarker>, Consent)> {
        self.oauth2.signed_in
    }

    /// Live authorizations (a code exchanged, not revoked), by user.
    pub fn oauth2_authorizations(&self) -> BTreeMap<Id<UserMarker>, Vec<String>> {
        let mut out: BTreeMap<Id<UserMarker>, Vec<String>> = BTreeMap::new();
        for grant in self.oauth2.grants.values() {
            let scopes = out.entry(grant.user_id).or_default();
            for scope in &grant.scopes {
                if !scopes.contains(scope) {
                    scopes.push(scope.clone());
                }
            }
        }
        out
    }

    // ---- the guilds users are in ---------------------------------------------------------

    /// The owner of a guild of the world.
    pub fn guild_owner(&self, guild_id: Id<GuildMarker>) -> Result<Id<UserMarker>, WorldError> {
        Ok(self.guild(guild_id)?.owner_id)
    }

    /// Replaces the guilds a user is in besides those the world knows (the guilds whose
    /// tracked member the user is, with `@everyone`'s permissions, and those the user owns).
    pub fn set_user_guilds(
        &mut self,
        user_id: Id<UserMarker>,
        guilds: Vec<UserGuildSpec>,
    ) -> Result<Vec<UserGuild>, WorldError> {
        if user_id == self.bot.user_id {
            return Err(WorldError::Invalid(
                "the bot's guilds are the world's".into(),
            ));
        }
        if guilds.len() > MAX_USER_GUILDS {
            return Err(WorldError::Invalid(format!(
                "a user is in at most {MAX_USER_GUILDS} guilds"
            )));
        }
        let now = self.now_ms();
        let mut memberships: Vec<Membership> = Vec::with_capacity(guilds.len());
        for spec in guilds {
            let guild_id = match spec.guild_id {
                Some(id) => id,
                None => Id::new(self.ids.at(now)),
            };
            if memberships.iter().any(|m| m.guild_id == guild_id) {
                return Err(WorldError::Invalid(format!(
                    "guild {guild_id} is given twice"
                )));
            }
            let name = match (self.guilds.get(&guild_id), spec.name) {
                (Some(guild), None) => {
                    if spec.owner && guild.owner_id != user_id {
                        return Err(WorldError::Invalid(format!(
                            "guild {guild_id} is owned by user {} (sign in as its owner)",
                            guild.owner_id
                        )));
                    }
                    String::new()
                }
                (Some(_), Some(_)) => {
                    return Err(WorldError::Invalid(format!(
                        "guild {guild_id} is the world's: its name is the world's"
                    )));
                }
                (None, name) => {
                    let name = name.unwrap_or_else(|| "guild".to_owned());
                    if !(2..=100).contains(&name.chars().count()) {
                        return Err(WorldError::Invalid(
                            "a guild name has 2 to 100 characters".into(),
                        ));
                    }
                    name
                }
            };
            memberships.push(Membership {
                guild_id,
                name,
                permissions: spec.permissions,
                owner: spec.owner,
            });
        }
        self.ensure_user(user_id, true);
        self.oauth2.memberships.insert(user_id, memberships);
        Ok(self.user_guilds(user_id))
    }

    /// The guilds a user is in, by id, as `GET /users/@me/guilds` shows them: the guilds set
    /// with [`State::set_user_guilds`], the world's guilds the user owns (all permissions)
    /// and those the user is a tracked member of (`@everyone`'s permissions).
    pub fn user_guilds(&self, user_id: Id<UserMarker>) -> Vec<UserGuild> {
        let mut list: BTreeMap<Id<GuildMarker>, UserGuild> = BTreeMap::new();
        let world_guild = |guild: &super::model::Guild, permissions: u64| UserGuild {
            id: guild.id,
            name: guild.name.clone(),
            owner: guild.owner_id == user_id,
            permissions,
            features: guild.features().to_vec(),
            bot_in_guild: true,
            approximate_member_count: guild.member_count(),
        };
        for guild in self.guilds.values() {
            if guild.owner_id == user_id || guild.members.contains_key(&user_id) {
                list.insert(guild.id, world_guild(guild, permissions::EVERYONE));
            }
        }
        for m in self.oauth2.memberships.get(&user_id).into_iter().flatten() {
            let entry = match self.guilds.get(&m.guild_id) {
                Some(guild) => world_guild(guild, m.permissions),
                None => UserGuild {
                    id: m.guild_id,
                    name: m.name.clone(),
                    owner: m.owner,
                    permissions: m.permissions,
                    features: Vec::new(),
                    bot_in_guild: false,
                    approximate_member_count: 1,
                },
            };
            list.insert(m.guild_id, entry);
        }
        list.into_values()
            .map(|mut g| {
                if g.owner || g.permissions & permissions::ADMINISTRATOR != 0 {
                    g.permissions = permissions::ALL;
                }
                g
            })
            .collect()
    }

    // ---- the authorization code grant ----------------------------------------------------

    /// `GET /oauth2/authorize`: instead of a consent screen, the signed-in user's answer at
    /// once. In RFC 6749 §4.1.2.1's order: an unknown client or a redirect URI not registered
    /// is an error page (never a redirect); then errors go back to the redirect URI with
    /// `error` (and `state`).
    pub(crate) fn oauth2_authorize(&mut self, req: AuthorizeRequest) -> Authorized {
        let app_id = self.bot.application_id().to_string();
        if req.client_id.as_deref() != Some(app_id.as_str()) {
            return Authorized::Page(match req.client_id {
                Some(id) => format!("Unknown Application: invalid client_id {id:?}"),
                None => "Invalid OAuth2 request: missing client_id".to_owned(),
            });
        }
        let (redirect_uri, given) = match &req.redirect_uri {
            Some(uri) if self.oauth2.redirect_uris.contains(uri) => (uri.clone(), true),
            Some(uri) => {
                return Authorized::Page(format!("Invalid OAuth2 redirect_uri: {uri:?}"));
            }
            // Discord sends the browser to the first registered URI.
            None => match self.oauth2.redirect_uris.first() {
                Some(uri) => (uri.clone(), false),
                None => {
                    return Authorized::Page(
                        "Invalid OAuth2 redirect_uri: the application has none registered"
                            .to_owned(),
                    );
                }
            },
        };
        let back = |params: &[(&str, &str)]| {
            let mut all: Vec<(&str, &str)> = params.to_vec();
            if let Some(state) = &req.state {
                all.push(("state", state));
            }
            Authorized::Redirect(with_query(&redirect_uri, &all))
        };
        match req.response_type.as_deref() {
            Some("code") => {}
            Some("token") => {
                return Authorized::Page(
                    "response_type=token (the implicit grant) is not simulated".to_owned(),
                );
            }
            Some(_) => return back(&[("error", "unsupported_response_type")]),
            None => {
                return back(&[
                    ("error", "invalid_request"),
                    ("error_description", "Missing \"response_type\" in request."),
                ]);
            }
        }
        let scopes = match crate::oauth2_form::parse_scopes(req.scope.as_deref().unwrap_or("")) {
            Ok(scopes) => scopes,
            Err(e @ crate::oauth2_form::ScopeError::NotSimulated(_)) => {
                return Authorized::Page(e.to_string());
            }
            Err(e) => {
                let description = e.to_string();
                return back(&[
                    ("error", "invalid_scope"),
                    ("error_description", &description),
                ]);
            }
        };
        let Some((user_id, consent)) = self.oauth2.signed_in else {
            return Authorized::Page(
                "nobody is signed in to the simulated Discord (POST /control/oauth2/login)"
                    .to_owned(),
            );
        };
        if consent == Consent::Deny {
            return back(&[
                ("error", "access_denied"),
                ("error_description", ACCESS_DENIED),
            ]);
        }
        let now = self.now_ms();
        self.oauth2
            .codes
            .retain(|_, c| c.expires_at_ms > now || c.exchanged.is_some());
        let code = random_token();
        self.oauth2.codes.insert(
            code.clone(),
            Code {
                user_id,
                scopes,
                redirect_uri: redirect_uri.clone(),
                redirect_uri_given: given,
                expires_at_ms: now + AUTHORIZATION_CODE_LIFETIME_MS,
                exchanged: None,
            },
        );
        tracing::info!(%user_id, "OAuth2 authorization code issued");
        back(&[("code", &code)])
    }

    /// Checks the client of a token or revocation request.
    fn oauth2_check_client(&self, client: Option<(String, String)>) -> Result<(), OAuth2Error> {
        let app_id = self.bot.application_id().to_string();
        match client {
            Some((id, secret)) if id == app_id && secret == self.oauth2.client_secret => Ok(()),
            _ => Err(OAuth2Error::InvalidClient),
        }
    }

    /// `POST /oauth2/token`: `authorization_code` and `refresh_token` grants.
    pub(crate) fn oauth2_token(
        &mut self,
        client: Option<(String, String)>,
        params: &HashMap<String, String>,
    ) -> Result<TokenAnswer, OAuth2Error> {
        let param = |name: &str| {
            params
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let missing =
            |name: &str| OAuth2Error::InvalidRequest(format!("Missing \"{name}\" in request."));
        let grant_type = param("grant_type");
        if !matches!(grant_type, Some("authorization_code" | "refresh_token")) {
            // Checked before the client, as a request of no known grant cannot be read.
            return Err(OAuth2Error::UnsupportedGrantType(match grant_type {
                Some("client_credentials") => Some("the client credentials grant is not simulated"),
                _ => None,
            }));
        }
        self.oauth2_check_client(client)?;
        let now = self.now_ms();
        let grant = if grant_type == Some("authorization_code") {
            let code_param = param("code").ok_or_else(|| missing("code"))?;
            let Some(code) = self.oauth2.codes.get(code_param).cloned() else {
                return Err(OAuth2Error::InvalidGrant(INVALID_CODE));
            };
            if let Some(grant) = code.exchanged {
                // A code used twice: RFC 6749 §4.1.2 — "the authorization server MUST deny
                // the request and SHOULD revoke ... all tokens previously issued based on
                // that authorization code".
                tracing::info!(user_id = %code.user_id, "OAuth2 code used twice: tokens revoked");
                self.oauth2.revoke_grant(grant);
                return Err(OAuth2Error::InvalidGrant(INVALID_CODE));
            }
            if code.expires_at_ms <= now {
                self.oauth2.codes.remove(code_param);
                return Err(OAuth2Error::InvalidGrant(INVALID_CODE));
            }
            match param("redirect_uri") {
                Some(uri) if uri == code.redirect_uri => {}
                None if !code.redirect_uri_given => {}
                _ => return Err(OAuth2Error::InvalidGrant(INVALID_REDIRECT_URI)),
            }
            let grant = self.oauth2.next_grant;
            self.oauth2.next_grant += 1;
            self.oauth2.grants.insert(
                grant,
                Grant {
                    user_id: code.user_id,
                    scopes: code.scopes.clone(),
                },
            );
            if let Some(c) = self.oauth2.codes.get_mut(code_param) {
                c.exchanged = Some(grant);
            }
            grant
        } else {
            let refresh = param("refresh_token").ok_or_else(|| missing("refresh_token"))?;
            // Refresh tokens are single use: a new one comes with the new access token.
            let Some(grant) = self.oauth2.refresh.remove(refresh) else {
                return Err(OAuth2Error::InvalidGrant(INVALID_REFRESH_TOKEN));
            };
            grant
        };
        let (access_token, refresh_token) = self.oauth2.new_tokens(grant, now);
        let scope = self
            .oauth2
            .grants
            .get(&grant)
            .map(|g| g.scopes.join(" "))
            .unwrap_or_default();
        Ok(TokenAnswer {
            access_token,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_LIFETIME_SECS,
            refresh_token,
            scope,
        })
    }

    /// `POST /oauth2/token/revoke` (RFC 7009): revoking any token of a user revokes every
    /// authorization of the application for that user, as Discord documents; an unknown token
    /// is not an error.
    pub(crate) fn oauth2_revoke(
        &mut self,
        client: Option<(String, String)>,
        params: &HashMap<String, String>,
    ) -> Result<(), OAuth2Error> {
        let token = params
            .get("token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuth2Error::InvalidRequest("Missing \"token\" in request.".into()))?;
        self.oauth2_check_client(client)?;
        let grant = self
            .oauth2
            .access
            .get(token.as_str())
            .map(|a| a.grant)
            .or_else(|| self.oauth2.refresh.get(token.as_str()).copied());
        let user = grant.and_then(|g| self.oauth2.grants.get(&g).map(|g| g.user_id));
        if let Some(user_id) = user {
            let grants: Vec<u64> = self
                .oauth2
                .grants
                .iter()
                .filter(|(_, g)| g.user_id == user_id)
                .map(|(id, _)| *id)
                .collect();
            for grant in grants {
                self.oauth2.revoke_grant(grant);
            }
            tracing::info!(%user_id, "OAuth2 authorizations revoked");
        }
        Ok(())
    }

    // ---- Bearer requests -----------------------------------------------------------------

    /// The user, scopes and expiry of a live access token; 401 otherwise.
    fn bearer(&self, token: &str) -> Result<(Id<UserMarker>, &[String], i64), WorldError> {
        let access = self
            .oauth2
            .access
            .get(token)
            .filter(|a| a.expires_at_ms > self.now_ms())
            .ok_or(WorldError::Unauthorized)?;
        let grant = self
            .oauth2
            .grants
            .get(&access.grant)
            .ok_or(WorldError::Unauthorized)?;
        Ok((grant.user_id, &grant.scopes, access.expires_at_ms))
    }

    /// The user of a token that has `scope` (401 without it, as Discord is seen to answer).
    fn bearer_with(&self, token: &str, scope: &str) -> Result<Id<UserMarker>, WorldError> {
        let (user_id, scopes, _) = self.bearer(token)?;
        if scopes.iter().any(|s| s == scope) {
            Ok(user_id)
        } else {
            Err(WorldError::Unauthorized)
        }
    }

    fn oauth2_user(&self, user_id: Id<UserMarker>, email: bool) -> wire::OAuth2User<'_> {
        let user = self.user(user_id);
        wire::OAuth2User {
            id: user.id,
            username: user.username,
            discriminator: "0",
            global_name: user.global_name,
            avatar: user.avatar,
            avatar_decoration_data: None,
            banner: None,
            accent_color: None,
            public_flags: 0,
            flags: 0,
            mfa_enabled: false,
            locale: "en-US",
            email: email.then(|| format!("{}@example.com", user.username)),
            verified: email.then_some(true),
        }
    }

    /// `GET /users/@me` with a Bearer token (`identify`; `email` adds `email` and
    /// `verified`).
    pub(crate) fn rest_oauth2_current_user(&self, token: &str) -> Result<String, WorldError> {
        let user_id = self.bearer_with(token, "identify")?;
        let (_, scopes, _) = self.bearer(token)?;
        let email = scopes.iter().any(|s| s == "email");
        to_json(&self.oauth2_user(user_id, email))
    }

    /// `GET /users/@me/guilds` with a Bearer token (`guilds`).
    pub(crate) fn rest_oauth2_user_guilds(
        &self,
        token: &str,
        page: GuildsPage,
    ) -> Result<String, WorldError> {
        let user_id = self.bearer_with(token, "guilds")?;
        let guilds = self.user_guilds(user_id);
        partial_guilds(&guilds, page)
    }

    /// `GET /users/@me/guilds` with the bot token: the bot's guilds.
    pub(crate) fn rest_bot_guilds(&self, page: GuildsPage) -> Result<String, WorldError> {
        let guilds: Vec<UserGuild> = self
            .guilds
            .values()
            .map(|guild| UserGuild {
                id: guild.id,
                name: guild.name.clone(),
                owner: false,
                permissions: guild.bot_permissions(),
                features: guild.features().to_vec(),
                bot_in_guild: true,
                approximate_member_count: guild.member_count(),
            })
            .collect();
        let mut guilds = guilds;
        guilds.sort_by_key(|g| g.id);
        partial_guilds(&guilds, page)
    }

    /// `GET /oauth2/@me` with a Bearer token: the authorization.
    pub(crate) fn rest_oauth2_authorization(&self, token: &str) -> Result<String, WorldError> {
        let (user_id, scopes, expires_at_ms) = self.bearer(token)?;
        let identify = scopes.iter().any(|s| s == "identify");
        let email = scopes.iter().any(|s| s == "email");
        let bot = &self.bot;
        to_json(&wire::AuthorizationInfo {
            application: wire::AuthorizedApplication {
                id: bot.application_id(),
                name: &bot.username,
                icon: None,
                description: "",
                hook: true,
                bot_public: true,
                bot_require_code_grant: false,
                verify_key: &bot.verify_key,
            },
            scopes,
            expires: snowflake::format_ts(expires_at_ms),
            user: identify.then(|| self.oauth2_user(user_id, email)),
        })
    }
}

/// A page of partial guilds, ordered by id (`before` answers the `limit` guilds just
/// before it).
fn partial_guilds(guilds: &[UserGuild], page: GuildsPage) -> Result<String, WorldError> {
    let selected: Vec<&UserGuild> = guilds
        .iter()
        .filter(|g| page.after.is_none_or(|a| g.id.get() > a))
        .filter(|g| page.before.is_none_or(|b| g.id.get() < b))
        .collect();
    let selected: &[&UserGuild] = if page.before.is_some() && page.after.is_none() {
        &selected[selected.len().saturating_sub(page.limit)..]
    } else {
        &selected[..selected.len().min(page.limit)]
    };
    let list: Vec<wire::PartialGuild<'_>> = selected
        .iter()
        .map(|g| wire::PartialGuild {
            id: g.id,
            name: &g.name,
            icon: None,
            banner: None,
            owner: g.owner,
            permissions: g.permissions.to_string(),
            features: &g.features,
            // Presences are not simulated: nobody is online.
            approximate_member_count: page.with_counts.then_some(g.approximate_member_count),
            approximate_presence_count: page.with_counts.then_some(0),
        })
        .collect();
    to_json(&list)
}
