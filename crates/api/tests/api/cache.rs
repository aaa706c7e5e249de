//! The counts cache: committed changes reach cached answers within a small bound (PostgreSQL's
//! NOTIFY from the `inviter_counts` trigger), the API's own writes are read back at once, and a
//! lost listening connection makes the API bypass the cache until it is back.

use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl as _;
use invitrack_api::ApiOptions;
use invitrack_storage::keys::KeyScope;
use serde_json::json;

use crate::helpers::{BOT, GUILD, Join, TestApp, spawn_app_with};

async fn spawn_cached_app() -> TestApp {
    spawn_app_with(ApiOptions {
        rate_limit_per_second: 0,
        counts_cache_secs: 300,
        ..ApiOptions::default()
    })
    .await
}

/// `invitrack_api_counts_cache_total{event}` from `/metrics`.
async fn cache_events(app: &TestApp, event: &str) -> u64 {
    let text = app.metrics().await;
    let prefix = format!("invitrack_api_counts_cache_total{{event=\"{event}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().expect("a counter"))
}

/// Waits until the cache serves (its listener's LISTEN is in effect).
async fn wait_until_cached(app: &TestApp, key: &str, inviter: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hits = cache_events(app, "hit").await;
        app.counts(key, inviter).await;
        app.counts(key, inviter).await;
        if cache_events(app, "hit").await > hits {
            return;
        }
        assert!(Instant::now() < deadline, "the cache never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `GET /v1/invites/user` until `total` is `expected`; returns how long it took.
async fn time_until_total(app: &TestApp, key: &str, inviter: u64, expected: i64) -> Duration {
    let started = Instant::now();
    loop {
        if app.counts(key, inviter).await.0 == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a committed change was hidden for 2 s"
        );
    }
}

#[tokio::test]
async fn committed_changes_reach_cached_counts_at_once() {
    let mut app = spawn_cached_app().await;
    let key = app.key(None, KeyScope::Read).await;
    let inviter = 77_u64;
    app.join(Join::invite(1, "c", inviter, 10)).await;
    wait_until_cached(&app, &key, inviter).await;
    // Joins committed by the worker (another connection) while the old counts are cached.
    let mut slowest = Duration::ZERO;
    for n in 0..20_i64 {
        assert_eq!(app.counts(&key, inviter).await.0, n + 1);
        app.join(Join::invite(
            u64::try_from(100 + n).expect("small"),
            "c",
            inviter,
            5,
        ))
        .await;
        slowest = slowest.max(time_until_total(&app, &key, inviter, n + 2).await);
    }
    println!("slowest commit-to-visible: {slowest:?}");
    // The leaderboard is invalidated the same way.
    let (status, board) = app
        .get(&app.guild_path("/leaderboard?order=total"), Some(&key))
        .await;
    assert_eq!(status, 200);
    assert_eq!(board["entries"][0]["total"], 21);
    app.leave(GUILD, 100).await;
    let started = Instant::now();
    loop {
        let (_, board) = app
            .get(&app.guild_path("/leaderboard?order=total"), Some(&key))
            .await;
        if board["entries"][0]["leaves"] == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "stale leaderboard"
        );
    }
}

#[tokio::test]
async fn the_apis_own_writes_are_read_back_at_once() {
    let mut app = spawn_cached_app().await;
    let admin = app.key(None, KeyScope::Admin).await;
    let inviter = 78_u64;
    app.join(Join::invite(1, "c", inviter, 10)).await;
    wait_until_cached(&app, &admin, inviter).await;
    let bonus = app.guild_path(&format!("/inviters/{inviter}/bonus"));
    for n in 1..=5_i64 {
        let (status, _) = app
            .post(&bonus, &admin, &json!({"amount": 1, "author": "t"}))
            .await;
        assert_eq!(status, 201);
        assert_eq!(app.counts(&admin, inviter).await.4, n, "bonus read back");
    }
    let (status, _) = app
        .post(&app.guild_path("/resets"), &admin, &json!({"author": "t"}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(app.counts(&admin, inviter).await, (0, 0, 0, 0, 0));
}

/// Sets an inviter's `joins` without the trigger announcing it (what a lost notification would
/// look like to the API).
async fn silent_update(app: &mut TestApp, inviter: u64, joins: i64) {
    for statement in [
        "ALTER TABLE inviter_counts DISABLE TRIGGER USER".to_owned(),
        format!(
            "UPDATE inviter_counts SET joins = {joins} WHERE bot_id = {} AND guild_id = {} \
             AND inviter_id = {inviter}",
            BOT.cast_signed(),
            GUILD.cast_signed()
        ),
        "ALTER TABLE inviter_counts ENABLE TRIGGER USER".to_owned(),
    ] {
        diesel::sql_query(statement)
            .execute(&mut app.conn)
            .await
            .expect("silent update");
    }
}

#[tokio::test]
async fn a_lost_listener_bypasses_the_cache_until_it_is_back() {
    let mut app = spawn_cached_app().await;
    let key = app.key(None, KeyScope::Read).await;
    let inviter = 79_u64;
    app.join(Join::invite(1, "c", inviter, 10)).await;
    wait_until_cached(&app, &key, inviter).await;
    // The cache really serves: a change nobody announces stays hidden.
    silent_update(&mut app, inviter, 5).await;
    assert_eq!(app.counts(&key, inviter).await.0, 1);

    // The listening connection dies: the cache is dropped and bypassed.
    let killed: Vec<bool> = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
        "pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND application_name = 'invitrack-api-counts-listener'",
    ))
    .load(&mut app.conn)
    .await
    .expect("terminate the listener");
    assert_eq!(killed, vec![true], "one listening connection");
    let started = Instant::now();
    while app.counts(&key, inviter).await.0 != 5 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the cache kept serving without its listener"
        );
    }
    // Reconnected, it serves again.
    wait_until_cached(&app, &key, inviter).await;
    assert_eq!(app.counts(&key, inviter).await.0, 5);
}
