//! Writing decoded transactions into PostgreSQL, exactly once.
//!
//! A batch of transactions and the source's cursor are written in ONE database transaction: a
//! crash before the commit loses the whole batch and the cursor with it, so the restarted
//! indexer replays it; a crash after the commit has both. Every write is an upsert keyed by what
//! the chain identifies (signature and action ordinal, session id, rotation, dedup keys), and
//! running totals only move forward, so a replayed or reordered transaction changes nothing.

mod audit;
pub mod bootstrap;
mod parking;
mod rows;

pub use rows::{incarnation, session_uuid, SessionKey};

use anchor_lang::prelude::Pubkey;
use ephemeral_vault::sdk::VaultEvent;
use sqlx::{PgConnection, PgPool};

use crate::alerts;
use crate::alerts::AlertRules;
use crate::decode::{action_vault, vault_account_refused, DecodedTx, InstructionKind, VaultAction};
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
    /// Parked transactions moved to indexer_skipped: no session within the parking limit.
    pub expired: u64,
    /// Sessions written from their vault account's state (see [`bootstrap`]).
    pub bootstrapped: usize,
}

/// How long a transaction may wait for its session by default: 9,000 slots, about an hour at
/// the 400 ms slot time Solana targets - far more than any reordering between sources.
pub const DEFAULT_PARK_MAX_SLOTS: u64 = 9_000;

#[derive(Clone)]
pub struct Ingest {
    pub rules: AlertRules,
    /// Slots a parked transaction waits for its session before it moves to indexer_skipped.
    pub park_max_slots: u64,
    /// Where unknown vaults are read from; None = never bootstrap (they park).
    pub bootstrap: Option<std::sync::Arc<dyn bootstrap::VaultAccounts>>,
}

impl Default for Ingest {
    fn default() -> Self {
        Self::new(AlertRules::default())
    }
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("rules", &self.rules)
            .field("park_max_slots", &self.park_max_slots)
            .field("bootstrap", &self.bootstrap.is_some())
            .finish()
    }
}

impl Ingest {
    pub fn new(rules: AlertRules) -> Self {
        Self { rules, park_max_slots: DEFAULT_PARK_MAX_SLOTS, bootstrap: None }
    }

    /// Reads unknown vaults from `accounts` (see [`bootstrap`]).
    pub fn with_bootstrap(mut self, accounts: std::sync::Arc<dyn bootstrap::VaultAccounts>) -> Self {
        self.bootstrap = Some(accounts);
        self
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
        // Read from the chain before the database transaction opens: no lock waits on a node.
        let bootstrapped = self.read_unknown_vaults(pool, txs).await?;
        let mut db = pool.begin().await?;
        let mut report = BatchReport { bootstrapped: bootstrapped.len(), ..BatchReport::default() };
        let mut opened: Vec<Pubkey> = vec![];
        for state in &bootstrapped {
            bootstrap::write(&mut db, state).await?;
            opened.push(state.address);
        }
        for item in unreadable {
            parking::record_unreadable(&mut db, item).await?;
        }
        for tx in txs {
            match self.apply(&mut db, tx).await? {
                TxOutcome::Written { .. } => {
                    report.written += 1;
                    opened.extend(tx.decoded.opened_vaults());
                }
                TxOutcome::Parked => report.parked += 1,
                TxOutcome::Skipped(_) => report.skipped += 1,
                TxOutcome::Ignored => report.ignored += 1,
            }
        }
        report.unparked = self.apply_unparked(&mut db, &opened).await?;
        let newest_slot = txs.iter().map(|t| t.tx.slot).chain(cursor.map(|c| c.slot)).max();
        if let Some(newest_slot) = newest_slot {
            report.expired = parking::expire(&mut db, newest_slot, self.park_max_slots).await?;
        }
        if let Some(cursor) = cursor {
            store_cursor(&mut db, source, cursor).await?;
        }
        db.commit().await?;
        Ok(report)
    }

    /// Applies one decoded transaction inside the caller's database transaction: its rows and
    /// audit entries first, then the alert rules over what was written.
    ///
    /// Each action is folded into the incarnation of its vault that it belongs to
    /// ([`rows::incarnation`]). A landed transaction whose event names a vault with no indexed
    /// incarnation waits in indexer_parked (its session's creation is still to come, or was
    /// before this indexer's history and the vault could not be bootstrapped). A failed
    /// transaction is recorded in the audit log at once: a refused create_session (no session
    /// at all) or a refusal of an account that was no vault never waits; a refusal on a vault not
    /// indexed yet waits, bounded, for the session its failed rows belong to.
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
        // Where each action belongs, from what is indexed before this transaction is written; one
        // lookup per action, and the parking decision is read off the same answers.
        let resolved = self.resolve(db, decoded_tx).await?;
        let waiting_on = resolved.iter().find_map(|r| match r {
            Resolution::Unknown(vault) => Some(*vault),
            _ => None,
        });
        if let Some(vault) = waiting_on {
            if tx.failure.is_none() {
                parking::park(db, tx, &vault).await?;
                return Ok(TxOutcome::Parked);
            }
            if !tx.failure.as_ref().is_some_and(|failure| vault_account_refused(tx, failure)) {
                // Recorded at once (the audit entries are idempotent, so applying it later adds
                // nothing to them); its failed rows wait, bounded, for the session they belong to.
                for (ordinal, action) in decoded.actions.iter().enumerate() {
                    audit::record(db, tx, ordinal, action).await?;
                }
                parking::park(db, tx, &vault).await?;
                return Ok(TxOutcome::Parked);
            }
            // The program refused the vault account itself: it was no vault, and no session
            // will ever come for it. Recorded in the audit log only, below.
        }
        let mut sessions = Vec::with_capacity(decoded.actions.len());
        for (ordinal, (action, resolution)) in decoded.actions.iter().zip(resolved).enumerate() {
            let session = match resolution {
                Resolution::Known(session) => Some(session),
                Resolution::NoSession | Resolution::Unknown(_) => None,
                Resolution::OpenedHere => match action {
                    VaultAction::Event(VaultEvent::SessionCreated(e)) => {
                        Some(rows::session_created(db, tx, ordinal, e).await?)
                    }
                    // A vault opened earlier in this transaction: its incarnation is written now.
                    _ => match action_vault(action) {
                        Some(vault) => rows::incarnation(db, &vault, tx, ordinal).await?,
                        None => None,
                    },
                },
            };
            if let Some(session) = &session {
                rows::apply_action(db, tx, ordinal, action, session).await?;
            }
            audit::record(db, tx, ordinal, action).await?;
            sessions.push(session);
        }
        for (ordinal, (action, session)) in decoded.actions.iter().zip(&sessions).enumerate() {
            if let Some(session) = session {
                alerts::apply(db, &self.rules, tx, ordinal, action, session).await?;
            }
        }
        if !decoded.problems.is_empty() {
            tracing::warn!(signature = %tx.signature, problems = %decoded.problems_text(), "parts of a transaction were not decoded");
        }
        Ok(TxOutcome::Written { actions: decoded.actions.len() })
    }

    /// The accounts of the vaults this batch names without a session row, when bootstrapping is
    /// on. A node that cannot answer is logged and left: those transactions park, as without it.
    async fn read_unknown_vaults(
        &self,
        pool: &PgPool,
        txs: &[DecodedTx],
    ) -> Result<Vec<bootstrap::VaultState>, sqlx::Error> {
        let Some(accounts) = &self.bootstrap else { return Ok(vec![]) };
        let unknown = bootstrap::unknown_vaults(pool, txs).await?;
        if unknown.is_empty() {
            return Ok(vec![]);
        }
        match accounts.vaults(&unknown).await {
            Ok(states) => Ok(states),
            Err(e) => {
                tracing::warn!(error = %e, vaults = unknown.len(), "could not read unknown vaults; their transactions park");
                Ok(vec![])
            }
        }
    }

    /// The session each action of the transaction belongs to, as far as the database knows it
    /// before the transaction is written: found (the incarnation of its vault at the action's
    /// position), opened by this transaction (its own SessionCreated, or a vault a SessionCreated
    /// earlier in it opened - resolved once that is written), none (a refused create_session made
    /// no session; deployment-wide actions name none), or unknown (a vault with no indexed
    /// incarnation at that position).
    async fn resolve(&self, db: &mut PgConnection, decoded_tx: &DecodedTx) -> Result<Vec<Resolution>, sqlx::Error> {
        let DecodedTx { tx, decoded } = decoded_tx;
        let mut opened = vec![];
        let mut resolved = Vec::with_capacity(decoded.actions.len());
        for (ordinal, action) in decoded.actions.iter().enumerate() {
            let resolution = match action {
                VaultAction::Event(VaultEvent::SessionCreated(e)) => {
                    opened.push(e.vault);
                    Resolution::OpenedHere
                }
                VaultAction::Refused { instruction, .. } if instruction.kind == InstructionKind::CreateSession => {
                    Resolution::NoSession
                }
                _ => match action_vault(action) {
                    None => Resolution::NoSession,
                    Some(vault) if opened.contains(&vault) => Resolution::OpenedHere,
                    Some(vault) => match rows::incarnation(db, &vault, tx, ordinal).await? {
                        Some(session) => Resolution::Known(session),
                        None => Resolution::Unknown(vault),
                    },
                },
            };
            resolved.push(resolution);
        }
        Ok(resolved)
    }

    /// Applies parked transactions whose vault got an incarnation in this batch (`vaults`),
    /// oldest first, until none is left to apply: O(what is parked for those vaults).
    pub(crate) async fn apply_unparked(&self, db: &mut PgConnection, vaults: &[Pubkey]) -> Result<usize, sqlx::Error> {
        let mut applied = 0;
        let mut waiting_on: Vec<Pubkey> = vaults.to_vec();
        while !waiting_on.is_empty() {
            let ready = parking::parked_for(db, &waiting_on).await?;
            waiting_on.clear();
            for tx in ready {
                parking::unpark(db, &tx.signature).await?;
                let decoded = DecodedTx::new(tx);
                if matches!(self.apply(db, &decoded).await?, TxOutcome::Written { .. }) {
                    applied += 1;
                    waiting_on.extend(decoded.decoded.opened_vaults());
                }
            }
        }
        Ok(applied)
    }
}

/// Where an action of a transaction belongs (see [`Ingest::resolve`]).
enum Resolution {
    Known(SessionKey),
    OpenedHere,
    NoSession,
    Unknown(Pubkey),
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
