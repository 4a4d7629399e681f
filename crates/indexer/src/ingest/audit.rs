//! An audit_log row for every on-chain action, allowed or refused, appended to the hash chain.
//! `chain_ref` (signature:ordinal) makes the append idempotent.

use ephemeral_vault::sdk::VaultEvent;
use serde_json::json;
use sqlx::PgConnection;

use super::rows::session_uuid;
use crate::chain_tx::ChainTx;
use crate::decode::VaultAction;

struct Entry {
    action: String,
    actor: String,
    target: Option<String>,
    session_id: Option<String>,
    parent: Option<String>,
}

fn entry(action: &VaultAction) -> Entry {
    let event_entry = |name: &str, actor: String, vault: String, session: &[u8; 16], parent: String| Entry {
        action: format!("chain.{name}"),
        actor,
        target: Some(vault),
        session_id: Some(session_uuid(session)),
        parent: Some(parent),
    };
    match action {
        VaultAction::Event(event) => match event {
            VaultEvent::SessionCreated(e) => event_entry(
                "session_created",
                e.parent.to_string(),
                e.vault.to_string(),
                &e.session_id,
                e.parent.to_string(),
            ),
            VaultEvent::DelegateApproved(e) => event_entry(
                "delegate_approved",
                e.parent.to_string(),
                e.vault.to_string(),
                &e.session_id,
                e.parent.to_string(),
            ),
            VaultEvent::Deposited(e) => {
                event_entry("deposited", e.parent.to_string(), e.vault.to_string(), &e.session_id, e.parent.to_string())
            }
            VaultEvent::Withdrawn(e) => {
                event_entry("withdrawn", e.parent.to_string(), e.vault.to_string(), &e.session_id, e.parent.to_string())
            }
            VaultEvent::TradeExecuted(e) => event_entry(
                "trade_executed",
                e.delegate.to_string(),
                e.vault.to_string(),
                &e.session_id,
                e.parent.to_string(),
            ),
            VaultEvent::FeesToppedUp(e) => event_entry(
                "fees_topped_up",
                e.delegate.to_string(),
                e.vault.to_string(),
                &e.session_id,
                e.parent.to_string(),
            ),
            VaultEvent::SessionRevoked(e) => event_entry(
                "session_revoked",
                e.parent.to_string(),
                e.vault.to_string(),
                &e.session_id,
                e.parent.to_string(),
            ),
            VaultEvent::VaultCleaned(e) => event_entry(
                "vault_cleaned",
                e.caller.to_string(),
                e.vault.to_string(),
                &e.session_id,
                e.parent.to_string(),
            ),
            VaultEvent::ConfigInitialized(e) => Entry {
                action: "chain.config_initialized".into(),
                actor: e.admin.to_string(),
                target: None,
                session_id: None,
                parent: None,
            },
            VaultEvent::ConfigUpdated(e) => Entry {
                action: "chain.config_updated".into(),
                actor: e.admin.to_string(),
                target: Some(e.new_admin.to_string()),
                session_id: None,
                parent: None,
            },
            VaultEvent::PauseSet(e) => Entry {
                action: if e.paused { "chain.paused".into() } else { "chain.unpaused".into() },
                actor: e.admin.to_string(),
                target: None,
                session_id: None,
                parent: None,
            },
        },
        VaultAction::Refused { instruction, .. } => Entry {
            action: format!("chain.refused.{:?}", instruction.kind).to_lowercase(),
            actor: instruction.signer.to_string(),
            target: instruction.vault.map(|v| v.to_string()),
            session_id: instruction.session_id.as_ref().map(session_uuid),
            parent: None,
        },
    }
}

/// Appends the entry of one action. It names the vault (`target`) and the session id, not the
/// incarnation's row: the entry is the chain's fact, the same whenever and in whatever order it
/// is indexed.
pub async fn record(
    db: &mut PgConnection,
    tx: &ChainTx,
    ordinal: usize,
    action: &VaultAction,
) -> Result<(), sqlx::Error> {
    let entry = entry(action);
    let (success, error) = match action {
        VaultAction::Event(_) => (true, None),
        VaultAction::Refused { failure, cause, .. } => (false, Some(cause.describe(failure))),
    };
    sqlx::query(
        "INSERT INTO audit_log (session_id, parent_wallet, action, actor, target, success, error_message, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT ((metadata ->> 'chain_ref')) WHERE metadata ? 'chain_ref' DO NOTHING",
    )
    .bind(entry.session_id)
    .bind(entry.parent)
    .bind(entry.action)
    .bind(entry.actor)
    .bind(entry.target)
    .bind(success)
    .bind(error)
    .bind(json!({"chain_ref": format!("{}:{ordinal}", tx.signature), "slot": tx.slot}))
    .execute(db)
    .await?;
    Ok(())
}
