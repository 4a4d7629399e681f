//! The benchmark's databases: fresh migrated ones on DATABASE_URL's server, the settings a
//! measurement ran with, the tables the indexer wrote and their digests.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::{PgPool, Postgres};
pub use vault_devkit::test_db::{public_tables, quote, table_digest};

/// The URL of database `name` on `admin`'s server.
pub fn database_url(admin: &str, name: &str) -> anyhow::Result<String> {
    let (base, _) = admin.rsplit_once('/').context("DATABASE_URL has no database name")?;
    Ok(format!("{base}/{name}"))
}

/// Drops database `name` if it exists (a previous run's), creates it and applies every
/// migration. Returns its URL.
pub async fn fresh_database(admin: &str, name: &str) -> anyhow::Result<String> {
    let url = database_url(admin, name)?;
    if Postgres::database_exists(&url).await? {
        Postgres::force_drop_database(&url).await?;
    }
    Postgres::create_database(&url).await?;
    let pool = vault_db::connect(&url).await?;
    vault_db::migrate(&pool).await?;
    pool.close().await;
    Ok(url)
}

pub async fn drop_database(admin: &str, name: &str) -> anyhow::Result<()> {
    let url = database_url(admin, name)?;
    if Postgres::database_exists(&url).await? {
        Postgres::force_drop_database(&url).await?;
    }
    Ok(())
}

/// What a measurement ran with, read from the server it ran on.
#[derive(Clone, Debug)]
pub struct Settings {
    pub fsync: String,
    pub synchronous_commit: String,
    pub server_version: String,
    pub cores: usize,
}

impl Settings {
    /// SHOW on a connection of `pool` (a session's synchronous_commit is the server's default
    /// unless the session changed it; the indexer's do not).
    pub async fn read(pool: &PgPool) -> anyhow::Result<Self> {
        let show = |name: &'static str| async move {
            let (value,): (String,) = sqlx::query_as(&format!("SHOW {name}")).fetch_one(pool).await?;
            anyhow::Ok(value)
        };
        Ok(Self {
            fsync: show("fsync").await?,
            synchronous_commit: show("synchronous_commit").await?,
            server_version: show("server_version").await?,
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        })
    }

    /// One line naming the settings, with the batch size when there is one.
    pub fn line(&self, batch: Option<&str>) -> String {
        let batch = batch.map(|b| format!(", batch {b}")).unwrap_or_default();
        format!(
            "settings: fsync={}, synchronous_commit={}{batch}, PostgreSQL {}, {} cores (machine shared)",
            self.fsync, self.synchronous_commit, self.server_version, self.cores
        )
    }
}

/// Every table of the public schema except sqlx's bookkeeping, by name.
pub async fn row_count(pool: &PgPool, table: &str) -> anyhow::Result<i64> {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {}", quote(table))).fetch_one(pool).await?;
    Ok(n)
}

/// The public tables holding rows, with their counts, referenced tables before the tables
/// that reference them (foreign keys of the public schema).
pub async fn nonempty_tables_in_key_order(pool: &PgPool) -> anyhow::Result<Vec<(String, i64)>> {
    let mut counts = BTreeMap::new();
    for table in public_tables(pool).await? {
        let n = row_count(pool, &table).await?;
        if n > 0 {
            counts.insert(table, n);
        }
    }
    let edges: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.relname::text, b.relname::text FROM pg_constraint k
         JOIN pg_class a ON a.oid = k.conrelid JOIN pg_class b ON b.oid = k.confrelid
         JOIN pg_namespace n ON n.oid = a.relnamespace
         WHERE k.contype = 'f' AND n.nspname = 'public' AND a.oid <> b.oid",
    )
    .fetch_all(pool)
    .await?;
    let order = key_order(counts.keys().cloned().collect(), &edges);
    Ok(order.into_iter().map(|t| (t.clone(), counts[&t])).collect())
}

/// `tables` with every table after those it references (`edges`: referencing, referenced);
/// alphabetical among equals. A cycle (none in this schema) is broken alphabetically.
fn key_order(tables: BTreeSet<String>, edges: &[(String, String)]) -> Vec<String> {
    let mut left = tables;
    let mut order = vec![];
    while !left.is_empty() {
        let ready = left
            .iter()
            .find(|t| !edges.iter().any(|(from, to)| from == *t && left.contains(to)))
            .or_else(|| left.iter().next())
            .cloned()
            .expect("not empty");
        left.remove(&ready);
        order.push(ready);
    }
    order
}

/// Columns a replay is allowed to change: the cursor's `updated_at`, which the writer sets on
/// every batch by design (a replay commits the cursor again, at the same position).
pub fn replay_volatile_columns(table: &str) -> &'static [&'static str] {
    match table {
        "indexer_cursors" => &["updated_at"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referenced_tables_come_first() {
        let tables: BTreeSet<String> = ["a_child", "b_parent", "c_grandchild"].map(String::from).into();
        let edges = [("a_child", "b_parent"), ("c_grandchild", "a_child")].map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(key_order(tables, &edges), ["b_parent", "a_child", "c_grandchild"]);
    }
}
