#![doc = include_str!("../README.md")]

mod admin;
mod auth;
mod cache;
mod dashboard;
mod error;
mod export;
mod guilds;
mod health;
mod import;
mod invites;
mod keys;
mod login;
mod openapi;
mod openapi_parts;
mod params;
mod settings;
mod ui;
mod webhooks;

use invitrack_model::GuildKey;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, ErrorHandlers};
use actix_web::{App, HttpServer, web};
use invitrack_storage::{Pool, PooledConnection};
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi as _;

pub use error::ApiError;
pub use login::LoginOptions;
pub use openapi::ApiDoc;

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
    #[command(flatten)]
    pub options: ApiOptions,
}

/// Limits, caches and browser access: the part of [`ApiConfig`] that has a sensible default
/// everywhere, so the demo and tests override only what they need.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiOptions {
    /// Requests per second each API key may make on average; 0 = no limit.
    #[arg(long, env = "API_RATE_LIMIT_PER_SECOND", default_value_t = 50)]
    pub rate_limit_per_second: u32,
    /// Requests a key may make at once after being idle (the bucket's size).
    #[arg(long, env = "API_RATE_LIMIT_BURST", default_value_t = 100)]
    pub rate_limit_burst: u32,
    /// Browser origins allowed by CORS, comma-separated (`*` = any); none by default.
    #[arg(
        long,
        env = "API_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cors_origins: Vec<String>,
    /// Seconds a looked-up API key is trusted without asking the database (a revoked key
    /// keeps working at most this long); 0 = ask every time.
    #[arg(long, env = "API_KEY_CACHE_SECS", default_value_t = 5)]
    pub key_cache_secs: u64,
    /// Longest time an inviter's counts are served from memory (`GET /v1/invites/user`); 0 =
    /// no cache. Entries are dropped as soon as PostgreSQL announces a committed change of the
    /// guild's counters, so this only bounds staleness if that announcement were lost.
    #[arg(long, env = "API_COUNTS_CACHE_SECS", default_value_t = 300)]
    pub counts_cache_secs: u64,
    /// Most inviters whose counts are kept in memory.
    #[arg(long, env = "API_COUNTS_CACHE_ENTRIES", default_value_t = 500_000)]
    pub counts_cache_entries: usize,
    /// Seconds a request body may take to arrive in full once the request is routed; past it,
    /// 408. actix's own timeout covers the head only, so without this a client sending a
    /// `Content-Length` and then no (or a dribbled) body is waited on forever.
    #[arg(
        long,
        env = "API_BODY_TIMEOUT_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub body_timeout_secs: u64,
    /// Let webhooks be registered with loopback, private and link-local URLs (the senders'
    /// own `WEBHOOKS_ALLOW_PRIVATE_NETWORKS` decides what they reach).
    #[arg(long, env = "WEBHOOKS_ALLOW_PRIVATE_NETWORKS", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhooks_allow_private_networks: bool,
    /// "Login with Discord" on the dashboard (`docs/dashboard.md#login`); off without it.
    #[command(flatten)]
    pub login: login::LoginOptions,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            rate_limit_per_second: 50,
            rate_limit_burst: 100,
            cors_origins: Vec::new(),
            key_cache_secs: 5,
            counts_cache_secs: 300,
            counts_cache_entries: 500_000,
            body_timeout_secs: 10,
            webhooks_allow_private_networks: false,
            login: login::LoginOptions::default(),
        }
    }
}

impl ApiOptions {
    fn origins(&self) -> Vec<String> {
        self.cors_origins
            .iter()
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect()
    }
}

/// What every handler shares.
pub struct AppState {
    pool: Pool,
    keys: auth::KeyCache,
    limiter: auth::RateLimiter,
    /// How long a handler waits for the request body (`params::BodyBytes`).
    body_timeout: Duration,
    /// `None` when disabled (`API_COUNTS_CACHE_SECS=0`).
    counts: Option<Arc<cache::CountsCache>>,
    webhooks_allow_private_networks: bool,
    /// `None` when Discord login is not configured.
    login: Option<login::DiscordLogin>,
}

impl AppState {
    /// This process committed a change of a guild's counters: forget them now, so the caller
    /// reads its own write (the database's notification follows for the other processes).
    fn counts_changed(&self, guild: GuildKey) {
        if let Some(cache) = &self.counts {
            cache.invalidate_guild(guild);
        }
    }

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
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A bound, not yet running API server.
pub struct Application {
    addr: SocketAddr,
    server: Server,
    /// Stops the counts cache's listener when the application is dropped or stopped.
    _background: tokio_util::sync::DropGuard,
}

impl Application {
    /// Migrates the database, binds and prepares the server.
    ///
    /// # Errors
    /// When the database cannot be migrated or the address cannot be bound.
    pub async fn build(config: &ApiConfig) -> Result<Self, StartError> {
        let options = &config.options;
        invitrack_storage::prepare_database(&config.database_url).await?;
        let pool = request_pool(&config.database_url, config.db_connections)?;
        let listener = TcpListener::bind(config.bind).map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
        let metrics = actix_web_prom::PrometheusMetricsBuilder::new("invitrack_api")
            .endpoint("/metrics")
            .mask_unmatched_patterns("UNKNOWN")
            .build()
            .map_err(|e| StartError::Config(format!("metrics: {e}")))?;
        let background = CancellationToken::new();
        let counts = if options.counts_cache_secs > 0 {
            let events = counter(
                &metrics.registry,
                "invitrack_api_counts_cache_total",
                "counts cache lookups (hit, miss, bypass) and invalidations",
                "event",
            )?;
            let counts = Arc::new(cache::CountsCache::new(
                options.counts_cache_entries,
                Duration::from_secs(options.counts_cache_secs),
                Some(events),
            ));
            tokio::spawn(cache::listen(
                counts.clone(),
                config.database_url.clone(),
                background.clone(),
            ));
            Some(counts)
        } else {
            None
        };
        let key_checks = counter(
            &metrics.registry,
            "invitrack_api_key_checks_total",
            "API key checks of well-formed tokens: cached, cached_unknown, or looked up in the \
             database (found, unknown)",
            "outcome",
        )?;
        let state = web::Data::new(AppState {
            pool,
            // A quarter of the connections for key lookups: see `auth::KeyCache::lookups`.
            keys: auth::KeyCache::new(
                Duration::from_secs(options.key_cache_secs),
                config.db_connections / 4,
                key_checks,
            ),
            limiter: auth::RateLimiter::new(
                options.rate_limit_per_second,
                options.rate_limit_burst,
            ),
            body_timeout: Duration::from_secs(options.body_timeout_secs),
            webhooks_allow_private_networks: options.webhooks_allow_private_networks,
            counts,
            login: login::DiscordLogin::from_options(&options.login)?,
        });
        let origins = options.origins();
        let openapi = ApiDoc::openapi();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|e, _| ApiError::InvalidQuery(e.to_string()).into()),
                )
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|e, _| ApiError::InvalidQuery(e.to_string()).into()),
                )
                .app_data(
                    web::JsonConfig::default()
                        .error_handler(|e, _| ApiError::InvalidBody(e.to_string()).into()),
                )
                .configure(routes)
                .service(
                    utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                        .url("/openapi.json", openapi.clone()),
                )
                .default_service(web::to(error::not_found))
                .wrap(ErrorHandlers::new().default_handler(error::normalize))
                .wrap(Condition::new(!origins.is_empty(), cors(&origins)))
                .wrap(metrics.clone())
                .wrap(actix_web::middleware::from_fn(error::standard_methods_only))
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
            _background: background.drop_guard(),
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

/// A counter with one label, registered where `/metrics` serves it.
fn counter(
    registry: &prometheus::Registry,
    name: &str,
    help: &str,
    label: &str,
) -> Result<prometheus::IntCounterVec, StartError> {
    prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), &[label])
        .and_then(|counter| {
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        })
        .map_err(|e| StartError::Config(format!("metrics: {e}")))
}

/// The pool handlers borrow connections from. Connections are handed out without the test
/// query deadpool's default recycling sends first (`SELECT 1` per checkout, one more round
/// trip per request); a connection that broke is dropped when its query fails.
fn request_pool(database_url: &str, size: usize) -> Result<Pool, StartError> {
    use diesel_async::AsyncPgConnection;
    use diesel_async::pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
    };
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    manager_config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::new_with_config(database_url, manager_config);
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| StartError::Config(format!("database pool: {e}")))
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

/// Every route: one resource per path, so a known path with another method answers 405.
fn routes(cfg: &mut web::ServiceConfig) {
    let guild = "/v1/bots/{bot_id}/guilds/{guild_id}";
    let mut add = |path: String, routes: Vec<(&'static str, actix_web::Route)>| {
        let mut resource = web::resource(path);
        let allow = routes
            .iter()
            .map(|(method, _)| *method)
            .collect::<Vec<_>>()
            .join(", ");
        for (_, route) in routes {
            resource = resource.route(route);
        }
        cfg.service(resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move { error::method_not_allowed(&allow) }
        })));
    };
    add(
        "/v1/invites/user".into(),
        vec![("GET", web::get().to(invites::user))],
    );
    add(
        "/v1/invites/code".into(),
        vec![("GET", web::get().to(invites::code))],
    );
    add(
        format!("{guild}/leaderboard"),
        vec![("GET", web::get().to(dashboard::leaderboard))],
    );
    add(
        format!("{guild}/members/{{member_id}}"),
        vec![("GET", web::get().to(dashboard::member))],
    );
    add(
        format!("{guild}/inviters/{{inviter_id}}/codes"),
        vec![("GET", web::get().to(dashboard::inviter_codes))],
    );
    add(
        format!("{guild}/summary"),
        vec![("GET", web::get().to(dashboard::summary))],
    );
    add(
        format!("{guild}/inviters/{{inviter_id}}/bonus"),
        vec![
            ("GET", web::get().to(admin::list_bonus)),
            ("POST", web::post().to(admin::add_bonus)),
        ],
    );
    add(
        format!("{guild}/resets"),
        vec![
            ("GET", web::get().to(admin::list_resets)),
            ("POST", web::post().to(admin::reset)),
        ],
    );
    add(
        format!("{guild}/resets/{{reset_id}}/restore"),
        vec![("POST", web::post().to(admin::restore))],
    );
    add(
        format!("{guild}/settings"),
        vec![
            ("GET", web::get().to(settings::settings)),
            ("PUT", web::put().to(settings::update_settings)),
        ],
    );
    add(
        format!("{guild}/templates/preview"),
        vec![("POST", web::post().to(settings::preview))],
    );
    add(
        format!("{guild}/webhooks"),
        vec![
            ("GET", web::get().to(webhooks::list)),
            ("POST", web::post().to(webhooks::create)),
        ],
    );
    add(
        format!("{guild}/webhooks/{{webhook_id}}"),
        vec![("DELETE", web::delete().to(webhooks::delete))],
    );
    add(
        format!("{guild}/webhooks/{{webhook_id}}/deliveries"),
        vec![("GET", web::get().to(webhooks::deliveries))],
    );
    add(
        format!("{guild}/audit"),
        vec![("GET", web::get().to(admin::audit))],
    );
    add("/v1/me".into(), vec![("GET", web::get().to(guilds::me))]);
    add(
        "/v1/bots/{bot_id}/guilds".into(),
        vec![("GET", web::get().to(guilds::guilds))],
    );
    add(
        format!("{guild}/joins"),
        vec![("GET", web::get().to(guilds::joins))],
    );
    add(
        format!("{guild}/export/joins"),
        vec![("GET", web::get().to(export::joins))],
    );
    add(
        format!("{guild}/export/inviters"),
        vec![("GET", web::get().to(export::inviters))],
    );
    add(
        "/dashboard".into(),
        vec![("GET", web::get().to(ui::redirect))],
    );
    add("/dashboard/".into(), vec![("GET", web::get().to(ui::file))]);
    add(
        "/dashboard/{file}".into(),
        vec![("GET", web::get().to(ui::file))],
    );
    add(
        format!("{guild}/keys"),
        vec![
            ("GET", web::get().to(keys::list)),
            ("POST", web::post().to(keys::create)),
        ],
    );
    add(
        format!("{guild}/keys/{{key_id}}"),
        vec![("DELETE", web::delete().to(keys::revoke))],
    );
    add(
        "/auth/config".into(),
        vec![("GET", web::get().to(login::config))],
    );
    add(
        "/auth/login".into(),
        vec![("GET", web::get().to(login::start))],
    );
    add(
        "/auth/callback".into(),
        vec![("GET", web::get().to(login::callback))],
    );
    add(
        "/auth/logout".into(),
        vec![("POST", web::post().to(login::logout))],
    );
    add(
        "/health/live".into(),
        vec![("GET", web::get().to(health::live))],
    );
    add(
        "/health/ready".into(),
        vec![("GET", web::get().to(health::ready))],
    );
    // Imports take whole files: a larger body than the other endpoints' 256 KiB (the joins
    // import streams its body and checks its own limits).
    for (path, route) in [
        (
            format!("{guild}/import/bonus"),
            web::post().to(import::bonus),
        ),
        (
            format!("{guild}/import/joins"),
            web::post().to(import::joins),
        ),
    ] {
        cfg.service(
            web::resource(path)
                .app_data(web::PayloadConfig::new(import::MAX_IMPORT_BYTES))
                .route(route)
                .default_service(web::to(|| async { error::method_not_allowed("POST") })),
        );
    }
}

fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "DELETE"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
        ])
        .expose_headers([actix_web::http::header::RETRY_AFTER])
        .max_age(3600);
    for origin in origins {
        if origin == "*" {
            cors = cors.allow_any_origin();
        } else {
            cors = cors.allowed_origin(origin);
        }
    }
    cors
}
