//! Webhooks: registered with a secret shown once, listed, removed, their deliveries read; bad
//! URLs and events named in 400s; private addresses refused unless the deployment allows them.

use invitrack_api::ApiOptions;
use invitrack_storage::keys::KeyScope;
use serde_json::json;

use crate::helpers::{GUILD, code_of, spawn_app, spawn_app_with};

#[tokio::test]
async fn webhooks_are_registered_listed_and_removed() {
    let mut app = spawn_app().await;
    let admin = app.key(Some(GUILD), KeyScope::Admin).await;
    let read = app.key(Some(GUILD), KeyScope::Read).await;
    let hooks = app.guild_path("/webhooks");

    let (status, body) = app
        .post(
            &hooks,
            &admin,
            &json!({"url": "https://example.com/invitrack", "events": ["member.leave", "member.join", "member.join"], "author": "mod#1"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("an id");
    let secret = body["secret"].as_str().expect("a secret");
    assert!(
        secret.starts_with("whsec_") && secret.len() == 6 + 64,
        "{secret}"
    );
    assert_eq!(body["events"], json!(["member.join", "member.leave"]));
    assert_eq!(body["url"], "https://example.com/invitrack");

    // Reads and writes need an admin key; the list never shows the secret.
    let (status, _) = app.get(&hooks, Some(&read)).await;
    assert_eq!(status, 403);
    let (status, body) = app.get(&hooks, Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["webhooks"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["webhooks"][0]["id"], id);
    assert_eq!(
        body["webhooks"][0]["deliveries"],
        json!({"pending": 0, "delivered": 0, "failed": 0})
    );
    assert!(!body.to_string().contains(secret));

    let deliveries = app.guild_path(&format!("/webhooks/{id}/deliveries"));
    let (status, body) = app.get(&deliveries, Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"deliveries": [], "next_before": null}));
    let (status, body) = app
        .get(&format!("{deliveries}?status=lost"), Some(&admin))
        .await;
    assert_eq!(
        (status, code_of(&body)),
        (400, "invalid_parameter"),
        "{body}"
    );

    // Removing: the author is a query parameter; twice is a 404.
    let one = app.guild_path(&format!("/webhooks/{id}"));
    let (status, body) = app
        .send(reqwest::Method::DELETE, &one, Some(&admin), &json!({}))
        .await;
    assert_eq!(
        (status, code_of(&body)),
        (400, "missing_parameter"),
        "{body}"
    );
    let with_author = format!("{one}?author=mod%231");
    let (status, _) = app
        .send(
            reqwest::Method::DELETE,
            &with_author,
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = app
        .send(
            reqwest::Method::DELETE,
            &with_author,
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(
        (status, code_of(&body)),
        (404, "webhook_not_found"),
        "{body}"
    );
    let (_, body) = app.get(&hooks, Some(&admin)).await;
    assert_eq!(body["webhooks"], json!([]));
    let (status, _) = app.get(&deliveries, Some(&admin)).await;
    assert_eq!(status, 404);

    // Both writes are in the audit log.
    let (_, audit) = app.get(&app.guild_path("/audit"), Some(&admin)).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["webhook.delete", "webhook.create"]);

    // Ten per guild.
    for n in 0..10 {
        let (status, body) = app
            .post(
                &hooks,
                &admin,
                &json!({"url": format!("https://example.com/{n}"), "events": ["member.join"], "author": "mod#1"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = app
        .post(
            &hooks,
            &admin,
            &json!({"url": "https://example.com/11", "events": ["member.join"], "author": "mod#1"}),
        )
        .await;
    assert_eq!(
        (status, code_of(&body)),
        (409, "too_many_webhooks"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_webhooks_are_refused_with_the_reason() {
    let mut app = spawn_app().await;
    let admin = app.key(Some(GUILD), KeyScope::Admin).await;
    let hooks = app.guild_path("/webhooks");
    let cases = [
        (
            json!({"events": ["member.join"], "author": "a"}),
            "missing_parameter",
            "url",
        ),
        (
            json!({"url": "ftp://example.com/", "events": ["member.join"], "author": "a"}),
            "invalid_parameter",
            "http or https",
        ),
        (
            json!({"url": "not a url", "events": ["member.join"], "author": "a"}),
            "invalid_parameter",
            "not a URL",
        ),
        (
            json!({"url": "http://127.0.0.1:8080/", "events": ["member.join"], "author": "a"}),
            "invalid_parameter",
            "WEBHOOKS_ALLOW_PRIVATE_NETWORKS",
        ),
        (
            json!({"url": "http://169.254.169.254/latest", "events": ["member.join"], "author": "a"}),
            "invalid_parameter",
            "private",
        ),
        (
            json!({"url": "http://localhost/", "events": ["member.join"], "author": "a"}),
            "invalid_parameter",
            "private",
        ),
        (
            json!({"url": "https://example.com/", "events": [], "author": "a"}),
            "invalid_parameter",
            "at least one",
        ),
        (
            json!({"url": "https://example.com/", "events": ["member.ban"], "author": "a"}),
            "invalid_parameter",
            "member.join, member.leave",
        ),
        (
            json!({"url": "https://example.com/", "events": "member.join", "author": "a"}),
            "invalid_parameter",
            "array",
        ),
        (
            json!({"url": "https://example.com/", "author": "a"}),
            "missing_parameter",
            "events",
        ),
        (
            json!({"url": "https://example.com/", "events": ["member.join"]}),
            "missing_parameter",
            "author",
        ),
    ];
    for (body, code, says) in cases {
        let (status, answer) = app.post(&hooks, &admin, &body).await;
        assert_eq!((status, code_of(&answer)), (400, code), "{body} → {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body} → {message}");
    }
    let (_, body) = app.get(&hooks, Some(&admin)).await;
    assert_eq!(body["webhooks"], json!([]), "nothing registered");
}

#[tokio::test]
async fn private_addresses_are_taken_where_the_deployment_allows_them() {
    let mut app = spawn_app_with(ApiOptions {
        webhooks_allow_private_networks: true,
        ..ApiOptions::default()
    })
    .await;
    let admin = app.key(Some(GUILD), KeyScope::Admin).await;
    let (status, body) = app
        .post(
            &app.guild_path("/webhooks"),
            &admin,
            &json!({"url": "http://127.0.0.1:8080/hook", "events": ["member.join"], "author": "a"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}
