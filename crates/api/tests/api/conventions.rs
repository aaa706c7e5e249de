//! One error shape for everything, 400 naming the parameter, 404/405, health, metrics, docs.

use invitrack_storage::keys::KeyScope;
use serde_json::json;

use crate::helpers::{BOT, GUILD, code_of, spawn_app};

#[tokio::test]
async fn unknown_paths_and_methods_answer_json() {
    let mut app = spawn_app().await;
    let key = app.key(None, KeyScope::Admin).await;
    let (status, body) = app.get("/nope", Some(&key)).await;
    assert_eq!((status, code_of(&body)), (404, "not_found"));
    let (status, body) = app
        .send(
            reqwest::Method::DELETE,
            &app.guild_path("/summary"),
            Some(&key),
            &json!({}),
        )
        .await;
    assert_eq!((status, code_of(&body)), (405, "method_not_allowed"));
    let (status, body) = app
        .send(
            reqwest::Method::POST,
            "/v1/invites/user",
            Some(&key),
            &json!({}),
        )
        .await;
    assert_eq!((status, code_of(&body)), (405, "method_not_allowed"));
    // Methods HTTP does not define are refused before anything counts them: they never become
    // labels of the metrics (which anyone could otherwise grow without a key).
    for n in 0..20 {
        let method =
            reqwest::Method::from_bytes(format!("XMETHOD{n}").as_bytes()).expect("a token");
        let response = app
            .http
            .request(method, app.url("/health/live"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 405);
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(code_of(&body), "method_not_allowed");
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("invitrack_api_http_requests_total"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("XMETHOD"),
        "unknown methods are not labels"
    );
    // A body over actix's limit is rewritten into the same shape.
    let response = app
        .http
        .post(app.url(&app.guild_path("/resets")))
        .bearer_auth(&key)
        .body(vec![b' '; 1 << 20])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 413);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(code_of(&body), "payload_too_large");
}

#[tokio::test]
async fn malformed_path_and_query_parameters_answer_400_naming_them() {
    let mut app = spawn_app().await;
    let key = app.key(None, KeyScope::Admin).await;
    for (path, name) in [
        (format!("/v1/bots/x/guilds/{GUILD}/summary"), "bot_id"),
        (format!("/v1/bots/{BOT}/guilds/-1/summary"), "guild_id"),
        (
            format!("/v1/bots/{BOT}/guilds/{GUILD}/members/1.5"),
            "member_id",
        ),
        (
            format!("/v1/bots/{BOT}/guilds/{GUILD}/inviters/%20/codes"),
            "inviter_id",
        ),
        (
            format!("/v1/bots/{BOT}/guilds/{GUILD}/leaderboard?order=best"),
            "order",
        ),
        (
            format!("/v1/bots/{BOT}/guilds/{GUILD}/leaderboard?range=1y"),
            "range",
        ),
        (
            format!("/v1/bots/{BOT}/guilds/{GUILD}/leaderboard?page=0"),
            "page",
        ),
        (
            format!("/v1/bots/{BOT}/guilds/{GUILD}/leaderboard?per_page=101"),
            "per_page",
        ),
        (
            format!("/v1/bots/{BOT}/guilds/{GUILD}/summary?days=abc"),
            "days",
        ),
        (
            format!("/v1/bots/{BOT}/guilds/{GUILD}/audit?limit=0"),
            "limit",
        ),
    ] {
        let (status, body) = app.get(&path, Some(&key)).await;
        assert_eq!(
            (status, code_of(&body)),
            (400, "invalid_parameter"),
            "{path}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .expect("message")
                .contains(name),
            "{path}: {body}"
        );
    }
    let (status, body) = app
        .post(
            &app.guild_path("/resets/abc/restore"),
            &key,
            &json!({"author": "me"}),
        )
        .await;
    assert_eq!((status, code_of(&body)), (400, "invalid_parameter"));
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("reset_id")
    );
    let (status, body) = app.get("/v1/invites/user?bot_id=%ZZ", Some(&key)).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn health_metrics_and_docs() {
    let app = spawn_app().await;
    let (status, body) = app.get("/health/live", None).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = app.get("/health/ready", None).await;
    assert_eq!((status, body), (200, json!({"status": "ready"})));
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("invitrack_api_http_requests_total"),
        "{metrics}"
    );
    let docs = app.http.get(app.url("/docs/")).send().await.expect("docs");
    assert_eq!(docs.status().as_u16(), 200);
    assert!(docs.text().await.expect("html").contains("swagger"));
    let (status, doc) = app.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
}
