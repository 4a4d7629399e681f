use anchor_lang::prelude::*;

use crate::errors::VaultError;
use crate::events::{emit, PauseSet};
use crate::state::{Config, CONFIG_ADDRESS};

/// Emergency stop (admin only). While paused no session opens, nothing is deposited, traded or
/// topped up, and anyone may clean up any vault, returning its funds to the parent.
#[event_cpi]
#[derive(Accounts)]
pub struct SetPaused<'info> {
    pub admin: Signer<'info>,

    #[account(
        mut,
        address = CONFIG_ADDRESS,
        has_one = admin @ VaultError::Unauthorized,
    )]
    pub config: Account<'info, Config>,
}

impl SetPaused<'_> {
    pub fn set_paused(ctx: Context<Self>, paused: bool) -> Result<()> {
        ctx.accounts.config.paused = paused;
        emit(
            ctx.accounts.event_authority.as_ref(),
            &PauseSet { admin: ctx.accounts.admin.key(), paused, timestamp: Clock::get()?.unix_timestamp },
        )?;
        Ok(())
    }
}
