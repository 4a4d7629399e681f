use anchor_lang::prelude::*;

use crate::errors::VaultError;
use crate::events::{emit, DelegateApproved};
use crate::state::Vault;

/// Approves a new ephemeral wallet as the session's delegate (parent only). The previous delegate
/// loses every power in the same instruction: delegate checks compare against the stored key.
#[event_cpi]
#[derive(Accounts)]
pub struct ApproveDelegate<'info> {
    pub parent: Signer<'info>,

    #[account(
        mut,
        has_one = parent @ VaultError::Unauthorized,
    )]
    pub vault: Account<'info, Vault>,
}

impl ApproveDelegate<'_> {
    pub fn approve_delegate(ctx: Context<Self>, new_delegate: Pubkey) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        let vault_key = ctx.accounts.vault.key();
        let vault = &mut ctx.accounts.vault;
        vault.require_parent_may_change(now)?;
        require!(
            new_delegate != vault.parent && new_delegate != vault_key && new_delegate != Pubkey::default(),
            VaultError::InvalidDelegate
        );
        require_keys_neq!(new_delegate, vault.delegate, VaultError::SameDelegate);

        let previous_delegate = vault.delegate;
        vault.delegate = new_delegate;
        vault.delegate_rotations = vault.delegate_rotations.checked_add(1).ok_or(VaultError::MathOverflow)?;
        vault.touch(now);
        vault.invariant()?;

        let event = DelegateApproved {
            session_id: vault.session_id,
            parent: vault.parent,
            vault: vault_key,
            previous_delegate,
            delegate: new_delegate,
            rotations: vault.delegate_rotations,
            timestamp: now,
        };
        emit(ctx.accounts.event_authority.as_ref(), &event)?;
        Ok(())
    }
}
