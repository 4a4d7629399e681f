//! `vault-indexer reprocess`: reads again what was recorded in `indexer_skipped`, once the
//! indexer is upgraded (a newer transaction version, runtime error or program event it now
//! knows). Each row is read from the raw answer stored with it; if that still does not read (or
//! the row predates raw storage), the transaction is fetched again over RPC when a URL is given.
//!
//! Exactly once: a row is taken with `FOR UPDATE SKIP LOCKED`, its transaction's rows are written
//! and the row is marked `reprocessed_at` in ONE database transaction, so two runs (or a run
//! that crashes half way) never apply it twice, and the writes are idempotent besides. A row
//! that still cannot be read stays pending, its stored answer replaced by the newest one.

use base64::Engine;
use solana_signature::Signature;
use sqlx::{PgConnection, PgPool};
use yellowstone_grpc_proto::prelude::SubscribeUpdateTransaction;
use yellowstone_grpc_proto::prost::Message as _;

use crate::chain_tx::{ChainTx, Commitment};
use crate::decode::DecodedTx;
use crate::ingest::{Ingest, TxOutcome};
use crate::sources::rpc::{read_get_transaction, RpcSource};
use crate::sources::yellowstone::convert::chain_tx_from_update;
use crate::sources::SourceItem;

/// What one run did, row by row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReprocessReport {
    /// Rows whose transaction is now written, parked (waiting for its session) or ignored.
    pub written: usize,
    pub parked: usize,
    pub ignored: usize,
    /// Rows that still cannot be read: (signature, why).
    pub still_unreadable: Vec<(String, String)>,
}

/// Re-reads every pending `indexer_skipped` row (oldest slot first).
pub async fn reprocess(
    pool: &PgPool,
    ingest: &Ingest,
    rpc: Option<&RpcSource>,
    commitment: Commitment,
) -> anyhow::Result<ReprocessReport> {
    let pending: Vec<(String,)> = sqlx::query_as(
        "SELECT transaction_signature FROM indexer_skipped WHERE reprocessed_at IS NULL
         ORDER BY block_slot, transaction_signature",
    )
    .fetch_all(pool)
    .await?;
    let mut report = ReprocessReport::default();
    for (signature,) in pending {
        let mut db = pool.begin().await?;
        let row: Option<(Option<String>, Option<serde_json::Value>)> = sqlx::query_as(
            "SELECT raw_format, raw FROM indexer_skipped
             WHERE transaction_signature = $1 AND reprocessed_at IS NULL FOR UPDATE SKIP LOCKED",
        )
        .bind(&signature)
        .fetch_optional(&mut *db)
        .await?;
        // Taken (or done) by another run meanwhile.
        let Some((format, raw)) = row else { continue };
        let stored = match (format.as_deref(), &raw) {
            (Some(format), Some(raw)) => read_stored(format, raw, commitment),
            _ => Err("no stored answer".to_string()),
        };
        let tx = match (stored, rpc) {
            (Ok(tx), _) => tx,
            (Err(why), None) => {
                // Roll back now: a dropped transaction would hold the row lock until its
                // connection is next used, and a later run would skip the row as taken.
                db.rollback().await?;
                report.still_unreadable.push((signature, why));
                continue;
            }
            (Err(why), Some(rpc)) => match rpc.fetch_item(&signature.parse::<Signature>()?).await? {
                SourceItem::Tx(tx) => tx,
                SourceItem::Unreadable(newest) => {
                    // Keep the newest answer, for the next upgrade.
                    sqlx::query("UPDATE indexer_skipped SET kind = $2, reason = $3, raw_format = $4, raw = $5 WHERE transaction_signature = $1")
                        .bind(&signature)
                        .bind(newest.reason.as_str())
                        .bind(&newest.detail)
                        .bind(newest.format.as_str())
                        .bind(&newest.raw)
                        .execute(&mut *db)
                        .await?;
                    db.commit().await?;
                    report.still_unreadable.push((signature, format!("stored: {why}; fetched: {}", newest.detail)));
                    continue;
                }
            },
        };
        let decoded = DecodedTx::new(tx.clone());
        let outcome = match ingest.apply(&mut db, &decoded).await? {
            TxOutcome::Written { .. } => {
                report.written += 1;
                "written"
            }
            TxOutcome::Parked => {
                report.parked += 1;
                "parked"
            }
            TxOutcome::Ignored => {
                report.ignored += 1;
                "ignored"
            }
            TxOutcome::Skipped(why) => {
                // Readable now, but the decoder still cannot decode it: store it in the
                // indexer's own form, so the next upgrade only has to decode.
                store_undecodable(&mut db, &tx, &why).await?;
                db.commit().await?;
                report.still_unreadable.push((signature, why));
                continue;
            }
        };
        sqlx::query(
            "UPDATE indexer_skipped SET reprocessed_at = now(), reprocess_outcome = $2 WHERE transaction_signature = $1",
        )
        .bind(&signature)
        .bind(outcome)
        .execute(&mut *db)
        .await?;
        db.commit().await?;
        tracing::info!(%signature, outcome, "skipped transaction reprocessed");
    }
    Ok(report)
}

/// A stored raw answer as a transaction, or why it still does not read.
pub fn read_stored(format: &str, raw: &serde_json::Value, commitment: Commitment) -> Result<ChainTx, String> {
    match format {
        "chain_tx" => serde_json::from_value(raw.clone()).map_err(|e| e.to_string()),
        "rpc_json" => {
            read_get_transaction(raw, commitment).map_err(|(reason, detail)| format!("{}: {detail}", reason.as_str()))
        }
        "grpc_protobuf" => {
            let bytes = raw
                .get("protobuf")
                .and_then(|b| b.as_str())
                .ok_or("no protobuf bytes")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).map_err(|_| "bad base64"))?;
            let update = SubscribeUpdateTransaction::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
            chain_tx_from_update(&update, commitment).map_err(|e| e.to_string())
        }
        other => Err(format!("unknown raw format {other}")),
    }
}

async fn store_undecodable(db: &mut PgConnection, tx: &ChainTx, why: &str) -> Result<(), sqlx::Error> {
    let json = serde_json::to_value(tx).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "UPDATE indexer_skipped SET kind = 'undecodable', reason = $2, raw_format = 'chain_tx', raw = $3
         WHERE transaction_signature = $1",
    )
    .bind(&tx.signature)
    .bind(why)
    .bind(json)
    .execute(db)
    .await?;
    Ok(())
}
