//! Walks the OpenAPI document: every authenticated operation answers 401 without a key and
//! 400 naming the parameter for each malformed id.

use invitrack_storage::keys::KeyScope;
use serde_json::{Value, json};

use crate::helpers::{BOT, GUILD, OTHER_GUILD, code_of, spawn_app};

fn valid(name: &str) -> String {
    match name {
        "bot_id" => BOT.to_string(),
        "guild_id" => GUILD.to_string(),
        "reset_id" => "1".into(),
        "invite_code" => "abc".into(),
        _ => "123456789012345678".into(),
    }
}

fn build(path: &str, params: &[(String, String)], broken: Option<&str>) -> String {
    let mut url = path.to_owned();
    let mut query = Vec::new();
    for (name, location) in params {
        let value = if broken == Some(name.as_str()) {
            "abc".to_owned()
        } else {
            valid(name)
        };
        if location == "path" {
            url = url.replace(&format!("{{{name}}}"), &value);
        } else if location == "query"
            && (broken == Some(name.as_str()) || name.ends_with("_id") || name == "invite_code")
        {
            query.push(format!("{name}={value}"));
        }
    }
    if query.is_empty() {
        url
    } else {
        format!("{url}?{}", query.join("&"))
    }
}

#[tokio::test]
async fn every_documented_operation_checks_keys_and_ids() {
    let mut app = spawn_app().await;
    let admin = app.key(None, KeyScope::Admin).await;
    let (status, doc) = app.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    let mut operations = 0;
    let mut broken_ids = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let responses = op["responses"].as_object().expect("responses");
            let secured = op.get("security").is_some();
            if !secured {
                assert!(path.starts_with("/health/"), "{path} has no security");
                continue;
            }
            operations += 1;
            for status in ["200", "400", "401", "403", "429"] {
                let documented = responses.contains_key(status)
                    || (status == "200"
                        && (responses.contains_key("201") || responses.contains_key("204")));
                assert!(documented, "{method} {path} does not document {status}");
            }
            let params: Vec<(String, String)> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            (
                                p["name"].as_str().expect("name").to_owned(),
                                p["in"].as_str().expect("in").to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let method =
                reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let body = json!({});
            let (status, response) = app
                .send(method.clone(), &build(path, &params, None), None, &body)
                .await;
            assert_eq!(
                (status, code_of(&response)),
                (401, "unauthorized"),
                "{method} {path}"
            );
            for (name, _) in params.iter().filter(|(n, _)| n.ends_with("_id")) {
                broken_ids += 1;
                let url = build(path, &params, Some(name));
                let (status, response): (u16, Value) =
                    app.send(method.clone(), &url, Some(&admin), &body).await;
                assert_eq!(status, 400, "{method} {url}: {response}");
                let message = response["error"]["message"].as_str().expect("message");
                assert!(message.contains(name.as_str()), "{method} {url}: {message}");
            }
        }
    }
    assert_eq!(operations, 29);
    assert_eq!(broken_ids, 65);
}

/// One documented operation: method, path template, parameters `(name, in, schema)`.
struct Operation {
    method: reqwest::Method,
    path: String,
    params: Vec<(String, String, Value)>,
    responses: Value,
}

fn secured_operations(doc: &Value) -> Vec<Operation> {
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            if op.get("security").is_none() {
                continue;
            }
            let params = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            (
                                p["name"].as_str().expect("name").to_owned(),
                                p["in"].as_str().expect("in").to_owned(),
                                p["schema"].clone(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            operations.push(Operation {
                method: reqwest::Method::from_bytes(method.to_uppercase().as_bytes())
                    .expect("method"),
                path: path.clone(),
                params,
                responses: op["responses"].clone(),
            });
        }
    }
    operations
}

/// The operation's URL with valid values for the required parameters, `override_` for one.
fn url_of(op: &Operation, guild: u64, override_: Option<(&str, &str)>) -> String {
    let mut url = op.path.clone();
    let mut query = Vec::new();
    for (name, location, _) in &op.params {
        let value = match (override_, name.as_str()) {
            (Some((n, v)), _) if n == name => v.to_owned(),
            (_, "guild_id") => guild.to_string(),
            _ => valid(name),
        };
        if location == "path" {
            url = url.replace(&format!("{{{name}}}"), &value);
        } else if override_.is_some_and(|(n, _)| n == name)
            || name.ends_with("_id")
            || name == "invite_code"
        {
            query.push(format!("{name}={value}"));
        }
    }
    if query.is_empty() {
        url
    } else {
        format!("{url}?{}", query.join("&"))
    }
}

/// Values the parameter's schema rules out (besides the ids the other test breaks).
fn invalid_values(schema: &Value) -> Vec<String> {
    let mut values = Vec::new();
    if schema["type"] == "integer" {
        values.push("abc".to_owned());
        values.push("1.5".to_owned());
        if let Some(min) = schema["minimum"].as_i64() {
            values.push((min - 1).to_string());
        }
        if let Some(max) = schema["maximum"].as_i64() {
            values.push((max + 1).to_string());
        }
    } else if schema.get("pattern").is_some() {
        values.push("%21%21".to_owned());
        values.push(String::new());
    }
    values
}

#[tokio::test]
async fn every_documented_operation_checks_scope_and_every_parameter() {
    let mut app = spawn_app().await;
    let admin = app.key(None, KeyScope::Admin).await;
    let read = app.key(None, KeyScope::Read).await;
    let other_guild_admin = app.key(Some(OTHER_GUILD), KeyScope::Admin).await;
    let (other_bot_admin, _) = invitrack_storage::keys::create_key(
        &mut app.conn,
        invitrack_model::BotId::new(BOT + 1),
        None,
        KeyScope::Admin,
        "x",
    )
    .await
    .expect("key");
    let (_, doc) = app.get("/openapi.json", None).await;
    let body = json!({"author": "walker", "amount": 1});
    let mut needs_admin = Vec::new();
    let mut broken_params = 0;
    for op in secured_operations(&doc) {
        let url = url_of(&op, GUILD, None);
        let name = format!("{} {}", op.method, op.path);
        // 403 outside the key's bot and guild, for reads and writes alike (`/v1/me` is any
        // key's own description).
        let outside: &[&String] = if op.path == "/v1/me" {
            &[]
        } else {
            &[&other_bot_admin, &other_guild_admin]
        };
        for key in outside {
            let (status, response) = app.send(op.method.clone(), &url, Some(key), &body).await;
            assert_eq!((status, code_of(&response)), (403, "forbidden"), "{name}");
        }
        // A read key: writes (and the audit log) answer 403 insufficient_scope.
        let (status, response) = app.send(op.method.clone(), &url, Some(&read), &body).await;
        if status == 403 {
            assert_eq!(code_of(&response), "insufficient_scope", "{name}");
            needs_admin.push(name.clone());
        } else {
            assert!(status < 500, "{name}: {status} {response}");
        }
        assert!(op.responses.get("403").is_some(), "{name} documents 403");
        // 400 naming the parameter for each value its schema rules out.
        for (param, location, schema) in &op.params {
            if param.ends_with("_id") && location == "path" {
                continue; // the other test breaks ids
            }
            for value in invalid_values(schema) {
                broken_params += 1;
                let url = url_of(&op, GUILD, Some((param, &value)));
                let (status, response) =
                    app.send(op.method.clone(), &url, Some(&admin), &body).await;
                assert_eq!(status, 400, "{name} {url}: {response}");
                let message = response["error"]["message"].as_str().expect("message");
                assert!(message.contains(param.as_str()), "{url}: {message}");
            }
        }
    }
    needs_admin.sort();
    assert_eq!(
        needs_admin,
        [
            "DELETE /v1/bots/{bot_id}/guilds/{guild_id}/keys/{key_id}",
            "DELETE /v1/bots/{bot_id}/guilds/{guild_id}/webhooks/{webhook_id}",
            "GET /v1/bots/{bot_id}/guilds/{guild_id}/audit",
            "GET /v1/bots/{bot_id}/guilds/{guild_id}/keys",
            "GET /v1/bots/{bot_id}/guilds/{guild_id}/webhooks",
            "GET /v1/bots/{bot_id}/guilds/{guild_id}/webhooks/{webhook_id}/deliveries",
            "POST /v1/bots/{bot_id}/guilds/{guild_id}/import/bonus",
            "POST /v1/bots/{bot_id}/guilds/{guild_id}/import/joins",
            "POST /v1/bots/{bot_id}/guilds/{guild_id}/inviters/{inviter_id}/bonus",
            "POST /v1/bots/{bot_id}/guilds/{guild_id}/keys",
            "POST /v1/bots/{bot_id}/guilds/{guild_id}/resets",
            "POST /v1/bots/{bot_id}/guilds/{guild_id}/resets/{reset_id}/restore",
            "POST /v1/bots/{bot_id}/guilds/{guild_id}/webhooks",
            "PUT /v1/bots/{bot_id}/guilds/{guild_id}/settings",
        ]
    );
    // order, range, page, per_page, days, before, limit, the query ids and invite_code.
    assert!(broken_params >= 30, "{broken_params} broken parameters");
}
