//! What a user submits in a modal the bot showed: the modal's components turned into a
//! MODAL_SUBMIT's `data.components`, with Discord's checks on each text input (`required`,
//! `min_length`, `max_length`) applied to what the user typed.

use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Component types a modal holds.
const ACTION_ROW: u64 = 1;
const TEXT_INPUT: u64 = 4;
const TEXT_DISPLAY: u64 = 10;
const LABEL: u64 = 18;

/// The longest text input value (Discord: "max 4000").
const TEXT_INPUT_MAX_CHARS: usize = 4_000;

/// Numbers the components of a modal as Discord does when the bot gives no `id`: in order,
/// from 1, the ones given kept.
struct Ids(i64);

impl Ids {
    fn of(&mut self, component: &Value) -> i64 {
        self.0 += 1;
        component
            .get("id")
            .and_then(Value::as_i64)
            .unwrap_or(self.0)
    }
}

/// The `data.components` of the submit of `modal` (the modal's `components` as the bot sent
/// them) when the user typed `values`. Errors say what Discord's client would not let the user
/// submit, or a value for an input the modal does not have.
pub(super) fn submitted(modal: &Value, values: &BTreeMap<String, String>) -> Result<Value, String> {
    let mut ids = Ids(0);
    let mut used = 0;
    let mut out = Vec::new();
    for component in modal.as_array().map(Vec::as_slice).unwrap_or_default() {
        let id = ids.of(component);
        match component.get("type").and_then(Value::as_u64) {
            Some(LABEL) => {
                let inner = component.get("component").unwrap_or(&Value::Null);
                let inner_id = ids.of(inner);
                let input = text_input(inner, inner_id, values, &mut used)?;
                out.push(json!({"type": LABEL, "id": id, "component": input}));
            }
            Some(ACTION_ROW) => {
                let mut row = Vec::new();
                for inner in component
                    .get("components")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    let inner_id = ids.of(inner);
                    row.push(text_input(inner, inner_id, values, &mut used)?);
                }
                out.push(json!({"type": ACTION_ROW, "id": id, "components": row}));
            }
            Some(TEXT_DISPLAY) => out.push(json!({"type": TEXT_DISPLAY, "id": id})),
            other => {
                return Err(format!(
                    "the simulator cannot submit component type {other:?}"
                ));
            }
        }
    }
    if used != values.len() {
        return Err(format!(
            "values name inputs the modal does not have (its inputs: {})",
            input_ids(modal).join(", ")
        ));
    }
    Ok(Value::Array(out))
}

fn text_input(
    input: &Value,
    id: i64,
    values: &BTreeMap<String, String>,
    used: &mut usize,
) -> Result<Value, String> {
    if input.get("type").and_then(Value::as_u64) != Some(TEXT_INPUT) {
        return Err("the simulator submits text inputs only".into());
    }
    let custom_id = input.get("custom_id").and_then(Value::as_str).unwrap_or("");
    let value = match values.get(custom_id) {
        Some(typed) => {
            *used += 1;
            typed.clone()
        }
        None => input
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    };
    let chars = value.chars().count();
    let required = input
        .get("required")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let min = input.get("min_length").and_then(Value::as_u64).unwrap_or(0);
    let max = input
        .get("max_length")
        .and_then(Value::as_u64)
        .unwrap_or(TEXT_INPUT_MAX_CHARS as u64);
    if chars == 0 && required {
        return Err(format!("{custom_id:?} is required"));
    }
    // An optional input left empty is not held to its minimum.
    if chars > 0 && (chars as u64) < min {
        return Err(format!("{custom_id:?} needs at least {min} characters"));
    }
    if chars as u64 > max {
        return Err(format!("{custom_id:?} takes at most {max} characters"));
    }
    Ok(json!({"type": TEXT_INPUT, "id": id, "custom_id": custom_id, "value": value}))
}

/// The `custom_id`s of a modal's text inputs.
fn input_ids(modal: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for component in modal.as_array().map(Vec::as_slice).unwrap_or_default() {
        let inners: Vec<&Value> = match component.get("component") {
            Some(inner) => vec![inner],
            None => component
                .get("components")
                .and_then(Value::as_array)
                .map(|list| list.iter().collect())
                .unwrap_or_default(),
        };
        ids.extend(
            inners
                .into_iter()
                .filter_map(|i| i.get("custom_id").and_then(Value::as_str))
                .map(str::to_owned),
        );
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modal() -> Value {
        json!([
            {"type": 10, "content": "preview"},
            {"type": 18, "label": "Text", "component":
                {"type": 4, "custom_id": "text", "style": 2, "value": "old", "required": false, "max_length": 5}},
            {"type": 18, "label": "Title", "component":
                {"type": 4, "custom_id": "title", "style": 1, "min_length": 2}},
            {"type": 1, "components": [{"type": 4, "custom_id": "legacy", "style": 1, "required": false}]},
        ])
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_submit_carries_typed_and_prefilled_values_with_ids() {
        let submitted = submitted(&modal(), &values(&[("title", "Hi")])).expect("valid");
        assert_eq!(
            submitted,
            json!([
                {"type": 10, "id": 1},
                {"type": 18, "id": 2, "component": {"type": 4, "id": 3, "custom_id": "text", "value": "old"}},
                {"type": 18, "id": 4, "component": {"type": 4, "id": 5, "custom_id": "title", "value": "Hi"}},
                {"type": 1, "id": 6, "components": [{"type": 4, "id": 7, "custom_id": "legacy", "value": ""}]},
            ])
        );
    }

    #[test]
    fn what_the_client_would_refuse_is_refused() {
        let modal = modal();
        for (bad, why) in [
            (values(&[]), "required"),
            (values(&[("title", "H")]), "at least 2"),
            (values(&[("title", "Hi"), ("text", "toolong")]), "at most 5"),
            (
                values(&[("title", "Hi"), ("nope", "x")]),
                "text, title, legacy",
            ),
        ] {
            let error = submitted(&modal, &bad).expect_err(why);
            assert!(error.contains(why), "{error}");
        }
    }
}
