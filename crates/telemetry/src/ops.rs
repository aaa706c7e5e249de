//! The operations endpoint every service serves beside its work: `GET /metrics` (Prometheus'
//! text format, from a `prometheus::Registry`), `GET /health/live` (the process answers) and
//! `GET /health/ready` (the service's own readiness check: connected to what it needs). The
//! names of every metric are in `docs/metrics.md`.
//!
//! Served by actix-web, the framework the API already runs, on one worker thread.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use prometheus::{Encoder as _, Registry, TextEncoder};
use tokio_util::sync::CancellationToken;

/// Why a service is not ready, in words an operator can act on.
pub type NotReady = String;

/// A service's readiness check: `Ok` when it can do its work now.
pub type Readiness =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), NotReady>> + Send>> + Send + Sync>;

/// A bound operations endpoint, not yet serving.
#[derive(Debug)]
pub struct OpsEndpoint {
    listener: TcpListener,
}

impl OpsEndpoint {
    /// # Errors
    /// When `addr` cannot be bound.
    pub fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Self { listener })
    }

    /// # Errors
    /// When the socket has no address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `/metrics` from `registry` and the health routes until `shutdown` fires.
    ///
    /// # Errors
    /// When the server cannot start.
    pub async fn serve(
        self,
        registry: Registry,
        readiness: Readiness,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(registry.clone()))
                .app_data(web::Data::new(Arc::clone(&readiness)))
                .route("/metrics", web::get().to(metrics))
                .route("/health/live", web::get().to(live))
                .route("/health/ready", web::get().to(ready))
                .default_service(web::to(not_found))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(self.listener)?
        .run();
        let handle = server.handle();
        let running = tokio::spawn(server);
        shutdown.cancelled().await;
        handle.stop(true).await;
        running.await.map_err(std::io::Error::other)?
    }
}

async fn metrics(registry: web::Data<Registry>) -> HttpResponse {
    let mut body = Vec::with_capacity(8192);
    match TextEncoder::new().encode(&registry.gather(), &mut body) {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(body),
        Err(error) => HttpResponse::InternalServerError().body(error.to_string()),
    }
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "live"}))
}

async fn ready(readiness: web::Data<Readiness>) -> HttpResponse {
    match (readiness.get_ref())().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Err(reason) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "unavailable", "reason": reason})),
    }
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().body("not found: /metrics, /health/live, /health/ready\n")
}
