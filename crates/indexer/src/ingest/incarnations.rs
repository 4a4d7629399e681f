//! Which session (vault incarnation) each action of a batch belongs to, decided in memory from
//! one read of the batch's vaults: every incarnation of every vault the batch names is read once,
//! locked in id order (so the confirmed and the finalized indexers, writing the same sessions,
//! always lock them in the same order and cannot deadlock), and the incarnations the batch
//! creates are added as their SessionCreated events are written.

use std::collections::{HashMap, HashSet};

use anchor_lang::prelude::Pubkey;
use ephemeral_vault::events::SessionCreated;
use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::Db;
use crate::chain_tx::ChainTx;
use vault_db::amount::{from_db, to_db};

/// The database's `session_id`: the 16 on-chain bytes as a lowercase hyphenated UUID.
pub fn session_uuid(bytes: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*bytes).to_string()
}

/// A session as the writer names it: its row in ephemeral_sessions (one vault incarnation) and
/// its public session id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionKey {
    /// `ephemeral_sessions.id`, what every other table's `session_ref` holds.
    pub id: i32,
    pub session_id: String,
}

/// One incarnation as far as placing actions needs it.
#[derive(Clone, Debug)]
struct Incarnation {
    key: SessionKey,
    created_slot: Option<i64>,
    creation_signature: Option<String>,
    creation_instruction_index: Option<i32>,
    /// Approved amount in base units or lamports (the unusual-spending rule's denominator).
    approved: Option<u64>,
}

/// The incarnations of the vaults a batch touches.
#[derive(Default)]
pub struct Incarnations {
    by_vault: HashMap<Pubkey, Vec<Incarnation>>,
    loaded: HashSet<Pubkey>,
}

impl Incarnations {
    /// Reads (and locks, in id order) every created or bootstrapped incarnation of `vaults` not
    /// read yet: one statement.
    pub async fn load(&mut self, db: &mut Db<'_>, vaults: impl IntoIterator<Item = Pubkey>) -> Result<(), sqlx::Error> {
        let mut wanted: Vec<Pubkey> = vaults.into_iter().filter(|v| !self.loaded.contains(v)).collect();
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        let addresses: Vec<String> = wanted.iter().map(ToString::to_string).collect();
        #[allow(clippy::type_complexity)]
        let rows: Vec<(i32, String, String, Option<i64>, Option<String>, Option<i32>, Decimal)> = sqlx::query_as(
            "SELECT id, session_id, vault_pda, created_slot, creation_signature, creation_instruction_index,
                    approved_amount
             FROM ephemeral_sessions
             WHERE vault_pda = ANY($1) AND (creation_signature IS NOT NULL OR bootstrapped)
             ORDER BY id
             FOR NO KEY UPDATE",
        )
        .bind(&addresses)
        .fetch_all(db.conn())
        .await?;
        self.loaded.extend(wanted);
        for (id, session_id, vault, created_slot, creation_signature, creation_instruction_index, approved) in rows {
            let Ok(vault) = vault.parse::<Pubkey>() else { continue };
            self.by_vault.entry(vault).or_default().push(Incarnation {
                key: SessionKey { id, session_id },
                created_slot,
                creation_signature,
                creation_instruction_index,
                approved: from_db(approved).ok(),
            });
        }
        Ok(())
    }

    /// The incarnation of `vault` that the action at (`tx`, `ordinal`) belongs to: the newest one
    /// created at or before it (slot first; within one transaction, the instruction order), or a
    /// bootstrapped one (created before the indexer's history). None when none is indexed. Two
    /// incarnations of one vault created in the same slot by different transactions are told
    /// apart only by their order of arrival: the later-created (higher id) is taken.
    pub fn find(&self, vault: &Pubkey, tx: &ChainTx, ordinal: usize) -> Option<(&SessionKey, Option<u64>)> {
        let slot = tx.slot as i64;
        let ordinal = ordinal as i32;
        self.by_vault
            .get(vault)?
            .iter()
            .filter(|i| match (&i.creation_signature, i.created_slot) {
                (None, _) => true, // bootstrapped: before anything this indexer sees
                (Some(signature), Some(created)) => {
                    created < slot
                        || (created == slot
                            && (*signature != tx.signature
                                || i.creation_instruction_index.is_some_and(|c| c <= ordinal)))
                }
                (Some(_), None) => false,
            })
            .max_by_key(|i| {
                let same_tx = match &i.creation_signature {
                    Some(signature) if *signature == tx.signature => 2,
                    Some(_) => 1,
                    None => 0,
                };
                (i.created_slot.unwrap_or(-1), same_tx, i.creation_instruction_index.map_or(-1, i64::from), i.key.id)
            })
            .map(|i| (&i.key, i.approved))
    }

    /// The incarnation a SessionCreated event opens, made or found (one statement):
    /// - the row already written for this creation (a replay): its chain columns refreshed;
    /// - else an open row of the same vault without a creation: one the session service
    ///   registered for this delegate, or one bootstrapped from the same account (same
    ///   created_at) - claimed;
    /// - else a new row.
    pub async fn create(
        &mut self,
        db: &mut Db<'_>,
        tx: &ChainTx,
        ordinal: usize,
        e: &SessionCreated,
    ) -> Result<SessionKey, sqlx::Error> {
        let session_id = session_uuid(&e.session_id);
        let id = write_creation(db.conn(), &session_id, tx, ordinal, e).await?;
        let key = SessionKey { id, session_id };
        let incarnation = Incarnation {
            key: key.clone(),
            created_slot: Some(tx.slot as i64),
            creation_signature: Some(tx.signature.clone()),
            creation_instruction_index: Some(ordinal as i32),
            approved: Some(e.approved_amount),
        };
        let known = self.by_vault.entry(e.vault).or_default();
        // A claimed bootstrapped row, or a replay, is already known: it becomes this creation.
        known.retain(|i| i.key.id != id);
        known.push(incarnation);
        Ok(key)
    }
}

fn mint_column(mint: &Pubkey) -> Option<String> {
    (*mint != Pubkey::default()).then(|| mint.to_string())
}

async fn write_creation(
    db: &mut PgConnection,
    session_id: &str,
    tx: &ChainTx,
    ordinal: usize,
    e: &SessionCreated,
) -> Result<i32, sqlx::Error> {
    // Chain columns only: the service's (key, IP, user agent, device) stay as they are.
    const CHAIN_COLUMNS: &str = "
            mint = $5, created_at = $6, expires_at = $7, approved_amount = $8, per_trade_cap = $9,
            last_event_slot = GREATEST(COALESCE(s.last_event_slot, 0), $10),
            created_slot = $10, creation_signature = $11, creation_instruction_index = $12";
    // The claim and the insert in one statement: the insert runs only when nothing was claimed
    // (a data-modifying CTE runs once, whether or not it is read).
    let sql = format!(
        "WITH claimed AS (
            UPDATE ephemeral_sessions s SET {CHAIN_COLUMNS}
            WHERE s.id = (
                SELECT id FROM ephemeral_sessions
                WHERE (creation_signature = $11 AND creation_instruction_index = $12)
                   OR (vault_pda = $4 AND creation_signature IS NULL AND cleaned_at IS NULL
                       AND ((bootstrapped AND created_at = $6) OR (NOT bootstrapped AND ephemeral_wallet = $3)))
                ORDER BY (creation_signature IS NOT NULL) DESC
                LIMIT 1 FOR UPDATE)
              AND s.parent_wallet = $2 AND s.session_id = $1
            RETURNING s.id
         ), inserted AS (
            INSERT INTO ephemeral_sessions AS s (session_id, parent_wallet, ephemeral_wallet, vault_pda, mint,
                created_at, expires_at, last_activity, approved_amount, per_trade_cap, status, last_event_slot,
                created_slot, creation_signature, creation_instruction_index)
            SELECT $1, $2, $3, $4, $5, $6, $7, $6, $8, $9, 'active', $10, $10, $11, $12
            WHERE NOT EXISTS (SELECT 1 FROM claimed)
            ON CONFLICT (creation_signature, creation_instruction_index) WHERE creation_signature IS NOT NULL
            DO UPDATE SET {CHAIN_COLUMNS}
            RETURNING s.id
         )
         SELECT id FROM claimed UNION ALL SELECT id FROM inserted"
    );
    let (id,): (i32,) = sqlx::query_as(&sql)
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
        .fetch_one(db)
        .await?;
    Ok(id)
}
