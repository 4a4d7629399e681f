use anchor_lang::prelude::*;

use crate::errors::VaultError;
use crate::events::{emit, ConfigInitialized};
use crate::program::EphemeralVault;
use crate::state::{Config, ConfigParams, CONFIG_SEED};

/// Creates the deployment's config. Only the program's upgrade authority may call it, so nobody
/// can front-run a fresh deployment and make themselves admin. It can run once: the config PDA
/// is `init`, so a second call fails (re-initialisation).
#[event_cpi]
#[derive(Accounts)]
pub struct InitializeConfig<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,

    #[account(
        init,
        payer = admin,
        space = 8 + Config::INIT_SPACE,
        seeds = [CONFIG_SEED],
        bump,
    )]
    pub config: Account<'info, Config>,

    #[account(constraint = this_program.programdata_address()? == Some(program_data.key()) @ VaultError::NotUpgradeAuthority)]
    pub this_program: Program<'info, EphemeralVault>,

    #[account(constraint = program_data.upgrade_authority_address == Some(admin.key()) @ VaultError::NotUpgradeAuthority)]
    pub program_data: Account<'info, ProgramData>,

    pub system_program: Program<'info, System>,
}

impl InitializeConfig<'_> {
    pub fn initialize_config(ctx: Context<Self>, params: ConfigParams) -> Result<()> {
        let config = &mut ctx.accounts.config;
        config.admin = ctx.accounts.admin.key();
        config.paused = false;
        config.bump = ctx.bumps.config;
        config.reserved = [0; 64];
        config.apply(&params)?;

        emit(
            ctx.accounts.event_authority.as_ref(),
            &ConfigInitialized { admin: config.admin, params, timestamp: Clock::get()?.unix_timestamp },
        )?;
        Ok(())
    }
}
