use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::errors::VaultError;
use crate::events::{emit, SessionTotals, VaultCleaned};
use crate::state::{Config, Vault, CONFIG_ADDRESS, VAULT_TOKEN_SEED};
use crate::transfers::{close_vault_token_account, reload_amount, token_leg, tokens_from_vault};

/// Permissionless cleanup: once a session has expired, been revoked, or while the program is
/// paused, anyone may close its vault. Every token and lamport goes back to the parent except a
/// reward for the caller, which is taken from the reclaimed rent (vault account and token
/// account) and bounded by the config - never from the parent's principal. The vault account is
/// closed, so a second cleanup fails.
#[event_cpi]
#[derive(Accounts)]
pub struct CleanupVault<'info> {
    #[account(mut)]
    pub caller: Signer<'info>,

    #[account(address = CONFIG_ADDRESS)]
    pub config: Account<'info, Config>,

    #[account(
        mut,
        has_one = parent @ VaultError::Unauthorized,
        close = parent,
    )]
    pub vault: Account<'info, Vault>,

    /// Receives everything that is not the caller's reward.
    #[account(mut)]
    pub parent: SystemAccount<'info>,

    /// Writable so withheld Token-2022 transfer fees can be harvested to it before closing.
    #[account(
        mut,
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

impl CleanupVault<'_> {
    pub fn cleanup_vault(ctx: Context<Self>) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        let accounts = &mut *ctx.accounts;
        let reason = accounts.vault.cleanup_reason(&accounts.config, now)?;
        let vault_info = accounts.vault.to_account_info();
        let vault_rent = Rent::get()?.minimum_balance(vault_info.data_len());

        let leg = token_leg(&accounts.vault, &accounts.mint, &accounts.vault_token_account, &accounts.token_program)?;
        let (returned_amount, token_account_rent) = match &leg {
            None => {
                require!(accounts.parent_token_account.is_none(), VaultError::TokenAccountsMismatch);
                let principal = vault_info.lamports().checked_sub(vault_rent).ok_or(VaultError::MathOverflow)?;
                (principal, 0)
            }
            Some(leg) => {
                let to = accounts.parent_token_account.as_ref().ok_or(VaultError::TokenAccountsMismatch)?;
                // The real balance, not the books: tokens sent to the vault directly go home too.
                let balance = reload_amount(leg.vault_token_account)?;
                tokens_from_vault(leg, &accounts.vault, &to.to_account_info(), balance)?;
                let token_account_rent = leg.vault_token_account.to_account_info().lamports();
                close_vault_token_account(leg, &accounts.vault)?;
                (balance, token_account_rent)
            }
        };

        let reclaimed_rent = vault_rent.checked_add(token_account_rent).ok_or(VaultError::MathOverflow)?;
        let reward = accounts.config.cleanup_reward(reclaimed_rent)?;
        let rent_returned = reclaimed_rent.checked_sub(reward).ok_or(VaultError::MathOverflow)?;
        vault_info.sub_lamports(reward)?;
        accounts.caller.add_lamports(reward)?;
        // `close = parent` moves every lamport still in the vault to the parent on exit.

        let vault = &accounts.vault;
        let event = VaultCleaned {
            session_id: vault.session_id,
            parent: vault.parent,
            vault: vault.key(),
            delegate: vault.delegate,
            mint: vault.mint,
            caller: accounts.caller.key(),
            reason,
            returned_amount,
            rent_returned,
            reward,
            totals: SessionTotals::from(&**vault),
            timestamp: now,
        };
        emit(ctx.accounts.event_authority.as_ref(), &event)?;
        Ok(())
    }
}
