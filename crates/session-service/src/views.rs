//! The API's response bodies: what a client sees of the store's typed rows. Amounts are u64
//! decimal strings (JavaScript loses precision above 2^53); the envelope is never shown, only
//! whether and how a key is held. The OpenAPI document describes exactly these shapes (the
//! tests check every response they receive against it).

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use vault_db::amount::from_db;

use super::crypto::{envelope_key_id, envelope_kind};
use super::store::{AlertRow, AnalyticsRow, CandidateRow, SessionRow, TransactionRow};

/// A u64 amount column as its decimal string (a value outside u64 as the decimal itself).
pub fn amount(d: Decimal) -> String {
    match from_db(d) {
        Ok(v) => v.to_string(),
        Err(_) => d.to_string(),
    }
}

#[derive(Debug, Serialize)]
pub struct KeyView {
    pub registered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// The public view of a session.
#[derive(Debug, Serialize)]
pub struct SessionView {
    /// The session's key: one vault incarnation (`ephemeral_sessions.id`).
    pub session_ref: i32,
    pub session_id: String,
    pub parent_wallet: String,
    pub ephemeral_wallet: String,
    pub vault_pda: String,
    pub mint: Option<String>,
    pub status: String,
    pub is_active: bool,
    pub expired: bool,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_activity: i64,
    pub revoked_at: Option<i64>,
    pub cleaned_at: Option<i64>,
    pub approved_amount: String,
    /// Null when the session has no per-trade cap.
    pub per_trade_cap: Option<String>,
    pub total_deposited: String,
    pub total_spent: String,
    pub total_withdrawn: String,
    pub total_fee_top_ups: String,
    pub remaining_allowance: String,
    pub seen_on_chain: bool,
    pub key: KeyView,
    pub device_fingerprint: Option<String>,
    pub registered_ip: Option<String>,
    pub registered_at: String,
    /// The create_session that opened this incarnation of the vault: null until the chain shows
    /// it (and for a session bootstrapped from its vault account).
    pub created_slot: Option<i64>,
    pub creation_signature: Option<String>,
}

impl SessionView {
    pub fn of(s: &SessionRow, now: i64) -> Self {
        let key = match &s.encrypted_keypair {
            Some(env) => KeyView {
                registered: true,
                kind: envelope_kind(env).map(|k| k.as_str()).ok(),
                key_id: envelope_key_id(env).ok().map(str::to_string),
            },
            None => KeyView { registered: false, kind: None, key_id: None },
        };
        let remaining =
            if s.approved_amount >= s.total_spent { s.approved_amount - s.total_spent } else { Decimal::ZERO };
        SessionView {
            session_ref: s.id,
            session_id: s.session_id.clone(),
            parent_wallet: s.parent_wallet.clone(),
            ephemeral_wallet: s.ephemeral_wallet.clone(),
            vault_pda: s.vault_pda.clone(),
            mint: s.mint.clone(),
            status: s.status.clone(),
            is_active: s.is_active,
            expired: now >= s.expires_at,
            created_at: s.created_at,
            expires_at: s.expires_at,
            last_activity: s.last_activity,
            revoked_at: s.revoked_at,
            cleaned_at: s.cleaned_at,
            approved_amount: amount(s.approved_amount),
            per_trade_cap: s.per_trade_cap.map(amount),
            total_deposited: amount(s.total_deposited),
            total_spent: amount(s.total_spent),
            total_withdrawn: amount(s.total_withdrawn),
            total_fee_top_ups: amount(s.total_fee_top_ups),
            remaining_allowance: amount(remaining),
            seen_on_chain: s.last_event_slot.is_some(),
            key,
            device_fingerprint: s.device_fingerprint.clone(),
            registered_ip: s.user_ip.clone(),
            registered_at: s.created_at_timestamp.to_rfc3339(),
            created_slot: s.created_slot,
            creation_signature: s.creation_signature.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SessionList {
    pub parent_wallet: String,
    pub sessions: Vec<SessionView>,
}

#[derive(Debug, Serialize)]
pub struct TransactionView {
    pub signature: String,
    pub instruction_index: i32,
    #[serde(rename = "type")]
    pub transaction_type: String,
    pub amount: String,
    pub fee_amount: Option<String>,
    pub trade_id: Option<String>,
    pub status: String,
    pub confirmed_at: Option<i64>,
    pub block_slot: Option<i64>,
    pub error_message: Option<String>,
    pub source: String,
    pub created_at: String,
}

impl From<TransactionRow> for TransactionView {
    fn from(r: TransactionRow) -> Self {
        TransactionView {
            signature: r.transaction_signature,
            instruction_index: r.instruction_index,
            transaction_type: r.transaction_type,
            amount: amount(r.amount),
            fee_amount: r.fee_amount.map(amount),
            trade_id: r.trade_id.map(amount),
            status: r.status,
            confirmed_at: r.confirmed_at,
            block_slot: r.block_slot,
            error_message: r.error_message,
            source: r.source.unwrap_or_else(|| "indexer".into()),
            created_at: r.created_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TransactionList {
    pub session_id: String,
    pub transactions: Vec<TransactionView>,
}

#[derive(Debug, Serialize)]
pub struct AnalyticsView {
    pub session_id: String,
    pub total_trades: i32,
    pub successful_trades: i32,
    pub failed_trades: i32,
    pub pending_trades: i32,
    pub total_volume: String,
    pub total_fees_paid: String,
    /// Null while the session has no trades.
    pub avg_trade_size: Option<String>,
    pub avg_confirmation_time_ms: Option<i32>,
    pub session_duration_secs: Option<i32>,
    pub trades_per_minute: Option<String>,
    pub peak_activity_hour: Option<i32>,
}

impl AnalyticsView {
    pub fn of(session_id: &str, row: Option<AnalyticsRow>) -> Self {
        match row {
            Some(r) => AnalyticsView {
                session_id: session_id.to_string(),
                total_trades: r.total_trades,
                successful_trades: r.successful_trades,
                failed_trades: r.failed_trades,
                pending_trades: r.total_trades - r.successful_trades - r.failed_trades,
                total_volume: amount(r.total_volume),
                total_fees_paid: amount(r.total_fees_paid),
                avg_trade_size: r.avg_trade_size.map(amount),
                avg_confirmation_time_ms: r.avg_confirmation_time,
                session_duration_secs: r.session_duration,
                trades_per_minute: r.trades_per_minute.map(|d| d.to_string()),
                peak_activity_hour: r.peak_activity_hour,
            },
            None => AnalyticsView {
                session_id: session_id.to_string(),
                total_trades: 0,
                successful_trades: 0,
                failed_trades: 0,
                pending_trades: 0,
                total_volume: "0".into(),
                total_fees_paid: "0".into(),
                avg_trade_size: None,
                avg_confirmation_time_ms: None,
                session_duration_secs: None,
                trades_per_minute: None,
                peak_activity_hour: None,
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CandidateView {
    pub session_id: String,
    pub parent_wallet: String,
    pub vault_pda: String,
    pub expires_at: i64,
    pub total_deposited: String,
    pub total_spent: String,
    pub seconds_expired: i64,
    pub status: String,
    pub mint: Option<String>,
    pub total_withdrawn: String,
    pub revoked_at: Option<i64>,
}

impl From<CandidateRow> for CandidateView {
    fn from(r: CandidateRow) -> Self {
        CandidateView {
            session_id: r.session_id,
            parent_wallet: r.parent_wallet,
            vault_pda: r.vault_pda,
            expires_at: r.expires_at,
            total_deposited: amount(r.total_deposited),
            total_spent: amount(r.total_spent),
            seconds_expired: r.seconds_expired,
            status: r.status,
            mint: r.mint,
            total_withdrawn: amount(r.total_withdrawn),
            revoked_at: r.revoked_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CandidateList {
    pub candidates: Vec<CandidateView>,
}

#[derive(Debug, Serialize)]
pub struct AlertView {
    pub id: i32,
    pub session_id: Option<String>,
    pub alert_type: String,
    pub severity: String,
    pub description: String,
    pub metadata: Value,
    pub is_resolved: bool,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub created_at: String,
}

impl From<AlertRow> for AlertView {
    fn from(r: AlertRow) -> Self {
        let mut metadata = r.metadata.unwrap_or(Value::Null);
        if let Some(m) = metadata.as_object_mut() {
            m.remove("dedup_key");
        }
        AlertView {
            id: r.id,
            session_id: r.session_id,
            alert_type: r.alert_type,
            severity: r.severity,
            description: r.description,
            metadata,
            is_resolved: r.is_resolved,
            resolved_at: r.resolved_at.map(|t| t.to_rfc3339()),
            resolved_by: r.resolved_by,
            created_at: r.created_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AlertList {
    pub alerts: Vec<AlertView>,
}

#[derive(Debug, Serialize)]
pub struct SealedKey {
    pub session_id: String,
    pub format: &'static str,
    pub data: String,
}

#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
}
