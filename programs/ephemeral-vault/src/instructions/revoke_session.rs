use anchor_lang::prelude::*;

use crate::errors::VaultError;
use crate::events::{emit, SessionRevoked, SessionTotals};
use crate::state::{Vault, VaultStatus};

/// Ends the session now (parent only, allowed even while paused or after expiry). The delegate
/// loses every power at once; the vault can then be cleaned up by anyone.
#[event_cpi]
#[derive(Accounts)]
pub struct RevokeSession<'info> {
    pub parent: Signer<'info>,

    #[account(
        mut,
        has_one = parent @ VaultError::Unauthorized,
    )]
    pub vault: Account<'info, Vault>,
}

impl RevokeSession<'_> {
    pub fn revoke_session(ctx: Context<Self>) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        let vault_key = ctx.accounts.vault.key();
        let vault = &mut ctx.accounts.vault;
        require!(vault.status == VaultStatus::Active, VaultError::SessionRevoked);
        vault.status = VaultStatus::Revoked;
        vault.revoked_at = now.max(vault.created_at);
        vault.touch(now);
        vault.invariant()?;

        let event = SessionRevoked {
            session_id: vault.session_id,
            parent: vault.parent,
            vault: vault_key,
            delegate: vault.delegate,
            totals: SessionTotals::from(&**vault),
            revoked_at: vault.revoked_at,
        };
        emit(ctx.accounts.event_authority.as_ref(), &event)?;
        Ok(())
    }
}
