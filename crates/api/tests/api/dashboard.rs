//! Leaderboard, member history, inviter codes, guild summary.

use invitrack_attribution::Verdict;
use invitrack_model::{ChannelId, UserId};
use invitrack_storage::invites::SeenInvite;
use invitrack_storage::keys::KeyScope;
use invitrack_storage::progress::{self, GuildStateRow};
use serde_json::json;

use crate::helpers::{GUILD, Join, OTHER_GUILD, at, code, code_of, guild_key, spawn_app};

const ALICE: u64 = 100_000_000_000_000_001;
const BOB: u64 = 100_000_000_000_000_002;
const CAROL: u64 = 100_000_000_000_000_003;

fn member(n: u64) -> u64 {
    200_000_000_000_000_000 + n
}

#[tokio::test]
async fn leaderboard_orders_pages_and_ranges() {
    let mut app = spawn_app().await;
    let key = app.key(Some(GUILD), KeyScope::Read).await;
    // Alice: 3 recent real joins and one 40 days ago. Bob: 2 recent, one fake. Carol: one
    // recent join whose member left, and a bonus of 5 (all time only: bonus added now).
    for (n, minutes) in [(1, 10), (2, 20), (3, 30)] {
        app.join(Join::invite(member(n), "alice1", ALICE, minutes))
            .await;
    }
    app.join(Join::invite(member(4), "alice2", ALICE, 40 * 24 * 60))
        .await;
    app.join(Join::invite(member(5), "bob1", BOB, 5)).await;
    app.join(Join {
        flagged_rejoin: true,
        ..Join::invite(member(6), "bob1", BOB, 6)
    })
    .await;
    app.join(Join::invite(member(7), "carol1", CAROL, 7)).await;
    app.leave(GUILD, member(7)).await;
    // Another guild's joins never show.
    app.join(Join {
        guild: OTHER_GUILD,
        ..Join::invite(member(8), "x", CAROL, 1)
    })
    .await;

    let base = app.guild_path("/leaderboard");
    let board = |query: &str| format!("{base}{query}");
    let (status, body) = app.get(&board(""), Some(&key)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["order"], "real");
    assert_eq!(body["range"], "all");
    assert_eq!(body["total_inviters"], 3);
    let ids: Vec<&str> = body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["inviter_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [ALICE.to_string(), BOB.to_string(), CAROL.to_string()]);
    assert_eq!(
        body["entries"][0],
        json!({"rank": 1, "inviter_id": ALICE.to_string(), "total": 4, "real": 4, "fake": 0,
               "leaves": 0, "bonus": 0, "joins": 4})
    );

    let (_, body) = app.get(&board("?range=7d"), Some(&key)).await;
    assert_eq!(body["entries"][0]["total"], 3, "{body}");
    let (_, body) = app.get(&board("?order=fake&per_page=1"), Some(&key)).await;
    assert_eq!(body["entries"][0]["inviter_id"], BOB.to_string());
    assert_eq!(body["entries"].as_array().map(Vec::len), Some(1));
    let (_, body) = app
        .get(
            &board("?order=leaves&page=1&per_page=1&range=30d"),
            Some(&key),
        )
        .await;
    assert_eq!(body["entries"][0]["inviter_id"], CAROL.to_string());
    let (_, body) = app
        .get(&board("?order=total&page=2&per_page=2"), Some(&key))
        .await;
    assert_eq!(body["entries"][0]["rank"], 3);
    let (_, body) = app.get(&board("?page=50"), Some(&key)).await;
    assert_eq!(body["entries"], json!([]));

    // Bonus counts in the leaderboard: all time, and in ranges when added in them.
    let admin = app.key(Some(GUILD), KeyScope::Admin).await;
    let (status, _) = app
        .post(
            &app.guild_path(&format!("/inviters/{CAROL}/bonus")),
            &admin,
            &json!({"amount": 5, "author": "mod"}),
        )
        .await;
    assert_eq!(status, 201);
    for query in ["?order=bonus", "?order=bonus&range=7d"] {
        let (_, body) = app.get(&board(query), Some(&key)).await;
        assert_eq!(
            body["entries"][0]["inviter_id"],
            CAROL.to_string(),
            "{query}"
        );
        assert_eq!(body["entries"][0]["bonus"], 5, "{query}");
    }
}

#[tokio::test]
async fn member_history_says_who_invited_them() {
    let mut app = spawn_app().await;
    let key = app.key(None, KeyScope::Read).await;
    app.join(Join::invite(member(1), "alice1", ALICE, 60)).await;
    app.leave(GUILD, member(1)).await;
    // Rejoining makes the second join fake (already_joined) by the rule, with no flag.
    app.join(Join::invite(member(1), "bob1", BOB, 0)).await;
    let (status, body) = app
        .get(
            &app.guild_path(&format!("/members/{}", member(1))),
            Some(&key),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["present"], true);
    assert_eq!(body["inviter_id"], BOB.to_string());
    assert_eq!(body["invite_code"], "bob1");
    assert_eq!(body["source"], "invite");
    let joins = body["joins"].as_array().expect("joins");
    assert_eq!(joins.len(), 2);
    assert_eq!(joins[0]["fake_reasons"], json!(["already_joined"]));
    assert_eq!(joins[1]["inviter_id"], ALICE.to_string());
    assert_eq!(joins[1]["left"], true);
    assert!(joins[1]["left_at"].is_string());

    // Unknown joins: no inviter.
    app.join(Join::unknown(member(2), 1)).await;
    let (_, body) = app
        .get(
            &app.guild_path(&format!("/members/{}", member(2))),
            Some(&key),
        )
        .await;
    assert_eq!(body["inviter_id"], json!(null));
    assert_eq!(body["joins"][0]["unknown_reason"], "untracked");

    let (status, body) = app.get(&app.guild_path("/members/12345"), Some(&key)).await;
    assert_eq!((status, code_of(&body)), (404, "member_not_found"));
}

#[tokio::test]
async fn inviter_codes_merge_join_rows_and_live_invites() {
    let mut app = spawn_app().await;
    let key = app.key(None, KeyScope::Read).await;
    app.join(Join::invite(member(1), "alice1", ALICE, 30)).await;
    app.join(Join::invite(member(2), "alice1", ALICE, 20)).await;
    app.join(Join {
        flagged_rejoin: true,
        ..Join::invite(member(3), "gone", ALICE, 10)
    })
    .await;
    app.leave(GUILD, member(2)).await;
    let invite = |name: &str, inviter: u64, uses: u64, max_uses: u64| SeenInvite {
        code: code(name),
        channel_id: Some(ChannelId::new(5)),
        inviter_id: Some(UserId::new(inviter)),
        uses,
        max_uses,
        max_age_secs: 0,
        temporary: false,
        created_at: Some(at(120)),
        expires_at: None,
    };
    // A snapshot that no longer shows "gone2" (seen before): it is not live any more.
    app.snapshot(vec![invite("gone2", ALICE, 0, 0)]).await;
    app.snapshot(vec![
        SeenInvite {
            expires_at: Some(at(-60)),
            ..invite("alice1", ALICE, 2, 10)
        },
        invite("alice9", ALICE, 0, 0),
        invite("bob1", BOB, 7, 0),
    ])
    .await;
    // The tracking health the worker saves with a guild's engine state.
    progress::save_guild_states(
        &mut app.conn,
        &[(
            guild_key(GUILD),
            GuildStateRow {
                state: json!({}),
                pending_joins: 2,
                missing_permissions: true,
                last_snapshot_at: Some(at(1)),
            },
        )],
    )
    .await
    .expect("state");

    let (status, body) = app
        .get(
            &app.guild_path(&format!("/inviters/{ALICE}/codes")),
            Some(&key),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let codes = body["codes"].as_array().expect("codes");
    let names: Vec<&str> = codes
        .iter()
        .map(|c| c["code"].as_str().expect("code"))
        .collect();
    assert_eq!(names, ["alice1", "alice9", "gone"]);
    assert_eq!(codes[0]["joins"], 2);
    assert_eq!(codes[0]["leaves"], 1);
    assert_eq!(codes[0]["live"], true);
    assert_eq!(codes[0]["uses"], 2);
    assert_eq!(codes[0]["max_uses"], 10);
    assert!(codes[0]["expires_at"].is_string());
    assert_eq!(codes[1]["joins"], 0);
    assert_eq!(codes[1]["expires_at"], json!(null));
    assert_eq!(codes[2]["live"], false);
    assert_eq!(codes[2]["fake"], 1);
    assert_eq!(codes[2]["max_uses"], json!(null));

    // The summary shows the tracking health saved with that state.
    let (status, body) = app
        .get(&app.guild_path("/summary?days=7"), Some(&key))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["health"]["tracked"], true);
    assert_eq!(body["health"]["missing_permissions"], true);
    assert_eq!(body["health"]["pending_joins"], 2);
    assert!(body["health"]["last_snapshot_at"].is_string());
}

#[tokio::test]
async fn summary_counts_joins_per_day_by_source() {
    let mut app = spawn_app().await;
    let key = app.key(None, KeyScope::Read).await;
    app.join(Join::invite(member(1), "a", ALICE, 1)).await;
    app.join(Join {
        flagged_rejoin: true,
        ..Join::invite(member(2), "a", ALICE, 2)
    })
    .await;
    for (n, verdict) in [
        (3, Verdict::Vanity { code: code("cool") }),
        (
            4,
            Verdict::Ambiguous {
                candidates: vec![code("a"), code("b")],
                inviter_id: None,
            },
        ),
    ] {
        app.join(Join {
            verdict,
            ..Join::unknown(member(n), 3)
        })
        .await;
    }
    app.join(Join::unknown(member(5), 3)).await;
    app.join(Join::invite(member(6), "a", ALICE, 3 * 24 * 60))
        .await;
    app.leave(GUILD, member(6)).await;
    app.join(Join::invite(member(7), "a", ALICE, 60 * 24 * 60))
        .await;

    let (status, body) = app
        .get(&app.guild_path("/summary?days=7"), Some(&key))
        .await;
    assert_eq!(status, 200, "{body}");
    let days = body["days"].as_array().expect("days");
    assert_eq!(days.len(), 7);
    let sum = |field: &str| {
        days.iter()
            .map(|d| d[field].as_i64().expect("n"))
            .sum::<i64>()
    };
    assert_eq!(
        (
            sum("invite"),
            sum("vanity"),
            sum("ambiguous"),
            sum("unknown"),
            sum("fake"),
            sum("leaves")
        ),
        (3, 1, 1, 1, 1, 1)
    );
    assert_eq!(body["health"]["unknown_joins"], 1);
    assert_eq!(body["health"]["tracked"], false);
    assert_eq!(body["totals"]["joins"], 4);
    assert_eq!(body["totals"]["real"], 2);
    assert_eq!(body["inviters"], 1);
    let (_, body) = app.get(&app.guild_path("/summary"), Some(&key)).await;
    assert_eq!(body["days"].as_array().map(Vec::len), Some(30));
    assert_eq!(body["health"]["messages_refused"], serde_json::Value::Null);

    // The bot was refused a join message: the guild's health says where and why.
    let guild = crate::helpers::guild_key(GUILD);
    invitrack_storage::posts::begin_batch(&mut app.conn, guild, ChannelId::new(4_242), &[1])
        .await
        .expect("began");
    invitrack_storage::posts::finish_batch(
        &mut app.conn,
        1,
        invitrack_storage::posts::PostOutcome::MissingPermissions,
        Some("Missing Permissions"),
    )
    .await
    .expect("recorded");
    let (_, body) = app.get(&app.guild_path("/summary"), Some(&key)).await;
    let refused = &body["health"]["messages_refused"];
    assert_eq!(
        (&refused["channel_id"], &refused["outcome"]),
        (
            &serde_json::json!("4242"),
            &serde_json::json!("missing_permissions")
        )
    );
}
