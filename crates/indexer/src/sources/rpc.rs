//! The JSON-RPC source (solana-rpc-client), for chains without a gRPC endpoint such as a local
//! validator, and the backfill every source uses to close gaps: page `getSignaturesForAddress`
//! back from the newest signature to the stored cursor, fetch the transactions concurrently,
//! and hand them over oldest first.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use futures::stream::{self, StreamExt, TryStreamExt};
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client::rpc_client::GetConfirmedSignaturesForAddress2Config;
use solana_rpc_client_api::config::RpcTransactionConfig;
use solana_signature::Signature;
use solana_transaction_status_client_types::{
    option_serializer::OptionSerializer, EncodedConfirmedTransactionWithStatusMeta, TransactionConfirmationStatus,
    UiInstruction, UiTransactionEncoding,
};
use tokio::sync::mpsc;

use crate::chain_tx::{ChainTx, Commitment, RawInstruction, TxFailure};
use crate::sources::yellowstone::GapFiller;
use vault_chain::Backoff;

use crate::sources::{Cursor, TransactionSource};

/// One page of `getSignaturesForAddress` (the RPC maximum).
const PAGE: usize = 1_000;

#[derive(Clone, Debug)]
pub struct RpcConfig {
    pub url: String,
    pub commitment: Commitment,
    pub program: Pubkey,
    pub poll_interval: Duration,
    /// Transactions fetched at once.
    pub concurrency: usize,
}

impl RpcConfig {
    pub fn new(url: impl Into<String>, commitment: Commitment) -> Self {
        Self {
            url: url.into(),
            commitment,
            program: ephemeral_vault::ID,
            poll_interval: Duration::from_millis(400),
            concurrency: 8,
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
}

fn commitment_config(commitment: Commitment) -> CommitmentConfig {
    match commitment {
        Commitment::Confirmed => CommitmentConfig::confirmed(),
        Commitment::Finalized => CommitmentConfig::finalized(),
    }
}

impl RpcSource {
    pub fn new(config: RpcConfig) -> Self {
        let client = vault_chain::rpc::client(&config.url, Duration::from_secs(30), commitment_config(config.commitment));
        Self { config, client: Arc::new(client) }
    }

    /// Every signature of the program after `until` (exclusive) and before `before` (exclusive,
    /// `None` = newest), oldest first. `min_slot` stops paging once older slots are reached.
    pub async fn signatures_between(
        &self,
        until: Option<&str>,
        before: Option<Signature>,
        min_slot: Option<u64>,
    ) -> anyhow::Result<Vec<ProgramSignature>> {
        let until = until.map(Signature::from_str).transpose()?;
        let mut before = before;
        let mut newest_first = vec![];
        loop {
            let page = self
                .client
                .get_signatures_for_address_with_config(
                    &self.config.program,
                    GetConfirmedSignaturesForAddress2Config {
                        before,
                        until,
                        limit: Some(PAGE),
                        commitment: Some(commitment_config(self.config.commitment)),
                    },
                )
                .await?;
            let full = page.len() == PAGE;
            let mut reached_min = false;
            for status in &page {
                if min_slot.is_some_and(|min| status.slot < min) {
                    reached_min = true;
                    break;
                }
                newest_first.push(ProgramSignature {
                    signature: Signature::from_str(&status.signature)?,
                    slot: status.slot,
                    finalized: matches!(status.confirmation_status, Some(TransactionConfirmationStatus::Finalized)),
                });
            }
            if !full || reached_min {
                break;
            }
            before = newest_first.last().map(|s| s.signature);
        }
        newest_first.reverse();
        Ok(newest_first)
    }

    pub async fn fetch(&self, signature: &Signature) -> anyhow::Result<ChainTx> {
        let encoded = self
            .client
            .get_transaction_with_config(
                signature,
                RpcTransactionConfig {
                    encoding: Some(UiTransactionEncoding::Base64),
                    commitment: Some(commitment_config(self.config.commitment)),
                    max_supported_transaction_version: Some(0),
                },
            )
            .await?;
        chain_tx_from_rpc(&encoded, self.config.commitment)
    }

    /// Fetches one listed transaction, finalized when the listing said so.
    async fn fetch_listed(&self, listed: &ProgramSignature) -> anyhow::Result<ChainTx> {
        let mut tx = self.fetch(&listed.signature).await?;
        if listed.finalized {
            tx.commitment = Commitment::Finalized;
        }
        Ok(tx)
    }

    /// Fetches `signatures` concurrently and sends them to `out` in the given order.
    pub async fn fetch_in_order(
        &self,
        signatures: &[ProgramSignature],
        out: &mpsc::Sender<ChainTx>,
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
}

impl TransactionSource for RpcSource {
    fn name(&self) -> &'static str {
        match self.config.commitment {
            Commitment::Confirmed => "rpc",
            Commitment::Finalized => "rpc-finalized",
        }
    }

    async fn stream(&mut self, resume: Option<Cursor>, out: mpsc::Sender<ChainTx>) -> anyhow::Result<()> {
        let mut newest = resume.and_then(|c| c.signature);
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let mut ticker = tokio::time::interval(self.config.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if out.is_closed() {
                return Ok(());
            }
            let poll = async {
                let signatures = self.signatures_between(newest.as_deref(), None, None).await?;
                self.fetch_in_order(&signatures, &out, |_| {}).await?;
                anyhow::Ok(signatures.last().map(|s| s.signature.to_string()))
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
        out: &mpsc::Sender<ChainTx>,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send {
        let (source, from, out) = (self.clone(), from.clone(), out.clone());
        async move {
            let signatures = source.signatures_between(from.signature.as_deref(), None, Some(from.slot)).await?;
            let in_gap: Vec<_> = signatures.into_iter().filter(|s| s.slot < to_slot).collect();
            tracing::info!(count = in_gap.len(), from = from.slot, to = to_slot, "backfilling gap from RPC");
            source.fetch_in_order(&in_gap, &out, |_| {}).await?;
            Ok(())
        }
    }
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
    let meta = encoded
        .transaction
        .meta
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("transaction without status meta"))?;
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
