//! Unit tests of the world: the invite lifecycle, expiry, account ages, permissions, posted
//! messages (channel overwrites, `enforce_nonce`, the bounded store).

use super::{
    BotInfo, ChannelSpec, GuildSpec, IdentifyRequest, InviteSpec, JoinPath, JoinSpec, JoinVia,
    NONCE_WINDOW, NewMessage, World, WorldOptions,
};
use crate::{
    error::WorldError,
    sessions::{Link, Outbound, intents},
    snowflake,
    wire::{Nonce, permissions},
};
use std::time::Duration;
use tokio::sync::mpsc::channel;
use tokio_util::sync::CancellationToken;
use twilight_model::id::Id;

fn world() -> World {
    World::new(BotInfo {
        token: "t".into(),
        user_id: Id::new(42),
        username: "bot".into(),
        shards: 1,
        gateway_url: "ws://127.0.0.1:1".into(),
        verify_key: "00".into(),
    })
}

fn drain(rx: &mut tokio::sync::mpsc::Receiver<Outbound>) -> Vec<(&'static str, String)> {
    std::iter::from_fn(|| match rx.try_recv() {
        Ok(Outbound::Frame(f)) => Some((f.t, f.d.to_string())),
        Ok(_) => Some(("other", String::new())),
        Err(_) => None,
    })
    .collect()
}

fn connect(w: &World) -> tokio::sync::mpsc::Receiver<Outbound> {
    let (tx, rx) = channel(10_000);
    let mut s = w.lock();
    let conn = s.next_conn_id();
    s.identify(
        IdentifyRequest {
            shard: [0, 1],
            intents: intents::GUILDS | intents::GUILD_MEMBERS | intents::GUILD_INVITES,
            large_threshold: 50,
        },
        "ws://x",
        conn,
        Link {
            tx,
            kill: CancellationToken::new(),
        },
    );
    rx
}

#[test]
fn invite_lifecycle_and_truth() {
    let w = world();
    let g = w
        .create_guild(GuildSpec {
            name: "g".into(),
            vanity_code: Some("cool".into()),
            manage_guild: true,
        })
        .expect("guild");
    let mut rx = connect(&w);
    let names: Vec<_> = drain(&mut rx).into_iter().map(|(t, _)| t).collect();
    assert_eq!(names, vec!["READY", "GUILD_CREATE"]);

    let inv = w
        .create_invite(
            g.guild_id,
            InviteSpec {
                max_uses: 2,
                ..InviteSpec::by(Id::new(7))
            },
        )
        .expect("invite");
    let a = w
        .join(
            g.guild_id,
            JoinVia::Invite(inv.code.clone()),
            JoinSpec::default(),
        )
        .expect("join a");
    assert_eq!(w.invites(g.guild_id).expect("list")[0].uses, 1);
    let b = w
        .join(
            g.guild_id,
            JoinVia::Invite(inv.code.clone()),
            JoinSpec::default(),
        )
        .expect("join b");
    assert!(w.invites(g.guild_id).expect("list").is_empty());
    assert_eq!(
        w.join(
            g.guild_id,
            JoinVia::Invite(inv.code.clone()),
            JoinSpec::default()
        ),
        Err(WorldError::UnknownInvite(inv.code.clone()))
    );
    w.join(g.guild_id, JoinVia::Vanity, JoinSpec::default())
        .expect("vanity");
    assert_eq!(w.vanity(g.guild_id).expect("v"), Some(("cool".into(), 1)));
    w.leave(g.guild_id, a.user_id).expect("leave");
    let again = w
        .join(
            g.guild_id,
            JoinVia::Untracked,
            JoinSpec {
                user_id: Some(a.user_id),
                ..JoinSpec::default()
            },
        )
        .expect("rejoin");
    assert_eq!(again.path, JoinPath::Untracked);

    let events = drain(&mut rx);
    let names: Vec<_> = events.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        names,
        vec![
            "INVITE_CREATE",
            "GUILD_MEMBER_ADD",
            "GUILD_MEMBER_ADD",
            "INVITE_DELETE",
            "GUILD_MEMBER_ADD",
            "GUILD_MEMBER_REMOVE",
            "GUILD_MEMBER_ADD"
        ]
    );
    assert!(
        events[6].1.contains("\"flags\":1"),
        "rejoin has DID_REJOIN: {}",
        events[6].1
    );
    assert!(events[1].1.contains("\"flags\":0"));

    let truth = w.ground_truth();
    assert_eq!(truth.len(), 4);
    assert_eq!(truth[0].user_id, a.user_id);
    assert!(truth[0].left_at.is_some());
    assert_eq!(truth[1], b);
    assert_eq!(truth[1].inviter_id, Some(Id::new(7)));
}

#[test]
fn expiry_is_silent_and_lazy() {
    let w = world();
    let g = w.create_guild(GuildSpec::default()).expect("guild");
    let inv = w
        .create_invite(
            g.guild_id,
            InviteSpec {
                max_age_secs: 60,
                ..InviteSpec::by(Id::new(7))
            },
        )
        .expect("invite");
    assert_eq!(w.invites(g.guild_id).expect("list").len(), 1);
    w.advance_clock(Duration::from_secs(61));
    assert!(w.invites(g.guild_id).expect("list").is_empty());
    assert_eq!(
        w.delete_invite(&inv.code),
        Err(WorldError::UnknownInvite(inv.code.clone()))
    );
}

#[test]
fn account_age_is_in_the_id() {
    let w = world();
    let g = w.create_guild(GuildSpec::default()).expect("guild");
    let t = w
        .join(
            g.guild_id,
            JoinVia::Untracked,
            JoinSpec {
                account_age: Duration::from_secs(3 * 86_400),
                ..JoinSpec::default()
            },
        )
        .expect("join");
    let created = snowflake::created_at_ms(t.user_id.get());
    let age = t.joined_at.timestamp_millis() - created;
    assert!(
        (3 * 86_400_000 - 1000..=3 * 86_400_000 + 1000).contains(&age),
        "{age}"
    );
}

#[test]
fn permissions_gate_rest_views() {
    let w = world();
    let g = w
        .create_guild(GuildSpec {
            manage_guild: false,
            ..GuildSpec::default()
        })
        .expect("guild");
    assert_eq!(
        w.lock().rest_guild_invites(g.guild_id),
        Err(WorldError::MissingPermissions)
    );
    assert_eq!(
        w.lock().rest_vanity(g.guild_id),
        Err(WorldError::MissingPermissions)
    );
    w.set_manage_guild(g.guild_id, true).expect("grant");
    assert_eq!(
        w.lock().rest_vanity(g.guild_id).expect("vanity"),
        r#"{"code":null,"uses":0}"#
    );
}

fn message(content: &str) -> NewMessage {
    NewMessage {
        content: content.into(),
        ..NewMessage::default()
    }
}

fn posted_id(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).expect("message JSON");
    value["id"].as_str().expect("id").to_owned()
}

#[test]
fn channel_overwrites_gate_posting() {
    let w = world();
    let g = w.create_guild(GuildSpec::default()).expect("guild");
    let mut rx = connect(&w);
    drain(&mut rx);
    let muted = w
        .create_channel(
            g.guild_id,
            ChannelSpec {
                name: "muted".into(),
                bot_deny: permissions::SEND_MESSAGES,
            },
        )
        .expect("channel");
    let post = |channel, m| w.lock().rest_post_message(channel, m);
    assert_eq!(
        post(muted, message("hi")),
        Err(WorldError::MissingPermissions)
    );
    // VIEW_CHANNEL denied hides the channel: Missing Access, whatever else is allowed.
    w.set_bot_channel_deny(muted, permissions::VIEW_CHANNEL)
        .expect("deny view");
    assert_eq!(post(muted, message("hi")), Err(WorldError::MissingAccess));
    // Without EMBED_LINKS embeds are dropped; a message of embeds only is then empty.
    w.set_bot_channel_deny(muted, permissions::EMBED_LINKS)
        .expect("deny embeds");
    let embed = vec![serde_json::json!({"type": "rich", "title": "t"})];
    let with_embed = NewMessage {
        embeds: embed.clone(),
        ..message("hi")
    };
    post(muted, with_embed).expect("posted");
    assert!(w.messages()[0].embeds.is_empty());
    let only_embed = NewMessage {
        embeds: embed.clone(),
        ..NewMessage::default()
    };
    assert_eq!(
        post(muted, only_embed.clone()),
        Err(WorldError::EmptyMessage)
    );
    w.set_bot_channel_deny(muted, 0).expect("allow");
    post(muted, only_embed).expect("posted");
    assert_eq!(w.channel_messages(muted).expect("list")[1].embeds, embed);
    assert_eq!(
        post(g.channel_id, message(" \n")),
        Err(WorldError::EmptyMessage)
    );
    assert!(w.channel_messages(g.channel_id).expect("list").is_empty());
    assert_eq!(
        post(Id::new(5), message("hi")),
        Err(WorldError::UnknownChannel(Id::new(5)))
    );

    let events = drain(&mut rx);
    let names: Vec<_> = events.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        names,
        vec![
            "CHANNEL_CREATE",
            "CHANNEL_UPDATE",
            "CHANNEL_UPDATE",
            "CHANNEL_UPDATE"
        ]
    );
    assert!(events[0].1.contains(r#""deny":"2048""#), "{}", events[0].1);
    assert!(events[3].1.contains(r#""permission_overwrites":[]"#));
}

#[test]
fn enforce_nonce_answers_the_recent_message() {
    let w = world();
    let g = w.create_guild(GuildSpec::default()).expect("guild");
    let other = w
        .create_channel(
            g.guild_id,
            ChannelSpec {
                name: "other".into(),
                bot_deny: 0,
            },
        )
        .expect("channel");
    let post = |channel, m| w.lock().rest_post_message(channel, m).expect("posted");
    let with_nonce = |nonce: Nonce, enforce_nonce| NewMessage {
        nonce: Some(nonce),
        enforce_nonce,
        ..message("joined")
    };
    let first = posted_id(&post(
        g.channel_id,
        with_nonce(Nonce::Integer(7.into()), false),
    ));
    // Enforced: the same nonce (7 and "7" alike) answers the first message, in any channel of
    // the same author.
    for (channel, nonce) in [
        (g.channel_id, Nonce::Integer(7.into())),
        (other, Nonce::String("7".into())),
    ] {
        assert_eq!(posted_id(&post(channel, with_nonce(nonce, true))), first);
    }
    // Not enforced: a new message.
    assert_ne!(
        posted_id(&post(
            g.channel_id,
            with_nonce(Nonce::Integer(7.into()), false)
        )),
        first
    );
    assert_eq!(w.messages().len(), 2);
    // After the window, a new message.
    w.advance_clock(NONCE_WINDOW);
    let later = posted_id(&post(
        g.channel_id,
        with_nonce(Nonce::Integer(8.into()), true),
    ));
    assert_ne!(later, first);
    let again = posted_id(&post(
        g.channel_id,
        with_nonce(Nonce::Integer(8.into()), true),
    ));
    assert_eq!(again, later);
    assert_ne!(
        posted_id(&post(
            g.channel_id,
            with_nonce(Nonce::Integer(7.into()), true)
        )),
        first
    );
    let stored = w.messages();
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[0].nonce, Some(Nonce::Integer(7.into())));
    assert!(stored[2].created_at > stored[0].created_at);
}

#[test]
fn the_store_keeps_the_newest_messages_and_the_window_its_nonces() {
    let w = World::with_options(
        world().bot().clone(),
        WorldOptions {
            message_capacity: 2,
            ..WorldOptions::default()
        },
    );
    let g = w.create_guild(GuildSpec::default()).expect("guild");
    let post = |m| w.lock().rest_post_message(g.channel_id, m).expect("posted");
    let first = posted_id(&post(NewMessage {
        nonce: Some(Nonce::String("a".into())),
        ..message("1")
    }));
    post(message("2"));
    post(message("3"));
    let kept: Vec<_> = w.messages().into_iter().map(|m| m.content).collect();
    assert_eq!(kept, vec!["2", "3"]);
    // Dropped from the store, still found by its nonce within the window.
    let retried = post(NewMessage {
        nonce: Some(Nonce::String("a".into())),
        enforce_nonce: true,
        ..message("1")
    });
    assert_eq!(posted_id(&retried), first);
    assert_eq!(w.messages().len(), 2);
}
