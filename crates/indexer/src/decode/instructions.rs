//! Decoding the program's instructions themselves (used for failed transactions, which carry no
//! events): which instruction, who signed, which vault, and the arguments that matter.

use anchor_lang::prelude::Pubkey;
use anchor_lang::{AnchorDeserialize, Discriminator};
use ephemeral_vault::instruction as ix;

/// The program's instructions, named as the database's `transaction_type` names them where one
/// applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstructionKind {
    InitializeConfig,
    UpdateConfig,
    SetPaused,
    CreateSession,
    ApproveDelegate,
    Deposit,
    Withdraw,
    ExecuteTrade,
    TopUpFees,
    RevokeSession,
    CleanupVault,
}

impl InstructionKind {
    /// `vault_transactions.transaction_type`, for instructions that act on a session.
    pub fn transaction_type(self) -> Option<&'static str> {
        Some(match self {
            InstructionKind::CreateSession => "create",
            InstructionKind::ApproveDelegate => "approve_delegate",
            InstructionKind::Deposit => "deposit",
            InstructionKind::Withdraw => "withdraw",
            InstructionKind::ExecuteTrade => "trade",
            InstructionKind::TopUpFees => "top_up",
            InstructionKind::RevokeSession => "revoke",
            InstructionKind::CleanupVault => "cleanup",
            InstructionKind::InitializeConfig | InstructionKind::UpdateConfig | InstructionKind::SetPaused => {
                return None
            }
        })
    }

    /// Position of the vault account in the instruction's accounts, as the program's own
    /// account structs order them ([`vault_positions`]); None for the admin instructions.
    fn vault_position(self) -> Option<usize> {
        vault_positions().iter().find(|(kind, _)| *kind == self).map(|&(_, position)| position)
    }
}

/// Where each session instruction keeps its vault account, read off instructions built by the
/// program crate's `sdk` (which fills Anchor's generated `accounts::*` structs, in the order the
/// program declares them): a layout change in the program moves these with it, instead of
/// leaving hand-written indexes behind.
fn vault_positions() -> &'static [(InstructionKind, usize)] {
    static POSITIONS: std::sync::LazyLock<Vec<(InstructionKind, usize)>> = std::sync::LazyLock::new(|| {
        use ephemeral_vault::instructions::{CreateSessionArgs, ExecuteTradeArgs};
        use ephemeral_vault::sdk::{self, Asset, SessionRef};
        // Distinct marker keys, so no other account of an instruction equals the vault.
        let key = |n: u8| Pubkey::new_from_array([n; 32]);
        let session = SessionRef {
            parent: key(1),
            session_id: [2; 16],
            asset: Asset::Token { mint: key(3), token_program: anchor_spl::token_2022::ID },
        };
        let vault = session.vault();
        let create = CreateSessionArgs {
            session_id: session.session_id,
            approved_amount: 1,
            per_trade_cap: 1,
            duration_secs: 60,
            destinations: vec![],
            initial_deposit: 1,
            fee_top_up: 0,
        };
        let trade = ExecuteTradeArgs { trade_id: 1, amount: 1, fee: 0 };
        let built = [
            (
                InstructionKind::CreateSession,
                sdk::create_session(session.parent, key(4), session.asset, Some(key(6)), create),
            ),
            (InstructionKind::ApproveDelegate, sdk::approve_delegate(&session, key(5))),
            (InstructionKind::Deposit, sdk::deposit(&session, Some(key(6)), 1)),
            (InstructionKind::Withdraw, sdk::withdraw(&session, Some(key(6)), 1)),
            (InstructionKind::ExecuteTrade, sdk::execute_trade(&session, key(4), key(7), Some(key(9)), trade)),
            (InstructionKind::TopUpFees, sdk::top_up_fees(&session, key(4), 1)),
            (InstructionKind::RevokeSession, sdk::revoke_session(&session)),
            (InstructionKind::CleanupVault, sdk::cleanup_vault(&session, key(8), Some(key(6)))),
        ];
        built
            .into_iter()
            .filter_map(|(kind, ix)| ix.accounts.iter().position(|a| a.pubkey == vault).map(|p| (kind, p)))
            .collect()
    });
    &POSITIONS
}

/// Why a vault instruction's bytes could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InstructionDecodeError {
    #[error("instruction data shorter than a discriminator")]
    TooShort,
    #[error("instruction has no accounts")]
    NoAccounts,
    #[error("instruction is missing its vault account")]
    MissingVault,
    #[error("malformed arguments: {0}")]
    MalformedArguments(String),
    #[error("unknown instruction discriminator {0:?}")]
    UnknownDiscriminator([u8; 8]),
}

/// A decoded vault instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultInstruction {
    pub kind: InstructionKind,
    /// The first account, which signs every instruction (parent, delegate, admin or caller).
    pub signer: Pubkey,
    pub vault: Option<Pubkey>,
    /// The amount the instruction asked to move, where it has one.
    pub amount: Option<u64>,
    pub fee: Option<u64>,
    pub trade_id: Option<u64>,
    pub session_id: Option<[u8; 16]>,
}

pub fn decode_instruction(data: &[u8], accounts: &[Pubkey]) -> Result<VaultInstruction, InstructionDecodeError> {
    let Some((disc, mut args)) = data.split_first_chunk::<8>() else {
        return Err(InstructionDecodeError::TooShort);
    };
    let out = |kind: InstructionKind| -> Result<VaultInstruction, InstructionDecodeError> {
        let signer = *accounts.first().ok_or(InstructionDecodeError::NoAccounts)?;
        let vault = match kind.vault_position() {
            Some(position) => Some(*accounts.get(position).ok_or(InstructionDecodeError::MissingVault)?),
            None => None,
        };
        Ok(VaultInstruction { kind, signer, vault, amount: None, fee: None, trade_id: None, session_id: None })
    };
    let bad = |e: std::io::Error| InstructionDecodeError::MalformedArguments(e.to_string());
    let decoded = if *disc == ix::InitializeConfig::DISCRIMINATOR {
        out(InstructionKind::InitializeConfig)?
    } else if *disc == ix::UpdateConfig::DISCRIMINATOR {
        out(InstructionKind::UpdateConfig)?
    } else if *disc == ix::SetPaused::DISCRIMINATOR {
        out(InstructionKind::SetPaused)?
    } else if *disc == ix::CreateSession::DISCRIMINATOR {
        let args = ix::CreateSession::deserialize(&mut args).map_err(bad)?.args;
        VaultInstruction {
            amount: Some(args.initial_deposit),
            session_id: Some(args.session_id),
            ..out(InstructionKind::CreateSession)?
        }
    } else if *disc == ix::ApproveDelegate::DISCRIMINATOR {
        out(InstructionKind::ApproveDelegate)?
    } else if *disc == ix::Deposit::DISCRIMINATOR {
        let amount = ix::Deposit::deserialize(&mut args).map_err(bad)?.amount;
        VaultInstruction { amount: Some(amount), ..out(InstructionKind::Deposit)? }
    } else if *disc == ix::Withdraw::DISCRIMINATOR {
        let amount = ix::Withdraw::deserialize(&mut args).map_err(bad)?.amount;
        VaultInstruction { amount: Some(amount), ..out(InstructionKind::Withdraw)? }
    } else if *disc == ix::ExecuteTrade::DISCRIMINATOR {
        let args = ix::ExecuteTrade::deserialize(&mut args).map_err(bad)?.args;
        VaultInstruction {
            amount: Some(args.amount),
            fee: Some(args.fee),
            trade_id: Some(args.trade_id),
            ..out(InstructionKind::ExecuteTrade)?
        }
    } else if *disc == ix::TopUpFees::DISCRIMINATOR {
        let amount = ix::TopUpFees::deserialize(&mut args).map_err(bad)?.amount;
        VaultInstruction { amount: Some(amount), ..out(InstructionKind::TopUpFees)? }
    } else if *disc == ix::RevokeSession::DISCRIMINATOR {
        out(InstructionKind::RevokeSession)?
    } else if *disc == ix::CleanupVault::DISCRIMINATOR {
        out(InstructionKind::CleanupVault)?
    } else {
        return Err(InstructionDecodeError::UnknownDiscriminator(*disc));
    };
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The positions the program declares today (programs/ephemeral-vault/src/instructions):
    /// if a layout change moves a vault account, this test names the instruction.
    #[test]
    fn vault_positions_follow_the_programs_account_structs() {
        let expected = [
            (InstructionKind::CreateSession, 2),
            (InstructionKind::ApproveDelegate, 1),
            (InstructionKind::Deposit, 2),
            (InstructionKind::Withdraw, 1),
            (InstructionKind::ExecuteTrade, 2),
            (InstructionKind::TopUpFees, 2),
            (InstructionKind::RevokeSession, 1),
            (InstructionKind::CleanupVault, 2),
        ];
        for (kind, position) in expected {
            assert_eq!(kind.vault_position(), Some(position), "{kind:?}");
        }
        assert_eq!(InstructionKind::SetPaused.vault_position(), None);
    }
}
