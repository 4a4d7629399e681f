//! What the scenario implies for the database, tallied from the instructions it sent (through
//! the program's own instruction types, not the indexer's decoder, so the two can disagree and
//! a test can catch it).

use std::collections::BTreeMap;

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::{AnchorDeserialize, Discriminator};
use ephemeral_vault::instruction as ix;

use crate::summary::Summary;

/// Rows the indexer must write for the scenario, before the cleanup bot runs.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    /// Transactions sent that carry a vault instruction.
    pub sent: u64,
    /// vault_transactions rows by (transaction_type, landed successfully).
    pub transactions: BTreeMap<(String, bool), u64>,
    /// delegation_history rows: one per session's first delegate and one per rotation.
    pub delegations: u64,
    /// Vaults that may be cleaned once the scenario ends (revoked or expired).
    pub to_clean: Vec<Pubkey>,
    /// Vaults that must still be active after the bot's round.
    pub left_active: Vec<Pubkey>,
    /// Sessions the scenario itself cleaned up (they are not the bot's to clean).
    pub cleaned_in_scenario: usize,
    /// Alert types the scenario provokes.
    pub alerts: Vec<&'static str>,
}

impl Expected {
    /// Tallies one landed transaction: a successful instruction writes one row per event it
    /// emits, a failed transaction one `failed` row for each of its vault instructions (the one
    /// that failed, and those rolled back with it).
    pub fn record(&mut self, ixs: &[Instruction], succeeded: bool) {
        self.sent += 1;
        for instruction in ixs.iter().filter(|i| i.program_id == ephemeral_vault::ID) {
            for kind in rows_of(&instruction.data) {
                *self.transactions.entry((kind.to_string(), succeeded)).or_default() += 1;
                if succeeded && matches!(kind, "create" | "approve_delegate") {
                    self.delegations += 1;
                }
                if !succeeded {
                    break; // a failed instruction emitted nothing: one row for the attempt
                }
            }
        }
    }

    /// The rows once a bot has cleaned `cleaned` vaults.
    pub fn after_cleanup(&self, cleaned: usize) -> BTreeMap<(String, bool), u64> {
        let mut rows = self.transactions.clone();
        if cleaned > 0 {
            *rows.entry(("cleanup".to_string(), true)).or_default() += cleaned as u64;
        }
        rows
    }

    /// Whether the database holds every row the scenario wrote (before any cleanup): the
    /// indexer has caught up with it.
    pub fn indexed(&self, summary: &Summary) -> bool {
        summary.transactions_by_outcome() == self.transactions
    }

    /// Where the database disagrees with the scenario followed by a bot round that cleaned
    /// `cleaned` vaults; empty when it agrees.
    pub fn differences(&self, summary: &Summary, cleaned: usize) -> Vec<String> {
        let mut out = vec![];
        let want = self.after_cleanup(cleaned);
        let got = summary.transactions_by_outcome();
        if got != want {
            out.push(format!("transactions (type, landed) -> rows: expected {want:?}, found {got:?}"));
        }
        let status = |s: &str| summary.sessions_by_status.get(s).copied().unwrap_or(0) as usize;
        let sessions = self.to_clean.len() + self.left_active.len() + self.cleaned_in_scenario;
        let all_cleaned = cleaned + self.cleaned_in_scenario;
        let expected_status = [("active", self.left_active.len()), ("cleaned", all_cleaned)];
        for (name, n) in expected_status {
            if status(name) != n {
                out.push(format!("{n} {name} sessions expected, {} found", status(name)));
            }
        }
        let total: usize = summary.sessions_by_status.values().map(|n| *n as usize).sum();
        if total != sessions {
            out.push(format!("{sessions} sessions expected, {total} found"));
        }
        let cleanups: i64 = summary.cleanups_by_reason.values().sum();
        if cleanups as usize != all_cleaned {
            out.push(format!("{all_cleaned} cleanup events expected, {cleanups} found"));
        }
        if summary.delegations != self.delegations as i64 {
            out.push(format!("{} delegation_history rows expected, {} found", self.delegations, summary.delegations));
        }
        let alert_types: Vec<&str> = summary.alerts_by_type.keys().map(String::as_str).collect();
        if alert_types != self.alerts {
            out.push(format!("alerts {:?} expected, {alert_types:?} found", self.alerts));
        }
        out
    }
}

/// The `transaction_type`s of the rows one vault instruction's events write.
fn rows_of(data: &[u8]) -> Vec<&'static str> {
    let Some((discriminator, mut args)) = (data.len() >= 8).then(|| data.split_at(8)) else {
        return vec![];
    };
    if discriminator == ix::CreateSession::DISCRIMINATOR {
        // SessionCreated, then Deposited when it carried an initial deposit.
        let deposits = ix::CreateSession::deserialize(&mut args).map(|c| c.args.initial_deposit > 0).unwrap_or(false);
        if deposits {
            vec!["create", "deposit"]
        } else {
            vec!["create"]
        }
    } else if discriminator == ix::Deposit::DISCRIMINATOR {
        vec!["deposit"]
    } else if discriminator == ix::Withdraw::DISCRIMINATOR {
        vec!["withdraw"]
    } else if discriminator == ix::ExecuteTrade::DISCRIMINATOR {
        vec!["trade"]
    } else if discriminator == ix::TopUpFees::DISCRIMINATOR {
        vec!["top_up"]
    } else if discriminator == ix::ApproveDelegate::DISCRIMINATOR {
        vec!["approve_delegate"]
    } else if discriminator == ix::RevokeSession::DISCRIMINATOR {
        vec!["revoke"]
    } else if discriminator == ix::CleanupVault::DISCRIMINATOR {
        vec!["cleanup"]
    } else {
        vec![] // config instructions touch no session
    }
}
