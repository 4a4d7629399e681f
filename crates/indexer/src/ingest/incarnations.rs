//! Which session (vault incarnation) each action of a batch belongs to, decided in memory from
//! one read of the batch's vaults: every session row of every vault the batch names is read once
//! and locked in id order, so the confirmed and the finalized indexers, writing the same sessions,
//! lock them in the same order. (Parked transactions applied later in the batch may lock further
//! sessions; a deadlock between the two indexers is then possible, detected by PostgreSQL, and
//! the batch retried by the pipeline like any failed batch.) The incarnations the batch creates
//! get a provisional (negative) id as their SessionCreated events are placed, and are written
//! together at the end ([`Incarnations::write_created`]: two statements whatever their number),
//! which gives each its real id.

use std::collections::{HashMap, HashSet};

use anchor_lang::prelude::Pubkey;
use ephemeral_vault::events::SessionCreated;
use rust_decimal::Decimal;

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

/// A session row of a batch's vault that no creation names yet: the service's registration
/// ahead of the chain, or a row bootstrapped from the vault account. A creation claims it.
#[derive(Clone, Debug)]
struct Unclaimed {
    id: i32,
    vault: Pubkey,
    parent: String,
    session_id: String,
    ephemeral_wallet: String,
    created_at: i64,
    bootstrapped: bool,
}

/// What [`Incarnations::load`] reads of a session row.
#[derive(sqlx::FromRow)]
struct SessionRow {
    id: i32,
    session_id: String,
    vault_pda: String,
    created_slot: Option<i64>,
    creation_signature: Option<String>,
    creation_instruction_index: Option<i32>,
    approved_amount: Decimal,
    bootstrapped: bool,
    parent_wallet: String,
    ephemeral_wallet: String,
    created_at: i64,
    /// No creation names it and it is not cleaned: a creation may claim it.
    claimable: bool,
}

/// A SessionCreated placed in the batch, not written yet.
struct Creation {
    provisional: i32,
    session_id: String,
    slot: u64,
    signature: String,
    ordinal: usize,
    event: SessionCreated,
}

/// The incarnations of the vaults a batch touches.
#[derive(Default)]
pub struct Incarnations {
    by_vault: HashMap<Pubkey, Vec<Incarnation>>,
    unclaimed: Vec<Unclaimed>,
    created: Vec<Creation>,
    loaded: HashSet<Pubkey>,
}

/// Binds $1..$12 of [`CREATIONS`] (Query and QueryAs share no trait for `bind`).
macro_rules! bind_creations {
    ($query:expr, $creations:expr) => {{
        let creations: &[&Creation] = $creations;
        $query
            .bind(creations.iter().map(|c| c.session_id.clone()).collect::<Vec<_>>())
            .bind(creations.iter().map(|c| c.event.parent.to_string()).collect::<Vec<_>>())
            .bind(creations.iter().map(|c| c.event.delegate.to_string()).collect::<Vec<_>>())
            .bind(creations.iter().map(|c| c.event.vault.to_string()).collect::<Vec<_>>())
            .bind(creations.iter().map(|c| mint_column(&c.event.mint)).collect::<Vec<_>>())
            .bind(creations.iter().map(|c| c.event.created_at).collect::<Vec<_>>())
            .bind(creations.iter().map(|c| c.event.expires_at).collect::<Vec<_>>())
            .bind(creations.iter().map(|c| to_db(c.event.approved_amount)).collect::<Vec<_>>())
            .bind(creations.iter().map(|c| to_db(c.event.per_trade_cap)).collect::<Vec<_>>())
            .bind(creations.iter().map(|c| c.slot as i64).collect::<Vec<_>>())
            .bind(creations.iter().map(|c| c.signature.clone()).collect::<Vec<_>>())
            .bind(creations.iter().map(|c| c.ordinal as i32).collect::<Vec<_>>())
    }};
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
        let rows: Vec<SessionRow> = sqlx::query_as(
            "SELECT id, session_id, vault_pda, created_slot, creation_signature, creation_instruction_index,
                    approved_amount, bootstrapped, parent_wallet, ephemeral_wallet, created_at,
                    creation_signature IS NULL AND cleaned_at IS NULL AS claimable
             FROM ephemeral_sessions
             WHERE vault_pda = ANY($1) AND (creation_signature IS NOT NULL OR bootstrapped OR cleaned_at IS NULL)
             ORDER BY id
             FOR NO KEY UPDATE",
        )
        .bind(&addresses)
        .fetch_all(db.conn())
        .await?;
        self.loaded.extend(wanted);
        for row in rows {
            let SessionRow {
                id,
                session_id,
                vault_pda: vault,
                created_slot,
                creation_signature,
                creation_instruction_index,
                approved_amount: approved,
                bootstrapped,
                parent_wallet: parent,
                ephemeral_wallet,
                created_at,
                claimable,
            } = row;
            let Ok(vault) = vault.parse::<Pubkey>() else { continue };
            if claimable {
                self.unclaimed.push(Unclaimed {
                    id,
                    vault,
                    parent,
                    session_id: session_id.clone(),
                    ephemeral_wallet,
                    created_at,
                    bootstrapped,
                });
            }
            if creation_signature.is_some() || bootstrapped {
                self.by_vault.entry(vault).or_default().push(Incarnation {
                    key: SessionKey { id, session_id },
                    created_slot,
                    creation_signature,
                    creation_instruction_index,
                    approved: from_db(approved).ok(),
                });
            }
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
                // The order of arrival: a stored id, or after every stored one a provisional id
                // (-1, -2, ... in the order the batch created them).
                let arrival =
                    if i.key.id < 0 { i64::from(i32::MAX) - i64::from(i.key.id) } else { i64::from(i.key.id) };
                (i.created_slot.unwrap_or(-1), same_tx, i.creation_instruction_index.map_or(-1, i64::from), arrival)
            })
            .map(|i| (&i.key, i.approved))
    }

    /// The incarnation a SessionCreated event opens: the one already written for this creation
    /// (a replay), or a new one with a provisional id until [`Incarnations::write_created`].
    pub fn create(&mut self, tx: &ChainTx, ordinal: usize, e: &SessionCreated) -> SessionKey {
        let known = self.by_vault.entry(e.vault).or_default();
        let replay = known.iter().find(|i| {
            i.creation_signature.as_deref() == Some(tx.signature.as_str())
                && i.creation_instruction_index == Some(ordinal as i32)
        });
        if let Some(replay) = replay {
            return replay.key.clone();
        }
        let provisional = -(self.created.len() as i32) - 1;
        let key = SessionKey { id: provisional, session_id: session_uuid(&e.session_id) };
        known.push(Incarnation {
            key: key.clone(),
            created_slot: Some(tx.slot as i64),
            creation_signature: Some(tx.signature.clone()),
            creation_instruction_index: Some(ordinal as i32),
            approved: Some(e.approved_amount),
        });
        self.created.push(Creation {
            provisional,
            session_id: key.session_id.clone(),
            slot: tx.slot,
            signature: tx.signature.clone(),
            ordinal,
            event: e.clone(),
        });
        key
    }

    /// Writes the incarnations created in the batch and returns provisional id -> real id. Each
    /// claims, in chain order, an open row of its vault without a creation - one the session
    /// service registered for this delegate, or one bootstrapped from the same account (same
    /// created_at) - or is inserted; a row written for the same creation by another writer in the
    /// meantime is found by its creation key. Two statements, whatever the number of creations.
    pub async fn write_created(&mut self, db: &mut Db<'_>) -> Result<HashMap<i32, i32>, sqlx::Error> {
        let mut ids = HashMap::new();
        if self.created.is_empty() {
            return Ok(ids);
        }
        let mut claims: Vec<(i32, &Creation)> = vec![];
        let mut inserts: Vec<&Creation> = vec![];
        for c in &self.created {
            let e = &c.event;
            let claimable = self.unclaimed.iter().position(|u| {
                u.vault == e.vault
                    && u.parent == e.parent.to_string()
                    && u.session_id == c.session_id
                    && if u.bootstrapped {
                        u.created_at == e.created_at
                    } else {
                        u.ephemeral_wallet == e.delegate.to_string()
                    }
            });
            match claimable {
                Some(at) => {
                    let row = self.unclaimed.swap_remove(at);
                    ids.insert(c.provisional, row.id);
                    claims.push((row.id, c));
                }
                None => inserts.push(c),
            }
        }
        // Chain columns only: the service's (key, IP, user agent, device) stay as they are.
        if !claims.is_empty() {
            let creations: Vec<&Creation> = claims.iter().map(|(_, c)| *c).collect();
            let sql = format!(
                "UPDATE ephemeral_sessions s SET {CHAIN_COLUMNS}
                 FROM {CREATIONS} WHERE s.id = u.id"
            );
            bind_creations!(sqlx::query(&sql), &creations)
                .bind(claims.iter().map(|(id, _)| *id).collect::<Vec<_>>())
                .execute(db.conn())
                .await?;
        }
        if !inserts.is_empty() {
            let sql = format!(
                "INSERT INTO ephemeral_sessions AS s (session_id, parent_wallet, ephemeral_wallet, vault_pda, mint,
                    created_at, expires_at, last_activity, approved_amount, per_trade_cap, status, last_event_slot,
                    created_slot, creation_signature, creation_instruction_index)
                 SELECT u.session_id, u.parent, u.delegate, u.vault, u.mint, u.created_at, u.expires_at, u.created_at,
                        u.approved, u.cap, 'active', u.slot, u.slot, u.signature, u.ordinal
                 FROM {CREATIONS}
                 ORDER BY u.n
                 ON CONFLICT (creation_signature, creation_instruction_index) WHERE creation_signature IS NOT NULL
                 DO UPDATE SET {CHAIN_COLUMNS_ON_CONFLICT}
                 RETURNING s.id, s.creation_signature, s.creation_instruction_index"
            );
            let written: Vec<(i32, String, i32)> = bind_creations!(sqlx::query_as(&sql), &inserts)
                .bind(vec![0i32; inserts.len()])
                .fetch_all(db.conn())
                .await?;
            for (id, signature, ordinal) in written {
                if let Some(c) = inserts.iter().find(|c| c.signature == signature && c.ordinal as i32 == ordinal) {
                    ids.insert(c.provisional, id);
                }
            }
        }
        let claimed: HashSet<i32> = claims.iter().map(|(id, _)| *id).collect();
        for known in self.by_vault.values_mut() {
            // A claimed bootstrapped row is now this creation's: one entry for it.
            known.retain(|i| i.creation_signature.is_some() || !claimed.contains(&i.key.id));
            for i in known.iter_mut() {
                if let Some(id) = ids.get(&i.key.id) {
                    i.key.id = *id;
                }
            }
        }
        self.created.clear();
        Ok(ids)
    }
}

/// The chain columns a creation writes, from the `u` row of [`CREATIONS`].
const CHAIN_COLUMNS: &str = "mint = u.mint, created_at = u.created_at, expires_at = u.expires_at,
    approved_amount = u.approved, per_trade_cap = u.cap,
    last_event_slot = GREATEST(COALESCE(s.last_event_slot, 0), u.slot),
    created_slot = u.slot, creation_signature = u.signature, creation_instruction_index = u.ordinal";

/// A conflicting insert (the same creation written by another writer meanwhile): its chain
/// columns, as [`CHAIN_COLUMNS`] writes them.
const CHAIN_COLUMNS_ON_CONFLICT: &str = "mint = EXCLUDED.mint, created_at = EXCLUDED.created_at,
    expires_at = EXCLUDED.expires_at, approved_amount = EXCLUDED.approved_amount,
    per_trade_cap = EXCLUDED.per_trade_cap,
    last_event_slot = GREATEST(COALESCE(s.last_event_slot, 0), EXCLUDED.created_slot)";

/// The creations as rows `u`, bound by [`bind_creations!`] ($1..$12, then $13 the claimed ids).
const CREATIONS: &str = "UNNEST($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::int8[],
        $7::int8[], $8::numeric[], $9::numeric[], $10::int8[], $11::varchar[], $12::int4[], $13::int4[])
        WITH ORDINALITY AS u(session_id, parent, delegate, vault, mint, created_at, expires_at, approved, cap, slot,
                             signature, ordinal, id, n)";

fn mint_column(mint: &Pubkey) -> Option<String> {
    (*mint != Pubkey::default()).then(|| mint.to_string())
}
