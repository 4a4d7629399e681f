//! The service's reads and writes of the shared tables.
//!
//! A session is one vault incarnation (migrations/0012): `ephemeral_sessions.id` is its key, and
//! a session id names one only together with its parent wallet - the pair derives the vault -
//! and then the newest incarnation of that vault. The service therefore never looks a session up
//! by its id alone: always within the signed caller's wallet.
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
use sqlx::{PgConnection, PgExecutor, PgPool};

use vault_db::amount::to_db;

#[derive(Clone, sqlx::FromRow)]
pub struct SessionRow {
    /// The session's key (`ephemeral_sessions.id`, `session_ref` elsewhere).
    pub id: i32,
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
    /// The slot and signature of the create_session that opened this incarnation; None while the
    /// chain has not shown it (a registration ahead of the chain) or for a bootstrapped session.
    pub created_slot: Option<i64>,
    pub creation_signature: Option<String>,
    pub bootstrapped: bool,
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

const SESSION_COLUMNS: &str = "id, session_id, parent_wallet, ephemeral_wallet, vault_pda, mint, created_at,
    expires_at, last_activity, revoked_at, cleaned_at, status, is_active, approved_amount, per_trade_cap,
    total_deposited, total_spent, total_withdrawn, total_fee_top_ups, last_event_slot, encrypted_keypair,
    user_ip, user_agent, device_fingerprint, created_at_timestamp, created_slot, creation_signature, bootstrapped";

/// Newest incarnation first: one registered ahead of the chain (there is one only while no
/// incarnation of the vault is open), then by creation slot.
const NEWEST_FIRST: &str =
    "(creation_signature IS NULL AND NOT bootstrapped) DESC, COALESCE(created_slot, -1) DESC, id DESC";

/// `parent`'s session `session_id`: the newest incarnation of their vault for that id.
pub async fn session<'e>(
    db: impl PgExecutor<'e>,
    parent: &str,
    session_id: &str,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM ephemeral_sessions WHERE parent_wallet = $1 AND session_id = $2
         ORDER BY {NEWEST_FIRST} LIMIT 1"
    ))
    .bind(parent)
    .bind(session_id)
    .fetch_optional(db)
    .await
}

/// True when some wallet other than `parent` has a session with this id (for the audit log's
/// note; the caller still gets a plain 404).
pub async fn id_used_by_another_wallet(pool: &PgPool, parent: &str, session_id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM ephemeral_sessions WHERE session_id = $1 AND parent_wallet <> $2)")
        .bind(session_id)
        .bind(parent)
        .fetch_one(pool)
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
         ORDER BY {NEWEST_FIRST} LIMIT $3 OFFSET $4"
    ))
    .bind(parent)
    .bind(status)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
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
    /// A new row (the chain has not shown the session yet), with its key.
    Inserted(i32),
    /// The indexer's row (or an earlier registration without a key), completed with the
    /// service's columns.
    Completed(i32),
    /// Nothing written: the row belongs to another session shape, or has a key already.
    Refused,
}

/// The registration described in the module docs, in two steps: complete the vault's open
/// incarnation the chain has shown (if any), else upsert the one registered-ahead row of the
/// vault (the partial unique index `sessions_one_uncreated_per_vault`).
pub async fn register(db: &mut PgConnection, r: Registration<'_>) -> Result<Registered, sqlx::Error> {
    let open: Option<(i32, bool)> = sqlx::query_as(
        "SELECT id, encrypted_keypair IS NULL AND parent_wallet = $2 AND ephemeral_wallet = $3
         FROM ephemeral_sessions
         WHERE vault_pda = $1 AND cleaned_at IS NULL AND (creation_signature IS NOT NULL OR bootstrapped)
         ORDER BY COALESCE(created_slot, -1) DESC, id DESC LIMIT 1 FOR UPDATE",
    )
    .bind(r.vault_pda)
    .bind(r.parent_wallet)
    .bind(r.ephemeral_wallet)
    .fetch_optional(&mut *db)
    .await?;
    if let Some((id, completable)) = open {
        if !completable {
            return Ok(Registered::Refused);
        }
        sqlx::query(
            "UPDATE ephemeral_sessions SET encrypted_keypair = $2, user_ip = $3, user_agent = $4,
                device_fingerprint = $5
             WHERE id = $1",
        )
        .bind(id)
        .bind(r.envelope)
        .bind(r.user_ip)
        .bind(r.user_agent)
        .bind(r.device_fingerprint)
        .execute(&mut *db)
        .await?;
        return Ok(Registered::Completed(id));
    }
    let row: Option<(i32, bool)> = sqlx::query_as(
        "INSERT INTO ephemeral_sessions AS s (session_id, parent_wallet, ephemeral_wallet, vault_pda, mint,
             created_at, expires_at, approved_amount, per_trade_cap, encrypted_keypair, user_ip, user_agent,
             device_fingerprint)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (vault_pda) WHERE creation_signature IS NULL AND cleaned_at IS NULL DO UPDATE SET
             encrypted_keypair = EXCLUDED.encrypted_keypair,
             user_ip = EXCLUDED.user_ip,
             user_agent = EXCLUDED.user_agent,
             device_fingerprint = EXCLUDED.device_fingerprint
         WHERE s.encrypted_keypair IS NULL
           AND s.parent_wallet = EXCLUDED.parent_wallet
           AND s.ephemeral_wallet = EXCLUDED.ephemeral_wallet
         RETURNING s.id, (xmax = 0)",
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
    .fetch_optional(db)
    .await?;
    Ok(match row {
        Some((id, true)) => Registered::Inserted(id),
        Some((id, false)) => Registered::Completed(id),
        None => Registered::Refused,
    })
}

/// The session with key `id`.
pub async fn session_by_ref<'e>(db: impl PgExecutor<'e>, id: i32) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {SESSION_COLUMNS} FROM ephemeral_sessions WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// One vault_transactions row as the API shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TransactionRow {
    pub transaction_signature: String,
    pub instruction_index: i32,
    pub transaction_type: String,
    pub amount: Decimal,
    pub fee_amount: Option<Decimal>,
    pub trade_id: Option<Decimal>,
    pub status: String,
    pub confirmed_at: Option<i64>,
    pub block_slot: Option<i64>,
    pub error_message: Option<String>,
    /// metadata ->> 'source': `relay` for the service's rows, NULL for the indexer's.
    pub source: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub async fn transactions(
    pool: &PgPool,
    session_ref: i32,
    limit: i64,
    offset: i64,
) -> Result<Vec<TransactionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT transaction_signature, instruction_index, transaction_type, amount, fee_amount, trade_id,
                status, confirmed_at, block_slot, error_message, metadata ->> 'source' AS source, created_at
         FROM vault_transactions WHERE session_ref = $1
         ORDER BY id DESC LIMIT $2 OFFSET $3",
    )
    .bind(session_ref)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// A session_analytics row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AnalyticsRow {
    pub total_trades: i32,
    pub successful_trades: i32,
    pub failed_trades: i32,
    pub total_volume: Decimal,
    pub total_fees_paid: Decimal,
    pub avg_trade_size: Option<Decimal>,
    pub avg_confirmation_time: Option<i32>,
    pub session_duration: Option<i32>,
    pub trades_per_minute: Option<Decimal>,
    pub peak_activity_hour: Option<i32>,
}

/// The session's analytics row; None before the indexer has written one. From
/// session_analytics_view: a live or expired session's duration and rate run to min(now, expiry)
/// (migration 0013 defines every column).
pub async fn analytics(pool: &PgPool, session_ref: i32) -> Result<Option<AnalyticsRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT total_trades, successful_trades, failed_trades, total_volume, total_fees_paid, avg_trade_size,
                avg_confirmation_time, session_duration, trades_per_minute, peak_activity_hour
         FROM session_analytics_view WHERE session_ref = $1",
    )
    .bind(session_ref)
    .fetch_optional(pool)
    .await
}

/// A cleanup_candidates_view row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CandidateRow {
    pub session_id: String,
    pub parent_wallet: String,
    pub vault_pda: String,
    pub expires_at: i64,
    pub total_deposited: Decimal,
    pub total_spent: Decimal,
    pub seconds_expired: i64,
    pub status: String,
    pub mint: Option<String>,
    pub total_withdrawn: Decimal,
    pub revoked_at: Option<i64>,
}

/// Cleanup candidates, of one parent or (admin) of all.
pub async fn cleanup_candidates(
    pool: &PgPool,
    parent: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<CandidateRow>, sqlx::Error> {
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
    .await
}

/// A security_alerts row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AlertRow {
    pub id: i32,
    pub session_id: Option<String>,
    pub alert_type: String,
    pub severity: String,
    pub description: String,
    /// Free-form JSONB (the alert rule's figures).
    pub metadata: Option<serde_json::Value>,
    pub is_resolved: bool,
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
    pub resolved_by: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

const ALERT_COLUMNS: &str =
    "id, session_id, alert_type, severity, description, metadata, is_resolved, resolved_at, resolved_by, created_at";

/// Alerts of one parent's sessions (or, admin, all), newest first; of one session (`session_ref`)
/// or of every session with an id (`session_id`) when given.
#[allow(clippy::too_many_arguments)]
pub async fn alerts(
    pool: &PgPool,
    parent: Option<&str>,
    session_id: Option<&str>,
    session_ref: Option<i32>,
    unresolved_only: bool,
    limit: i64,
    offset: i64,
) -> Result<Vec<AlertRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, a.session_id, a.alert_type, a.severity, a.description, a.metadata, a.is_resolved,
                a.resolved_at, a.resolved_by, a.created_at
         FROM security_alerts a
         LEFT JOIN ephemeral_sessions s ON s.id = a.session_ref
         WHERE ($1::TEXT IS NULL OR s.parent_wallet = $1)
           AND ($2::INTEGER IS NULL OR a.session_ref = $2)
           AND (NOT $3 OR NOT a.is_resolved)
           AND ($6::TEXT IS NULL OR a.session_id = $6)
         ORDER BY a.id DESC LIMIT $4 OFFSET $5",
    )
    .bind(parent)
    .bind(session_ref)
    .bind(unresolved_only)
    .bind(limit)
    .bind(offset)
    .bind(session_id)
    .fetch_all(pool)
    .await
}

pub enum Resolved {
    Done(AlertRow),
    AlreadyResolved,
    NotFound,
}

/// Resolves the alert, in the caller's transaction.
pub async fn resolve_alert(conn: &mut PgConnection, id: i32, by: &str) -> Result<Resolved, sqlx::Error> {
    let row: Option<AlertRow> = sqlx::query_as(&format!(
        "UPDATE security_alerts SET is_resolved = true, resolved_at = now(), resolved_by = $2
         WHERE id = $1 AND NOT is_resolved
         RETURNING {ALERT_COLUMNS}"
    ))
    .bind(id)
    .bind(by)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(r) = row {
        return Ok(Resolved::Done(r));
    }
    let exists: Option<(i32,)> =
        sqlx::query_as("SELECT id FROM security_alerts WHERE id = $1").bind(id).fetch_optional(&mut *conn).await?;
    Ok(if exists.is_some() { Resolved::AlreadyResolved } else { Resolved::NotFound })
}
