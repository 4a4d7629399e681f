//! Source -> decoder -> batches -> database. The source streams into a bounded channel
//! (backpressure, no drops); each transaction is decoded as it leaves the channel, so the writer
//! receives decoded transactions only; the writer takes up to `batch_size` of them or whatever
//! arrived within `batch_timeout`, and commits them with the source's cursor in one database
//! transaction. If
//! the database is unreachable the same batch is retried with backoff until it commits: the
//! indexer waits for PostgreSQL rather than dropping or reordering anything.

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
    pub batch_size: usize,
    pub batch_timeout: Duration,
    pub channel_capacity: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self { batch_size: 256, batch_timeout: Duration::from_millis(50), channel_capacity: 4_096 }
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
    let writer = tokio::spawn(write_loop(pool, ingest, name, receiver, metrics, config));
    let streamed = source.stream(resume, sender).await;
    // The sender is gone: the writer drains what is buffered, then ends.
    let written = writer.await?;
    streamed.and(written)
}

async fn write_loop(
    pool: PgPool,
    ingest: Ingest,
    source: &'static str,
    mut receiver: mpsc::Receiver<SourceItem>,
    metrics: Arc<IndexerMetrics>,
    config: PipelineConfig,
) -> anyhow::Result<()> {
    let mut batch: Vec<DecodedTx> = Vec::with_capacity(config.batch_size);
    let mut unreadable: Vec<Unreadable> = vec![];
    loop {
        let Some(first) = receiver.recv().await else { return Ok(()) };
        let mut items = vec![first];
        let deadline = tokio::time::Instant::now() + config.batch_timeout;
        while items.len() < config.batch_size {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(item)) => items.push(item),
                Ok(None) | Err(_) => break,
            }
        }
        // The newest item in chain order is where the cursor goes; an unreadable one counts,
        // its indexer_skipped row says what became of it.
        let newest = items
            .iter()
            .map(|item| match item {
                SourceItem::Tx(tx) => (tx.slot, tx.index_in_block, &tx.signature),
                SourceItem::Unreadable(u) => (u.slot, None, &u.signature),
            })
            .max_by_key(|(slot, index, _)| (*slot, *index))
            .map(|(slot, _, signature)| Cursor { slot, signature: Some(signature.clone()) });
        for item in items {
            metrics.transactions_seen.fetch_add(1, Relaxed);
            metrics.source_slot.fetch_max(item.slot(), Relaxed);
            match item {
                SourceItem::Tx(tx) => batch.push(DecodedTx::new(tx)),
                SourceItem::Unreadable(u) => unreadable.push(u),
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
