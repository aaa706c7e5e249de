//! "Login with Discord" against the simulator, as a dashboard's server does it with plain
//! HTTP: `GET /oauth2/authorize` (the browser, redirects not followed), `POST
//! /api/v10/oauth2/token` and `/token/revoke` (form bodies), then Bearer requests to
//! `/users/@me`, `/users/@me/guilds` and `/oauth2/@me`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Control, TOKEN, id, start};
use invitrack_sim::{RunningSim, permissions};
use serde_json::{Value, json};

const REDIRECT: &str = "http://dashboard.test/auth/callback";
const SECRET: &str = invitrack_sim::DEFAULT_CLIENT_SECRET;

struct Browser {
    addr: std::net::SocketAddr,
    client: reqwest::Client,
    client_id: String,
}

impl Browser {
    fn new(sim: &RunningSim) -> Self {
        Self {
            addr: sim.addr(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            client_id: sim.world().oauth2_client().client_id.to_string(),
        }
    }

    /// `GET {path}?{params}`: the status and the `Location` header.
    async fn authorize_at(&self, path: &str, params: &[(&str, &str)]) -> (u16, Option<String>) {
        let res = self
            .client
            .get(format!("http://{}{path}", self.addr))
            .query(params)
            .send()
            .await
            .unwrap();
        let location = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (res.status().as_u16(), location)
    }

    /// The authorization URL a dashboard sends the browser to.
    async fn authorize(
        &self,
        scope: &str,
        redirect_uri: &str,
        state: &str,
    ) -> (u16, Option<String>) {
        let client_id = self.client_id.clone();
        self.authorize_at(
            "/oauth2/authorize",
            &[
                ("response_type", "code"),
                ("client_id", &client_id),
                ("scope", scope),
                ("redirect_uri", redirect_uri),
                ("state", state),
                ("prompt", "none"),
            ],
        )
        .await
    }

    /// Authorizes and answers the code of the redirect.
    async fn code(&self, scope: &str) -> String {
        let (status, location) = self.authorize(scope, REDIRECT, "st4te").await;
        assert_eq!(status, 302, "{location:?}");
        let query = redirect_query(&location.unwrap());
        assert_eq!(query["state"], "st4te");
        query["code"].clone()
    }

    async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("http://{}{path}", self.addr))
            .form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// `POST /api/v10/oauth2/token` with HTTP Basic client credentials.
    async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let id = self.client_id.clone();
        self.post_form("/api/v10/oauth2/token", form, Some((&id, SECRET)))
            .await
    }

    async fn exchange(&self, code: &str) -> (u16, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ])
        .await
    }

    async fn get(&self, path: &str, authorization: &str) -> (u16, Value) {
        let res = self
            .client
            .get(format!("http://{}/api/v10{path}", self.addr))
            .header("Authorization", authorization)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    async fn bearer(&self, path: &str, token: &Value) -> (u16, Value) {
        self.get(path, &format!("Bearer {}", token.as_str().unwrap()))
            .await
    }
}

fn redirect_query(location: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A simulator with the dashboard's redirect URI registered.
async fn setup() -> (RunningSim, Control, Browser) {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (status, v) = control
        .send(
            reqwest::Method::PUT,
            "/oauth2/redirects",
            Some(json!({"redirect_uris": [REDIRECT]})),
        )
        .await;
    assert_eq!(status, 204, "{v}");
    let browser = Browser::new(&sim);
    (sim, control, browser)
}

async fn login(control: &Control, body: Value) -> Value {
    let (status, v) = control.post("/oauth2/login", body).await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn advance(control: &Control, secs: u64) {
    let (status, v) = control.post("/clock", json!({"advance_secs": secs})).await;
    assert_eq!(status, 204, "{v}");
}

fn all_permissions() -> String {
    permissions::ALL.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_discord_end_to_end() {
    let (sim, control, browser) = setup().await;
    let (tracked, _) = control.guild(json!({"name": "Tracked"})).await;
    let (owned, status) = {
        let (status, v) = control.post("/guilds", json!({"name": "Owned"})).await;
        (v, status)
    };
    assert_eq!(status, 201, "{owned}");
    let owned_id = id(&owned["guild_id"]);
    let owner = owned["owner_id"].clone();

    // A moderator (Manage Server) of a guild the bot is in, administrator of one it is not.
    let signed = login(
        &control,
        json!({"user_id": "4242", "guilds": [
            {"guild_id": tracked.to_string(), "permissions": "32"},
            {"name": "Elsewhere", "permissions": permissions::ADMINISTRATOR.to_string()},
            {"name": "Friends", "permissions": "1024"},
        ]}),
    )
    .await;
    assert_eq!(signed["guilds"].as_array().unwrap().len(), 3);

    let (status, location) = browser
        .authorize("identify guilds", REDIRECT, "abc/+=")
        .await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(
        location.starts_with(&format!("{REDIRECT}?code=")),
        "{location}"
    );
    let query = redirect_query(&location);
    assert_eq!(query["state"], "abc/+=");
    assert_eq!(query["code"].len(), 30);

    let (status, tokens) = browser.exchange(&query["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 604_800);
    assert_eq!(tokens["scope"], "identify guilds");
    let keys: Vec<&String> = tokens.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        5,
        "access_token, token_type, expires_in, refresh_token, scope: {tokens}"
    );
    let access = &tokens["access_token"];

    // The user, as twilight reads it too; no email without the `email` scope.
    let (status, me) = browser.bearer("/users/@me", access).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["id"], "4242");
    assert_eq!(me["discriminator"], "0");
    assert!(me.get("email").is_none() && me.get("bot").is_none(), "{me}");
    let user: twilight_model::user::CurrentUser = serde_json::from_value(me).unwrap();
    assert_eq!(user.id.get(), 4242);

    // The bot token still answers the bot.
    let (status, bot) = browser.get("/users/@me", &format!("Bot {TOKEN}")).await;
    assert_eq!(status, 200);
    assert_eq!(bot["bot"], true);

    // The user's guilds, by id: permissions as strings; an administrator has every
    // permission.
    let (status, guilds) = browser.bearer("/users/@me/guilds", access).await;
    assert_eq!(status, 200, "{guilds}");
    let guilds = guilds.as_array().unwrap().clone();
    assert_eq!(guilds.len(), 3);
    let by_name = |name: &str| guilds.iter().find(|g| g["name"] == name).unwrap().clone();
    let tracked_guild = by_name("Tracked");
    assert_eq!(tracked_guild["id"], tracked.to_string());
    assert_eq!(tracked_guild["permissions"], "32");
    assert_eq!(tracked_guild["owner"], false);
    assert_eq!(tracked_guild["icon"], Value::Null);
    assert_eq!(tracked_guild["banner"], Value::Null);
    assert_eq!(tracked_guild["features"], json!([]));
    assert!(tracked_guild.get("approximate_member_count").is_none());
    assert_eq!(by_name("Elsewhere")["permissions"], all_permissions());
    assert_eq!(by_name("Friends")["permissions"], "1024");
    let ids: Vec<u64> = guilds.iter().map(|g| id(&g["id"])).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ordered by id");
    for guild in &guilds {
        let parsed: twilight_model::user::CurrentUserGuild =
            serde_json::from_value(guild.clone()).unwrap();
        assert_eq!(parsed.id.get(), id(&guild["id"]));
    }
    let manages =
        |g: &Value| g["permissions"].as_str().unwrap().parse::<u64>().unwrap() & 0x20 != 0;
    assert!(manages(&tracked_guild) && !manages(&by_name("Friends")));

    // Which of them the bot is in: the bot's own guilds.
    let (status, bot_guilds) = browser
        .get("/users/@me/guilds", &format!("Bot {TOKEN}"))
        .await;
    assert_eq!(status, 200, "{bot_guilds}");
    let bot_ids: Vec<&Value> = bot_guilds
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["id"])
        .collect();
    assert!(bot_ids.contains(&&json!(tracked.to_string())));
    assert!(!bot_ids.contains(&&by_name("Elsewhere")["id"]));

    // Paging and counts.
    let (_, page) = browser
        .bearer(
            &format!(
                "/users/@me/guilds?limit=1&after={}&with_counts=true",
                ids[0]
            ),
            access,
        )
        .await;
    let page = page.as_array().unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(id(&page[0]["id"]), ids[1]);
    assert!(page[0]["approximate_member_count"].as_u64().unwrap() >= 1);
    assert_eq!(page[0]["approximate_presence_count"], 0);
    let (status, error) = browser.bearer("/users/@me/guilds?limit=201", access).await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], 50035);

    // The authorization itself.
    let (status, info) = browser.bearer("/oauth2/@me", access).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["scopes"], json!(["identify", "guilds"]));
    assert_eq!(info["application"]["id"], browser.client_id);
    assert_eq!(info["user"]["id"], "4242");

    // The guild's owner (GUILD_CREATE's owner_id) owns it: every permission.
    login(&control, json!({"user_id": owner})).await;
    let code = browser.code("guilds").await;
    let (_, tokens) = browser.exchange(&code).await;
    let (_, guilds) = browser
        .bearer("/users/@me/guilds", &tokens["access_token"])
        .await;
    assert_eq!(
        guilds,
        json!([{"id": owned_id.to_string(), "name": "Owned", "icon": null, "banner": null,
                "owner": true, "permissions": all_permissions(), "features": []}])
    );
    // ... and only `guilds` was granted: no user.
    let (status, error) = browser.bearer("/users/@me", &tokens["access_token"]).await;
    assert_eq!(
        (status, error),
        (401, json!({"message": "401: Unauthorized", "code": 0}))
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_single_use_and_a_second_use_revokes_the_first_tokens() {
    let (sim, control, browser) = setup().await;
    login(&control, json!({"user_id": "77"})).await;
    let code = browser.code("identify").await;
    let (status, tokens) = browser.exchange(&code).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, _) = browser.bearer("/users/@me", &tokens["access_token"]).await;
    assert_eq!(status, 200);

    let (status, error) = browser.exchange(&code).await;
    assert_eq!(status, 400);
    assert_eq!(
        error,
        json!({"error": "invalid_grant", "error_description": "Invalid \"code\" in request."})
    );
    // RFC 6749 §4.1.2: the tokens issued from a code used twice are revoked.
    let (status, _) = browser.bearer("/users/@me", &tokens["access_token"]).await;
    assert_eq!(status, 401);
    let (status, error) = browser
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!((status, &error["error"]), (400, &json!("invalid_grant")));

    // A code nobody issued.
    let (status, error) = browser.exchange("NotACodeAtAll").await;
    assert_eq!((status, &error["error"]), (400, &json!("invalid_grant")));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_uris_client_ids_scopes_and_consent() {
    let (sim, control, browser) = setup().await;
    let client_id = browser.client_id.clone();

    // Nobody signed in yet: an error page.
    let (status, location) = browser.authorize("identify", REDIRECT, "s").await;
    assert_eq!((status, location), (400, None));
    login(&control, json!({"user_id": "5150"})).await;

    // A redirect URI that is not registered, or an unknown client: an error page, never a
    // redirect.
    let (status, location) = browser
        .authorize("identify", "http://evil.test/callback", "s")
        .await;
    assert_eq!((status, location), (400, None));
    let (status, location) = browser
        .authorize_at(
            "/oauth2/authorize",
            &[
                ("response_type", "code"),
                ("client_id", "1234"),
                ("scope", "identify"),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!((status, location), (400, None));

    // Errors the client can hear about go back to it, with the state.
    let (status, location) = browser.authorize("identify guild", REDIRECT, "s1").await;
    assert_eq!(status, 302);
    let query = redirect_query(&location.unwrap());
    assert_eq!(query["error"], "invalid_scope");
    assert_eq!(query["state"], "s1");
    assert!(!query.contains_key("code"));
    let (status, location) = browser
        .authorize_at(
            "/oauth2/authorize",
            &[
                ("response_type", "id_token"),
                ("client_id", &client_id),
                ("scope", "identify"),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(status, 302);
    assert_eq!(
        redirect_query(&location.unwrap())["error"],
        "unsupported_response_type"
    );

    // The user cancels.
    login(&control, json!({"user_id": "5150", "deny": true})).await;
    let (status, location) = browser.authorize("identify", REDIRECT, "s2").await;
    assert_eq!(status, 302);
    let query = redirect_query(&location.unwrap());
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["state"], "s2");

    // Under /api/v10 too; without redirect_uri, the first registered one.
    login(&control, json!({"user_id": "5150"})).await;
    let (status, location) = browser
        .authorize_at(
            "/api/v10/oauth2/authorize",
            &[
                ("response_type", "code"),
                ("client_id", &client_id),
                ("scope", "identify"),
            ],
        )
        .await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let code = redirect_query(&location)["code"].clone();

    // The token request must name the redirect URI the authorization used, if it named one.
    let code_with_uri = browser.code("identify").await;
    let (status, error) = browser
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code_with_uri),
            ("redirect_uri", "http://dashboard.test/other"),
        ])
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        error,
        json!({"error": "invalid_grant", "error_description": "Invalid \"redirect_uri\" in request."})
    );
    let (status, error) = browser
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code_with_uri),
        ])
        .await;
    assert_eq!((status, &error["error"]), (400, &json!("invalid_grant")));
    // The authorization without one needs none (and the unversioned token URL works).
    let (status, tokens) = browser
        .post_form(
            "/api/oauth2/token",
            &[("grant_type", "authorization_code"), ("code", &code)],
            Some((&client_id, SECRET)),
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_are_checked() {
    let (sim, control, browser) = setup().await;
    login(&control, json!({"user_id": "31337"})).await;
    let client_id = browser.client_id.clone();
    let code = browser.code("identify").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];

    let invalid_client = (401, json!({"error": "invalid_client"}));
    let answer = browser
        .post_form("/api/v10/oauth2/token", &form, Some((&client_id, "wrong")))
        .await;
    assert_eq!(answer, invalid_client);
    let answer = browser
        .post_form("/api/v10/oauth2/token", &form, None)
        .await;
    assert_eq!(answer, invalid_client);
    let mut in_body = form.to_vec();
    in_body.extend([
        ("client_id", client_id.as_str()),
        ("client_secret", "wrong"),
    ]);
    let answer = browser
        .post_form("/api/v10/oauth2/token", &in_body, None)
        .await;
    assert_eq!(answer, invalid_client);

    // JSON is refused, as Discord documents.
    let res = browser
        .client
        .post(format!("http://{}/api/v10/oauth2/token", browser.addr))
        .basic_auth(&client_id, Some(SECRET))
        .json(&json!({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let error: Value = res.json().await.unwrap();
    assert_eq!(error["error"], "invalid_request");

    let (status, error) = browser.token(&[("grant_type", "password")]).await;
    assert_eq!(
        (status, error),
        (400, json!({"error": "unsupported_grant_type"}))
    );

    // The code was not spent by the refused requests: credentials in the body work.
    let mut good = form.to_vec();
    good.extend([("client_id", client_id.as_str()), ("client_secret", SECRET)]);
    let (status, tokens) = browser
        .post_form("/api/v10/oauth2/token", &good, None)
        .await;
    assert_eq!(status, 200, "{tokens}");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_and_access_tokens_expire_by_the_simulated_clock() {
    let (sim, control, browser) = setup().await;
    login(&control, json!({"user_id": "8080"})).await;

    let stale = browser.code("identify").await;
    advance(&control, 601).await;
    let (status, error) = browser.exchange(&stale).await;
    assert_eq!(status, 400);
    assert_eq!(error["error_description"], "Invalid \"code\" in request.");

    let fresh = browser.code("identify").await;
    advance(&control, 599).await;
    let (status, tokens) = browser.exchange(&fresh).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, _) = browser.bearer("/users/@me", &tokens["access_token"]).await;
    assert_eq!(status, 200);

    // Seven days later the access token is dead; its refresh token still works.
    advance(&control, 604_800).await;
    let (status, error) = browser.bearer("/users/@me", &tokens["access_token"]).await;
    assert_eq!(
        (status, error),
        (401, json!({"message": "401: Unauthorized", "code": 0}))
    );
    let (status, refreshed) = browser
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let (status, me) = browser
        .bearer("/users/@me", &refreshed["access_token"])
        .await;
    assert_eq!((status, &me["id"]), (200, &json!("8080")));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_the_refresh_token() {
    let (sim, control, browser) = setup().await;
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    login(
        &control,
        json!({"user_id": "99", "guilds": [{"guild_id": guild.to_string(), "permissions": 32}]}),
    )
    .await;
    let code = browser.code("identify guilds email").await;
    let (_, first) = browser.exchange(&code).await;
    let (status, me) = browser.bearer("/users/@me", &first["access_token"]).await;
    assert_eq!(status, 200);
    assert_eq!(me["verified"], true);
    assert!(me["email"].as_str().unwrap().contains('@'), "{me}");

    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = browser
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["scope"], "identify guilds email");
    assert_eq!(second["expires_in"], 604_800);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let (status, guilds) = browser
        .bearer("/users/@me/guilds", &second["access_token"])
        .await;
    assert_eq!(status, 200);
    assert_eq!(guilds[0]["permissions"], "32");

    // The old refresh token is spent.
    let (status, error) = browser
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        error,
        json!({"error": "invalid_grant", "error_description": "Invalid \"refresh_token\" in request"})
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_limit_what_a_token_reads() {
    let (sim, control, browser) = setup().await;
    login(&control, json!({"user_id": "1001"})).await;
    let code = browser.code("identify").await;
    let (_, tokens) = browser.exchange(&code).await;
    let access = &tokens["access_token"];
    let (status, _) = browser.bearer("/users/@me", access).await;
    assert_eq!(status, 200);
    let unauthorized = (401, json!({"message": "401: Unauthorized", "code": 0}));
    assert_eq!(
        browser.bearer("/users/@me/guilds", access).await,
        unauthorized
    );
    assert_eq!(
        browser.bearer("/users/@me", &json!("not-a-token")).await,
        unauthorized
    );
    assert_eq!(
        browser.get("/oauth2/@me", &format!("Bot {TOKEN}")).await,
        unauthorized
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_logs_the_user_out_everywhere() {
    let (sim, control, browser) = setup().await;
    login(&control, json!({"user_id": "2024"})).await;
    let (_, laptop) = browser
        .exchange(&browser.code("identify guilds").await)
        .await;
    let (_, phone) = browser.exchange(&browser.code("identify").await).await;
    let (_, state) = control.send(reqwest::Method::GET, "/oauth2", None).await;
    assert_eq!(state["signed_in"]["user_id"], "2024");
    assert_eq!(
        state["authorizations"]["2024"],
        json!(["identify", "guilds"])
    );

    let client_id = browser.client_id.clone();
    let (status, body) = browser
        .post_form(
            "/api/v10/oauth2/token/revoke",
            &[
                ("token", laptop["access_token"].as_str().unwrap()),
                ("token_type_hint", "access_token"),
            ],
            Some((&client_id, SECRET)),
        )
        .await;
    assert_eq!((status, body), (200, json!({})));
    // Every token of the application for that user is gone, as Discord documents.
    for token in [&laptop["access_token"], &phone["access_token"]] {
        let (status, _) = browser.bearer("/users/@me", token).await;
        assert_eq!(status, 401);
    }
    let (status, error) = browser
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", phone["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!((status, &error["error"]), (400, &json!("invalid_grant")));
    let (_, state) = control.send(reqwest::Method::GET, "/oauth2", None).await;
    assert_eq!(state["authorizations"], json!({}));

    // Revoking again (or any unknown token) is not an error; a wrong secret is.
    let (status, _) = browser
        .post_form(
            "/api/v10/oauth2/token/revoke",
            &[("token", laptop["access_token"].as_str().unwrap())],
            Some((&client_id, SECRET)),
        )
        .await;
    assert_eq!(status, 200);
    let (status, error) = browser
        .post_form(
            "/api/v10/oauth2/token/revoke",
            &[("token", "x")],
            Some((&client_id, "wrong")),
        )
        .await;
    assert_eq!((status, error), (401, json!({"error": "invalid_client"})));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_guilds_through_the_control_api() {
    let (sim, control, _) = setup().await;
    let (guild, _) = control.guild(json!({"name": "Home"})).await;
    // A tracked member is in the guild with @everyone's permissions.
    let truth = control.join(guild, json!({"user_id": "3003"})).await;
    assert_eq!(truth["user_id"], "3003");
    let (status, list) = control
        .send(reqwest::Method::GET, "/users/3003/guilds", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["permissions"], permissions::EVERYONE.to_string());
    assert_eq!(list[0]["bot_in_guild"], true);

    let (status, list) = control
        .send(
            reqwest::Method::PUT,
            "/users/3003/guilds",
            Some(json!([
                {"guild_id": guild.to_string(), "permissions": "32"},
                {"guild_id": "123456789", "name": "Not the bot's", "owner": true, "permissions": "0"},
            ])),
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["id"], "123456789");
    assert_eq!(list[0]["bot_in_guild"], false);
    assert_eq!(list[0]["permissions"], all_permissions());
    assert_eq!(list[1]["permissions"], "32");

    // Refused: naming the world's guild, owning it without being its owner.
    for body in [
        json!([{"guild_id": guild.to_string(), "name": "x"}]),
        json!([{"guild_id": guild.to_string(), "owner": true}]),
        json!([{"name": "dup", "guild_id": "5"}, {"name": "dup", "guild_id": "5"}]),
        json!([{"permissions": "lots"}]),
    ] {
        let (status, v) = control
            .send(reqwest::Method::PUT, "/users/3003/guilds", Some(body))
            .await;
        assert_eq!(status, 400, "{v}");
    }
    let (status, v) = control
        .send(
            reqwest::Method::PUT,
            "/oauth2/redirects",
            Some(json!({"redirect_uris": ["not a url"]})),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    sim.stop().await;
}
