//! PostgreSQL access: connecting, the schema's migrations, and the few conversions every writer
//! needs. The schema itself lives in `migrations/` at the repository root, so `sqlx migrate run`
//! and this crate apply the very same files.

pub mod amount;
pub mod audit;

use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};

/// Every migration under `migrations/`, embedded at build time (see `build.rs`) so a deployed
/// binary cannot drift from the schema it was built against.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// A pool on `database_url`. The acquire timeout is finite so a down database fails a request
/// instead of hanging it.
pub async fn connect(database_url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(10))
        .connect(database_url)
        .await
}

/// Applies the migrations not yet recorded in `_sqlx_migrations`. sqlx holds an advisory lock
/// meanwhile, so concurrent callers on one database apply each migration once.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}
