//! What the bot reads from the cluster, behind a trait so the tests can point it at the real
//! program in litesvm and a deployment at JSON-RPC.

use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use anchor_lang::{AccountDeserialize, Discriminator};
use async_trait::async_trait;
use ephemeral_vault::state::{Config, Vault};
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::config::{RpcAccountInfoConfig, RpcProgramAccountsConfig};
use solana_rpc_client_api::filter::{Memcmp, RpcFilterType};

use vault_chain::ChainError;

/// A vault account as found on chain.
#[derive(Clone, Debug)]
pub struct VaultAccount {
    pub address: Pubkey,
    pub vault: Vault,
}

#[async_trait]
pub trait ClusterView: Send + Sync {
    /// Every vault of the program.
    async fn vaults(&self) -> Result<Vec<VaultAccount>, ChainError>;
    /// The vaults at `addresses`. An address with no account, or with an account that is not a
    /// vault of the program, is left out: the addresses come from a database that may be stale
    /// or wrong, the accounts from the chain.
    async fn vaults_at(&self, addresses: &[Pubkey]) -> Result<Vec<VaultAccount>, ChainError>;
    async fn config(&self) -> Result<Config, ChainError>;
    /// The cluster's clock (what the program compares expiry against).
    async fn unix_time(&self) -> Result<i64, ChainError>;
    /// 0 when the account does not exist.
    async fn lamports(&self, key: &Pubkey) -> Result<u64, ChainError>;
    async fn minimum_balance(&self, data_len: usize) -> Result<u64, ChainError>;
}

/// Decodes a vault, or None for data that is not one (closed, or another account type).
pub fn decode_vault(data: &[u8]) -> Option<Vault> {
    let mut slice = data;
    Vault::try_deserialize(&mut slice).ok()
}

/// Decodes an account found at an address the chain scan did not vouch for: a vault only if
/// the program owns it (only the program can write an account it owns, so no one else can
/// forge one) and it has a vault's size and discriminator, as the scan's filters require.
pub fn decode_program_vault(owner: &Pubkey, data: &[u8]) -> Option<Vault> {
    if *owner != ephemeral_vault::ID || data.len() != Vault::SPACE {
        return None;
    }
    decode_vault(data)
}

/// getMultipleAccounts takes at most this many addresses per request.
const MULTIPLE_ACCOUNTS_LIMIT: usize = 100;

pub struct RpcClusterView {
    client: RpcClient,
}

impl RpcClusterView {
    pub fn new(url: &str) -> Self {
        Self { client: vault_chain::rpc::client(url, Duration::from_secs(30), CommitmentConfig::confirmed()) }
    }
}

fn unavailable(e: impl std::fmt::Display) -> ChainError {
    ChainError::Unavailable(e.to_string())
}

#[async_trait]
impl ClusterView for RpcClusterView {
    async fn vaults(&self) -> Result<Vec<VaultAccount>, ChainError> {
        // Only accounts of the vault's exact size that start with its discriminator.
        let config = RpcProgramAccountsConfig {
            filters: Some(vec![
                RpcFilterType::DataSize(Vault::SPACE as u64),
                RpcFilterType::Memcmp(Memcmp::new_raw_bytes(0, Vault::DISCRIMINATOR.to_vec())),
            ]),
            account_config: RpcAccountInfoConfig {
                encoding: Some(solana_account_decoder_client_types::UiAccountEncoding::Base64),
                ..RpcAccountInfoConfig::default()
            },
            ..RpcProgramAccountsConfig::default()
        };
        let accounts =
            self.client.get_program_ui_accounts_with_config(&ephemeral_vault::ID, config).await.map_err(unavailable)?;
        Ok(accounts
            .into_iter()
            .filter_map(|(address, account)| {
                let data = account.data.decode()?;
                Some(VaultAccount { address, vault: decode_vault(&data)? })
            })
            .collect())
    }

    async fn vaults_at(&self, addresses: &[Pubkey]) -> Result<Vec<VaultAccount>, ChainError> {
        let mut found = vec![];
        for chunk in addresses.chunks(MULTIPLE_ACCOUNTS_LIMIT) {
            let config = RpcAccountInfoConfig {
                encoding: Some(solana_account_decoder_client_types::UiAccountEncoding::Base64),
                ..RpcAccountInfoConfig::default()
            };
            let accounts =
                self.client.get_multiple_ui_accounts_with_config(chunk, config).await.map_err(unavailable)?.value;
            // One entry per requested address, in order; None where there is no account.
            for (address, account) in chunk.iter().zip(accounts) {
                let Some(account) = account else { continue };
                let Ok(owner) = account.owner.parse::<Pubkey>() else { continue };
                let Some(data) = account.data.decode() else { continue };
                if let Some(vault) = decode_program_vault(&owner, &data) {
                    found.push(VaultAccount { address: *address, vault });
                }
            }
        }
        Ok(found)
    }

    async fn config(&self) -> Result<Config, ChainError> {
        let account = self.client.get_account(&ephemeral_vault::sdk::config_address()).await.map_err(unavailable)?;
        let mut slice = account.data.as_slice();
        Config::try_deserialize(&mut slice).map_err(unavailable)
    }

    async fn unix_time(&self) -> Result<i64, ChainError> {
        let slot = self.client.get_slot().await.map_err(unavailable)?;
        self.client.get_block_time(slot).await.map_err(unavailable)
    }

    async fn lamports(&self, key: &Pubkey) -> Result<u64, ChainError> {
        self.client.get_balance(key).await.map_err(unavailable)
    }

    async fn minimum_balance(&self, data_len: usize) -> Result<u64, ChainError> {
        self.client.get_minimum_balance_for_rent_exemption(data_len).await.map_err(unavailable)
    }
}
