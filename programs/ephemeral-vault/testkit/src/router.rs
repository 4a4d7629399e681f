//! Instructions of the test-only `vault-router` program (programs/vault-router), deployed beside
//! the vault in every [`VaultWorld`](crate::VaultWorld): the shapes other programs give vault
//! instructions on chain, for the indexer's tests.

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::{InstructionData, ToAccountMetas};

/// The router's program id.
pub const ID: Pubkey = vault_router::ID;

/// The custom error number `fail` and `forward_then_fail` fail with: the router's own, which is
/// also the vault's `SessionExpired` (6012).
pub const FAIL_CODE: u32 = vault_router::FAIL_CODE;

/// `vault_ix` reached by CPI: the router's `forward`, whose remaining accounts are the vault
/// instruction's accounts with their signer and writable flags.
///
/// Panics if `vault_ix` is not an instruction of the vault program.
pub fn forward(vault_ix: Instruction) -> Instruction {
    wrap(vault_ix, |data| vault_router::instruction::Forward { data }.data())
}

/// Like [`forward`], but the router fails with [`FAIL_CODE`] after the vault instruction
/// succeeded: a vault instruction that ran inside an instruction that failed.
pub fn forward_then_fail(vault_ix: Instruction) -> Instruction {
    wrap(vault_ix, |data| vault_router::instruction::ForwardThenFail { data }.data())
}

/// The router's `fail`: fails with [`FAIL_CODE`], touching nothing.
pub fn fail() -> Instruction {
    Instruction {
        program_id: ID,
        accounts: vault_router::accounts::Fail {}.to_account_metas(None),
        data: vault_router::instruction::Fail {}.data(),
    }
}

fn wrap(vault_ix: Instruction, data: impl FnOnce(Vec<u8>) -> Vec<u8>) -> Instruction {
    assert_eq!(vault_ix.program_id, ephemeral_vault::ID, "the router forwards to the vault only");
    let mut accounts = vault_router::accounts::Forward { vault_program: ephemeral_vault::ID }.to_account_metas(None);
    accounts.extend(vault_ix.accounts);
    Instruction { program_id: ID, accounts, data: data(vault_ix.data) }
}
