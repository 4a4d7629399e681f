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

/// What a source hands to the writer: a transaction, or one it could not read.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceItem {
    Tx(ChainTx),
    Unreadable(Unreadable),
}

impl From<ChainTx> for SourceItem {
    fn from(tx: ChainTx) -> Self {
        SourceItem::Tx(tx)
    }
}

impl From<Unreadable> for SourceItem {
    fn from(unreadable: Unreadable) -> Self {
        SourceItem::Unreadable(unreadable)
    }
}

impl SourceItem {
    pub fn slot(&self) -> u64 {
        match self {
            SourceItem::Tx(tx) => tx.slot,
            SourceItem::Unreadable(u) => u.slot,
        }
    }
}

/// Why a source could not turn what it received into a [`ChainTx`]. The word is the `kind`
/// column of `indexer_skipped` and the `reason` label of `vault_indexer_skipped_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UnreadableReason {
    /// The node refused to send it: its version is newer than the one requested (-32015).
    UnsupportedVersion,
    /// Its status carries a runtime error (an enum variant) the client crates do not know.
    UnknownError,
    /// The bytes or the JSON do not parse as a transaction.
    Malformed,
    /// The node answered with another JSON-RPC error, every time it was asked.
    RpcError,
}

impl UnreadableReason {
    pub fn as_str(self) -> &'static str {
        match self {
            UnreadableReason::UnsupportedVersion => "unsupported_version",
            UnreadableReason::UnknownError => "unknown_error",
            UnreadableReason::Malformed => "malformed",
            UnreadableReason::RpcError => "rpc_error",
        }
    }
}

/// How [`Unreadable::raw`] is encoded, so `vault-indexer reprocess` can read it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawFormat {
    /// The `getTransaction` answer as JSON (`{"result": ...}` or `{"error": ...}`).
    RpcJson,
    /// A Yellowstone `SubscribeUpdateTransaction`, protobuf bytes in base64 (`{"protobuf": ...}`).
    GrpcProtobuf,
}

impl RawFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            RawFormat::RpcJson => "rpc_json",
            RawFormat::GrpcProtobuf => "grpc_protobuf",
        }
    }
}

/// A transaction of the program a source could not fetch or convert (after bounded retries):
/// recorded in `indexer_skipped` with what the node sent, and streamed past. Never a reason to
/// stop: one unreadable transaction must not hold the cursor back.
#[derive(Clone, Debug, PartialEq)]
pub struct Unreadable {
    pub signature: String,
    pub slot: u64,
    pub reason: UnreadableReason,
    /// The error in words, for `indexer_skipped.reason` and the log.
    pub detail: String,
    pub format: RawFormat,
    /// Enough to read it again later (see [`RawFormat`]).
    pub raw: serde_json::Value,
}

/// A stream of the program's transactions.
#[allow(async_fn_in_trait)]
pub trait TransactionSource {
    /// A short name for logs, metrics and the cursor row ("yellowstone", "rpc").
    fn name(&self) -> &'static str;

    /// Streams transactions from `resume` on into `out` until `out` closes or a fatal error.
    /// Transient failures (disconnects, timeouts) are retried inside, with backoff; what cannot
    /// be read is sent as [`SourceItem::Unreadable`] and streamed past.
    async fn stream(&mut self, resume: Option<Cursor>, out: mpsc::Sender<SourceItem>) -> anyhow::Result<()>;
}
