//! The JSON-RPC source (solana-rpc-client), for chains without a gRPC endpoint such as a local
//! validator, and the backfill every source uses to close gaps: page `getSignaturesForAddress`
//! back from the newest signature to the stored cursor, fetch the transactions concurrently,
//! and hand them over oldest first.
//!
//! A transaction the node will not send in a form this build reads (a version newer than
//! [`MAX_SUPPORTED_TRANSACTION_VERSION`], a runtime error variant newer than the client crates,
//! bytes that do not parse) is asked for again a bounded number of times
//! ([`RpcConfig::fetch_attempts`]) and then handed over as [`Unreadable`], with the node's raw
//! answer, so the writer records it in `indexer_skipped` and the cursor moves on. Only a node
//! that cannot answer at all (transport errors, "not available yet" codes) fails the poll.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use futures::stream::{self, StreamExt, TryStreamExt};
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client::rpc_client::GetConfirmedSignaturesForAddress2Config;
use solana_rpc_client_api::client_error::ErrorKind as ClientErrorKind;
use solana_rpc_client_api::custom_error as codes;
use solana_rpc_client_api::request::{RpcError, RpcRequest};
use solana_signature::Signature;
use solana_transaction_status_client_types::{
    option_serializer::OptionSerializer, EncodedConfirmedTransactionWithStatusMeta, TransactionConfirmationStatus,
    UiInstruction, UiTransactionError,
};
use tokio::sync::mpsc;

use crate::chain_tx::{ChainTx, Commitment, RawInstruction, TxFailure};
use crate::metrics::IndexerMetrics;
use crate::sources::yellowstone::GapFiller;
use vault_chain::Backoff;

use crate::sources::{Cursor, RawFormat, SourceItem, TransactionSource, Unreadable, UnreadableReason};

/// The newest transaction version the client crates decode: solana-message 4.6 knows legacy,
/// v0 and v1 messages (`VersionedMessage::V1`), so `getTransaction` asks for up to v1. A node
/// holding a newer one answers -32015, and that transaction is recorded as unreadable.
pub const MAX_SUPPORTED_TRANSACTION_VERSION: u8 = 1;

/// JSON-RPC errors that say the node cannot answer *now* (unhealthy, not caught up, storage
/// unreachable): the poll fails and is retried, nothing is skipped.
const TRANSIENT_CODES: [i64; 8] = [
    codes::JSON_RPC_SERVER_ERROR_BLOCK_NOT_AVAILABLE,
    codes::JSON_RPC_SERVER_ERROR_NODE_UNHEALTHY,
    codes::JSON_RPC_SERVER_ERROR_NO_SNAPSHOT,
    codes::JSON_RPC_SERVER_ERROR_TRANSACTION_HISTORY_NOT_AVAILABLE,
    codes::JSON_RPC_SERVER_ERROR_BLOCK_STATUS_NOT_AVAILABLE_YET,
    codes::JSON_RPC_SERVER_ERROR_MIN_CONTEXT_SLOT_NOT_REACHED,
    codes::JSON_RPC_SERVER_ERROR_LONG_TERM_STORAGE_UNREACHABLE,
    -32603, // internal error
];

/// One page of `getSignaturesForAddress` (the RPC maximum).
const PAGE: usize = 1_000;

/// Where a listing stops: the stored cursor's signature (exclusive) or, below it, its slot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListingStop {
    pub signature: Option<Signature>,
    /// Entries in slots below this one are never listed (0: down to the first transaction).
    pub slot: u64,
}

impl ListingStop {
    pub fn after(cursor: Option<&Cursor>) -> anyhow::Result<Self> {
        Ok(match cursor {
            None => Self::default(),
            Some(c) => Self { signature: c.signature.as_deref().map(Signature::from_str).transpose()?, slot: c.slot },
        })
    }

    fn reached_by(&self, listed: &ProgramSignature) -> bool {
        Some(listed.signature) == self.signature || listed.slot < self.slot
    }
}

/// Why a listing did not reach its stop.
#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    /// The node's history starts above the stop: it cannot list the slots in between.
    #[error("gap: the node's oldest available slot is {first_available}, above the cursor's slot {from_slot}")]
    Gap { from_slot: u64, first_available: u64 },
    /// The answer ended before the stop although the node has more.
    #[error("listing stopped short: {0}")]
    StoppedShort(String),
    #[error(transparent)]
    Rpc(#[from] anyhow::Error),
}

#[derive(Clone, Debug)]
pub struct RpcConfig {
    pub url: String,
    pub commitment: Commitment,
    pub program: Pubkey,
    pub poll_interval: Duration,
    /// Transactions fetched at once.
    pub concurrency: usize,
    /// How often one transaction is asked for before an unreadable answer is final.
    pub fetch_attempts: u32,
}

impl RpcConfig {
    pub fn new(url: impl Into<String>, commitment: Commitment) -> Self {
        Self {
            url: url.into(),
            commitment,
            program: ephemeral_vault::ID,
            poll_interval: Duration::from_millis(400),
            concurrency: 8,
            fetch_attempts: 3,
        }
    }
}

/// One of the program's transactions as getSignaturesForAddress lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSignature {
    pub signature: Signature,
    pub slot: u64,
    /// The node already reports it finalized: its rows can say so even when this source reads
    /// at `confirmed` (a backfill of old history is then finalized at once).
    pub finalized: bool,
}

#[derive(Clone)]
pub struct RpcSource {
    config: RpcConfig,
    client: Arc<RpcClient>,
    /// Where a gap this node cannot list is filled from (an archive node).
    fallback: Option<Box<RpcSource>>,
    metrics: Option<Arc<IndexerMetrics>>,
}

pub(crate) fn commitment_config(commitment: Commitment) -> CommitmentConfig {
    match commitment {
        Commitment::Confirmed => CommitmentConfig::confirmed(),
        Commitment::Finalized => CommitmentConfig::finalized(),
    }
}

impl RpcSource {
    pub fn new(config: RpcConfig) -> Self {
        let client =
            vault_chain::rpc::client(&config.url, Duration::from_secs(30), commitment_config(config.commitment));
        Self { config, client: Arc::new(client), fallback: None, metrics: None }
    }

    /// Fills gaps this node cannot list (its ledger starts above the cursor) from `fallback`.
    pub fn with_fallback(mut self, fallback: RpcSource) -> Self {
        self.fallback = Some(Box::new(fallback));
        self
    }

    /// Counts detected gaps in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<IndexerMetrics>) -> Self {
        if let Some(fallback) = self.fallback.take() {
            self.fallback = Some(Box::new(fallback.with_metrics(metrics.clone())));
        }
        self.metrics = Some(metrics);
        self
    }

    /// The signatures newer than `stop` (see [`RpcSource::list`]), and the node to fetch them
    /// from: this one, or the fallback when this one has a gap. A gap is never skipped: without a
    /// fallback it is an error, logged and counted, and the poll is retried.
    pub async fn list_or_fallback(&self, stop: &ListingStop) -> anyhow::Result<(RpcSource, Vec<ProgramSignature>)> {
        match self.list(stop, None).await {
            Ok(listed) => Ok((self.clone(), listed)),
            Err(ListingError::Gap { from_slot, first_available }) => {
                if let Some(metrics) = &self.metrics {
                    metrics.gaps_detected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                let Some(fallback) = self.fallback.as_deref() else {
                    tracing::error!(url = %self.config.url, from_slot, first_available,
                        "gap: the node's ledger starts above the cursor and no fallback RPC is configured");
                    anyhow::bail!("gap from slot {from_slot} to {first_available}: no fallback RPC configured");
                };
                tracing::error!(url = %self.config.url, from_slot, first_available, fallback = %fallback.config.url,
                    "gap: the node's ledger starts above the cursor; listing and fetching from the fallback RPC");
                let listed = fallback.list(stop, None).await?;
                Ok((fallback.clone(), listed))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every signature of the program after `until` (exclusive) and before `before` (exclusive,
    /// `None` = newest), oldest first, not below `min_slot`. See [`RpcSource::list`].
    pub async fn signatures_between(
        &self,
        until: Option<&str>,
        before: Option<Signature>,
        min_slot: Option<u64>,
    ) -> anyhow::Result<Vec<ProgramSignature>> {
        let stop = ListingStop { signature: until.map(Signature::from_str).transpose()?, slot: min_slot.unwrap_or(0) };
        Ok(self.list(&stop, before).await?)
    }

    /// One page of `getSignaturesForAddress`, newest first.
    async fn page(
        &self,
        before: Option<Signature>,
        until: Option<Signature>,
        limit: usize,
    ) -> anyhow::Result<Vec<ProgramSignature>> {
        let page = self
            .client
            .get_signatures_for_address_with_config(
                &self.config.program,
                GetConfirmedSignaturesForAddress2Config {
                    before,
                    until,
                    limit: Some(limit),
                    commitment: Some(commitment_config(self.config.commitment)),
                },
            )
            .await?;
        page.iter()
            .map(|status| {
                Ok(ProgramSignature {
                    signature: Signature::from_str(&status.signature)?,
                    slot: status.slot,
                    finalized: matches!(status.confirmation_status, Some(TransactionConfirmationStatus::Finalized)),
                })
            })
            .collect()
    }

    /// Every signature of the program newer than `stop`, below `before` (`None`: the newest),
    /// oldest first.
    ///
    /// A page shorter than the limit is not the end: nodes and providers cut pages mid-range (a
    /// long-term store timing out, a provider's cap), so paging goes on until the listing
    /// reaches `stop` - its signature, or a slot below its slot. A node that ignores `until`
    /// (it does not know the signature) is bounded the same way: by the stop's slot, never the
    /// whole history. An empty page before that is checked with one probe of a single entry
    /// without `until`: if the node has older entries the answer stopped short (an error, the
    /// poll is retried); if it has none and its oldest available slot is above the stop's slot,
    /// that is a [`ListingError::Gap`]: the node cannot list what is missing.
    pub async fn list(
        &self,
        stop: &ListingStop,
        before: Option<Signature>,
    ) -> Result<Vec<ProgramSignature>, ListingError> {
        let mut before = before;
        let mut newest_first: Vec<ProgramSignature> = vec![];
        loop {
            let page = self.page(before, stop.signature, PAGE).await?;
            let mut reached = false;
            for listed in &page {
                if stop.reached_by(listed) {
                    reached = true;
                    break;
                }
                newest_first.push(listed.clone());
            }
            if reached {
                break;
            }
            if page.is_empty() {
                if stop.signature.is_some() {
                    // With `until` honoured the listing ends empty right above the stop; one
                    // entry below, without `until`, says whether that is where it ended.
                    match self.page(before, None, 1).await?.first() {
                        Some(next) if stop.reached_by(next) => break,
                        Some(next) => {
                            return Err(ListingError::StoppedShort(format!(
                                "getSignaturesForAddress answered nothing below {before:?} although {} (slot {}) is there, \
                                 above the cursor at slot {}",
                                next.signature, next.slot, stop.slot
                            )))
                        }
                        None => {}
                    }
                } else if stop.slot == 0 {
                    break; // the program's first transaction
                }
                // The node has nothing older, and the stop is not reached.
                let first_available = self.client.get_first_available_block().await.map_err(anyhow::Error::from)?;
                if first_available > stop.slot {
                    return Err(ListingError::Gap { from_slot: stop.slot, first_available });
                }
                if stop.signature.is_some() {
                    return Err(ListingError::StoppedShort(format!(
                        "the listing ends before the cursor (slot {}) although the node has slots from {first_available}",
                        stop.slot
                    )));
                }
                break;
            }
            before = newest_first.last().map(|s| s.signature).or(before);
        }
        newest_first.reverse();
        Ok(newest_first)
    }

    /// One transaction, readable: an unreadable answer is an error here (the tests and the
    /// backfill's callers that need the transaction itself use this).
    pub async fn fetch(&self, signature: &Signature) -> anyhow::Result<ChainTx> {
        match self.get_transaction(signature, 0).await? {
            SourceItem::Tx(tx) => Ok(tx),
            SourceItem::Unreadable(u) => {
                anyhow::bail!("{signature} is unreadable ({}): {}", u.reason.as_str(), u.detail)
            }
        }
    }

    /// One transaction by signature, readable or not (the slot of an unreadable one is the
    /// one its answer carries, else 0): for `reprocess`.
    pub async fn fetch_item(&self, signature: &Signature) -> anyhow::Result<SourceItem> {
        self.get_transaction(signature, 0).await
    }

    /// `getTransaction` once, keeping the node's raw answer: a readable transaction, or an
    /// [`Unreadable`] holding what the node sent. Err only when the node could not answer.
    async fn get_transaction(&self, signature: &Signature, slot: u64) -> anyhow::Result<SourceItem> {
        let commitment = match self.config.commitment {
            Commitment::Confirmed => "confirmed",
            Commitment::Finalized => "finalized",
        };
        let params = serde_json::json!([
            signature.to_string(),
            { "encoding": "base64", "commitment": commitment, "maxSupportedTransactionVersion": MAX_SUPPORTED_TRANSACTION_VERSION },
        ]);
        let unreadable = |reason, detail: String, raw| {
            SourceItem::Unreadable(Unreadable {
                signature: signature.to_string(),
                slot,
                reason,
                detail,
                format: RawFormat::RpcJson,
                raw,
            })
        };
        let result = match self.client.send::<serde_json::Value>(RpcRequest::GetTransaction, params).await {
            Ok(result) => result,
            Err(e) => match e.kind() {
                ClientErrorKind::RpcError(RpcError::RpcResponseError { code, message, .. })
                    if !TRANSIENT_CODES.contains(code) =>
                {
                    let reason = if *code == codes::JSON_RPC_SERVER_ERROR_UNSUPPORTED_TRANSACTION_VERSION {
                        UnreadableReason::UnsupportedVersion
                    } else {
                        UnreadableReason::RpcError
                    };
                    let raw = serde_json::json!({ "error": { "code": code, "message": message } });
                    return Ok(unreadable(reason, format!("getTransaction error {code}: {message}"), raw));
                }
                _ => return Err(anyhow::Error::new(e).context(format!("getTransaction {signature}"))),
            },
        };
        if result.is_null() {
            // Listed but not served yet (another node behind a load balancer): ask again later.
            anyhow::bail!("getTransaction {signature}: not found at {commitment}");
        }
        let raw = serde_json::json!({ "result": result });
        Ok(match read_get_transaction(&raw, self.config.commitment) {
            Ok(tx) => SourceItem::Tx(tx),
            Err((reason, detail)) => unreadable(reason, detail, raw),
        })
    }

    /// Fetches one listed transaction, finalized when the listing said so; an unreadable answer
    /// is asked for again up to `fetch_attempts` times, then handed over as unreadable.
    async fn fetch_listed(&self, listed: &ProgramSignature) -> anyhow::Result<SourceItem> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            match self.get_transaction(&listed.signature, listed.slot).await? {
                SourceItem::Tx(mut tx) => {
                    if listed.finalized {
                        tx.commitment = Commitment::Finalized;
                    }
                    return Ok(SourceItem::Tx(tx));
                }
                SourceItem::Unreadable(mut u) if attempt >= self.config.fetch_attempts.max(1) => {
                    u.slot = listed.slot;
                    tracing::error!(signature = %u.signature, slot = u.slot, reason = u.reason.as_str(), detail = %u.detail,
                        attempts = attempt, "transaction unreadable: recorded in indexer_skipped and streamed past");
                    return Ok(SourceItem::Unreadable(u));
                }
                SourceItem::Unreadable(_) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
            }
        }
    }

    /// Fetches `signatures` concurrently and sends them to `out` in the given order.
    pub async fn fetch_in_order(
        &self,
        signatures: &[ProgramSignature],
        out: &mpsc::Sender<SourceItem>,
        progress: impl Fn(usize),
    ) -> anyhow::Result<usize> {
        // Each fetch owns what it needs (the source is an Arc'd client and its settings), so the
        // stream's futures borrow nothing and the whole future is provably Send.
        let owned = |listed: &ProgramSignature| {
            let (source, listed) = (self.clone(), listed.clone());
            async move { source.fetch_listed(&listed).await }
        };
        let mut fetched = stream::iter(signatures.iter().map(owned)).buffered(self.config.concurrency.max(1));
        let mut sent = 0;
        while let Some(tx) = fetched.try_next().await? {
            if out.send(tx).await.is_err() {
                break;
            }
            sent += 1;
            progress(sent);
        }
        Ok(sent)
    }

    pub async fn current_slot(&self) -> anyhow::Result<u64> {
        Ok(self.client.get_slot().await?)
    }

    /// Reads the chain's tip (`getSlot`) every `every` into `metrics.chain_tip_slot`, so the
    /// lag metric grows when a source stalls, whatever the source says. Runs until dropped.
    pub async fn follow_tip(self, metrics: Arc<IndexerMetrics>, every: Duration) {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            match self.current_slot().await {
                Ok(slot) => {
                    metrics.chain_tip_slot.fetch_max(slot, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => tracing::debug!(error = %e, "getSlot failed"),
            }
        }
    }
}

impl TransactionSource for RpcSource {
    fn name(&self) -> &'static str {
        match self.config.commitment {
            Commitment::Confirmed => "rpc",
            Commitment::Finalized => "rpc-finalized",
        }
    }

    async fn stream(&mut self, resume: Option<Cursor>, out: mpsc::Sender<SourceItem>) -> anyhow::Result<()> {
        let mut newest = resume;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let mut ticker = tokio::time::interval(self.config.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if out.is_closed() {
                return Ok(());
            }
            let poll = async {
                let (node, signatures) = self.list_or_fallback(&ListingStop::after(newest.as_ref())?).await?;
                node.fetch_in_order(&signatures, &out, |_| {}).await?;
                anyhow::Ok(signatures.last().map(|s| Cursor { slot: s.slot, signature: Some(s.signature.to_string()) }))
            };
            match poll.await {
                Ok(Some(latest)) => {
                    newest = Some(latest);
                    backoff.reset();
                }
                Ok(None) => backoff.reset(),
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, ?delay, "rpc poll failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

impl GapFiller for RpcSource {
    fn fill(
        &mut self,
        from: &Cursor,
        to_slot: u64,
        out: &mpsc::Sender<SourceItem>,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send {
        let (source, from, out) = (self.clone(), from.clone(), out.clone());
        async move {
            let (node, signatures) = source.list_or_fallback(&ListingStop::after(Some(&from))?).await?;
            let in_gap: Vec<_> = signatures.into_iter().filter(|s| s.slot < to_slot).collect();
            tracing::info!(count = in_gap.len(), from = from.slot, to = to_slot, "backfilling gap from RPC");
            node.fetch_in_order(&in_gap, &out, |_| {}).await?;
            Ok(())
        }
    }
}

/// Reads a stored or fresh `getTransaction` answer (`{"result": ...}` or `{"error": ...}`, as
/// [`Unreadable::raw`] holds it): the transaction, or why it cannot be read.
pub fn read_get_transaction(
    raw: &serde_json::Value,
    commitment: Commitment,
) -> Result<ChainTx, (UnreadableReason, String)> {
    if let Some(error) = raw.get("error") {
        let code = error.get("code").and_then(|c| c.as_i64());
        let reason = if code == Some(codes::JSON_RPC_SERVER_ERROR_UNSUPPORTED_TRANSACTION_VERSION) {
            UnreadableReason::UnsupportedVersion
        } else {
            UnreadableReason::RpcError
        };
        return Err((reason, format!("getTransaction error: {error}")));
    }
    let result = raw.get("result").cloned().unwrap_or_default();
    let encoded: EncodedConfirmedTransactionWithStatusMeta = serde_json::from_value(result.clone()).map_err(|e| {
        // The status error is the part that grows with every runtime release: name it.
        let err = &result["meta"]["err"];
        let unknown_error = !err.is_null() && serde_json::from_value::<UiTransactionError>(err.clone()).is_err();
        match unknown_error {
            true => (UnreadableReason::UnknownError, format!("status error {err} unknown to this build: {e}")),
            false => (UnreadableReason::Malformed, format!("not a getTransaction answer: {e}")),
        }
    })?;
    chain_tx_from_rpc(&encoded, commitment).map_err(|e| (UnreadableReason::Malformed, e.to_string()))
}

/// Decodes `getTransaction` (base64 encoding) into a [`ChainTx`].
pub fn chain_tx_from_rpc(
    encoded: &EncodedConfirmedTransactionWithStatusMeta,
    commitment: Commitment,
) -> anyhow::Result<ChainTx> {
    let transaction = encoded
        .transaction
        .transaction
        .decode()
        .ok_or_else(|| anyhow::anyhow!("transaction is not in a binary encoding"))?;
    let meta = encoded.transaction.meta.as_ref().ok_or_else(|| anyhow::anyhow!("transaction without status meta"))?;
    let message = &transaction.message;
    let mut account_keys: Vec<Pubkey> = message.static_account_keys().to_vec();
    if let OptionSerializer::Some(loaded) = &meta.loaded_addresses {
        for key in loaded.writable.iter().chain(&loaded.readonly) {
            account_keys.push(Pubkey::from_str(key)?);
        }
    }
    let instructions: Vec<RawInstruction> = message
        .instructions()
        .iter()
        .map(|ix| RawInstruction {
            program_id_index: ix.program_id_index,
            accounts: ix.accounts.clone(),
            data: ix.data.clone(),
            stack_height: Some(1),
        })
        .collect();
    let mut inner_instructions = vec![Vec::new(); instructions.len()];
    if let OptionSerializer::Some(groups) = &meta.inner_instructions {
        for group in groups {
            let slot = inner_instructions
                .get_mut(usize::from(group.index))
                .ok_or_else(|| anyhow::anyhow!("inner instructions for missing index {}", group.index))?;
            for ix in &group.instructions {
                let UiInstruction::Compiled(ix) = ix else {
                    anyhow::bail!("parsed inner instruction in a base64 response");
                };
                slot.push(RawInstruction {
                    program_id_index: ix.program_id_index,
                    accounts: ix.accounts.clone(),
                    data: bs58::decode(&ix.data).into_vec()?,
                    stack_height: ix.stack_height,
                });
            }
        }
    }
    let failure = meta.err.clone().map(|err| {
        let err: solana_transaction_error::TransactionError = err.into();
        TxFailure::from_transaction_error(&err)
    });
    let logs = match &meta.log_messages {
        OptionSerializer::Some(logs) => logs.clone(),
        _ => vec![],
    };
    Ok(ChainTx {
        signature: transaction
            .signatures
            .first()
            .map(|s| s.to_string())
            .ok_or_else(|| anyhow::anyhow!("transaction without a signature"))?,
        slot: encoded.slot,
        index_in_block: encoded.transaction_index.map(u64::from),
        block_time: encoded.block_time,
        account_keys,
        instructions,
        inner_instructions,
        failure,
        logs,
        commitment,
    })
}
