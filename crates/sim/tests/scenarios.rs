//! Scenario files and the workload generator, end to end: played through the control API
//! while a real twilight shard listens, and by the `invitrack-sim` binary.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Control, all_intents, next_dispatch, ready, shard, start};
use serde_json::{Value, json};
use std::time::Duration;
use twilight_gateway::Event;

async fn wait_run(control: &Control, id: &Value) -> Value {
    for _ in 0..200 {
        let (status, run) = control
            .send(reqwest::Method::GET, &format!("/runs/{id}"), None)
            .await;
        assert_eq!(status, 200, "{run}");
        if run["state"] == "done" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("run {id} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_through_the_control_api() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    let scenario = json!({"speed": 4.0, "steps": [
        {"at_ms": 0, "op": "create_guild", "guild": "g", "vanity_code": "scn"},
        {"at_ms": 0, "op": "create_invite", "guild": "g", "inviter": "alice", "code": "one-use", "max_uses": 1},
        {"at_ms": 0, "op": "create_invite", "guild": "g", "inviter": "859000000000000777", "code": "open"},
        {"at_ms": 100, "op": "join", "guild": "g", "via": "invite", "code": "one-use", "user": "bob"},
        {"at_ms": 120, "op": "join", "guild": "g", "via": "vanity", "user": "carol"},
        {"at_ms": 140, "op": "join", "guild": "g", "via": "oauth2"},
        {"at_ms": 200, "op": "leave", "guild": "g", "user": "bob"},
        {"at_ms": 240, "op": "join", "guild": "g", "via": "invite", "code": "open", "user": "bob"},
        {"at_ms": 260, "op": "delete_invite", "code": "open"},
        {"at_ms": 280, "op": "set_manage_guild", "guild": "g", "manage_guild": false},
        {"at_ms": 300, "op": "join", "guild": "g", "via": "invite", "code": "gone", "user": "dave"},
        {"at_ms": 320, "op": "set_rate_limit", "route": "guild_invites", "limit": 2, "window_ms": 1000},
        {"at_ms": 320, "op": "set_faults", "route": "guild_invites", "latency_ms": [10, 20]},
        {"at_ms": 340, "op": "reconnect"}
    ]});
    let (status, started) = control.post("/scenarios", scenario).await;
    assert_eq!(status, 202, "{started}");
    let run = wait_run(&control, &started["run_id"]).await;
    assert_eq!(run["report"]["steps"], 14);
    assert_eq!(run["report"]["joins"], 4);
    assert_eq!(run["report"]["failed"], 1, "{run}");
    assert!(
        run["report"]["errors"][0]
            .as_str()
            .unwrap()
            .contains("step 10 (join)"),
        "{run}"
    );

    let mut names = Vec::new();
    while names.len() < 11 {
        let event = next_dispatch(&mut shard).await;
        let name = match &event {
            Event::GuildCreate(_) => "GUILD_CREATE",
            Event::InviteCreate(_) => "INVITE_CREATE",
            Event::InviteDelete(_) => "INVITE_DELETE",
            Event::MemberAdd(_) => "GUILD_MEMBER_ADD",
            Event::MemberRemove(_) => "GUILD_MEMBER_REMOVE",
            Event::RoleUpdate(_) => "GUILD_ROLE_UPDATE",
            _ => continue,
        };
        names.push(name);
    }
    assert_eq!(
        names,
        [
            "GUILD_CREATE",
            "INVITE_CREATE",
            "INVITE_CREATE",
            "GUILD_MEMBER_ADD",
            "INVITE_DELETE",
            "GUILD_MEMBER_ADD",
            "GUILD_MEMBER_ADD",
            "GUILD_MEMBER_REMOVE",
            "GUILD_MEMBER_ADD",
            "INVITE_DELETE",
            "GUILD_ROLE_UPDATE",
        ]
    );
    let (_, truth) = control.send(reqwest::Method::GET, "/truth", None).await;
    let paths: Vec<&str> = truth
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["invite", "vanity", "oauth2", "invite"]);
    // bob came back: same user, and the alice label became an inviter id.
    assert_eq!(truth[0]["user_id"], truth[3]["user_id"]);
    assert!(truth[0]["left_at"].is_string());
    assert_eq!(truth[3]["inviter_id"], "859000000000000777");
    let (_, limits) = control
        .send(reqwest::Method::GET, "/ratelimits", None)
        .await;
    assert_eq!(limits["guild_invites"]["limit"], 2);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_through_the_control_api_is_deterministic() {
    let spec = json!({"seed": 9, "guilds": 2, "duration_ms": 20000, "joins_per_sec": 2.0,
        "leave_share": 0.2, "rejoin_share": 0.5, "recreate_after_ms": [1000, 2000]});
    let mut runs = Vec::new();
    for _ in 0..2 {
        let sim = start(1).await;
        let control = Control::new(&sim);
        let (status, started) = control
            .post("/workloads", json!({"spec": spec, "speed": 1000.0}))
            .await;
        assert_eq!(status, 202, "{started}");
        let run = wait_run(&control, &started["run_id"]).await;
        assert_eq!(run["report"]["failed"], 0, "{run}");
        let (_, truth) = control.send(reqwest::Method::GET, "/truth", None).await;
        // What is fixed by the seed: paths, codes, inviters, the order.
        let shape: Vec<(Value, Value, Value)> = truth
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["path"].clone(),
                    t["code"].clone(),
                    t["inviter_id"].clone(),
                )
            })
            .collect();
        assert!(shape.len() > 50);
        runs.push(shape);
        sim.stop().await;
    }
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn the_binary_plays_a_scenario_file_and_writes_the_truth() {
    let dir = std::env::temp_dir().join(format!("sim-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("scenario.json");
    let truth = dir.join("truth.jsonl");
    std::fs::write(
        &scenario,
        json!({"steps": [
            {"op": "create_guild", "guild": "g"},
            {"op": "create_invite", "guild": "g", "inviter": "7", "code": "abc", "temporary": true},
            {"at_ms": 50, "op": "join", "guild": "g", "via": "invite", "code": "abc", "user": "u"},
            {"at_ms": 60, "op": "join", "guild": "g"},
            {"at_ms": 80, "op": "temporary_offline", "guild": "g"}
        ]})
        .to_string(),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_invitrack-sim"))
        .args(["--bind", "127.0.0.1:0", "--exit-after-run", "--scenario"])
        .arg(&scenario)
        .arg("--truth-file")
        .arg(&truth)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["joins"], 2);
    assert_eq!(report["failed"], 0);
    let lines: Vec<Value> = std::fs::read_to_string(&truth)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["path"], "invite");
    assert_eq!(lines[0]["code"], "abc");
    assert_eq!(lines[0]["inviter_id"], "7");
    assert_eq!(lines[0]["temporary"], true);
    assert!(lines[0]["left_at"].is_string());
    assert_eq!(lines[1]["path"], "untracked");
    let _ = std::fs::remove_dir_all(&dir);
}
