//! Writing decoded transactions into PostgreSQL, exactly once.
//!
//! A batch of transactions and the source's cursor are written in ONE database transaction: a
//! crash before the commit loses the whole batch and the cursor with it, so the restarted
//! indexer replays it; a crash after the commit has both. Every write is an upsert keyed by what
//! the chain identifies (signature and action ordinal, session id, rotation, dedup keys), and
//! running totals only move forward, so a replayed or reordered transaction changes nothing.

mod audit;
mod parking;
mod rows;

pub use rows::{session_of_vault, session_uuid};

use sqlx::{PgConnection, PgPool};

use crate::alerts;
use crate::alerts::AlertRules;
use crate::decode::{action_vault, DecodedTx, VaultAction};
use crate::sources::{Cursor, Unreadable};

/// What happened to one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxOutcome {
    /// Rows written (or confirmed unchanged, for a replay).
    Written { actions: usize },
    /// Waiting for its session's creation to be indexed.
    Parked,
    /// Names the program but could not be decoded; recorded in indexer_skipped.
    Skipped(String),
    /// No vault action in it (e.g. a transaction that only mentions the program id).
    Ignored,
}

/// Totals of one batch, for metrics and logs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub written: usize,
    pub parked: usize,
    pub skipped: usize,
    pub ignored: usize,
    /// Parked transactions applied because their session arrived in this batch.
    pub unparked: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Ingest {
    pub rules: AlertRules,
}

impl Ingest {
    pub fn new(rules: AlertRules) -> Self {
        Self { rules }
    }

    /// Writes `txs` and moves `source`'s cursor to `cursor`, atomically.
    pub async fn write_batch(
        &self,
        pool: &PgPool,
        source: &str,
        txs: &[DecodedTx],
        cursor: Option<&Cursor>,
    ) -> Result<BatchReport, sqlx::Error> {
        self.write_batch_with_unreadable(pool, source, txs, &[], cursor).await
    }

    /// Writes `txs`, records `unreadable` in indexer_skipped and moves `source`'s cursor to
    /// `cursor`, atomically: the cursor never passes a transaction without a row saying what
    /// became of it.
    pub async fn write_batch_with_unreadable(
        &self,
        pool: &PgPool,
        source: &str,
        txs: &[DecodedTx],
        unreadable: &[Unreadable],
        cursor: Option<&Cursor>,
    ) -> Result<BatchReport, sqlx::Error> {
        let mut db = pool.begin().await?;
        let mut report = BatchReport::default();
        for item in unreadable {
            parking::record_unreadable(&mut db, item).await?;
        }
        for tx in txs {
            match self.apply(&mut db, tx).await? {
                TxOutcome::Written { .. } => report.written += 1,
                TxOutcome::Parked => report.parked += 1,
                TxOutcome::Skipped(_) => report.skipped += 1,
                TxOutcome::Ignored => report.ignored += 1,
            }
        }
        report.unparked = self.apply_unparked(&mut db).await?;
        if let Some(cursor) = cursor {
            store_cursor(&mut db, source, cursor).await?;
        }
        db.commit().await?;
        Ok(report)
    }

    /// Applies one decoded transaction inside the caller's database transaction: its rows and
    /// audit entries first, then the alert rules over what was written.
    pub async fn apply(&self, db: &mut PgConnection, decoded_tx: &DecodedTx) -> Result<TxOutcome, sqlx::Error> {
        let DecodedTx { tx, decoded } = decoded_tx;
        if decoded.actions.is_empty() {
            if decoded.problems.is_empty() {
                return Ok(TxOutcome::Ignored);
            }
            let reason = decoded.problems_text();
            tracing::warn!(signature = %tx.signature, %reason, "transaction skipped");
            parking::record_skipped(db, tx, &reason).await?;
            return Ok(TxOutcome::Skipped(reason));
        }
        // Every session an action touches must already be indexed (or be created in this very
        // transaction), else the whole transaction waits: its rows reference the session.
        let created: Vec<_> = decoded
            .actions
            .iter()
            .filter_map(|a| match a {
                VaultAction::Event(ephemeral_vault::sdk::VaultEvent::SessionCreated(e)) => Some(e.vault),
                _ => None,
            })
            .collect();
        let mut touched: Vec<_> =
            decoded.actions.iter().filter_map(action_vault).filter(|v| !created.contains(v)).collect();
        touched.sort();
        touched.dedup();
        for vault in &touched {
            if !rows::session_exists(db, vault).await? {
                parking::park(db, tx, vault).await?;
                return Ok(TxOutcome::Parked);
            }
        }
        for (ordinal, action) in decoded.actions.iter().enumerate() {
            rows::apply_action(db, tx, ordinal, action).await?;
            audit::record(db, tx, ordinal, action).await?;
        }
        for (ordinal, action) in decoded.actions.iter().enumerate() {
            alerts::apply(db, &self.rules, tx, ordinal, action).await?;
        }
        if !decoded.problems.is_empty() {
            tracing::warn!(signature = %tx.signature, problems = %decoded.problems_text(), "parts of a transaction were not decoded");
        }
        Ok(TxOutcome::Written { actions: decoded.actions.len() })
    }

    /// Applies parked transactions whose session now exists, oldest first.
    pub(crate) async fn apply_unparked(&self, db: &mut PgConnection) -> Result<usize, sqlx::Error> {
        let mut applied = 0;
        loop {
            let ready = parking::ready(db).await?;
            if ready.is_empty() {
                return Ok(applied);
            }
            for tx in ready {
                parking::unpark(db, &tx.signature).await?;
                if matches!(self.apply(db, &DecodedTx::new(tx)).await?, TxOutcome::Written { .. }) {
                    applied += 1;
                }
            }
        }
    }
}

pub async fn load_cursor(pool: &PgPool, source: &str) -> Result<Option<Cursor>, sqlx::Error> {
    let row: Option<(i64, Option<String>)> =
        sqlx::query_as("SELECT slot, signature FROM indexer_cursors WHERE source = $1")
            .bind(source)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(slot, signature)| Cursor { slot: slot.max(0) as u64, signature }))
}

async fn store_cursor(db: &mut PgConnection, source: &str, cursor: &Cursor) -> Result<(), sqlx::Error> {
    // Never backwards: a replayed batch must not rewind the cursor.
    sqlx::query(
        "INSERT INTO indexer_cursors (source, slot, signature) VALUES ($1, $2, $3)
         ON CONFLICT (source) DO UPDATE SET
            slot = EXCLUDED.slot, signature = EXCLUDED.signature, updated_at = now()
         WHERE indexer_cursors.slot <= EXCLUDED.slot",
    )
    .bind(source)
    .bind(i64::try_from(cursor.slot).unwrap_or(i64::MAX))
    .bind(cursor.signature.as_deref())
    .execute(db)
    .await?;
    Ok(())
}
