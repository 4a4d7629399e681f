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
use crate::decode::{InstructionKind, VaultAction, VaultInstruction};
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

pub async fn session_exists(db: &mut PgConnection, vault: &Pubkey) -> Result<bool, sqlx::Error> {
    Ok(session_of_vault(db, vault).await?.is_some())
}

/// The session_id of the session row for `vault`, if one is indexed.
pub async fn session_of_vault(db: &mut PgConnection, vault: &Pubkey) -> Result<Option<String>, sqlx::Error> {
    let found: Option<(String,)> = sqlx::query_as("SELECT session_id FROM ephemeral_sessions WHERE vault_pda = $1")
        .bind(vault.to_string())
        .fetch_optional(db)
        .await?;
    Ok(found.map(|(s,)| s))
}

/// A vault_transactions row.
struct TxRow<'a> {
    session_id: &'a str,
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
        "INSERT INTO vault_transactions (session_id, transaction_signature, instruction_index, transaction_type,
            amount, fee_amount, trade_id, status, confirmed_at, block_slot, metadata, error_message)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
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
    .bind(row.session_id)
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
    .execute(db)
    .await?;
    Ok(())
}

/// Running totals from an event: they only grow, so the larger value wins whatever the order.
async fn update_totals(
    db: &mut PgConnection,
    session_id: &str,
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
         WHERE session_id = $1",
    )
    .bind(session_id)
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
    session_id: &str,
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
         WHERE session_id = $1",
    )
    .bind(session_id)
    .bind(status)
    .bind(revoked_at)
    .bind(cleaned_at)
    .execute(db)
    .await?;
    Ok(())
}

async fn record_delegation(
    db: &mut PgConnection,
    session_id: &str,
    vault: &Pubkey,
    delegate: &Pubkey,
    rotation: u32,
    approved_at: i64,
    signature: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO delegation_history (session_id, vault_pda, delegate_wallet, approved_at, approval_signature,
            is_active, rotation)
         VALUES ($1, $2, $3, $4, $5, false, $6)
         ON CONFLICT (session_id, rotation) DO NOTHING",
    )
    .bind(session_id)
    .bind(vault.to_string())
    .bind(delegate.to_string())
    .bind(approved_at)
    .bind(signature)
    .bind(rotation as i32)
    .execute(&mut *db)
    .await?;
    sync_delegations(db, session_id).await
}

/// Derives every delegation's end and the one active delegation from stored facts only - the
/// rotations seen, the session's status and its revoke/cleanup rows - so the result is the same
/// whatever order the events arrived in: rotation k ends when rotation k+1 was approved; the
/// newest ends when the session was revoked or cleaned up; it is active while the session is.
/// Two passes, so the one-active-row index never sees two active rows.
async fn sync_delegations(db: &mut PgConnection, session_id: &str) -> Result<(), sqlx::Error> {
    const DERIVED: &str = "
        WITH ordered AS (
            SELECT d.id,
                   lead(d.approved_at) OVER w AS next_at,
                   lead(d.approval_signature) OVER w AS next_signature,
                   d.rotation = max(d.rotation) OVER (PARTITION BY d.session_id) AS is_newest
            FROM delegation_history d
            WHERE d.session_id = $1
            WINDOW w AS (PARTITION BY d.session_id ORDER BY d.rotation)
        ), ended AS (
            SELECT COALESCE(s.revoked_at, s.cleaned_at) AS at,
                   s.status = 'active' AS live,
                   (SELECT t.transaction_signature FROM vault_transactions t
                     WHERE t.session_id = s.session_id AND t.transaction_type IN ('revoke', 'cleanup')
                       AND t.status <> 'failed'
                     ORDER BY t.block_slot, t.instruction_index LIMIT 1) AS signature
            FROM ephemeral_sessions s WHERE s.session_id = $1
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
    .bind(session_id)
    .execute(&mut *db)
    .await?;
    sqlx::query(&format!(
        "{DERIVED}
         UPDATE delegation_history d SET revoked_at = NULL, revocation_signature = NULL, is_active = true
         FROM ordered o, ended e
         WHERE d.id = o.id AND o.is_newest AND e.live"
    ))
    .bind(session_id)
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

/// Writes the rows of one action; one function per event below, each an upsert a replay
/// leaves as is.
pub async fn apply_action(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    action: &VaultAction,
) -> Result<(), sqlx::Error> {
    let status = tx.commitment.status();
    match action {
        VaultAction::Event(VaultEvent::SessionCreated(e)) => session_created(db, tx, ordinal, status, e).await,
        VaultAction::Event(VaultEvent::DelegateApproved(e)) => delegate_approved(db, tx, ordinal, status, e).await,
        VaultAction::Event(VaultEvent::Deposited(e)) => deposited(db, tx, ordinal, status, e).await,
        VaultAction::Event(VaultEvent::Withdrawn(e)) => withdrawn(db, tx, ordinal, status, e).await,
        VaultAction::Event(VaultEvent::TradeExecuted(e)) => trade_executed(db, tx, ordinal, status, e).await,
        VaultAction::Event(VaultEvent::FeesToppedUp(e)) => fees_topped_up(db, tx, ordinal, status, e).await,
        VaultAction::Event(VaultEvent::SessionRevoked(e)) => session_revoked(db, tx, ordinal, status, e).await,
        VaultAction::Event(VaultEvent::VaultCleaned(e)) => vault_cleaned(db, tx, ordinal, status, e).await,
        // Deployment-wide: recorded in the audit log only.
        VaultAction::Event(
            VaultEvent::ConfigInitialized(_) | VaultEvent::ConfigUpdated(_) | VaultEvent::PauseSet(_),
        ) => Ok(()),
        VaultAction::Refused { instruction, failure } => refused(db, tx, ordinal, instruction, failure).await,
    }
}

async fn session_created(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &SessionCreated,
) -> Result<(), sqlx::Error> {
    let session_id = session_uuid(&e.session_id);
    // The service may have registered the session first: complete its row with the
    // chain's columns and leave its own (key, IP, user agent, device) alone.
    sqlx::query(
        "INSERT INTO ephemeral_sessions (session_id, parent_wallet, ephemeral_wallet, vault_pda, mint,
            created_at, expires_at, last_activity, approved_amount, per_trade_cap, status, last_event_slot)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8, $9, 'active', $10)
         ON CONFLICT (session_id) DO UPDATE SET
            mint = EXCLUDED.mint,
            created_at = EXCLUDED.created_at,
            expires_at = EXCLUDED.expires_at,
            approved_amount = EXCLUDED.approved_amount,
            per_trade_cap = EXCLUDED.per_trade_cap,
            last_event_slot = GREATEST(COALESCE(ephemeral_sessions.last_event_slot, 0), EXCLUDED.last_event_slot)",
    )
    .bind(&session_id)
    .bind(e.parent.to_string())
    .bind(e.delegate.to_string())
    .bind(e.vault.to_string())
    .bind(mint_column(&e.mint))
    .bind(e.created_at)
    .bind(e.expires_at)
    .bind(to_db(e.approved_amount))
    .bind(to_db(e.per_trade_cap))
    .bind(tx.slot as i64)
    .execute(&mut *db)
    .await?;
    let metadata = json!({
        "delegate": e.delegate.to_string(),
        "per_trade_cap": e.per_trade_cap.to_string(),
        "destinations": e.destinations.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "fee_top_up": e.fee_top_up.to_string(),
        "expires_at": e.expires_at,
    });
    let row = TxRow {
        session_id: &session_id,
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
    record_delegation(db, &session_id, &e.vault, &e.delegate, 0, e.created_at, &tx.signature).await?;
    Ok(())
}

async fn delegate_approved(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &DelegateApproved,
) -> Result<(), sqlx::Error> {
    let session_id = session_uuid(&e.session_id);
    let row = TxRow {
        session_id: &session_id,
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
    record_delegation(db, &session_id, &e.vault, &e.delegate, e.rotations, e.timestamp, &tx.signature).await?;
    // The current delegate is the newest rotation's, whatever order events arrive in.
    sqlx::query(
        "UPDATE ephemeral_sessions s SET ephemeral_wallet = d.delegate_wallet
         FROM delegation_history d
         WHERE s.session_id = $1 AND d.session_id = s.session_id
           AND d.rotation = (SELECT max(rotation) FROM delegation_history WHERE session_id = $1)",
    )
    .bind(&session_id)
    .execute(&mut *db)
    .await?;
    sqlx::query("UPDATE ephemeral_sessions SET last_activity = GREATEST(last_activity, $2) WHERE session_id = $1")
        .bind(&session_id)
        .bind(e.timestamp)
        .execute(&mut *db)
        .await?;
    Ok(())
}

async fn deposited(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &Deposited,
) -> Result<(), sqlx::Error> {
    let session_id = session_uuid(&e.session_id);
    let row = TxRow {
        session_id: &session_id,
        kind: "deposit",
        amount: e.received,
        fee: None,
        trade_id: None,
        status,
        chain_time: Some(e.timestamp),
        metadata: json!({"sent": e.amount.to_string(), "mint": mint_column(&e.mint)}),
        error: None,
    };
    upsert_transaction(db, tx, ordinal, row).await?;
    update_totals(db, &session_id, &e.totals, e.timestamp, tx.slot).await?;
    Ok(())
}

async fn withdrawn(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &Withdrawn,
) -> Result<(), sqlx::Error> {
    let session_id = session_uuid(&e.session_id);
    let row = TxRow {
        session_id: &session_id,
        kind: "withdraw",
        amount: e.amount,
        fee: None,
        trade_id: None,
        status,
        chain_time: Some(e.timestamp),
        metadata: json!({}),
        error: None,
    };
    upsert_transaction(db, tx, ordinal, row).await?;
    update_totals(db, &session_id, &e.totals, e.timestamp, tx.slot).await?;
    Ok(())
}

async fn trade_executed(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &TradeExecuted,
) -> Result<(), sqlx::Error> {
    let session_id = session_uuid(&e.session_id);
    let row = TxRow {
        session_id: &session_id,
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
    upsert_transaction(db, tx, ordinal, row).await?;
    update_totals(db, &session_id, &e.totals, e.timestamp, tx.slot).await?;
    Ok(())
}

async fn fees_topped_up(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &FeesToppedUp,
) -> Result<(), sqlx::Error> {
    let session_id = session_uuid(&e.session_id);
    let row = TxRow {
        session_id: &session_id,
        kind: "top_up",
        amount: e.amount,
        fee: None,
        trade_id: None,
        status,
        chain_time: Some(e.timestamp),
        metadata: json!({"delegate": e.delegate.to_string()}),
        error: None,
    };
    upsert_transaction(db, tx, ordinal, row).await?;
    update_totals(db, &session_id, &e.totals, e.timestamp, tx.slot).await?;
    Ok(())
}

async fn session_revoked(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &SessionRevoked,
) -> Result<(), sqlx::Error> {
    let session_id = session_uuid(&e.session_id);
    let row = TxRow {
        session_id: &session_id,
        kind: "revoke",
        amount: 0,
        fee: None,
        trade_id: None,
        status,
        chain_time: Some(e.revoked_at),
        metadata: json!({"delegate": e.delegate.to_string()}),
        error: None,
    };
    upsert_transaction(db, tx, ordinal, row).await?;
    update_totals(db, &session_id, &e.totals, e.revoked_at, tx.slot).await?;
    advance_status(db, &session_id, "revoked", Some(e.revoked_at), None).await?;
    sync_delegations(db, &session_id).await?;
    Ok(())
}

async fn vault_cleaned(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    status: &'static str,
    e: &VaultCleaned,
) -> Result<(), sqlx::Error> {
    let session_id = session_uuid(&e.session_id);
    let reason = reason_word(e.reason);
    let row = TxRow {
        session_id: &session_id,
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
    upsert_transaction(db, tx, ordinal, row).await?;
    update_totals(db, &session_id, &e.totals, e.timestamp, tx.slot).await?;
    sqlx::query(
        "INSERT INTO cleanup_events (session_id, vault_pda, returned_to_parent, cleanup_reward, rent_returned,
            cleanup_caller, cleanup_signature, cleanup_timestamp, cleanup_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (session_id) DO NOTHING",
    )
    .bind(&session_id)
    .bind(e.vault.to_string())
    .bind(to_db(e.returned_amount))
    .bind(to_db(e.reward))
    .bind(to_db(e.rent_returned))
    .bind(e.caller.to_string())
    .bind(&tx.signature)
    .bind(e.timestamp)
    .bind(reason)
    .execute(&mut *db)
    .await?;
    let revoked_at = matches!(e.reason, CleanupReason::ManualRevoke).then_some(e.timestamp);
    advance_status(db, &session_id, "cleaned", revoked_at, Some(e.timestamp)).await?;
    sync_delegations(db, &session_id).await?;
    Ok(())
}

/// A vault instruction of a failed transaction: a `failed` row on its session, if the session is
/// indexed (a refused create_session has none to attach to).
async fn refused(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    instruction: &VaultInstruction,
    failure: &TxFailure,
) -> Result<(), sqlx::Error> {
    let (Some(kind), Some(vault)) = (instruction.kind.transaction_type(), instruction.vault) else {
        return Ok(()); // a refused admin instruction: audit log only
    };
    let Some(session_id) = session_of_vault(db, &vault).await? else {
        return Ok(()); // e.g. a refused create_session: no session to attach it to
    };
    let message = failure.describe();
    let amount = if instruction.kind == InstructionKind::CreateSession { 0 } else { instruction.amount.unwrap_or(0) };
    let row = TxRow {
        session_id: &session_id,
        kind,
        amount,
        fee: instruction.fee,
        trade_id: instruction.trade_id,
        status: "failed",
        chain_time: None,
        metadata: json!({"signer": instruction.signer.to_string(), "error_code": failure.custom_code}),
        error: Some(message),
    };
    upsert_transaction(db, tx, ordinal, row).await
}
