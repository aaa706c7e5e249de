//! Helpers shared by the end-to-end tests: a simulator on port 0, real twilight clients, and
//! a small client for the control API.
#![allow(dead_code, clippy::unwrap_used)]

use invitrack_sim::{RunningSim, SimConfig, Simulator};
use serde_json::{Value, json};
use std::time::Duration;
use twilight_gateway::{
    ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _,
    queue::InMemoryQueue,
};

pub const TOKEN: &str = "test-token";

pub async fn start(shards: u32) -> RunningSim {
    start_with(SimConfig {
        shards,
        ..SimConfig::default()
    })
    .await
}

/// A simulator with this configuration, on port 0 and with [`TOKEN`].
pub async fn start_with(config: SimConfig) -> RunningSim {
    // twilight's rustls connector is built even for ws://, and needs a process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Simulator::start(SimConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        bot_token: TOKEN.into(),
        ..config
    })
    .await
    .expect("simulator starts")
}

pub fn shard_with(
    sim: &RunningSim,
    token: &str,
    intents: Intents,
    id: ShardId,
) -> Shard<InMemoryQueue> {
    let config = ConfigBuilder::new(token.to_owned(), intents)
        .proxy_url(sim.gateway_url())
        .queue(InMemoryQueue::new(0, 0, Duration::ZERO, 0))
        .build();
    Shard::with_config(id, config)
}

pub fn shard(sim: &RunningSim, intents: Intents) -> Shard<InMemoryQueue> {
    shard_with(sim, TOKEN, intents, ShardId::ONE)
}

pub fn all_intents() -> Intents {
    Intents::GUILDS | Intents::GUILD_MEMBERS | Intents::GUILD_INVITES
}

pub fn http(sim: &RunningSim) -> twilight_http::Client {
    twilight_http::Client::builder()
        .token(TOKEN.to_owned())
        .proxy(sim.api_proxy(), true)
        .build()
}

/// Next event twilight parses, failing on deserialization errors and after 10 s.
pub async fn next(shard: &mut Shard<InMemoryQueue>) -> Event {
    match tokio::time::timeout(
        Duration::from_secs(10),
        shard.next_event(EventTypeFlags::all()),
    )
    .await
    {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(error))) => panic!("twilight could not read an event: {error:?}"),
        Ok(None) => panic!("shard stream ended"),
        Err(_) => panic!("no event within 10 s"),
    }
}

/// Next dispatch, skipping gateway housekeeping (HELLO, heartbeat ACK).
pub async fn next_dispatch(shard: &mut Shard<InMemoryQueue>) -> Event {
    loop {
        match next(shard).await {
            Event::GatewayHello(_) | Event::GatewayHeartbeatAck | Event::GatewayHeartbeat => {}
            event => return event,
        }
    }
}

/// Waits for READY and the GUILD_CREATEs that follow it; returns READY's guild count.
pub async fn ready(shard: &mut Shard<InMemoryQueue>) -> usize {
    let Event::Ready(ready) = next_dispatch(shard).await else {
        panic!("expected READY")
    };
    for _ in 0..ready.guilds.len() {
        let event = next_dispatch(shard).await;
        assert!(
            matches!(event, Event::GuildCreate(_)),
            "expected GUILD_CREATE, got {event:?}"
        );
    }
    ready.guilds.len()
}

pub struct Control {
    pub base: String,
    pub client: reqwest::Client,
}

impl Control {
    pub fn new(sim: &RunningSim) -> Self {
        Self {
            base: sim.control_url(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("control request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON body")
        };
        (status, value)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn guild(&self, body: Value) -> (u64, u64) {
        let (status, v) = self.post("/guilds", body).await;
        assert_eq!(status, 201, "{v}");
        (id(&v["guild_id"]), id(&v["channel_id"]))
    }

    pub async fn invite(&self, guild: u64, body: Value) -> String {
        let (status, v) = self.post(&format!("/guilds/{guild}/invites"), body).await;
        assert_eq!(status, 201, "{v}");
        v["code"].as_str().unwrap().to_owned()
    }

    pub async fn join(&self, guild: u64, body: Value) -> Value {
        let (status, v) = self.post(&format!("/guilds/{guild}/joins"), body).await;
        assert_eq!(status, 201, "{v}");
        v
    }

    pub async fn leave(&self, guild: u64, user: &Value) {
        let (status, v) = self
            .post(
                &format!("/guilds/{guild}/leaves"),
                json!({ "user_id": user }),
            )
            .await;
        assert_eq!(status, 204, "{v}");
    }
}

/// Status and JSON error code of a Discord error answer twilight got.
pub fn api_code(error: &twilight_http::Error) -> (u16, u64) {
    match error.kind() {
        twilight_http::error::ErrorType::Response {
            error: twilight_http::api_error::ApiError::General(e),
            status,
            ..
        } => (status.get(), e.code),
        other => panic!("expected a Discord error response, got {other:?}"),
    }
}

/// A string id in a control answer.
pub fn id(v: &Value) -> u64 {
    v.as_str()
        .expect("ids are strings")
        .parse()
        .expect("numeric id")
}
