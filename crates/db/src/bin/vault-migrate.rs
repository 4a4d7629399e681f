//! `vault-migrate [--database-url URL]`: creates the database named in the URL if it is missing
//! and applies `migrations/` (scripts/postgres.sh runs it).

use anyhow::Context;
use clap::Parser;
use sqlx::migrate::MigrateDatabase;
use sqlx::Postgres;

#[derive(Parser)]
#[command(name = "vault-migrate", about = "Creates the database if missing and applies the migrations")]
struct Cli {
    /// PostgreSQL connection URL of the database to create and migrate.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let url = Cli::parse().database_url;
    if !Postgres::database_exists(&url).await.context("cannot reach the PostgreSQL server in DATABASE_URL")? {
        Postgres::create_database(&url).await.context("creating the database")?;
    }
    let pool = vault_db::connect(&url).await.context("connecting")?;
    vault_db::migrate(&pool).await.context("applying migrations")?;
    let latest = vault_db::MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    eprintln!("schema at migration {latest}");
    pool.close().await;
    Ok(())
}
