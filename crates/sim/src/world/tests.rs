//! Unit tests of the world: the invite lifecycle, expiry, account ages, permissions.

use super::{BotInfo, GuildSpec, IdentifyRequest, InviteSpec, JoinPath, JoinSpec, JoinVia, World};
use crate::{
    error::WorldError,
    sessions::{Link, Outbound, intents},
    snowflake,
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
