//! One decoded action -> its rows in ephemeral_sessions, vault_transactions, delegation_history
//! and cleanup_events (alerts come after, from crate::alerts). Every statement is an upsert that
//! a replay leaves as is.

use anchor_lang::prelude::Pubkey;
use ephemeral_vault::events::SessionTotals;
use ephemeral_vault::sdk::VaultEvent;
use ephemeral_vault::state::CleanupReason;
use serde_json::json;
use sqlx::PgConnection;

use crate::chain_tx::ChainTx;
use crate::chain_tx::TxFailure;
use crate::decode::{Cause, VaultAction, VaultInstruction};
use ephemeral_vault::events::{
    DelegateApproved, Deposited, FeesToppedUp, SessionCreated, SessionRevoked, TradeExecuted, VaultCleaned, Withdrawn,
};
use vault_db::amount::to_db;

/// The database's `session_id`: the 16 on-chain bytes as a lowercase hyphenated UUID.
pub fn session_uuid(bytes: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*bytes).to_string()
}

fn mint_column(mint: &Pubkey) -> Option<String> {
    (*mint != Pubkey::default()).then(|| mint.to_string())
}

/// A session as the writer names it: its row in ephemeral_sessions (one vault incarnation) and
/// its public session id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionKey {
    /// `ephemeral_sessions.id`, what every other table's `session_ref` holds.
    pub id: i32,
    pub session_id: String,
}

/// The incarnation of `vault` that the action at (`tx`, `ordinal`) belongs to: the newest one
/// created at or before it (slot first; within one transaction, the instruction order), or a
/// bootstrapped one (created before the indexer's history). None when no such incarnation is
/// indexed. Two incarnations of one vault created in the same slot by different transactions are
/// told apart only by their slot's order of arrival: the later-created is taken.
pub async fn incarnation(
    db: &mut PgConnection,
    vault: &Pubkey,
    tx: &ChainTx,
    ordinal: usize,
) -> Result<Option<SessionKey>, sqlx::Error> {
    let found: Option<(i32, String)> = sqlx::query_as(
        "SELECT id, session_id FROM ephemeral_sessions
         WHERE vault_pda = $1
           AND (creation_signature IS NOT NULL OR bootstrapped)
           AND (creation_signature IS NULL
                OR created_slot < $2
                OR (created_slot = $2 AND (creation_signature <> $3 OR creation_instruction_index <= $4)))
         ORDER BY COALESCE(created_slot, -1) DESC, (creation_signature = $3) DESC NULLS LAST,
                  creation_instruction_index DESC NULLS LAST, id DESC
         LIMIT 1",
    )
    .bind(vault.to_string())
    .bind(tx.slot as i64)
    .bind(&tx.signature)
    .bind(ordinal as i32)
    .fetch_optional(db)
    .await?;
    Ok(found.map(|(id, session_id)| SessionKey { id, session_id }))
}

/// A vault_transactions row.
struct TxRow<'a> {
    session: &'a SessionKey,
    kind: &'static str,
    amount: u64,
    fee: Option<u64>,
    trade_id: Option<u64>,
    status: &'static str,
    chain_time: Option<i64>,
    metadata: serde_json::Value,
    error: Option<String>,
}

async fn upsert_transaction(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    row: TxRow<'_>,
) -> Result<(), sqlx::Error> {
    // Status only moves forward: pending -> confirmed -> finalized, or pending -> failed. A
    // replay at a lower commitment (or a late 'pending' from the relay) leaves it alone.
    sqlx::query(
        "INSERT INTO vault_transactions (session_ref, session_id, transaction_signature, instruction_index,
            transaction_type, amount, fee_amount, trade_id, status, confirmed_at, block_slot, metadata, error_message)
         VALUES ($13, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (transaction_signature, instruction_index) DO UPDATE SET
            status = CASE
                WHEN vault_transactions.status = 'pending' THEN EXCLUDED.status
                WHEN vault_transactions.status = 'confirmed' AND EXCLUDED.status = 'finalized' THEN 'finalized'
                ELSE vault_transactions.status END,
            confirmed_at = COALESCE(vault_transactions.confirmed_at, EXCLUDED.confirmed_at),
            block_slot = COALESCE(vault_transactions.block_slot, EXCLUDED.block_slot),
            amount = EXCLUDED.amount,
            fee_amount = EXCLUDED.fee_amount,
            trade_id = EXCLUDED.trade_id,
            metadata = COALESCE(vault_transactions.metadata, '{}'::jsonb) || EXCLUDED.metadata,
            error_message = COALESCE(EXCLUDED.error_message, vault_transactions.error_message)
         WHERE vault_transactions.status IS DISTINCT FROM EXCLUDED.status
            OR vault_transactions.block_slot IS NULL
            OR vault_transactions.confirmed_at IS NULL",
    )
    .bind(&row.session.session_id)
    .bind(&tx.signature)
    .bind(ordinal as i32)
    .bind(row.kind)
    .bind(to_db(row.amount))
    .bind(row.fee.map(to_db))
    .bind(row.trade_id.map(to_db))
    .bind(row.status)
    .bind(row.chain_time.or(tx.block_time))
    .bind(tx.slot as i64)
    .bind(row.metadata)
    .bind(row.error)
    .bind(row.session.id)
    .execute(db)
    .await?;
    Ok(())
}

/// Running totals from an event: they only grow, so the larger value wins whatever the order.
async fn update_totals(
    db: &mut PgConnection,
    session: &SessionKey,
    totals: &SessionTotals,
    at: i64,
    slot: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE ephemeral_sessions SET
            total_deposited = GREATEST(total_deposited, $2),
            total_spent = GREATEST(total_spent, $3),
            total_withdrawn = GREATEST(total_withdrawn, $4),
            total_fee_top_ups = GREATEST(total_fee_top_ups, $5),
            last_activity = GREATEST(last_activity, $6),
            last_event_slot = GREATEST(COALESCE(last_event_slot, 0), $7)
         WHERE id = $1",
    )
    .bind(session.id)
    .bind(to_db(totals.total_deposited))
    .bind(to_db(totals.total_spent))
    .bind(to_db(totals.total_withdrawn))
    .bind(to_db(totals.total_fee_top_ups))
    .bind(at)
    .bind(slot as i64)
    .execute(db)
    .await?;
    Ok(())
}

/// Status moves forward only: active < revoked < cleaned ('expired' is set by readers' views).
async fn advance_status(
    db: &mut PgConnection,
    session: &SessionKey,
    status: &str,
    revoked_at: Option<i64>,
    cleaned_at: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE ephemeral_sessions SET
            revoked_at = COALESCE(revoked_at, $3),
            cleaned_at = COALESCE(cleaned_at, $4),
            status = CASE
                WHEN status = 'cleaned' OR $2 = 'cleaned' THEN 'cleaned'
                WHEN status = 'revoked' OR $2 = 'revoked' THEN 'revoked'
                ELSE $2 END
         WHERE id = $1",
    )
    .bind(session.id)
    .bind(status)
    .bind(revoked_at)
    .bind(cleaned_at)
    .execute(db)
    .await?;
    Ok(())
}

async fn record_delegation(
    db: &mut PgConnection,
    session: &SessionKey,
    vault: &Pubkey,
    delegate: &Pubkey,
    rotation: u32,
    approved_at: i64,
    signature: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO delegation_history (session_ref, session_id, vault_pda, delegate_wallet, approved_at,
            approval_signature, is_active, rotation)
         VALUES ($7, $1, $2, $3, $4, $5, false, $6)
         ON CONFLICT (session_ref, rotation) DO NOTHING",
    )
    .bind(&session.session_id)
    .bind(vault.to_string())
    .bind(delegate.to_string())
    .bind(approved_at)
    .bind(signature)
    .bind(rotation as i32)
    .bind(session.id)
    .execute(&mut *db)
    .await?;
    sync_delegations(db, session).await
}

/// Derives every delegation's end and the one active delegation from stored facts only - the
/// rotations seen, the session's status and its revoke/cleanup rows - so the result is the same
/// whatever order the events arrived in: rotation k ends when rotation k+1 was approved; the
/// newest ends when the session was revoked or cleaned up; it is active while the session is.
/// Two passes, so the one-active-row index never sees two active rows.
async fn sync_delegations(db: &mut PgConnection, session: &SessionKey) -> Result<(), sqlx::Error> {
    const DERIVED: &str = "
        WITH ordered AS (
            SELECT d.id,
                   lead(d.approved_at) OVER w AS next_at,
                   lead(d.approval_signature) OVER w AS next_signature,
                   d.rotation = max(d.rotation) OVER (PARTITION BY d.session_ref) AS is_newest
            FROM delegation_history d
            WHERE d.session_ref = $1
            WINDOW w AS (PARTITION BY d.session_ref ORDER BY d.rotation)
        ), ended AS (
            SELECT COALESCE(s.revoked_at, s.cleaned_at) AS at,
                   s.status = 'active' AS live,
                   (SELECT t.transaction_signature FROM vault_transactions t
                     WHERE t.session_ref = s.id AND t.transaction_type IN ('revoke', 'cleanup')
                       AND t.status <> 'failed'
                     ORDER BY t.block_slot, t.instruction_index LIMIT 1) AS signature
            FROM ephemeral_sessions s WHERE s.id = $1
        )";
    sqlx::query(&format!(
        "{DERIVED}
         UPDATE delegation_history d SET
            revoked_at = CASE WHEN o.is_newest THEN e.at ELSE o.next_at END,
            revocation_signature = CASE WHEN o.is_newest THEN e.signature ELSE o.next_signature END,
            is_active = false
         FROM ordered o, ended e
         WHERE d.id = o.id AND NOT (o.is_newest AND e.live)"
    ))
    .bind(session.id)
    .execute(&mut *db)
    .await?;
    sqlx::query(&format!(
        "{DERIVED}
         UPDATE delegation_history d SET revoked_at = NULL, revocation_signature = NULL, is_active = true
         FROM ordered o, ended e
         WHERE d.id = o.id AND o.is_newest AND e.live"
    ))
    .bind(session.id)
    .execute(db)
    .await?;
    Ok(())
}

pub fn reason_word(reason: CleanupReason) -> &'static str {
    match reason {
        CleanupReason::Expired => "expired",
        CleanupReason::ManualRevoke => "manual_revoke",
        CleanupReason::Emergency => "emergency",
    }
}

/// Writes the rows of one action into `session` (the incarnation the caller resolved; for
/// SessionCreated, the one [`session_created`] made). One function per event below, each an
/// upsert a replay leaves as is.
pub async fn apply_action(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    action: &VaultAction,
    session: &SessionKey,
) -> Result<(), sqlx::Error> {
    let status = tx.commitment.status();
    match action {
        VaultAction::Event(VaultEvent::SessionCreated(e)) => created_rows(db, tx, ordinal, status, e, session).await,
        VaultAction::Event(VaultEvent::DelegateApproved(e)) => {
            delegate_approved(db, tx, ordinal, status, e, session).await
        }
        VaultAction::Event(VaultEvent::Deposited(e)) => deposited(db, tx, ordinal, status, e, session).await,
        VaultAction::Event(VaultEvent::Withdrawn(e)) => withdrawn(db, tx, ordinal, status, e, session).await,
        VaultAction::Event(VaultEvent::TradeExecuted(e)) => trade_executed(db, tx, ordinal, status, e, session).await,
        VaultAction::Event(VaultEvent::FeesToppedUp(e)) => fees_topped_up(db, tx, ordinal, status, e, session).await,
        VaultAction::Event(VaultEvent::SessionRevoked(e)) => session_revoked(db, tx, ordinal, status, e, session).await,
        VaultAction::Event(VaultEvent::VaultCleaned(e)) => vault_cleaned(db, tx, ordinal, status, e, session).await,
        // Deployment-wide: recorded in the audit log only.
        VaultAction::Event(
            VaultEvent::ConfigInitialized(_) | VaultEvent::ConfigUpdated(_) | VaultEvent::PauseSet(_),
        ) => Ok(()),
        VaultAction::Refused { instruction, failure, cause } => {
            refused(db, tx, ordinal, instruction, failure, cause, session).await
        }
    }
}

/// The incarnation a SessionCreated event opens, made or found:
/// - the row already written for this creation (a replay): its chain columns refreshed;
/// - else an open row of the same vault without a creation: one the session service registered
///   for this delegate, or one bootstrapped from the same account (same created_at) - claimed;
/// - else a new row.
pub async fn session_created(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    e: &SessionCreated,
) -> Result<SessionKey, sqlx::Error> {
    let session_id = session_uuid(&e.session_id);
    // Chain columns only: the service's (key, IP, user agent, device) stay as they are.
    const CHAIN_COLUMNS: &str = "
            mint = $5, created_at = $6, expires_at = $7, approved_amount = $8, per_trade_cap = $9,
            last_event_slot = GREATEST(COALESCE(s.last_event_slot, 0), $10),
            created_slot = $10, creation_signature = $11, creation_instruction_index = $12";
    let claim = format!(
        "UPDATE ephemeral_sessions s SET {CHAIN_COLUMNS}
         WHERE s.id = (
            SELECT id FROM ephemeral_sessions
            WHERE (creation_signature = $11 AND creation_instruction_index = $12)
               OR (vault_pda = $4 AND creation_signature IS NULL AND cleaned_at IS NULL
                   AND ((bootstrapped AND created_at = $6) OR (NOT bootstrapped AND ephemeral_wallet = $3)))
            ORDER BY (creation_signature IS NOT NULL) DESC
            LIMIT 1 FOR UPDATE)
           AND s.parent_wallet = $2 AND s.session_id = $1
         RETURNING s.id"
    );
    let claimed: Option<(i32,)> =
        created_params(sqlx::query_as(&claim), &session_id, tx, ordinal, e).fetch_optional(&mut *db).await?;
    if let Some((id,)) = claimed {
        return Ok(SessionKey { id, session_id });
    }
    let insert = format!(
        "INSERT INTO ephemeral_sessions AS s (session_id, parent_wallet, ephemeral_wallet, vault_pda, mint,
            created_at, expires_at, last_activity, approved_amount, per_trade_cap, status, last_event_slot,
            created_slot, creation_signature, creation_instruction_index)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8, $9, 'active', $10, $10, $11, $12)
         ON CONFLICT (creation_signature, creation_instruction_index) WHERE creation_signature IS NOT NULL
         DO UPDATE SET {CHAIN_COLUMNS}
         RETURNING s.id"
    );
    let (id,): (i32,) =
        created_params(sqlx::query_as(&insert), &session_id, tx, ordinal, e).fetch_one(&mut *db).await?;
    Ok(SessionKey { id, session_id })
}

/// The parameters $1..$12 both statements of [`session_created`] take.
fn created_params<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    session_id: &'q str,
    tx: &'q ChainTx,
    ordinal: usize,
    e: &SessionCreated,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(session_id)
        .bind(e.parent.to_string())
        .bind(e.delegate.to_string())
        .bind(e.vault.to_string())
        .bind(mint_column(&e.mint))
        .bind(e.created_at)
        .bind(e.expires_at)
        .bind(to_db(e.approved_amount))
        .bind(to_db(e.per_trade_cap))
        .bind(tx.slot as i64)
        .bind(&tx.signature)
        .bind(ordinal as i32)
}

async fn created_rows(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &SessionCreated,
    session: &SessionKey,
) -> Result<(), sqlx::Error> {
    let metadata = json!({
        "delegate": e.delegate.to_string(),
        "per_trade_cap": e.per_trade_cap.to_string(),
        "destinations": e.destinations.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "fee_top_up": e.fee_top_up.to_string(),
        "expires_at": e.expires_at,
    });
    let row = TxRow {
        session,
        kind: "create",
        amount: e.approved_amount,
        fee: None,
        trade_id: None,
        status,
        chain_time: Some(e.created_at),
        metadata,
        error: None,
    };
    upsert_transaction(db, tx, ordinal, row).await?;
    record_delegation(db, session, &e.vault, &e.delegate, 0, e.created_at, &tx.signature).await?;
    Ok(())
}

async fn delegate_approved(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &DelegateApproved,
    session: &SessionKey,
) -> Result<(), sqlx::Error> {
    let row = TxRow {
        session,
        kind: "approve_delegate",
        amount: 0,
        fee: None,
        trade_id: None,
        status,
        chain_time: Some(e.timestamp),
        metadata: json!({"previous_delegate": e.previous_delegate.to_string(), "delegate": e.delegate.to_string(), "rotation": e.rotations}),
        error: None,
    };
    upsert_transaction(db, tx, ordinal, row).await?;
    record_delegation(db, session, &e.vault, &e.delegate, e.rotations, e.timestamp, &tx.signature).await?;
    // The current delegate is the newest rotation's, whatever order events arrive in.
    sqlx::query(
        "UPDATE ephemeral_sessions s SET ephemeral_wallet = d.delegate_wallet,
            last_activity = GREATEST(s.last_activity, $2)
         FROM delegation_history d
         WHERE s.id = $1 AND d.session_ref = s.id
           AND d.rotation = (SELECT max(rotation) FROM delegation_history WHERE session_ref = $1)",
    )
    .bind(session.id)
    .bind(e.timestamp)
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// The rows of an event that moves funds: its transaction row, then the session's totals.
async fn funds_moved(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    row: TxRow<'_>,
    totals: &SessionTotals,
    at: i64,
) -> Result<(), sqlx::Error> {
    let session = row.session;
    upsert_transaction(db, tx, ordinal, row).await?;
    update_totals(db, session, totals, at, tx.slot).await
}

async fn deposited(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &Deposited,
    session: &SessionKey,
) -> Result<(), sqlx::Error> {
    let row = TxRow {
        session,
        kind: "deposit",
        amount: e.received,
        fee: None,
        trade_id: None,
        status,
        chain_time: Some(e.timestamp),
        metadata: json!({"sent": e.amount.to_string(), "mint": mint_column(&e.mint)}),
        error: None,
    };
    funds_moved(db, tx, ordinal, row, &e.totals, e.timestamp).await
}

async fn withdrawn(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &Withdrawn,
    session: &SessionKey,
) -> Result<(), sqlx::Error> {
    let row = TxRow {
        session,
        kind: "withdraw",
        amount: e.amount,
        fee: None,
        trade_id: None,
        status,
        chain_time: Some(e.timestamp),
        metadata: json!({}),
        error: None,
    };
    funds_moved(db, tx, ordinal, row, &e.totals, e.timestamp).await
}

async fn trade_executed(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &TradeExecuted,
    session: &SessionKey,
) -> Result<(), sqlx::Error> {
    let row = TxRow {
        session,
        kind: "trade",
        amount: e.amount,
        fee: Some(e.fee),
        trade_id: Some(e.trade_id),
        status,
        chain_time: Some(e.timestamp),
        metadata: json!({"destination": e.destination.to_string(), "delegate": e.delegate.to_string(),
            "remaining_allowance": e.remaining_allowance.to_string()}),
        error: None,
    };
    funds_moved(db, tx, ordinal, row, &e.totals, e.timestamp).await
}

async fn fees_topped_up(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &FeesToppedUp,
    session: &SessionKey,
) -> Result<(), sqlx::Error> {
    let row = TxRow {
        session,
        kind: "top_up",
        amount: e.amount,
        fee: None,
        trade_id: None,
        status,
        chain_time: Some(e.timestamp),
        metadata: json!({"delegate": e.delegate.to_string()}),
        error: None,
    };
    funds_moved(db, tx, ordinal, row, &e.totals, e.timestamp).await
}

async fn session_revoked(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &SessionRevoked,
    session: &SessionKey,
) -> Result<(), sqlx::Error> {
    let row = TxRow {
        session,
        kind: "revoke",
        amount: 0,
        fee: None,
        trade_id: None,
        status,
        chain_time: Some(e.revoked_at),
        metadata: json!({"delegate": e.delegate.to_string()}),
        error: None,
    };
    funds_moved(db, tx, ordinal, row, &e.totals, e.revoked_at).await?;
    advance_status(db, session, "revoked", Some(e.revoked_at), None).await?;
    sync_delegations(db, session).await?;
    Ok(())
}

async fn vault_cleaned(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &VaultCleaned,
    session: &SessionKey,
) -> Result<(), sqlx::Error> {
    let reason = reason_word(e.reason);
    let row = TxRow {
        session,
        kind: "cleanup",
        amount: e.returned_amount,
        fee: None,
        trade_id: None,
        status,
        chain_time: Some(e.timestamp),
        metadata: json!({"caller": e.caller.to_string(), "reward": e.reward.to_string(),
            "rent_returned": e.rent_returned.to_string(), "reason": reason}),
        error: None,
    };
    funds_moved(db, tx, ordinal, row, &e.totals, e.timestamp).await?;
    sqlx::query(
        "INSERT INTO cleanup_events (session_ref, session_id, vault_pda, returned_to_parent, cleanup_reward,
            rent_returned, cleanup_caller, cleanup_signature, cleanup_timestamp, cleanup_reason)
         VALUES ($10, $1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (session_ref) DO NOTHING",
    )
    .bind(&session.session_id)
    .bind(e.vault.to_string())
    .bind(to_db(e.returned_amount))
    .bind(to_db(e.reward))
    .bind(to_db(e.rent_returned))
    .bind(e.caller.to_string())
    .bind(&tx.signature)
    .bind(e.timestamp)
    .bind(reason)
    .bind(session.id)
    .execute(&mut *db)
    .await?;
    let revoked_at = matches!(e.reason, CleanupReason::ManualRevoke).then_some(e.timestamp);
    advance_status(db, session, "cleaned", revoked_at, Some(e.timestamp)).await?;
    sync_delegations(db, session).await?;
    Ok(())
}

/// A vault instruction of a failed transaction: a `failed` row on its session, with the error
/// of whichever instruction failed ([`Cause`]).
async fn refused(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    instruction: &VaultInstruction,
    failure: &TxFailure,
    cause: &Cause,
    session: &SessionKey,
) -> Result<(), sqlx::Error> {
    let Some(kind) = instruction.kind.transaction_type() else {
        return Ok(()); // a refused admin instruction: audit log only
    };
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
    let row = TxRow {
        session,
        kind,
        amount: instruction.amount.unwrap_or(0),
        fee: instruction.fee,
        trade_id: instruction.trade_id,
        status: "failed",
        chain_time: None,
        metadata: json!({"signer": instruction.signer.to_string(), "error_code": failure.custom_code,
            "failed_program": failed_program, "rolled_back_by": rolled_back_by}),
        error: Some(cause.describe(failure)),
    };
    upsert_transaction(db, tx, ordinal, row).await
}
