//! Hand-over-to-commit latency through the real pipeline (`pipeline::run`): an in-memory source
//! sends the stream in chain order, paced or as fast as the channel accepts; a watcher thread
//! polls the pipeline's metrics and stamps each transaction when its batch is committed.
//!
//! Hand-over: the moment the source's `send` into the pipeline's channel returns. Commit: the
//! first poll at which the transactions the writer accounted for (written + skipped + parked +
//! ignored, all counted after the batch's COMMIT) reach the transaction's position; batches
//! commit in order, so transaction i is committed once that total reaches i + 1.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::mpsc;
use vault_indexer::chain_tx::ChainTx;
use vault_indexer::ingest::Ingest;
use vault_indexer::metrics::IndexerMetrics;
use vault_indexer::pipeline::{self, PipelineConfig};
use vault_indexer::sources::{Cursor, SourceItem, TransactionSource};

/// How often the watcher reads the metrics.
pub const POLL: Duration = Duration::from_millis(1);

/// Not stamped yet.
const UNSET: u64 = u64::MAX;

/// Nanoseconds since `base`, for a stamp.
fn stamp(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

fn stamps(n: usize) -> Arc<Vec<AtomicU64>> {
    Arc::new((0..n).map(|_| AtomicU64::new(UNSET)).collect())
}

/// The stream in chain order from memory, `rate` transactions a second (each sent at its own
/// deadline, start + i / rate, so sleeps do not drift), or as fast as the channel takes them.
struct MemorySource<'a> {
    txs: &'a [ChainTx],
    rate: Option<f64>,
    base: Instant,
    handed_over: Arc<Vec<AtomicU64>>,
}

impl TransactionSource for MemorySource<'_> {
    fn name(&self) -> &'static str {
        crate::write::SOURCE
    }

    async fn stream(&mut self, _resume: Option<Cursor>, out: mpsc::Sender<SourceItem>) -> anyhow::Result<()> {
        let start = tokio::time::Instant::now();
        for (i, tx) in self.txs.iter().enumerate() {
            if let Some(rate) = self.rate {
                tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
            }
            out.send(SourceItem::Tx(tx.clone())).await.map_err(|_| anyhow::anyhow!("the pipeline stopped reading"))?;
            self.handed_over[i].store(stamp(self.base), Relaxed);
        }
        Ok(())
    }
}

/// Transactions the writer has accounted for, in every counter it adds to after a commit.
fn accounted(metrics: &IndexerMetrics) -> u64 {
    metrics.transactions_written.load(Relaxed)
        + metrics.transactions_skipped.load(Relaxed)
        + metrics.transactions_parked.load(Relaxed)
        + metrics.transactions_ignored.load(Relaxed)
}

/// Polls and stamps commits until every transaction is accounted for or `stop` (after one last
/// poll). Returns the polls made and the time they spanned.
fn watch_commits(
    metrics: Arc<IndexerMetrics>,
    committed: Arc<Vec<AtomicU64>>,
    base: Instant,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u64, Duration)> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let (mut seen, mut polls) = (0usize, 0u64);
        loop {
            let stopping = stop.load(Relaxed);
            let now = stamp(base);
            let total = (accounted(&metrics) as usize).min(committed.len());
            for slot in &committed[seen.min(total)..total] {
                slot.store(now, Relaxed);
            }
            seen = seen.max(total);
            polls += 1;
            if seen == committed.len() || stopping {
                return (polls, started.elapsed());
            }
            std::thread::sleep(POLL);
        }
    })
}

/// One latency run.
#[derive(Clone, Debug)]
pub struct LatencyRun {
    pub transactions: usize,
    /// Requested rate; None = saturation.
    pub rate: Option<f64>,
    /// From the first hand-over to the last.
    pub sending: Duration,
    /// From the first hand-over to the last commit.
    pub elapsed: Duration,
    /// Sorted.
    pub latencies: Vec<Duration>,
    /// Mean time between two polls of the watcher (the measurement's resolution).
    pub poll_interval: Duration,
    /// Transactions the counters never accounted for (stamped at the pipeline's end instead).
    pub unaccounted: usize,
    pub batches: u64,
    pub accounted: u64,
    pub written: u64,
}

impl LatencyRun {
    pub fn percentile(&self, p: f64) -> Duration {
        let n = self.latencies.len();
        if n == 0 {
            return Duration::ZERO;
        }
        self.latencies[(((n - 1) as f64) * p).round() as usize]
    }

    pub fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }

    /// Hand-overs per second actually achieved.
    pub fn offered_rate(&self) -> f64 {
        self.transactions as f64 / self.sending.as_secs_f64().max(1e-9)
    }

    /// Commits per second, first hand-over to last commit.
    pub fn throughput(&self) -> f64 {
        self.transactions as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `txs` through `pipeline::run` into `pool`'s (fresh) database, paced at `rate` or at
/// saturation, and measures each transaction's hand-over-to-commit latency.
pub async fn pipeline_latency(
    pool: &PgPool,
    txs: &[ChainTx],
    rate: Option<f64>,
    config: PipelineConfig,
) -> anyhow::Result<LatencyRun> {
    let base = Instant::now();
    let handed_over = stamps(txs.len());
    let committed = stamps(txs.len());
    let metrics = Arc::new(IndexerMetrics::default());
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_commits(metrics.clone(), committed.clone(), base, stop.clone());
    let source = MemorySource { txs, rate, base, handed_over: handed_over.clone() };
    let result = pipeline::run(pool.clone(), Ingest::default(), source, metrics.clone(), config).await;
    let ended = stamp(base);
    stop.store(true, Relaxed);
    let (polls, watched) = watcher.join().map_err(|_| anyhow::anyhow!("the commit watcher panicked"))?;
    result?;

    let mut unaccounted = 0;
    let mut latencies = Vec::with_capacity(txs.len());
    let (mut first_handed, mut last_handed, mut last_commit) = (u64::MAX, 0u64, 0u64);
    for (handed, committed) in handed_over.iter().zip(committed.iter()) {
        let handed = handed.load(Relaxed);
        let mut committed = committed.load(Relaxed);
        if committed == UNSET {
            unaccounted += 1;
            committed = ended;
        }
        first_handed = first_handed.min(handed);
        last_handed = last_handed.max(handed);
        last_commit = last_commit.max(committed);
        latencies.push(Duration::from_nanos(committed.saturating_sub(handed)));
    }
    latencies.sort();
    Ok(LatencyRun {
        transactions: txs.len(),
        rate,
        sending: Duration::from_nanos(last_handed.saturating_sub(first_handed)),
        elapsed: Duration::from_nanos(last_commit.saturating_sub(first_handed)),
        latencies,
        poll_interval: watched / polls.max(1) as u32,
        unaccounted,
        batches: metrics.batches_committed.load(Relaxed),
        accounted: accounted(&metrics),
        written: metrics.transactions_written.load(Relaxed),
    })
}
