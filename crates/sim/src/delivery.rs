//! Interactions delivered by HTTP, as Discord does for an application with an interactions
//! endpoint URL: each interaction is POSTed to the URL, signed with the application's Ed25519
//! key (`X-Signature-Ed25519` over `X-Signature-Timestamp` + body), and the HTTP response is
//! the interaction's initial response. Setting the URL first checks it as Discord does: a
//! signed PING must be answered with a PONG and a wrongly signed one refused with 401.
//! While a URL is set, interactions no longer go out on the gateway.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use twilight_model::id::{Id, marker::InteractionMarker};

use crate::World;
use crate::interaction_form;

/// How long the endpoint has to answer (the interaction's 3 s window).
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// An interaction to POST.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) url: String,
    pub(crate) interaction_id: Id<InteractionMarker>,
    pub(crate) token: String,
    pub(crate) body: Vec<u8>,
}

/// Signs and sends interactions for the world's application.
#[derive(Debug)]
pub(crate) struct Deliverer {
    world: World,
    key: SigningKey,
    client: reqwest::Client,
}

impl Deliverer {
    pub(crate) fn new(world: World, key: SigningKey) -> Self {
        Self {
            world,
            key,
            client: reqwest::Client::builder()
                .timeout(ANSWER_WITHIN)
                .build()
                .unwrap_or_default(),
        }
    }

    /// Starts delivering: the world sends on the returned channel.
    pub(crate) fn start(self: &Arc<Self>) -> UnboundedSender<Delivery> {
        let (sender, receiver) = unbounded_channel();
        tokio::spawn(Arc::clone(self).deliver_all(receiver));
        sender
    }

    async fn deliver_all(self: Arc<Self>, mut receiver: UnboundedReceiver<Delivery>) {
        while let Some(delivery) = receiver.recv().await {
            let this = Arc::clone(&self);
            tokio::spawn(async move { this.deliver(delivery).await });
        }
    }

    /// POSTs `body` to `url`, signed with the application's key (or, when `forge`, with
    /// another key, as Discord's check of the URL does).
    async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        forge: bool,
    ) -> Result<(u16, bytes::Bytes), String> {
        let timestamp = (self.world.now_ms() / 1_000).to_string();
        let mut signed = timestamp.clone().into_bytes();
        signed.extend_from_slice(&body);
        let key = if forge {
            SigningKey::from_bytes(&rand::random::<[u8; 32]>())
        } else {
            self.key.clone()
        };
        let signature = hex::encode(key.sign(&signed).to_bytes());
        let response = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                "Discord-Interactions/1.0 (+https://discord.com)",
            )
            .header("X-Signature-Ed25519", signature)
            .header("X-Signature-Timestamp", timestamp)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{url} did not answer: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("{url} answered no body: {e}"))?;
        Ok((status, body))
    }

    /// Checks `url` as Discord does before taking it as the interactions endpoint.
    ///
    /// # Errors
    /// What the URL got wrong, in words.
    pub(crate) async fn check_url(&self, url: &str) -> Result<(), String> {
        let ping = serde_json::to_vec(&json!({
            "id": self.world.next_snowflake().to_string(),
            "application_id": self.world.bot().application_id().to_string(),
            "type": 1,
            "token": "ping",
            "version": 1,
            "user": serde_json::to_value(self.world.bot().user()).unwrap_or(Value::Null),
        }))
        .unwrap_or_default();
        let (status, body) = self.post(url, ping.clone(), false).await?;
        let pong: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status != 200 || pong.get("type").and_then(Value::as_u64) != Some(1) {
            return Err(format!(
                "a signed PING got {status} {}, not 200 {{\"type\":1}}",
                String::from_utf8_lossy(&body)
            ));
        }
        let (status, _) = self.post(url, ping, true).await?;
        if status != 401 {
            return Err(format!(
                "a PING with a bad signature got {status}, not 401: the URL must verify signatures"
            ));
        }
        Ok(())
    }

    /// Sends one interaction and takes the HTTP response as its initial response.
    async fn deliver(&self, delivery: Delivery) {
        let id = delivery.interaction_id;
        let answered = match self.post(&delivery.url, delivery.body, false).await {
            Ok((200, body)) => interaction_form::parse_callback(&body)
                .map_err(|e| format!("the response is not an interaction response: {e}"))
                .and_then(|form| {
                    self.world
                        .lock()
                        .rest_interaction_callback(id, &delivery.token, form, false)
                        .map(drop)
                        .map_err(|e| e.to_string())
                }),
            Ok((status, body)) => Err(format!(
                "answered {status} {}",
                String::from_utf8_lossy(&body)
            )),
            Err(error) => Err(error),
        };
        // Discord shows the user "This interaction failed"; the interaction keeps no response.
        if let Err(error) = answered {
            tracing::warn!(interaction_id = %id, %error, "interaction delivery failed");
        }
    }
}
