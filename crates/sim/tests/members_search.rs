//! `POST /guilds/{id}/members-search` (`docs/discord-members-search.md`) over real HTTP: 202
//! while the guild is indexed, each member found only after the search's lag, with how they
//! joined (invite code and inviter, vanity, neither), filters, sort and pages, and the form
//! checked as the community's documentation states it.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{TOKEN, start};
use invitrack_sim::{GuildSpec, InviteSpec, JoinSpec, JoinVia, MembersSearchOptions};
use serde_json::{Value, json};
use twilight_model::id::Id;

async fn search(sim: &invitrack_sim::RunningSim, guild: u64, body: &Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v10/guilds/{guild}/members-search",
            sim.api_proxy()
        ))
        .header("Authorization", format!("Bot {TOKEN}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

fn ids(answer: &Value) -> Vec<String> {
    answer["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member"]["user"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn members_are_found_with_how_they_joined_after_indexing_and_their_lag() {
    let sim = start(1).await;
    let world = sim.world();
    world.set_members_search(MembersSearchOptions {
        index_ms: 3_000,
        lag_ms: 20_000,
        retry_after_secs: 2.0,
    });
    let guild = world
        .create_guild(GuildSpec {
            name: "search".into(),
            vanity_code: Some("searchvanity".into()),
            manage_guild: true,
        })
        .unwrap()
        .guild_id;
    let inviter = Id::new(1_100_000_000_000_000_001);
    let invite = world
        .create_invite(
            guild,
            InviteSpec {
                inviter_id: inviter,
                max_uses: 0,
                max_age_secs: 0,
                temporary: false,
                code: Some("searchcode".into()),
            },
        )
        .unwrap();
    let by_invite = world
        .join(
            guild,
            JoinVia::Invite(invite.code.clone()),
            JoinSpec::default(),
        )
        .unwrap();
    world.advance_clock(Duration::from_secs(1));
    let by_vanity = world
        .join(guild, JoinVia::Vanity, JoinSpec::default())
        .unwrap();
    world.advance_clock(Duration::from_secs(1));
    let untracked = world
        .join(guild, JoinVia::Untracked, JoinSpec::default())
        .unwrap();

    // The first search starts the index: 202 with Discord's body until it is ready.
    let (status, body) = search(&sim, guild.get(), &json!({})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["code"], 110_000);
    assert_eq!(body["retry_after"], 2.0);
    world.advance_clock(Duration::from_secs(3));

    // Indexed, but the members joined under 20 s ago: not found yet.
    let (status, body) = search(&sim, guild.get(), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total_result_count"], 0, "{body}");
    world.advance_clock(Duration::from_secs(20));

    // Newest first by default, each with its source; the owner, a member since the guild was
    // made (with the first join in the same millisecond, the lower id after it), last.
    let (status, body) = search(&sim, guild.get(), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["guild_id"], guild.to_string());
    assert_eq!(body["total_result_count"], 4, "{body}");
    let found = ids(&body);
    let owner = found[3].clone();
    assert_eq!(
        found[..3],
        [untracked.user_id, by_vanity.user_id, by_invite.user_id].map(|id| id.to_string())
    );
    let members = body["members"].as_array().unwrap();
    assert_eq!(members[0]["join_source_type"], 0);
    assert_eq!(members[0]["source_invite_code"], Value::Null);
    assert_eq!(members[1]["join_source_type"], 6);
    assert_eq!(members[1]["source_invite_code"], "searchvanity");
    assert_eq!(members[1]["inviter_id"], Value::Null);
    assert_eq!(members[2]["join_source_type"], 5);
    assert_eq!(members[2]["source_invite_code"], "searchcode");
    assert_eq!(members[2]["inviter_id"], inviter.to_string());

    // Asked by id, as ingest will: only those.
    let (_, body) = search(
        &sim,
        guild.get(),
        &json!({"limit": 10, "and_query": {"user_id": {"or_query": [by_invite.user_id.to_string(), untracked.user_id.to_string()]}}}),
    )
    .await;
    assert_eq!(body["total_result_count"], 2, "{body}");
    let (_, body) = search(
        &sim,
        guild.get(),
        &json!({"and_query": {"join_source_type": {"or_query": [6]}}}),
    )
    .await;
    assert_eq!(ids(&body), [by_vanity.user_id.to_string()]);

    // Pages of one, oldest first, through the `after` cursor: every member once.
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let (_, page) = search(
            &sim,
            guild.get(),
            &json!({"limit": 1, "sort": 2, "after": after}),
        )
        .await;
        let Some(member) = page["members"].as_array().unwrap().first().cloned() else {
            break;
        };
        assert_eq!(page["total_result_count"], 4);
        let id = member["member"]["user"]["id"].as_str().unwrap().to_owned();
        let joined =
            chrono::DateTime::parse_from_rfc3339(member["member"]["joined_at"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
        after = json!({"user_id": id, "guild_joined_at": joined});
        seen.push(id);
    }
    let mut expected = vec![owner];
    expected
        .extend([by_invite.user_id, by_vanity.user_id, untracked.user_id].map(|id| id.to_string()));
    assert_eq!(seen, expected);

    // The form is checked first; a guild without Manage Server is refused.
    let (status, body) = search(&sim, guild.get(), &json!({"limit": 1001})).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (400, Some(50035)),
        "{body}"
    );
    world.set_manage_guild(guild, false).unwrap();
    let (status, body) = search(&sim, guild.get(), &json!({})).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (403, Some(50013)),
        "{body}"
    );
    sim.stop().await;
}
