//! Walks the OpenAPI document: every authenticated operation answers 401 without a key and
//! 400 naming the parameter for each malformed id.

use invitrack_storage::keys::KeyScope;
use serde_json::{Value, json};

use crate::helpers::{BOT, GUILD, code_of, spawn_app};

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
                    || (status == "200" && responses.contains_key("201"));
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
    assert_eq!(operations, 14);
    assert_eq!(broken_ids, 34);
}
