//! Sending transactions and waiting for them: the [`Chain`] the session service's relay and the
//! cleanup bot send through. [`RpcChain`] talks JSON-RPC; the tests and benchmarks use a litesvm
//! implementation over the testkit (`vault-devkit`'s `litesvm_chain`).

use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use async_trait::async_trait;
use solana_commitment_config::CommitmentConfig;
use solana_hash::Hash;
use solana_instruction_error::InstructionError;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_signature::Signature;
use solana_transaction::Transaction;
use solana_transaction_error::TransactionError;

/// The chain took the transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Executed (a local chain that answers with the result).
    Landed,
    /// Accepted after a successful preflight; the indexer settles it.
    Submitted,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum ChainError {
    /// The transaction was refused (simulation or execution failed); it will not land.
    #[error("refused by the chain: {message}")]
    Refused { message: String, custom_code: Option<u32> },
    /// The chain could not be reached or did not answer; the transaction may or may not land.
    #[error("chain unavailable: {0}")]
    Unavailable(String),
}

impl ChainError {
    pub fn from_transaction_error(err: &TransactionError) -> Self {
        let custom_code = match err {
            TransactionError::InstructionError(_, InstructionError::Custom(code)) => Some(*code),
            _ => None,
        };
        let message = match crate::program_errors::vault_error(custom_code) {
            Some(e) => format!("{e:?} ({})", custom_code.unwrap_or_default()),
            None => format!("{err:?}"),
        };
        Self::Refused { message, custom_code }
    }
}

#[async_trait]
pub trait Chain: Send + Sync + 'static {
    /// A recent blockhash to sign with.
    async fn latest_blockhash(&self) -> Result<Hash, ChainError>;
    /// Sends a signed transaction.
    async fn send(&self, tx: &Transaction) -> Result<Sent, ChainError>;
    /// The owner program of an account (a mint's token program), None if it does not exist.
    async fn account_owner(&self, key: &Pubkey) -> Result<Option<Pubkey>, ChainError>;
    /// Waits until a transaction `send` answered `Submitted` for is confirmed: `Ok` when it
    /// executed, `Refused` when it landed failed, `Unavailable` when it did not land in time. A
    /// chain whose `send` answers `Landed` has nothing to wait for.
    async fn confirm(&self, _signature: &Signature) -> Result<(), ChainError> {
        Ok(())
    }
}

/// JSON-RPC, with preflight at the configured commitment.
pub struct RpcChain {
    client: RpcClient,
}

impl RpcChain {
    pub fn new(url: &str, commitment: CommitmentConfig) -> Self {
        Self { client: crate::rpc::client(url, Duration::from_secs(15), commitment) }
    }
}

fn rpc_error(e: solana_rpc_client::api::client_error::Error) -> ChainError {
    match e.get_transaction_error() {
        Some(tx_err) => ChainError::from_transaction_error(&tx_err),
        None => ChainError::Unavailable(e.to_string()),
    }
}

#[async_trait]
impl Chain for RpcChain {
    async fn latest_blockhash(&self) -> Result<Hash, ChainError> {
        self.client.get_latest_blockhash().await.map_err(rpc_error)
    }

    async fn send(&self, tx: &Transaction) -> Result<Sent, ChainError> {
        self.client.send_transaction(tx).await.map_err(rpc_error)?;
        Ok(Sent::Submitted)
    }

    async fn confirm(&self, signature: &Signature) -> Result<(), ChainError> {
        // A blockhash lives ~150 slots (about a minute); past that the transaction cannot land.
        match await_confirmed(&self.client, signature, Duration::from_secs(90)).await? {
            None => Ok(()),
            Some(e) => Err(ChainError::from_transaction_error(&e)),
        }
    }

    async fn account_owner(&self, key: &Pubkey) -> Result<Option<Pubkey>, ChainError> {
        let account =
            self.client.get_account_with_commitment(key, self.client.commitment()).await.map_err(rpc_error)?.value;
        Ok(account.map(|a| Pubkey::new_from_array(a.owner.to_bytes())))
    }
}

/// Polls until `signature` is confirmed: `None` when it executed, its error when it landed
/// failed; `Unavailable` when the node cannot be asked or it is not confirmed within `timeout`.
/// Shared by the relay's chain and the main job's scenario driver.
pub async fn await_confirmed(
    client: &RpcClient,
    signature: &Signature,
    timeout: Duration,
) -> Result<Option<TransactionError>, ChainError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let statuses = client
            .get_signature_statuses(&[*signature])
            .await
            .map_err(|e| ChainError::Unavailable(e.to_string()))?
            .value;
        if let Some(Some(status)) = statuses.into_iter().next() {
            if status.satisfies_commitment(CommitmentConfig::confirmed()) {
                return Ok(status.err);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ChainError::Unavailable(format!("{signature} was not confirmed within {timeout:?}")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
