//! The indexer's write path at saturation: the stream decoded and handed to
//! `Ingest::write_batch` in batches, one after another, as fast as they commit.

use std::time::{Duration, Instant};

use sqlx::PgPool;
use vault_indexer::chain_tx::ChainTx;
use vault_indexer::decode::decode_all;
use vault_indexer::ingest::Ingest;
use vault_indexer::sources::Cursor;

use crate::cpu::{Cluster, CpuMark, CpuUse};

/// The cursor's source name for the benchmark's writes.
pub const SOURCE: &str = "bench";

/// One pass of a stream through `write_batch`.
#[derive(Clone, Debug, Default)]
pub struct WriteRun {
    pub transactions: usize,
    pub batch_size: usize,
    pub elapsed: Duration,
    pub batches: usize,
    /// Sum of BatchReport.statements: database round trips, BEGIN and COMMIT included.
    pub statements: usize,
    pub written: usize,
    pub parked: usize,
    pub skipped: usize,
    pub ignored: usize,
    pub unparked: usize,
    pub cpu: CpuUse,
}

impl WriteRun {
    /// Transactions per second of wall time.
    pub fn tx_per_second(&self) -> f64 {
        self.transactions as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Mean round trips per batch, as the writer reports them (0 when it does not).
    pub fn round_trips_per_batch(&self) -> f64 {
        self.statements as f64 / self.batches.max(1) as f64
    }
}

/// Microseconds of `d` per transaction of `n`.
pub fn micros_per_tx(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n.max(1) as f64
}

/// Decodes and writes `txs` in chain order, `batch_size` at a time with the cursor at each
/// batch's newest transaction, timing the whole pass and the CPU of this process (decoding
/// included) and of the cluster meanwhile.
pub async fn write_stream(
    pool: &PgPool,
    txs: &[ChainTx],
    batch_size: usize,
    cluster: Option<&Cluster>,
) -> anyhow::Result<WriteRun> {
    let ingest = Ingest::default();
    let mut run = WriteRun { transactions: txs.len(), batch_size, ..WriteRun::default() };
    let cpu = CpuMark::start(cluster);
    let started = Instant::now();
    for batch in txs.chunks(batch_size) {
        let decoded = decode_all(batch);
        let newest = batch.last().map(|tx| Cursor { slot: tx.slot, signature: Some(tx.signature.clone()) });
        let report = ingest.write_batch(pool, SOURCE, &decoded, newest.as_ref()).await?;
        run.batches += 1;
        run.statements += report.statements;
        run.written += report.written;
        run.parked += report.parked;
        run.skipped += report.skipped;
        run.ignored += report.ignored;
        run.unparked += report.unparked;
    }
    run.elapsed = started.elapsed();
    run.cpu = cpu.stop();
    Ok(run)
}

/// CPU of this process to decode `txs` alone (decode_all over the whole stream, nothing
/// written): the part of the indexer's client CPU a raw COPY of finished rows never pays.
pub fn decode_only(txs: &[ChainTx]) -> Duration {
    let cpu = CpuMark::start(None);
    let decoded = decode_all(txs);
    let used = cpu.stop().client;
    drop(std::hint::black_box(decoded));
    used
}
