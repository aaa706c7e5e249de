//! The bodies of the interaction routes, checked as Discord checks them: `POST
//! /interactions/{id}/{token}/callback` (an interaction response: `type` and `data`) and
//! `PATCH /webhooks/{application_id}/{token}/messages/@original` (an edit). The message
//! fields (`content`, `embeds`, `allowed_mentions`) go through Create Message's checks
//! ([`crate::message_form`]), their failures reported under `data` for a callback.

use crate::message_form::{self, FieldErrors, FormError};
use serde_json::{Map, Value};

/// Callback types the simulator answers: CHANNEL_MESSAGE_WITH_SOURCE,
/// DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE, MODAL.
pub(crate) const CALLBACK_TYPES: [u8; 5] = [4, 5, 6, 7, 9];
/// A modal's `custom_id`: up to 100 characters.
const CUSTOM_ID_CHARS: usize = 100;
/// A modal's `title`: up to 45 characters.
const TITLE_CHARS: usize = 45;
/// A label's text: up to 45 characters.
const LABEL_CHARS: usize = 45;
/// A text input's lengths and value: up to 4000 characters.
const TEXT_INPUT_CHARS: usize = 4_000;
/// A modal's components: 1 to 5.
const MODAL_COMPONENTS: usize = 5;
/// A message's components (top-level): up to 5 action rows (up to 40 components with
/// Components V2; the simulator does not count those).
const MESSAGE_COMPONENTS: usize = 40;

/// A checked interaction response.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct CallbackForm {
    pub(crate) kind: u8,
    /// A modal's `custom_id`.
    pub(crate) custom_id: Option<String>,
    pub(crate) content: Option<String>,
    pub(crate) embeds: Vec<Value>,
    /// An array (`[]` when absent).
    pub(crate) components: Value,
    pub(crate) flags: u64,
}

/// A checked follow-up message (Create Followup Message's fields the simulator keeps).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct FollowUpForm {
    pub(crate) content: Option<String>,
    pub(crate) embeds: Vec<Value>,
    /// An array (`[]` when absent).
    pub(crate) components: Value,
    pub(crate) flags: u64,
}

/// A checked edit: `None` = field absent (kept), `Some(None)` for `content` = `null`
/// (cleared).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct EditForm {
    pub(crate) content: Option<Option<String>>,
    pub(crate) embeds: Option<Vec<Value>>,
    pub(crate) components: Option<Value>,
}

/// Runs Create Message's checks on the message fields of `form`, reporting under `prefix`.
/// Returns the content (`None` when absent or `null`) and the embeds.
fn message_fields(
    errors: &mut FieldErrors,
    prefix: &[&str],
    form: &Map<String, Value>,
) -> (Option<String>, Vec<Value>) {
    let mut subset = Map::new();
    for field in ["content", "embeds", "allowed_mentions"] {
        if let Some(value) = form.get(field).filter(|v| !v.is_null()) {
            subset.insert(field.to_owned(), value.clone());
        }
    }
    let content = subset
        .get("content")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body = serde_json::to_vec(&Value::Object(subset)).unwrap_or_default();
    match message_form::parse(&body) {
        Ok(message) => (content, message.embeds),
        Err(FormError::InvalidForm(inner)) => {
            errors.merge_under(prefix, inner);
            (None, Vec::new())
        }
        Err(FormError::InvalidJson) => (None, Vec::new()),
    }
}

fn components(
    errors: &mut FieldErrors,
    path: &[&str],
    value: Option<&Value>,
    max: usize,
) -> Option<Value> {
    match value {
        None => None,
        Some(Value::Null) => Some(Value::Array(Vec::new())),
        Some(Value::Array(list)) => {
            if list.len() > max {
                errors.too_long(path, max);
            }
            Some(Value::Array(list.clone()))
        }
        Some(_) => {
            errors.not_list(path);
            None
        }
    }
}

fn refuse_unsimulated(errors: &mut FieldErrors, prefix: &[&str], form: &Map<String, Value>) {
    for field in ["attachments", "poll", "payload_json"] {
        if form.get(field).is_some_and(|v| !v.is_null()) {
            let mut at = prefix.to_vec();
            at.push(field);
            errors.add(
                &at,
                "NOT_SIMULATED",
                "invitrack-sim does not simulate this field",
            );
        }
    }
}

/// Checks an interaction response body.
pub(crate) fn parse_callback(body: &[u8]) -> Result<CallbackForm, FormError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| FormError::InvalidJson)?;
    let mut errors = FieldErrors::default();
    let Value::Object(form) = value else {
        errors.not_object(&[]);
        return Err(FormError::InvalidForm(errors));
    };
    let kind = match form.get("type").and_then(Value::as_u64) {
        Some(k) if CALLBACK_TYPES.iter().any(|t| u64::from(*t) == k) => {
            u8::try_from(k).unwrap_or(0)
        }
        None if form.get("type").is_none_or(Value::is_null) => {
            errors.required(&["type"]);
            0
        }
        _ => {
            errors.add(
                &["type"],
                "BASE_TYPE_CHOICES",
                "Value must be one of {4, 5, 6, 7, 9}.",
            );
            0
        }
    };
    let empty = Map::new();
    let data = match form.get("data") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(data)) => data,
        Some(_) => {
            errors.not_object(&["data"]);
            &empty
        }
    };
    let mut out = CallbackForm {
        kind,
        components: Value::Array(Vec::new()),
        ..CallbackForm::default()
    };
    if kind == 9 {
        for (field, limit) in [("custom_id", CUSTOM_ID_CHARS), ("title", TITLE_CHARS)] {
            match data.get(field) {
                None | Some(Value::Null) => errors.required(&["data", field]),
                Some(Value::String(text)) => {
                    if text.chars().count() > limit {
                        errors.too_long(&["data", field], limit);
                    }
                }
                Some(_) => errors.not_string(&["data", field]),
            }
        }
        out.custom_id = data
            .get("custom_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match components(
            &mut errors,
            &["data", "components"],
            data.get("components"),
            MODAL_COMPONENTS,
        ) {
            Some(Value::Array(list)) if !list.is_empty() => {
                check_modal_components(&mut errors, &list);
                out.components = Value::Array(list);
            }
            Some(_) | None => errors.add(
                &["data", "components"],
                "BASE_TYPE_BAD_LENGTH",
                format!("Must be between 1 and {MODAL_COMPONENTS} in length."),
            ),
        }
    } else {
        let message = message(&mut errors, &["data"], data);
        out.content = message.content;
        out.embeds = message.embeds;
        out.components = message.components;
        out.flags = message.flags;
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(FormError::InvalidForm(errors))
    }
}

/// Checks a Create Followup Message body.
pub(crate) fn parse_followup(body: &[u8]) -> Result<FollowUpForm, FormError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| FormError::InvalidJson)?;
    let mut errors = FieldErrors::default();
    let Value::Object(form) = value else {
        errors.not_object(&[]);
        return Err(FormError::InvalidForm(errors));
    };
    let out = message(&mut errors, &[], &form);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(FormError::InvalidForm(errors))
    }
}

/// The fields of a message sent by an interaction response or a follow-up, checked.
fn message(errors: &mut FieldErrors, prefix: &[&str], form: &Map<String, Value>) -> FollowUpForm {
    let (content, embeds) = message_fields(errors, prefix, form);
    let at = |field: &'static str| {
        let mut path = prefix.to_vec();
        path.push(field);
        path
    };
    let components = components(
        errors,
        &at("components"),
        form.get("components"),
        MESSAGE_COMPONENTS,
    )
    .unwrap_or_else(|| Value::Array(Vec::new()));
    let flags = match form.get("flags") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0),
        Some(_) => {
            errors.add(&at("flags"), "NUMBER_TYPE_COERCE", "Value is not int.");
            0
        }
    };
    refuse_unsimulated(errors, prefix, form);
    FollowUpForm {
        content,
        embeds,
        components,
        flags,
    }
}

/// A modal's components as the components reference describes them: labels (up to 45
/// characters) around text inputs, legacy action rows of text inputs, text displays.
fn check_modal_components(errors: &mut FieldErrors, list: &[Value]) {
    for (index, component) in list.iter().enumerate() {
        let index = index.to_string();
        let path = ["data", "components", index.as_str()];
        match component.get("type").and_then(Value::as_u64) {
            Some(18) => {
                if component
                    .get("label")
                    .and_then(Value::as_str)
                    .is_none_or(|l| l.is_empty() || l.chars().count() > LABEL_CHARS)
                {
                    errors.add(
                        &[&path[..], &["label"]].concat(),
                        "BASE_TYPE_BAD_LENGTH",
                        format!("Must be between 1 and {LABEL_CHARS} in length."),
                    );
                }
                let inner = component.get("component").unwrap_or(&Value::Null);
                check_text_input(errors, &[&path[..], &["component"]].concat(), inner);
            }
            Some(1) => {
                for (i, inner) in component
                    .get("components")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    let i = i.to_string();
                    check_text_input(
                        errors,
                        &[&path[..], &["components", i.as_str()]].concat(),
                        inner,
                    );
                }
            }
            Some(10) => {
                if component.get("content").and_then(Value::as_str).is_none() {
                    errors.required(&[&path[..], &["content"]].concat());
                }
            }
            _ => errors.add(
                &[&path[..], &["type"]].concat(),
                "UNION_TYPE_CHOICES",
                "Value of field \"type\" must be one of (1, 10, 18).",
            ),
        }
    }
}

/// A text input: `custom_id` of 1 to 100 characters, style 1 or 2, lengths within 4000.
fn check_text_input(errors: &mut FieldErrors, path: &[&str], input: &Value) {
    if input.get("type").and_then(Value::as_u64) != Some(4) {
        // Selects and uploads exist in modals too; the simulator submits text only.
        errors.add(
            &[path, &["type"]].concat(),
            "NOT_SIMULATED",
            "invitrack-sim simulates text inputs in modals",
        );
        return;
    }
    if input
        .get("custom_id")
        .and_then(Value::as_str)
        .is_none_or(|c| c.is_empty() || c.chars().count() > CUSTOM_ID_CHARS)
    {
        errors.add(
            &[path, &["custom_id"]].concat(),
            "BASE_TYPE_BAD_LENGTH",
            format!("Must be between 1 and {CUSTOM_ID_CHARS} in length."),
        );
    }
    if !matches!(input.get("style").and_then(Value::as_u64), Some(1 | 2)) {
        errors.add(
            &[path, &["style"]].concat(),
            "BASE_TYPE_CHOICES",
            "Value must be one of {1, 2}.",
        );
    }
    for field in ["min_length", "max_length"] {
        if let Some(n) = input.get(field).filter(|v| !v.is_null())
            && n.as_u64().is_none_or(|n| n > TEXT_INPUT_CHARS as u64)
        {
            errors.add(
                &[path, &[field]].concat(),
                "NUMBER_TYPE_MAX",
                format!("int value should be less than or equal to {TEXT_INPUT_CHARS}."),
            );
        }
    }
    if input
        .get("value")
        .and_then(Value::as_str)
        .is_some_and(|v| v.chars().count() > TEXT_INPUT_CHARS)
    {
        errors.too_long(&[path, &["value"]].concat(), TEXT_INPUT_CHARS);
    }
}

/// Checks an Edit Original Interaction Response body (an empty body edits nothing).
pub(crate) fn parse_edit(body: &[u8]) -> Result<EditForm, FormError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(EditForm::default());
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| FormError::InvalidJson)?;
    let mut errors = FieldErrors::default();
    let Value::Object(form) = value else {
        errors.not_object(&[]);
        return Err(FormError::InvalidForm(errors));
    };
    let (content, embeds) = message_fields(&mut errors, &[], &form);
    let out = EditForm {
        content: form.get("content").map(|_| content),
        embeds: form.get("embeds").map(|_| embeds),
        components: components(
            &mut errors,
            &["components"],
            form.get("components"),
            MESSAGE_COMPONENTS,
        ),
    };
    refuse_unsimulated(&mut errors, &[], &form);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(FormError::InvalidForm(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bytes(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).expect("ser")
    }

    #[test]
    fn callbacks() {
        let form = parse_callback(&bytes(&json!({
            "type": 4,
            "data": {"content": "hi", "flags": 64, "embeds": [{"title": " t "}]}
        })))
        .expect("valid");
        assert_eq!(form.kind, 4);
        assert_eq!(form.content.as_deref(), Some("hi"));
        assert_eq!(form.flags, 64);
        assert_eq!(form.embeds[0]["title"], "t");
        assert_eq!(form.components, json!([]));
        let deferred = parse_callback(&bytes(&json!({"type": 5}))).expect("valid");
        assert_eq!(deferred.content, None);

        let Err(FormError::InvalidForm(errors)) = parse_callback(&bytes(&json!({
            "type": 4, "data": {"content": "x".repeat(2001)}
        }))) else {
            panic!("too long accepted")
        };
        assert_eq!(
            errors.to_json()["data"]["content"]["_errors"][0]["code"],
            "BASE_TYPE_MAX_LENGTH"
        );
        let Err(FormError::InvalidForm(errors)) = parse_callback(&bytes(&json!({"type": 8})))
        else {
            panic!("type 8 accepted")
        };
        assert_eq!(
            errors.to_json()["type"]["_errors"][0]["code"],
            "BASE_TYPE_CHOICES"
        );
        let Err(FormError::InvalidForm(errors)) =
            parse_callback(&bytes(&json!({"type": 9, "data": {"title": "t"}})))
        else {
            panic!("modal without custom_id accepted")
        };
        let errors = errors.to_json();
        assert!(errors["data"]["custom_id"].is_object(), "{errors}");
        assert!(errors["data"]["components"].is_object(), "{errors}");
        assert!(matches!(
            parse_callback(b"nope"),
            Err(FormError::InvalidJson)
        ));
    }

    #[test]
    fn edits() {
        let edit = parse_edit(&bytes(&json!({"content": null, "embeds": []}))).expect("valid");
        assert_eq!(edit.content, Some(None));
        assert_eq!(edit.embeds, Some(Vec::new()));
        assert_eq!(edit.components, None);
        let edit = parse_edit(&bytes(&json!({"content": "new"}))).expect("valid");
        assert_eq!(edit.content, Some(Some("new".to_owned())));
        assert_eq!(edit.embeds, None);
        assert!(parse_edit(b"").expect("empty").content.is_none());
    }
}
