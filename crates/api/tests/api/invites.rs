//! InviteLogger's two endpoints keep their exact shapes.

use invitrack_storage::keys::KeyScope;
use serde_json::json;

use crate::helpers::{BOT, GUILD, Join, code_of, spawn_app};

#[tokio::test]
async fn user_and_code_answer_invitelogger_shapes() {
    let mut app = spawn_app().await;
    let key = app.key(None, KeyScope::Read).await;
    let alice = 100_000_000_000_000_001;
    app.join(Join::invite(200_000_000_000_000_001, "abc", alice, 30))
        .await;
    app.join(Join::invite(200_000_000_000_000_002, "abc", alice, 20))
        .await;
    app.join(Join {
        flagged_rejoin: true,
        ..Join::invite(200_000_000_000_000_003, "abc", alice, 10)
    })
    .await;
    app.leave(GUILD, 200_000_000_000_000_002).await;

    let (status, body) = app
        .get(
            &format!("/v1/invites/user?bot_id={BOT}&guild_id={GUILD}&inviter_id={alice}"),
            Some(&key),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"total": 3, "leaves": 1, "fake": 1, "bonus": 0, "real": 1})
    );
    // The same as a GET body.
    let response = app
        .http
        .get(app.url("/v1/invites/user"))
        .bearer_auth(&key)
        .body(format!(
            r#"{{"bot_id":"{BOT}","guild_id":"{GUILD}","inviter_id":"{alice}"}}"#
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.text().await.expect("body"),
        r#"{"total":3,"leaves":1,"fake":1,"bonus":0,"real":1}"#
    );

    let (status, body) = app
        .get(
            &format!("/v1/invites/code?bot_id={BOT}&guild_id={GUILD}&invite_code=abc"),
            Some(&key),
        )
        .await;
    assert_eq!(status, 200);
    let rows = body.as_array().expect("array");
    assert_eq!(rows.len(), 3);
    let keys: Vec<&String> = rows[0].as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "cleared",
            "created_at",
            "fake",
            "left",
            "member_id",
            "updated_at"
        ]
    );
    assert_eq!(rows[1]["left"], json!(true));
    assert_eq!(rows[2]["fake"], json!(true));
    assert!(rows[0]["created_at"].as_str().expect("time").ends_with('Z'));
    // An inviter nobody joined through has zeros.
    let (status, body) = app
        .get(
            &format!("/v1/invites/user?bot_id={BOT}&guild_id={GUILD}&inviter_id=5"),
            Some(&key),
        )
        .await;
    assert_eq!((status, body["total"].as_i64()), (200, Some(0)));
}

#[tokio::test]
async fn seed_endpoints_name_bad_parameters() {
    let mut app = spawn_app().await;
    let key = app.key(None, KeyScope::Read).await;
    for (query, code, name) in [
        (
            format!("bot_id={BOT}&guild_id=abc&inviter_id=1"),
            "invalid_parameter",
            "guild_id",
        ),
        (
            format!("bot_id={BOT}&guild_id={GUILD}"),
            "missing_parameter",
            "inviter_id",
        ),
        (
            format!("bot_id=0&guild_id={GUILD}&inviter_id=1"),
            "invalid_parameter",
            "bot_id",
        ),
        (
            format!("bot_id={BOT}&guild_id={GUILD}&inviter_id=99999999999999999999999"),
            "invalid_parameter",
            "inviter_id",
        ),
    ] {
        let (status, body) = app
            .get(&format!("/v1/invites/user?{query}"), Some(&key))
            .await;
        assert_eq!((status, code_of(&body)), (400, code), "{query}");
        assert!(
            body["error"]["message"]
                .as_str()
                .expect("message")
                .contains(name),
            "{body}"
        );
    }
    let (status, body) = app
        .get(
            &format!("/v1/invites/code?bot_id={BOT}&guild_id={GUILD}&invite_code=no%20spaces"),
            Some(&key),
        )
        .await;
    assert_eq!((status, code_of(&body)), (400, "invalid_parameter"));
    let response = app
        .http
        .get(app.url("/v1/invites/user"))
        .bearer_auth(&key)
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 400);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(code_of(&body), "invalid_body");
}
