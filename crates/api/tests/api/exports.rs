//! What a dashboard starts from (`/v1/me`, the bot's guilds), the joins feed, the streamed
//! exports, and the dashboard's own files.

use diesel_async::RunQueryDsl;
use invitrack_storage::keys::KeyScope;
use serde_json::Value;

use crate::helpers::{BOT, GUILD, Join, OTHER_GUILD, spawn_app};

const ALICE: u64 = 100_000_000_000_000_001;
const BOB: u64 = 100_000_000_000_000_002;

fn member(n: u64) -> u64 {
    200_000_000_000_000_000 + n
}

#[tokio::test]
async fn a_key_says_what_it_opens_and_lists_only_its_guilds() {
    let mut app = spawn_app().await;
    app.join(Join::invite(member(1), "alice1", ALICE, 5)).await;
    app.join(Join {
        guild: OTHER_GUILD,
        ..Join::invite(member(2), "x", BOB, 5)
    })
    .await;
    for (guild, state) in [(GUILD, "{}"), (OTHER_GUILD, "{}")] {
        diesel::sql_query(format!(
            "INSERT INTO guild_states (bot_id, guild_id, state, pending_joins, missing_permissions, updated_at) \
             VALUES ({BOT}, {guild}, '{state}', 0, false, now())"
        ))
        .execute(&mut app.conn)
        .await
        .expect("guild state");
    }
    let bot_key = app.key(None, KeyScope::Admin).await;
    let guild_key = app.key(Some(GUILD), KeyScope::Read).await;

    let (status, me) = app.get("/v1/me", Some(&guild_key)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["bot_id"], BOT.to_string());
    assert_eq!(me["guild_id"], GUILD.to_string());
    assert_eq!(me["scope"], "read");
    assert_eq!(app.get("/v1/me", None).await.0, 401);

    let ids = |body: &Value| -> Vec<String> {
        body.as_array()
            .expect("a list")
            .iter()
            .map(|g| g["guild_id"].as_str().expect("id").to_owned())
            .collect()
    };
    let path = format!("/v1/bots/{BOT}/guilds");
    let (status, all) = app.get(&path, Some(&bot_key)).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids(&all), [GUILD.to_string(), OTHER_GUILD.to_string()]);
    // A key of one guild opens that guild only (`/v1/me` names it).
    assert_eq!(app.get(&path, Some(&guild_key)).await.0, 403);
    let (status, _) = app
        .get("/v1/bots/859000000000000002/guilds", Some(&bot_key))
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_joins_feed_pages_newest_first_and_filters_by_inviter() {
    let mut app = spawn_app().await;
    let key = app.key(Some(GUILD), KeyScope::Read).await;
    for n in 1..=3 {
        app.join(Join::invite(member(n), "alice1", ALICE, 10 - n as i64))
            .await;
    }
    for n in 4..=5 {
        app.join(Join::invite(member(n), "bob1", BOB, 10 - n as i64))
            .await;
    }
    let members = |body: &Value| -> Vec<String> {
        body["joins"]
            .as_array()
            .expect("joins")
            .iter()
            .map(|j| j["member_id"].as_str().expect("member").to_owned())
            .collect()
    };
    let base = app.guild_path("/joins");
    let (status, first) = app.get(&format!("{base}?limit=2"), Some(&key)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        members(&first),
        [member(5).to_string(), member(4).to_string()]
    );
    assert_eq!(first["joins"][0]["inviter_id"], BOB.to_string());
    assert_eq!(first["joins"][0]["source"], "invite");
    let before = first["next_before"].as_i64().expect("more pages");
    let (_, rest) = app
        .get(&format!("{base}?limit=5&before={before}"), Some(&key))
        .await;
    assert_eq!(members(&rest), [3, 2, 1].map(|n| member(n).to_string()));
    assert!(rest["next_before"].is_null());
    let (_, alice) = app
        .get(&format!("{base}?inviter_id={ALICE}"), Some(&key))
        .await;
    assert_eq!(members(&alice).len(), 3);
    let (status, bad) = app.get(&format!("{base}?limit=0"), Some(&key)).await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
}

#[tokio::test]
async fn exports_stream_every_join_and_inviter_as_csv_and_json() {
    let mut app = spawn_app().await;
    let key = app.key(Some(GUILD), KeyScope::Read).await;
    let other_admin = app.key(Some(OTHER_GUILD), KeyScope::Admin).await;
    const EMPTY_GUILD: u64 = 417_977_361_011_573_001;
    let nobody = app.key(Some(EMPTY_GUILD), KeyScope::Read).await;
    app.join(Join::invite(member(1), "alice1", ALICE, 30)).await;
    app.join(Join::invite(member(2), "bob1", BOB, 20)).await;
    // More joins than one page of the export (2,000), written directly.
    diesel::sql_query(format!(
        "INSERT INTO joins (bot_id, guild_id, member_id, created_at, updated_at, source, \
         invite_code, inviter_id, candidates, unknown_reason, fake, has_left, cleared, decided_at) \
         SELECT {BOT}, {GUILD}, 300000000000000000 + n, now(), now(), 'unknown', NULL, NULL, '{{}}', \
         'untracked', 0, false, false, now() FROM generate_series(1, 2100) AS n"
    ))
    .execute(&mut app.conn)
    .await
    .expect("joins");
    let download = |what: &str, format: &str| {
        let request = app
            .http
            .get(app.url(&app.guild_path(&format!("/export/{what}?format={format}"))))
            .bearer_auth(&key);
        async move {
            let response = request.send().await.expect("a response");
            assert_eq!(response.status(), 200);
            let disposition = response.headers()["content-disposition"]
                .to_str()
                .expect("ascii")
                .to_owned();
            assert!(disposition.starts_with("attachment"), "{disposition}");
            response.text().await.expect("a body")
        }
    };

    let csv = download("joins", "csv").await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 2102, "a header and every join");
    assert!(lines[0].starts_with("id,member_id,created_at,decided_at,source"));
    let ids: Vec<i64> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().expect("id").parse().expect("a number"))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "oldest first, each once"
    );
    assert!(
        lines[1].contains(&format!(",invite,alice1,{ALICE},")),
        "{}",
        lines[1]
    );

    let exported = download("joins", "json").await;
    let json: Value = serde_json::from_str(&exported).expect("JSON");
    let joins = json.as_array().expect("an array");
    assert_eq!(joins.len(), 2102);
    // Imported into another guild (in batches, more than one), it gives that guild the same
    // inviters.
    let imported: Value = app
        .http
        .post(app.url(&format!(
            "/v1/bots/{BOT}/guilds/{OTHER_GUILD}/import/joins?author=mover"
        )))
        .bearer_auth(&other_admin)
        .header("Content-Type", "application/json")
        .body(exported.clone())
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("JSON");
    assert_eq!(imported["written"], 2102, "{imported}");
    assert_eq!(joins[1]["inviter_id"], BOB.to_string());
    assert_eq!(joins[2101]["unknown_reason"], "untracked");

    let inviters = download("inviters", "csv").await;
    assert_eq!(
        inviters.lines().collect::<Vec<_>>(),
        [
            "inviter_id,total,real,fake,leaves,bonus,joins",
            &format!("{ALICE},1,1,0,0,0,1"),
            &format!("{BOB},1,1,0,0,0,1"),
        ]
    );
    let inviters: Value = serde_json::from_str(&download("inviters", "json").await).expect("JSON");
    assert_eq!(inviters[0]["inviter_id"], ALICE.to_string());
    assert_eq!(inviters[0]["real"], 1);

    // The guild the joins were imported into has the same inviters.
    let copied = app
        .http
        .get(app.url(&format!(
            "/v1/bots/{BOT}/guilds/{OTHER_GUILD}/export/inviters?format=csv"
        )))
        .bearer_auth(&other_admin)
        .send()
        .await
        .expect("a response")
        .text()
        .await
        .expect("a body");
    assert_eq!(copied, download("inviters", "csv").await);

    // A guild with nothing: the header alone, or an empty array.
    let empty = app
        .http
        .get(app.url(&format!(
            "/v1/bots/{BOT}/guilds/{EMPTY_GUILD}/export/inviters?format=json"
        )))
        .bearer_auth(&nobody)
        .send()
        .await
        .expect("a response");
    assert_eq!(empty.text().await.expect("body").trim(), "[]");
    let (status, body) = app
        .get(&app.guild_path("/export/joins?format=xml"), Some(&key))
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary_with_its_policy() {
    let app = spawn_app().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let moved = no_redirects
        .get(app.url("/dashboard"))
        .send()
        .await
        .expect("a response");
    assert_eq!(moved.status(), 308);
    assert_eq!(moved.headers()["location"], "/dashboard/");
    let page = app
        .http
        .get(app.url("/dashboard/"))
        .send()
        .await
        .expect("a response");
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(
        page.text()
            .await
            .expect("html")
            .contains("<script type=\"module\" src=\"app.js\">")
    );
    let script = app
        .http
        .get(app.url("/dashboard/app.js"))
        .send()
        .await
        .expect("a response");
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/javascript")
    );
    let etag = script.headers()["etag"].clone();
    let again = app
        .http
        .get(app.url("/dashboard/app.js"))
        .header("If-None-Match", etag)
        .send()
        .await
        .expect("a response");
    assert_eq!(again.status(), 304);
    let missing = app
        .http
        .get(app.url("/dashboard/secrets.txt"))
        .send()
        .await
        .expect("a response");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn an_export_imported_into_a_fresh_database_gives_the_same_counts() {
    let mut source = spawn_app().await;
    let admin = source.key(Some(GUILD), KeyScope::Admin).await;
    for n in 1..=4 {
        source
            .join(Join::invite(member(n), "alice1", ALICE, 60 - n as i64))
            .await;
    }
    source.join(Join::invite(member(5), "bob1", BOB, 30)).await;
    source
        .join(Join {
            flagged_rejoin: true,
            ..Join::invite(member(6), "bob1", BOB, 20)
        })
        .await;
    source.join(Join::unknown(member(7), 10)).await;
    source.leave(GUILD, member(2)).await;
    let bonus = |inviter: u64| source.guild_path(&format!("/inviters/{inviter}/bonus"));
    let (status, body) = source
        .post(
            &bonus(BOB),
            &admin,
            &serde_json::json!({"amount": 5, "author": "mod"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let export = |app: &crate::helpers::TestApp, key: &str, what: &str, format: &str| {
        let request = app
            .http
            .get(app.url(&app.guild_path(&format!("/export/{what}?format={format}"))))
            .bearer_auth(key);
        async move {
            request
                .send()
                .await
                .expect("a response")
                .text()
                .await
                .expect("a body")
        }
    };
    let joins = export(&source, &admin, "joins", "json").await;
    let inviters = export(&source, &admin, "inviters", "csv").await;
    // Another tracker's counts come as bonus: here, the source's bonus column.
    let mut bonus_csv = String::from("inviter_id,amount,reason\n");
    for line in inviters.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        if cells[5] != "0" {
            bonus_csv.push_str(&format!("{},{},carried over\n", cells[0], cells[5]));
        }
    }

    let mut target = spawn_app().await;
    let target_admin = target.key(Some(GUILD), KeyScope::Admin).await;
    let read = target.key(Some(GUILD), KeyScope::Read).await;
    let import = |path: &str, body: String, content_type: &str| {
        let request = target
            .http
            .post(target.url(&target.guild_path(&format!("{path}?author=mover"))))
            .bearer_auth(&target_admin)
            .header("Content-Type", content_type)
            .body(body);
        async move {
            let response = request.send().await.expect("a response");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, done) = import("/import/joins", joins.clone(), "application/json").await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["written"], 7);
    let (status, done) = import("/import/bonus", bonus_csv, "text/csv").await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["written"], 1);
    assert_eq!(
        export(&target, &target_admin, "inviters", "csv").await,
        inviters,
        "the same counts"
    );
    // Imported again: nothing new.
    let (_, again) = import("/import/joins", joins.clone(), "application/json").await;
    assert_eq!(
        (again["written"].as_i64(), again["already_there"].as_i64()),
        (Some(0), Some(7))
    );
    assert_eq!(
        export(&target, &target_admin, "inviters", "csv").await,
        inviters
    );

    // A bad file is refused whole, naming its lines.
    let (status, refused) = import(
        "/import/bonus",
        format!("inviter_id,amount\n{ALICE},3\nnot-an-id,2\n{BOB},0\n"),
        "text/csv",
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let message = refused["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("line 3") && message.contains("line 4"),
        "{message}"
    );
    assert_eq!(
        export(&target, &target_admin, "inviters", "csv").await,
        inviters
    );
    let (status, _) = import(
        "/import/joins",
        "[{\"member_id\": \"x\"}]".into(),
        "application/json",
    )
    .await;
    assert_eq!(status, 400);
    // A good file with one bad join at its end: refused whole, naming it.
    let spoiled = joins.replace("\n]\n", ",\n{\"member_id\": \"x\"}\n]\n");
    assert_ne!(spoiled, joins);
    let (status, refused) = import("/import/joins", spoiled, "application/json").await;
    assert_eq!(status, 400, "{refused}");
    let message = refused["error"]["message"].as_str().expect("message");
    assert!(message.contains("join 7"), "{message}");
    assert_eq!(
        export(&target, &target_admin, "inviters", "csv").await,
        inviters
    );
    // A read key may not import.
    let response = target
        .http
        .post(target.url(&target.guild_path("/import/bonus?author=x")))
        .bearer_auth(&read)
        .body("inviter_id,amount\n")
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), 403);
    target.assert_counters_match_rows().await;
}

#[tokio::test]
async fn a_guilds_admins_manage_its_own_keys() {
    let mut app = spawn_app().await;
    let admin = app.key(Some(GUILD), KeyScope::Admin).await;
    // A bot-wide key (labelled "test" too) is not the guild's: never listed below.
    app.key(None, KeyScope::Read).await;
    let other = app.key(Some(OTHER_GUILD), KeyScope::Admin).await;
    let keys = app.guild_path("/keys");
    let (status, made) = app
        .post(
            &keys,
            &admin,
            &serde_json::json!({"label": "stats site", "scope": "read", "author": "owner"}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let token = made["token"].as_str().expect("token").to_owned();
    assert_eq!(made["scope"], "read");
    // The new key reads its guild, and may not write or make keys.
    let (status, _) = app.get(&app.guild_path("/summary"), Some(&token)).await;
    assert_eq!(status, 200);
    let (status, _) = app.get(&keys, Some(&token)).await;
    assert_eq!(status, 403);
    // Listed for its guild only, without the token; bot-wide keys are not listed.
    let (_, listed) = app.get(&keys, Some(&admin)).await;
    let labels: Vec<&str> = listed
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["label"].as_str().expect("label"))
        .collect();
    assert_eq!(labels, ["stats site", "test"]);
    assert!(listed[0].get("token").is_none());
    // Another guild's admin cannot revoke it; its own can, audited.
    let id = made["id"].as_i64().expect("id");
    let revoke = format!("{keys}/{id}?author=owner");
    let (status, _) = app
        .send(reqwest::Method::DELETE, &revoke, Some(&other), &Value::Null)
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .send(reqwest::Method::DELETE, &revoke, Some(&admin), &Value::Null)
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .send(reqwest::Method::DELETE, &revoke, Some(&admin), &Value::Null)
        .await;
    assert_eq!(status, 404);
    let (_, audit) = app.get(&app.guild_path("/audit"), Some(&admin)).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["key.revoke", "key.create"]);
    let (status, bad) = app
        .post(
            &keys,
            &admin,
            &serde_json::json!({"label": "x", "scope": "owner", "author": "o"}),
        )
        .await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
}
