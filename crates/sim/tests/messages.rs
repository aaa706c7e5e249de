//! `POST /channels/{id}/messages` against the real twilight-http (raw reqwest where twilight
//! checks the body itself or cannot send a field): `enforce_nonce`, channel permissions, the
//! form limits and the per-channel bucket.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Control, TOKEN, all_intents, api_code, http, id, next_dispatch, ready, shard, start};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use twilight_gateway::Event;
use twilight_model::{
    channel::message::{AllowedMentions, Embed},
    id::Id,
};

/// A raw POST to the channel's messages, as a client twilight would not let through.
async fn raw_post(addr: std::net::SocketAddr, channel: u64, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://{addr}/api/v10/channels/{channel}/messages"))
        .header("Authorization", format!("Bot {TOKEN}"))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Status and JSON body of a raw POST.
async fn answer_to(addr: std::net::SocketAddr, channel: u64, body: &Value) -> (u16, Value) {
    let res = raw_post(addr, channel, body).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

fn titled(title: &str) -> Embed {
    Embed {
        author: None,
        color: None,
        description: None,
        fields: Vec::new(),
        flags: None,
        footer: None,
        image: None,
        kind: "rich".to_owned(),
        provider: None,
        thumbnail: None,
        timestamp: None,
        title: Some(title.to_owned()),
        url: None,
        video: None,
    }
}

async fn set_message_limit(control: &Control, limit: u16, window_ms: u64) {
    let body = json!({"limit": limit, "window_ms": window_ms});
    let (status, answer) = control
        .send(
            reqwest::Method::PUT,
            "/ratelimits/create_message",
            Some(body),
        )
        .await;
    assert_eq!(status, 204, "{answer}");
}

async fn messages(control: &Control, path: &str) -> Vec<Value> {
    let (status, list) = control.send(reqwest::Method::GET, path, None).await;
    assert_eq!(status, 200, "{path}: {list}");
    list.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_nonce_answers_the_message_already_created() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (_, channel) = control.guild(json!({"name": "g"})).await;
    // The bucket is not what this test is about.
    set_message_limit(&control, 50, 1000).await;
    let client = http(&sim);
    let no_pings = AllowedMentions::default();

    // twilight's own nonce (an integer) without enforce_nonce: two messages.
    for _ in 0..2 {
        client
            .create_message(Id::new(channel))
            .content("joined")
            .nonce(41)
            .allowed_mentions(Some(&no_pings))
            .await
            .unwrap();
    }
    let path = format!("/channels/{channel}/messages?nonce=41");
    assert_eq!(messages(&control, &path).await.len(), 2);

    // twilight 0.18 has no enforce_nonce: it goes in through payload_json.
    let payload = serde_json::to_vec(&json!({
        "content": "joined",
        "nonce": "decision-42",
        "enforce_nonce": true,
        "allowed_mentions": {"parse": []},
    }))
    .unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let message = client
            .create_message(Id::new(channel))
            .payload_json(&payload)
            .await
            .unwrap()
            .model()
            .await
            .unwrap();
        ids.push(message.id);
    }
    assert!(ids.iter().all(|m| *m == ids[0]), "{ids:?}");
    let kept = messages(
        &control,
        &format!("/channels/{channel}/messages?nonce=decision-42"),
    )
    .await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["id"].as_str().unwrap(), ids[0].to_string());
    assert_eq!(kept[0]["nonce"], "decision-42");
    assert_eq!(kept[0]["allowed_mentions"], json!({"parse": []}));
    assert!(kept[0]["created_at"].is_string());
    // The answer carries the nonce as sent.
    let raw: Value = raw_post(
        sim.addr(),
        channel,
        &json!({"content": "joined", "nonce": "decision-42", "enforce_nonce": true}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(raw["nonce"], "decision-42");
    assert_eq!(raw["id"].as_str().unwrap(), ids[0].to_string());

    // Once the window is over, the same nonce makes a new message.
    let (status, _) = control
        .post(
            "/clock",
            json!({"advance_secs": invitrack_sim::NONCE_WINDOW.as_secs()}),
        )
        .await;
    assert_eq!(status, 204);
    let later = client
        .create_message(Id::new(channel))
        .payload_json(&payload)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_ne!(later.id, ids[0]);
    assert_eq!(messages(&control, "/messages").await.len(), 4);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_the_bot_cannot_post_in_answers_403() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, _) = control.guild(json!({"name": "g"})).await;
    let mut shard = shard(&sim, all_intents());
    ready(&mut shard).await;
    let (status, created) = control
        .post(
            &format!("/guilds/{guild}/channels"),
            json!({"name": "logs", "deny": ["SEND_MESSAGES"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let logs = id(&created["channel_id"]);
    // twilight reads the channel and its overwrite.
    let Event::ChannelCreate(channel) = next_dispatch(&mut shard).await else {
        panic!("CHANNEL_CREATE")
    };
    assert_eq!(channel.id.get(), logs);
    let overwrites = channel.permission_overwrites.clone().unwrap();
    assert_eq!(overwrites[0].deny.bits(), 1 << 11);

    let client = http(&sim);
    let post = |content: &'static str| client.create_message(Id::new(logs)).content(content);
    assert_eq!(api_code(&post("hi").await.unwrap_err()), (403, 50013));

    let permissions = format!("/channels/{logs}/permissions");
    let (status, answer) = control
        .send(
            reqwest::Method::PUT,
            &permissions,
            Some(json!({"deny": ["VIEW_CHANNEL"]})),
        )
        .await;
    assert_eq!(status, 204, "{answer}");
    assert!(matches!(
        next_dispatch(&mut shard).await,
        Event::ChannelUpdate(_)
    ));
    assert_eq!(api_code(&post("hi").await.unwrap_err()), (403, 50001));

    // Without EMBED_LINKS the embed is dropped: content alone is posted, an embed alone is
    // an empty message.
    control
        .send(
            reqwest::Method::PUT,
            &permissions,
            Some(json!({"deny": ["EMBED_LINKS"]})),
        )
        .await;
    let embed = titled("joined");
    let message = client
        .create_message(Id::new(logs))
        .content("hi")
        .embeds(std::slice::from_ref(&embed))
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(message.embeds.is_empty());
    let error = client
        .create_message(Id::new(logs))
        .embeds(std::slice::from_ref(&embed))
        .await
        .unwrap_err();
    assert_eq!(api_code(&error), (400, 50006));

    control
        .send(
            reqwest::Method::PUT,
            &permissions,
            Some(json!({"deny": []})),
        )
        .await;
    let message = client
        .create_message(Id::new(logs))
        .embeds(std::slice::from_ref(&embed))
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(message.embeds[0].title.as_deref(), Some("joined"));
    assert_eq!(
        messages(&control, &format!("/channels/{logs}/messages"))
            .await
            .len(),
        2
    );

    let error = client
        .create_message(Id::new(1234))
        .content("hi")
        .await
        .unwrap_err();
    assert_eq!(api_code(&error), (404, 10003));
    let (status, answer) = control
        .send(
            reqwest::Method::PUT,
            &permissions,
            Some(json!({"deny": ["SEND_MESSAGE"]})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_400_with_the_errors_object() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (_, channel) = control.guild(json!({"name": "g"})).await;
    // The bucket is not what this test is about.
    set_message_limit(&control, 50, 1000).await;
    let addr = sim.addr();

    let (status, answer) = answer_to(addr, channel, &json!({"content": "x".repeat(2001)})).await;
    assert_eq!(status, 400);
    assert_eq!(answer["code"], 50035);
    assert_eq!(answer["message"], "Invalid Form Body");
    assert_eq!(
        answer["errors"]["content"]["_errors"][0],
        json!({"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."})
    );
    let (_, answer) = answer_to(
        addr,
        channel,
        &json!({"content": "x", "nonce": "n".repeat(26)}),
    )
    .await;
    assert_eq!(
        answer["errors"]["nonce"]["_errors"][0]["code"],
        "BASE_TYPE_MAX_LENGTH"
    );
    let (_, answer) = answer_to(
        addr,
        channel,
        &json!({"embeds": vec![json!({"title": "t"}); 11]}),
    )
    .await;
    assert_eq!(
        answer["errors"]["embeds"]["_errors"][0]["message"],
        "Must be 10 or fewer in length."
    );
    let (_, answer) = answer_to(
        addr,
        channel,
        &json!({"embeds": [{"title": "t".repeat(257)}]}),
    )
    .await;
    assert_eq!(
        answer["errors"]["embeds"]["0"]["title"]["_errors"][0]["code"],
        "BASE_TYPE_MAX_LENGTH"
    );
    let (_, answer) = answer_to(
        addr,
        channel,
        &json!({"embeds": [{"description": "d".repeat(4097)}]}),
    )
    .await;
    assert!(
        answer["errors"]["embeds"]["0"]["description"].is_object(),
        "{answer}"
    );
    let (_, answer) = answer_to(
        addr,
        channel,
        &json!({"embeds": [{"footer": {"text": "f".repeat(2049)}}]}),
    )
    .await;
    assert!(
        answer["errors"]["embeds"]["0"]["footer"]["text"].is_object(),
        "{answer}"
    );
    let (_, answer) = answer_to(
        addr,
        channel,
        &json!({"embeds": [{"fields": [{"name": "n", "value": "v".repeat(1025)}]}]}),
    )
    .await;
    assert!(
        answer["errors"]["embeds"]["0"]["fields"]["0"]["value"].is_object(),
        "{answer}"
    );
    let six_thousand_and_one = json!({"embeds": [
        {"description": "d".repeat(4000)},
        {"description": "d".repeat(2000), "title": "t"},
    ]});
    let (status, answer) = answer_to(addr, channel, &six_thousand_and_one).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["errors"]["embeds"]["_errors"][0]["code"],
        "MAX_EMBED_SIZE_EXCEEDED"
    );

    let (status, answer) = answer_to(addr, channel, &json!({"content": ""})).await;
    assert_eq!((status, answer["code"].as_u64()), (400, Some(50006)));
    assert_eq!(answer["message"], "Cannot send an empty message");
    let res = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v10/channels/{channel}/messages",
            sim.addr()
        ))
        .header("Authorization", format!("Bot {TOKEN}"))
        .body("{\"content\":")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], 50109);

    // twilight refuses such bodies itself; sent anyway, it reads the error.
    let payload = serde_json::to_vec(&json!({"content": "x".repeat(2001)})).unwrap();
    let error = http(&sim)
        .create_message(Id::new(channel))
        .payload_json(&payload)
        .await
        .unwrap_err();
    assert_eq!(api_code(&error), (400, 50035));
    assert!(sim.world().messages().is_empty());
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_message_bucket_is_per_channel() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (guild, first) = control.guild(json!({"name": "g"})).await;
    let (_, created) = control
        .post(
            &format!("/guilds/{guild}/channels"),
            json!({"name": "second"}),
        )
        .await;
    let second = id(&created["channel_id"]);
    let body = json!({"content": "hi"});
    for n in 0..5 {
        let res = raw_post(sim.addr(), first, &body).await;
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(res.headers()["x-ratelimit-limit"], "5");
        assert_eq!(
            res.headers()["x-ratelimit-remaining"],
            (4 - n).to_string().as_str()
        );
    }
    let limited = raw_post(sim.addr(), first, &body).await;
    assert_eq!(limited.status().as_u16(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    let bucket = limited.headers()["x-ratelimit-bucket"].clone();
    let reset: f64 = limited.headers()["x-ratelimit-reset-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > 4.0 && reset <= 5.0, "{reset}");
    let answer: Value = limited.json().await.unwrap();
    assert_eq!(answer["global"], false);
    // Another channel: its own bucket (same bucket hash, as on Discord).
    let other = raw_post(sim.addr(), second, &body).await;
    assert_eq!(other.status().as_u16(), 200);
    assert_eq!(other.headers()["x-ratelimit-bucket"], bucket);
    assert_eq!(other.headers()["x-ratelimit-remaining"], "4");

    // twilight reads the headers and waits for the reset rather than running into 429s.
    set_message_limit(&control, 2, 500).await;
    let client = http(&sim);
    let started = Instant::now();
    for n in 0..5 {
        client
            .create_message(Id::new(second))
            .content(&format!("joined {n}"))
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let (_, stats) = control.send(reqwest::Method::GET, "/stats", None).await;
    assert_eq!(
        stats["rest"]["routes"]["create_message"]["rate_limited"], 1,
        "{stats}"
    );
    assert_eq!(
        sim.world().channel_messages(Id::new(second)).unwrap().len(),
        6
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilight_reads_a_429_of_the_channel_bucket() {
    let sim = start(1).await;
    let control = Control::new(&sim);
    let (_, channel) = control.guild(json!({"name": "g"})).await;
    set_message_limit(&control, 1, 400).await;
    // Another process with the same token used the bucket: twilight meets the 429, waits
    // and gets through.
    assert_eq!(
        raw_post(sim.addr(), channel, &json!({"content": "a"}))
            .await
            .status()
            .as_u16(),
        200
    );
    let started = Instant::now();
    http(&sim)
        .create_message(Id::new(channel))
        .content("b")
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let (_, stats) = control.send(reqwest::Method::GET, "/stats", None).await;
    assert_eq!(
        stats["rest"]["routes"]["create_message"]["rate_limited"], 1,
        "{stats}"
    );
    sim.stop().await;
}
