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

/// Parked transactions waiting on any of `vaults`, in chain order (an index scan per vault).
pub async fn parked_for(db: &mut PgConnection, vaults: &[Pubkey]) -> Result<Vec<ChainTx>, sqlx::Error> {
    if vaults.is_empty() {
        return Ok(vec![]);
    }
    let addresses: Vec<String> = vaults.iter().map(ToString::to_string).collect();
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT chain_tx FROM indexer_parked WHERE vault_pda = ANY($1)
         ORDER BY block_slot, transaction_signature",
    )
    .bind(&addresses)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(|(json,)| serde_json::from_value(json).map_err(|e| sqlx::Error::Decode(Box::new(e)))).collect()
}

/// Moves what has been parked for more than `max_slots` slots before `newest_slot` to
/// indexer_skipped (kind `session_unknown`, the transaction kept for `reprocess`); returns how
/// many. An index range scan on block_slot: only the expired rows are read.
pub async fn expire(db: &mut PgConnection, newest_slot: u64, max_slots: u64) -> Result<u64, sqlx::Error> {
    let Some(before) = newest_slot.checked_sub(max_slots) else { return Ok(0) };
    let moved = sqlx::query(
        "WITH expired AS (
            DELETE FROM indexer_parked WHERE block_slot < $1
            RETURNING transaction_signature, block_slot, vault_pda, chain_tx)
         INSERT INTO indexer_skipped (transaction_signature, block_slot, reason, kind, raw_format, raw)
         SELECT transaction_signature, block_slot,
                'no session of vault ' || vault_pda || ' was indexed within ' || $2 || ' slots',
                'session_unknown', 'chain_tx', chain_tx
         FROM expired
         ON CONFLICT (transaction_signature) DO NOTHING",
    )
    .bind(i64::try_from(before).unwrap_or(i64::MAX))
    .bind(max_slots.to_string())
    .execute(db)
    .await?;
    Ok(moved.rows_affected())
}

pub async fn unpark(db: &mut PgConnection, signatures: &[&str]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM indexer_parked WHERE transaction_signature = ANY($1)")
        .bind(signatures)
        .execute(db)
        .await?;
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
