//! Decoded actions -> their rows in vault_transactions, ephemeral_sessions, delegation_history
//! and cleanup_events, gathered for a whole batch and written with one set-based statement per
//! table ([`Rows::flush`]). Every statement is an upsert that a replay leaves as is.

use std::collections::HashMap;

use anchor_lang::prelude::Pubkey;
use ephemeral_vault::events::{
    DelegateApproved, Deposited, FeesToppedUp, SessionCreated, SessionRevoked, SessionTotals, TradeExecuted,
    VaultCleaned, Withdrawn,
};
use ephemeral_vault::sdk::VaultEvent;
use ephemeral_vault::state::CleanupReason;
use rust_decimal::Decimal;
use serde_json::json;

use super::{Db, SessionKey};
use crate::chain_tx::{ChainTx, TxFailure};
use crate::decode::{Cause, VaultAction, VaultInstruction};
use vault_db::amount::to_db;

pub fn reason_word(reason: CleanupReason) -> &'static str {
    match reason {
        CleanupReason::Expired => "expired",
        CleanupReason::ManualRevoke => "manual_revoke",
        CleanupReason::Emergency => "emergency",
    }
}

/// A vault_transactions row.
struct TxRow {
    session: SessionKey,
    signature: String,
    ordinal: i32,
    kind: &'static str,
    amount: u64,
    fee: Option<u64>,
    trade_id: Option<u64>,
    status: &'static str,
    confirmed_at: Option<i64>,
    block_slot: i64,
    metadata: serde_json::Value,
    error: Option<String>,
}

impl TxRow {
    /// The same row seen twice in one batch (confirmed, then finalized; or a replay): combined
    /// as the upsert would combine them one after the other.
    fn merge(&mut self, later: TxRow) {
        self.status = forward_status(self.status, later.status);
        self.confirmed_at = self.confirmed_at.or(later.confirmed_at);
        if let (Some(old), serde_json::Value::Object(new)) = (self.metadata.as_object_mut(), later.metadata) {
            old.extend(new);
        }
        self.error = later.error.or(self.error.take());
        self.amount = later.amount;
        self.fee = later.fee;
        self.trade_id = later.trade_id;
    }
}

/// Status only moves forward: pending -> confirmed -> finalized, or pending -> failed.
fn forward_status(old: &'static str, new: &'static str) -> &'static str {
    match (old, new) {
        ("pending", new) => new,
        ("confirmed", "finalized") => "finalized",
        (old, _) => old,
    }
}

/// What a batch changes on one session row: totals only grow (the larger value wins whatever
/// the order), status only moves forward (active < revoked < cleaned).
#[derive(Default)]
struct SessionChange {
    totals: Option<SessionTotals>,
    last_event_slot: Option<i64>,
    revoked_at: Option<i64>,
    cleaned_at: Option<i64>,
    /// 0 = unchanged, 1 = revoked, 2 = cleaned.
    status: u8,
    /// The newest chain time of the session's rows in the batch (unix seconds): written with the
    /// totals, so the activity trigger of vault_transactions finds nothing newer to write.
    activity: Option<i64>,
    /// A delegate was approved: the session's delegate becomes the newest rotation's.
    rotated: bool,
    /// Revoked or cleaned: its delegations' ends are derived again.
    ended: bool,
}

impl SessionChange {
    /// Both changes of one session (a provisional id that turned out to be a row already named).
    fn absorb(&mut self, other: SessionChange) {
        if let Some(totals) = &other.totals {
            self.grow(totals, 0);
        }
        self.last_event_slot = self.last_event_slot.max(other.last_event_slot);
        self.revoked_at = match (self.revoked_at, other.revoked_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.cleaned_at = self.cleaned_at.or(other.cleaned_at);
        self.status = self.status.max(other.status);
        self.activity = self.activity.max(other.activity);
        self.rotated |= other.rotated;
        self.ended |= other.ended;
    }

    fn grow(&mut self, totals: &SessionTotals, slot: u64) {
        let t = self.totals.get_or_insert(*totals);
        t.total_deposited = t.total_deposited.max(totals.total_deposited);
        t.total_spent = t.total_spent.max(totals.total_spent);
        t.total_withdrawn = t.total_withdrawn.max(totals.total_withdrawn);
        t.total_fee_top_ups = t.total_fee_top_ups.max(totals.total_fee_top_ups);
        self.last_event_slot = self.last_event_slot.max(Some(slot as i64));
    }
}

struct Delegation {
    session: SessionKey,
    vault: String,
    delegate: String,
    rotation: i32,
    approved_at: i64,
    signature: String,
}

struct Cleanup {
    session: SessionKey,
    vault: String,
    returned: u64,
    reward: u64,
    rent_returned: u64,
    caller: String,
    signature: String,
    at: i64,
    reason: &'static str,
}

/// Where an action is: its transaction, its position in it, the session it belongs to.
struct At<'a> {
    tx: &'a ChainTx,
    ordinal: usize,
    session: &'a SessionKey,
}

impl At<'_> {
    /// The action's vault_transactions row; its chain time is the event's, else the block's.
    fn row(&self, kind: &'static str, amount: u64, chain_time: Option<i64>, metadata: serde_json::Value) -> TxRow {
        TxRow {
            session: self.session.clone(),
            signature: self.tx.signature.clone(),
            ordinal: self.ordinal as i32,
            kind,
            amount,
            fee: None,
            trade_id: None,
            status: self.tx.commitment.status(),
            confirmed_at: chain_time.or(self.tx.block_time),
            block_slot: self.tx.slot as i64,
            metadata,
            error: None,
        }
    }
}

/// The rows of a batch, de-duplicated by their keys, in first-seen order.
#[derive(Default)]
pub struct Rows {
    transactions: Vec<TxRow>,
    transaction_at: HashMap<(String, i32), usize>,
    sessions: HashMap<i32, SessionChange>,
    delegations: HashMap<(i32, i32), Delegation>,
    cleanups: HashMap<i32, Cleanup>,
}

impl Rows {
    /// Gathers the rows of one action of `tx` in `session` (the incarnation it belongs to): one
    /// function per event below.
    pub fn push(&mut self, tx: &ChainTx, ordinal: usize, action: &VaultAction, session: &SessionKey) {
        let at = At { tx, ordinal, session };
        match action {
            VaultAction::Event(VaultEvent::SessionCreated(e)) => self.session_created(&at, e),
            VaultAction::Event(VaultEvent::DelegateApproved(e)) => self.delegate_approved(&at, e),
            VaultAction::Event(VaultEvent::Deposited(e)) => self.deposited(&at, e),
            VaultAction::Event(VaultEvent::Withdrawn(e)) => self.withdrawn(&at, e),
            VaultAction::Event(VaultEvent::TradeExecuted(e)) => self.trade_executed(&at, e),
            VaultAction::Event(VaultEvent::FeesToppedUp(e)) => self.fees_topped_up(&at, e),
            VaultAction::Event(VaultEvent::SessionRevoked(e)) => self.session_revoked(&at, e),
            VaultAction::Event(VaultEvent::VaultCleaned(e)) => self.vault_cleaned(&at, e),
            // Deployment-wide: recorded in the audit log only.
            VaultAction::Event(
                VaultEvent::ConfigInitialized(_) | VaultEvent::ConfigUpdated(_) | VaultEvent::PauseSet(_),
            ) => {}
            VaultAction::Refused { instruction, failure, cause } => {
                if let Some(refused) = refused_row(&at, instruction, failure, cause) {
                    self.transaction(refused);
                }
            }
        }
    }

    fn session_created(&mut self, at: &At<'_>, e: &SessionCreated) {
        let metadata = json!({
            "delegate": e.delegate.to_string(),
            "per_trade_cap": e.per_trade_cap.to_string(),
            "destinations": e.destinations.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "fee_top_up": e.fee_top_up.to_string(),
            "expires_at": e.expires_at,
        });
        self.transaction(at.row("create", e.approved_amount, Some(e.created_at), metadata));
        self.delegation(at, &e.vault, &e.delegate, 0, e.created_at);
    }

    fn delegate_approved(&mut self, at: &At<'_>, e: &DelegateApproved) {
        let metadata = json!({"previous_delegate": e.previous_delegate.to_string(),
            "delegate": e.delegate.to_string(), "rotation": e.rotations});
        self.transaction(at.row("approve_delegate", 0, Some(e.timestamp), metadata));
        self.delegation(at, &e.vault, &e.delegate, e.rotations, e.timestamp);
        self.session(at.session).rotated = true;
    }

    fn deposited(&mut self, at: &At<'_>, e: &Deposited) {
        let metadata =
            json!({"sent": e.amount.to_string(), "mint": (e.mint != Pubkey::default()).then(|| e.mint.to_string())});
        self.transaction(at.row("deposit", e.received, Some(e.timestamp), metadata));
        self.session(at.session).grow(&e.totals, at.tx.slot);
    }

    fn withdrawn(&mut self, at: &At<'_>, e: &Withdrawn) {
        self.transaction(at.row("withdraw", e.amount, Some(e.timestamp), json!({})));
        self.session(at.session).grow(&e.totals, at.tx.slot);
    }

    fn trade_executed(&mut self, at: &At<'_>, e: &TradeExecuted) {
        let metadata = json!({"destination": e.destination.to_string(), "delegate": e.delegate.to_string(),
            "remaining_allowance": e.remaining_allowance.to_string()});
        let mut trade = at.row("trade", e.amount, Some(e.timestamp), metadata);
        trade.fee = Some(e.fee);
        trade.trade_id = Some(e.trade_id);
        self.transaction(trade);
        self.session(at.session).grow(&e.totals, at.tx.slot);
    }

    fn fees_topped_up(&mut self, at: &At<'_>, e: &FeesToppedUp) {
        self.transaction(at.row("top_up", e.amount, Some(e.timestamp), json!({"delegate": e.delegate.to_string()})));
        self.session(at.session).grow(&e.totals, at.tx.slot);
    }

    fn session_revoked(&mut self, at: &At<'_>, e: &SessionRevoked) {
        self.transaction(at.row("revoke", 0, Some(e.revoked_at), json!({"delegate": e.delegate.to_string()})));
        let change = self.session(at.session);
        change.grow(&e.totals, at.tx.slot);
        change.revoked_at = change.revoked_at.min(Some(e.revoked_at)).or(Some(e.revoked_at));
        change.status = change.status.max(1);
        change.ended = true;
    }

    fn vault_cleaned(&mut self, at: &At<'_>, e: &VaultCleaned) {
        let reason = reason_word(e.reason);
        let metadata = json!({"caller": e.caller.to_string(), "reward": e.reward.to_string(),
            "rent_returned": e.rent_returned.to_string(), "reason": reason});
        self.transaction(at.row("cleanup", e.returned_amount, Some(e.timestamp), metadata));
        self.cleanups.entry(at.session.id).or_insert_with(|| Cleanup {
            session: at.session.clone(),
            vault: e.vault.to_string(),
            returned: e.returned_amount,
            reward: e.reward,
            rent_returned: e.rent_returned,
            caller: e.caller.to_string(),
            signature: at.tx.signature.clone(),
            at: e.timestamp,
            reason,
        });
        let change = self.session(at.session);
        change.grow(&e.totals, at.tx.slot);
        if matches!(e.reason, CleanupReason::ManualRevoke) {
            change.revoked_at = change.revoked_at.or(Some(e.timestamp));
        }
        change.cleaned_at = change.cleaned_at.or(Some(e.timestamp));
        change.status = 2;
        change.ended = true;
    }

    /// Renames the sessions created in this batch from their provisional ids to the ids they
    /// were written with ([`super::incarnations::Incarnations::write_created`]).
    pub fn remap(&mut self, ids: &HashMap<i32, i32>) {
        if ids.is_empty() {
            return;
        }
        let real = |key: &mut SessionKey| {
            if let Some(id) = ids.get(&key.id) {
                key.id = *id;
            }
        };
        self.transactions.iter_mut().for_each(|t| real(&mut t.session));
        for (id, change) in std::mem::take(&mut self.sessions) {
            let id = ids.get(&id).copied().unwrap_or(id);
            match self.sessions.remove(&id) {
                Some(mut known) => {
                    known.absorb(change);
                    self.sessions.insert(id, known);
                }
                None => {
                    self.sessions.insert(id, change);
                }
            }
        }
        for (_, mut d) in std::mem::take(&mut self.delegations) {
            real(&mut d.session);
            self.delegations.entry((d.session.id, d.rotation)).or_insert(d);
        }
        for (_, mut c) in std::mem::take(&mut self.cleanups) {
            real(&mut c.session);
            self.cleanups.entry(c.session.id).or_insert(c);
        }
    }

    fn transaction(&mut self, row: TxRow) {
        let change = self.session(&row.session);
        change.activity = change.activity.max(row.confirmed_at);
        match self.transaction_at.get(&(row.signature.clone(), row.ordinal)) {
            Some(&at) => self.transactions[at].merge(row),
            None => {
                self.transaction_at.insert((row.signature.clone(), row.ordinal), self.transactions.len());
                self.transactions.push(row);
            }
        }
    }

    fn session(&mut self, session: &SessionKey) -> &mut SessionChange {
        self.sessions.entry(session.id).or_default()
    }

    fn delegation(&mut self, at: &At<'_>, vault: &Pubkey, delegate: &Pubkey, rotation: u32, approved_at: i64) {
        self.delegations.entry((at.session.id, rotation as i32)).or_insert_with(|| Delegation {
            session: at.session.clone(),
            vault: vault.to_string(),
            delegate: delegate.to_string(),
            rotation: rotation as i32,
            approved_at,
            signature: at.tx.signature.clone(),
        });
        self.session(at.session).ended = true; // the previous rotation ends: derive again
    }

    /// Writes everything gathered: at most six statements, whatever the batch's size. Order
    /// matters: delegations before the sessions' delegate; the sessions' last activity before
    /// the transactions (each session row is written once, not again by the activity trigger);
    /// transactions before the delegations' ends (which name the revoking transaction).
    pub async fn flush(self, db: &mut Db<'_>) -> Result<(), sqlx::Error> {
        let mut delegations: Vec<&Delegation> = self.delegations.values().collect();
        delegations.sort_by_key(|d| (d.session.id, d.rotation));
        insert_delegations(db, &delegations).await?;
        let mut sessions: Vec<(&i32, &SessionChange)> = self.sessions.iter().collect();
        sessions.sort_by_key(|(id, _)| **id);
        update_sessions(db, &sessions).await?;
        insert_transactions(db, &self.transactions).await?;
        let ended: Vec<i32> = sessions.iter().filter(|(_, c)| c.ended).map(|(id, _)| **id).collect();
        sync_delegations(db, &ended).await?;
        let mut cleanups: Vec<&Cleanup> = self.cleanups.values().collect();
        cleanups.sort_by_key(|c| c.session.id);
        insert_cleanups(db, &cleanups).await
    }
}

/// A vault instruction of a failed transaction: a `failed` row on its session, with the error
/// of whichever instruction failed ([`Cause`]). None for a refused admin instruction (audit log
/// only).
fn refused_row(at: &At<'_>, instruction: &VaultInstruction, failure: &TxFailure, cause: &Cause) -> Option<TxRow> {
    let kind = instruction.kind.transaction_type()?;
    let rolled_back_by = match cause {
        Cause::RolledBack { instruction_index, program } => {
            json!({"instruction_index": instruction_index, "program": program.map(|p| p.to_string())})
        }
        Cause::Failed { .. } => serde_json::Value::Null,
    };
    let failed_program = match cause {
        Cause::Failed { program } => program.map(|p| p.to_string()),
        Cause::RolledBack { .. } => None,
    };
    let metadata = json!({"signer": instruction.signer.to_string(), "error_code": failure.custom_code,
        "failed_program": failed_program, "rolled_back_by": rolled_back_by});
    let mut row = at.row(kind, instruction.amount.unwrap_or(0), None, metadata);
    row.fee = instruction.fee;
    row.trade_id = instruction.trade_id;
    row.status = "failed";
    row.error = Some(cause.describe(failure));
    Some(row)
}

async fn insert_transactions(db: &mut Db<'_>, rows: &[TxRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let column =
        |f: fn(&TxRow) -> Option<u64>| -> Vec<Option<Decimal>> { rows.iter().map(|r| f(r).map(to_db)).collect() };
    // Status only moves forward: pending -> confirmed -> finalized, or pending -> failed. A
    // replay at a lower commitment (or a late 'pending' from the relay) leaves the row alone, and
    // the WHERE leaves an unchanged row unwritten.
    sqlx::query(
        "INSERT INTO vault_transactions AS t (session_ref, session_id, transaction_signature, instruction_index,
            transaction_type, amount, fee_amount, trade_id, status, confirmed_at, block_slot, metadata, error_message)
         SELECT * FROM UNNEST($1::int4[], $2::varchar[], $3::varchar[], $4::int4[], $5::varchar[], $6::numeric[],
            $7::numeric[], $8::numeric[], $9::varchar[], $10::int8[], $11::int8[], $12::jsonb[], $13::text[])
         ON CONFLICT (transaction_signature, instruction_index) DO UPDATE SET
            status = CASE
                WHEN t.status = 'pending' THEN EXCLUDED.status
                WHEN t.status = 'confirmed' AND EXCLUDED.status = 'finalized' THEN 'finalized'
                ELSE t.status END,
            confirmed_at = COALESCE(t.confirmed_at, EXCLUDED.confirmed_at),
            block_slot = COALESCE(t.block_slot, EXCLUDED.block_slot),
            amount = EXCLUDED.amount,
            fee_amount = EXCLUDED.fee_amount,
            trade_id = EXCLUDED.trade_id,
            metadata = COALESCE(t.metadata, '{}'::jsonb) || EXCLUDED.metadata,
            error_message = COALESCE(EXCLUDED.error_message, t.error_message)
         WHERE t.status IS DISTINCT FROM EXCLUDED.status
            OR t.block_slot IS NULL
            OR t.confirmed_at IS NULL",
    )
    .bind(rows.iter().map(|r| r.session.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.session.session_id.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.signature.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.ordinal).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| to_db(r.amount)).collect::<Vec<_>>())
    .bind(column(|r| r.fee))
    .bind(column(|r| r.trade_id))
    .bind(rows.iter().map(|r| r.status).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.confirmed_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.block_slot).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.metadata.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>())
    .execute(db.conn())
    .await?;
    Ok(())
}

/// Idempotent on a delegation's key, (session, rotation). One transaction may create a session
/// and approve new delegates: several rotations with one approving signature (migration 0013).
async fn insert_delegations(db: &mut Db<'_>, rows: &[&Delegation]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO delegation_history (session_ref, session_id, vault_pda, delegate_wallet, approved_at,
            approval_signature, is_active, rotation)
         SELECT r, i, v, d, a, s, false, n
         FROM UNNEST($1::int4[], $2::varchar[], $3::varchar[], $4::varchar[], $5::int8[], $6::varchar[], $7::int4[])
              AS u(r, i, v, d, a, s, n)
         ON CONFLICT (session_ref, rotation) DO NOTHING",
    )
    .bind(rows.iter().map(|r| r.session.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.session.session_id.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.vault.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.delegate.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.approved_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.signature.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.rotation).collect::<Vec<_>>())
    .execute(db.conn())
    .await?;
    Ok(())
}

/// Totals, status and delegate of every session the batch moved, in one statement (rows in id
/// order; they are locked already, see incarnations).
async fn update_sessions(db: &mut Db<'_>, sessions: &[(&i32, &SessionChange)]) -> Result<(), sqlx::Error> {
    if sessions.is_empty() {
        return Ok(());
    }
    let total = |f: fn(&SessionTotals) -> u64| -> Vec<Option<Decimal>> {
        sessions.iter().map(|(_, c)| c.totals.as_ref().map(|t| to_db(f(t)))).collect()
    };
    sqlx::query(
        "UPDATE ephemeral_sessions s SET
            total_deposited = GREATEST(s.total_deposited, u.deposited),
            total_spent = GREATEST(s.total_spent, u.spent),
            total_withdrawn = GREATEST(s.total_withdrawn, u.withdrawn),
            total_fee_top_ups = GREATEST(s.total_fee_top_ups, u.fee_top_ups),
            last_event_slot = GREATEST(COALESCE(s.last_event_slot, 0), u.slot),
            last_activity = GREATEST(s.last_activity, u.activity),
            revoked_at = COALESCE(s.revoked_at, u.revoked_at),
            cleaned_at = COALESCE(s.cleaned_at, u.cleaned_at),
            status = CASE
                WHEN s.status = 'cleaned' OR u.status = 2 THEN 'cleaned'
                WHEN s.status = 'revoked' OR u.status = 1 THEN 'revoked'
                ELSE s.status END,
            -- The current delegate is the newest rotation's, whatever order events arrive in.
            ephemeral_wallet = CASE WHEN u.rotated THEN COALESCE(
                (SELECT d.delegate_wallet FROM delegation_history d WHERE d.session_ref = s.id
                 ORDER BY d.rotation DESC LIMIT 1), s.ephemeral_wallet) ELSE s.ephemeral_wallet END
         FROM UNNEST($1::int4[], $2::numeric[], $3::numeric[], $4::numeric[], $5::numeric[], $6::int8[],
                     $7::int8[], $8::int8[], $9::int2[], $10::bool[], $11::int8[])
              AS u(id, deposited, spent, withdrawn, fee_top_ups, slot, revoked_at, cleaned_at, status, rotated, activity)
         WHERE s.id = u.id",
    )
    .bind(sessions.iter().map(|(id, _)| **id).collect::<Vec<_>>())
    .bind(total(|t| t.total_deposited))
    .bind(total(|t| t.total_spent))
    .bind(total(|t| t.total_withdrawn))
    .bind(total(|t| t.total_fee_top_ups))
    .bind(sessions.iter().map(|(_, c)| c.last_event_slot).collect::<Vec<_>>())
    .bind(sessions.iter().map(|(_, c)| c.revoked_at).collect::<Vec<_>>())
    .bind(sessions.iter().map(|(_, c)| c.cleaned_at).collect::<Vec<_>>())
    .bind(sessions.iter().map(|(_, c)| c.status as i16).collect::<Vec<_>>())
    .bind(sessions.iter().map(|(_, c)| c.rotated).collect::<Vec<_>>())
    .bind(sessions.iter().map(|(_, c)| c.activity).collect::<Vec<_>>())
    .execute(db.conn())
    .await?;
    Ok(())
}

/// Derives every delegation's end and the one active delegation of `sessions` from stored facts
/// only - the rotations seen, the session's status and its revoke/cleanup rows - so the result
/// is the same whatever order the events arrived in: rotation k ends when rotation k+1 was
/// approved; the newest ends when the session was revoked or cleaned up; it is active while the
/// session is. Two passes, so the one-active-row index never sees two active rows.
async fn sync_delegations(db: &mut Db<'_>, sessions: &[i32]) -> Result<(), sqlx::Error> {
    if sessions.is_empty() {
        return Ok(());
    }
    const DERIVED: &str = "
        WITH ordered AS (
            SELECT d.id, d.session_ref,
                   lead(d.approved_at) OVER w AS next_at,
                   lead(d.approval_signature) OVER w AS next_signature,
                   d.rotation = max(d.rotation) OVER (PARTITION BY d.session_ref) AS is_newest
            FROM delegation_history d
            WHERE d.session_ref = ANY($1)
            WINDOW w AS (PARTITION BY d.session_ref ORDER BY d.rotation)
        ), ended AS (
            SELECT s.id AS session_ref,
                   COALESCE(s.revoked_at, s.cleaned_at) AS at,
                   s.status = 'active' AS live,
                   (SELECT t.transaction_signature FROM vault_transactions t
                     WHERE t.session_ref = s.id AND t.transaction_type IN ('revoke', 'cleanup')
                       AND t.status <> 'failed'
                     ORDER BY t.block_slot, t.instruction_index LIMIT 1) AS signature
            FROM ephemeral_sessions s WHERE s.id = ANY($1)
        )";
    sqlx::query(&format!(
        "{DERIVED}
         UPDATE delegation_history d SET
            revoked_at = CASE WHEN o.is_newest THEN e.at ELSE o.next_at END,
            revocation_signature = CASE WHEN o.is_newest THEN e.signature ELSE o.next_signature END,
            is_active = false
         FROM ordered o JOIN ended e ON e.session_ref = o.session_ref
         WHERE d.id = o.id AND NOT (o.is_newest AND e.live)
           AND (d.revoked_at, d.revocation_signature, d.is_active) IS DISTINCT FROM
               (CASE WHEN o.is_newest THEN e.at ELSE o.next_at END,
                CASE WHEN o.is_newest THEN e.signature ELSE o.next_signature END, false)"
    ))
    .bind(sessions)
    .execute(db.conn())
    .await?;
    sqlx::query(&format!(
        "{DERIVED}
         UPDATE delegation_history d SET revoked_at = NULL, revocation_signature = NULL, is_active = true
         FROM ordered o JOIN ended e ON e.session_ref = o.session_ref
         WHERE d.id = o.id AND o.is_newest AND e.live AND NOT d.is_active"
    ))
    .bind(sessions)
    .execute(db.conn())
    .await?;
    Ok(())
}

async fn insert_cleanups(db: &mut Db<'_>, rows: &[&Cleanup]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO cleanup_events (session_ref, session_id, vault_pda, returned_to_parent, cleanup_reward,
            rent_returned, cleanup_caller, cleanup_signature, cleanup_timestamp, cleanup_reason)
         SELECT * FROM UNNEST($1::int4[], $2::varchar[], $3::varchar[], $4::numeric[], $5::numeric[], $6::numeric[],
            $7::varchar[], $8::varchar[], $9::int8[], $10::varchar[])
         ON CONFLICT (session_ref) DO NOTHING",
    )
    .bind(rows.iter().map(|r| r.session.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.session.session_id.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.vault.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| to_db(r.returned)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| to_db(r.reward)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| to_db(r.rent_returned)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.caller.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.signature.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.reason).collect::<Vec<_>>())
    .execute(db.conn())
    .await?;
    Ok(())
}
