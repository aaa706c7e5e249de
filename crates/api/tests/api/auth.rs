//! Keys, scopes, guild binding, rate limits, CORS.

use invitrack_api::ApiOptions;
use invitrack_model::BotId;
use invitrack_storage::keys::{self, KeyScope};
use serde_json::json;

use crate::helpers::{BOT, GUILD, OTHER_GUILD, code_of, spawn_app, spawn_app_with};

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
