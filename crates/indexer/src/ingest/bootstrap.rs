//! Sessions that were live before the indexer's history began.
//!
//! An indexer started "from now" on a program with live sessions sees their trades, deposits and
//! cleanups but never their SessionCreated events. Rather than park those forever, it reads each
//! unknown vault's account from the chain (getMultipleAccounts) and writes the session row from
//! the account's state, marked `bootstrapped`; the parked and following events then apply to it.
//! A vault already closed when it is read cannot be bootstrapped: its events stay parked and, past
//! the parking limit, move to indexer_skipped.

use std::sync::Arc;
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use anchor_lang::AccountDeserialize;
use ephemeral_vault::state::{Vault, VaultStatus};
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use sqlx::{PgConnection, PgPool};
use vault_db::amount::to_db;

use super::incarnations::session_uuid;
use crate::chain_tx::Commitment;
use crate::decode::{action_vault, DecodedTx};

/// A vault account as read from the chain.
#[derive(Clone, Debug)]
pub struct VaultState {
    pub address: Pubkey,
    pub vault: Vault,
    /// The slot the account was read at.
    pub slot: u64,
}

impl VaultState {
    /// The account's state if it is this program's Vault (owner, then Anchor's discriminator:
    /// any other account type of the program is refused too).
    pub fn read(address: Pubkey, owner: &Pubkey, data: &[u8], slot: u64) -> Option<Self> {
        if *owner != ephemeral_vault::ID {
            return None;
        }
        let vault = Vault::try_deserialize(&mut &data[..]).ok()?;
        Some(Self { address, vault, slot })
    }
}

/// Where vault accounts are read from.
#[async_trait::async_trait]
pub trait VaultAccounts: Send + Sync {
    /// The accounts at `addresses` that are this program's Vault accounts now; others (closed,
    /// never created, not a vault) are left out.
    async fn vaults(&self, addresses: &[Pubkey]) -> anyhow::Result<Vec<VaultState>>;
}

/// Reads vault accounts over JSON-RPC.
pub struct RpcVaultAccounts {
    client: Arc<RpcClient>,
}

impl RpcVaultAccounts {
    pub fn new(url: &str, commitment: Commitment) -> Self {
        let commitment = crate::sources::rpc::commitment_config(commitment);
        Self { client: Arc::new(vault_chain::rpc::client(url, Duration::from_secs(30), commitment)) }
    }
}

/// getMultipleAccounts takes at most 100 addresses per call.
const ADDRESSES_PER_CALL: usize = 100;

#[async_trait::async_trait]
impl VaultAccounts for RpcVaultAccounts {
    async fn vaults(&self, addresses: &[Pubkey]) -> anyhow::Result<Vec<VaultState>> {
        let mut found = vec![];
        for chunk in addresses.chunks(ADDRESSES_PER_CALL) {
            let answer = self.client.get_multiple_accounts_with_commitment(chunk, self.client.commitment()).await?;
            let slot = answer.context.slot;
            for (address, account) in chunk.iter().zip(answer.value) {
                if let Some(account) = account {
                    found.extend(VaultState::read(*address, &account.owner, &account.data, slot));
                }
            }
        }
        Ok(found)
    }
}

/// The vaults that events of this batch's landed transactions name, that no SessionCreated of
/// the batch opens and that have no session row at all: the ones to read from the chain.
pub async fn unknown_vaults(pool: &PgPool, txs: &[DecodedTx]) -> Result<Vec<Pubkey>, sqlx::Error> {
    let landed: Vec<&DecodedTx> = txs.iter().filter(|d| d.tx.failure.is_none()).collect();
    let opened: Vec<Pubkey> = landed.iter().flat_map(|d| d.decoded.opened_vaults()).collect();
    let mut named: Vec<Pubkey> =
        landed.iter().flat_map(|d| d.decoded.actions.iter().filter_map(action_vault)).collect();
    named.retain(|v| !opened.contains(v));
    named.sort();
    named.dedup();
    if named.is_empty() {
        return Ok(vec![]);
    }
    let addresses: Vec<String> = named.iter().map(ToString::to_string).collect();
    let known: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT vault_pda FROM ephemeral_sessions
         WHERE vault_pda = ANY($1) AND (creation_signature IS NOT NULL OR bootstrapped)",
    )
    .bind(&addresses)
    .fetch_all(pool)
    .await?;
    Ok(named.into_iter().filter(|v| !known.contains(&v.to_string())).collect())
}

/// Writes the session row of a vault read from the chain (claiming a row the session service
/// registered for it), unless the vault has a row already. The delegation history starts at the
/// next rotation the indexer sees: the account does not say when the current delegate was
/// approved.
pub async fn write(db: &mut PgConnection, state: &VaultState) -> Result<(), sqlx::Error> {
    let v = &state.vault;
    let mint = (v.mint != Pubkey::default()).then(|| v.mint.to_string());
    let (status, revoked_at) = match v.status {
        VaultStatus::Active => ("active", None),
        VaultStatus::Revoked => ("revoked", Some(v.revoked_at)),
    };
    sqlx::query(
        "INSERT INTO ephemeral_sessions AS s (session_id, parent_wallet, ephemeral_wallet, vault_pda, mint,
            created_at, expires_at, last_activity, revoked_at, status, approved_amount, per_trade_cap,
            total_deposited, total_spent, total_withdrawn, total_fee_top_ups, last_event_slot, bootstrapped)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, true
         WHERE NOT EXISTS (SELECT 1 FROM ephemeral_sessions
                           WHERE vault_pda = $4 AND (creation_signature IS NOT NULL OR bootstrapped))
         ON CONFLICT (vault_pda) WHERE creation_signature IS NULL AND cleaned_at IS NULL DO UPDATE SET
            bootstrapped = true, ephemeral_wallet = EXCLUDED.ephemeral_wallet, mint = EXCLUDED.mint,
            created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
            last_activity = EXCLUDED.last_activity, revoked_at = EXCLUDED.revoked_at, status = EXCLUDED.status,
            approved_amount = EXCLUDED.approved_amount, per_trade_cap = EXCLUDED.per_trade_cap,
            total_deposited = EXCLUDED.total_deposited, total_spent = EXCLUDED.total_spent,
            total_withdrawn = EXCLUDED.total_withdrawn, total_fee_top_ups = EXCLUDED.total_fee_top_ups,
            last_event_slot = EXCLUDED.last_event_slot",
    )
    .bind(session_uuid(&v.session_id))
    .bind(v.parent.to_string())
    .bind(v.delegate.to_string())
    .bind(state.address.to_string())
    .bind(mint)
    .bind(v.created_at)
    .bind(v.expires_at)
    .bind(v.last_activity.max(v.created_at))
    .bind(revoked_at)
    .bind(status)
    .bind(to_db(v.approved_amount))
    .bind(to_db(v.per_trade_cap))
    .bind(to_db(v.total_deposited))
    .bind(to_db(v.total_spent))
    .bind(to_db(v.total_withdrawn))
    .bind(to_db(v.total_fee_top_ups))
    .bind(i64::try_from(state.slot).unwrap_or(i64::MAX))
    .execute(db)
    .await?;
    Ok(())
}
