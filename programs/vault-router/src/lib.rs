//! TEST-ONLY. A tiny program that stands between a transaction and the ephemeral vault, so the
//! indexer is tested against the shapes other programs give vault instructions on chain:
//!
//! - `forward(data)`: the vault instruction `data`, reached by CPI (stack height 2) with the
//!   remaining accounts as its accounts, signer and writable flags as the outer transaction
//!   gave them (the outer transaction's signers sign the CPI);
//! - `fail()`: fails with the router's own custom error 6012, a number the vault also uses
//!   (`SessionExpired`), so a failure must be attributed by program, not by number;
//! - `forward_then_fail(data)`: the vault instruction succeeds by CPI, then the router fails
//!   with 6012, so a vault instruction that ran rolls back with the instruction around it.
//!
//! It is loaded into litesvm by the testkit only; it has no authority over anything (it holds
//! no accounts and signs for no PDA) and is never deployed anywhere. Like the vault it never
//! panics (docs/build.md: a panic on the SBF route only says "SBF program panicked").

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::arithmetic_side_effects)]

#[cfg(target_os = "solana")]
use solana_compiler_builtins as _;

use anchor_lang::prelude::*;
use anchor_lang::solana_program::instruction::{AccountMeta, Instruction};
use anchor_lang::solana_program::program::invoke;

declare_id!("9WxDbpP7mSMeQpkgXgkBKffynTHRnXZ9qzWrT86wqK8r");

/// The ephemeral vault's program id (the testkit checks it equals `ephemeral_vault::ID`).
pub const VAULT_PROGRAM_ID: Pubkey = pubkey!("LcbuhnHozNqGewPGm62N4kqTirH9Enzkn6fMFJBLiwC");

/// The router's only error. Its number, 6012, is the vault's `SessionExpired` too.
#[error_code(offset = 6012)]
pub enum RouterError {
    #[msg("The router was asked to fail")]
    AskedToFail,
}

/// The number [`RouterError::AskedToFail`] fails with.
pub const FAIL_CODE: u32 = 6012;

#[program]
pub mod vault_router {
    use super::*;

    /// Invokes the vault with `data` and the remaining accounts.
    pub fn forward<'info>(ctx: Context<'info, Forward<'info>>, data: Vec<u8>) -> Result<()> {
        forward_to_vault(&ctx, data)
    }

    /// Fails with [`RouterError::AskedToFail`] (6012).
    pub fn fail(_ctx: Context<Fail>) -> Result<()> {
        err!(RouterError::AskedToFail)
    }

    /// Invokes the vault like `forward`, then fails with 6012 once the vault has succeeded.
    pub fn forward_then_fail<'info>(ctx: Context<'info, Forward<'info>>, data: Vec<u8>) -> Result<()> {
        forward_to_vault(&ctx, data)?;
        err!(RouterError::AskedToFail)
    }
}

fn forward_to_vault<'info>(ctx: &Context<'info, Forward<'info>>, data: Vec<u8>) -> Result<()> {
    let accounts = ctx
        .remaining_accounts
        .iter()
        .map(|a| AccountMeta { pubkey: *a.key, is_signer: a.is_signer, is_writable: a.is_writable })
        .collect();
    let ix = Instruction { program_id: VAULT_PROGRAM_ID, accounts, data };
    let mut infos = ctx.remaining_accounts.to_vec();
    infos.push(ctx.accounts.vault_program.to_account_info());
    invoke(&ix, &infos).map_err(Into::into)
}

#[derive(Accounts)]
pub struct Forward<'info> {
    /// CHECK: only its address matters: the CPI goes to the vault and nowhere else.
    #[account(address = VAULT_PROGRAM_ID)]
    pub vault_program: UncheckedAccount<'info>,
}

#[derive(Accounts)]
pub struct Fail {}
