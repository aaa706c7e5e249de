#![doc = include_str!("../README.md")]

mod auth;
mod error;
mod invites;
mod params;

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use invitrack_storage::{Pool, PooledConnection};
use tokio_util::sync::CancellationToken;

pub use error::ApiError;

/// `invitrack-api` configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiConfig {
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/invitrack"
    )]
    pub database_url: String,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "API_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// HTTP worker threads; 0 = one per CPU.
    #[arg(long, env = "API_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// PostgreSQL connections shared by all HTTP workers.
    #[arg(long, env = "API_DB_CONNECTIONS", default_value_t = 16)]
    pub db_connections: usize,
}

/// What every handler shares.
pub struct AppState {
    pool: Pool,
}

impl AppState {
    async fn connection(&self) -> Result<PooledConnection, ApiError> {
        self.pool
            .get()
            .await
            .map_err(|e| ApiError::Pool(e.to_string()))
    }
}

/// Errors starting the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] invitrack_storage::StorageError),
}

/// A bound, not yet running API server.
pub struct Application {
    addr: SocketAddr,
    server: Server,
}

impl Application {
    /// Migrates the database, binds and prepares the server.
    ///
    /// # Errors
    /// When the database cannot be migrated or the address cannot be bound.
    pub async fn build(config: &ApiConfig) -> Result<Self, StartError> {
        invitrack_storage::prepare_database(&config.database_url).await?;
        let pool = invitrack_storage::pool(&config.database_url, config.db_connections)?;
        let listener = TcpListener::bind(config.bind).map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
        let state = web::Data::new(AppState { pool });
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|e, _| ApiError::InvalidQuery(e.to_string()).into()),
                )
                .route("/v1/invites/user", web::get().to(invites::user))
                .route("/v1/invites/code", web::get().to(invites::code))
                .route("/health/live", web::get().to(live))
                .route("/health/ready", web::get().to(ready))
                .default_service(web::to(|| async {
                    error::plain(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
                }))
        })
        .listen(listener)
        .map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?
        .disable_signals();
        if config.workers > 0 {
            server = server.workers(config.workers);
        }
        Ok(Self {
            addr,
            server: server.run(),
        })
    }

    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` fires, then finishes the requests in flight.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        shutdown.cancelled().await;
        handle.stop(true).await;
        server.await.map_err(std::io::Error::other)?
    }
}

/// Builds and runs the API until `shutdown`.
///
/// # Errors
/// When it cannot start.
pub async fn run(config: ApiConfig, shutdown: CancellationToken) -> Result<(), StartError> {
    let app = Application::build(&config).await?;
    tracing::info!(addr = %app.addr(), "API listening");
    app.run_until_stopped(shutdown)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    use diesel_async::RunQueryDsl as _;
    let mut conn = state.connection().await?;
    diesel::sql_query("SELECT 1")
        .execute(&mut conn)
        .await
        .map_err(invitrack_storage::StorageError::from)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}
