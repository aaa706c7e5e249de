//! The body of `POST /channels/{id}/messages`, checked as Discord checks a form: every
//! limit of Create Message and of embeds, each failure reported under its field in the
//! `errors` object of a 400 code 50035 (`{"embeds":{"0":{"title":{"_errors":[{"code":…,
//! "message":…}]}}}}`, Discord's shape; codes and messages are what Discord is seen to send).
//! Lengths are counted in characters (Unicode scalar values, as twilight counts them).
//! What the body becomes is the world's [`NewMessage`]; the channel, permissions and an empty
//! message are the world's to check.

use crate::{wire::Nonce, world::NewMessage};
use serde_json::{Map, Value, json};

/// `content`: "up to 2000 characters".
const CONTENT_CHARS: usize = 2000;
/// `nonce`: "up to 25 characters".
const NONCE_CHARS: usize = 25;
/// `embeds`: "up to 10 rich embeds".
const EMBEDS: usize = 10;
/// The characters of every embed's title, description, field names and values, footer text
/// and author name together.
const EMBEDS_TOTAL_CHARS: usize = 6000;
const TITLE_CHARS: usize = 256;
const DESCRIPTION_CHARS: usize = 4096;
const FIELDS: usize = 25;
const FIELD_NAME_CHARS: usize = 256;
const FIELD_VALUE_CHARS: usize = 1024;
const FOOTER_TEXT_CHARS: usize = 2048;
const AUTHOR_NAME_CHARS: usize = 256;
/// `allowed_mentions.users` / `.roles`: "max size of 100".
const MENTION_IDS: usize = 100;
const MENTION_TYPES: [&str; 3] = ["roles", "users", "everyone"];

/// Create Message fields the simulator does not model: a body with one of them is refused
/// rather than half understood.
const NOT_SIMULATED: [&str; 8] = [
    "tts",
    "flags",
    "components",
    "sticker_ids",
    "poll",
    "attachments",
    "message_reference",
    "payload_json",
];

/// Why a Create Message body was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FormError {
    /// Not JSON at all (Discord's code 50109).
    #[error("The request body contains invalid JSON.")]
    InvalidJson,
    /// JSON whose fields break Discord's rules (code 50035).
    #[error("Invalid Form Body")]
    InvalidForm(FieldErrors),
}

/// The failures of a form, by field path.
#[derive(Debug, Default)]
pub(crate) struct FieldErrors {
    entries: Vec<(Vec<String>, &'static str, String)>,
}

impl FieldErrors {
    /// Whether nothing failed.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn add(&mut self, path: &[&str], code: &'static str, message: impl Into<String>) {
        self.entries.push((
            path.iter().map(|p| (*p).to_owned()).collect(),
            code,
            message.into(),
        ));
    }

    pub(crate) fn too_long(&mut self, path: &[&str], limit: usize) {
        self.add(
            path,
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {limit} or fewer in length."),
        );
    }

    pub(crate) fn required(&mut self, path: &[&str]) {
        self.add(path, "BASE_TYPE_REQUIRED", "This field is required");
    }

    pub(crate) fn not_object(&mut self, path: &[&str]) {
        self.add(
            path,
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType",
        );
    }

    pub(crate) fn not_list(&mut self, path: &[&str]) {
        self.add(
            path,
            "LIST_TYPE_CONVERT",
            "Only iterables may be used in a ListType",
        );
    }

    pub(crate) fn not_string(&mut self, path: &[&str]) {
        not_string(self, path);
    }

    /// Takes `other`'s failures, their paths under `prefix`.
    pub(crate) fn merge_under(&mut self, prefix: &[&str], other: FieldErrors) {
        for (path, code, message) in other.entries {
            let mut full: Vec<String> = prefix.iter().map(|p| (*p).to_owned()).collect();
            full.extend(path);
            self.entries.push((full, code, message));
        }
    }

    /// Discord's `errors` object: the path's keys nest, array indices as strings, and each
    /// field's failures under `_errors`.
    pub(crate) fn to_json(&self) -> Value {
        let mut root = Map::new();
        'entries: for (path, code, message) in &self.entries {
            let mut node = &mut root;
            for key in path {
                let child = node
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(child) = child else {
                    continue 'entries;
                };
                node = child;
            }
            if let Value::Array(list) = node
                .entry("_errors")
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                list.push(json!({ "code": code, "message": message }));
            }
        }
        Value::Object(root)
    }
}

/// Checks a Create Message body (JSON; an empty body is an empty form).
pub(crate) fn parse(body: &[u8]) -> Result<NewMessage, FormError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(NewMessage::default());
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| FormError::InvalidJson)?;
    let mut errors = FieldErrors::default();
    let Value::Object(mut form) = value else {
        errors.not_object(&[]);
        return Err(FormError::InvalidForm(errors));
    };
    let content = match form.remove("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(content)) => {
            if content.chars().count() > CONTENT_CHARS {
                errors.too_long(&["content"], CONTENT_CHARS);
            }
            content
        }
        Some(_) => {
            not_string(&mut errors, &["content"]);
            String::new()
        }
    };
    let nonce = nonce(&mut errors, form.remove("nonce"));
    let enforce_nonce = match form.remove("enforce_nonce") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(enforce)) => enforce,
        Some(_) => {
            errors.add(
                &["enforce_nonce"],
                "BASE_TYPE_BOOLEAN",
                "Must be either true or false.",
            );
            false
        }
    };
    let embeds = embeds(&mut errors, form.remove("embeds"));
    let allowed_mentions = allowed_mentions(&mut errors, form.remove("allowed_mentions"));
    for field in NOT_SIMULATED {
        if form.get(field).is_some_and(|v| !v.is_null()) {
            errors.add(
                &[field],
                "NOT_SIMULATED",
                "invitrack-sim does not simulate this field",
            );
        }
    }
    if errors.entries.is_empty() {
        Ok(NewMessage {
            content,
            embeds,
            nonce,
            enforce_nonce,
            allowed_mentions,
        })
    } else {
        Err(FormError::InvalidForm(errors))
    }
}

fn not_string(errors: &mut FieldErrors, path: &[&str]) {
    errors.add(
        path,
        "STRING_TYPE_CONVERT",
        "Could not interpret the value as string.",
    );
}

/// `nonce`: an integer or a string of up to 25 characters.
fn nonce(errors: &mut FieldErrors, value: Option<Value>) -> Option<Nonce> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => {
            if text.chars().count() > NONCE_CHARS {
                errors.too_long(&["nonce"], NONCE_CHARS);
            }
            Some(Nonce::String(text))
        }
        // Every 64-bit integer has at most 20 characters.
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(Nonce::Integer(n)),
        Some(_) => {
            errors.add(
                &["nonce"],
                "NONCE_TYPE_INVALID",
                "Must be an integer or a string.",
            );
            None
        }
    }
}

/// `embeds`: up to 10 objects within the embed limits, 6000 characters in all. They come back
/// as Discord keeps them: `type` `rich` whatever was sent, the limited texts trimmed (Discord
/// trims them and does not count the whitespace), the fields a bot cannot set removed.
fn embeds(errors: &mut FieldErrors, value: Option<Value>) -> Vec<Value> {
    let mut list = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(list)) => list,
        Some(_) => {
            errors.not_list(&["embeds"]);
            return Vec::new();
        }
    };
    if list.len() > EMBEDS {
        errors.too_long(&["embeds"], EMBEDS);
    }
    let mut total = 0;
    for (index, embed) in list.iter_mut().enumerate() {
        let index = index.to_string();
        match embed {
            Value::Object(embed) => total += embed_chars(errors, &index, embed),
            _ => errors.not_object(&["embeds", &index]),
        }
    }
    if total > EMBEDS_TOTAL_CHARS {
        errors.add(
            &["embeds"],
            "MAX_EMBED_SIZE_EXCEEDED",
            format!("Embed size exceeds maximum size of {EMBEDS_TOTAL_CHARS}"),
        );
    }
    list
}

/// Checks and normalizes one embed; its characters that count towards the 6000.
fn embed_chars(errors: &mut FieldErrors, index: &str, embed: &mut Map<String, Value>) -> usize {
    // "you can set every field except type (it will be rich regardless of if you try to set
    // it), provider, video, and any height, width, or proxy_url values for images."
    embed.insert("type".to_owned(), Value::from("rich"));
    embed.remove("provider");
    embed.remove("video");
    for media in ["image", "thumbnail"] {
        if let Some(Value::Object(media)) = embed.get_mut(media) {
            for key in ["height", "width", "proxy_url"] {
                media.remove(key);
            }
        }
    }
    let mut chars = text(
        errors,
        &["embeds", index, "title"],
        embed.get_mut("title"),
        TITLE_CHARS,
        false,
    );
    chars += text(
        errors,
        &["embeds", index, "description"],
        embed.get_mut("description"),
        DESCRIPTION_CHARS,
        false,
    );
    for (part, key, limit) in [
        ("footer", "text", FOOTER_TEXT_CHARS),
        ("author", "name", AUTHOR_NAME_CHARS),
    ] {
        match embed.get_mut(part) {
            None | Some(Value::Null) => {}
            Some(Value::Object(part_object)) => {
                part_object.remove("proxy_icon_url");
                chars += text(
                    errors,
                    &["embeds", index, part, key],
                    part_object.get_mut(key),
                    limit,
                    true,
                );
            }
            Some(_) => errors.not_object(&["embeds", index, part]),
        }
    }
    match embed.get_mut("fields") {
        None | Some(Value::Null) => {}
        Some(Value::Array(fields)) => {
            if fields.len() > FIELDS {
                errors.too_long(&["embeds", index, "fields"], FIELDS);
            }
            for (n, field) in fields.iter_mut().enumerate() {
                let n = n.to_string();
                let Value::Object(field) = field else {
                    errors.not_object(&["embeds", index, "fields", &n]);
                    continue;
                };
                for (key, limit) in [("name", FIELD_NAME_CHARS), ("value", FIELD_VALUE_CHARS)] {
                    chars += text(
                        errors,
                        &["embeds", index, "fields", &n, key],
                        field.get_mut(key),
                        limit,
                        true,
                    );
                }
            }
        }
        Some(_) => errors.not_list(&["embeds", index, "fields"]),
    }
    chars
}

/// A limited embed text: trimmed in place; its length in characters.
fn text(
    errors: &mut FieldErrors,
    path: &[&str],
    value: Option<&mut Value>,
    limit: usize,
    required: bool,
) -> usize {
    match value {
        None | Some(Value::Null) => {
            if required {
                errors.required(path);
            }
            0
        }
        Some(Value::String(text)) => {
            let trimmed = text.trim();
            if trimmed.len() != text.len() {
                *text = trimmed.to_owned();
            }
            let chars = text.chars().count();
            if chars == 0 && required {
                errors.required(path);
            }
            if chars > limit {
                errors.too_long(path, limit);
            }
            chars
        }
        Some(_) => {
            not_string(errors, path);
            0
        }
    }
}

/// `allowed_mentions`, kept as sent: `parse` of `roles`/`users`/`everyone`, up to 100 `users`
/// and `roles`, and `parse` naming a kind whose ids are also listed is refused (the docs: the
/// two are mutually exclusive).
fn allowed_mentions(errors: &mut FieldErrors, value: Option<Value>) -> Option<Value> {
    let map = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Object(map)) => map,
        Some(_) => {
            errors.not_object(&["allowed_mentions"]);
            return None;
        }
    };
    let mut parsed: Vec<&str> = Vec::new();
    match map.get("parse") {
        None | Some(Value::Null) => {}
        Some(Value::Array(kinds)) => {
            for (n, kind) in kinds.iter().enumerate() {
                match kind.as_str().filter(|k| MENTION_TYPES.contains(k)) {
                    Some(kind) => parsed.push(kind),
                    None => errors.add(
                        &["allowed_mentions", "parse", &n.to_string()],
                        "BASE_TYPE_CHOICES",
                        "Value must be one of {'roles', 'users', 'everyone'}.",
                    ),
                }
            }
        }
        Some(_) => errors.not_list(&["allowed_mentions", "parse"]),
    }
    for kind in ["users", "roles"] {
        let ids = match map.get(kind) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(ids)) => ids,
            Some(_) => {
                errors.not_list(&["allowed_mentions", kind]);
                continue;
            }
        };
        if ids.len() > MENTION_IDS {
            errors.too_long(&["allowed_mentions", kind], MENTION_IDS);
        }
        for (n, id) in ids.iter().enumerate() {
            if !is_snowflake(id) {
                errors.add(
                    &["allowed_mentions", kind, &n.to_string()],
                    "NUMBER_TYPE_COERCE",
                    format!("Value \"{}\" is not snowflake.", id.as_str().unwrap_or("")),
                );
            }
        }
        // "Note that passing a Falsy value ([], null) into the "users" field does not trigger
        // a validation error."
        if !ids.is_empty() && parsed.contains(&kind) {
            errors.add(
                &["allowed_mentions"],
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                format!("parse:[\"{kind}\"] and {kind}: [ids...] are mutually exclusive."),
            );
        }
    }
    Some(Value::Object(map))
}

fn is_snowflake(id: &Value) -> bool {
    match id {
        Value::String(s) => s.parse::<u64>().is_ok_and(|n| n > 0),
        Value::Number(n) => n.as_u64().is_some_and(|n| n > 0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: Value) -> Value {
        match parse(body.to_string().as_bytes()) {
            Err(FormError::InvalidForm(errors)) => errors.to_json(),
            other => panic!("expected an invalid form, got {other:?}"),
        }
    }

    #[test]
    fn content_nonce_and_mentions_as_sent() {
        let message = parse(
            br#"{"content":"hi","nonce":"d-1","enforce_nonce":true,"allowed_mentions":{"parse":[]}}"#,
        )
        .expect("valid");
        assert_eq!(message.content, "hi");
        assert_eq!(message.nonce, Some(Nonce::String("d-1".into())));
        assert!(message.enforce_nonce);
        assert_eq!(message.allowed_mentions, Some(json!({"parse": []})));
        let integer = parse(br#"{"content":"x","nonce":18446744073709551615}"#).expect("valid");
        assert_eq!(
            integer.nonce.map(|n| n.text()),
            Some("18446744073709551615".to_owned())
        );
    }

    #[test]
    fn limits_are_reported_under_their_field() {
        let errors = refused(json!({
            "content": "x".repeat(2001),
            "nonce": "n".repeat(26),
            "embeds": [{"title": "t".repeat(257), "fields": [{"name": "  ", "value": "v"}]}],
        }));
        assert_eq!(
            errors["content"]["_errors"][0],
            json!({"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."})
        );
        assert_eq!(
            errors["nonce"]["_errors"][0]["code"],
            "BASE_TYPE_MAX_LENGTH"
        );
        assert_eq!(
            errors["embeds"]["0"]["title"]["_errors"][0]["message"],
            "Must be 256 or fewer in length."
        );
        assert_eq!(
            errors["embeds"]["0"]["fields"]["0"]["name"]["_errors"][0]["code"],
            "BASE_TYPE_REQUIRED"
        );
    }

    #[test]
    fn embed_limits_count_trimmed_characters() {
        // 4096 characters of description plus surrounding whitespace: within the limit.
        let padded = format!("  {}\n", "d".repeat(4096));
        let message = parse(
            json!({"embeds": [{"type": "image", "description": padded, "provider": {"name": "p"}}]})
                .to_string()
                .as_bytes(),
        )
        .expect("valid");
        assert_eq!(message.embeds[0]["type"], "rich");
        assert_eq!(
            message.embeds[0]["description"].as_str().map(str::len),
            Some(4096)
        );
        assert!(message.embeds[0].get("provider").is_none());

        let errors = refused(json!({"embeds": [
            {"description": "d".repeat(4000)},
            {"description": "d".repeat(2000), "footer": {"text": "f".repeat(2049)}},
        ]}));
        assert_eq!(
            errors["embeds"]["_errors"][0]["code"],
            "MAX_EMBED_SIZE_EXCEEDED"
        );
        assert_eq!(
            errors["embeds"]["1"]["footer"]["text"]["_errors"][0]["message"],
            "Must be 2048 or fewer in length."
        );
        let errors = refused(json!({"embeds": vec![json!({"title": "t"}); 11]}));
        assert_eq!(
            errors["embeds"]["_errors"][0]["message"],
            "Must be 10 or fewer in length."
        );
        let fields = vec![json!({"name": "n", "value": "v"}); 26];
        let errors = refused(json!({"embeds": [{"fields": fields}]}));
        assert_eq!(
            errors["embeds"]["0"]["fields"]["_errors"][0]["message"],
            "Must be 25 or fewer in length."
        );
    }

    #[test]
    fn allowed_mentions_rules() {
        let errors = refused(
            json!({"content": "x", "allowed_mentions": {"parse": ["users", "all"], "users": ["1"]}}),
        );
        assert_eq!(
            errors["allowed_mentions"]["parse"]["1"]["_errors"][0]["code"],
            "BASE_TYPE_CHOICES"
        );
        assert_eq!(
            errors["allowed_mentions"]["_errors"][0]["code"],
            "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE"
        );
        parse(br#"{"content":"x","allowed_mentions":{"parse":["users"],"users":[]}}"#)
            .expect("an empty list does not conflict");
    }

    #[test]
    fn wrong_types_and_unsimulated_fields() {
        assert!(matches!(parse(b"{not json"), Err(FormError::InvalidJson)));
        let errors =
            refused(json!({"content": 5, "enforce_nonce": "yes", "nonce": 1.5, "tts": true}));
        for field in ["content", "enforce_nonce", "nonce", "tts"] {
            assert!(errors[field]["_errors"].is_array(), "{field}: {errors}");
        }
        assert_eq!(
            refused(json!([]))["_errors"][0]["code"],
            "DICT_TYPE_CONVERT"
        );
        assert_eq!(parse(b"  ").expect("empty form"), NewMessage::default());
    }
}
