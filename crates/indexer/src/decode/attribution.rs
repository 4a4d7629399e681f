//! Which instruction of a failed transaction failed, and which program's error it is.
//!
//! The runtime reports a failure as `InstructionError(index, error)`: the TOP-LEVEL instruction
//! that failed, and an error code with no program attached. A custom code means nothing without
//! its program - 6012 is one of this program's errors and also, say, another Anchor program's -
//! so the program is read from the logs: every program invocation logs `Program <id> invoke [d]`
//! and ends with `Program <id> success` or `Program <id> failed: ...`, in execution order, which
//! is also the order of the top-level instruction followed by its recorded inner instructions.
//! The invocations that logged `failed` form the failing path (the innermost one raised the
//! error; each caller failed because of it).
//!
//! A vault invocation on the failing path is the one that failed. Every other vault invocation
//! of the transaction did not fail: it was rolled back by the failing instruction.

use anchor_lang::prelude::Pubkey;
use std::str::FromStr;

use crate::chain_tx::{ChainTx, TxFailure};

/// What became of one vault instruction in a failed transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// This instruction failed. `program` is the program whose error it is: the vault itself,
    /// or a program the vault called (a token program), when the logs say so.
    Failed { program: Option<Pubkey> },
    /// This instruction did not fail, but another one did and the runtime rolled the whole
    /// transaction back: top-level instruction `instruction_index`, with `program`'s error.
    RolledBack { instruction_index: Option<u8>, program: Option<Pubkey> },
}

impl Cause {
    /// True when the vault program itself refused: only then is the custom code one of its
    /// errors, and only then do the vault's alert rules apply.
    pub fn is_vault_refusal(&self) -> bool {
        matches!(self, Cause::Failed { program: Some(p) } if *p == ephemeral_vault::ID)
    }

    /// `vault_transactions.error_message` for a vault instruction of a failed transaction.
    pub fn describe(&self, failure: &TxFailure) -> String {
        match self {
            Cause::Failed { .. } if self.is_vault_refusal() => failure.describe(),
            Cause::Failed { program: Some(program) } => format!("program {program} failed: {}", failure.message),
            Cause::Failed { program: None } => failure.message.clone(),
            Cause::RolledBack { instruction_index, program } => {
                let at =
                    instruction_index.map(|i| format!("instruction {i}")).unwrap_or_else(|| "an instruction".into());
                let by = program.map(|p| format!(" (program {p})")).unwrap_or_default();
                format!("rolled back: {at}{by} failed: {}", failure.message)
            }
        }
    }
}

/// True when the vault program refused the transaction because its `vault` account was not a
/// vault at all: Anchor logs `AnchorError caused by account: vault.` with one of its account
/// errors, 3000..=3999 (not initialised 3012, owned by another program 3007, another type 3002,
/// ...). Then no session existed for the instruction to belong to, and none will be indexed for
/// it. Constraint errors on the vault (has_one, seeds: 2000..=2999) and the program's own
/// (6000+) are about a vault that did exist.
pub fn vault_account_refused(tx: &ChainTx, failure: &TxFailure) -> bool {
    innermost_failed(&tx.logs) == Some(ephemeral_vault::ID)
        && failure.custom_code.is_some_and(|code| (3000..=3999).contains(&code))
        && tx.logs.iter().any(|line| line.contains("AnchorError caused by account: vault."))
}

/// One program invocation, as the logs show it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Invocation {
    program: Pubkey,
    failed: bool,
}

/// The invocations of each top-level instruction, in execution order (the instruction itself
/// first). None when the logs cannot be read as a whole (truncated, or a line out of place).
fn invocations(logs: &[String]) -> Option<Vec<Vec<Invocation>>> {
    let mut groups: Vec<Vec<Invocation>> = vec![];
    let mut stack: Vec<usize> = vec![];
    for line in logs {
        let Some(rest) = line.strip_prefix("Program ") else { continue };
        let mut words = rest.splitn(2, ' ');
        let (Some(id), Some(tail)) = (words.next(), words.next()) else { continue };
        let Ok(program) = Pubkey::from_str(id) else { continue };
        if let Some(depth) = tail.strip_prefix("invoke [").and_then(|d| d.strip_suffix(']')) {
            let depth: usize = depth.parse().ok()?;
            if depth == 1 {
                if !stack.is_empty() {
                    return None;
                }
                groups.push(vec![]);
            }
            if depth != stack.len() + 1 {
                return None;
            }
            let group = groups.last_mut()?;
            group.push(Invocation { program, failed: false });
            stack.push(group.len() - 1);
        } else if tail == "success" || tail.starts_with("failed") {
            let position = stack.pop()?;
            let invocation = groups.last_mut()?.get_mut(position)?;
            if invocation.program != program {
                return None;
            }
            invocation.failed = tail.starts_with("failed");
        }
    }
    stack.is_empty().then_some(groups)
}

/// The innermost program that failed: the first `Program <id> failed` line.
fn innermost_failed(logs: &[String]) -> Option<Pubkey> {
    logs.iter().find_map(|line| {
        let rest = line.strip_prefix("Program ")?;
        let (id, tail) = rest.split_once(' ')?;
        tail.starts_with("failed").then(|| Pubkey::from_str(id).ok()).flatten()
    })
}

/// A vault instruction of a failed transaction: top-level instruction `top_level`, and its
/// position among that instruction's invocations (0 = the top-level instruction itself, k = its
/// k-th recorded inner instruction, counted from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site {
    pub top_level: usize,
    pub invocation: usize,
}

/// Attributes each of `sites` (the vault instructions of `tx`, which failed with `failure`).
pub fn attribute(tx: &ChainTx, failure: &TxFailure, sites: &[Site]) -> Vec<Cause> {
    let failing_top = failure.instruction_index.map(usize::from);
    let innermost = innermost_failed(&tx.logs);
    let failing_top_program =
        failing_top.and_then(|i| tx.instructions.get(i)).and_then(|ix| tx.program_of(ix)).copied();
    let rolled_back =
        Cause::RolledBack { instruction_index: failure.instruction_index, program: innermost.or(failing_top_program) };
    let groups = invocations(&tx.logs).filter(|groups| logs_match(tx, groups));
    sites
        .iter()
        .enumerate()
        .map(|(n, site)| {
            if Some(site.top_level) != failing_top {
                return rolled_back.clone();
            }
            match &groups {
                // The logs say exactly which invocations failed.
                Some(groups) => match groups.get(site.top_level).and_then(|g| g.get(site.invocation)) {
                    Some(invocation) if invocation.failed => Cause::Failed { program: innermost },
                    _ => rolled_back.clone(),
                },
                // Without readable logs: a failing top-level vault instruction failed itself; of
                // the vault calls inside another program's failing instruction, the last one
                // failed if the vault's is the error, none did otherwise.
                None => {
                    let last_in_instruction = sites[n + 1..].iter().all(|s| s.top_level != site.top_level);
                    let vault_top = failing_top_program == Some(ephemeral_vault::ID);
                    if (site.invocation == 0 && vault_top)
                        || (site.invocation > 0 && last_in_instruction && innermost == Some(ephemeral_vault::ID))
                    {
                        Cause::Failed { program: innermost }
                    } else {
                        rolled_back.clone()
                    }
                }
            }
        })
        .collect()
}

/// True when the log's invocations line up with the transaction's instructions: same count per
/// top-level instruction and the same programs (so positions mean the same thing in both). The
/// logs of a failed transaction stop at the failure, so only instructions up to it are compared.
fn logs_match(tx: &ChainTx, groups: &[Vec<Invocation>]) -> bool {
    groups.iter().enumerate().all(|(top, group)| {
        let Some(ix) = tx.instructions.get(top) else { return false };
        let inner = tx.inner_instructions.get(top).map(Vec::as_slice).unwrap_or(&[]);
        let programs = std::iter::once(ix).chain(inner).map(|i| tx.program_of(i).copied());
        group.len() == 1 + inner.len() && programs.zip(group).all(|(p, g)| p == Some(g.program))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn reads_the_failing_path_from_nested_invocations() {
        let vault = ephemeral_vault::ID.to_string();
        let router = Pubkey::new_unique().to_string();
        let lines = logs(&[
            &format!("Program {vault} invoke [1]"),
            &format!("Program {vault} invoke [2]"),
            &format!("Program {vault} success"),
            &format!("Program {vault} success"),
            &format!("Program {router} invoke [1]"),
            "Program log: AnchorError occurred. Error Number: 6012.",
            &format!("Program {router} failed: custom program error: 0x177c"),
        ]);
        let groups = invocations(&lines).expect("readable");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].iter().map(|i| i.failed).collect::<Vec<_>>(), [false, false]);
        assert!(groups[1][0].failed);
        assert_eq!(innermost_failed(&lines).map(|p| p.to_string()), Some(router));
    }

    #[test]
    fn unbalanced_logs_are_not_trusted() {
        let vault = ephemeral_vault::ID.to_string();
        let lines = logs(&[&format!("Program {vault} invoke [1]"), &format!("Program {vault} invoke [3]")]);
        assert_eq!(invocations(&lines), None);
        let truncated = logs(&[&format!("Program {vault} invoke [1]"), "Log truncated"]);
        assert_eq!(invocations(&truncated), None);
    }
}
