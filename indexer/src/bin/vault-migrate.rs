//! Creates the database named in `DATABASE_URL` if it is missing and applies `migrations/`.

use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::Postgres;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL is not set")?;
    if !Postgres::database_exists(&url)
        .await
        .context("cannot reach the PostgreSQL server in DATABASE_URL")?
    {
        Postgres::create_database(&url)
            .await
            .context("creating the database")?;
    }
    let pool = vault_indexer::db::connect(&url)
        .await
        .context("connecting")?;
    vault_indexer::db::migrate(&pool)
        .await
        .context("applying migrations")?;
    let latest = vault_indexer::db::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    eprintln!("schema at migration {latest}");
    pool.close().await;
    Ok(())
}
