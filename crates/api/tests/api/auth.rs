//! Keys, scopes, guild binding, rate limits, CORS.

use std::time::{Duration, Instant};

use diesel_async::SimpleAsyncConnection as _;
use invitrack_api::ApiOptions;
use invitrack_model::BotId;
use invitrack_storage::keys::{self, KeyScope};
use serde_json::json;

use crate::helpers::{BOT, GUILD, OTHER_GUILD, TestApp, code_of, spawn_app, spawn_app_with};

#[tokio::test]
async fn keys_are_bound_to_bot_guild_and_scope() {
    let mut app = spawn_app().await;
    let read = app.key(Some(GUILD), KeyScope::Read).await;
    let admin = app.key(Some(GUILD), KeyScope::Admin).await;
    let summary = app.guild_path("/summary");

    let (status, body) = app.get(&summary, None).await;
    assert_eq!((status, code_of(&body)), (401, "unauthorized"));
    let (status, body) = app.get(&summary, Some("itk_nope")).await;
    assert_eq!((status, code_of(&body)), (401, "unauthorized"));
    let (status, _) = app.get(&summary, Some(&read)).await;
    assert_eq!(status, 200);
    // Another guild, another bot.
    let (status, body) = app
        .get(
            &format!("/v1/bots/{BOT}/guilds/{OTHER_GUILD}/summary"),
            Some(&read),
        )
        .await;
    assert_eq!((status, code_of(&body)), (403, "forbidden"));
    let (status, body) = app
        .get(&format!("/v1/bots/1/guilds/{GUILD}/summary"), Some(&admin))
        .await;
    assert_eq!((status, code_of(&body)), (403, "forbidden"));
    // Writes need the admin scope.
    let bonus = app.guild_path("/inviters/5/bonus");
    let body = json!({"amount": 1, "author": "me"});
    let (status, response) = app.post(&bonus, &read, &body).await;
    assert_eq!((status, code_of(&response)), (403, "insufficient_scope"));
    let (status, _) = app.post(&bonus, &admin, &body).await;
    assert_eq!(status, 201);
    // The audit log is for admins.
    let (status, response) = app.get(&app.guild_path("/audit"), Some(&read)).await;
    assert_eq!((status, code_of(&response)), (403, "insufficient_scope"));
}

#[tokio::test]
async fn revoked_keys_stop_working_once_the_cache_expires() {
    let mut app = spawn_app_with(ApiOptions {
        rate_limit_per_second: 0,
        key_cache_secs: 0,
        ..ApiOptions::default()
    })
    .await;
    let (token, key) = keys::create_key(&mut app.conn, BotId::new(BOT), None, KeyScope::Read, "x")
        .await
        .expect("key");
    let path = app.guild_path("/summary");
    assert_eq!(app.get(&path, Some(&token)).await.0, 200);
    assert!(
        keys::revoke_key(&mut app.conn, key.id)
            .await
            .expect("revoke")
    );
    assert_eq!(app.get(&path, Some(&token)).await.0, 401);
}

#[tokio::test]
async fn each_key_has_a_rate_limit() {
    let mut app = spawn_app_with(ApiOptions {
        rate_limit_per_second: 1,
        rate_limit_burst: 3,
        ..ApiOptions::default()
    })
    .await;
    let key = app.key(None, KeyScope::Read).await;
    let other = app.key(None, KeyScope::Read).await;
    let path = app.guild_path("/summary");
    for _ in 0..3 {
        assert_eq!(app.get(&path, Some(&key)).await.0, 200);
    }
    let response = app
        .http
        .get(app.url(&path))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 429);
    let retry: u64 = response
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry));
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(code_of(&body), "rate_limited");
    // Another key is not affected.
    assert_eq!(app.get(&path, Some(&other)).await.0, 200);
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let mut app = spawn_app_with(ApiOptions {
        cors_origins: vec!["https://dash.example".into()],
        ..ApiOptions::default()
    })
    .await;
    let key = app.key(None, KeyScope::Read).await;
    let path = app.url(&app.guild_path("/summary"));
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, &path)
        .header("Origin", "https://dash.example")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status().as_u16(), 200);
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(&b"https://dash.example"[..])
    );
    let response = app
        .http
        .get(&path)
        .bearer_auth(&key)
        .header("Origin", "https://dash.example")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let response = app
        .http
        .get(&path)
        .bearer_auth(&key)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .expect("request");
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );

    // Without configured origins, no CORS headers at all.
    let mut plain = spawn_app().await;
    let key = plain.key(None, KeyScope::Read).await;
    let response = plain
        .http
        .get(plain.url(&plain.guild_path("/summary")))
        .bearer_auth(&key)
        .header("Origin", "https://dash.example")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

/// A token shaped like a key that no key has.
fn unknown_token() -> String {
    format!(
        "itk_{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    )
}

/// `invitrack_api_key_checks_total{outcome}` from `/metrics`.
async fn key_checks(app: &TestApp, outcome: &str) -> u64 {
    let text = app.metrics().await;
    let prefix = format!("invitrack_api_key_checks_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().expect("a counter"))
}

/// Takes `api_keys` so that every key lookup waits until [`unlock_keys`]: a request that
/// answers meanwhile did not ask the database.
async fn lock_keys(app: &mut TestApp) {
    app.conn
        .batch_execute("BEGIN; LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock api_keys");
}

async fn unlock_keys(app: &mut TestApp) {
    app.conn.batch_execute("ROLLBACK").await.expect("unlock");
}

/// GET `path` with `token`, or `None` when no answer comes within `within`.
async fn get_within(app: &TestApp, path: &str, token: &str, within: Duration) -> Option<u16> {
    let request = app.http.get(app.url(path)).bearer_auth(token).send();
    tokio::time::timeout(within, request)
        .await
        .ok()
        .map(|response| response.expect("request").status().as_u16())
}

#[tokio::test]
async fn an_unknown_token_tried_again_does_not_reach_the_database() {
    let mut app = spawn_app().await;
    let path = app.guild_path("/summary");
    let token = unknown_token();
    assert_eq!(app.get(&path, Some(&token)).await.0, 401);
    assert_eq!(
        key_checks(&app, "unknown").await,
        1,
        "the first try is looked up"
    );
    assert_eq!(app.get(&path, Some(&token)).await.0, 401);
    assert_eq!(key_checks(&app, "unknown").await, 1, "the second is not");
    assert_eq!(key_checks(&app, "cached_unknown").await, 1);

    // The same seen from the database's side: with the keys table locked, the known-unknown
    // token is still answered at once, while a new one waits for the lock.
    lock_keys(&mut app).await;
    let again = get_within(&app, &path, &token, Duration::from_secs(3)).await;
    let other = get_within(&app, &path, &unknown_token(), Duration::from_millis(500)).await;
    unlock_keys(&mut app).await;
    assert_eq!(again, Some(401), "answered without a lookup");
    assert_eq!(other, None, "a token never seen is looked up");

    // A key created after all this works at once: only hashes of tokens tried are remembered
    // as unknown, and a new key's token was never tried (256 random bits).
    let key = app.key(None, KeyScope::Read).await;
    assert_eq!(app.get(&path, Some(&key)).await.0, 200);
    assert_eq!(key_checks(&app, "found").await, 1);
}

#[tokio::test]
async fn unknown_tokens_cannot_take_every_database_connection() {
    let mut app = spawn_app().await;
    let key = app.key(None, KeyScope::Read).await;
    let path = app.guild_path("/summary");
    assert_eq!(app.get(&path, Some(&key)).await.0, 200);

    // Lookups of distinct unknown tokens stuck in the database (as under a flood of them, only
    // longer): more than the pool's 4 connections.
    lock_keys(&mut app).await;
    let mut flood = Vec::new();
    for _ in 0..12 {
        let request = app
            .http
            .get(app.url(&path))
            .bearer_auth(unknown_token())
            .send();
        flood.push(tokio::spawn(request));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A caller with a cached key still gets a connection for its own queries.
    let served = get_within(&app, &path, &key, Duration::from_secs(3)).await;
    unlock_keys(&mut app).await;
    assert_eq!(served, Some(200));
    for request in flood {
        let response = request.await.expect("task").expect("request");
        assert_eq!(response.status().as_u16(), 401);
    }
}

#[tokio::test]
async fn a_revoked_key_stops_working_within_the_cache_time() {
    let mut app = spawn_app_with(ApiOptions {
        rate_limit_per_second: 0,
        key_cache_secs: 1,
        ..ApiOptions::default()
    })
    .await;
    let (token, key) = keys::create_key(&mut app.conn, BotId::new(BOT), None, KeyScope::Read, "x")
        .await
        .expect("key");
    let path = app.guild_path("/summary");
    assert_eq!(app.get(&path, Some(&token)).await.0, 200);
    assert!(
        keys::revoke_key(&mut app.conn, key.id)
            .await
            .expect("revoke")
    );
    let revoked = Instant::now();
    // Cached: still accepted for a moment.
    assert_eq!(app.get(&path, Some(&token)).await.0, 200);
    loop {
        if app.get(&path, Some(&token)).await.0 == 401 {
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(2),
            "a revoked key kept working past API_KEY_CACHE_SECS"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
