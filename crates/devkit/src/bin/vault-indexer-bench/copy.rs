//! The raw COPY ceiling: every row the indexer wrote, COPYed out of its database and COPYed
//! into another fresh migrated one (same indexes and constraints; triggers disabled, since a
//! COPY of finished rows must not re-derive them). What loading those rows costs PostgreSQL
//! with no logic at all in front of it.

use std::time::{Duration, Instant};

use futures::StreamExt;
use sqlx::{Connection, Executor, PgConnection, PgPool};

use crate::cpu::{Cluster, CpuMark, CpuUse};
use crate::db::{nonempty_tables_in_key_order, quote};

/// Bytes per CopyData message: the data streams as a client would send a large file.
const COPY_CHUNK: usize = 1 << 20;

/// One table's COPY.
#[derive(Clone, Debug)]
pub struct TableCopy {
    pub table: String,
    pub rows: u64,
    /// Size of its COPY data, binary format.
    pub bytes: usize,
}

#[derive(Clone, Debug)]
pub struct CopyRun {
    pub tables: Vec<TableCopy>,
    /// Wall time of every COPY IN, one after another on one connection.
    pub elapsed: Duration,
    pub cpu: CpuUse,
}

impl CopyRun {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn bytes(&self) -> usize {
        self.tables.iter().map(|t| t.bytes).sum()
    }
}

/// COPY OUT of every non-empty public table of `source` (binary format), in foreign-key order.
async fn copy_out(source: &PgPool) -> anyhow::Result<Vec<(String, i64, Vec<u8>)>> {
    let tables = nonempty_tables_in_key_order(source).await?;
    let mut conn = source.acquire().await?;
    let mut out = Vec::with_capacity(tables.len());
    for (table, rows) in tables {
        let mut stream = conn.copy_out_raw(&format!("COPY {} TO STDOUT (FORMAT binary)", quote(&table))).await?;
        let mut bytes = vec![];
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        drop(stream);
        out.push((table, rows, bytes));
    }
    Ok(out)
}

/// Turns every trigger of `tables` off in the target database (user triggers, ENABLE ALWAYS
/// ones and the foreign-key checks alike; superuser) and empties any rows the migrations put
/// there, so the COPY loads exactly the indexer's rows.
async fn prepare_target(target: &mut PgConnection, tables: &[(String, i64, Vec<u8>)]) -> anyhow::Result<()> {
    for (table, _, _) in tables {
        target.execute(format!("ALTER TABLE {} DISABLE TRIGGER ALL", quote(table)).as_str()).await?;
    }
    for (table, _, _) in tables.iter().rev() {
        target.execute(format!("DELETE FROM {}", quote(table)).as_str()).await?;
    }
    Ok(())
}

/// COPYs the indexer's rows from `source` into the fresh database at `target_url` and measures
/// the COPY IN: wall time, and CPU of the cluster and of this process.
pub async fn copy_ceiling(source: &PgPool, target_url: &str, cluster: Option<&Cluster>) -> anyhow::Result<CopyRun> {
    let data = copy_out(source).await?;
    let mut target = PgConnection::connect(target_url).await?;
    prepare_target(&mut target, &data).await?;
    let mut tables = Vec::with_capacity(data.len());
    let cpu = CpuMark::start(cluster);
    let started = Instant::now();
    for (table, _, bytes) in &data {
        let mut copy = target.copy_in_raw(&format!("COPY {} FROM STDIN (FORMAT binary)", quote(table))).await?;
        for chunk in bytes.chunks(COPY_CHUNK) {
            copy.send(chunk).await?;
        }
        let rows = copy.finish().await?;
        tables.push(TableCopy { table: table.clone(), rows, bytes: bytes.len() });
    }
    let elapsed = started.elapsed();
    let cpu = cpu.stop();
    target.close().await?;
    for ((table, expected, _), copied) in data.iter().zip(&tables) {
        anyhow::ensure!(
            copied.rows == *expected as u64,
            "COPY of {table} loaded {} rows, the source has {expected}",
            copied.rows
        );
    }
    Ok(CopyRun { tables, elapsed, cpu })
}
