//! Ephemeral Vault: a parent wallet funds a per-session vault PDA (SOL or an SPL / Token-2022
//! token), approves a spending cap, an expiry and an ephemeral "session key" as delegate. The
//! delegate trades within the cap without the parent signing each order; the parent can
//! withdraw, rotate or revoke at any time; after expiry, revocation or an emergency pause anyone
//! may clean the vault up, returning everything to the parent for a small reward taken from the
//! reclaimed rent.
//!
//! This file only dispatches; each instruction lives in `instructions/`, one file each.

// On chain a panic only says "SBF program panicked" (docs/build.md): every failure must be an
// Anchor error, and every amount is computed with checked arithmetic.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::arithmetic_side_effects)]
// `missing_docs` stays off: Anchor's macros generate public items without docs (`ID` from
// `declare_id!`, a `*Bumps` struct beside every `#[derive(Accounts)]`, the argument structs of
// `#[program]`'s `instruction` module), which `-D warnings` would fail on and which no attribute
// in this crate can reach (`#[allow]` is refused on macro calls and does not reach the siblings
// a derive or attribute macro generates).

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

// Contact data embedded in the deployed program (security.txt for Solana programs). The URL and
// contact below are placeholders: deployers replace them with their own before deploying.
#[cfg(not(feature = "no-entrypoint"))]
solana_security_txt::security_txt! {
    name: "Ephemeral Vault",
    project_url: "https://example.invalid/ephemeral-vault",
    contacts: "email:security@example.invalid",
    policy: "Report vulnerabilities privately to the contact above and allow time for a fix before disclosing them.",
    preferred_languages: "en"
}

#[program]
pub mod ephemeral_vault {
    use super::*;

    /// Creates the deployment's config PDA. Only the program's upgrade authority may call it, and
    /// only once, so nobody can front-run a fresh deployment and make themselves admin.
    pub fn initialize_config(ctx: Context<InitializeConfig>, params: ConfigParams) -> Result<()> {
        InitializeConfig::initialize_config(ctx, params)
    }

    /// Changes the tunable settings and optionally hands the admin role to another key (admin
    /// only). Existing sessions keep their expiry and caps.
    pub fn update_config(ctx: Context<UpdateConfig>, args: UpdateConfigArgs) -> Result<()> {
        UpdateConfig::update_config(ctx, args)
    }

    /// Emergency stop or restart (admin only). While paused no session opens, nothing is
    /// deposited, traded or topped up, and anyone may clean up any vault for its parent.
    pub fn set_paused(ctx: Context<SetPaused>, paused: bool) -> Result<()> {
        SetPaused::set_paused(ctx, paused)
    }

    /// Opens a session (the parent signs and pays rent): creates the vault PDA (and, for a token
    /// session, its token account), approves the delegate with its caps and expiry, and
    /// optionally deposits and pays the delegate a fee top-up. Token-2022 mints must pass the
    /// mint extension allow-list.
    pub fn create_session(ctx: Context<CreateSession>, args: CreateSessionArgs) -> Result<()> {
        CreateSession::create_session(ctx, args)
    }

    /// Rotates the session key (parent only, live sessions): the previous delegate loses every
    /// power in the same instruction.
    pub fn approve_delegate(ctx: Context<ApproveDelegate>, new_delegate: Pubkey) -> Result<()> {
        ApproveDelegate::approve_delegate(ctx, new_delegate)
    }

    /// Adds funds to a live session (parent only; not while paused). The vault is credited with
    /// what actually arrived, and the mint must still pass the extension allow-list.
    pub fn deposit(ctx: Context<Deposit>, amount: u64) -> Result<()> {
        Deposit::deposit(ctx, amount)
    }

    /// Returns funds to the parent (parent only), at any time - while paused, after expiry or
    /// after revocation - because the funds are the parent's.
    pub fn withdraw(ctx: Context<Withdraw>, amount: u64) -> Result<()> {
        Withdraw::withdraw(ctx, amount)
    }

    /// Pays a trade from the vault (the current delegate signs) within the per-trade cap, the
    /// approved amount and the allow-list; trade ids must increase so a retry cannot repeat.
    pub fn execute_trade(ctx: Context<ExecuteTrade>, args: ExecuteTradeArgs) -> Result<()> {
        ExecuteTrade::execute_trade(ctx, args)
    }

    /// Moves lamports from a SOL vault to the delegate for its transaction fees (the delegate
    /// signs), counted against the approved amount and the config's fee top-up cap.
    pub fn top_up_fees(ctx: Context<TopUpFees>, amount: u64) -> Result<()> {
        TopUpFees::top_up_fees(ctx, amount)
    }

    /// Ends the session now (parent only, also while paused or after expiry); the vault can then
    /// be cleaned up by anyone.
    pub fn revoke_session(ctx: Context<RevokeSession>) -> Result<()> {
        RevokeSession::revoke_session(ctx)
    }

    /// Closes a vault after expiry, after revocation or while paused (anyone may call): every
    /// token and lamport goes to the parent except the caller's reward, which is taken from the
    /// reclaimed rent and bounded by the config.
    pub fn cleanup_vault(ctx: Context<CleanupVault>) -> Result<()> {
        CleanupVault::cleanup_vault(ctx)
    }
}
