use anchor_lang::prelude::*;

use crate::errors::VaultError;
use crate::events::{emit, FeesToppedUp, SessionTotals};
use crate::state::{Config, Vault, CONFIG_ADDRESS};
use crate::transfers::sol_from_vault;

/// Moves lamports from a SOL vault to the delegate so it can keep paying transaction fees
/// (the delegate signs). Counted against the approved amount and bounded per session by the
/// config's `fee_top_up_cap`. Token sessions fund the delegate at creation instead: their cap is
/// in token units, so lamports cannot be counted against it.
#[event_cpi]
#[derive(Accounts)]
pub struct TopUpFees<'info> {
    #[account(mut)]
    pub delegate: Signer<'info>,

    #[account(address = CONFIG_ADDRESS)]
    pub config: Account<'info, Config>,

    #[account(
        mut,
        has_one = delegate @ VaultError::NotDelegate,
    )]
    pub vault: Account<'info, Vault>,
}

impl TopUpFees<'_> {
    pub fn top_up_fees(ctx: Context<Self>, amount: u64) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        let accounts = &mut *ctx.accounts;
        let vault_key = accounts.vault.key();
        let vault = &mut accounts.vault;

        vault.require_delegate_may_act(&accounts.config, now)?;
        require!(vault.is_native(), VaultError::TopUpRequiresSolVault);
        require!(amount > 0, VaultError::ZeroAmount);
        let topped_up = vault.total_fee_top_ups.checked_add(amount).ok_or(VaultError::MathOverflow)?;
        require!(topped_up <= accounts.config.fee_top_up_cap, VaultError::FeeTopUpCapExceeded);
        vault.record_spend(amount)?;
        vault.total_fee_top_ups = topped_up;
        vault.touch(now);

        sol_from_vault(&accounts.vault.to_account_info(), &accounts.delegate.to_account_info(), amount)?;

        let vault = &accounts.vault;
        vault.invariant()?;
        let event = FeesToppedUp {
            session_id: vault.session_id,
            parent: vault.parent,
            vault: vault_key,
            delegate: vault.delegate,
            amount,
            remaining_allowance: vault.remaining_allowance()?,
            totals: SessionTotals::from(&**vault),
            timestamp: now,
        };
        emit(ctx.accounts.event_authority.as_ref(), &event)?;
        Ok(())
    }
}
