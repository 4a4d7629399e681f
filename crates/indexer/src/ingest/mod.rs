//! Writing decoded transactions into PostgreSQL, exactly once.
//!
//! A batch of transactions and the source's cursor are written in ONE database transaction: a
//! crash before the commit loses the whole batch and the cursor with it, so the restarted
//! indexer replays it; a crash after the commit has both. Every write is an upsert keyed by what
//! the chain identifies (signature and action ordinal, session id, rotation, dedup keys), and
//! running totals only move forward, so a replayed or reordered transaction changes nothing.

mod audit;
pub mod bootstrap;
mod incarnations;
mod parking;
mod rows;

pub use incarnations::{session_uuid, SessionKey};

use anchor_lang::prelude::Pubkey;
use ephemeral_vault::sdk::VaultEvent;
use sqlx::{PgConnection, PgPool};

use crate::alerts::{AlertRules, BatchAlerts};
use crate::decode::{action_vault, vault_account_refused, DecodedTx, InstructionKind, VaultAction};
use crate::sources::{Cursor, Unreadable};
use incarnations::Incarnations;

/// A connection inside the batch's database transaction that counts its round trips.
pub struct Db<'c> {
    conn: &'c mut PgConnection,
    statements: usize,
}

impl<'c> Db<'c> {
    fn new(conn: &'c mut PgConnection) -> Self {
        Self { conn, statements: 0 }
    }

    /// The connection for one statement (counted).
    pub fn conn(&mut self) -> &mut PgConnection {
        self.statements += 1;
        &mut *self.conn
    }
}

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
    /// Round trips to PostgreSQL the batch took, BEGIN and COMMIT included (the benchmark's
    /// "round trips per batch").
    pub statements: usize,
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
    /// became of it. About ten round trips whatever the batch's size: BEGIN, one read of the
    /// batch's sessions, one statement per table written, the high-frequency count, the parking
    /// checks, the cursor, the audit append and COMMIT; plus one per session created.
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
        let mut conn = pool.begin().await?;
        let mut db = Db::new(&mut conn);
        db.statements += 1; // BEGIN
        let mut report = BatchReport { bootstrapped: bootstrapped.len(), ..BatchReport::default() };
        for state in &bootstrapped {
            bootstrap::write(db.conn(), state).await?;
        }
        for item in unreadable {
            parking::record_unreadable(db.conn(), item).await?;
        }
        let mut batch = Batch::default();
        let opened: Vec<Pubkey> = bootstrapped.iter().map(|s| s.address).collect();
        for outcome in self.apply_all(&mut db, &mut batch, txs, opened).await? {
            match outcome {
                TxOutcome::Written { .. } => report.written += 1,
                TxOutcome::Parked => report.parked += 1,
                TxOutcome::Skipped(_) => report.skipped += 1,
                TxOutcome::Ignored => report.ignored += 1,
            }
        }
        report.unparked = batch.unparked;
        let newest_slot = txs.iter().map(|t| t.tx.slot).chain(cursor.map(|c| c.slot)).max();
        if let Some(newest_slot) = newest_slot {
            report.expired = parking::expire(db.conn(), newest_slot, self.park_max_slots).await?;
        }
        if let Some(cursor) = cursor {
            store_cursor(db.conn(), source, cursor).await?;
        }
        // Last: the audit chain's lock is held from here to the commit only.
        batch.audit.append(&mut db).await?;
        report.statements = db.statements + 1; // and COMMIT
        conn.commit().await?;
        Ok(report)
    }

    /// Applies one decoded transaction inside the caller's database transaction, with whatever
    /// waited for the sessions it opens, and appends its audit entries (so the audit chain's
    /// lock is held from here to the caller's commit). For `reprocess`, one transaction at a time.
    pub async fn apply(&self, conn: &mut PgConnection, decoded_tx: &DecodedTx) -> Result<TxOutcome, sqlx::Error> {
        let mut db = Db::new(conn);
        let mut batch = Batch::default();
        let outcomes = self.apply_all(&mut db, &mut batch, std::slice::from_ref(decoded_tx), vec![]).await?;
        batch.audit.append(&mut db).await?;
        Ok(outcomes.into_iter().next().unwrap_or(TxOutcome::Ignored))
    }

    /// Applies `txs`, then what was parked for the vaults they (and `opened`) open, until
    /// nothing more can be applied; writes the rows and alerts. The audit entries stay in
    /// `batch` for the caller to append last.
    async fn apply_all(
        &self,
        db: &mut Db<'_>,
        batch: &mut Batch,
        txs: &[DecodedTx],
        mut opened: Vec<Pubkey>,
    ) -> Result<Vec<TxOutcome>, sqlx::Error> {
        let outcomes = self.place(db, batch, txs, &mut opened).await?;
        // Parked transactions whose vault got an incarnation here, oldest first, until none is
        // left to apply: O(what is parked for those vaults).
        while !opened.is_empty() {
            let ready = parking::parked_for(db.conn(), &opened).await?;
            opened.clear();
            if ready.is_empty() {
                break;
            }
            let signatures: Vec<&str> = ready.iter().map(|tx| tx.signature.as_str()).collect();
            parking::unpark(db.conn(), &signatures).await?;
            let ready: Vec<DecodedTx> = ready.into_iter().map(DecodedTx::new).collect();
            let unparked = self.place(db, batch, &ready, &mut opened).await?;
            batch.unparked += unparked.iter().filter(|o| matches!(o, TxOutcome::Written { .. })).count();
        }
        let ids = batch.incarnations.write_created(db).await?;
        let (mut rows, mut alerts) = (std::mem::take(&mut batch.rows), std::mem::take(&mut batch.alerts));
        rows.remap(&ids);
        alerts.remap(&ids);
        rows.flush(db).await?;
        alerts.raise(db, &self.rules).await?;
        Ok(outcomes)
    }

    /// Decides where every action of `txs` belongs and gathers its rows, audit entries and
    /// alerts into `batch`, in chain order; writes only what must be written at once (a
    /// session's creation, which later actions name; parked and skipped transactions). The
    /// vaults whose incarnation is created here are added to `opened`.
    ///
    /// Each action is folded into the incarnation of its vault that it belongs to
    /// ([`Incarnations::find`]). A landed transaction whose event names a vault with no indexed
    /// incarnation waits in indexer_parked (its session's creation is still to come, or was
    /// before this indexer's history and the vault could not be bootstrapped). A failed
    /// transaction is recorded in the audit log at once: a refused create_session (no session
    /// at all) or a refusal of an account that was no vault never waits; a refusal on a vault not
    /// indexed yet waits, bounded, for the session its failed rows belong to.
    async fn place(
        &self,
        db: &mut Db<'_>,
        batch: &mut Batch,
        txs: &[DecodedTx],
        opened: &mut Vec<Pubkey>,
    ) -> Result<Vec<TxOutcome>, sqlx::Error> {
        let vaults = txs.iter().flat_map(|t| t.decoded.actions.iter().filter_map(action_vault));
        batch.incarnations.load(db, vaults.collect::<Vec<_>>()).await?;
        let mut outcomes = Vec::with_capacity(txs.len());
        for decoded_tx in txs {
            let DecodedTx { tx, decoded } = decoded_tx;
            if decoded.actions.is_empty() {
                if decoded.problems.is_empty() {
                    outcomes.push(TxOutcome::Ignored);
                    continue;
                }
                let reason = decoded.problems_text();
                tracing::warn!(signature = %tx.signature, %reason, "transaction skipped");
                parking::record_skipped(db.conn(), tx, &reason).await?;
                outcomes.push(TxOutcome::Skipped(reason));
                continue;
            }
            let resolved = resolve(&batch.incarnations, decoded_tx);
            let waiting_on = resolved.iter().find_map(|r| match r {
                Resolution::Unknown(vault) => Some(*vault),
                _ => None,
            });
            if let Some(vault) = waiting_on {
                if tx.failure.is_none() {
                    parking::park(db.conn(), tx, &vault).await?;
                    outcomes.push(TxOutcome::Parked);
                    continue;
                }
                if !tx.failure.as_ref().is_some_and(|failure| vault_account_refused(tx, failure)) {
                    // Recorded at once (the audit entries are idempotent, so applying it later
                    // adds nothing to them); its failed rows wait, bounded, for their session.
                    for (ordinal, action) in decoded.actions.iter().enumerate() {
                        batch.audit.push(tx, ordinal, action);
                    }
                    parking::park(db.conn(), tx, &vault).await?;
                    outcomes.push(TxOutcome::Parked);
                    continue;
                }
                // The program refused the vault account itself: it was no vault, and no session
                // will ever come for it. Recorded in the audit log only, below.
            }
            for (ordinal, (action, resolution)) in decoded.actions.iter().zip(resolved).enumerate() {
                let session = match (resolution, action) {
                    (Resolution::NoSession | Resolution::Unknown(_), _) => None,
                    (Resolution::OpenedHere, VaultAction::Event(VaultEvent::SessionCreated(e))) => {
                        let key = batch.incarnations.create(tx, ordinal, e);
                        opened.push(e.vault);
                        Some((key, Some(e.approved_amount)))
                    }
                    // Known, or a vault opened earlier in this transaction.
                    (Resolution::Known | Resolution::OpenedHere, _) => action_vault(action)
                        .and_then(|vault| batch.incarnations.find(&vault, tx, ordinal))
                        .map(|(key, approved)| (key.clone(), approved)),
                };
                if let Some((session, approved)) = &session {
                    batch.rows.push(tx, ordinal, action, session);
                    batch.alerts.evaluate(&self.rules, tx, ordinal, action, session, *approved);
                }
                batch.audit.push(tx, ordinal, action);
            }
            if !decoded.problems.is_empty() {
                tracing::warn!(signature = %tx.signature, problems = %decoded.problems_text(), "parts of a transaction were not decoded");
            }
            outcomes.push(TxOutcome::Written { actions: decoded.actions.len() });
        }
        Ok(outcomes)
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
}

/// What a batch has gathered and not written yet.
#[derive(Default)]
struct Batch {
    incarnations: Incarnations,
    rows: rows::Rows,
    alerts: BatchAlerts,
    audit: audit::AuditRows,
    /// Parked transactions applied because their session arrived in this batch.
    unparked: usize,
}

/// The session each action of the transaction belongs to, as far as the batch knows before the
/// transaction is written: found (the incarnation of its vault at the action's position),
/// opened by this transaction (its own SessionCreated, or a vault a SessionCreated earlier in it
/// opened - found once that is written), none (a refused create_session made no session;
/// deployment-wide actions name none), or unknown (a vault with no indexed incarnation at that
/// position).
fn resolve(incarnations: &Incarnations, decoded_tx: &DecodedTx) -> Vec<Resolution> {
    let DecodedTx { tx, decoded } = decoded_tx;
    let mut opened = vec![];
    decoded
        .actions
        .iter()
        .enumerate()
        .map(|(ordinal, action)| match action {
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
                Some(vault) => match incarnations.find(&vault, tx, ordinal) {
                    Some(_) => Resolution::Known,
                    None => Resolution::Unknown(vault),
                },
            },
        })
        .collect()
}

/// Where an action of a transaction belongs (see [`resolve`]).
enum Resolution {
    Known,
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
