//! Unit tests of the world: the invite lifecycle, expiry, account ages, permissions, posted
//! messages (channel overwrites, `enforce_nonce`, the bounded store).

use super::{
    BotInfo, ChannelSpec, GuildSpec, IdentifyRequest, InteractionKind, InteractionSpec, InviteSpec,
    JoinPath, JoinSpec, JoinVia, MemberRequest, MemberSelection, NONCE_WINDOW, NewMessage, World,
    WorldOptions,
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
    connect_session(w).0
}

/// A session on the only shard with every intent: its frames and its id.
fn connect_session(w: &World) -> (tokio::sync::mpsc::Receiver<Outbound>, String) {
    let (tx, rx) = channel(10_000);
    let mut s = w.lock();
    let conn = s.next_conn_id();
    let session_id = s.identify(
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
    (rx, session_id)
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

fn command(
    guild_id: Id<twilight_model::id::marker::GuildMarker>,
    options: serde_json::Value,
) -> InteractionSpec {
    InteractionSpec {
        guild_id,
        user_id: Id::new(1234),
        member_permissions: permissions::EVERYONE,
        kind: InteractionKind::Command {
            name: "invites".into(),
            options,
        },
        locale: "de".into(),
    }
}

#[test]
fn interaction_create_deserializes_with_twilight() {
    use twilight_model::application::interaction::{Interaction, InteractionData, InteractionType};
    let w = world();
    let g = w.create_guild(GuildSpec::default()).expect("guild");
    let joined = w
        .join(g.guild_id, JoinVia::Untracked, JoinSpec::default())
        .expect("join");
    let mut rx = connect(&w);
    drain(&mut rx);
    let options =
        serde_json::json!([{"name": "user", "type": 6, "value": joined.user_id.to_string()}]);
    let info = w.interact(command(g.guild_id, options)).expect("interact");
    let frames = drain(&mut rx);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0, "INTERACTION_CREATE");
    let interaction: Interaction = serde_json::from_str(&frames[0].1).expect("twilight accepts");
    assert_eq!(interaction.id, info.id);
    assert_eq!(interaction.token, info.token);
    assert_eq!(interaction.kind, InteractionType::ApplicationCommand);
    assert_eq!(interaction.guild_id, Some(g.guild_id));
    assert_eq!(interaction.locale.as_deref(), Some("de"));
    assert_eq!(interaction.author_id(), Some(Id::new(1234)));
    let member = interaction.member.as_ref().expect("member");
    assert_eq!(
        member.permissions.map(|p| p.bits()),
        Some(permissions::EVERYONE)
    );
    let Some(InteractionData::ApplicationCommand(data)) = &interaction.data else {
        panic!("no command data")
    };
    assert_eq!(data.name, "invites");
    let resolved = data.resolved.as_ref().expect("resolved");
    assert!(resolved.users.contains_key(&joined.user_id));
    assert!(resolved.members.contains_key(&joined.user_id));
    assert!(info.token.len() > 100);

    // A button on a message.
    let button = w
        .interact(InteractionSpec {
            kind: InteractionKind::Component {
                custom_id: "page:2".into(),
                message_id: None,
            },
            ..command(g.guild_id, serde_json::Value::Null)
        })
        .expect("component");
    let frames = drain(&mut rx);
    let interaction: Interaction = serde_json::from_str(&frames[0].1).expect("twilight accepts");
    assert_eq!(interaction.id, button.id);
    assert_eq!(interaction.kind, InteractionType::MessageComponent);
    let Some(InteractionData::MessageComponent(data)) = &interaction.data else {
        panic!("no component data")
    };
    assert_eq!(data.custom_id, "page:2");
    assert!(interaction.message.is_some());
}

#[test]
fn interaction_rules() {
    use crate::interaction_form::{CallbackForm, EditForm};
    let w = world();
    let g = w.create_guild(GuildSpec::default()).expect("guild");
    let info = w
        .interact(command(g.guild_id, serde_json::json!([])))
        .expect("interact");
    let reply = CallbackForm {
        kind: 4,
        content: Some("hello".into()),
        components: serde_json::json!([]),
        flags: 64,
        ..CallbackForm::default()
    };
    assert_eq!(
        w.lock()
            .rest_interaction_callback(info.id, "wrong", reply.clone(), false),
        Err(WorldError::UnknownInteraction)
    );
    assert_eq!(w.interaction_reply(info.id), None);
    w.lock()
        .rest_interaction_callback(info.id, &info.token, reply.clone(), false)
        .expect("first callback");
    assert_eq!(
        w.lock()
            .rest_interaction_callback(info.id, &info.token, reply.clone(), false),
        Err(WorldError::InteractionAcknowledged)
    );
    let got = w.interaction_reply(info.id).expect("reply");
    assert_eq!(
        (got.callback_type, got.content.as_deref(), got.flags),
        (4, Some("hello"), 64)
    );

    // Edits: the original response, by token; not with another application id.
    let app = w.bot().application_id();
    let edit = EditForm {
        content: Some(Some("edited".into())),
        ..EditForm::default()
    };
    assert_eq!(
        w.lock()
            .rest_edit_original(Id::new(7), &info.token, edit.clone()),
        Err(WorldError::UnknownWebhook)
    );
    let body = w
        .lock()
        .rest_edit_original(app, &info.token, edit.clone())
        .expect("edit");
    let message: twilight_model::channel::Message = serde_json::from_str(&body).expect("message");
    assert_eq!(message.content, "edited");
    assert_eq!(w.interaction_reply(info.id).expect("reply").edits, 1);
    assert_eq!(
        w.lock().rest_edit_original(
            app,
            &info.token,
            EditForm {
                content: Some(None),
                ..EditForm::default()
            }
        ),
        Err(WorldError::EmptyMessage)
    );
    // Tokens live 15 minutes.
    w.advance_clock(Duration::from_secs(15 * 60 + 1));
    assert_eq!(
        w.lock().rest_edit_original(app, &info.token, edit.clone()),
        Err(WorldError::InvalidWebhookToken)
    );

    // 3 seconds to answer, by the simulated clock.
    let late = w
        .interact(command(g.guild_id, serde_json::json!([])))
        .expect("interact");
    assert_eq!(
        w.lock().rest_edit_original(app, &late.token, edit.clone()),
        Err(WorldError::UnknownMessage)
    );
    w.advance_clock(Duration::from_millis(3001));
    assert_eq!(
        w.lock()
            .rest_interaction_callback(late.id, &late.token, reply.clone(), false),
        Err(WorldError::UnknownInteraction)
    );
    assert_eq!(
        w.lock().rest_edit_original(app, &late.token, edit),
        Err(WorldError::UnknownWebhook)
    );

    // Commands answer 4, 5 and 9 only; an empty message is refused.
    let other = w
        .interact(command(g.guild_id, serde_json::json!([])))
        .expect("interact");
    let update = CallbackForm {
        kind: 7,
        ..reply.clone()
    };
    assert!(matches!(
        w.lock()
            .rest_interaction_callback(other.id, &other.token, update, false),
        Err(WorldError::InvalidForm(_))
    ));
    let empty = CallbackForm {
        content: None,
        ..reply
    };
    assert_eq!(
        w.lock()
            .rest_interaction_callback(other.id, &other.token, empty, false),
        Err(WorldError::EmptyMessage)
    );
}

#[test]
fn interactions_are_bounded() {
    let w = World::with_options(
        BotInfo {
            token: "t".into(),
            user_id: Id::new(42),
            username: "bot".into(),
            shards: 1,
            gateway_url: "ws://127.0.0.1:1".into(),
            verify_key: "00".into(),
        },
        WorldOptions {
            message_capacity: 2,
            ..WorldOptions::default()
        },
    );
    let g = w.create_guild(GuildSpec::default()).expect("guild");
    let infos: Vec<_> = (0..3)
        .map(|_| {
            w.interact(command(g.guild_id, serde_json::json!([])))
                .expect("interact")
        })
        .collect();
    let form = crate::interaction_form::CallbackForm {
        kind: 5,
        components: serde_json::json!([]),
        ..Default::default()
    };
    assert_eq!(
        w.lock()
            .rest_interaction_callback(infos[0].id, &infos[0].token, form.clone(), false),
        Err(WorldError::UnknownInteraction)
    );
    w.lock()
        .rest_interaction_callback(infos[2].id, &infos[2].token, form, false)
        .expect("newest kept");
}

#[test]
fn a_users_guilds_merge_the_world_and_the_memberships_given() {
    use super::{AuthorizeRequest, Authorized, Consent, UserGuildSpec};
    let w = world();
    let home = w.create_guild(GuildSpec::default()).expect("guild");
    let owned = w.create_guild(GuildSpec::default()).expect("guild");
    let other = w.create_guild(GuildSpec::default()).expect("guild");
    let user = Id::new(7);
    w.join(
        home.guild_id,
        JoinVia::Untracked,
        JoinSpec {
            user_id: Some(user),
            ..JoinSpec::default()
        },
    )
    .expect("joined");
    // A tracked member has @everyone's permissions.
    let guilds = w.user_guilds(user);
    assert_eq!(guilds.len(), 1);
    assert_eq!(guilds[0].permissions, permissions::EVERYONE);

    let owner = w.guild_owner(owned.guild_id).expect("owner");
    assert!(
        w.set_user_guilds(
            user,
            vec![UserGuildSpec {
                owner: true,
                ..UserGuildSpec::member_of(owned.guild_id, 0)
            }]
        )
        .is_err(),
        "only the owner owns a guild of the world"
    );
    let guilds = w
        .set_user_guilds(
            user,
            vec![
                UserGuildSpec::member_of(home.guild_id, permissions::MANAGE_GUILD),
                UserGuildSpec::member_of(other.guild_id, permissions::ADMINISTRATOR),
                UserGuildSpec::elsewhere("Elsewhere", 0, true),
            ],
        )
        .expect("set");
    let by_id = |id| guilds.iter().find(|g| g.id == id).expect("listed");
    assert_eq!(by_id(home.guild_id).permissions, permissions::MANAGE_GUILD);
    assert_eq!(by_id(other.guild_id).permissions, permissions::ALL);
    let elsewhere = guilds.iter().find(|g| !g.bot_in_guild).expect("elsewhere");
    assert!(elsewhere.owner);
    assert_eq!(elsewhere.permissions, permissions::ALL);
    assert!(guilds.windows(2).all(|p| p[0].id < p[1].id));

    let owned_view = w.user_guilds(owner);
    assert_eq!(owned_view.len(), 1);
    assert!(owned_view[0].owner);

    // The signed-in user answers the authorization; a denial goes back as access_denied.
    w.set_oauth2_redirect_uris(vec!["http://d.test/cb?x=1".into()])
        .expect("uris");
    let request = AuthorizeRequest {
        client_id: Some("42".into()),
        redirect_uri: None,
        response_type: Some("code".into()),
        scope: Some("identify".into()),
        state: Some("s".into()),
    };
    assert!(matches!(
        w.lock().oauth2_authorize(request.clone()),
        Authorized::Page(_)
    ));
    w.sign_in(user, Consent::Deny);
    assert!(matches!(
        w.lock().oauth2_authorize(request.clone()),
        Authorized::Redirect(url) if url.starts_with("http://d.test/cb?x=1&error=access_denied&")
            && url.ends_with("&state=s")
    ));
    w.sign_in(user, Consent::Approve);
    assert!(matches!(
        w.lock().oauth2_authorize(request),
        Authorized::Redirect(url) if url.starts_with("http://d.test/cb?x=1&code=")
    ));
}

/// Op 8 on a session: the `d` of every dispatch it got in answer (name, JSON).
fn request_members(
    w: &World,
    rx: &mut tokio::sync::mpsc::Receiver<Outbound>,
    session_id: &str,
    guild_id: Id<twilight_model::id::marker::GuildMarker>,
    selection: MemberSelection,
) -> Vec<(&'static str, serde_json::Value)> {
    w.lock().request_guild_members(
        session_id,
        &MemberRequest {
            guild_id,
            selection,
            nonce: None,
        },
    );
    drain(rx)
        .into_iter()
        .map(|(t, d)| (t, serde_json::from_str(&d).expect("JSON")))
        .collect()
}

fn query(query: &str, limit: u64) -> MemberSelection {
    MemberSelection::Query {
        query: query.into(),
        limit,
    }
}

#[test]
fn member_requests_select_by_prefix_limit_and_ids() {
    let w = world();
    let g = w
        .create_guild(GuildSpec::default())
        .expect("guild")
        .guild_id;
    let joined: Vec<_> = (0..120)
        .map(|_| {
            w.join(g, JoinVia::Untracked, JoinSpec::default())
                .expect("join")
                .user_id
        })
        .collect();
    let (mut rx, session) = connect_session(&w);
    drain(&mut rx);
    let count = |answer: &[(&str, serde_json::Value)]| {
        assert_eq!(answer.len(), 1, "one chunk");
        assert_eq!(answer[0].0, "GUILD_MEMBERS_CHUNK");
        answer[0].1["members"].as_array().expect("members").len()
    };
    // Every member, the owner and the bot ("bot") included; a prefix query at most 100, and
    // `limit` 0 with a prefix asks for no particular number (so 100).
    assert_eq!(
        count(&request_members(&w, &mut rx, &session, g, query("", 0))),
        122
    );
    assert_eq!(
        count(&request_members(&w, &mut rx, &session, g, query("USER", 7))),
        7
    );
    assert_eq!(
        count(&request_members(&w, &mut rx, &session, g, query("user", 0))),
        100
    );
    assert_eq!(
        count(&request_members(
            &w,
            &mut rx,
            &session,
            g,
            query("user", 500)
        )),
        100
    );
    assert_eq!(
        count(&request_members(&w, &mut rx, &session, g, query("", 3))),
        3
    );
    assert_eq!(
        count(&request_members(&w, &mut rx, &session, g, query("bo", 10))),
        1
    );
    // A prefix nobody has: one empty chunk.
    let answer = request_members(&w, &mut rx, &session, g, query("nobody", 10));
    assert_eq!(count(&answer), 0);
    assert_eq!(answer[0].1["chunk_count"], 1);
    assert!(answer[0].1.get("not_found").is_none());

    // user_ids: the first 100 distinct ids; duplicates count once.
    let mut ids = vec![joined[0], joined[0]];
    ids.extend(joined.iter().skip(1).copied());
    let answer = request_members(&w, &mut rx, &session, g, MemberSelection::UserIds(ids));
    assert_eq!(count(&answer), 100);
    assert_eq!(answer[0].1["not_found"], serde_json::json!([]));
    assert_eq!(
        answer[0].1["members"][0]["user"]["id"],
        joined[0].to_string()
    );
    // Oldest first: the bot and the owner joined when the guild was made.
    let answer = request_members(&w, &mut rx, &session, g, query("user", 3));
    assert_eq!(
        answer[0].1["members"][1]["user"]["id"],
        joined[0].to_string()
    );
}

#[test]
fn member_chunks_overtake_no_delayed_dispatch() {
    let w = World::with_options(
        world().bot().clone(),
        WorldOptions {
            event_delay: crate::sessions::EventDelay {
                min_ms: 100,
                max_ms: 100,
            },
            ..WorldOptions::default()
        },
    );
    let g = w
        .create_guild(GuildSpec::default())
        .expect("guild")
        .guild_id;
    let (mut rx, session) = connect_session(&w);
    std::thread::sleep(Duration::from_millis(250));
    drain(&mut rx);
    let member = w
        .join(g, JoinVia::Untracked, JoinSpec::default())
        .expect("join")
        .user_id;
    // The join is in the world at once; its GUILD_MEMBER_ADD waits 100 ms. The chunk has the
    // member and comes after the GUILD_MEMBER_ADD, with the next sequence number.
    assert!(request_members(&w, &mut rx, &session, g, query("", 0)).is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let frames: Vec<_> = std::iter::from_fn(|| match rx.try_recv() {
        Ok(Outbound::Frame(f)) => Some((f.t, f.seq, f.d.to_string())),
        _ => None,
    })
    .collect();
    let names: Vec<_> = frames.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(names, ["GUILD_MEMBER_ADD", "GUILD_MEMBERS_CHUNK"]);
    assert_eq!(frames[1].1, frames[0].1 + 1);
    assert!(frames[1].2.contains(&member.to_string()));
}
