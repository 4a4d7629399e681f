use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::errors::VaultError;
use crate::events::{emit, Deposited, SessionTotals};
use crate::state::{Config, Vault, CONFIG_ADDRESS, VAULT_TOKEN_SEED};
use crate::transfers::{sol_from_wallet, token_leg, tokens_into_vault};

/// Adds funds to a live session (parent only; refused while paused, after expiry or revocation).
/// The vault is credited with what it actually received.
#[event_cpi]
#[derive(Accounts)]
pub struct Deposit<'info> {
    #[account(mut)]
    pub parent: Signer<'info>,

    #[account(address = CONFIG_ADDRESS)]
    pub config: Account<'info, Config>,

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

    pub system_program: Program<'info, System>,
}

impl Deposit<'_> {
    pub fn deposit(ctx: Context<Self>, amount: u64) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        let accounts = &mut *ctx.accounts;
        require!(amount > 0, VaultError::ZeroAmount);
        accounts.config.require_not_paused()?;
        accounts.vault.require_parent_may_change(now)?;

        let leg = token_leg(&accounts.vault, &accounts.mint, &accounts.vault_token_account, &accounts.token_program)?;
        let received = match &leg {
            None => {
                require!(accounts.parent_token_account.is_none(), VaultError::TokenAccountsMismatch);
                sol_from_wallet(&accounts.parent, &accounts.vault.to_account_info(), &accounts.system_program, amount)?;
                amount
            }
            Some(leg) => {
                let from = accounts.parent_token_account.as_ref().ok_or(VaultError::TokenAccountsMismatch)?;
                tokens_into_vault(leg, from, &accounts.parent, amount)?
            }
        };

        let vault_key = accounts.vault.key();
        let vault = &mut accounts.vault;
        vault.record_deposit(received)?;
        vault.touch(now);
        vault.invariant()?;

        let event = Deposited {
            session_id: vault.session_id,
            parent: vault.parent,
            vault: vault_key,
            mint: vault.mint,
            amount,
            received,
            totals: SessionTotals::from(&**vault),
            timestamp: now,
        };
        emit(ctx.accounts.event_authority.as_ref(), &event)?;
        Ok(())
    }
}
