//! Connections, the pool, migrations.

use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::StorageError;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

pub type Pool = deadpool::Pool<AsyncPgConnection>;
pub type PooledConnection = deadpool::Object<AsyncPgConnection>;

/// A pool of at most `size` connections.
///
/// # Errors
/// When the pool cannot be built (the URL is checked on first use).
pub fn pool(database_url: &str, size: usize) -> Result<Pool, StorageError> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(database_url);
    deadpool::Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| StorageError::Pool(e.to_string()))
}

/// Whether the database answers now, through a connection of `pool` (health checks).
///
/// # Errors
/// When no connection can be had or the query fails.
pub async fn ping(pool: &Pool) -> Result<(), StorageError> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| StorageError::Pool(e.to_string()))?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

/// One connection outside any pool.
///
/// # Errors
/// When PostgreSQL cannot be reached or refuses the connection.
pub async fn connect(database_url: &str) -> Result<AsyncPgConnection, StorageError> {
    Ok(AsyncPgConnection::establish(database_url).await?)
}

/// Key of the advisory lock held while migrating: replicas starting together (`docker compose
/// up --scale worker=3`) migrate one after the other instead of racing on the same DDL.
const MIGRATION_LOCK: i64 = 0x696e_7669_7472_6163; // "invitrac"

/// Applies every pending migration. Needs a multi-thread tokio runtime (the harness blocks).
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn run_migrations(database_url: &str) -> Result<Vec<String>, StorageError> {
    // Held on its own session until this function returns (dropping the connection ends the
    // session, which releases the lock even if migrating fails).
    let mut lock = connect(database_url).await?;
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK)
        .execute(&mut lock)
        .await?;
    let applied = migrate(database_url).await;
    let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK)
        .execute(&mut lock)
        .await;
    applied
}

async fn migrate(database_url: &str) -> Result<Vec<String>, StorageError> {
    let connection = connect(database_url).await?;
    tokio::task::spawn_blocking(move || {
        let mut harness = diesel_async::AsyncMigrationHarness::new(connection);
        harness
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|e| StorageError::Migration(e.to_string()))
    })
    .await
    .map_err(|e| StorageError::Migration(e.to_string()))?
}

/// Creates the database if it is missing (when allowed to), then applies pending migrations:
/// what every service does on start.
///
/// # Errors
/// When the database cannot be reached or migrated.
pub async fn prepare_database(database_url: &str) -> Result<Vec<String>, StorageError> {
    if let Err(error) = ensure_database(database_url).await {
        // Often a role without CREATEDB on a database that exists: migrating will tell.
        tracing::debug!(%error, "could not make sure the database exists");
    }
    run_migrations(database_url).await
}

/// Creates the database named in `database_url` if it does not exist yet (connecting to the
/// `postgres` database of the same server). Tests and the demo use it to get their own database.
///
/// # Errors
/// When the URL has no database name or the server refuses.
pub async fn ensure_database(database_url: &str) -> Result<(), StorageError> {
    let (server, rest) = database_url
        .rsplit_once('/')
        .filter(|(server, _)| server.contains("://"))
        .ok_or_else(|| StorageError::InvalidUrl(database_url.to_owned()))?;
    let (name, query) = rest.split_once('?').map_or((rest, ""), |(n, q)| (n, q));
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(StorageError::InvalidUrl(database_url.to_owned()));
    }
    let admin_url = if query.is_empty() {
        format!("{server}/postgres")
    } else {
        format!("{server}/postgres?{query}")
    };
    let mut conn = connect(&admin_url).await?;
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    let found: Found =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS found")
            .bind::<diesel::sql_types::Text, _>(name)
            .get_result(&mut conn)
            .await?;
    if !found.found {
        match diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
        {
            Ok(_) => {}
            // Another process created it meanwhile.
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {}
            Err(e) if e.to_string().contains("already exists") => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
