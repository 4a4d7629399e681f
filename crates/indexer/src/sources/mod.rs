//! Where transactions come from. Every source turns its wire format into [`ChainTx`] and pushes
//! it into a bounded channel with `send().await`: when the writer falls behind the source waits,
//! it never drops an update. Sources reconnect by themselves (capped exponential backoff with
//! jitter) and resume from the cursor the writer last committed.

pub mod rpc;
pub mod yellowstone;



use tokio::sync::mpsc;

use crate::chain_tx::ChainTx;

/// Where a source resumes: the slot (and, for RPC, the signature) of the newest transaction
/// whose rows are committed. Sources replay from this slot inclusive; rows are idempotent, so a
/// replayed transaction changes nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub slot: u64,
    pub signature: Option<String>,
}

/// A stream of the program's transactions.
#[allow(async_fn_in_trait)]
pub trait TransactionSource {
    /// A short name for logs, metrics and the cursor row ("yellowstone", "rpc").
    fn name(&self) -> &'static str;

    /// Streams transactions from `resume` on into `out` until `out` closes or a fatal error.
    /// Transient failures (disconnects, timeouts) are retried inside, with backoff.
    async fn stream(&mut self, resume: Option<Cursor>, out: mpsc::Sender<ChainTx>) -> anyhow::Result<()>;
}
