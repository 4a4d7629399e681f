//! An audit_log row for every on-chain action, allowed or refused, appended to the hash chain.
//! `chain_ref` (signature:ordinal) makes the append idempotent.
//!
//! The indexer chains its rows itself (migration 0013): a batch's entries are gathered, then
//! appended as the last statement before COMMIT - audit_log_reserve() takes the chain's lock and
//! says where the chain ends, the hashes are computed here exactly as audit_log_row_hash()
//! computes them, and the database checks every row of the statement. The lock is held for that
//! statement and the commit only, not for the batch.

use std::collections::HashSet;

use ephemeral_vault::sdk::VaultEvent;
use sha2::{Digest, Sha256};

use super::incarnations::session_uuid;
use super::Db;
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

/// One audit row as the indexer writes it.
struct Row {
    entry: Entry,
    success: bool,
    error: Option<String>,
    chain_ref: String,
    slot: u64,
}

impl Row {
    /// metadata as PostgreSQL prints the jsonb {"chain_ref": ..., "slot": ...}: keys ordered by
    /// length, then bytes; ", " and ": " between. chain_ref is base58, ':' and digits: nothing
    /// to escape.
    fn metadata_text(&self) -> String {
        format!("{{\"slot\": {}, \"chain_ref\": \"{}\"}}", self.slot, self.chain_ref)
    }
}

/// What audit_log_reserve() answers (migration 0013).
#[derive(sqlx::FromRow)]
struct Reserved {
    /// The chain's head: position and row_hash; None for an empty log.
    head_seq: Option<i64>,
    head_hash: Option<Vec<u8>>,
    /// Fresh audit_log ids, one per row asked for.
    ids: Vec<i32>,
    /// The time to stamp the rows with, as the hash encodes it.
    stamp: String,
    /// The chain_refs asked about that the log already has.
    recorded: Vec<String>,
}

/// A batch's audit rows, one per chain_ref, in the order the actions were applied.
#[derive(Default)]
pub struct AuditRows {
    rows: Vec<Row>,
    seen: HashSet<String>,
}

impl AuditRows {
    /// Gathers the entry of one action. It names the vault (`target`) and the session id, not
    /// the incarnation's row: the entry is the chain's fact, the same whenever and in whatever
    /// order it is indexed.
    pub fn push(&mut self, tx: &ChainTx, ordinal: usize, action: &VaultAction) {
        let chain_ref = format!("{}:{ordinal}", tx.signature);
        if !self.seen.insert(chain_ref.clone()) {
            return;
        }
        let (success, error) = match action {
            VaultAction::Event(_) => (true, None),
            VaultAction::Refused { failure, cause, .. } => (false, Some(cause.describe(failure))),
        };
        self.rows.push(Row { entry: entry(action), success, error, chain_ref, slot: tx.slot });
    }

    /// Appends the rows the log does not have yet: two statements (reserve, insert), or none.
    pub async fn append(self, db: &mut Db<'_>) -> Result<(), sqlx::Error> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let refs: Vec<&str> = self.rows.iter().map(|r| r.chain_ref.as_str()).collect();
        let Reserved { head_seq, head_hash, ids, stamp, recorded } =
            sqlx::query_as("SELECT head_seq, head_hash, ids, stamp, recorded FROM audit_log_reserve($1, $2)")
                .bind(refs.len() as i32)
                .bind(&refs)
                .fetch_one(db.conn())
                .await?;
        let recorded: HashSet<String> = recorded.into_iter().collect();
        let new: Vec<Row> = self.rows.into_iter().filter(|r| !recorded.contains(&r.chain_ref)).collect();
        if new.is_empty() {
            return Ok(());
        }
        let mut seq = head_seq.unwrap_or(0);
        let mut prev = head_hash;
        let mut chained = Vec::with_capacity(new.len());
        for (row, id) in new.iter().zip(ids) {
            seq += 1;
            let metadata = row.metadata_text();
            let hash = row_hash(seq, prev.as_deref(), id, row, &metadata, &stamp);
            chained.push((id, seq, prev.take(), hash.clone(), metadata));
            prev = Some(hash);
        }
        sqlx::query(
            "INSERT INTO audit_log (id, chain_seq, prev_hash, row_hash, created_at, session_id, parent_wallet, action,
                actor, target, success, error_message, metadata)
             SELECT u.id, u.seq, u.prev, u.hash, $5::timestamptz, u.session_id, u.parent, u.action, u.actor, u.target,
                    u.success, u.error, u.metadata::jsonb
             FROM UNNEST($1::int4[], $2::int8[], $3::bytea[], $4::bytea[], $6::varchar[], $7::varchar[],
                         $8::varchar[], $9::varchar[], $10::varchar[], $11::bool[], $12::text[], $13::text[])
                  AS u(id, seq, prev, hash, session_id, parent, action, actor, target, success, error, metadata)",
        )
        .bind(chained.iter().map(|c| c.0).collect::<Vec<_>>())
        .bind(chained.iter().map(|c| c.1).collect::<Vec<_>>())
        .bind(chained.iter().map(|c| c.2.clone()).collect::<Vec<_>>())
        .bind(chained.iter().map(|c| c.3.clone()).collect::<Vec<_>>())
        .bind(&stamp)
        .bind(new.iter().map(|r| r.entry.session_id.as_deref()).collect::<Vec<_>>())
        .bind(new.iter().map(|r| r.entry.parent.as_deref()).collect::<Vec<_>>())
        .bind(new.iter().map(|r| r.entry.action.as_str()).collect::<Vec<_>>())
        .bind(new.iter().map(|r| r.entry.actor.as_str()).collect::<Vec<_>>())
        .bind(new.iter().map(|r| r.entry.target.as_deref()).collect::<Vec<_>>())
        .bind(new.iter().map(|r| r.success).collect::<Vec<_>>())
        .bind(new.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>())
        .bind(chained.iter().map(|c| c.4.as_str()).collect::<Vec<_>>())
        .execute(db.conn())
        .await?;
        Ok(())
    }
}

/// One field of audit_log_row_hash()'s encoding (migration 0006): 0x00 for NULL, else 0x01, the
/// UTF-8 length as a 4-byte big-endian integer, and the bytes.
fn field(hasher: &mut Sha256, value: Option<&str>) {
    match value {
        None => hasher.update([0u8]),
        Some(text) => {
            hasher.update([1u8]);
            hasher.update((text.len() as u32).to_be_bytes());
            hasher.update(text.as_bytes());
        }
    }
}

/// audit_log_row_hash() of a row the indexer writes (ip_address and user_agent NULL).
fn row_hash(seq: i64, prev: Option<&[u8]>, id: i32, row: &Row, metadata: &str, created_at: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(b"ephemeral-vault/audit_log/v1");
    let prev_hex = prev.map(|p| p.iter().map(|b| format!("{b:02x}")).collect::<String>());
    field(&mut hasher, Some(&seq.to_string()));
    field(&mut hasher, prev_hex.as_deref());
    field(&mut hasher, Some(&id.to_string()));
    field(&mut hasher, row.entry.session_id.as_deref());
    field(&mut hasher, row.entry.parent.as_deref());
    field(&mut hasher, Some(&row.entry.action));
    field(&mut hasher, Some(&row.entry.actor));
    field(&mut hasher, row.entry.target.as_deref());
    field(&mut hasher, None);
    field(&mut hasher, None);
    field(&mut hasher, Some(if row.success { "true" } else { "false" }));
    field(&mut hasher, row.error.as_deref());
    field(&mut hasher, Some(metadata));
    field(&mut hasher, Some(created_at));
    hasher.finalize().to_vec()
}
