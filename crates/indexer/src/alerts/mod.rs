//! Security alerts the indexer raises from what it sees on chain. Each rule is configurable,
//! and each alert carries a `dedup_key`, so a replayed transaction never raises it twice.
//!
//! - `unusual_spending`: one trade (amount + fee) takes at least `unusual_spending_bps` basis
//!   points of the session's approved amount (the rule the session service applies too,
//!   [`vault_db::alerts::UnusualSpending`]).
//! - `high_frequency`: at least `high_frequency_trades` trades of one session within
//!   `high_frequency_window_secs` of chain time (one alert per window).
//! - `expired_session`: the delegate (or parent) kept trying after the session expired.

use serde_json::json;
use sqlx::PgConnection;

use vault_db::alerts::{raise, Alert, UnusualSpending};
use vault_db::amount::{from_db, to_db};

use crate::chain_tx::{ChainTx, TxFailure};
use crate::decode::Cause;
use crate::decode::{InstructionKind, VaultAction, VaultInstruction};
use crate::ingest::SessionKey;
use ephemeral_vault::events::TradeExecuted;
use ephemeral_vault::sdk::VaultEvent;

/// The indexer's alert settings (the `[alerts]` table of its settings file).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertRules {
    /// `unusual_spending` at this many basis points of the approved amount (0 = off).
    pub unusual_spending_bps: UnusualSpending,
    /// `high_frequency` at this many landed trades of one session in the window (0 = off).
    pub high_frequency_trades: u32,
    /// The `high_frequency` window, seconds of chain time.
    pub high_frequency_window_secs: i64,
    /// `expired_session` when a delegate or parent keeps trying after expiry.
    pub expired_session: bool,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            unusual_spending_bps: UnusualSpending::HALF,
            high_frequency_trades: 10,
            high_frequency_window_secs: 60,
            expired_session: true,
        }
    }
}

/// Applies the rules to one action whose rows are written: a landed trade (unusual spending,
/// high frequency), a refused instruction (expired session).
pub async fn apply(
    db: &mut PgConnection,
    rules: &AlertRules,
    tx: &ChainTx,
    ordinal: usize,
    action: &VaultAction,
    session: &SessionKey,
) -> Result<(), sqlx::Error> {
    match action {
        VaultAction::Event(VaultEvent::TradeExecuted(trade)) => {
            after_trade(db, rules, session, tx, ordinal, trade).await
        }
        // Only the vault's own refusals say anything about the session: an instruction rolled
        // back by another program's failure, or failed in a program the vault called, carries no
        // vault error code.
        VaultAction::Refused { instruction, failure, cause } => {
            after_refusal(db, rules, session, tx, ordinal, instruction, failure, cause).await
        }
        VaultAction::Event(_) => Ok(()),
    }
}

async fn after_trade(
    db: &mut PgConnection,
    rules: &AlertRules,
    session: &SessionKey,
    tx: &ChainTx,
    ordinal: usize,
    trade: &TradeExecuted,
) -> Result<(), sqlx::Error> {
    let spent = u128::from(trade.amount) + u128::from(trade.fee);
    let approved: Option<(rust_decimal::Decimal,)> =
        sqlx::query_as("SELECT approved_amount FROM ephemeral_sessions WHERE id = $1")
            .bind(session.id)
            .fetch_optional(&mut *db)
            .await?;
    // A stored amount that is not a u64 cannot come from the program; such a row is not judged.
    if let Some(approved) = approved.and_then(|(a,)| from_db(a).ok()) {
        if rules.unusual_spending_bps.is_unusual(spent, approved) {
            raise(
                &mut *db,
                "indexer",
                Alert {
                    session_id: &session.session_id,
                    session_ref: Some(session.id),
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
             WHERE session_ref = $1 AND transaction_type = 'trade' AND status <> 'failed'
               AND confirmed_at > $2 - $3 AND confirmed_at <= $2",
        )
        .bind(session.id)
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
                    session_id: &session.session_id,
                    session_ref: Some(session.id),
                    alert_type: "high_frequency",
                    severity: "medium",
                    description: format!("{count} trades within {window} s"),
                    metadata: json!({"trades": count, "window_secs": window, "at": trade.timestamp, "volume_so_far": to_db(trade.totals.total_spent).to_string()}),
                    dedup_key: format!("high_frequency:{}:{bucket}", session.id),
                },
            )
            .await?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn after_refusal(
    db: &mut PgConnection,
    rules: &AlertRules,
    session: &SessionKey,
    tx: &ChainTx,
    ordinal: usize,
    instruction: &VaultInstruction,
    failure: &TxFailure,
    cause: &Cause,
) -> Result<(), sqlx::Error> {
    if !cause.is_vault_refusal() {
        return Ok(());
    }
    let acts_on_funds = matches!(
        instruction.kind,
        InstructionKind::ExecuteTrade
            | InstructionKind::TopUpFees
            | InstructionKind::Deposit
            | InstructionKind::ApproveDelegate
    );
    if rules.expired_session && acts_on_funds && failure.is_session_expired() {
        raise(
            &mut *db,
            "indexer",
            Alert {
                session_id: &session.session_id,
                session_ref: Some(session.id),
                alert_type: "expired_session",
                severity: "medium",
                description: format!(
                    "{:?} attempted by {} after the session expired",
                    instruction.kind, instruction.signer
                ),
                metadata: json!({"signature": tx.signature, "signer": instruction.signer.to_string()}),
                dedup_key: format!("expired_session:{}:{ordinal}", tx.signature),
            },
        )
        .await?;
    }
    Ok(())
}
