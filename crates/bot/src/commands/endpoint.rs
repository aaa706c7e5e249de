//! Discord's HTTP interactions endpoint, for deployments with a public URL
//! (`docs/commands.md#http-interactions-endpoint`): Discord POSTs each interaction, signed with
//! Ed25519, and takes the HTTP response as the interaction's first response. A request whose
//! signature does not verify gets 401 before its body is read as JSON, as Discord checks when
//! the URL is saved.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use ed25519_dalek::{Signature, VerifyingKey};
use tokio_util::sync::CancellationToken;
use twilight_model::application::interaction::Interaction;

use super::Commands;

/// Largest interaction body taken (Discord's are a few KiB).
const MAX_BODY: usize = 64 * 1024;

/// A public key that is not a Discord application's (`DISCORD_PUBLIC_KEY`).
#[derive(Debug, thiserror::Error)]
#[error("DISCORD_PUBLIC_KEY must be the application's public key: 64 hexadecimal digits")]
pub struct BadPublicKey;

/// Parses the application's public key, as the developer portal shows it (hex).
///
/// # Errors
/// When it is not 32 bytes of hex or not a point of the curve.
pub fn parse_public_key(hex_key: &str) -> Result<VerifyingKey, BadPublicKey> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .map_err(|_| BadPublicKey)?
        .try_into()
        .map_err(|_| BadPublicKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| BadPublicKey)
}

/// Whether `signature_hex` signs `timestamp` followed by `body` (Discord's scheme).
#[must_use]
pub fn verify(key: &VerifyingKey, signature_hex: &str, timestamp: &str, body: &[u8]) -> bool {
    let Some(signature) = hex::decode(signature_hex)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b))
    else {
        return false;
    };
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(body);
    key.verify_strict(&message, &signature).is_ok()
}

struct Endpoint {
    key: VerifyingKey,
    commands: Arc<Commands>,
    /// The bot's runtime: answers run there, with its Discord client and database pool, not on
    /// the HTTP server's worker threads.
    runtime: tokio::runtime::Handle,
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn interaction(
    request: HttpRequest,
    body: web::Bytes,
    endpoint: web::Data<Endpoint>,
) -> HttpResponse {
    let signed = match (
        header(&request, "X-Signature-Ed25519"),
        header(&request, "X-Signature-Timestamp"),
    ) {
        (Some(signature), Some(timestamp)) => verify(&endpoint.key, signature, timestamp, &body),
        _ => false,
    };
    if !signed {
        tracing::info!("interaction refused: bad signature");
        return HttpResponse::Unauthorized().body("invalid request signature");
    }
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(error) => {
            tracing::warn!(%error, "signed request is not JSON");
            return HttpResponse::BadRequest().body("not an interaction");
        }
    };
    // PING (type 1) is told by its type alone: answering it must not depend on every field the
    // interaction model wants.
    if value["type"] == 1 {
        return HttpResponse::Ok().json(serde_json::json!({"type": 1}));
    }
    let interaction: Interaction = match serde_json::from_value(value) {
        Ok(interaction) => interaction,
        Err(error) => {
            tracing::warn!(%error, "signed interaction not understood");
            return HttpResponse::BadRequest().body("not an interaction");
        }
    };
    let (first, response) = tokio::sync::oneshot::channel();
    let commands = Arc::clone(&endpoint.commands);
    // The task goes on after the HTTP answer when the answer was deferred: it edits @original.
    endpoint.runtime.spawn(async move {
        commands
            .respond(&interaction, Duration::ZERO, move |answer| async move {
                first
                    .send(answer)
                    .map_err(|_| "the HTTP request is gone".into())
            })
            .await;
    });
    match response.await {
        Ok(answer) => HttpResponse::Ok().json(answer),
        Err(_) => HttpResponse::InternalServerError().body("no answer"),
    }
}

/// Serves `POST /interactions` on `addr` until `stop`; returns the address bound.
///
/// # Errors
/// When `addr` cannot be bound.
pub(crate) fn serve(
    addr: SocketAddr,
    key: VerifyingKey,
    commands: Arc<Commands>,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let endpoint = web::Data::new(Endpoint {
        key,
        commands,
        runtime: tokio::runtime::Handle::current(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(endpoint.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .route("/interactions", web::post().to(interaction))
    })
    .listen(listener)?
    .workers(1)
    .disable_signals()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    tokio::spawn(async move {
        stop.cancelled().await;
        handle.stop(true).await;
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    #[test]
    fn only_the_applications_signature_over_timestamp_and_body_verifies() {
        let signing = SigningKey::from_bytes(&[7; 32]);
        let key = parse_public_key(&hex::encode(signing.verifying_key().to_bytes())).expect("key");
        let body = br#"{"type":1}"#;
        let signature = hex::encode(signing.sign(b"1700000000{\"type\":1}").to_bytes());
        assert!(verify(&key, &signature, "1700000000", body));
        assert!(!verify(&key, &signature, "1700000001", body));
        assert!(!verify(&key, &signature, "1700000000", br#"{"type":2}"#));
        assert!(!verify(&key, "zz", "1700000000", body));
        assert!(!verify(&key, &signature[..64], "1700000000", body));
        let other = SigningKey::from_bytes(&[8; 32]);
        let forged = hex::encode(other.sign(b"1700000000{\"type\":1}").to_bytes());
        assert!(!verify(&key, &forged, "1700000000", body));
        for bad in ["", "00", &"g".repeat(64), &"00".repeat(33)] {
            assert!(parse_public_key(bad).is_err(), "{bad}");
        }
    }
}
