//! Transactions that cannot be written yet (their session is not indexed) or at all (they do
//! not decode). Nothing the indexer sees is dropped without a row saying so.

use anchor_lang::prelude::Pubkey;
use sqlx::PgConnection;

use crate::chain_tx::ChainTx;
use crate::sources::Unreadable;

pub async fn park(db: &mut PgConnection, tx: &ChainTx, vault: &Pubkey) -> Result<(), sqlx::Error> {
    let json = serde_json::to_value(tx).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO indexer_parked (transaction_signature, vault_pda, block_slot, chain_tx)
         VALUES ($1, $2, $3, $4) ON CONFLICT (transaction_signature) DO NOTHING",
    )
    .bind(&tx.signature)
    .bind(vault.to_string())
    .bind(tx.slot as i64)
    .bind(json)
    .execute(db)
    .await?;
    Ok(())
}

/// Parked transactions whose vault now has a session row, in chain order.
pub async fn ready(db: &mut PgConnection) -> Result<Vec<ChainTx>, sqlx::Error> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT p.chain_tx FROM indexer_parked p
         WHERE EXISTS (SELECT 1 FROM ephemeral_sessions s WHERE s.vault_pda = p.vault_pda)
         ORDER BY p.block_slot, p.transaction_signature",
    )
    .fetch_all(db)
    .await?;
    rows.into_iter().map(|(json,)| serde_json::from_value(json).map_err(|e| sqlx::Error::Decode(Box::new(e)))).collect()
}

pub async fn unpark(db: &mut PgConnection, signature: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM indexer_parked WHERE transaction_signature = $1").bind(signature).execute(db).await?;
    Ok(())
}

/// What the decoder could not decode: kept in the indexer's own form, so `reprocess` decodes it
/// again with a newer decoder.
pub async fn record_skipped(db: &mut PgConnection, tx: &ChainTx, reason: &str) -> Result<(), sqlx::Error> {
    let json = serde_json::to_value(tx).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    insert_skipped(db, &tx.signature, tx.slot, reason, "undecodable", "chain_tx", &json).await
}

/// What a source could not read, with the node's raw answer.
pub async fn record_unreadable(db: &mut PgConnection, unreadable: &Unreadable) -> Result<(), sqlx::Error> {
    insert_skipped(
        db,
        &unreadable.signature,
        unreadable.slot,
        &unreadable.detail,
        unreadable.reason.as_str(),
        unreadable.format.as_str(),
        &unreadable.raw,
    )
    .await
}

async fn insert_skipped(
    db: &mut PgConnection,
    signature: &str,
    slot: u64,
    reason: &str,
    kind: &str,
    raw_format: &str,
    raw: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    // One row per signature: a replay (or a second source) seeing it again changes nothing.
    sqlx::query(
        "INSERT INTO indexer_skipped (transaction_signature, block_slot, reason, kind, raw_format, raw)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (transaction_signature) DO NOTHING",
    )
    .bind(signature)
    .bind(i64::try_from(slot).unwrap_or(i64::MAX))
    .bind(reason)
    .bind(kind)
    .bind(raw_format)
    .bind(raw)
    .execute(db)
    .await?;
    Ok(())
}
