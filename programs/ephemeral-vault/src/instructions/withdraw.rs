use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::errors::VaultError;
use crate::events::{emit, SessionTotals, Withdrawn};
use crate::state::{Vault, VAULT_TOKEN_SEED};
use crate::transfers::{sol_from_vault, token_leg, tokens_from_vault};

/// Takes funds back to the parent (parent only). Allowed at any time - while paused, after
/// expiry or revocation - because the funds are the parent's.
#[event_cpi]
#[derive(Accounts)]
pub struct Withdraw<'info> {
    #[account(mut)]
    pub parent: Signer<'info>,

    #[account(
        mut,
        has_one = parent @ VaultError::Unauthorized,
    )]
    pub vault: Account<'info, Vault>,

    #[account(
        address = vault.mint @ VaultError::WrongMint,
        mint::token_program = token_program,
    )]
    pub mint: Option<InterfaceAccount<'info, Mint>>,

    #[account(
        mut,
        seeds = [VAULT_TOKEN_SEED, vault.key().as_ref()],
        bump = vault.token_account_bump,
        token::mint = mint,
        token::authority = vault,
        token::token_program = token_program,
    )]
    pub vault_token_account: Option<InterfaceAccount<'info, TokenAccount>>,

    #[account(
        mut,
        token::mint = mint,
        token::authority = parent,
        token::token_program = token_program,
    )]
    pub parent_token_account: Option<InterfaceAccount<'info, TokenAccount>>,

    #[account(address = vault.token_program @ VaultError::WrongTokenProgram)]
    pub token_program: Option<Interface<'info, TokenInterface>>,
}

impl Withdraw<'_> {
    pub fn withdraw(ctx: Context<Self>, amount: u64) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        let accounts = &mut *ctx.accounts;
        require!(amount > 0, VaultError::ZeroAmount);
        accounts.vault.record_withdrawal(amount)?;

        let leg = token_leg(&accounts.vault, &accounts.mint, &accounts.vault_token_account, &accounts.token_program)?;
        match &leg {
            None => {
                require!(accounts.parent_token_account.is_none(), VaultError::TokenAccountsMismatch);
                sol_from_vault(&accounts.vault.to_account_info(), &accounts.parent.to_account_info(), amount)?;
            }
            Some(leg) => {
                let to = accounts.parent_token_account.as_ref().ok_or(VaultError::TokenAccountsMismatch)?;
                tokens_from_vault(leg, &accounts.vault, &to.to_account_info(), amount)?;
            }
        }

        let vault_key = accounts.vault.key();
        let vault = &mut accounts.vault;
        vault.touch(now);
        vault.invariant()?;

        let event = Withdrawn {
            session_id: vault.session_id,
            parent: vault.parent,
            vault: vault_key,
            mint: vault.mint,
            amount,
            totals: SessionTotals::from(&**vault),
            timestamp: now,
        };
        emit(ctx.accounts.event_authority.as_ref(), &event)?;
        Ok(())
    }
}
