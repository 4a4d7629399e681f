//! The relay's and the cleanup bot's chain in tests and in the benchmark: the real program in
//! litesvm (the testkit's VaultWorld). The world's clock follows the wall clock, so the service's
//! expiry checks and the program's agree.

use std::sync::{Arc, Mutex};

use anchor_lang::prelude::Pubkey;
use async_trait::async_trait;
use ephemeral_vault::state::{Config, Vault};
use ephemeral_vault_testkit::VaultWorld;
use solana_hash::Hash;
use solana_transaction::Transaction;
use vault_chain::{Chain, ChainError, Sent};
use vault_cleanup_bot::{decode_program_vault, ClusterView, VaultAccount};

pub struct LiteSvmChain {
    pub world: Arc<Mutex<VaultWorld>>,
}

impl LiteSvmChain {
    pub fn new(world: Arc<Mutex<VaultWorld>>) -> Self {
        Self { world }
    }
}

/// Moves the world's clock up to the wall clock (never back).
pub fn sync_clock(world: &mut VaultWorld) {
    let now = crate::test_db::unix_now();
    if world.now() < now {
        world.set_time(now);
    }
}

#[async_trait::async_trait]
impl Chain for LiteSvmChain {
    async fn latest_blockhash(&self) -> Result<Hash, ChainError> {
        Ok(self.world.lock().expect("world").svm.latest_blockhash())
    }

    async fn send(&self, tx: &Transaction) -> Result<Sent, ChainError> {
        let mut world = self.world.lock().expect("world");
        sync_clock(&mut world);
        // Through the world, so the transaction is in its history like every other.
        match world.execute(tx.clone()) {
            Ok(_) => Ok(Sent::Landed),
            Err(refused) => Err(ChainError::from_transaction_error(&refused.err)),
        }
    }

    async fn account_owner(&self, key: &Pubkey) -> Result<Option<Pubkey>, ChainError> {
        Ok(self.world.lock().expect("world").account(key).map(|a| a.owner))
    }
}

/// What the cleanup bot reads, from the same world.
pub struct LiteSvmView(pub Arc<Mutex<VaultWorld>>);

#[async_trait]
impl ClusterView for LiteSvmView {
    async fn vaults(&self) -> Result<Vec<VaultAccount>, ChainError> {
        let world = self.0.lock().unwrap();
        Ok(world
            .svm
            .get_program_accounts(&ephemeral_vault::ID)
            .into_iter()
            .filter(|(_, a)| a.data.len() == Vault::SPACE)
            .filter_map(|(address, a)| Some(VaultAccount { address, vault: vault_cleanup_bot::decode_vault(&a.data)? }))
            .collect())
    }
    async fn vaults_at(&self, addresses: &[Pubkey]) -> Result<Vec<VaultAccount>, ChainError> {
        let world = self.0.lock().unwrap();
        Ok(addresses
            .iter()
            .filter_map(|address| {
                let account = world.account(address)?;
                Some(VaultAccount { address: *address, vault: decode_program_vault(&account.owner, &account.data)? })
            })
            .collect())
    }
    async fn config(&self) -> Result<Config, ChainError> {
        Ok(self.0.lock().unwrap().config())
    }
    async fn unix_time(&self) -> Result<i64, ChainError> {
        Ok(self.0.lock().unwrap().now())
    }
    async fn lamports(&self, key: &Pubkey) -> Result<u64, ChainError> {
        Ok(self.0.lock().unwrap().lamports(key))
    }
    async fn minimum_balance(&self, data_len: usize) -> Result<u64, ChainError> {
        Ok(self.0.lock().unwrap().rent(data_len))
    }
}
