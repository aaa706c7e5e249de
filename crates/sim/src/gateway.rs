//! The gateway: Discord Gateway v10 over a websocket on `/?v=10&encoding=json`.
//!
//! Per connection: HELLO, then IDENTIFY (READY + GUILD_CREATEs) or RESUME (replay + RESUMED),
//! heartbeats answered with HEARTBEAT_ACK, op 8 (Request Guild Members) decoded here and
//! answered by the world (`world/member_requests.rs`), dispatches pushed from the world through
//! the session's channel. Frames are compact JSON in `t, s, op, d` order (twilight finds those
//! keys by string search). Close codes follow Discord: 4001 unknown opcode, 4002 decode
//! error, 4003 not authenticated, 4004 authentication failed, 4005 already authenticated,
//! 4009 session timed out, 4010 invalid shard, 4012 invalid API version, 4013 invalid intents,
//! 4014 disallowed intents.

use crate::{
    sessions::{Link, Outbound},
    world::{IdentifyRequest, MemberRequest, MemberSelection, World},
};
use actix_web::{HttpRequest, HttpResponse, http::header, web};
use actix_ws::{CloseCode, CloseReason, Message};
use serde::Deserialize;
use std::time::Duration;
use tokio::{
    sync::mpsc::channel,
    time::{Instant, sleep_until},
};
use tokio_util::sync::CancellationToken;
use twilight_model::{
    gateway::{event::GatewayEvent, payload::incoming::Hello},
    id::{
        Id,
        marker::{GuildMarker, UserMarker},
    },
};

/// Heartbeat interval announced in HELLO, in milliseconds.
pub const HEARTBEAT_INTERVAL_MS: u64 = 41_250;

/// Query of the websocket URL.
#[derive(Debug, Deserialize)]
pub struct GatewayQuery {
    v: Option<u8>,
    encoding: Option<String>,
    compress: Option<String>,
}

/// `GET /`: the websocket upgrade (or a small description for a plain HTTP client).
pub async fn handle(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<GatewayQuery>,
    world: web::Data<World>,
) -> actix_web::Result<HttpResponse> {
    if !req.headers().contains_key(header::UPGRADE) {
        return Ok(HttpResponse::Ok().json(serde_json::json!({
            "name": "invitrack-sim",
            "gateway": "GET / with a websocket upgrade, ?v=10&encoding=json",
            "rest": "/api/v10",
            "control": "/control",
        })));
    }
    let refusal = match (&query.v, query.encoding.as_deref(), &query.compress) {
        (Some(10), Some("json") | None, None) => None,
        (Some(10), Some("json") | None, Some(_)) => Some((4000, "Compression is not simulated.")),
        (Some(10), Some(_), _) => Some((4002, "Only encoding=json is simulated.")),
        _ => Some((4012, "Invalid API version.")),
    };
    let resume_url = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(
            || world.bot().gateway_url.clone(),
            |host| format!("ws://{host}"),
        );
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let world = world.get_ref().clone();
    actix_web::rt::spawn(async move {
        Connection::new(world, session, resume_url)
            .run(stream, refusal)
            .await;
    });
    Ok(response)
}

/// An op the client sent.
#[derive(Debug, Deserialize)]
struct Incoming {
    op: u8,
    #[serde(default)]
    d: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct Identify {
    token: String,
    intents: Option<u64>,
    shard: Option<[u32; 2]>,
    large_threshold: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Resume {
    token: String,
    session_id: String,
    seq: Option<u64>,
}

/// op 8's `d`, as "Request Guild Members Structure" documents it.
#[derive(Debug, Deserialize)]
struct RequestMembers {
    guild_id: Id<GuildMarker>,
    query: Option<String>,
    limit: Option<u64>,
    /// Presences are not simulated: checked to be a boolean, then ignored (no chunk carries
    /// `presences`).
    #[serde(default, rename = "presences")]
    _presences: Option<bool>,
    user_ids: Option<UserIds>,
    /// Any JSON: an invalid nonce is ignored, not a decode error (the world keeps only a
    /// string of at most 32 bytes).
    nonce: Option<serde_json::Value>,
}

/// `user_ids`: "snowflake or array of snowflakes".
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum UserIds {
    One(Id<UserMarker>),
    Many(Vec<Id<UserMarker>>),
}

impl RequestMembers {
    /// The request, if it has exactly one of `query` and `user_ids` and a `limit` with its
    /// `query` (the documented "one of query or user_ids" and "true when specifying query");
    /// `limit` alongside `user_ids` is ignored.
    fn into_request(self) -> Option<MemberRequest> {
        let selection = match (self.query, self.user_ids) {
            (Some(query), None) => MemberSelection::Query {
                query,
                limit: self.limit?,
            },
            (None, Some(UserIds::One(id))) => MemberSelection::UserIds(vec![id]),
            (None, Some(UserIds::Many(ids))) => MemberSelection::UserIds(ids),
            _ => return None,
        };
        Some(MemberRequest {
            guild_id: self.guild_id,
            selection,
            nonce: self.nonce,
        })
    }
}

/// Why the server ends a connection.
type CloseWith = (u16, &'static str);

struct Connection {
    world: World,
    ws: actix_ws::Session,
    conn_id: u64,
    resume_url: String,
    /// Session id once identified or resumed.
    session_id: Option<String>,
    /// Handed to the world on IDENTIFY/RESUME; kept until then so `recv` does not end.
    link: Option<Link>,
    /// Cancelled by the world to cut this connection (slow consumer, dropped shard).
    kill: CancellationToken,
    heartbeat_deadline: Instant,
}

fn encode(event: &GatewayEvent) -> String {
    // twilight-model's own serializer writes `t, s, op, d` in order.
    serde_json::to_string(event).unwrap_or_default()
}

fn heartbeat_timeout() -> Duration {
    Duration::from_millis(HEARTBEAT_INTERVAL_MS + HEARTBEAT_INTERVAL_MS / 2)
}

impl Connection {
    fn new(world: World, ws: actix_ws::Session, resume_url: String) -> Self {
        let conn_id = world.lock().next_conn_id();
        Self {
            world,
            ws,
            conn_id,
            resume_url,
            session_id: None,
            link: None,
            kill: CancellationToken::new(),
            heartbeat_deadline: Instant::now() + heartbeat_timeout(),
        }
    }

    async fn run(mut self, mut stream: actix_ws::MessageStream, refusal: Option<CloseWith>) {
        if let Some(close) = refusal {
            self.close(close).await;
            return;
        }
        let (tx, mut rx) = channel(self.world.gateway_queue());
        self.link = Some(Link {
            tx,
            kill: self.kill.clone(),
        });
        let kill = self.kill.clone();
        let hello = encode(&GatewayEvent::Hello(Hello {
            heartbeat_interval: HEARTBEAT_INTERVAL_MS,
        }));
        if self.ws.text(hello).await.is_err() {
            return;
        }
        let close: Option<CloseWith> = loop {
            tokio::select! {
                msg = stream.recv() => match msg {
                    Some(Ok(Message::Text(text))) => match self.on_text(&text).await {
                        Ok(()) => {}
                        Err(close) => break Some(close),
                    },
                    Some(Ok(Message::Ping(bytes))) => {
                        if self.ws.pong(&bytes).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(Message::Close(reason))) => {
                        tracing::debug!(conn_id = self.conn_id, ?reason, "client closed the gateway connection");
                        let _ = self.ws.clone().close(reason).await;
                        break None;
                    }
                    Some(Ok(Message::Binary(_))) => break Some((4002, "Decode error.")),
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        tracing::debug!(conn_id = self.conn_id, %error, "gateway protocol error");
                        break None;
                    }
                    None => break None,
                },
                out = rx.recv() => match out {
                    Some(Outbound::Frame(frame)) => {
                        if self.ws.text(frame.encode()).await.is_err() {
                            break None;
                        }
                    }
                    Some(Outbound::InvalidSession(resumable)) => {
                        if self.ws.text(encode(&GatewayEvent::InvalidateSession(resumable))).await.is_err() {
                            break None;
                        }
                    }
                    Some(Outbound::Reconnect) => {
                        if self.ws.text(encode(&GatewayEvent::Reconnect)).await.is_err() {
                            break None;
                        }
                    }
                    // The world dropped the session (shutdown): going away.
                    None => break Some((1001, "Going away.")),
                },
                () = sleep_until(self.heartbeat_deadline) => break Some((4009, "Session timed out.")),
                () = kill.cancelled() => break Some((4000, "Unknown error.")),
            }
        };
        if let Some(close) = close {
            self.close(close).await;
        }
        if let Some(session_id) = &self.session_id {
            self.world.lock().detach(session_id, self.conn_id);
        }
    }

    async fn close(&self, (code, reason): CloseWith) {
        tracing::debug!(
            conn_id = self.conn_id,
            code,
            reason,
            "closing gateway connection"
        );
        let reason = CloseReason {
            code: CloseCode::from(code),
            description: Some(reason.to_owned()),
        };
        let _ = self.ws.clone().close(Some(reason)).await;
    }

    async fn send(&mut self, event: &GatewayEvent) -> Result<(), CloseWith> {
        self.ws
            .text(encode(event))
            .await
            .map_err(|_| (1006, "closed"))
    }

    async fn on_text(&mut self, text: &str) -> Result<(), CloseWith> {
        let incoming: Incoming =
            serde_json::from_str(text).map_err(|_| (4002, "Error while decoding payload."))?;
        match incoming.op {
            1 => {
                self.heartbeat_deadline = Instant::now() + heartbeat_timeout();
                self.send(&GatewayEvent::HeartbeatAck).await
            }
            2 => self.on_identify(incoming.d),
            6 => self.on_resume(incoming.d).await,
            3 | 4 | 8 if self.session_id.is_none() => Err((4003, "Not authenticated.")),
            8 => self.on_request_members(incoming.d),
            // Presence update, voice state update: accepted, ignored.
            3 | 4 => Ok(()),
            _ => Err((4001, "Unknown opcode.")),
        }
    }

    /// op 8: a `d` that does not decode, or lacks what Discord documents as required, closes
    /// 4002 as any payload that does not decode; the world answers the rest (chunks,
    /// RATE_LIMITED or nothing) on this session.
    fn on_request_members(&self, d: serde_json::Value) -> Result<(), CloseWith> {
        let decode_error = (4002, "Error while decoding payload.");
        let request = serde_json::from_value::<RequestMembers>(d)
            .ok()
            .and_then(RequestMembers::into_request)
            .ok_or(decode_error)?;
        let session_id = self
            .session_id
            .as_deref()
            .ok_or((4003, "Not authenticated."))?;
        let outcome = self
            .world
            .lock()
            .request_guild_members(session_id, &request);
        tracing::debug!(
            conn_id = self.conn_id,
            guild_id = %request.guild_id,
            ?outcome,
            "request guild members"
        );
        Ok(())
    }

    fn on_identify(&mut self, d: serde_json::Value) -> Result<(), CloseWith> {
        if self.session_id.is_some() {
            return Err((4005, "Already authenticated."));
        }
        let identify: Identify =
            serde_json::from_value(d).map_err(|_| (4002, "Error while decoding payload."))?;
        let mut world = self.world.lock();
        if !world.bot().token_ok(&identify.token) {
            tracing::info!(conn_id = self.conn_id, "IDENTIFY with a bad token");
            return Err((4004, "Authentication failed."));
        }
        let shard = identify.shard.unwrap_or([0, 1]);
        if shard[1] == 0 || shard[0] >= shard[1] {
            return Err((4010, "Invalid shard."));
        }
        let intents = identify.intents.ok_or((4013, "Invalid intent(s)."))?;
        if intents >= 1 << 26 {
            return Err((4013, "Invalid intent(s)."));
        }
        if intents & crate::sessions::intents::PRIVILEGED & !self.world.privileged_intents() != 0 {
            tracing::info!(
                conn_id = self.conn_id,
                intents,
                "IDENTIFY with a disallowed intent"
            );
            return Err((4014, "Disallowed intent(s)."));
        }
        let link = self.link.take().ok_or((4005, "Already authenticated."))?;
        let request = IdentifyRequest {
            shard,
            intents,
            large_threshold: identify.large_threshold.unwrap_or(50).clamp(50, 250),
        };
        let session_id = world.identify(request, &self.resume_url, self.conn_id, link);
        self.session_id = Some(session_id);
        Ok(())
    }

    async fn on_resume(&mut self, d: serde_json::Value) -> Result<(), CloseWith> {
        if self.session_id.is_some() {
            return Err((4005, "Already authenticated."));
        }
        let resume: Resume =
            serde_json::from_value(d).map_err(|_| (4002, "Error while decoding payload."))?;
        let refused = {
            let mut world = self.world.lock();
            if !world.bot().token_ok(&resume.token) {
                return Err((4004, "Authentication failed."));
            }
            let Some(link) = self.link.clone() else {
                return Err((4005, "Already authenticated."));
            };
            world
                .resume(
                    &resume.session_id,
                    resume.seq.unwrap_or(0),
                    self.conn_id,
                    link,
                )
                .err()
        };
        match refused {
            None => {
                // The world holds the sender now; dropping ours lets shutdown end the task.
                self.link = None;
                self.session_id = Some(resume.session_id);
                Ok(())
            }
            Some(why) => {
                tracing::info!(conn_id = self.conn_id, ?why, "RESUME refused");
                self.world.lock().forget_session(&resume.session_id);
                self.send(&GatewayEvent::InvalidateSession(false)).await
            }
        }
    }
}
