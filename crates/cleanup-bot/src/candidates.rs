//! Cleanup candidates from the indexer's database: the vault addresses `cleanup_candidates_view`
//! lists (sessions revoked or past their expiry and not yet cleaned).
//!
//! Only a hint of where to look. The bot loads every address from the chain and decides from
//! what it finds there, so a row that lags behind the chain (already cleaned, never indexed
//! correctly) or is simply wrong costs one account lookup, never a cleanup the program would
//! refuse. Reading the view needs SELECT on it only (the `vault_readonly` role has it).

use std::collections::BTreeSet;

use anchor_lang::prelude::Pubkey;
use sqlx::PgPool;

pub struct DbCandidates {
    pool: PgPool,
}

impl DbCandidates {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The candidates' vault addresses, each once, in address order.
    pub async fn load(&self) -> Result<Vec<Pubkey>, sqlx::Error> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT vault_pda FROM cleanup_candidates_view").fetch_all(&self.pool).await?;
        Ok(parse_addresses(rows))
    }
}

/// Parses base58 addresses; one that is not a public key is logged and left out, so a bad row
/// cannot stop the bot (the schema checks the alphabet and length, not that it decodes to 32
/// bytes).
pub fn parse_addresses(rows: impl IntoIterator<Item = String>) -> Vec<Pubkey> {
    let mut addresses = BTreeSet::new();
    for row in rows {
        match row.parse::<Pubkey>() {
            Ok(address) => {
                addresses.insert(address);
            }
            Err(e) => tracing::warn!(vault_pda = %row, error = %e, "cleanup candidate is not an address; skipped"),
        }
    }
    addresses.into_iter().collect()
}
