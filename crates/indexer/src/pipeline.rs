//! Source -> decoder -> batches -> database. The source streams into a bounded channel
//! (backpressure, no drops); a decoder task turns each transaction into a [`DecodedTx`] as it
//! leaves that channel, so the writer receives decoded transactions only, and the next batch is
//! decoded while the current one commits. The writer has no batching delay: as soon as it is
//! free it takes whatever is queued (up to `batch_size`, at least one) and commits it with the
//! source's cursor in one database transaction. If the database is unreachable the same batch
//! is retried with backoff until it commits: the indexer waits for PostgreSQL rather than
//! dropping or reordering anything.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::decode::DecodedTx;
use crate::ingest::{load_cursor, Ingest};
use crate::metrics::IndexerMetrics;
use vault_chain::Backoff;

use crate::sources::{Cursor, SourceItem, TransactionSource, Unreadable};

#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Most transactions in one database transaction.
    pub batch_size: usize,
    /// Transactions buffered between the source and the writer (backpressure beyond it).
    pub channel_capacity: usize,
}

/// Most transactions in one database transaction, by default. A batch costs a constant number
/// of round trips and writes each session it touches once, so bigger batches are cheaper per
/// transaction (scripts/bench-indexer.sh, 40,000 transactions over 200 live sessions on this
/// project's 2-core machine: 6,834 tx/s at 256, 7,413 at 1,024, 9,593 at 4,096). Below
/// saturation a batch is only what is queued, so the size bounds latency only when the writer
/// is already behind.
pub const DEFAULT_BATCH_SIZE: usize = 4_096;

impl Default for PipelineConfig {
    fn default() -> Self {
        Self { batch_size: DEFAULT_BATCH_SIZE, channel_capacity: 2 * DEFAULT_BATCH_SIZE }
    }
}

/// What the decoder hands the writer.
enum Decoded {
    Tx(DecodedTx),
    Unreadable(Unreadable),
}

impl Decoded {
    fn position(&self) -> (u64, Option<u64>, &String) {
        match self {
            Decoded::Tx(tx) => (tx.tx.slot, tx.tx.index_in_block, &tx.tx.signature),
            Decoded::Unreadable(u) => (u.slot, None, &u.signature),
        }
    }
}

/// Runs `source` into the database until the source ends (or fails fatally).
pub async fn run<S: TransactionSource>(
    pool: PgPool,
    ingest: Ingest,
    mut source: S,
    metrics: Arc<IndexerMetrics>,
    config: PipelineConfig,
) -> anyhow::Result<()> {
    let name = source.name();
    let resume = load_cursor(&pool, name).await?;
    tracing::info!(source = name, ?resume, "starting");
    let (sender, receiver) = mpsc::channel(config.channel_capacity);
    let (decoded_sender, decoded) = mpsc::channel(config.batch_size.max(1));
    let decoder = tokio::spawn(decode_loop(receiver, decoded_sender, metrics.clone()));
    let writer = tokio::spawn(write_loop(pool, ingest, name, decoded, metrics, config));
    let streamed = source.stream(resume, sender).await;
    // The sender is gone: the decoder and the writer drain what is buffered, then end.
    decoder.await?;
    let written = writer.await?;
    streamed.and(written)
}

/// Decodes each item as it leaves the source's channel (a separate task: it runs while the
/// writer waits for a commit).
async fn decode_loop(
    mut receiver: mpsc::Receiver<SourceItem>,
    out: mpsc::Sender<Decoded>,
    metrics: Arc<IndexerMetrics>,
) {
    while let Some(item) = receiver.recv().await {
        metrics.transactions_seen.fetch_add(1, Relaxed);
        metrics.source_slot.fetch_max(item.slot(), Relaxed);
        let decoded = match item {
            SourceItem::Tx(tx) => Decoded::Tx(DecodedTx::new(tx)),
            SourceItem::Unreadable(u) => Decoded::Unreadable(u),
        };
        if out.send(decoded).await.is_err() {
            return; // the writer ended (failed): nothing more to do
        }
    }
}

async fn write_loop(
    pool: PgPool,
    ingest: Ingest,
    source: &'static str,
    mut receiver: mpsc::Receiver<Decoded>,
    metrics: Arc<IndexerMetrics>,
    config: PipelineConfig,
) -> anyhow::Result<()> {
    let mut batch: Vec<DecodedTx> = Vec::with_capacity(config.batch_size);
    let mut unreadable: Vec<Unreadable> = vec![];
    loop {
        // Wait for one, then take whatever else is queued: no batching delay.
        let Some(first) = receiver.recv().await else { return Ok(()) };
        let mut items = vec![first];
        while items.len() < config.batch_size {
            match receiver.try_recv() {
                Ok(item) => items.push(item),
                Err(_) => break,
            }
        }
        // The newest item in chain order is where the cursor goes; an unreadable one counts,
        // its indexer_skipped row says what became of it.
        let newest = items
            .iter()
            .map(Decoded::position)
            .max_by_key(|(slot, index, _)| (*slot, *index))
            .map(|(slot, _, signature)| Cursor { slot, signature: Some(signature.clone()) });
        for item in items {
            match item {
                Decoded::Tx(tx) => batch.push(tx),
                Decoded::Unreadable(u) => unreadable.push(u),
            }
        }
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let report = loop {
            match ingest.write_batch_with_unreadable(&pool, source, &batch, &unreadable, newest.as_ref()).await {
                Ok(report) => break report,
                Err(e) => {
                    metrics.write_errors.fetch_add(1, Relaxed);
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, ?delay, size = batch.len(), "batch not committed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        };
        metrics.batches_committed.fetch_add(1, Relaxed);
        metrics.transactions_written.fetch_add((report.written + report.unparked) as u64, Relaxed);
        metrics.transactions_skipped.fetch_add(report.skipped as u64, Relaxed);
        metrics.count_skipped("undecodable", report.skipped as u64);
        // Parked past the limit: moved to indexer_skipped in this batch.
        metrics.count_skipped("session_unknown", report.expired);
        metrics.sessions_bootstrapped.fetch_add(report.bootstrapped as u64, Relaxed);
        for u in &unreadable {
            metrics.count_skipped(u.reason.as_str(), 1);
        }
        metrics.transactions_parked.fetch_add(report.parked as u64, Relaxed);
        metrics.transactions_ignored.fetch_add(report.ignored as u64, Relaxed);
        if let Some(cursor) = &newest {
            metrics.current_slot.fetch_max(cursor.slot, Relaxed);
        }
        batch.clear();
        unreadable.clear();
    }
}
