//! Gateway op 8 (Request Guild Members) over a real socket with a real twilight `Shard`:
//! GUILD_MEMBERS_CHUNKs (every current member with its `joined_at`, chunks of 1000, the nonce,
//! `not_found`), the all-members rate limit (RATE_LIMITED, per guild, for a window the test
//! shortens through `SimConfig::member_requests`), the requests that get no answer, and the
//! payloads that close 4002.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    Control, all_intents, id, next_dispatch, ready, shard, shard_with, start, start_with,
};
use invitrack_sim::{DEFAULT_BOT_USER_ID, MemberRequestOptions, RunningSim, SimConfig};
use serde_json::{Value, json};
use std::{collections::HashSet, time::Duration};
use twilight_gateway::{
    Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _, error::ReceiveMessageErrorType,
    queue::InMemoryQueue,
};
use twilight_model::{
    gateway::payload::{incoming::MemberChunk, outgoing::RequestGuildMembers},
    id::Id,
    util::Timestamp,
};

/// The next dispatch, which must be a GUILD_MEMBERS_CHUNK.
async fn next_chunk(shard: &mut Shard<InMemoryQueue>) -> MemberChunk {
    match next_dispatch(shard).await {
        Event::MemberChunk(chunk) => chunk,
        other => panic!("expected GUILD_MEMBERS_CHUNK, got {other:?}"),
    }
}

/// The raw frame of the next event twilight cannot deserialize (skipping housekeeping).
///
/// twilight-model 0.18's `RateLimited` cannot read the `meta` Discord documents (its
/// `RateLimitMetadata` enum is externally tagged, so it expects
/// `{"RequestGuildMembers": {...}}`): twilight yields `ReceiveMessageErrorType::Deserializing`
/// for RATE_LIMITED, and that error carries the frame as received, which is what we check.
async fn next_undeserializable(shard: &mut Shard<InMemoryQueue>) -> Value {
    loop {
        let event = tokio::time::timeout(
            Duration::from_secs(10),
            shard.next_event(EventTypeFlags::all()),
        )
        .await
        .expect("an event within 10 s")
        .expect("the shard stream goes on");
        match event {
            Ok(Event::GatewayHello(_) | Event::GatewayHeartbeatAck | Event::GatewayHeartbeat) => {}
            Ok(other) => panic!("expected a frame twilight cannot read, got {other:?}"),
            Err(error) => match error.kind() {
                ReceiveMessageErrorType::Deserializing { event } => {
                    return serde_json::from_str(event).unwrap();
                }
                other => panic!("expected a deserializing error, got {other:?}"),
            },
        }
    }
}

/// `GET /control/guilds/{guild}/members`: the world's current members (the bot aside).
async fn listed_members(control: &Control, guild: u64) -> HashSet<u64> {
    let (status, body) = control
        .send(
            reqwest::Method::GET,
            &format!("/guilds/{guild}/members"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|m| id(&m["user_id"]))
        .collect()
}

fn all_members(guild: u64, nonce: &str) -> RequestGuildMembers {
    RequestGuildMembers::builder(Id::new(guild))
        .nonce(nonce)
        .query("", None)
}

fn chunk_ids(chunk: &MemberChunk) -> Vec<u64> {
    chunk.members.iter().map(|m| m.user.id.get()).collect()
}

#[tokio::test]
async fn every_current_member_comes_with_its_joined_at_and_the_nonce() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "chunks"})).await;
    let mut joined = Vec::new();
    for _ in 0..4 {
        joined.push(control.join(guild, json!({})).await);
    }
    let left = joined.remove(1);
    control.leave(guild, &left["user_id"]).await;

    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    shard.command(&all_members(guild, "n1"));
    let chunk = next_chunk(&mut shard).await;

    assert_eq!(chunk.guild_id, Id::new(guild));
    assert_eq!((chunk.chunk_index, chunk.chunk_count), (0, 1));
    assert_eq!(chunk.nonce.as_deref(), Some("n1"));
    assert!(chunk.not_found.is_empty());
    assert!(chunk.presences.is_empty());
    // Every current member (the owner and the three who stayed) and the bot, once each.
    let ids = chunk_ids(&chunk);
    let mut expected = listed_members(&control, guild).await;
    assert_eq!(expected.len(), 4);
    expected.insert(DEFAULT_BOT_USER_ID);
    assert_eq!(ids.len(), expected.len(), "{ids:?}");
    assert_eq!(ids.iter().copied().collect::<HashSet<_>>(), expected);
    assert!(!ids.contains(&id(&left["user_id"])), "a member who left");
    for truth in &joined {
        let member = chunk
            .members
            .iter()
            .find(|m| m.user.id.get() == id(&truth["user_id"]))
            .unwrap();
        assert_eq!(
            member.joined_at,
            Some(Timestamp::parse(truth["joined_at"].as_str().unwrap()).unwrap()),
            "the joined_at of GUILD_MEMBER_ADD and the ground truth"
        );
        assert!(member.roles.is_empty());
    }
    let bot = chunk
        .members
        .iter()
        .find(|m| m.user.id.get() == DEFAULT_BOT_USER_ID)
        .unwrap();
    assert_eq!(
        bot.roles.len(),
        1,
        "the bot has its role, as in GUILD_CREATE"
    );
    sim.stop().await;
}

#[tokio::test]
async fn more_than_a_thousand_members_come_in_chunks_covering_everyone_once() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "big"})).await;
    let (status, body) = control
        .post(
            &format!("/guilds/{guild}/joins/bulk"),
            json!({"count": 2100}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(body.as_array().unwrap().len(), 2100);

    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    shard.command(&all_members(guild, "big"));
    let first = next_chunk(&mut shard).await;
    // 2100 joins, the owner and the bot: 1000 + 1000 + 102.
    assert_eq!(first.chunk_count, 3);
    let mut chunks = vec![first];
    while chunks.len() < 3 {
        chunks.push(next_chunk(&mut shard).await);
    }
    let mut seen = HashSet::new();
    for (index, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.chunk_index as usize, index);
        assert_eq!(chunk.chunk_count, 3);
        assert_eq!(chunk.guild_id, Id::new(guild));
        assert_eq!(chunk.nonce.as_deref(), Some("big"));
        for member in chunk_ids(chunk) {
            assert!(seen.insert(member), "{member} sent twice");
        }
    }
    let sizes: Vec<usize> = chunks.iter().map(|c| c.members.len()).collect();
    assert_eq!(sizes, [1000, 1000, 102]);
    let mut expected = listed_members(&control, guild).await;
    expected.insert(DEFAULT_BOT_USER_ID);
    assert_eq!(seen, expected);
    sim.stop().await;
}

#[tokio::test]
async fn a_second_all_members_request_within_the_window_is_rate_limited_per_guild() {
    assert_eq!(
        SimConfig::default().member_requests.all_members_window_ms,
        30_000,
        "Discord's 30 s"
    );
    let window = Duration::from_millis(1500);
    let sim = start_with(SimConfig {
        member_requests: MemberRequestOptions {
            all_members_window_ms: 1500,
        },
        ..SimConfig::default()
    })
    .await;
    let control = Control::new(&sim);
    let (a, _) = control.guild(json!({"name": "a"})).await;
    let (b, _) = control.guild(json!({"name": "b"})).await;
    control.join(a, json!({})).await;

    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    let started = tokio::time::Instant::now();
    shard.command(&all_members(a, "a1"));
    assert_eq!(next_chunk(&mut shard).await.nonce.as_deref(), Some("a1"));
    let seq_before = shard.session().unwrap().sequence();

    // Again for the same guild within the window: RATE_LIMITED, as the change log shows it,
    // with the session's next sequence number.
    shard.command(&all_members(a, "a2"));
    let frame = next_undeserializable(&mut shard).await;
    assert_eq!(frame["op"], 0, "{frame}");
    assert_eq!(frame["t"], "RATE_LIMITED", "{frame}");
    assert_eq!(frame["s"].as_u64(), Some(seq_before + 1), "{frame}");
    assert_eq!(frame["d"]["opcode"], 8, "{frame}");
    let retry_after = frame["d"]["retry_after"].as_f64().unwrap();
    assert!(retry_after > 0.0 && retry_after <= 1.5, "{frame}");
    assert_eq!(
        frame["d"]["meta"],
        json!({"guild_id": a.to_string(), "nonce": "a2"}),
        "{frame}"
    );

    // No chunk for it: the next dispatches answer the next requests. A prefix query is not
    // a request for all members (not limited), and another guild has its own window.
    let query = RequestGuildMembers::builder(Id::new(a))
        .nonce("a3")
        .query("user", Some(1));
    shard.command(&query);
    let chunk = next_chunk(&mut shard).await;
    assert_eq!(chunk.nonce.as_deref(), Some("a3"));
    assert_eq!(chunk.members.len(), 1);
    shard.command(&all_members(b, "b1"));
    let chunk = next_chunk(&mut shard).await;
    assert_eq!(
        (chunk.guild_id, chunk.nonce.as_deref()),
        (Id::new(b), Some("b1"))
    );

    // After the window the guild's members are answered again.
    tokio::time::sleep_until(started + window + Duration::from_millis(100)).await;
    shard.command(&all_members(a, "a4"));
    let chunk = next_chunk(&mut shard).await;
    assert_eq!(
        (chunk.guild_id, chunk.nonce.as_deref()),
        (Id::new(a), Some("a4"))
    );
    assert_eq!(chunk.members.len(), 3, "the owner, the member and the bot");
    sim.stop().await;
}

#[tokio::test]
async fn user_ids_answer_the_members_and_list_the_others_in_not_found() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "ids"})).await;
    let first = id(&control.join(guild, json!({})).await["user_id"]);
    let second = id(&control.join(guild, json!({})).await["user_id"]);
    let gone = control.join(guild, json!({})).await;
    control.leave(guild, &gone["user_id"]).await;
    let gone = id(&gone["user_id"]);
    let unknown = 1_234_567_890_123_456_789;

    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    let request = RequestGuildMembers::builder(Id::new(guild))
        .nonce("ids")
        .user_ids([first, unknown, gone, second].map(Id::new).to_vec())
        .unwrap();
    shard.command(&request);
    let chunk = next_chunk(&mut shard).await;
    assert_eq!((chunk.chunk_index, chunk.chunk_count), (0, 1));
    assert_eq!(chunk.nonce.as_deref(), Some("ids"));
    assert_eq!(chunk_ids(&chunk), [first, second]);
    assert_eq!(chunk.not_found, [Id::new(unknown), Id::new(gone)]);

    // `user_ids` as one snowflake.
    shard.command(&RequestGuildMembers::builder(Id::new(guild)).user_id(Id::new(second)));
    let chunk = next_chunk(&mut shard).await;
    assert_eq!(chunk_ids(&chunk), [second]);
    assert!(chunk.not_found.is_empty());
    assert_eq!(chunk.nonce, None);
    sim.stop().await;
}

/// Creates guilds until one is on each of two shards: `(on shard 0, on shard 1)`.
async fn guilds_on_both_shards(control: &Control) -> (u64, u64) {
    let (mut mine, mut theirs) = (None, None);
    for n in 0..64 {
        let (guild, _) = control.guild(json!({"name": format!("g{n}")})).await;
        if (guild >> 22) % 2 == 0 {
            mine.get_or_insert(guild);
        } else {
            theirs.get_or_insert(guild);
        }
        if let (Some(mine), Some(theirs)) = (mine, theirs) {
            return (mine, theirs);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("no guild on each shard");
}

#[tokio::test]
async fn requests_the_session_may_not_make_get_nothing_and_bad_payloads_close_4002() {
    let sim: RunningSim = start(2).await;
    let control = Control::new(&sim);
    let (mine, theirs) = guilds_on_both_shards(&control).await;
    let member = id(&control.join(mine, json!({})).await["user_id"]);
    // Shard 0 of 2, without the GUILD_MEMBERS intent.
    let mut shard = shard_with(&sim, common::TOKEN, Intents::GUILDS, ShardId::new(0, 2));
    ready(&mut shard).await;

    // No answer: the entire member list (and any empty query) without GUILD_MEMBERS, a guild
    // of another shard, a guild the bot is not in.
    shard.command(&all_members(mine, "no-intent"));
    shard.command(
        &RequestGuildMembers::builder(Id::new(mine))
            .nonce("no-intent-5")
            .query("", Some(5)),
    );
    shard.command(
        &RequestGuildMembers::builder(Id::new(theirs))
            .nonce("other-shard")
            .user_id(Id::new(member)),
    );
    shard.command(
        &RequestGuildMembers::builder(Id::new(4_242_424_242_424_242))
            .nonce("unknown-guild")
            .user_id(Id::new(member)),
    );
    // Answered without the intent: user_ids (a 33-byte nonce is invalid: left out) and a
    // prefix query. These are the next dispatches, so the four above got nothing.
    shard.command(
        &RequestGuildMembers::builder(Id::new(mine))
            .nonce("x".repeat(33))
            .user_id(Id::new(member)),
    );
    let chunk = next_chunk(&mut shard).await;
    assert_eq!(chunk.guild_id, Id::new(mine));
    assert_eq!(chunk.nonce, None, "a nonce over 32 bytes is ignored");
    assert_eq!(chunk_ids(&chunk), [member]);
    shard.command(
        &RequestGuildMembers::builder(Id::new(mine))
            .nonce("x".repeat(32))
            .query("USER", Some(10)),
    );
    let chunk = next_chunk(&mut shard).await;
    assert_eq!(chunk.nonce.as_deref(), Some("x".repeat(32).as_str()));
    // The owner and the member ("user…"), not the bot ("invitrack-sim"), whatever the case.
    assert_eq!(chunk.members.len(), 2);
    assert!(chunk_ids(&chunk).contains(&member));

    // Payloads that do not decode as Discord documents op 8: close 4002 (twilight resumes).
    for d in [
        json!({"query": "", "limit": 0}),
        json!({"guild_id": mine.to_string(), "query": "user"}),
        json!({"guild_id": mine.to_string(), "limit": 0}),
        json!({"guild_id": mine.to_string(), "query": "", "limit": 0, "user_ids": [member.to_string()]}),
        json!({"guild_id": mine.to_string(), "query": "", "limit": -1}),
    ] {
        shard.send(json!({"op": 8, "d": d}).to_string());
        match next_dispatch(&mut shard).await {
            Event::GatewayClose(Some(frame)) => assert_eq!(frame.code, 4002, "{d}"),
            other => panic!("expected a close for {d}, got {other:?}"),
        }
        assert!(matches!(next_dispatch(&mut shard).await, Event::Resumed));
    }
    sim.stop().await;
}
