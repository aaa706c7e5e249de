//! The slash commands the bot registers, and their registration: one bulk overwrite at start-up,
//! only when what Discord has differs (`docs/commands.md#registration`).

use invitrack_discord::{DiscordGate, GateError};
use invitrack_model::FakeSettings;
use serde_json::{Value, json};
use twilight_http::Client;
use twilight_model::application::command::Command;
use twilight_model::id::Id;
use twilight_model::id::marker::ApplicationMarker;

use super::admin::MAX_BONUS;

/// The commands, as Discord's JSON: the one place their names, options and descriptions are.
fn definitions() -> Value {
    // Option types: 1 SUB_COMMAND, 3 STRING, 4 INTEGER, 5 BOOLEAN, 6 USER, 7 CHANNEL; channel
    // types 0 text, 5 announcement; contexts [0] = guilds only. Commands with
    // default_member_permissions need Manage Server, which `needs_manage_server` reads here.
    const MANAGE_GUILD: &str = "32";
    let bonus_options = json!([
        {"type": 6, "name": "user", "description": "Whose invites", "required": true},
        {"type": 4, "name": "amount", "description": "How many", "required": true, "min_value": 1, "max_value": MAX_BONUS},
        {"type": 3, "name": "reason", "description": "Why (kept in the audit log)", "required": false, "max_length": 200}
    ]);
    json!([
        {
            "name": "invites",
            "type": 1,
            "description": "How many members someone brought: total, real, fake, left and bonus",
            "contexts": [0],
            "options": [
                {"type": 6, "name": "user", "description": "Whose invites (yours when empty)", "required": false}
            ]
        },
        {
            "name": "leaderboard",
            "type": 1,
            "description": "Who brought the most members",
            "contexts": [0],
            "options": [
                {"type": 3, "name": "range", "description": "Which joins count", "required": false,
                 "choices": [
                    {"name": "all time", "value": "all"},
                    {"name": "last 7 days", "value": "7d"},
                    {"name": "last 30 days", "value": "30d"}
                 ]},
                {"type": 4, "name": "page", "description": "Which page", "required": false,
                 "min_value": 1, "max_value": 10000}
            ]
        },
        {
            "name": "inviter",
            "type": 1,
            "description": "Who invited a member, by which invite, or why it is not known",
            "contexts": [0],
            "options": [
                {"type": 6, "name": "member", "description": "The member", "required": true}
            ]
        },
        {
            "name": "invitecodes",
            "type": 1,
            "description": "Someone's invite codes with their uses, limits and expiry",
            "contexts": [0],
            "options": [
                {"type": 6, "name": "user", "description": "Whose codes (yours when empty)", "required": false}
            ]
        },
        {
            "name": "tracking",
            "type": 1,
            "description": "Whether invite tracking works in this server, and what to fix",
            "contexts": [0]
        },
        {
            "name": "bonus",
            "type": 1,
            "description": "Give or take bonus invites",
            "contexts": [0],
            "default_member_permissions": MANAGE_GUILD,
            "options": [
                {"type": 1, "name": "add", "description": "Give someone bonus invites", "options": bonus_options},
                {"type": 1, "name": "remove", "description": "Take bonus invites from someone", "options": bonus_options}
            ]
        },
        {
            "name": "resetinvites",
            "type": 1,
            "description": "Stop counting someone's invites, or everyone's (after a confirmation; can be undone)",
            "contexts": [0],
            "default_member_permissions": MANAGE_GUILD,
            "options": [
                {"type": 6, "name": "user", "description": "Whose invites (everyone's when empty)", "required": false}
            ]
        },
        {
            "name": "restoreinvites",
            "type": 1,
            "description": "Undo the latest reset of invite counts",
            "contexts": [0],
            "default_member_permissions": MANAGE_GUILD
        },
        {
            "name": "config",
            "type": 1,
            "description": "invitrack's settings for this server",
            "contexts": [0],
            "default_member_permissions": MANAGE_GUILD,
            "options": [
                {"type": 1, "name": "show", "description": "Show the settings"},
                {"type": 1, "name": "join-channel", "description": "Where join messages go",
                 "options": [{"type": 7, "name": "channel", "description": "The channel (none: no join messages)", "required": false, "channel_types": [0, 5]}]},
                {"type": 1, "name": "leave-channel", "description": "Where leave messages go",
                 "options": [{"type": 7, "name": "channel", "description": "The channel (none: no leave messages)", "required": false, "channel_types": [0, 5]}]},
                {"type": 1, "name": "fake-rules", "description": "Which joins count as fake (from now on)",
                 "options": [
                    {"type": 5, "name": "young-accounts", "description": "Accounts younger than young-days", "required": false},
                    {"type": 4, "name": "young-days", "description": "How young an account is too young, in days", "required": false, "min_value": 0, "max_value": FakeSettings::MAX_YOUNG_ACCOUNT_DAYS},
                    {"type": 5, "name": "self-invites", "description": "Members who used their own invite", "required": false},
                    {"type": 5, "name": "no-avatar", "description": "Accounts without an avatar", "required": false},
                    {"type": 5, "name": "rejoins", "description": "Members who had joined before", "required": false}
                 ]},
                {"type": 1, "name": "template", "description": "Word a join or leave message, with a preview",
                 "options": [{"type": 3, "name": "message", "description": "Which message", "required": true,
                   "choices": [
                    {"name": "join by an invite", "value": "invite"},
                    {"name": "join by the vanity URL", "value": "vanity"},
                    {"name": "join by one inviter's codes", "value": "ambiguous_inviter"},
                    {"name": "ambiguous join", "value": "ambiguous"},
                    {"name": "unknown join", "value": "unknown"},
                    {"name": "fake join", "value": "fake"},
                    {"name": "leave", "value": "leave"}
                   ]}]},
                {"type": 1, "name": "invite-channel", "description": "Where /invite link creates members' invites",
                 "options": [{"type": 7, "name": "channel", "description": "The channel (none: /invite link is off)", "required": false, "channel_types": [0, 5]}]}
            ]
        },
        {
            "name": "invite",
            "type": 1,
            "description": "Your own invite to this server",
            "contexts": [0],
            "options": [
                {"type": 1, "name": "link", "description": "A personal invite: everyone who joins through it counts for you"}
            ]
        }
    ])
}

/// Whether the command `name` needs Manage Server: the ones registered with default member
/// permissions. The bot checks it on every use, since a server can change who sees a command.
#[must_use]
pub fn needs_manage_server(name: &str) -> bool {
    definitions()
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["name"] == name && !c["default_member_permissions"].is_null())
}

/// The commands to register.
///
/// # Panics
/// Never: the definitions are checked by a test.
#[must_use]
pub fn commands() -> Vec<Command> {
    definitions()
        .as_array()
        .expect("an array")
        .iter()
        .map(|command| {
            let mut command = command.clone();
            // Discord ignores the version on registration; twilight's type needs one.
            command["version"] = json!("1");
            serde_json::from_value(command).expect("a valid command")
        })
        .collect()
}

/// What a registration is compared on: what the bot defines, not what Discord adds (ids,
/// versions, defaults).
fn essence(commands: &[Command]) -> Vec<Value> {
    let mut essence: Vec<Value> = commands
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "description": c.description,
                "options": serde_json::to_value(&c.options).unwrap_or_default(),
                "default_member_permissions": c.default_member_permissions.map(|p| p.bits()),
            })
        })
        .collect();
    essence.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    essence
}

/// Registers [`commands`] when Discord's list differs; `true` when it sent them.
///
/// # Errors
/// When Discord refuses.
pub async fn register(
    http: &Client,
    gate: &DiscordGate,
    application_id: Id<ApplicationMarker>,
) -> Result<bool, GateError> {
    let wanted = commands();
    let current = gate
        .send(http.interaction(application_id).global_commands())
        .await?
        .models()
        .await
        .unwrap_or_default();
    if essence(&current) == essence(&wanted) {
        return Ok(false);
    }
    gate.send(
        http.interaction(application_id)
            .set_global_commands(&wanted),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definitions_are_commands_discord_takes() {
        let commands = commands();
        let names: Vec<&str> = commands.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "invites",
                "leaderboard",
                "inviter",
                "invitecodes",
                "tracking",
                "bonus",
                "resetinvites",
                "restoreinvites",
                "config",
                "invite"
            ]
        );
        for admin in ["bonus", "resetinvites", "restoreinvites", "config"] {
            assert!(needs_manage_server(admin), "{admin}");
        }
        for anyone in [
            "invites",
            "leaderboard",
            "inviter",
            "invitecodes",
            "tracking",
            "invite",
            "x",
        ] {
            assert!(!needs_manage_server(anyone), "{anyone}");
        }
        for command in &commands {
            // Discord's rules: 1-32 lowercase characters, descriptions 1-100.
            assert!(
                (1..=32).contains(&command.name.len())
                    && command.name == command.name.to_lowercase(),
                "{}",
                command.name
            );
            assert!((1..=100).contains(&command.description.chars().count()));
            for option in &command.options {
                assert!((1..=100).contains(&option.description.chars().count()));
            }
        }
        // The same list compares equal whatever Discord added.
        assert_eq!(essence(&commands), essence(&self::commands()));
    }
}
