//! PostgreSQL access shared by the indexer, the session service and the cleanup bot: connecting,
//! the schema's migrations, amounts (u64 <-> NUMERIC), the audit chain's verification and the
//! one security-alert writer. The schema itself lives in `migrations/` at the repository root,
//! so `sqlx migrate run` and this crate apply the very same files.
//!
//! Depends on sqlx and nothing of the chain beyond plain numbers and strings: no Solana client,
//! no HTTP, no gRPC.

pub mod alerts;
pub mod amount;
pub mod audit;

use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Executor;

/// Every migration under `migrations/`, embedded at build time (see `build.rs`) so a deployed
/// binary cannot drift from the schema it was built against.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// How a pool connects: the one pool builder of the workspace (the indexer, the session service
/// and the cleanup bot differ only in these numbers and the role).
#[derive(Clone, Debug)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a caller waits for a connection before the call fails (finite, so a database
    /// that is down fails a request instead of hanging it).
    pub acquire_timeout: Duration,
    /// A role every connection switches to (`SET ROLE`), e.g. the schema's least-privilege
    /// `vault_service`; a plain lowercase name.
    pub role: Option<String>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_connections: 10, acquire_timeout: Duration::from_secs(10), role: None }
    }
}

/// The settings are not usable.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("db_role must be a plain lowercase role name")]
    BadRole,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl PoolSettings {
    fn options(&self) -> Result<PgPoolOptions, PoolError> {
        let role = self.role.clone();
        if let Some(r) = &role {
            // Interpolated into SET ROLE below, so only a plain identifier is accepted.
            if r.is_empty() || !r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                return Err(PoolError::BadRole);
            }
        }
        Ok(PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .after_connect(move |conn, _| {
                let role = role.clone();
                Box::pin(async move {
                    if let Some(r) = role {
                        conn.execute(format!("SET ROLE {r}").as_str()).await?;
                    }
                    Ok(())
                })
            }))
    }

    /// A pool on `options`, connected now (fails if the database cannot be reached).
    pub async fn connect(&self, options: PgConnectOptions) -> Result<PgPool, PoolError> {
        Ok(self.options()?.connect_with(options).await?)
    }

    /// A pool on `options` that connects on first use (a database that is down does not stop
    /// the caller from starting).
    pub fn connect_lazy(&self, options: PgConnectOptions) -> Result<PgPool, PoolError> {
        Ok(self.options()?.connect_lazy_with(options))
    }
}

/// A pool on `database_url` with the default settings.
pub async fn connect(database_url: &str) -> Result<PgPool, PoolError> {
    PoolSettings::default().connect(database_url.parse()?).await
}

/// Applies the migrations not yet recorded in `_sqlx_migrations`. sqlx holds an advisory lock
/// meanwhile, so concurrent callers on one database apply each migration once.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}
