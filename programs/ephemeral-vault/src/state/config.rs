use anchor_lang::prelude::*;

use crate::constants::{BPS_DENOMINATOR, MAX_SESSION_DURATION_CEILING};
use crate::errors::VaultError;

/// Deployment-wide settings, one PDA at `["config"]`. Everything a deployment must be able to
/// tune without a redeploy lives here.
///
/// Size: 8 (discriminator) + `Config::INIT_SPACE` (= 32 + 1 + 8 + 8 + 8 + 2 + 8 + 1 + 64 = 132)
/// = 140 bytes.
#[account]
#[derive(InitSpace, Debug)]
pub struct Config {
    /// May update the config and pause the program.
    pub admin: Pubkey,
    /// Emergency stop: no new sessions, deposits, trades or top-ups; anyone may clean any vault
    /// up (reason `emergency`), which returns every balance to its parent.
    pub paused: bool,
    /// Longest session a parent may open, seconds.
    pub max_session_duration: i64,
    /// Shortest session, seconds (keeps sessions from being born expired).
    pub min_session_duration: i64,
    /// Most lamports a delegate may move from a SOL vault to itself for fees over a session.
    pub fee_top_up_cap: u64,
    /// Share of the reclaimed rent paid to whoever cleans a vault up, in basis points.
    pub cleanup_reward_bps: u16,
    /// Absolute ceiling of that reward, lamports.
    pub cleanup_reward_cap: u64,
    pub bump: u8,
    /// Room for later settings without a realloc.
    pub reserved: [u8; 64],
}

/// The tunable part of [`Config`], shared by `initialize_config` and `update_config`.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigParams {
    pub max_session_duration: i64,
    pub min_session_duration: i64,
    pub fee_top_up_cap: u64,
    pub cleanup_reward_bps: u16,
    pub cleanup_reward_cap: u64,
}

impl ConfigParams {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.min_session_duration > 0
                && self.min_session_duration <= self.max_session_duration
                && self.max_session_duration <= MAX_SESSION_DURATION_CEILING,
            VaultError::InvalidConfig
        );
        require!(u64::from(self.cleanup_reward_bps) <= BPS_DENOMINATOR, VaultError::InvalidConfig);
        Ok(())
    }
}

impl Config {
    pub fn apply(&mut self, params: &ConfigParams) -> Result<()> {
        params.validate()?;
        self.max_session_duration = params.max_session_duration;
        self.min_session_duration = params.min_session_duration;
        self.fee_top_up_cap = params.fee_top_up_cap;
        self.cleanup_reward_bps = params.cleanup_reward_bps;
        self.cleanup_reward_cap = params.cleanup_reward_cap;
        Ok(())
    }

    pub fn params(&self) -> ConfigParams {
        ConfigParams {
            max_session_duration: self.max_session_duration,
            min_session_duration: self.min_session_duration,
            fee_top_up_cap: self.fee_top_up_cap,
            cleanup_reward_bps: self.cleanup_reward_bps,
            cleanup_reward_cap: self.cleanup_reward_cap,
        }
    }

    pub fn require_not_paused(&self) -> Result<()> {
        require!(!self.paused, VaultError::Paused);
        Ok(())
    }

    /// The reward for cleaning up a vault whose accounts held `reclaimed_rent` lamports of rent.
    /// Bounded by both the share and the cap, so it can never reach the parent's principal.
    pub fn cleanup_reward(&self, reclaimed_rent: u64) -> Result<u64> {
        let share = u128::from(reclaimed_rent)
            .checked_mul(u128::from(self.cleanup_reward_bps))
            .and_then(|scaled| scaled.checked_div(u128::from(BPS_DENOMINATOR)))
            .ok_or(VaultError::MathOverflow)?;
        let share = u64::try_from(share).map_err(|_| VaultError::MathOverflow)?;
        Ok(share.min(self.cleanup_reward_cap))
    }
}
