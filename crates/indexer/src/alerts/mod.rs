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

use vault_db::alerts::{raise_all, Alert, UnusualSpending};
use vault_db::amount::to_db;

use crate::chain_tx::{ChainTx, TxFailure};
use crate::decode::Cause;
use crate::decode::{InstructionKind, VaultAction, VaultInstruction};
use crate::ingest::{Db, SessionKey};
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

/// An alert decided, waiting for the batch's one insert.
struct Raised {
    session: SessionKey,
    alert_type: &'static str,
    severity: &'static str,
    description: String,
    metadata: serde_json::Value,
    dedup_key: String,
}

/// A landed trade, for the batch's one high-frequency count, with its place in chain order.
struct Trade {
    session: SessionKey,
    at: i64,
    slot: i64,
    signature: String,
    ordinal: i32,
    total_spent: u64,
}

/// The alerts of a batch: the per-action rules decided as actions are applied, high frequency
/// counted for all of the batch's trades at once after its rows are written, then one insert.
#[derive(Default)]
pub struct BatchAlerts {
    raised: Vec<Raised>,
    trades: Vec<Trade>,
}

impl BatchAlerts {
    /// Applies the rules to one action: a landed trade (unusual spending now, high frequency at
    /// [`BatchAlerts::raise`]), a refused instruction (expired session). `approved` is the
    /// session's approved amount (base units or lamports), when known.
    pub fn evaluate(
        &mut self,
        rules: &AlertRules,
        tx: &ChainTx,
        ordinal: usize,
        action: &VaultAction,
        session: &SessionKey,
        approved: Option<u64>,
    ) {
        match action {
            VaultAction::Event(VaultEvent::TradeExecuted(trade)) => {
                self.after_trade(rules, session, approved, tx, ordinal, trade)
            }
            // Only the vault's own refusals say anything about the session: an instruction rolled
            // back by another program's failure, or failed in a program the vault called, carries
            // no vault error code.
            VaultAction::Refused { instruction, failure, cause } => {
                self.after_refusal(rules, session, tx, ordinal, instruction, failure, cause)
            }
            VaultAction::Event(_) => {}
        }
    }

    fn after_trade(
        &mut self,
        rules: &AlertRules,
        session: &SessionKey,
        approved: Option<u64>,
        tx: &ChainTx,
        ordinal: usize,
        trade: &TradeExecuted,
    ) {
        let spent = u128::from(trade.amount) + u128::from(trade.fee);
        if let Some(approved) = approved {
            if rules.unusual_spending_bps.is_unusual(spent, approved) {
                self.raised.push(Raised {
                    session: session.clone(),
                    alert_type: "unusual_spending",
                    severity: "high",
                    description: format!("trade {} spent {spent} of an approved {approved}", trade.trade_id),
                    metadata: json!({"signature": tx.signature, "trade_id": trade.trade_id.to_string(), "spent": spent.to_string()}),
                    dedup_key: format!("unusual_spending:{}:{ordinal}", tx.signature),
                });
            }
        }
        if rules.high_frequency_trades > 0 {
            self.trades.push(Trade {
                session: session.clone(),
                at: trade.timestamp,
                slot: tx.slot as i64,
                signature: tx.signature.clone(),
                ordinal: ordinal as i32,
                total_spent: trade.totals.total_spent,
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn after_refusal(
        &mut self,
        rules: &AlertRules,
        session: &SessionKey,
        tx: &ChainTx,
        ordinal: usize,
        instruction: &VaultInstruction,
        failure: &TxFailure,
        cause: &Cause,
    ) {
        if !cause.is_vault_refusal() {
            return;
        }
        let acts_on_funds = matches!(
            instruction.kind,
            InstructionKind::ExecuteTrade
                | InstructionKind::TopUpFees
                | InstructionKind::Deposit
                | InstructionKind::ApproveDelegate
        );
        if rules.expired_session && acts_on_funds && failure.is_session_expired() {
            self.raised.push(Raised {
                session: session.clone(),
                alert_type: "expired_session",
                severity: "medium",
                description: format!(
                    "{:?} attempted by {} after the session expired",
                    instruction.kind, instruction.signer
                ),
                metadata: json!({"signature": tx.signature, "signer": instruction.signer.to_string()}),
                dedup_key: format!("expired_session:{}:{ordinal}", tx.signature),
            });
        }
    }

    /// Renames the sessions created in this batch from their provisional ids to their real ones.
    pub fn remap(&mut self, ids: &std::collections::HashMap<i32, i32>) {
        let sessions =
            self.raised.iter_mut().map(|r| &mut r.session).chain(self.trades.iter_mut().map(|t| &mut t.session));
        for session in sessions {
            if let Some(id) = ids.get(&session.id) {
                session.id = *id;
            }
        }
    }

    /// Counts, for every landed trade of the batch, its session's landed trades within the
    /// window up to it (one statement over the index on (session_ref, confirmed_at); the batch's
    /// rows are written already), then inserts every alert of the batch (one statement). "Up to
    /// it" is in a fixed order - block time, slot, signature, instruction - not in the order rows
    /// were written, so the trade that raises a window's alert does not depend on how the stream
    /// was cut into batches.
    pub async fn raise(mut self, db: &mut Db<'_>, rules: &AlertRules) -> Result<(), sqlx::Error> {
        if !self.trades.is_empty() {
            let window = rules.high_frequency_window_secs.max(1);
            let counts: Vec<(i64,)> = sqlx::query_as(
                "SELECT (SELECT count(*) FROM vault_transactions t
                         WHERE t.session_ref = u.session_ref AND t.transaction_type = 'trade' AND t.status <> 'failed'
                           AND t.confirmed_at > u.at - $6
                           AND (t.confirmed_at, t.block_slot, t.transaction_signature, t.instruction_index)
                               <= (u.at, u.slot, u.signature, u.ordinal))
                 FROM UNNEST($1::int4[], $2::int8[], $3::int8[], $4::varchar[], $5::int4[])
                      WITH ORDINALITY AS u(session_ref, at, slot, signature, ordinal, n)
                 ORDER BY u.n",
            )
            .bind(self.trades.iter().map(|t| t.session.id).collect::<Vec<_>>())
            .bind(self.trades.iter().map(|t| t.at).collect::<Vec<_>>())
            .bind(self.trades.iter().map(|t| t.slot).collect::<Vec<_>>())
            .bind(self.trades.iter().map(|t| t.signature.as_str()).collect::<Vec<_>>())
            .bind(self.trades.iter().map(|t| t.ordinal).collect::<Vec<_>>())
            .bind(window)
            .fetch_all(db.conn())
            .await?;
            for (trade, (count,)) in self.trades.iter().zip(counts) {
                if count >= i64::from(rules.high_frequency_trades) {
                    let bucket = trade.at.div_euclid(window);
                    self.raised.push(Raised {
                        session: trade.session.clone(),
                        alert_type: "high_frequency",
                        severity: "medium",
                        description: format!("{count} trades within {window} s"),
                        metadata: json!({"trades": count, "window_secs": window, "at": trade.at,
                            "volume_so_far": to_db(trade.total_spent).to_string()}),
                        dedup_key: format!("high_frequency:{}:{bucket}", trade.session.id),
                    });
                }
            }
        }
        if self.raised.is_empty() {
            return Ok(());
        }
        let alerts: Vec<Alert<'_>> = self
            .raised
            .iter()
            .map(|r| Alert {
                session_id: &r.session.session_id,
                session_ref: Some(r.session.id),
                alert_type: r.alert_type,
                severity: r.severity,
                description: r.description.clone(),
                metadata: r.metadata.clone(),
                dedup_key: r.dedup_key.clone(),
            })
            .collect();
        raise_all(db.conn(), "indexer", alerts).await?;
        Ok(())
    }
}
