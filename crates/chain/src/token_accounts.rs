//! Associated token accounts, through anchor-spl's re-export of the associated token program's
//! interface: the cleanup bot creates a parent's account before a token cleanup, and the main
//! job's scenario funds parents through theirs.

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_spl::associated_token::{get_associated_token_address_with_program_id, spl_associated_token_account};

/// The associated token account of `owner` for `mint` under `token_program` (SPL Token or
/// Token-2022).
pub fn associated_token_address(owner: &Pubkey, mint: &Pubkey, token_program: &Pubkey) -> Pubkey {
    get_associated_token_address_with_program_id(owner, mint, token_program)
}

/// `CreateIdempotent`: creates the account if it is missing and does nothing if it exists;
/// anyone may pay for it (`payer` signs).
pub fn create_associated_token_account_idempotent(
    payer: &Pubkey,
    owner: &Pubkey,
    mint: &Pubkey,
    token_program: &Pubkey,
) -> Instruction {
    spl_associated_token_account::instruction::create_associated_token_account_idempotent(
        payer,
        owner,
        mint,
        token_program,
    )
}
