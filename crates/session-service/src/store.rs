//! The service's reads and writes of the shared tables.
//!
//! The ephemeral_sessions row is shared with the indexer. The rule:
//! - The indexer owns the chain columns (parent, delegate, vault, mint, times, amounts, status)
//!   and upserts them from SessionCreated without touching the service's columns.
//! - The service owns encrypted_keypair, user_ip, user_agent and device_fingerprint. When it
//!   registers a session the chain has not shown yet, it inserts the row with the chain columns
//!   the client supplied from its own create_session arguments (approved amount, per-trade cap,
//!   mint, created_at, expires_at): the indexer overwrites them with the chain's values when the
//!   SessionCreated event arrives. When the row exists already, the service only sets its own
//!   columns, and only if the row is the same session (same parent, vault and delegate) and has
//!   no key yet: a registered key is never replaced.

use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::PgPool;

use vault_db::amount::{from_db, to_db};

use super::crypto::{envelope_key_id, envelope_kind};

#[derive(Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub session_id: String,
    pub parent_wallet: String,
    pub ephemeral_wallet: String,
    pub vault_pda: String,
    pub mint: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_activity: i64,
    pub revoked_at: Option<i64>,
    pub cleaned_at: Option<i64>,
    pub status: String,
    pub is_active: bool,
    pub approved_amount: Decimal,
    pub per_trade_cap: Option<Decimal>,
    pub total_deposited: Decimal,
    pub total_spent: Decimal,
    pub total_withdrawn: Decimal,
    pub total_fee_top_ups: Decimal,
    pub last_event_slot: Option<i64>,
    pub encrypted_keypair: Option<Vec<u8>>,
    pub user_ip: Option<String>,
    pub user_agent: Option<String>,
    pub device_fingerprint: Option<String>,
    pub created_at_timestamp: chrono::DateTime<chrono::Utc>,
}

// No secret in here but the envelope, and that is ciphertext; still, keep it out of logs.
impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("session_id", &self.session_id)
            .field("parent_wallet", &self.parent_wallet)
            .field("status", &self.status)
            .field("encrypted_keypair", &self.encrypted_keypair.as_ref().map(|_| "<envelope>"))
            .finish_non_exhaustive()
    }
}

const SESSION_COLUMNS: &str = "session_id, parent_wallet, ephemeral_wallet, vault_pda, mint, created_at,
    expires_at, last_activity, revoked_at, cleaned_at, status, is_active, approved_amount, per_trade_cap,
    total_deposited, total_spent, total_withdrawn, total_fee_top_ups, last_event_slot, encrypted_keypair,
    user_ip, user_agent, device_fingerprint, created_at_timestamp";

pub async fn session(pool: &PgPool, session_id: &str) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {SESSION_COLUMNS} FROM ephemeral_sessions WHERE session_id = $1"))
        .bind(session_id)
        .fetch_optional(pool)
        .await
}

pub async fn sessions_of(
    pool: &PgPool,
    parent: &str,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM ephemeral_sessions
         WHERE parent_wallet = $1 AND ($2::TEXT IS NULL OR status = $2)
         ORDER BY id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(parent)
    .bind(status)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

fn amount(d: Decimal) -> Value {
    match from_db(d) {
        Ok(v) => json!(v.to_string()),
        Err(_) => json!(d.to_string()),
    }
}

fn opt_amount(d: Option<Decimal>) -> Value {
    d.map(amount).unwrap_or(Value::Null)
}

/// The public view of a session: no envelope, only whether and how a key is held.
pub fn session_json(s: &SessionRow, now: i64) -> Value {
    let key = match &s.encrypted_keypair {
        Some(env) => json!({
            "registered": true,
            "kind": envelope_kind(env).map(|k| k.as_str()).ok(),
            "key_id": envelope_key_id(env).ok(),
        }),
        None => json!({"registered": false}),
    };
    let remaining = if s.approved_amount >= s.total_spent { s.approved_amount - s.total_spent } else { Decimal::ZERO };
    json!({
        "session_id": s.session_id,
        "parent_wallet": s.parent_wallet,
        "ephemeral_wallet": s.ephemeral_wallet,
        "vault_pda": s.vault_pda,
        "mint": s.mint,
        "status": s.status,
        "is_active": s.is_active,
        "expired": now >= s.expires_at,
        "created_at": s.created_at,
        "expires_at": s.expires_at,
        "last_activity": s.last_activity,
        "revoked_at": s.revoked_at,
        "cleaned_at": s.cleaned_at,
        "approved_amount": amount(s.approved_amount),
        "per_trade_cap": opt_amount(s.per_trade_cap),
        "total_deposited": amount(s.total_deposited),
        "total_spent": amount(s.total_spent),
        "total_withdrawn": amount(s.total_withdrawn),
        "total_fee_top_ups": amount(s.total_fee_top_ups),
        "remaining_allowance": amount(remaining),
        "seen_on_chain": s.last_event_slot.is_some(),
        "key": key,
        "device_fingerprint": s.device_fingerprint,
        "registered_ip": s.user_ip,
        "registered_at": s.created_at_timestamp.to_rfc3339(),
    })
}

/// What a registration writes.
pub struct Registration<'a> {
    pub session_id: &'a str,
    pub parent_wallet: &'a str,
    pub ephemeral_wallet: &'a str,
    pub vault_pda: &'a str,
    pub mint: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: i64,
    pub approved_amount: u64,
    pub per_trade_cap: Option<u64>,
    pub envelope: Vec<u8>,
    pub user_ip: &'a str,
    pub user_agent: Option<&'a str>,
    pub device_fingerprint: Option<&'a str>,
}

pub enum Registered {
    /// A new row (the chain has not shown the session yet).
    Inserted,
    /// The indexer's row, completed with the service's columns.
    Completed,
    /// Nothing written: the row belongs to another session shape, or has a key already.
    Refused,
}

/// The upsert described in the module docs.
pub async fn register(pool: &PgPool, r: Registration<'_>) -> Result<Registered, sqlx::Error> {
    let row: Option<(bool,)> = sqlx::query_as(
        "INSERT INTO ephemeral_sessions AS s (session_id, parent_wallet, ephemeral_wallet, vault_pda, mint,
             created_at, expires_at, approved_amount, per_trade_cap, encrypted_keypair, user_ip, user_agent,
             device_fingerprint)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (session_id) DO UPDATE SET
             encrypted_keypair = EXCLUDED.encrypted_keypair,
             user_ip = EXCLUDED.user_ip,
             user_agent = EXCLUDED.user_agent,
             device_fingerprint = EXCLUDED.device_fingerprint
         WHERE s.encrypted_keypair IS NULL
           AND s.parent_wallet = EXCLUDED.parent_wallet
           AND s.vault_pda = EXCLUDED.vault_pda
           AND s.ephemeral_wallet = EXCLUDED.ephemeral_wallet
         RETURNING (xmax = 0)",
    )
    .bind(r.session_id)
    .bind(r.parent_wallet)
    .bind(r.ephemeral_wallet)
    .bind(r.vault_pda)
    .bind(r.mint)
    .bind(r.created_at)
    .bind(r.expires_at)
    .bind(to_db(r.approved_amount))
    .bind(r.per_trade_cap.map(to_db))
    .bind(r.envelope)
    .bind(r.user_ip)
    .bind(r.user_agent)
    .bind(r.device_fingerprint)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some((true,)) => Registered::Inserted,
        Some((false,)) => Registered::Completed,
        None => Registered::Refused,
    })
}

pub async fn transactions(pool: &PgPool, session_id: &str, limit: i64, offset: i64) -> Result<Vec<Value>, sqlx::Error> {
    let rows: Vec<(
        String,
        i32,
        String,
        Decimal,
        Option<Decimal>,
        Option<Decimal>,
        String,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<String>,
        chrono::DateTime<chrono::Utc>,
    )> = sqlx::query_as(
        "SELECT transaction_signature, instruction_index, transaction_type, amount, fee_amount, trade_id,
                status, confirmed_at, block_slot, error_message, metadata ->> 'source', created_at
         FROM vault_transactions WHERE session_id = $1
         ORDER BY id DESC LIMIT $2 OFFSET $3",
    )
    .bind(session_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            json!({
                "signature": r.0, "instruction_index": r.1, "type": r.2, "amount": amount(r.3),
                "fee_amount": opt_amount(r.4), "trade_id": opt_amount(r.5), "status": r.6,
                "confirmed_at": r.7, "block_slot": r.8, "error_message": r.9,
                "source": r.10.unwrap_or_else(|| "indexer".into()), "created_at": r.11.to_rfc3339(),
            })
        })
        .collect())
}

pub async fn analytics(pool: &PgPool, session_id: &str) -> Result<Value, sqlx::Error> {
    let row: Option<(i32, i32, i32, Decimal, Decimal, Option<Decimal>, Option<i32>, Option<i32>, Option<Decimal>, Option<i32>)> =
        sqlx::query_as(
            "SELECT total_trades, successful_trades, failed_trades, total_volume, total_fees_paid, avg_trade_size,
                    avg_confirmation_time, session_duration, trades_per_minute, peak_activity_hour
             FROM session_analytics WHERE session_id = $1",
        )
        .bind(session_id)
        .fetch_optional(pool)
        .await?;
    Ok(match row {
        Some(r) => json!({
            "session_id": session_id, "total_trades": r.0, "successful_trades": r.1, "failed_trades": r.2,
            "pending_trades": r.0 - r.1 - r.2, "total_volume": amount(r.3), "total_fees_paid": amount(r.4),
            "avg_trade_size": opt_amount(r.5), "avg_confirmation_time_ms": r.6, "session_duration_secs": r.7,
            "trades_per_minute": r.8.map(|d| d.to_string()), "peak_activity_hour": r.9,
        }),
        None => json!({
            "session_id": session_id, "total_trades": 0, "successful_trades": 0, "failed_trades": 0,
            "pending_trades": 0, "total_volume": "0", "total_fees_paid": "0", "avg_trade_size": null,
            "avg_confirmation_time_ms": null, "session_duration_secs": null, "trades_per_minute": null,
            "peak_activity_hour": null,
        }),
    })
}

/// Cleanup candidates, of one parent or (admin) of all.
pub async fn cleanup_candidates(pool: &PgPool, parent: Option<&str>, limit: i64, offset: i64) -> Result<Vec<Value>, sqlx::Error> {
    let rows: Vec<(String, String, String, i64, Decimal, Decimal, i64, String, Option<String>, Decimal, Option<i64>)> =
        sqlx::query_as(
            "SELECT session_id, parent_wallet, vault_pda, expires_at, total_deposited, total_spent,
                    seconds_expired, status, mint, total_withdrawn, revoked_at
             FROM cleanup_candidates_view
             WHERE ($1::TEXT IS NULL OR parent_wallet = $1)
             ORDER BY expires_at, session_id LIMIT $2 OFFSET $3",
        )
        .bind(parent)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            json!({
                "session_id": r.0, "parent_wallet": r.1, "vault_pda": r.2, "expires_at": r.3,
                "total_deposited": amount(r.4), "total_spent": amount(r.5), "seconds_expired": r.6,
                "status": r.7, "mint": r.8, "total_withdrawn": amount(r.9), "revoked_at": r.10,
            })
        })
        .collect())
}

type AlertTuple = (
    i32,
    Option<String>,
    String,
    String,
    String,
    Option<Value>,
    bool,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<String>,
    chrono::DateTime<chrono::Utc>,
);

fn alert_json(r: AlertTuple) -> Value {
    let mut metadata = r.5.unwrap_or(Value::Null);
    if let Some(m) = metadata.as_object_mut() {
        m.remove("dedup_key");
    }
    json!({
        "id": r.0, "session_id": r.1, "alert_type": r.2, "severity": r.3, "description": r.4,
        "metadata": metadata, "is_resolved": r.6, "resolved_at": r.7.map(|t| t.to_rfc3339()),
        "resolved_by": r.8, "created_at": r.9.to_rfc3339(),
    })
}

/// Alerts of one parent's sessions (or, admin, all), newest first.
pub async fn alerts(
    pool: &PgPool,
    parent: Option<&str>,
    session_id: Option<&str>,
    unresolved_only: bool,
    limit: i64,
    offset: i64,
) -> Result<Vec<Value>, sqlx::Error> {
    let rows: Vec<AlertTuple> = sqlx::query_as(
        "SELECT a.id, a.session_id, a.alert_type, a.severity, a.description, a.metadata, a.is_resolved,
                a.resolved_at, a.resolved_by, a.created_at
         FROM security_alerts a
         LEFT JOIN ephemeral_sessions s ON s.session_id = a.session_id
         WHERE ($1::TEXT IS NULL OR s.parent_wallet = $1)
           AND ($2::TEXT IS NULL OR a.session_id = $2)
           AND (NOT $3 OR NOT a.is_resolved)
         ORDER BY a.id DESC LIMIT $4 OFFSET $5",
    )
    .bind(parent)
    .bind(session_id)
    .bind(unresolved_only)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(alert_json).collect())
}

pub enum Resolved {
    Done(Value),
    AlreadyResolved,
    NotFound,
}

pub async fn resolve_alert(pool: &PgPool, id: i32, by: &str) -> Result<Resolved, sqlx::Error> {
    let row: Option<AlertTuple> = sqlx::query_as(
        "UPDATE security_alerts SET is_resolved = true, resolved_at = now(), resolved_by = $2
         WHERE id = $1 AND NOT is_resolved
         RETURNING id, session_id, alert_type, severity, description, metadata, is_resolved, resolved_at,
                   resolved_by, created_at",
    )
    .bind(id)
    .bind(by)
    .fetch_optional(pool)
    .await?;
    if let Some(r) = row {
        return Ok(Resolved::Done(alert_json(r)));
    }
    let exists: Option<(i32,)> = sqlx::query_as("SELECT id FROM security_alerts WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(if exists.is_some() { Resolved::AlreadyResolved } else { Resolved::NotFound })
}
