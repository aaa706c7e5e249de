//! End to end: the real twilight-gateway and twilight-http against the simulator over real
//! sockets, driven through the control API with reqwest.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    Control, TOKEN, all_intents, api_code, http, id, next_dispatch, ready, shard, shard_with, start,
};
use serde_json::json;
use std::time::Duration;
use twilight_gateway::{Event, Intents, ShardId};
use twilight_http::error::ErrorType;
use twilight_model::{
    gateway::payload::incoming::GuildCreate,
    guild::MemberFlags,
    id::{Id, marker::GuildMarker},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_and_guild_create_deserialize() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (g1, c1) = control
        .guild(json!({"name": "one", "vanity_code": "one-v", "manage_guild": true}))
        .await;
    let (g2, _) = control
        .guild(json!({"name": "two", "vanity_code": null, "manage_guild": false}))
        .await;

    let mut shard = shard(&sim, all_intents());
    let Event::Ready(r) = next_dispatch(&mut shard).await else {
        panic!("expected READY")
    };
    assert_eq!(r.version, 10);
    assert_eq!(r.user.id.get(), invitrack_sim::DEFAULT_BOT_USER_ID);
    assert!(r.user.bot);
    assert_eq!(r.resume_gateway_url, sim.gateway_url());
    assert_eq!(
        r.guilds.iter().map(|g| g.id.get()).collect::<Vec<_>>(),
        vec![g1, g2]
    );

    let Event::GuildCreate(create) = next_dispatch(&mut shard).await else {
        panic!("GUILD_CREATE")
    };
    let GuildCreate::Available(guild) = *create else {
        panic!("guild should be available")
    };
    assert_eq!(guild.id.get(), g1);
    assert_eq!(guild.name, "one");
    assert_eq!(guild.vanity_url_code.as_deref(), Some("one-v"));
    assert_eq!(guild.channels.len(), 1);
    assert_eq!(guild.channels[0].id.get(), c1);
    assert_eq!(guild.member_count, Some(2), "owner + bot");
    assert!(guild.joined_at.is_some());
    assert!(matches!(next_dispatch(&mut shard).await, Event::GuildCreate(g) if g.id().get() == g2));

    // A guild made while connected arrives as GUILD_CREATE.
    let (g3, _) = control.guild(json!({"name": "three"})).await;
    assert!(matches!(next_dispatch(&mut shard).await, Event::GuildCreate(g) if g.id().get() == g3));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_through_invite_moves_uses() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let client = http(&sim);
    let (guild, channel) = control.guild(json!({"name": "g"})).await;
    let mut shard = shard(&sim, all_intents());
    assert_eq!(ready(&mut shard).await, 1);

    let code = control
        .invite(guild, json!({"inviter_id": "111", "max_uses": 0, "max_age": 3600, "temporary": false, "code": null}))
        .await;
    let Event::InviteCreate(created) = next_dispatch(&mut shard).await else {
        panic!("INVITE_CREATE")
    };
    assert_eq!(created.code, code);
    assert_eq!(created.uses, 0);
    assert_eq!(created.max_age, 3600);
    assert_eq!(created.channel_id.get(), channel);
    assert_eq!(created.inviter.as_ref().map(|u| u.id.get()), Some(111));

    let joined = control.join(guild, json!({"code": code})).await;
    assert_eq!(joined["path"], "invite");
    assert_eq!(joined["code"], code.as_str());
    assert_eq!(joined["inviter_id"], "111");
    let Event::MemberAdd(member) = next_dispatch(&mut shard).await else {
        panic!("GUILD_MEMBER_ADD")
    };
    assert_eq!(member.guild_id.get(), guild);
    assert_eq!(member.user.id.get(), id(&joined["user_id"]));
    assert!(member.user.avatar.is_some());
    assert_eq!(member.user.discriminator, 0);
    assert!(!member.flags.contains(MemberFlags::DID_REJOIN));
    assert_eq!(
        member.joined_at.map(|t| t.iso_8601().to_string()),
        Some(joined["joined_at"].as_str().unwrap().to_owned()),
    );

    let invites = client
        .guild_invites(Id::new(guild))
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert_eq!(invites.len(), 1);
    assert_eq!(invites[0].code, code);
    assert_eq!(invites[0].uses, Some(1));
    assert_eq!(invites[0].max_age, Some(3600));
    assert!(invites[0].expires_at.is_some());
    assert!(invites[0].created_at.is_some());
    assert_eq!(invites[0].inviter.as_ref().map(|u| u.id.get()), Some(111));
    assert_eq!(
        invites[0].channel.as_ref().map(|c| c.id.get()),
        Some(channel)
    );

    // Untracked joins move nothing.
    let untracked = control
        .join(guild, json!({"avatar": false, "account_age_days": 2}))
        .await;
    assert_eq!(untracked["path"], "untracked");
    assert!(untracked["code"].is_null());
    let Event::MemberAdd(member) = next_dispatch(&mut shard).await else {
        panic!("GUILD_MEMBER_ADD")
    };
    assert!(member.user.avatar.is_none());
    let created_ms = (member.user.id.get() >> 22) as i64 + 1_420_070_400_000;
    let age_days =
        (member.joined_at.unwrap().as_micros() / 1000 - created_ms) as f64 / 86_400_000.0;
    assert!((age_days - 2.0).abs() < 0.01, "account age {age_days}");
    let invites = client
        .guild_invites(Id::new(guild))
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert_eq!(invites[0].uses, Some(1));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanity_uses() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let client = http(&sim);
    let (guild, _) = control
        .guild(json!({"name": "g", "vanity_code": "cool"}))
        .await;
    let (plain, _) = control.guild(json!({"name": "plain"})).await;

    let vanity = client
        .guild_vanity_url(Id::new(guild))
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!((vanity.code.as_deref(), vanity.uses), (Some("cool"), 0));
    for _ in 0..2 {
        let joined = control.join(guild, json!({"vanity": true})).await;
        assert_eq!(joined["path"], "vanity");
        assert_eq!(joined["code"], "cool");
        assert!(joined["inviter_id"].is_null());
    }
    let vanity = client
        .guild_vanity_url(Id::new(guild))
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(vanity.uses, 2);
    let none = client
        .guild_vanity_url(Id::new(plain))
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!((none.code, none.uses), (None, 0));
    // GET /invites/{vanity} resolves to the guild.
    let invite = client
        .invite("cool")
        .with_counts()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(invite.guild.map(|g| g.id.get()), Some(guild));
    assert_eq!(invite.approximate_member_count, Some(4));
    // A guild without vanity cannot be joined through one.
    let (status, body) = control
        .post(&format!("/guilds/{plain}/joins"), json!({"vanity": true}))
        .await;
    assert_eq!(status, 404, "{body}");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_uses_reached_deletes_the_invite() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let client = http(&sim);
    let (guild, channel) = control.guild(json!({"name": "g"})).await;
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    let code = control
        .invite(
            guild,
            json!({"inviter_id": "5", "max_uses": 2, "code": "two-uses"}),
        )
        .await;
    assert_eq!(code, "two-uses");
    assert!(matches!(next_dispatch(&mut shard).await, Event::InviteCreate(i) if i.max_uses == 2));

    control.join(guild, json!({"code": code})).await;
    assert!(matches!(
        next_dispatch(&mut shard).await,
        Event::MemberAdd(_)
    ));
    let invites = client
        .guild_invites(Id::new(guild))
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert_eq!(invites[0].uses, Some(1));

    control.join(guild, json!({"code": code})).await;
    assert!(matches!(
        next_dispatch(&mut shard).await,
        Event::MemberAdd(_)
    ));
    let Event::InviteDelete(deleted) = next_dispatch(&mut shard).await else {
        panic!("INVITE_DELETE")
    };
    assert_eq!(
        (
            deleted.code.as_str(),
            deleted.channel_id.get(),
            deleted.guild_id.get()
        ),
        ("two-uses", channel, guild)
    );

    let invites = client
        .guild_invites(Id::new(guild))
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert!(invites.is_empty());
    let error = client.invite(&code).await.unwrap_err();
    assert_eq!(api_code(&error), (404, 10006));
    let (status, body) = control
        .post(&format!("/guilds/{guild}/joins"), json!({"code": code}))
        .await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("two-uses"),
        "{body}"
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderator_delete_and_expiry() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let client = http(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    let deleted = control.invite(guild, json!({"inviter_id": "5"})).await;
    let expiring = control
        .invite(guild, json!({"inviter_id": "5", "max_age": 60}))
        .await;
    next_dispatch(&mut shard).await;
    next_dispatch(&mut shard).await;

    let (status, _) = control
        .send(
            reqwest::Method::DELETE,
            &format!("/invites/{deleted}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(matches!(next_dispatch(&mut shard).await, Event::InviteDelete(d) if d.code == deleted));

    // Expiry is silent: the next event is the marker guild, not an INVITE_DELETE.
    let (status, _) = control.post("/clock", json!({"advance_secs": 61})).await;
    assert_eq!(status, 204);
    let invites = client
        .guild_invites(Id::new(guild))
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert!(invites.is_empty());
    let (status, _) = control
        .post(&format!("/guilds/{guild}/joins"), json!({"code": expiring}))
        .await;
    assert_eq!(status, 404);
    let (marker, _) = control.guild(json!({"name": "marker"})).await;
    assert!(
        matches!(next_dispatch(&mut shard).await, Event::GuildCreate(g) if g.id().get() == marker)
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_manage_guild_is_403_50013() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let client = http(&sim);
    let (guild, _) = control
        .guild(json!({"name": "g", "vanity_code": "vv", "manage_guild": false}))
        .await;
    let error = client.guild_invites(Id::new(guild)).await.unwrap_err();
    assert_eq!(api_code(&error), (403, 50013));
    let error = client.guild_vanity_url(Id::new(guild)).await.unwrap_err();
    assert_eq!(api_code(&error), (403, 50013));

    // Without MANAGE_GUILD (so without MANAGE_CHANNELS) no invite events reach the bot.
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    control.invite(guild, json!({"inviter_id": "9"})).await;
    let (marker, _) = control.guild(json!({"name": "marker"})).await;
    assert!(
        matches!(next_dispatch(&mut shard).await, Event::GuildCreate(g) if g.id().get() == marker)
    );

    let (status, _) = control
        .send(
            reqwest::Method::PUT,
            &format!("/guilds/{guild}/permissions"),
            Some(json!({"manage_guild": true})),
        )
        .await;
    assert_eq!(status, 204);
    assert!(
        matches!(next_dispatch(&mut shard).await, Event::RoleUpdate(r) if r.guild_id.get() == guild)
    );
    let invites = client
        .guild_invites(Id::new(guild))
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert_eq!(invites.len(), 1);
    let error = client.guild_invites(Id::new(12_345)).await.unwrap_err();
    assert_eq!(api_code(&error), (404, 10004));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_closes_4004_and_rest_401() {
    let sim = start(1).await;
    let mut shard = shard_with(&sim, "wrong", all_intents(), ShardId::ONE);
    let close = loop {
        match common::next(&mut shard).await {
            Event::GatewayClose(frame) => break frame,
            Event::GatewayHello(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(close.map(|f| f.code), Some(4004));
    assert_eq!(shard.state(), twilight_gateway::ShardState::FatallyClosed);
    let end = tokio::time::timeout(
        Duration::from_secs(5),
        twilight_gateway::StreamExt::next_event(
            &mut shard,
            twilight_gateway::EventTypeFlags::all(),
        ),
    )
    .await;
    assert!(matches!(end, Ok(None)), "a fatal close ends the stream");

    let bad = twilight_http::Client::builder()
        .token("wrong".into())
        .proxy(sim.api_proxy(), true)
        .build();
    let error = bad.current_user().await.unwrap_err();
    assert!(matches!(error.kind(), ErrorType::Response { status, .. } if status.get() == 401));
    let raw = reqwest::get(format!("http://{}/api/v10/users/@me", sim.addr()))
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 401);
    assert_eq!(
        raw.json::<serde_json::Value>().await.unwrap(),
        json!({"message": "401: Unauthorized", "code": 0})
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatches_follow_intents() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let mut guilds_only = shard(&sim, Intents::GUILDS);
    let mut members_only = shard(&sim, Intents::GUILD_MEMBERS);
    assert_eq!(ready(&mut guilds_only).await, 1);
    // Without GUILDS, READY still lists the guild but no GUILD_CREATE follows.
    let Event::Ready(r) = next_dispatch(&mut members_only).await else {
        panic!("READY")
    };
    assert_eq!(r.guilds.len(), 1);

    let code = control.invite(guild, json!({"inviter_id": "5"})).await;
    let joined = control.join(guild, json!({"code": code})).await;
    control.leave(guild, &joined["user_id"]).await;
    let (marker, _) = control.guild(json!({"name": "marker"})).await;

    // GUILDS only: nothing but the marker's GUILD_CREATE.
    assert!(
        matches!(next_dispatch(&mut guilds_only).await, Event::GuildCreate(g) if g.id().get() == marker)
    );
    // GUILD_MEMBERS only: the member add/remove, no invite events, no GUILD_CREATE.
    assert!(matches!(
        next_dispatch(&mut members_only).await,
        Event::MemberAdd(_)
    ));
    assert!(
        matches!(next_dispatch(&mut members_only).await, Event::MemberRemove(m) if m.user.id.get() == id(&joined["user_id"]))
    );
    control.join(guild, json!({})).await;
    assert!(matches!(
        next_dispatch(&mut members_only).await,
        Event::MemberAdd(_)
    ));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_each_receive_their_guilds() {
    let sim = start(2).await;
    let control = Control::new(&sim);
    let client = http(&sim);
    let info = client
        .gateway()
        .authed()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(info.shards, 2);
    assert_eq!(info.url, sim.gateway_url());

    // Guild ids made in different milliseconds land on different shards.
    let mut by_shard: [Vec<u64>; 2] = [vec![], vec![]];
    while by_shard.iter().any(Vec::is_empty) {
        let (g, _) = control.guild(json!({"name": "g"})).await;
        by_shard[((g >> 22) % 2) as usize].push(g);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut shards: Vec<_> = twilight_gateway::bucket(0, 1, info.shards)
        .map(|id| shard_with(&sim, TOKEN, all_intents(), id))
        .collect();
    for (n, shard) in shards.iter_mut().enumerate() {
        let Event::Ready(r) = next_dispatch(shard).await else {
            panic!("READY")
        };
        assert_eq!(
            r.shard.map(|s| (s.number(), s.total())),
            Some((n as u32, 2))
        );
        let mut got: Vec<u64> = r.guilds.iter().map(|g| g.id.get()).collect();
        got.sort_unstable();
        assert_eq!(got, by_shard[n], "shard {n}");
        for guild in &by_shard[n] {
            assert!(
                matches!(next_dispatch(shard).await, Event::GuildCreate(g) if g.id().get() == *guild)
            );
        }
    }
    // A join in a guild of shard 1 only reaches shard 1.
    let target = by_shard[1][0];
    let joined = control.join(target, json!({})).await;
    let Event::MemberAdd(m) = next_dispatch(&mut shards[1]).await else {
        panic!("MEMBER_ADD")
    };
    assert_eq!(
        (m.guild_id.get(), m.user.id.get()),
        (target, id(&joined["user_id"]))
    );
    let other = by_shard[0][0];
    control.join(other, json!({})).await;
    let Event::MemberAdd(m) = next_dispatch(&mut shards[0]).await else {
        panic!("MEMBER_ADD")
    };
    assert_eq!(m.guild_id, Id::<GuildMarker>::new(other));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ground_truth_matches_the_joins() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control
        .guild(json!({"name": "g", "vanity_code": "gt"}))
        .await;
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    let code = control.invite(guild, json!({"inviter_id": "77"})).await;
    next_dispatch(&mut shard).await;

    let a = control.join(guild, json!({"code": code})).await;
    let b = control
        .join(
            guild,
            json!({"vanity": true, "user_id": "123456789012345678"}),
        )
        .await;
    let c = control.join(guild, json!({})).await;
    control.leave(guild, &a["user_id"]).await;
    let a2 = control
        .join(guild, json!({"user_id": a["user_id"], "code": code}))
        .await;
    let (status, conflict) = control
        .post(
            &format!("/guilds/{guild}/joins"),
            json!({"user_id": b["user_id"]}),
        )
        .await;
    assert_eq!(status, 409, "{conflict}");

    let mut adds = vec![];
    while adds.len() < 4 {
        match next_dispatch(&mut shard).await {
            Event::MemberAdd(m) => adds.push(m),
            Event::MemberRemove(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(b["user_id"], "123456789012345678");
    assert!(!adds[0].flags.contains(MemberFlags::DID_REJOIN));
    assert!(
        adds[3].flags.contains(MemberFlags::DID_REJOIN),
        "a rejoin carries DID_REJOIN"
    );
    assert_eq!(adds[3].user.id.get(), id(&a["user_id"]));

    let (status, truth) = control.send(reqwest::Method::GET, "/truth", None).await;
    assert_eq!(status, 200);
    let truth = truth.as_array().unwrap();
    assert_eq!(truth.len(), 4);
    let guild_str = guild.to_string();
    for (row, join) in truth.iter().zip([&a, &b, &c, &a2]) {
        assert_eq!(row["guild_id"], guild_str.as_str());
        for key in ["user_id", "path", "code", "inviter_id", "joined_at"] {
            assert_eq!(row[key], join[key], "{key}");
        }
    }
    assert!(truth[0]["left_at"].is_string());
    assert!(truth[3]["left_at"].is_null());
    let paths: Vec<&str> = truth.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["invite", "vanity", "untracked", "invite"]);
    assert_eq!(sim.world().ground_truth().len(), 4);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_resumes_and_replays() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;

    let (status, _) = control.post("/gateway/reconnect", json!({})).await;
    assert_eq!(status, 204);
    let joined = control.join(guild, json!({})).await;
    let (mut resumed, mut added) = (false, false);
    while !(resumed && added) {
        match next_dispatch(&mut shard).await {
            Event::GatewayReconnect | Event::GatewayClose(_) => {}
            Event::Resumed => resumed = true,
            Event::MemberAdd(m) => {
                assert_eq!(m.user.id.get(), id(&joined["user_id"]));
                added = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // Still live after the resume.
    control.join(guild, json!({})).await;
    assert!(matches!(
        next_dispatch(&mut shard).await,
        Event::MemberAdd(_)
    ));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_session_makes_the_shard_identify_again() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    control.guild(json!({"name": "g"})).await;
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    let (status, _) = control
        .post("/gateway/invalidate", json!({"resumable": false}))
        .await;
    assert_eq!(status, 204);
    loop {
        match next_dispatch(&mut shard).await {
            Event::GatewayInvalidateSession(false) | Event::GatewayClose(_) => {}
            Event::Ready(_) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_routes_twilight_uses() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let client = http(&sim);
    let (guild, channel) = control.guild(json!({"name": "g"})).await;
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;

    let me = client.current_user().await.unwrap().model().await.unwrap();
    assert_eq!(me.id.get(), invitrack_sim::DEFAULT_BOT_USER_ID);
    let app = client
        .current_user_application()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(app.id.get(), invitrack_sim::DEFAULT_BOT_USER_ID);

    // The bot creates an invite: INVITE_CREATE, inviter = the bot, Discord's default 24 h.
    let invite = client
        .create_invite(Id::new(channel))
        .max_uses(3)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(invite.max_uses, Some(3));
    assert_eq!(invite.max_age, Some(86_400));
    assert!(
        matches!(next_dispatch(&mut shard).await, Event::InviteCreate(i) if i.code == invite.code)
    );
    let listed = client
        .channel_invites(Id::new(channel))
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let fetched = client
        .invite(&invite.code)
        .with_counts()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(fetched.guild.map(|g| g.id.get()), Some(guild));
    assert_eq!(fetched.uses, None, "GET /invites/{{code}} has no metadata");
    client.delete_invite(&invite.code).await.unwrap();
    assert!(
        matches!(next_dispatch(&mut shard).await, Event::InviteDelete(d) if d.code == invite.code)
    );
    let error = client.delete_invite(&invite.code).await.unwrap_err();
    assert_eq!(api_code(&error), (404, 10006));

    let message = client
        .create_message(Id::new(channel))
        .content("welcome!")
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(message.content, "welcome!");
    assert_eq!(message.author.id.get(), invitrack_sim::DEFAULT_BOT_USER_ID);
    assert_eq!(sim.world().messages()[0].content, "welcome!");

    let raw = reqwest::Client::new()
        .get(format!(
            "http://{}/api/v10/guilds/{guild}/invites",
            sim.addr()
        ))
        .header("Authorization", format!("Bot {TOKEN}"))
        .send()
        .await
        .unwrap();
    for header in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-reset-after",
        "x-ratelimit-bucket",
    ] {
        assert!(raw.headers().contains_key(header), "missing {header}");
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_and_twilight_waits() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let (status, body) = control
        .send(
            reqwest::Method::PUT,
            "/ratelimits/guild_invites",
            Some(json!({"limit": 1, "window_ms": 400})),
        )
        .await;
    assert_eq!(status, 204, "{body}");

    let url = format!("http://{}/api/v10/guilds/{guild}/invites", sim.addr());
    let get = || {
        reqwest::Client::new()
            .get(&url)
            .header("Authorization", format!("Bot {TOKEN}"))
            .send()
    };
    assert_eq!(get().await.unwrap().status().as_u16(), 200);
    let limited = get().await.unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    let body: serde_json::Value = limited.json().await.unwrap();
    assert!(body["retry_after"].as_f64().unwrap() > 0.0);
    assert_eq!(body["global"], false);

    // twilight-http reads the headers and waits instead of failing.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let client = http(&sim);
    let started = std::time::Instant::now();
    for _ in 0..3 {
        client
            .guild_invites(Id::new(guild))
            .await
            .unwrap()
            .models()
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_rejects_bad_input() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let cases = [
        ("/guilds", json!({"name": 5}), 400),
        ("/guilds", json!({"name": "x", "bogus": 1}), 400),
        ("/guilds/abc/joins", json!({}), 400),
        ("/guilds/1/joins", json!({}), 404),
        (
            &*format!("/guilds/{guild}/joins"),
            json!({"code": "nope"}),
            404,
        ),
        (
            &*format!("/guilds/{guild}/joins"),
            json!({"code": "a", "vanity": true}),
            400,
        ),
        (
            &*format!("/guilds/{guild}/joins"),
            json!({"account_age_days": -1}),
            400,
        ),
        (
            &*format!("/guilds/{guild}/invites"),
            json!({"max_uses": 1}),
            400,
        ),
        (
            &*format!("/guilds/{guild}/invites"),
            json!({"inviter_id": "x"}),
            400,
        ),
        (
            &*format!("/guilds/{guild}/leaves"),
            json!({"user_id": "99"}),
            404,
        ),
    ];
    for (path, body, want) in cases {
        let (status, answer) = control.post(path, body.clone()).await;
        assert_eq!(status, want, "{path} {body} -> {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let raw = reqwest::Client::new()
        .post(format!("{}/guilds", sim.control_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    let (status, _) = control
        .post(
            &format!("/guilds/{guild}/invites"),
            json!({"inviter_id": "1", "code": "dup"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = control
        .post(
            &format!("/guilds/{guild}/invites"),
            json!({"inviter_id": "1", "code": "dup"}),
        )
        .await;
    assert_eq!(status, 409);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_joins_reach_the_shard_quickly() {
    use twilight_gateway::{EventTypeFlags, StreamExt as _};
    const JOINS: usize = 5_000;
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control
        .guild(json!({"name": "busy", "vanity_code": "busy"}))
        .await;
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;

    let started = std::time::Instant::now();
    let (status, joins) = control
        .post(
            &format!("/guilds/{guild}/joins/bulk"),
            json!({"vanity": true, "count": JOINS}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(joins.as_array().unwrap().len(), JOINS);
    let produced = started.elapsed();
    let mut received = 0;
    while received < JOINS {
        let event = tokio::time::timeout(
            Duration::from_secs(30),
            shard.next_event(EventTypeFlags::MEMBER_ADD),
        )
        .await
        .expect("events keep coming")
        .expect("stream open")
        .expect("parsed");
        if matches!(event, Event::MemberAdd(_)) {
            received += 1;
        }
    }
    let elapsed = started.elapsed();
    let rate = JOINS as f64 / elapsed.as_secs_f64();
    eprintln!("{JOINS} joins: produced in {produced:?}, received in {elapsed:?} ({rate:.0}/s)");
    assert_eq!(
        sim.world().vanity(Id::new(guild)).unwrap(),
        Some(("busy".into(), JOINS as u64))
    );
    sim.stop().await;
}

#[tokio::test]
async fn starts_in_a_current_thread_runtime() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let invites = http(&sim)
        .guild_invites(Id::new(guild))
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert!(invites.is_empty());
    sim.stop().await;
}
