//! The body of `PUT /applications/{id}/commands` (bulk overwrite), checked as Discord checks
//! application commands: names (1–32 characters of `[-_\p{L}\p{N}]`, lowercase where a
//! lowercase form exists, for slash commands), descriptions (1–100), at most 25 options per
//! level (with the same rules, and 25 choices), unique names per type, at most 100 slash
//! commands. Failures are reported under their index and field, e.g.
//! `{"0":{"name":{"_errors":[{"code":"STRING_TYPE_REGEX","message":…}]}}}` (Discord's
//! shape; codes and messages are what Discord is seen to send).

use crate::message_form::{FieldErrors, FormError};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Characters of a name.
const NAME_CHARS: std::ops::RangeInclusive<usize> = 1..=32;
/// Characters of a description.
const DESCRIPTION_CHARS: std::ops::RangeInclusive<usize> = 1..=100;
/// Options of a command (or of a subcommand), choices of an option.
const OPTIONS: usize = 25;
/// Slash commands an application may have.
const CHAT_INPUT_COMMANDS: usize = 100;
/// `CHAT_INPUT`.
const CHAT_INPUT: u64 = 1;

/// A command as sent, checked; the world adds `id`, `application_id` and `version`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewCommand {
    pub(crate) name: String,
    pub(crate) kind: u8,
    pub(crate) description: String,
    /// The fields Discord keeps, as sent (`type` defaulted to 1, `default_member_permissions`
    /// as a string or `null`), without `id`, `application_id`, `version`.
    pub(crate) object: Map<String, Value>,
}

/// Whether `name` is a valid slash command or option name.
pub(crate) fn valid_name(name: &str) -> bool {
    NAME_CHARS.contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c == '-' || c == '_' || c.is_alphabetic() || c.is_numeric())
}

fn lowercase(name: &str) -> bool {
    name.chars()
        .all(|c| c.to_lowercase().eq(std::iter::once(c)))
}

/// Checks a bulk overwrite body: a JSON array of commands.
pub(crate) fn parse(body: &[u8]) -> Result<Vec<NewCommand>, FormError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| FormError::InvalidJson)?;
    let mut errors = FieldErrors::default();
    let Value::Array(list) = value else {
        errors.add(
            &[],
            "LIST_TYPE_CONVERT",
            "Only iterables may be used in a ListType",
        );
        return Err(FormError::InvalidForm(errors));
    };
    let mut out = Vec::with_capacity(list.len());
    let mut seen = HashSet::new();
    for (index, command) in list.into_iter().enumerate() {
        let index = index.to_string();
        if let Some(command) = check_command(&mut errors, &index, command) {
            if !seen.insert((command.kind, command.name.clone())) {
                errors.add(
                    &[&index, "name"],
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    format!("Application command names must be unique: {}", command.name),
                );
            }
            out.push(command);
        }
    }
    if out
        .iter()
        .filter(|c| u64::from(c.kind) == CHAT_INPUT)
        .count()
        > CHAT_INPUT_COMMANDS
    {
        errors.add(
            &[],
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {CHAT_INPUT_COMMANDS} or fewer in length."),
        );
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(FormError::InvalidForm(errors))
    }
}

fn bad_length(errors: &mut FieldErrors, path: &[&str], range: &std::ops::RangeInclusive<usize>) {
    errors.add(
        path,
        "BASE_TYPE_BAD_LENGTH",
        format!(
            "Must be between {} and {} in length.",
            range.start(),
            range.end()
        ),
    );
}

/// `name` of a command or option; `strict` for slash commands and options.
fn check_name(errors: &mut FieldErrors, path: &[&str], value: Option<&Value>, strict: bool) {
    let mut at: Vec<&str> = path.to_vec();
    at.push("name");
    match value {
        None | Some(Value::Null) => errors.required(&at),
        Some(Value::String(name)) => {
            if !NAME_CHARS.contains(&name.chars().count()) {
                bad_length(errors, &at, &NAME_CHARS);
            } else if strict && !valid_name(name) {
                errors.add(
                    &at,
                    "STRING_TYPE_REGEX",
                    "String value did not match validation regex.",
                );
            } else if strict && !lowercase(name) {
                errors.add(
                    &at,
                    "APPLICATION_COMMAND_INVALID_NAME",
                    "Command name is invalid",
                );
            }
        }
        Some(_) => errors.not_string(&at),
    }
}

fn check_description(errors: &mut FieldErrors, path: &[&str], value: Option<&Value>) {
    let mut at: Vec<&str> = path.to_vec();
    at.push("description");
    match value {
        None | Some(Value::Null) => errors.required(&at),
        Some(Value::String(text)) => {
            if !DESCRIPTION_CHARS.contains(&text.chars().count()) {
                bad_length(errors, &at, &DESCRIPTION_CHARS);
            }
        }
        Some(_) => errors.not_string(&at),
    }
}

fn check_command(errors: &mut FieldErrors, index: &str, value: Value) -> Option<NewCommand> {
    let Value::Object(mut object) = value else {
        errors.not_object(&[index]);
        return None;
    };
    for read_only in ["id", "application_id", "version", "guild_id"] {
        object.remove(read_only);
    }
    let kind = match object.get("type") {
        None | Some(Value::Null) => CHAT_INPUT,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|k| (1..=4).contains(&k)) => {
            n.as_u64().unwrap_or(CHAT_INPUT)
        }
        Some(_) => {
            errors.add(
                &[index, "type"],
                "BASE_TYPE_CHOICES",
                "Value must be one of {1, 2, 3, 4}.",
            );
            return None;
        }
    };
    object.insert("type".to_owned(), Value::from(kind));
    let strict = kind == CHAT_INPUT;
    check_name(errors, &[index], object.get("name"), strict);
    if strict {
        check_description(errors, &[index], object.get("description"));
    } else if !matches!(object.get("description"), None | Some(Value::Null))
        && object.get("description") != Some(&Value::String(String::new()))
    {
        // User and message commands have no description.
        errors.add(
            &[index, "description"],
            "APPLICATION_COMMAND_INVALID_DESCRIPTION",
            "Description must be empty for this command type",
        );
    }
    match object.get("default_member_permissions").cloned() {
        None | Some(Value::Null) => {
            object.insert("default_member_permissions".to_owned(), Value::Null);
        }
        Some(Value::String(bits)) if bits.parse::<u64>().is_ok() => {}
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            object.insert(
                "default_member_permissions".to_owned(),
                Value::String(n.to_string()),
            );
        }
        Some(_) => errors.add(
            &[index, "default_member_permissions"],
            "NUMBER_TYPE_COERCE",
            "Value is not a valid permission set.",
        ),
    }
    if let Some(options) = object.get("options") {
        check_options(errors, &[index, "options"], options, strict);
    }
    if object
        .get("options")
        .is_some_and(|o| o.as_array().is_some_and(Vec::is_empty))
    {
        object.remove("options");
    }
    let name = object
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let description = object
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !strict {
        object.insert("description".to_owned(), Value::String(String::new()));
    }
    Some(NewCommand {
        name,
        kind: u8::try_from(kind).unwrap_or(1),
        description,
        object,
    })
}

/// The options of a command or subcommand: at most 25, each named and described as a
/// command, of a known type (1–11), with at most 25 choices; subcommands (1) and groups (2)
/// nest their own options.
fn check_options(errors: &mut FieldErrors, path: &[&str], value: &Value, strict: bool) {
    let options = match value {
        Value::Null => return,
        Value::Array(options) => options,
        _ => {
            errors.not_list(path);
            return;
        }
    };
    if !strict && !options.is_empty() {
        errors.add(
            path,
            "APPLICATION_COMMAND_OPTIONS_INVALID",
            "Only slash commands can have options",
        );
        return;
    }
    if options.len() > OPTIONS {
        errors.too_long(path, OPTIONS);
    }
    let mut names = HashSet::new();
    for (i, option) in options.iter().enumerate() {
        let index = i.to_string();
        let mut at: Vec<&str> = path.to_vec();
        at.push(&index);
        let Value::Object(option) = option else {
            errors.not_object(&at);
            continue;
        };
        check_name(errors, &at, option.get("name"), true);
        check_description(errors, &at, option.get("description"));
        if let Some(name) = option.get("name").and_then(Value::as_str)
            && !names.insert(name)
        {
            let mut name_at = at.clone();
            name_at.push("name");
            errors.add(
                &name_at,
                "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            );
        }
        let kind = option.get("type").and_then(Value::as_u64);
        if !kind.is_some_and(|k| (1..=11).contains(&k)) {
            let mut type_at = at.clone();
            type_at.push("type");
            errors.add(
                &type_at,
                "BASE_TYPE_CHOICES",
                "Value must be one of {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}.",
            );
        }
        if let Some(Value::Array(choices)) = option.get("choices")
            && choices.len() > OPTIONS
        {
            let mut choices_at = at.clone();
            choices_at.push("choices");
            errors.too_long(&choices_at, OPTIONS);
        }
        if matches!(kind, Some(1 | 2))
            && let Some(nested) = option.get("options")
        {
            let mut nested_at = at.clone();
            nested_at.push("options");
            check_options(errors, &nested_at, nested, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(body: Value) -> Value {
        match parse(&serde_json::to_vec(&body).expect("ser")) {
            Err(FormError::InvalidForm(errors)) => errors.to_json(),
            other => panic!("expected an invalid form, got {other:?}"),
        }
    }

    #[test]
    fn accepts_and_defaults() {
        let body = json!([
            {"name": "invites", "description": "Your invites", "options": [
                {"type": 6, "name": "user", "description": "Whose", "required": false}
            ], "default_member_permissions": 32},
            {"name": "Who invited", "type": 2},
        ]);
        let commands = parse(&serde_json::to_vec(&body).expect("ser")).expect("valid");
        assert_eq!(commands.len(), 2);
        assert_eq!(commands[0].kind, 1);
        assert_eq!(commands[0].object["type"], 1);
        assert_eq!(commands[0].object["default_member_permissions"], "32");
        assert_eq!(
            commands[1].object["default_member_permissions"],
            Value::Null
        );
        assert_eq!(commands[1].object["description"], "");
    }

    #[test]
    fn names_descriptions_and_options() {
        let errors = refused(json!([
            {"name": "Invites", "description": "x"},
            {"name": "has space", "description": "x"},
            {"name": "", "description": ""},
            {"name": "ok", "description": "x".repeat(101)},
            {"name": "ok2", "description": "x", "options": (0..26).map(|i| json!({
                "type": 3, "name": format!("o{i}"), "description": "d"
            })).collect::<Vec<_>>()},
            {"name": "ok3", "description": "x", "options": [
                {"type": 3, "name": "BAD", "description": "d"},
                {"type": 12, "name": "fine", "description": "d"},
            ]},
            {"name": "invites", "description": "x"},
            {"name": "invites", "description": "x"},
        ]));
        assert_eq!(
            errors["0"]["name"]["_errors"][0]["code"],
            "APPLICATION_COMMAND_INVALID_NAME"
        );
        assert_eq!(
            errors["1"]["name"]["_errors"][0]["code"],
            "STRING_TYPE_REGEX"
        );
        assert_eq!(
            errors["2"]["name"]["_errors"][0]["code"],
            "BASE_TYPE_BAD_LENGTH"
        );
        assert_eq!(
            errors["2"]["description"]["_errors"][0]["code"],
            "BASE_TYPE_BAD_LENGTH"
        );
        assert_eq!(
            errors["3"]["description"]["_errors"][0]["code"],
            "BASE_TYPE_BAD_LENGTH"
        );
        assert_eq!(
            errors["4"]["options"]["_errors"][0]["code"],
            "BASE_TYPE_MAX_LENGTH"
        );
        assert_eq!(
            errors["5"]["options"]["0"]["name"]["_errors"][0]["code"],
            "APPLICATION_COMMAND_INVALID_NAME"
        );
        assert_eq!(
            errors["5"]["options"]["1"]["type"]["_errors"][0]["code"],
            "BASE_TYPE_CHOICES"
        );
        assert_eq!(
            errors["7"]["name"]["_errors"][0]["code"],
            "APPLICATION_COMMANDS_DUPLICATE_NAME"
        );
        assert!(errors.get("6").is_none(), "{errors}");
    }

    #[test]
    fn unicode_names() {
        assert!(valid_name("einladungen-2"));
        assert!(valid_name("приглашения"));
        assert!(valid_name("招待"));
        assert!(!valid_name("a.b"));
        assert!(!valid_name(&"a".repeat(33)));
        assert!(!lowercase("Ab"));
        assert!(lowercase("招待"));
    }
}
