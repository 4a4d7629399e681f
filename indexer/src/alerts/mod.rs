//! Security alerts the indexer raises from what it sees on chain. Each rule is configurable,
//! and each alert carries a `dedup_key`, so a replayed transaction never raises it twice.
//!
//! - `unusual_spending`: one trade (amount + fee) takes at least `unusual_trade_share` of the
//!   session's approved amount.
//! - `high_frequency`: at least `high_frequency_trades` trades of one session within
//!   `high_frequency_window_secs` of chain time (one alert per window).
//! - `expired_session`: the delegate (or parent) kept trying after the session expired.

use serde_json::json;
use sqlx::PgConnection;

use crate::chain_tx::{ChainTx, TxFailure};
use crate::db::amount::to_db;
use crate::decode::{InstructionKind, VaultInstruction};
use ephemeral_vault::events::TradeExecuted;

#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct AlertRules {
    pub unusual_trade_share: f64,
    pub high_frequency_trades: u32,
    pub high_frequency_window_secs: i64,
    pub expired_session: bool,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self { unusual_trade_share: 0.5, high_frequency_trades: 10, high_frequency_window_secs: 60, expired_session: true }
    }
}

/// One alert to raise. `dedup_key` identifies it: raising it again is a no-op.
pub struct Alert<'a> {
    pub session_id: &'a str,
    pub alert_type: &'static str,
    pub severity: &'static str,
    pub description: String,
    pub metadata: serde_json::Value,
    pub dedup_key: String,
}

/// Inserts the alert unless its dedup key exists (the unique index of migrations/0009); true
/// when it was new. `source` ("indexer", "service") is recorded in its metadata. Shared by the
/// indexer's chain rules and the session service's request rules.
pub async fn raise<'e>(db: impl sqlx::PgExecutor<'e>, source: &str, alert: Alert<'_>) -> Result<bool, sqlx::Error> {
    let mut metadata = alert.metadata;
    if !metadata.is_object() {
        metadata = json!({});
    }
    metadata["dedup_key"] = json!(alert.dedup_key);
    metadata["source"] = json!(source);
    let done = sqlx::query(
        "INSERT INTO security_alerts (session_id, alert_type, severity, description, metadata)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT ((metadata ->> 'dedup_key')) WHERE metadata ? 'dedup_key' DO NOTHING",
    )
    .bind(alert.session_id)
    .bind(alert.alert_type)
    .bind(alert.severity)
    .bind(alert.description)
    .bind(metadata)
    .execute(db)
    .await?;
    let new = done.rows_affected() == 1;
    if new {
        tracing::warn!(alert = alert.alert_type, session = alert.session_id, source, "security alert raised");
    }
    Ok(new)
}

pub async fn after_trade(
    db: &mut PgConnection,
    rules: &AlertRules,
    session_id: &str,
    tx: &ChainTx,
    ordinal: usize,
    trade: &TradeExecuted,
) -> Result<(), sqlx::Error> {
    let spent = u128::from(trade.amount) + u128::from(trade.fee);
    let approved: Option<(rust_decimal::Decimal,)> =
        sqlx::query_as("SELECT approved_amount FROM ephemeral_sessions WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(&mut *db)
            .await?;
    if let Some((approved,)) = approved {
        let approved: f64 = approved.try_into().unwrap_or(f64::MAX);
        if approved > 0.0 && spent as f64 >= rules.unusual_trade_share * approved {
            raise(
                &mut *db,
                "indexer",
                Alert {
                    session_id,
                    alert_type: "unusual_spending",
                    severity: "high",
                    description: format!("trade {} spent {spent} of an approved {approved}", trade.trade_id),
                    metadata: json!({"signature": tx.signature, "trade_id": trade.trade_id.to_string(), "spent": spent.to_string()}),
                    dedup_key: format!("unusual_spending:{}:{ordinal}", tx.signature),
                },
            )
            .await?;
        }
    }

    if rules.high_frequency_trades > 0 {
        let window = rules.high_frequency_window_secs.max(1);
        let (count,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM vault_transactions
             WHERE session_id = $1 AND transaction_type = 'trade' AND status <> 'failed'
               AND confirmed_at > $2 - $3 AND confirmed_at <= $2",
        )
        .bind(session_id)
        .bind(trade.timestamp)
        .bind(window)
        .fetch_one(&mut *db)
        .await?;
        if count >= i64::from(rules.high_frequency_trades) {
            let bucket = trade.timestamp.div_euclid(window);
            raise(
                &mut *db,
                "indexer",
                Alert {
                    session_id,
                    alert_type: "high_frequency",
                    severity: "medium",
                    description: format!("{count} trades within {window} s"),
                    metadata: json!({"trades": count, "window_secs": window, "at": trade.timestamp, "volume_so_far": to_db(trade.totals.total_spent).to_string()}),
                    dedup_key: format!("high_frequency:{session_id}:{bucket}"),
                },
            )
            .await?;
        }
    }
    Ok(())
}

pub async fn after_refusal(
    db: &mut PgConnection,
    rules: &AlertRules,
    session_id: &str,
    tx: &ChainTx,
    ordinal: usize,
    instruction: &VaultInstruction,
    failure: &TxFailure,
) -> Result<(), sqlx::Error> {
    let acts_on_funds = matches!(
        instruction.kind,
        InstructionKind::ExecuteTrade | InstructionKind::TopUpFees | InstructionKind::Deposit | InstructionKind::ApproveDelegate
    );
    if rules.expired_session && acts_on_funds && crate::program_errors::is_session_expired(failure) {
        raise(
            &mut *db,
            "indexer",
            Alert {
                session_id,
                alert_type: "expired_session",
                severity: "medium",
                description: format!("{:?} attempted by {} after the session expired", instruction.kind, instruction.signer),
                metadata: json!({"signature": tx.signature, "signer": instruction.signer.to_string()}),
                dedup_key: format!("expired_session:{}:{ordinal}", tx.signature),
            },
        )
        .await?;
    }
    Ok(())
}
