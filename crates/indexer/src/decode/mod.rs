//! Turns a [`ChainTx`] into the vault actions it carries.
//!
//! A transaction that landed is read through its `emit_cpi!` events - the program's own record of
//! what changed, with totals after the change. Events are accepted only from inner instructions
//! that this program sent to itself signed by its event authority, which no other program can
//! sign for, so neither logs nor another program can forge them. A failed transaction emits no
//! events (its effects were rolled back), so its vault instructions - top-level ones and those
//! another program reached by CPI - are decoded from their discriminators and accounts instead,
//! each attributed to the instruction and program that failed (see [`attribution`]).

mod attribution;
mod instructions;

use anchor_lang::prelude::Pubkey;
use ephemeral_vault::sdk::{self, EventDecodeError, VaultEvent};

pub use attribution::{vault_account_refused, Cause};
pub use instructions::{InstructionDecodeError, InstructionKind, VaultInstruction};

use crate::chain_tx::{ChainTx, TxFailure};

/// One thing the vault program did (or refused) in a transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum VaultAction {
    /// An event from a transaction that landed.
    Event(VaultEvent),
    /// A vault instruction in a transaction that failed: refused by the program (or a program it
    /// called), or rolled back because another instruction failed ([`Cause`]).
    Refused { instruction: VaultInstruction, failure: TxFailure, cause: Cause },
}

/// Why part of a transaction that names the program could not be read. Recorded (in
/// `indexer_skipped` when nothing of the transaction could be read, in the log otherwise) and
/// counted; never a panic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// An inner instruction to the program with an event's tag but not signed by the event
    /// authority: anyone can send the program such bytes, so it is no event.
    #[error("event-shaped CPI without the event authority: ignored")]
    ForgedEvent,
    /// An event the program emitted that this build cannot read (a newer program version).
    #[error(transparent)]
    Event(#[from] EventDecodeError),
    /// An instruction whose account indexes point past the transaction's account keys.
    #[error("instruction {index}: account index out of range")]
    AccountIndexOutOfRange { index: usize },
    /// A top-level vault instruction of a failed transaction that does not decode.
    #[error("instruction {index}: {error}")]
    Instruction { index: usize, error: InstructionDecodeError },
}

/// A transaction's vault actions in execution order. `ordinal` in [`Decoded::actions`] is the
/// action's position, which with the signature identifies a row (`instruction_index`).
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub actions: Vec<VaultAction>,
    /// What could not be decoded (unknown discriminators, malformed data); counted and logged.
    pub problems: Vec<DecodeError>,
}

impl Decoded {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The vaults this transaction opens an incarnation of: those of its SessionCreated events.
    pub fn opened_vaults(&self) -> Vec<Pubkey> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                VaultAction::Event(VaultEvent::SessionCreated(e)) => Some(e.vault),
                _ => None,
            })
            .collect()
    }

    /// The problems as one line, for logs and `indexer_skipped.reason`.
    pub fn problems_text(&self) -> String {
        self.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    }
}

/// The decoder's output and the writer's input: a transaction with its decoded actions.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedTx {
    pub tx: ChainTx,
    pub decoded: Decoded,
}

impl DecodedTx {
    pub fn new(tx: ChainTx) -> Self {
        let decoded = decode(&tx);
        Self { tx, decoded }
    }
}

/// Decodes each of `txs` (the stage between a source and the writer).
pub fn decode_all(txs: &[ChainTx]) -> Vec<DecodedTx> {
    txs.iter().cloned().map(DecodedTx::new).collect()
}

/// The program's event authority, derived once: a PDA search costs about 30 µs, more than the
/// rest of decoding a transaction (scripts/bench-indexer.sh's "of which decoding").
static EVENT_AUTHORITY: std::sync::LazyLock<Pubkey> = std::sync::LazyLock::new(sdk::event_authority_address);

/// Decodes every vault action in `tx`, never panicking on malformed input.
pub fn decode(tx: &ChainTx) -> Decoded {
    let program = ephemeral_vault::ID;
    let mut decoded = Decoded { actions: vec![], problems: vec![] };
    if !tx.mentions(&program) {
        return decoded;
    }
    match &tx.failure {
        None => decode_events(tx, &mut decoded),
        Some(failure) => decode_refusals(tx, failure, &mut decoded),
    }
    decoded
}

fn decode_events(tx: &ChainTx, decoded: &mut Decoded) {
    let authority = *EVENT_AUTHORITY;
    for inner in tx.inner_instructions.iter().flatten() {
        if tx.program_of(inner) != Some(&ephemeral_vault::ID) {
            continue;
        }
        let Some(result) = sdk::decode_event_cpi(&inner.data) else {
            continue; // a CPI into the program's instructions, not an event
        };
        let signed_by_authority = inner.accounts.len() == 1 && tx.key(inner.accounts[0]) == Some(&authority);
        if !signed_by_authority {
            decoded.problems.push(DecodeError::ForgedEvent);
            continue;
        }
        match result {
            Ok(event) => decoded.actions.push(VaultAction::Event(event)),
            Err(e) => decoded.problems.push(e.into()),
        }
    }
}

fn decode_refusals(tx: &ChainTx, failure: &TxFailure, decoded: &mut Decoded) {
    let program = ephemeral_vault::ID;
    let authority = *EVENT_AUTHORITY;
    let mut found = vec![];
    for (index, ix) in tx.instructions.iter().enumerate() {
        let inner = tx.inner_instructions.get(index).map(Vec::as_slice).unwrap_or(&[]);
        let invocations = std::iter::once(ix).chain(inner).enumerate();
        for (invocation, raw) in invocations.filter(|(_, raw)| tx.program_of(raw) == Some(&program)) {
            if invocation > 0 && sdk::decode_event_cpi(&raw.data).is_some() {
                continue; // an event of a vault instruction: its effects were rolled back with it
            }
            let Some(accounts) = tx.accounts_of(raw) else {
                decoded.problems.push(DecodeError::AccountIndexOutOfRange { index });
                continue;
            };
            // A call carrying only the event authority is event-shaped; without the event tag it
            // is no vault instruction either (each of those names its signer first): ignored,
            // as a landed transaction ignores it.
            if invocation > 0 && accounts == [authority] {
                continue;
            }
            match instructions::decode_instruction(&raw.data, &accounts) {
                Ok(instruction) => found.push((attribution::Site { top_level: index, invocation }, instruction)),
                Err(error) => decoded.problems.push(DecodeError::Instruction { index, error }),
            }
        }
    }
    let sites: Vec<_> = found.iter().map(|(site, _)| *site).collect();
    let causes = attribution::attribute(tx, failure, &sites);
    for ((_, instruction), cause) in found.into_iter().zip(causes) {
        decoded.actions.push(VaultAction::Refused { instruction, failure: failure.clone(), cause });
    }
}

/// The vault a decoded action is about, when it names one.
pub fn action_vault(action: &VaultAction) -> Option<Pubkey> {
    match action {
        VaultAction::Event(event) => event_vault(event),
        VaultAction::Refused { instruction, .. } => instruction.vault,
    }
}

pub fn event_vault(event: &VaultEvent) -> Option<Pubkey> {
    Some(match event {
        VaultEvent::SessionCreated(e) => e.vault,
        VaultEvent::DelegateApproved(e) => e.vault,
        VaultEvent::Deposited(e) => e.vault,
        VaultEvent::Withdrawn(e) => e.vault,
        VaultEvent::TradeExecuted(e) => e.vault,
        VaultEvent::FeesToppedUp(e) => e.vault,
        VaultEvent::SessionRevoked(e) => e.vault,
        VaultEvent::VaultCleaned(e) => e.vault,
        VaultEvent::ConfigInitialized(_) | VaultEvent::ConfigUpdated(_) | VaultEvent::PauseSet(_) => return None,
    })
}
