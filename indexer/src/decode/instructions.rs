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

    /// Position of the vault account in the instruction's accounts (see programs/.../instructions).
    fn vault_position(self) -> Option<usize> {
        match self {
            InstructionKind::ApproveDelegate | InstructionKind::RevokeSession | InstructionKind::Withdraw => Some(1),
            InstructionKind::CreateSession
            | InstructionKind::Deposit
            | InstructionKind::ExecuteTrade
            | InstructionKind::TopUpFees
            | InstructionKind::CleanupVault => Some(2),
            InstructionKind::InitializeConfig | InstructionKind::UpdateConfig | InstructionKind::SetPaused => None,
        }
    }
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

pub fn decode_instruction(data: &[u8], accounts: &[Pubkey]) -> Result<VaultInstruction, String> {
    if data.len() < 8 {
        return Err("instruction data shorter than a discriminator".into());
    }
    let (disc, mut args) = data.split_at(8);
    let out = |kind: InstructionKind| -> Result<VaultInstruction, String> {
        let signer = *accounts.first().ok_or("instruction has no accounts")?;
        let vault = match kind.vault_position() {
            Some(position) => Some(*accounts.get(position).ok_or("instruction is missing its vault account")?),
            None => None,
        };
        Ok(VaultInstruction { kind, signer, vault, amount: None, fee: None, trade_id: None, session_id: None })
    };
    let bad = |e: std::io::Error| format!("malformed arguments: {e}");
    let decoded = if disc == ix::InitializeConfig::DISCRIMINATOR {
        out(InstructionKind::InitializeConfig)?
    } else if disc == ix::UpdateConfig::DISCRIMINATOR {
        out(InstructionKind::UpdateConfig)?
    } else if disc == ix::SetPaused::DISCRIMINATOR {
        out(InstructionKind::SetPaused)?
    } else if disc == ix::CreateSession::DISCRIMINATOR {
        let args = ix::CreateSession::deserialize(&mut args).map_err(bad)?.args;
        VaultInstruction {
            amount: Some(args.initial_deposit),
            session_id: Some(args.session_id),
            ..out(InstructionKind::CreateSession)?
        }
    } else if disc == ix::ApproveDelegate::DISCRIMINATOR {
        out(InstructionKind::ApproveDelegate)?
    } else if disc == ix::Deposit::DISCRIMINATOR {
        let amount = ix::Deposit::deserialize(&mut args).map_err(bad)?.amount;
        VaultInstruction { amount: Some(amount), ..out(InstructionKind::Deposit)? }
    } else if disc == ix::Withdraw::DISCRIMINATOR {
        let amount = ix::Withdraw::deserialize(&mut args).map_err(bad)?.amount;
        VaultInstruction { amount: Some(amount), ..out(InstructionKind::Withdraw)? }
    } else if disc == ix::ExecuteTrade::DISCRIMINATOR {
        let args = ix::ExecuteTrade::deserialize(&mut args).map_err(bad)?.args;
        VaultInstruction {
            amount: Some(args.amount),
            fee: Some(args.fee),
            trade_id: Some(args.trade_id),
            ..out(InstructionKind::ExecuteTrade)?
        }
    } else if disc == ix::TopUpFees::DISCRIMINATOR {
        let amount = ix::TopUpFees::deserialize(&mut args).map_err(bad)?.amount;
        VaultInstruction { amount: Some(amount), ..out(InstructionKind::TopUpFees)? }
    } else if disc == ix::RevokeSession::DISCRIMINATOR {
        out(InstructionKind::RevokeSession)?
    } else if disc == ix::CleanupVault::DISCRIMINATOR {
        out(InstructionKind::CleanupVault)?
    } else {
        return Err(format!("unknown instruction discriminator {disc:?}"));
    };
    Ok(decoded)
}
