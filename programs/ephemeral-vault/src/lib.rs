//! Ephemeral Vault: a parent wallet funds a per-session vault PDA (SOL or an SPL / Token-2022
//! token), approves a spending cap, an expiry and an ephemeral "session key" as delegate. The
//! delegate trades within the cap without the parent signing each order; the parent can
//! withdraw, rotate or revoke at any time; after expiry, revocation or an emergency pause anyone
//! may clean the vault up, returning everything to the parent for a small reward taken from the
//! reclaimed rent.
//!
//! This file only dispatches; each instruction lives in `instructions/`, one file each.

// The SBF route without platform-tools needs compiler builtins (memcpy & co) from this crate.
#[cfg(target_os = "solana")]
use solana_compiler_builtins as _;

use anchor_lang::prelude::*;

pub mod constants;
pub mod errors;
pub mod events;
pub mod instructions;
pub mod mint_policy;
pub mod state;
pub mod transfers;

#[cfg(not(target_os = "solana"))]
pub mod sdk;

use instructions::*;
use state::ConfigParams;

declare_id!("LcbuhnHozNqGewPGm62N4kqTirH9Enzkn6fMFJBLiwC");

#[program]
pub mod ephemeral_vault {
    use super::*;

    pub fn initialize_config(ctx: Context<InitializeConfig>, params: ConfigParams) -> Result<()> {
        InitializeConfig::initialize_config(ctx, params)
    }

    pub fn update_config(ctx: Context<UpdateConfig>, args: UpdateConfigArgs) -> Result<()> {
        UpdateConfig::update_config(ctx, args)
    }

    pub fn set_paused(ctx: Context<SetPaused>, paused: bool) -> Result<()> {
        SetPaused::set_paused(ctx, paused)
    }

    pub fn create_session(ctx: Context<CreateSession>, args: CreateSessionArgs) -> Result<()> {
        CreateSession::create_session(ctx, args)
    }

    pub fn approve_delegate(ctx: Context<ApproveDelegate>, new_delegate: Pubkey) -> Result<()> {
        ApproveDelegate::approve_delegate(ctx, new_delegate)
    }

    pub fn deposit(ctx: Context<Deposit>, amount: u64) -> Result<()> {
        Deposit::deposit(ctx, amount)
    }

    pub fn withdraw(ctx: Context<Withdraw>, amount: u64) -> Result<()> {
        Withdraw::withdraw(ctx, amount)
    }

    pub fn execute_trade(ctx: Context<ExecuteTrade>, args: ExecuteTradeArgs) -> Result<()> {
        ExecuteTrade::execute_trade(ctx, args)
    }

    pub fn top_up_fees(ctx: Context<TopUpFees>, amount: u64) -> Result<()> {
        TopUpFees::top_up_fees(ctx, amount)
    }

    pub fn revoke_session(ctx: Context<RevokeSession>) -> Result<()> {
        RevokeSession::revoke_session(ctx)
    }

    pub fn cleanup_vault(ctx: Context<CleanupVault>) -> Result<()> {
        CleanupVault::cleanup_vault(ctx)
    }
}
