//! Checks on what the saturation run wrote: the audit chain holds, and writing the whole stream
//! again (a replay, as after a crash before the cursor moved) changes no row.

use sqlx::PgPool;
use vault_indexer::chain_tx::ChainTx;

use crate::cpu::Cluster;
use crate::db::{public_tables, replay_volatile_columns, table_digest};
use crate::write::{write_stream, WriteRun};

/// Rows `verify_audit_chain()` reports (0 = the chain holds), and the first problem.
pub async fn audit_chain_breaks(pool: &PgPool) -> anyhow::Result<(i64, Option<String>)> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM verify_audit_chain()").fetch_one(pool).await?;
    let first: Option<(Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT chain_seq, problem FROM verify_audit_chain() LIMIT 1").fetch_optional(pool).await?;
    Ok((n, first.map(|(seq, problem)| format!("chain_seq {seq:?}: {}", problem.unwrap_or_default()))))
}

/// One table before and after the replay.
#[derive(Clone, Debug)]
pub struct TableReplay {
    pub table: String,
    pub rows_before: i64,
    pub rows_after: i64,
    pub equal: bool,
    /// Columns left out of the digest (see [`replay_volatile_columns`]).
    pub excluded: &'static [&'static str],
}

pub struct Replay {
    pub tables: Vec<TableReplay>,
    pub run: WriteRun,
}

impl Replay {
    pub fn all_equal(&self) -> bool {
        self.tables.iter().all(|t| t.equal)
    }
}

async fn digests(pool: &PgPool) -> anyhow::Result<Vec<(String, i64, String)>> {
    let mut out = vec![];
    for table in public_tables(pool).await? {
        let (rows, digest) = table_digest(pool, &table, replay_volatile_columns(&table)).await?;
        out.push((table, rows, digest));
    }
    Ok(out)
}

/// Digests every table, writes the whole stream again through `write_batch`, digests again.
pub async fn replay(
    pool: &PgPool,
    txs: &[ChainTx],
    batch_size: usize,
    cluster: Option<&Cluster>,
) -> anyhow::Result<Replay> {
    let before = digests(pool).await?;
    let run = write_stream(pool, txs, batch_size, cluster).await?;
    let after = digests(pool).await?;
    let mut tables = vec![];
    for (table, rows_before, digest_before) in &before {
        let found = after.iter().find(|(t, _, _)| t == table);
        let (rows_after, equal) = match found {
            Some((_, rows, digest)) => (*rows, digest == digest_before && rows == rows_before),
            None => (0, false),
        };
        tables.push(TableReplay {
            table: table.clone(),
            rows_before: *rows_before,
            rows_after,
            equal,
            excluded: replay_volatile_columns(table),
        });
    }
    Ok(Replay { tables, run })
}
