//! Bonus, resets and restore, fake settings, audit.

use invitrack_storage::keys::KeyScope;
use serde_json::{Value, json};

use crate::helpers::{GUILD, Join, code_of, spawn_app};

const ALICE: u64 = 100_000_000_000_000_001;
const BOB: u64 = 100_000_000_000_000_002;

#[tokio::test]
async fn bonus_is_added_removed_listed_and_validated() {
    let mut app = spawn_app().await;
    let admin = app.key(Some(GUILD), KeyScope::Admin).await;
    let bonus = app.guild_path(&format!("/inviters/{ALICE}/bonus"));
    let (status, body) = app
        .post(
            &bonus,
            &admin,
            &json!({"amount": 10, "author": "mod#1", "reason": "event"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["bonus"]["amount"], 10);
    assert_eq!(body["counts"]["bonus"], 10);
    assert_eq!(body["counts"]["total"], 10);
    let (status, body) = app
        .post(&bonus, &admin, &json!({"amount": -3, "author": "mod#1"}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["counts"]["bonus"], 7);
    assert_eq!(app.counts(&admin, ALICE).await, (7, 7, 0, 0, 7));
    let (status, body) = app.get(&bonus, Some(&admin)).await;
    assert_eq!(status, 200);
    let amounts: Vec<i64> = body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["amount"].as_i64().expect("amount"))
        .collect();
    assert_eq!(amounts, [-3, 10]);
    assert_eq!(body["entries"][1]["reason"], "event");

    for (body, code, name) in [
        (json!({"author": "x"}), "missing_parameter", "amount"),
        (
            json!({"amount": 0, "author": "x"}),
            "invalid_parameter",
            "amount",
        ),
        (
            json!({"amount": "5", "author": "x"}),
            "invalid_parameter",
            "amount",
        ),
        (
            json!({"amount": 5_000_000, "author": "x"}),
            "invalid_parameter",
            "amount",
        ),
        (json!({"amount": 1}), "missing_parameter", "author"),
        (
            json!({"amount": 1, "author": ""}),
            "invalid_parameter",
            "author",
        ),
        (
            json!({"amount": 1, "author": "x".repeat(101)}),
            "invalid_parameter",
            "author",
        ),
        (
            json!({"amount": 1, "author": "x", "reason": 5}),
            "invalid_parameter",
            "reason",
        ),
        (json!([1]), "invalid_body", "JSON object"),
    ] {
        let (status, response) = app.post(&bonus, &admin, &body).await;
        assert_eq!((status, code_of(&response)), (400, code), "{body}");
        assert!(
            response["error"]["message"]
                .as_str()
                .expect("message")
                .contains(name)
        );
    }
}

#[tokio::test]
async fn a_write_body_must_be_declared_as_json() {
    let mut app = spawn_app().await;
    let admin = app.key(None, KeyScope::Admin).await;
    let bonus = app.url(&app.guild_path(&format!("/inviters/{ALICE}/bonus")));
    let body = r#"{"amount": 2, "author": "owner"}"#;
    let post = |content_type: Option<&'static str>| {
        let mut request = app.http.post(&bonus).bearer_auth(&admin).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    for refused in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let response = post(refused).await.expect("request");
        assert_eq!(response.status().as_u16(), 415, "{refused:?}");
        let answer: Value = response.json().await.expect("json");
        assert_eq!(code_of(&answer), "unsupported_media_type");
    }
    let response = post(Some("application/json; charset=utf-8"))
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 201);
    // Nothing was added by the refused ones.
    let (_, list) = app
        .get(
            &app.guild_path(&format!("/inviters/{ALICE}/bonus")),
            Some(&admin),
        )
        .await;
    assert_eq!(list["entries"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn resets_are_soft_and_restorable() {
    let mut app = spawn_app().await;
    let admin = app.key(None, KeyScope::Admin).await;
    for n in 1..=3 {
        app.join(Join::invite(
            200 + n,
            "a",
            ALICE,
            10 + i64::try_from(n).expect("small"),
        ))
        .await;
    }
    app.join(Join::invite(300, "b", BOB, 5)).await;
    app.leave(GUILD, 201).await;
    app.post(
        &app.guild_path(&format!("/inviters/{ALICE}/bonus")),
        &admin,
        &json!({"amount": 2, "author": "mod"}),
    )
    .await;
    assert_eq!(app.counts(&admin, ALICE).await, (5, 4, 0, 1, 2));

    // Reset Alice only.
    let resets = app.guild_path("/resets");
    let (status, reset) = app
        .post(
            &resets,
            &admin,
            &json!({"inviter_id": ALICE.to_string(), "author": "mod", "reason": "season 2"}),
        )
        .await;
    assert_eq!(status, 201, "{reset}");
    assert_eq!(reset["joins_cleared"], 3);
    assert_eq!(reset["bonus_cleared"], 1);
    assert_eq!(reset["inviter_id"], ALICE.to_string());
    assert_eq!(app.counts(&admin, ALICE).await, (0, 0, 0, 0, 0));
    assert_eq!(app.counts(&admin, BOB).await, (1, 1, 0, 0, 0));
    app.assert_counters_match_rows().await;
    // The code endpoint shows the joins as cleared.
    let (_, rows) = app
        .get(
            &format!(
                "/v1/invites/code?bot_id={}&guild_id={GUILD}&invite_code=a",
                crate::helpers::BOT
            ),
            Some(&admin),
        )
        .await;
    assert!(
        rows.as_array()
            .expect("rows")
            .iter()
            .all(|r| r["cleared"] == true)
    );
    // A member of a cleared join leaves meanwhile: no count now, a leave after restore.
    app.leave(GUILD, 202).await;
    assert_eq!(app.counts(&admin, ALICE).await, (0, 0, 0, 0, 0));
    // New joins after the reset count.
    app.join(Join::invite(204, "a", ALICE, 1)).await;
    assert_eq!(app.counts(&admin, ALICE).await, (1, 1, 0, 0, 0));

    // Restore.
    let id = reset["id"].as_i64().expect("id");
    let restore = app.guild_path(&format!("/resets/{id}/restore"));
    let (status, restored) = app.post(&restore, &admin, &json!({"author": "mod"})).await;
    assert_eq!(status, 200, "{restored}");
    assert!(restored["restored_at"].is_string());
    assert_eq!(app.counts(&admin, ALICE).await, (6, 4, 0, 2, 2));
    app.assert_counters_match_rows().await;
    let (status, body) = app.post(&restore, &admin, &json!({"author": "mod"})).await;
    assert_eq!((status, code_of(&body)), (409, "already_restored"));
    let (status, body) = app
        .post(
            &app.guild_path("/resets/999999/restore"),
            &admin,
            &json!({"author": "mod"}),
        )
        .await;
    assert_eq!((status, code_of(&body)), (404, "reset_not_found"));
    let (status, body) = app.post(&restore, &admin, &json!({})).await;
    assert_eq!((status, code_of(&body)), (400, "missing_parameter"));

    // Whole guild.
    let (status, reset) = app.post(&resets, &admin, &json!({"author": "owner"})).await;
    assert_eq!(status, 201);
    assert_eq!(reset["inviter_id"], json!(null));
    assert_eq!(reset["joins_cleared"], 5);
    assert_eq!(app.counts(&admin, ALICE).await, (0, 0, 0, 0, 0));
    assert_eq!(app.counts(&admin, BOB).await, (0, 0, 0, 0, 0));
    let (_, board) = app.get(&app.guild_path("/leaderboard"), Some(&admin)).await;
    assert_eq!(board["total_inviters"], 0);
    let (status, list) = app.get(&resets, Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(list["resets"].as_array().map(Vec::len), Some(2));
    assert_eq!(list["resets"][0]["author"], "owner");
    let (status, body) = app
        .post(
            &resets,
            &admin,
            &json!({"inviter_id": "abc", "author": "x"}),
        )
        .await;
    assert_eq!((status, code_of(&body)), (400, "invalid_parameter"));
    app.assert_counters_match_rows().await;
}

#[tokio::test]
async fn fake_settings_are_read_and_written() {
    let mut app = spawn_app().await;
    let admin = app.key(None, KeyScope::Admin).await;
    let read = app.key(None, KeyScope::Read).await;
    let settings = app.guild_path("/settings");
    let (status, mut body) = app.get(&settings, Some(&read)).await;
    assert_eq!(status, 200);
    let templates = body
        .as_object_mut()
        .and_then(|o| o.remove("templates"))
        .expect("templates");
    assert_eq!(
        templates.as_object().map(serde_json::Map::len),
        Some(7),
        "every kind's template: {templates}"
    );
    assert_eq!(
        body,
        json!({"young_account": true, "self_invite": true, "no_avatar": false,
               "already_joined": true, "young_account_days": 7, "fake_reasons": 11,
               "enabled": ["young", "self", "already_joined"],
               "join_log_channel_id": null, "leave_log_channel_id": null, "invite_channel_id": null,
               "custom_templates": []})
    );
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            &settings,
            Some(&admin),
            &json!({"no_avatar": true, "young_account": false, "young_account_days": 30,
                    "invite_channel_id": "859000000000000077", "author": "owner"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fake_reasons"], 14);
    assert_eq!(body["invite_channel_id"], "859000000000000077");
    assert_eq!(body["young_account_days"], 30);
    // The worker reads what was written.
    let guild = crate::helpers::guild_key(GUILD);
    let stored = invitrack_storage::progress::fake_settings_of(&mut app.conn, &[guild])
        .await
        .expect("settings");
    assert_eq!(
        stored
            .get(&guild)
            .map(|s| (s.enabled.bits(), s.young_account_days)),
        Some((14, 30))
    );
    for (body, name) in [
        (json!({"no_avatar": "yes", "author": "o"}), "no_avatar"),
        (
            json!({"young_account_days": 0, "author": "o"}),
            "young_account_days",
        ),
        (json!({"no_avatar": true}), "author"),
    ] {
        let (status, response) = app
            .send(reqwest::Method::PUT, &settings, Some(&admin), &body)
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            response["error"]["message"]
                .as_str()
                .expect("message")
                .contains(name)
        );
    }
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            &settings,
            Some(&read),
            &json!({"author": "o"}),
        )
        .await;
    assert_eq!((status, code_of(&body)), (403, "insufficient_scope"));
}

#[tokio::test]
async fn log_channels_and_templates_are_set_checked_and_previewed() {
    let mut app = spawn_app().await;
    let admin = app.key(None, KeyScope::Admin).await;
    let read = app.key(None, KeyScope::Read).await;
    let app = app;
    let settings = app.guild_path("/settings");
    let put = async |body: serde_json::Value| {
        app.send(reqwest::Method::PUT, &settings, Some(&admin), &body)
            .await
    };
    let (status, body) = put(json!({
        "join_log_channel_id": "111111111111111111",
        "leave_log_channel_id": "222222222222222222",
        "templates": {
            "invite": {"text": "{member.mention} came through {code} of {inviter.mention}"},
            "leave": {"embed": {"title": "Left", "description": "{member.mention} left", "color": 16711680}}
        },
        "author": "owner"
    }))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["join_log_channel_id"], "111111111111111111");
    assert_eq!(body["leave_log_channel_id"], "222222222222222222");
    assert_eq!(body["custom_templates"], json!(["invite", "leave"]));
    assert_eq!(
        body["templates"]["invite"],
        json!({"text": "{member.mention} came through {code} of {inviter.mention}"})
    );
    let (_, read_back) = app.get(&settings, Some(&read)).await;
    assert_eq!(read_back, body, "GET returns what PUT stored");

    // `null` turns a channel off and takes a template back to its default; absent fields stay.
    let (status, body) = put(json!({
        "leave_log_channel_id": null,
        "templates": {"invite": null},
        "author": "owner"
    }))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["join_log_channel_id"], "111111111111111111");
    assert_eq!(body["leave_log_channel_id"], json!(null));
    assert_eq!(body["custom_templates"], json!(["leave"]));

    // Bad templates name the kind and the problem; nothing changes.
    for (templates, expected) in [
        (
            json!({"invite": {"text": "hi {member.nmae}"}}),
            "invite: unknown placeholder",
        ),
        (json!({"fake": {"text": "{code"}}), "fake:"),
        (json!({"leave": {"text": "x".repeat(2001)}}), "leave:"),
        (json!({"vanity": {"html": "<b>"}}), "vanity: expected"),
        (json!({"welcome": {"text": "hi"}}), "not a message kind"),
    ] {
        let (status, response) = put(json!({"templates": templates, "author": "o"})).await;
        assert_eq!(status, 400, "{templates}: {response}");
        let message = response["error"]["message"].as_str().expect("message");
        assert!(message.contains(expected), "{message}");
    }
    let (status, response) = put(json!({"join_log_channel_id": "general", "author": "o"})).await;
    assert_eq!((status, code_of(&response)), (400, "invalid_parameter"));
    let (_, after) = app.get(&settings, Some(&read)).await;
    assert_eq!(after["custom_templates"], json!(["leave"]));

    // A preview renders a template on sample data, with a read key.
    let preview = app.guild_path("/templates/preview");
    let (status, body) = app
        .post(
            &preview,
            &read,
            &json!({"kind": "invite", "template": {"text": "{member.mention} via {code}"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let content = body["content"].as_str().expect("text");
    assert!(
        content.starts_with("<@") && content.contains(" via "),
        "{content}"
    );
    // Without a template: the guild's own.
    let (status, body) = app.post(&preview, &read, &json!({"kind": "leave"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["embed"]["title"], "Left");
    let (status, body) = app
        .post(
            &preview,
            &read,
            &json!({"kind": "invite", "template": {"text": "{nope}"}}),
        )
        .await;
    assert_eq!((status, code_of(&body)), (400, "invalid_parameter"));
}

#[tokio::test]
async fn every_write_is_audited() {
    let mut app = spawn_app().await;
    let admin = app.key(None, KeyScope::Admin).await;
    app.post(
        &app.guild_path(&format!("/inviters/{ALICE}/bonus")),
        &admin,
        &json!({"amount": 1, "author": "a1", "reason": "r"}),
    )
    .await;
    let (status, reset) = app
        .post(&app.guild_path("/resets"), &admin, &json!({"author": "a2"}))
        .await;
    assert_eq!(status, 201, "{reset}");
    app.post(
        &app.guild_path(&format!("/resets/{}/restore", reset["id"])),
        &admin,
        &json!({"author": "a3"}),
    )
    .await;
    app.send(
        reqwest::Method::PUT,
        &app.guild_path("/settings"),
        Some(&admin),
        &json!({"no_avatar": true, "author": "a4"}),
    )
    .await;
    let (status, body) = app.get(&app.guild_path("/audit"), Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    let entries = body["entries"].as_array().expect("entries");
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().expect("a"),
                e["author"].as_str().expect("a"),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("settings.update", "a4"),
            ("reset.restore", "a3"),
            ("reset", "a2"),
            ("bonus.add", "a1")
        ]
    );
    assert_eq!(entries[3]["details"]["amount"], 1);
    assert_eq!(entries[3]["details"]["inviter_id"], ALICE.to_string());
    assert_eq!(entries[3]["key_label"], "test");
    assert!(entries[0]["key_id"].is_i64());
    assert_eq!(body["next_before"], json!(null));
    // Paging.
    let (_, page) = app
        .get(&app.guild_path("/audit?limit=2"), Some(&admin))
        .await;
    let before = page["next_before"].as_i64().expect("next page");
    let (_, page) = app
        .get(
            &app.guild_path(&format!("/audit?limit=2&before={before}")),
            Some(&admin),
        )
        .await;
    assert_eq!(page["entries"][0]["action"], "reset");
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_whole_guild_reset_is_retried_when_it_deadlocks_with_the_worker() {
    use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
    let mut app = spawn_app().await;
    let admin = app.key(None, KeyScope::Admin).await;
    app.join(Join::invite(1, "c", ALICE, 30)).await;
    app.join(Join::invite(2, "c", ALICE, 20)).await;
    let mut worker = invitrack_storage::connect(&app.database_url())
        .await
        .expect("worker connection");
    let mut watcher = invitrack_storage::connect(&app.database_url())
        .await
        .expect("watcher connection");
    let sql = |s: &str| diesel::sql_query(s.to_owned());
    // The reset's backend finds the deadlock first (1 s), so PostgreSQL aborts the reset.
    sql("SET deadlock_timeout = '20s'")
        .execute(&mut worker)
        .await
        .expect("set");
    let reset = worker
        .transaction::<_, diesel::result::Error, _>(async |w| {
            // The worker holds Alice's counters...
            sql(&format!(
                "UPDATE inviter_counts SET joins = joins WHERE inviter_id = {ALICE}"
            ))
            .execute(w)
            .await?;
            // ...the reset clears the joins, then waits for those counters...
            let http = app.http.clone();
            let url = app.url(&app.guild_path("/resets"));
            let key = admin.clone();
            let reset = tokio::spawn(async move {
                let response = http
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({"author": "owner"}))
                    .send()
                    .await
                    .expect("reset request");
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.expect("json"))
            });
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the reset never waited for the worker's lock"
                );
                let waiting: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "count(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                ))
                .get_result(&mut watcher)
                .await?;
                if waiting > 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            // ...and the worker now marks a leave on a join the reset holds: a deadlock.
            sql("UPDATE joins SET updated_at = now() WHERE member_id = 1")
                .execute(w)
                .await?;
            Ok(reset)
        })
        .await
        .expect("worker transaction");
    // The worker committed; the retried reset goes through.
    let (status, body) = reset.await.expect("reset task");
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["joins_cleared"], 2);
    // The first attempt's row was rolled back; its id was used up.
    assert_eq!(body["id"], 2, "the reset was retried");
    app.assert_counters_match_rows().await;
    let (_, audit) = app.get(&app.guild_path("/audit"), Some(&admin)).await;
    assert_eq!(audit["entries"].as_array().map(Vec::len), Some(1));
}
