//! The slash commands the bot registers, and their registration: one bulk overwrite at start-up,
//! only when what Discord has differs (`docs/commands.md#registration`).

use invitrack_discord::{DiscordGate, GateError};
use serde_json::{Value, json};
use twilight_http::Client;
use twilight_model::application::command::Command;
use twilight_model::id::Id;
use twilight_model::id::marker::ApplicationMarker;

/// The commands, as Discord's JSON: the one place their names, options and descriptions are.
fn definitions() -> Value {
    // type 6 = USER, 3 = STRING, 4 = INTEGER; contexts [0] = guilds only.
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
        }
    ])
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
        assert_eq!(names, ["invites", "leaderboard", "inviter"]);
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
