//! Prometheus metrics of the indexer, served as text on an HTTP port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// What this process does, for `vault_indexer_role` (see [`crate::writer_lock`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not yet decided (a command without roles, or before the lock is tried).
    Starting = 0,
    Standby = 1,
    Writer = 2,
}

#[derive(Debug, Default)]
pub struct IndexerMetrics {
    /// A [`Role`] as its number.
    pub role: AtomicU64,
    pub transactions_seen: AtomicU64,
    pub transactions_written: AtomicU64,
    pub transactions_skipped: AtomicU64,
    pub transactions_parked: AtomicU64,
    pub transactions_ignored: AtomicU64,
    pub batches_committed: AtomicU64,
    pub write_errors: AtomicU64,
    /// Newest slot whose rows are committed.
    pub current_slot: AtomicU64,
    /// Newest slot received from the source.
    pub source_slot: AtomicU64,
    /// Times the gRPC stream carried nothing for the silence timeout and was resubscribed.
    pub stream_stalls: AtomicU64,
    /// The chain's tip, read independently of the stream (getSlot on the RPC node).
    pub chain_tip_slot: AtomicU64,
    /// Gaps found: a node whose ledger starts above the cursor.
    pub gaps_detected: AtomicU64,
    /// Sessions written from their vault account's state (the indexer's history began after
    /// their creation).
    pub sessions_bootstrapped: AtomicU64,
    /// Transactions recorded in indexer_skipped, by reason (`undecodable` for the decoder's,
    /// the source's [`UnreadableReason`](crate::sources::UnreadableReason) words otherwise).
    skipped_by_reason: Mutex<BTreeMap<&'static str, u64>>,
}

impl IndexerMetrics {
    /// Counts `n` transactions recorded in indexer_skipped for `reason`.
    pub fn count_skipped(&self, reason: &'static str, n: u64) {
        if n > 0 {
            *self.skipped_by_reason.lock().unwrap_or_else(|e| e.into_inner()).entry(reason).or_default() += n;
        }
    }

    /// How many were recorded in indexer_skipped for `reason`.
    pub fn skipped(&self, reason: &str) -> u64 {
        self.skipped_by_reason.lock().unwrap_or_else(|e| e.into_inner()).get(reason).copied().unwrap_or(0)
    }

    pub fn render(&self) -> String {
        let current = self.current_slot.load(Relaxed);
        let source = self.source_slot.load(Relaxed);
        let tip = self.chain_tip_slot.load(Relaxed);
        let counters = [
            ("vault_indexer_transactions_seen_total", "Transactions received from the source", &self.transactions_seen),
            (
                "vault_indexer_transactions_written_total",
                "Transactions whose rows were committed",
                &self.transactions_written,
            ),
            (
                "vault_indexer_transactions_skipped_total",
                "Transactions naming the program that could not be decoded",
                &self.transactions_skipped,
            ),
            (
                "vault_indexer_transactions_parked_total",
                "Transactions waiting for their session to be indexed",
                &self.transactions_parked,
            ),
            (
                "vault_indexer_transactions_ignored_total",
                "Transactions without a vault action",
                &self.transactions_ignored,
            ),
            ("vault_indexer_batches_total", "Batches committed", &self.batches_committed),
            ("vault_indexer_write_errors_total", "Batch writes that failed and were retried", &self.write_errors),
            (
                "vault_indexer_stream_stalls_total",
                "gRPC streams that carried nothing for the silence timeout and were resubscribed",
                &self.stream_stalls,
            ),
            (
                "vault_indexer_sessions_bootstrapped_total",
                "Sessions written from their vault account's state, their creation predating the indexer's history",
                &self.sessions_bootstrapped,
            ),
            (
                "vault_indexer_gaps_total",
                "Gaps found: an RPC node whose ledger starts above the cursor",
                &self.gaps_detected,
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in counters {
            out += &format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n", value.load(Relaxed));
        }
        let role = self.role.load(Relaxed);
        let name = "vault_indexer_role";
        out += &format!("# HELP {name} This process's role: the writer, or a standby waiting for the writer lock\n# TYPE {name} gauge\n");
        for (word, value) in [("writer", Role::Writer), ("standby", Role::Standby)] {
            out += &format!("{name}{{role=\"{word}\"}} {}\n", u64::from(role == value as u64));
        }
        let name = "vault_indexer_skipped_total";
        out += &format!("# HELP {name} Transactions recorded in indexer_skipped, by reason\n# TYPE {name} counter\n");
        for (reason, n) in self.skipped_by_reason.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            out += &format!("{name}{{reason=\"{reason}\"}} {n}\n");
        }
        for (name, help, value) in [
            ("vault_indexer_current_slot", "Newest slot whose rows are committed", current),
            ("vault_indexer_source_slot", "Newest slot received from the source", source),
            ("vault_indexer_chain_tip_slot", "The chain's tip, read independently of the source (0: unknown)", tip),
            (
                "vault_indexer_lag_slots",
                "Slots between the chain's tip (or the newest slot received, if newer) and the newest committed",
                source.max(tip).saturating_sub(current),
            ),
        ] {
            out += &format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n");
        }
        out
    }

    /// Serves `GET /metrics` on `addr` until the task is dropped.
    pub async fn serve(self: Arc<Self>, addr: SocketAddr) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = self.clone();
                async move { metrics.render() }
            }),
        );
        let handle = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        });
        Ok((bound, handle))
    }
}
