use anchor_lang::prelude::*;

use crate::errors::VaultError;
use crate::events::{emit, ConfigUpdated};
use crate::state::{Config, ConfigParams, CONFIG_ADDRESS};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct UpdateConfigArgs {
    pub params: ConfigParams,
    /// Hands the admin role to another key; `None` keeps the current admin.
    pub new_admin: Option<Pubkey>,
}

/// Changes the tunable settings (admin only). Existing sessions keep their own expiry and caps;
/// new limits apply to what happens from now on.
#[event_cpi]
#[derive(Accounts)]
pub struct UpdateConfig<'info> {
    pub admin: Signer<'info>,

    #[account(
        mut,
        address = CONFIG_ADDRESS,
        has_one = admin @ VaultError::Unauthorized,
    )]
    pub config: Account<'info, Config>,
}

impl UpdateConfig<'_> {
    pub fn update_config(ctx: Context<Self>, args: UpdateConfigArgs) -> Result<()> {
        let config = &mut ctx.accounts.config;
        config.apply(&args.params)?;
        if let Some(new_admin) = args.new_admin {
            require_keys_neq!(new_admin, Pubkey::default(), VaultError::InvalidConfig);
            config.admin = new_admin;
        }

        emit(
            ctx.accounts.event_authority.as_ref(),
            &ConfigUpdated {
                admin: ctx.accounts.admin.key(),
                new_admin: config.admin,
                params: args.params,
                timestamp: Clock::get()?.unix_timestamp,
            },
        )?;
        Ok(())
    }
}
