//! Where the scenario's transactions go. [`RpcScenarioChain`] is a real node (the local
//! validator); the tests also run the scenario on the real program in litesvm, whose clock they
//! can move instead of waiting for it.

use std::time::Duration;

use anchor_lang::prelude::{Clock, Pubkey};
use anyhow::{bail, Context};
use async_trait::async_trait;
use solana_commitment_config::CommitmentConfig;
use solana_hash::Hash;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::config::RpcSendTransactionConfig;
use solana_signature::Signature;
use solana_transaction::Transaction;
use solana_transaction_error::TransactionError;

use vault_chain::await_confirmed;

const CLOCK_SYSVAR: Pubkey = anchor_lang::pubkey!("SysvarC1ock11111111111111111111111111111111");

#[async_trait]
pub trait ScenarioChain: Send + Sync {
    async fn latest_blockhash(&self) -> anyhow::Result<Hash>;
    /// Sends a signed transaction without a preflight check (so a transaction the program
    /// refuses still lands, failed, as a misbehaving client's would) and waits until it is
    /// confirmed. `Ok(None)` when it executed, `Ok(Some(error))` when it landed and failed.
    async fn execute(&self, tx: &Transaction) -> anyhow::Result<Option<TransactionError>>;
    /// New lamports for `to` (the local chain's faucet).
    async fn airdrop(&self, to: &Pubkey, lamports: u64) -> anyhow::Result<()>;
    /// The chain's clock: what the program compares a session's expiry against.
    async fn unix_time(&self) -> anyhow::Result<i64>;
    /// Returns once the chain's clock has reached `unix_time`.
    async fn wait_until(&self, unix_time: i64) -> anyhow::Result<()>;
    async fn account_exists(&self, key: &Pubkey) -> anyhow::Result<bool>;
}

/// A node over JSON-RPC, everything at `confirmed`.
pub struct RpcScenarioChain {
    client: RpcClient,
    /// How long a sent transaction may take to be confirmed before the scenario gives up.
    confirm_timeout: Duration,
}

impl RpcScenarioChain {
    pub fn new(url: &str) -> Self {
        Self {
            client: vault_chain::rpc::client(url, Duration::from_secs(30), CommitmentConfig::confirmed()),
            confirm_timeout: Duration::from_secs(60),
        }
    }

    async fn confirm(&self, signature: &Signature) -> anyhow::Result<Option<TransactionError>> {
        Ok(await_confirmed(&self.client, signature, self.confirm_timeout).await?)
    }
}

#[async_trait]
impl ScenarioChain for RpcScenarioChain {
    async fn latest_blockhash(&self) -> anyhow::Result<Hash> {
        Ok(self.client.get_latest_blockhash().await?)
    }

    async fn execute(&self, tx: &Transaction) -> anyhow::Result<Option<TransactionError>> {
        let config = RpcSendTransactionConfig { skip_preflight: true, ..RpcSendTransactionConfig::default() };
        let signature = self.client.send_transaction_with_config(tx, config).await.context("sendTransaction")?;
        self.confirm(&signature).await
    }

    async fn airdrop(&self, to: &Pubkey, lamports: u64) -> anyhow::Result<()> {
        let signature = self.client.request_airdrop(to, lamports).await.context("requestAirdrop")?;
        match self.confirm(&signature).await? {
            None => Ok(()),
            Some(e) => bail!("airdrop to {to} failed: {e}"),
        }
    }

    async fn unix_time(&self) -> anyhow::Result<i64> {
        // The Clock sysvar itself, not getBlockTime: the program reads this value.
        let account = self.client.get_account(&CLOCK_SYSVAR).await?;
        let clock: Clock = bincode::deserialize(&account.data).context("decoding the Clock sysvar")?;
        Ok(clock.unix_timestamp)
    }

    async fn wait_until(&self, unix_time: i64) -> anyhow::Result<()> {
        while self.unix_time().await? < unix_time {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }

    async fn account_exists(&self, key: &Pubkey) -> anyhow::Result<bool> {
        let account = self.client.get_account_with_commitment(key, CommitmentConfig::confirmed()).await?.value;
        Ok(account.is_some_and(|a| a.lamports > 0))
    }
}
