//! The relay's chain in tests and in the benchmark: the real program in litesvm (the testkit's
//! VaultWorld). The world's clock follows the wall clock, so the service's expiry checks and the
//! program's agree.

use std::sync::{Arc, Mutex};

use anchor_lang::prelude::Pubkey;
use ephemeral_vault_testkit::VaultWorld;
use solana_hash::Hash;
use solana_transaction::Transaction;
use vault_indexer::service::{Chain, ChainError, Sent};

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
    let now = vault_indexer::service::unix_now();
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
        match world.svm.send_transaction(tx.clone()) {
            Ok(_) => Ok(Sent::Landed),
            Err(failed) => Err(ChainError::from_transaction_error(&failed.err)),
        }
    }

    async fn account_owner(&self, key: &Pubkey) -> Result<Option<Pubkey>, ChainError> {
        Ok(self.world.lock().expect("world").account(key).map(|a| a.owner))
    }
}
