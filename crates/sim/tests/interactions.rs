//! Slash commands and interactions against the real twilight-http and twilight-gateway:
//! command registration (bulk overwrite, its form checks), INTERACTION_CREATE as twilight
//! parses it, the callback's rules (once, within 3 s) and editing the original response.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Control, TOKEN, all_intents, api_code, http, id, next_dispatch, ready, shard, start};
use invitrack_sim::{InteractionKind, InteractionSpec, JoinSpec, JoinVia, World, permissions};
use serde_json::{Value, json};
use std::time::Duration;
use twilight_gateway::Event;
use twilight_model::{
    application::{
        command::{Command, CommandOption, CommandOptionType, CommandType},
        interaction::{InteractionData, InteractionType},
    },
    guild::Permissions,
    http::interaction::{InteractionResponse, InteractionResponseData, InteractionResponseType},
    id::{
        Id,
        marker::{ApplicationMarker, GuildMarker, UserMarker},
    },
};

#[allow(deprecated)]
fn slash(name: &str, description: &str, options: Vec<CommandOption>) -> Command {
    Command {
        application_id: None,
        contexts: None,
        default_member_permissions: Some(Permissions::MANAGE_GUILD),
        description: description.to_owned(),
        description_localizations: None,
        dm_permission: None,
        guild_id: None,
        id: None,
        integration_types: None,
        kind: CommandType::ChatInput,
        name: name.to_owned(),
        name_localizations: None,
        nsfw: None,
        options,
        version: Id::new(1),
    }
}

fn user_option() -> CommandOption {
    CommandOption {
        autocomplete: None,
        channel_types: None,
        choices: None,
        description: "Whose invites".to_owned(),
        description_localizations: None,
        file_types: None,
        kind: CommandOptionType::User,
        max_length: None,
        max_value: None,
        min_length: None,
        min_value: None,
        name: "user".to_owned(),
        name_localizations: None,
        options: None,
        required: Some(false),
    }
}

fn app_id(world: &World) -> Id<ApplicationMarker> {
    world.bot().application_id()
}

fn reply(content: &str) -> InteractionResponse {
    InteractionResponse {
        kind: InteractionResponseType::ChannelMessageWithSource,
        data: Some(InteractionResponseData {
            content: Some(content.to_owned()),
            ..InteractionResponseData::default()
        }),
    }
}

fn slash_spec(
    guild_id: Id<GuildMarker>,
    user_id: Id<UserMarker>,
    options: Value,
) -> InteractionSpec {
    InteractionSpec {
        guild_id,
        user_id,
        member_permissions: permissions::EVERYONE,
        kind: InteractionKind::Command {
            name: "invites".into(),
            options,
        },
        locale: "en-US".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_commands_round_trip() {
    let sim = start(1).await;
    let world = sim.world();
    let client = http(&sim);
    let app = app_id(&world);
    let commands = [
        slash("invites", "Who invited whom", vec![user_option()]),
        slash("leaderboard", "Top inviters", Vec::new()),
    ];
    let set = client
        .interaction(app)
        .set_global_commands(&commands)
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert_eq!(set.len(), 2);
    assert!(
        set.iter()
            .all(|c| c.id.is_some() && c.application_id == Some(app))
    );
    assert_eq!(
        set[0].default_member_permissions,
        Some(Permissions::MANAGE_GUILD)
    );
    assert_eq!(set[0].kind, CommandType::ChatInput);
    assert_eq!(set[0].options.len(), 1);
    assert_eq!(set[1].name, "leaderboard");

    let got = client
        .interaction(app)
        .global_commands()
        .with_localizations(true)
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert_eq!(got, set);
    let registered = world.commands();
    assert_eq!(registered.len(), 2);
    assert_eq!(Some(registered[0].id), set[0].id);

    // An overwrite keeps the id of a command with the same name; a changed one gets a new
    // version; a missing one is gone.
    let again = client
        .interaction(app)
        .set_global_commands(&[slash("invites", "Who invited whom (v2)", Vec::new())])
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, set[0].id);
    assert_ne!(again[0].version, set[0].version);
    let control = Control::new(&sim);
    let (status, list) = control.send(reqwest::Method::GET, "/commands", None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["description"], "Who invited whom (v2)");

    // Another application: Unknown Application.
    let error = client
        .interaction(Id::new(1))
        .global_commands()
        .await
        .unwrap_err();
    assert_eq!(api_code(&error), (404, 10002));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_command_names_are_an_invalid_form() {
    let sim = start(1).await;
    let world = sim.world();
    let client = http(&sim);
    let error = client
        .interaction(app_id(&world))
        .set_global_commands(&[slash("Invites", "Who invited whom", Vec::new())])
        .await
        .unwrap_err();
    assert_eq!(api_code(&error), (400, 50035));
    assert!(world.commands().is_empty());

    // The errors say which command and field.
    let body = json!([
        {"name": "ok", "description": "fine"},
        {"name": "has space", "description": ""},
    ]);
    let res = reqwest::Client::new()
        .put(format!(
            "http://{}/api/v10/applications/{}/commands",
            sim.addr(),
            app_id(&world)
        ))
        .header("Authorization", format!("Bot {TOKEN}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["code"], 50035);
    assert_eq!(
        answer["errors"]["1"]["name"]["_errors"][0]["code"],
        "STRING_TYPE_REGEX"
    );
    assert_eq!(
        answer["errors"]["1"]["description"]["_errors"][0]["code"],
        "BASE_TYPE_BAD_LENGTH"
    );
    assert!(answer["errors"].get("0").is_none(), "{answer}");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interaction_is_answered_once() {
    let sim = start(1).await;
    let world = sim.world();
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let joined = control.join(guild, json!({})).await;
    let member = id(&joined["user_id"]);
    let client = http(&sim);
    let app = app_id(&world);
    let registered = client
        .interaction(app)
        .set_global_commands(&[slash("invites", "Who invited whom", vec![user_option()])])
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;

    // Through the control API, as a test outside the process would.
    let (status, created) = control
        .post(
            "/interactions",
            json!({
                "guild_id": guild.to_string(),
                "user_id": "1234",
                "permissions": "1024",
                "command": "invites",
                "options": [{"name": "user", "type": 6, "value": member.to_string()}],
                "locale": "fr",
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let Event::InteractionCreate(interaction) = next_dispatch(&mut shard).await else {
        panic!("expected INTERACTION_CREATE")
    };
    assert_eq!(interaction.id.get(), id(&created["id"]));
    assert_eq!(interaction.token, created["token"].as_str().unwrap());
    assert_eq!(interaction.kind, InteractionType::ApplicationCommand);
    assert_eq!(interaction.application_id, app);
    assert_eq!(interaction.guild_id, Some(Id::new(guild)));
    assert_eq!(interaction.locale.as_deref(), Some("fr"));
    assert_eq!(interaction.author_id(), Some(Id::new(1234)));
    let Some(InteractionData::ApplicationCommand(data)) = &interaction.data else {
        panic!("no command data")
    };
    assert_eq!(Some(data.id), registered[0].id);
    let resolved = data.resolved.as_ref().unwrap();
    assert!(resolved.users.contains_key(&Id::new(member)));
    assert!(resolved.members.contains_key(&Id::new(member)));

    let answer = reply("alice invited 3 members");
    client
        .interaction(app)
        .create_response(interaction.id, &interaction.token, &answer)
        .await
        .unwrap();
    let got = world.interaction_reply(interaction.id).unwrap();
    assert_eq!(got.callback_type, 4);
    assert_eq!(got.content.as_deref(), Some("alice invited 3 members"));
    assert_eq!(got.edits, 0);
    let (status, body) = control
        .send(
            reqwest::Method::GET,
            &format!("/interactions/{}", interaction.id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["content"], "alice invited 3 members");

    // A second response: already acknowledged.
    let error = client
        .interaction(app)
        .create_response(interaction.id, &interaction.token, &answer)
        .await
        .unwrap_err();
    assert_eq!(api_code(&error), (400, 40060));
    // A wrong token: unknown.
    let error = client
        .interaction(app)
        .create_response(interaction.id, "not-the-token", &answer)
        .await
        .unwrap_err();
    assert_eq!(api_code(&error), (404, 10062));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_response_is_an_unknown_interaction() {
    let sim = start(1).await;
    let world = sim.world();
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let info = world
        .interact(slash_spec(Id::new(guild), Id::new(1234), json!([])))
        .unwrap();
    // The 3 s are counted by the simulated clock: no need to sleep.
    world.advance_clock(Duration::from_millis(3_100));
    let error = http(&sim)
        .interaction(app_id(&world))
        .create_response(info.id, &info.token, &reply("too late"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&error), (404, 10062));
    assert!(world.interaction_reply(info.id).is_none());
    let (status, _) = control
        .send(
            reqwest::Method::GET,
            &format!("/interactions/{}", info.id),
            None,
        )
        .await;
    assert_eq!(status, 404);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_response_is_edited() {
    let sim = start(1).await;
    let world = sim.world();
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let member = world
        .join(Id::new(guild), JoinVia::Untracked, JoinSpec::default())
        .unwrap();
    let info = world
        .interact(slash_spec(Id::new(guild), member.user_id, json!([])))
        .unwrap();
    let client = http(&sim);
    let app = app_id(&world);

    // Editing before the interaction is acknowledged: no original response yet.
    let error = client
        .interaction(app)
        .update_response(&info.token)
        .content(Some("early"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&error), (404, 10008));

    let defer = InteractionResponse {
        kind: InteractionResponseType::DeferredChannelMessageWithSource,
        data: Some(InteractionResponseData {
            flags: Some(twilight_model::channel::message::MessageFlags::EPHEMERAL),
            ..InteractionResponseData::default()
        }),
    };
    let callback = client
        .interaction(app)
        .create_response(info.id, &info.token, &defer)
        .with_response()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(callback.interaction.id, info.id);
    assert_eq!(callback.interaction.response_message_loading, Some(true));
    assert_eq!(callback.interaction.response_message_ephemeral, Some(true));
    let got = world.interaction_reply(info.id).unwrap();
    assert_eq!(
        (got.callback_type, got.content.as_deref(), got.flags),
        (5, None, 64)
    );

    let message = client
        .interaction(app)
        .update_response(&info.token)
        .content(Some("42 joins tracked"))
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(message.content, "42 joins tracked");
    assert_eq!(Some(message.id), callback.interaction.response_message_id);
    assert!(message.edited_timestamp.is_some());
    let got = world.interaction_reply(info.id).unwrap();
    assert_eq!(got.content.as_deref(), Some("42 joins tracked"));
    assert_eq!(got.edits, 1);

    // Another application id or an unknown token: Unknown Webhook.
    let error = client
        .interaction(Id::new(1))
        .update_response(&info.token)
        .content(Some("x"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&error), (404, 10015));
    let error = client
        .interaction(app)
        .update_response("nope")
        .content(Some("x"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&error), (404, 10015));
    // After 15 minutes the token is dead.
    world.advance_clock(Duration::from_secs(15 * 60));
    let error = client
        .interaction(app)
        .update_response(&info.token)
        .content(Some("x"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&error), (401, 50027));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn button_press_updates_its_message() {
    let sim = start(1).await;
    let world = sim.world();
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    let (status, created) = control
        .post(
            "/interactions",
            json!({"guild_id": guild, "user_id": 1234, "custom_id": "page:2"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let Event::InteractionCreate(interaction) = next_dispatch(&mut shard).await else {
        panic!("expected INTERACTION_CREATE")
    };
    assert_eq!(interaction.kind, InteractionType::MessageComponent);
    let message_id = interaction.message.as_ref().unwrap().id;
    let update = InteractionResponse {
        kind: InteractionResponseType::UpdateMessage,
        data: Some(InteractionResponseData {
            content: Some("page 2".to_owned()),
            ..InteractionResponseData::default()
        }),
    };
    let callback = http(&sim)
        .interaction(app_id(&world))
        .create_response(interaction.id, &interaction.token, &update)
        .with_response()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    let resource = callback.resource.unwrap();
    assert_eq!(resource.message.unwrap().id, message_id);
    let got = world.interaction_reply(interaction.id).unwrap();
    assert_eq!(
        (got.callback_type, got.content.as_deref()),
        (7, Some("page 2"))
    );

    // Malformed control bodies.
    let (status, _) = control
        .post(
            "/interactions",
            json!({"guild_id": guild, "user_id": 1234, "custom_id": "x", "command": "y"}),
        )
        .await;
    assert_eq!(status, 400);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modal_is_submitted_by_its_user_and_followed_up() {
    use std::collections::BTreeMap;
    use twilight_model::channel::message::component::{
        Component, Label, TextDisplay, TextInput, TextInputStyle,
    };
    let sim = start(1).await;
    let world = sim.world();
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let member = world
        .join(Id::new(guild), JoinVia::Untracked, JoinSpec::default())
        .unwrap();
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    let client = http(&sim);
    let app = app_id(&world);
    let asked = world
        .interact(slash_spec(Id::new(guild), member.user_id, json!([])))
        .unwrap();
    assert!(matches!(
        next_dispatch(&mut shard).await,
        Event::InteractionCreate(_)
    ));
    #[allow(deprecated)]
    let input = |custom_id: &str, required: bool, value: Option<&str>| TextInput {
        custom_id: custom_id.to_owned(),
        id: None,
        label: None,
        max_length: Some(10),
        min_length: Some(2),
        placeholder: None,
        required: Some(required),
        style: TextInputStyle::Short,
        value: value.map(str::to_owned),
    };
    let label = |text: &str, input: TextInput| {
        Component::Label(Label {
            component: Box::new(Component::TextInput(input)),
            description: None,
            id: None,
            label: text.to_owned(),
        })
    };
    let modal = InteractionResponse {
        kind: InteractionResponseType::Modal,
        data: Some(InteractionResponseData {
            custom_id: Some("form".into()),
            title: Some("A form".into()),
            components: Some(vec![
                Component::TextDisplay(TextDisplay {
                    content: "Preview".into(),
                    id: None,
                }),
                label("Name", input("name", true, None)),
                label("Note", input("note", false, Some("kept"))),
            ]),
            ..InteractionResponseData::default()
        }),
    };
    client
        .interaction(app)
        .create_response(asked.id, &asked.token, &modal)
        .await
        .unwrap();
    assert_eq!(world.interaction_reply(asked.id).unwrap().callback_type, 9);

    let submit = |user: Id<UserMarker>, values: &[(&str, &str)]| InteractionSpec {
        guild_id: Id::new(guild),
        user_id: user,
        member_permissions: permissions::EVERYONE,
        kind: InteractionKind::ModalSubmit {
            of: asked.id,
            values: values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        },
        locale: "en-US".into(),
    };
    // What Discord's client would not send: a required field empty, too short, another user.
    for (user, values) in [
        (member.user_id, vec![]),
        (member.user_id, vec![("name", "x")]),
        (member.user_id, vec![("name", "ok"), ("other", "x")]),
        (Id::new(1234), vec![("name", "ok")]),
    ] {
        assert!(world.interact(submit(user, &values)).is_err(), "{values:?}");
    }
    let submitted = world
        .interact(submit(member.user_id, &[("name", "Ada")]))
        .unwrap();
    let Event::InteractionCreate(interaction) = next_dispatch(&mut shard).await else {
        panic!("expected INTERACTION_CREATE")
    };
    assert_eq!(interaction.id, submitted.id);
    assert_eq!(interaction.kind, InteractionType::ModalSubmit);
    let Some(InteractionData::ModalSubmit(data)) = &interaction.data else {
        panic!("no modal data")
    };
    assert_eq!(data.custom_id, "form");
    let values: Vec<(String, String)> = data
        .components
        .iter()
        .filter_map(|c| match c {
            twilight_model::application::interaction::modal::ModalInteractionComponent::Label(l) => {
                match l.component.as_ref() {
                    twilight_model::application::interaction::modal::ModalInteractionComponent::TextInput(t) => {
                        Some((t.custom_id.clone(), t.value.clone()))
                    }
                    _ => None,
                }
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        values,
        [
            ("name".to_owned(), "Ada".to_owned()),
            ("note".to_owned(), "kept".to_owned())
        ]
    );

    // A modal cannot answer a modal submit.
    let error = client
        .interaction(app)
        .create_response(submitted.id, &submitted.token, &modal)
        .await
        .unwrap_err();
    assert_eq!(api_code(&error).0, 400);
    // A follow-up needs the initial response first.
    let error = client
        .interaction(app)
        .create_followup(&submitted.token)
        .content("early")
        .await
        .unwrap_err();
    assert_eq!(api_code(&error), (404, 10015));
    client
        .interaction(app)
        .create_response(submitted.id, &submitted.token, &reply("Saved"))
        .await
        .unwrap();
    let followup = client
        .interaction(app)
        .create_followup(&submitted.token)
        .content("And one more thing")
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(followup.content, "And one more thing");
    let got = world.interaction_reply(submitted.id).unwrap();
    assert_eq!(got.content.as_deref(), Some("Saved"));
    assert_eq!(got.followups.len(), 1);
    assert_eq!(got.followups[0].id, followup.id);
    // An empty follow-up is refused.
    let error = client
        .interaction(app)
        .create_followup(&submitted.token)
        .content("")
        .await
        .unwrap_err();
    assert_eq!(api_code(&error), (400, 50006));
    sim.stop().await;
}
