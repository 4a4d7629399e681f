use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::constants::MAX_DESTINATIONS;
use crate::errors::VaultError;
use crate::events::{emit, Deposited, SessionCreated, SessionTotals};
use crate::mint_policy::is_supported_mint;
use crate::state::{Config, Vault, VaultStatus, CONFIG_ADDRESS, VAULT_SEED, VAULT_TOKEN_SEED};
use crate::transfers::{sol_from_wallet, token_leg, tokens_into_vault};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct CreateSessionArgs {
    /// The session's UUID (16 bytes); with the parent it derives the vault address.
    pub session_id: [u8; 16],
    /// Most the delegate may ever spend from this vault.
    pub approved_amount: u64,
    /// Most one trade (amount plus fee) may spend.
    pub per_trade_cap: u64,
    /// Seconds until the session expires, within the config's bounds.
    pub duration_secs: i64,
    /// Allowed trade destinations; empty allows any.
    pub destinations: Vec<Pubkey>,
    /// Deposited into the vault in the same instruction (0 for none).
    pub initial_deposit: u64,
    /// Lamports paid by the parent straight to the delegate for its fees (0 for none).
    pub fee_top_up: u64,
}

/// Opens a session (the parent signs and pays rent). For a token session pass the mint, the
/// token program and the parent's token account (if depositing); the vault's token account is
/// created here. For a SOL session pass none of them.
#[event_cpi]
#[derive(Accounts)]
#[instruction(args: CreateSessionArgs)]
pub struct CreateSession<'info> {
    #[account(mut)]
    pub parent: Signer<'info>,

    #[account(address = CONFIG_ADDRESS)]
    pub config: Account<'info, Config>,

    #[account(
        init,
        payer = parent,
        space = Vault::SPACE,
        seeds = [VAULT_SEED, parent.key().as_ref(), args.session_id.as_ref()],
        bump,
    )]
    pub vault: Account<'info, Vault>,

    /// The ephemeral wallet approved as delegate. Writable because it may receive the fee top-up.
    #[account(mut)]
    pub delegate: SystemAccount<'info>,

    /// Must pass the mint extension allow-list (`mint_policy`). A type number unknown to this
    /// build's token library fails even earlier, when Anchor sizes the vault's token account from
    /// the mint's extensions (`InvalidAccountData`); the policy refuses it on deposit by number.
    #[account(
        mint::token_program = token_program,
        constraint = is_supported_mint(&mint.to_account_info()) @ VaultError::UnsupportedMintExtension,
    )]
    pub mint: Option<InterfaceAccount<'info, Mint>>,

    #[account(
        init,
        payer = parent,
        seeds = [VAULT_TOKEN_SEED, vault.key().as_ref()],
        bump,
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

    pub token_program: Option<Interface<'info, TokenInterface>>,

    pub system_program: Program<'info, System>,
}

impl CreateSession<'_> {
    pub fn create_session(ctx: Context<Self>, args: CreateSessionArgs) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        let accounts = &mut *ctx.accounts;
        let config = &accounts.config;
        let parent = accounts.parent.key();
        let vault_key = accounts.vault.key();
        let delegate = accounts.delegate.key();

        config.require_not_paused()?;
        require!(
            args.duration_secs >= config.min_session_duration && args.duration_secs <= config.max_session_duration,
            VaultError::InvalidDuration
        );
        require!(args.approved_amount > 0, VaultError::InvalidApprovedAmount);
        require!(args.per_trade_cap > 0 && args.per_trade_cap <= args.approved_amount, VaultError::InvalidPerTradeCap);
        require!(delegate != parent && delegate != vault_key, VaultError::InvalidDelegate);
        require!(args.fee_top_up <= config.fee_top_up_cap, VaultError::FeeTopUpCapExceeded);
        let destinations = validated_destinations(&args.destinations, vault_key)?;

        // Record the session before any value moves, so the leg checks see its mint.
        let vault = &mut accounts.vault;
        vault.parent = parent;
        vault.delegate = delegate;
        vault.session_id = args.session_id;
        vault.approved_amount = args.approved_amount;
        vault.per_trade_cap = args.per_trade_cap;
        vault.total_deposited = 0;
        vault.total_spent = 0;
        vault.total_withdrawn = 0;
        vault.total_fee_top_ups = 0;
        vault.trade_count = 0;
        vault.last_trade_id = 0;
        vault.destinations = destinations;
        vault.destination_count = u8::try_from(args.destinations.len()).map_err(|_| VaultError::TooManyDestinations)?;
        vault.created_at = now;
        vault.expires_at = now.checked_add(args.duration_secs).ok_or(VaultError::MathOverflow)?;
        vault.last_activity = now;
        vault.revoked_at = 0;
        vault.delegate_rotations = 0;
        vault.status = VaultStatus::Active;
        vault.bump = ctx.bumps.vault;
        match (&accounts.mint, &accounts.token_program) {
            (Some(mint), Some(token_program)) => {
                vault.mint = mint.key();
                vault.token_program = token_program.key();
                vault.token_account_bump = ctx.bumps.vault_token_account.ok_or(VaultError::TokenAccountsMismatch)?;
            }
            (None, None) => {
                vault.mint = Pubkey::default();
                vault.token_program = Pubkey::default();
                vault.token_account_bump = 0;
            }
            _ => return err!(VaultError::TokenAccountsMismatch),
        }

        let leg = token_leg(&accounts.vault, &accounts.mint, &accounts.vault_token_account, &accounts.token_program)?;
        let received = if args.initial_deposit == 0 {
            0
        } else {
            match &leg {
                None => {
                    sol_from_wallet(
                        &accounts.parent,
                        &accounts.vault.to_account_info(),
                        &accounts.system_program,
                        args.initial_deposit,
                    )?;
                    args.initial_deposit
                }
                Some(leg) => {
                    let from = accounts.parent_token_account.as_ref().ok_or(VaultError::TokenAccountsMismatch)?;
                    tokens_into_vault(leg, from, &accounts.parent, args.initial_deposit)?
                }
            }
        };
        sol_from_wallet(
            &accounts.parent,
            &accounts.delegate.to_account_info(),
            &accounts.system_program,
            args.fee_top_up,
        )?;

        let vault = &mut accounts.vault;
        vault.record_deposit(received)?;
        vault.invariant()?;

        let created = SessionCreated {
            session_id: vault.session_id,
            parent,
            vault: vault_key,
            delegate,
            mint: vault.mint,
            approved_amount: vault.approved_amount,
            per_trade_cap: vault.per_trade_cap,
            destinations: args.destinations.clone(),
            fee_top_up: args.fee_top_up,
            created_at: vault.created_at,
            expires_at: vault.expires_at,
        };
        let deposited = Deposited {
            session_id: vault.session_id,
            parent,
            vault: vault_key,
            mint: vault.mint,
            amount: args.initial_deposit,
            received,
            totals: SessionTotals::from(&**vault),
            timestamp: now,
        };
        emit(ctx.accounts.event_authority.as_ref(), &created)?;
        if args.initial_deposit > 0 {
            emit(ctx.accounts.event_authority.as_ref(), &deposited)?;
        }
        Ok(())
    }
}

/// Checks the allow-list (bounded, no blanks, no repeats, never the vault) and lays it out in
/// the vault's fixed array.
fn validated_destinations(requested: &[Pubkey], vault: Pubkey) -> Result<[Pubkey; MAX_DESTINATIONS]> {
    require!(requested.len() <= MAX_DESTINATIONS, VaultError::TooManyDestinations);
    let mut destinations = [Pubkey::default(); MAX_DESTINATIONS];
    for (slot, (i, key)) in destinations.iter_mut().zip(requested.iter().enumerate()) {
        require!(*key != Pubkey::default() && *key != vault, VaultError::InvalidDestination);
        require!(!requested[..i].contains(key), VaultError::DuplicateDestination);
        *slot = *key;
    }
    Ok(destinations)
}
