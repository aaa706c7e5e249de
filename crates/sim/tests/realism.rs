//! The parts of Discord that make invite tracking hard, against the real twilight crates:
//! rate limits (route and global), latency with a read point, 5xx answers, the delay between
//! counters and dispatches both ways, temporary invites, OAuth2 joins, expiry in real time.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Control, TOKEN, all_intents, http, id, next_dispatch, ready, shard, start};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use twilight_gateway::Event;
use twilight_http::error::ErrorType;
use twilight_model::id::Id;

async fn put(control: &Control, path: &str, body: Value) {
    let (status, answer) = control.send(reqwest::Method::PUT, path, Some(body)).await;
    assert_eq!(status, 204, "{path}: {answer}");
}

async fn get(control: &Control, path: &str) -> Value {
    let (status, answer) = control.send(reqwest::Method::GET, path, None).await;
    assert_eq!(status, 200, "{path}: {answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_route_defaults_to_five_per_five_seconds_per_guild() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (g1, _) = control.guild(json!({"name": "a"})).await;
    let (g2, _) = control.guild(json!({"name": "b"})).await;
    let raw = reqwest::Client::new();
    let get_invites = |g: u64| {
        raw.get(format!("http://{}/api/v10/guilds/{g}/invites", sim.addr()))
            .header("Authorization", format!("Bot {TOKEN}"))
            .send()
    };
    for n in 0..5 {
        let res = get_invites(g1).await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(res.headers()["x-ratelimit-limit"], "5");
        assert_eq!(
            res.headers()["x-ratelimit-remaining"],
            (4 - n).to_string().as_str()
        );
    }
    let limited = get_invites(g1).await.unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    assert_eq!(limited.headers()["x-ratelimit-scope"], "user");
    let reset: f64 = limited.headers()["x-ratelimit-reset-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > 4.0 && reset <= 5.0, "{reset}");
    // Another guild has its own bucket.
    assert_eq!(get_invites(g2).await.unwrap().status().as_u16(), 200);

    let stats = get(&control, "/stats").await;
    assert_eq!(stats["rest"]["rate_limited"], 1);
    assert_eq!(stats["rest"]["global_rate_limited"], 0);
    assert_eq!(stats["rest"]["routes"]["guild_invites"]["rate_limited"], 1);
    assert_eq!(stats["rest"]["routes"]["guild_invites"]["requests"], 7);
    let limits = get(&control, "/ratelimits").await;
    assert_eq!(
        limits["guild_invites"],
        json!({"limit": 5, "window_ms": 5000})
    );
    assert_eq!(limits["global"], json!({"limit": 50, "window_ms": 1000}));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_limit_answers_429_global_and_twilight_gets_through() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let mut guilds = Vec::new();
    for n in 0..12 {
        guilds.push(control.guild(json!({"name": format!("g{n}")})).await.0);
    }
    put(
        &control,
        "/ratelimits/global",
        json!({"limit": 5, "window_ms": 500}),
    )
    .await;

    // Raw: the sixth request inside the window is a global 429, whatever the route.
    let raw = reqwest::Client::new();
    let mut last = None;
    for g in &guilds[..6] {
        last = Some(
            raw.get(format!(
                "http://{}/api/v10/guilds/{g}/vanity-url",
                sim.addr()
            ))
            .header("Authorization", format!("Bot {TOKEN}"))
            .send()
            .await
            .unwrap(),
        );
    }
    let limited = last.unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    assert_eq!(limited.headers()["x-ratelimit-global"], "true");
    assert_eq!(limited.headers()["x-ratelimit-scope"], "global");
    assert!(limited.headers().contains_key("retry-after"));
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["global"], true);
    assert!(body["retry_after"].as_f64().unwrap() > 0.0);
    tokio::time::sleep(Duration::from_millis(550)).await;

    // twilight: 12 requests on 12 buckets at once; all succeed, 5 per 500 ms at most.
    let client = http(&sim);
    let started = Instant::now();
    let calls = guilds.iter().map(|g| {
        let client = &client;
        async move {
            client
                .guild_vanity_url(Id::new(*g))
                .await
                .unwrap()
                .model()
                .await
                .unwrap()
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    assert_eq!(answers.len(), 12);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let stats = get(&control, "/stats").await;
    assert!(
        stats["rest"]["global_rate_limited"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    assert_eq!(
        stats["rest"]["rate_limited"],
        stats["rest"]["global_rate_limited"]
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_reads_uses_at_the_midpoint() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let code = control.invite(guild, json!({"inviter_id": "7"})).await;
    put(
        &control,
        "/faults/guild_invites",
        json!({"latency_ms": [400, 400], "read_at": 0.5}),
    )
    .await;
    let client = std::sync::Arc::new(http(&sim));
    let world = sim.world();

    for (join_after, expect_uses) in [(80, 1), (320, 1)] {
        let started = Instant::now();
        let fetch = {
            let client = std::sync::Arc::clone(&client);
            tokio::spawn(async move {
                client
                    .guild_invites(Id::new(guild))
                    .await
                    .unwrap()
                    .models()
                    .await
                    .unwrap()
            })
        };
        tokio::time::sleep(Duration::from_millis(join_after)).await;
        world
            .join(
                Id::new(guild),
                invitrack_sim::JoinVia::Invite(code.clone()),
                invitrack_sim::JoinSpec::default(),
            )
            .unwrap();
        let invites = fetch.await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(400));
        // First round: the join (80 ms) precedes the read (200 ms) and shows. Second round:
        // the join (320 ms) comes after the read, so the answer still shows the first one.
        assert_eq!(
            invites[0].uses,
            Some(expect_uses),
            "join after {join_after} ms"
        );
    }
    assert_eq!(world.invites(Id::new(guild)).unwrap()[0].uses, 2);
    sim.stop().await;
}

fn status_of(error: &twilight_http::Error) -> u16 {
    match error.kind() {
        ErrorType::Response { status, .. } => status.get(),
        ErrorType::Parsing { .. } => 0,
        other => panic!("expected an HTTP error answer, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_server_errors_are_errors_for_twilight() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    put(
        &control,
        "/faults/guild_invites",
        json!({"error_rate": 1.0}),
    )
    .await;
    let client = http(&sim);
    for _ in 0..6 {
        let error = client.guild_invites(Id::new(guild)).await.unwrap_err();
        let status = status_of(&error);
        // 500 is Discord JSON; 502/503 come from the edge as text (a parsing error).
        assert!(matches!(status, 0 | 500), "{error:?}");
    }
    let raw = reqwest::Client::new()
        .get(format!(
            "http://{}/api/v10/guilds/{guild}/invites",
            sim.addr()
        ))
        .header("Authorization", format!("Bot {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert!([500, 502, 503].contains(&raw.status().as_u16()));
    // Other routes are untouched, and errors do not eat the rate limit.
    client.current_user().await.unwrap();
    put(&control, "/faults/guild_invites", json!({})).await;
    client.guild_invites(Id::new(guild)).await.unwrap();
    let stats = get(&control, "/stats").await;
    assert_eq!(stats["rest"]["server_errors"], 7);
    assert_eq!(stats["rest"]["routes"]["guild_invites"]["server_errors"], 7);
    assert_eq!(stats["rest"]["rate_limited"], 0);
    let faults = get(&control, "/faults").await;
    assert_eq!(faults["routes"]["guild_invites"]["error_rate"], 0.0);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_add_after_the_counter() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    let code = control.invite(guild, json!({"inviter_id": "7"})).await;
    assert!(matches!(
        next_dispatch(&mut shard).await,
        Event::InviteCreate(_)
    ));
    put(
        &control,
        "/event-delay",
        json!({"min_ms": 300, "max_ms": 300}),
    )
    .await;

    let started = Instant::now();
    let joined = control.join(guild, json!({"code": code})).await;
    // The counter has moved already...
    assert_eq!(sim.world().invites(Id::new(guild)).unwrap()[0].uses, 1);
    // ...the dispatch comes 300 ms later, with joined_at the moment of the join.
    let Event::MemberAdd(member) = next_dispatch(&mut shard).await else {
        panic!("GUILD_MEMBER_ADD")
    };
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(280), "{waited:?}");
    assert_eq!(member.user.id.get(), id(&joined["user_id"]));
    assert_eq!(
        member.joined_at.unwrap().iso_8601().to_string(),
        joined["joined_at"].as_str().unwrap()
    );
    assert_eq!(
        get(&control, "/event-delay").await,
        json!({"min_ms": 300, "max_ms": 300})
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_after_the_member_add() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control
        .guild(json!({"name": "g", "vanity_code": "late"}))
        .await;
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    let code = control
        .invite(guild, json!({"inviter_id": "7", "max_uses": 1}))
        .await;
    assert!(matches!(
        next_dispatch(&mut shard).await,
        Event::InviteCreate(_)
    ));
    put(
        &control,
        "/event-delay",
        json!({"min_ms": -400, "max_ms": -400}),
    )
    .await;
    let world = sim.world();

    let started = Instant::now();
    control.join(guild, json!({"code": code})).await;
    control.join(guild, json!({"vanity": true})).await;
    // The one use is taken: nobody else gets in through it, even before the counter moves.
    let (status, _) = control
        .post(&format!("/guilds/{guild}/joins"), json!({"code": code}))
        .await;
    assert_eq!(status, 404);
    for _ in 0..2 {
        assert!(matches!(
            next_dispatch(&mut shard).await,
            Event::MemberAdd(_)
        ));
    }
    assert!(started.elapsed() < Duration::from_millis(300));
    // Dispatched, but the counters have not moved yet.
    assert_eq!(world.invites(Id::new(guild)).unwrap()[0].uses, 0);
    assert_eq!(
        world.vanity(Id::new(guild)).unwrap(),
        Some(("late".into(), 0))
    );
    // Then the invite's last use is counted: it is deleted (INVITE_DELETE).
    let Event::InviteDelete(deleted) = next_dispatch(&mut shard).await else {
        panic!("INVITE_DELETE")
    };
    assert_eq!(deleted.code, code);
    assert!(started.elapsed() >= Duration::from_millis(380));
    assert!(world.invites(Id::new(guild)).unwrap().is_empty());
    // The vanity join came a little after the invite join: its counter too.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        world.vanity(Id::new(guild)).unwrap(),
        Some(("late".into(), 1))
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_and_oauth2_joins_in_the_truth() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    let code = control
        .invite(guild, json!({"inviter_id": "7", "temporary": true}))
        .await;
    let Event::InviteCreate(created) = next_dispatch(&mut shard).await else {
        panic!("INVITE_CREATE")
    };
    assert!(created.temporary);
    let temp = control.join(guild, json!({"code": code})).await;
    assert_eq!(temp["temporary"], true);
    let oauth = control.join(guild, json!({"oauth2": true})).await;
    assert_eq!(oauth["path"], "oauth2");
    assert!(oauth["code"].is_null() && oauth["inviter_id"].is_null());
    assert_eq!(oauth["temporary"], false);
    for _ in 0..2 {
        assert!(matches!(
            next_dispatch(&mut shard).await,
            Event::MemberAdd(_)
        ));
    }
    // No counter moved for OAuth2.
    assert_eq!(sim.world().invites(Id::new(guild)).unwrap()[0].uses, 1);

    // The temporary member goes offline: removed.
    let (status, removed) = control
        .post(
            &format!("/guilds/{guild}/temporary-members/offline"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(removed, json!([temp["user_id"]]));
    let Event::MemberRemove(gone) = next_dispatch(&mut shard).await else {
        panic!("GUILD_MEMBER_REMOVE")
    };
    assert_eq!(gone.user.id.get(), id(&temp["user_id"]));
    let truth = get(&control, "/truth").await;
    assert!(truth[0]["left_at"].is_string());
    assert!(truth[1]["left_at"].is_null());

    // The truth as JSON lines.
    let path = std::env::temp_dir().join(format!("sim-truth-{}.jsonl", std::process::id()));
    let (status, written) = control.post("/truth/file", json!({"path": path})).await;
    assert_eq!(status, 200, "{written}");
    assert_eq!(written["lines"], 2);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, truth.as_array().unwrap().clone());
    let _ = std::fs::remove_file(&path);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_expire_in_real_time() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let client = http(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let code = control
        .invite(guild, json!({"inviter_id": "7", "max_age": 1}))
        .await;
    let invites = client
        .guild_invites(Id::new(guild))
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert_eq!(invites.len(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let invites = client
        .guild_invites(Id::new(guild))
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert!(invites.is_empty());
    let (status, _) = control
        .post(&format!("/guilds/{guild}/joins"), json!({"code": code}))
        .await;
    assert_eq!(status, 404);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_shard_resumes_without_losing_events() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    let (status, dropped) = control.post("/gateway/drop", json!({"shard": 0})).await;
    assert_eq!(status, 200);
    assert_eq!(dropped["dropped"], 1);
    let joined = control.join(guild, json!({})).await;
    loop {
        match next_dispatch(&mut shard).await {
            Event::Resumed | Event::GatewayClose(_) | Event::GatewayReconnect => {}
            Event::MemberAdd(m) => {
                assert_eq!(m.user.id.get(), id(&joined["user_id"]));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilight_waits_out_a_route_429() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    put(
        &control,
        "/ratelimits/guild_invites",
        json!({"limit": 1, "window_ms": 500}),
    )
    .await;
    // Someone else (another process with the same token) used the bucket.
    let raw = reqwest::Client::new()
        .get(format!(
            "http://{}/api/v10/guilds/{guild}/invites",
            sim.addr()
        ))
        .header("Authorization", format!("Bot {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 200);
    let started = Instant::now();
    http(&sim)
        .guild_invites(Id::new(guild))
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    let stats = get(&control, "/stats").await;
    assert_eq!(stats["rest"]["routes"]["guild_invites"]["rate_limited"], 1);
    sim.stop().await;
}
