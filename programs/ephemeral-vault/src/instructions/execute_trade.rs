use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::errors::VaultError;
use crate::events::{emit, SessionTotals, TradeExecuted};
use crate::state::{Config, Vault, CONFIG_ADDRESS, VAULT_TOKEN_SEED};
use crate::transfers::{sol_from_vault, token_leg, tokens_from_vault};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug)]
pub struct ExecuteTradeArgs {
    /// The frontend's order id; must exceed the session's last one, so a retry cannot repeat it.
    pub trade_id: u64,
    /// What the destination receives for the order.
    pub amount: u64,
    /// The venue's fee, paid to the same destination and counted against the caps.
    pub fee: u64,
}

/// Pays a trade from the vault (the current delegate signs). Refused when paused, expired or
/// revoked, above the per-trade cap, above what remains of the approved amount, or to a
/// destination outside the session's allow-list.
///
/// SOL sessions pay lamports to `destination`. Token sessions pay into
/// `destination_token_account`, whose owner must be `destination`; the allow-list is checked
/// against `destination` in both cases.
#[event_cpi]
#[derive(Accounts)]
pub struct ExecuteTrade<'info> {
    pub delegate: Signer<'info>,

    #[account(address = CONFIG_ADDRESS)]
    pub config: Account<'info, Config>,

    #[account(
        mut,
        has_one = delegate @ VaultError::NotDelegate,
    )]
    pub vault: Account<'info, Vault>,

    /// CHECK: any account but the vault may receive a trade; the handler checks the allow-list
    /// and that it is not the vault. Only lamports are ever added to it.
    #[account(mut)]
    pub destination: UncheckedAccount<'info>,

    #[account(
        mut,
        token::mint = mint,
        token::authority = destination,
        token::token_program = token_program,
    )]
    pub destination_token_account: Option<InterfaceAccount<'info, TokenAccount>>,

    #[account(
        address = vault.mint @ VaultError::WrongMint,
        mint::token_program = token_program,
    )]
    pub mint: Option<InterfaceAccount<'info, Mint>>,

    #[account(
        mut,
        seeds = [VAULT_TOKEN_SEED, vault.key().as_ref()],
        bump = vault.token_account_bump,
        token::mint = mint,
        token::authority = vault,
        token::token_program = token_program,
    )]
    pub vault_token_account: Option<InterfaceAccount<'info, TokenAccount>>,

    #[account(address = vault.token_program @ VaultError::WrongTokenProgram)]
    pub token_program: Option<Interface<'info, TokenInterface>>,
}

impl ExecuteTrade<'_> {
    pub fn execute_trade(ctx: Context<Self>, args: ExecuteTradeArgs) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        let accounts = &mut *ctx.accounts;
        let vault_key = accounts.vault.key();
        let destination = accounts.destination.key();
        let vault = &mut accounts.vault;

        vault.require_delegate_may_act(&accounts.config, now)?;
        require!(args.amount > 0, VaultError::ZeroAmount);
        require_keys_neq!(destination, vault_key, VaultError::InvalidDestination);
        let allowed = vault.allowed_destinations();
        require!(allowed.is_empty() || allowed.contains(&destination), VaultError::DestinationNotAllowed);
        require!(args.trade_id > vault.last_trade_id, VaultError::TradeIdNotIncreasing);
        let total = args.amount.checked_add(args.fee).ok_or(VaultError::MathOverflow)?;
        require!(total <= vault.per_trade_cap, VaultError::PerTradeCapExceeded);
        vault.record_spend(total)?;
        vault.last_trade_id = args.trade_id;
        vault.trade_count = vault.trade_count.checked_add(1).ok_or(VaultError::MathOverflow)?;
        vault.touch(now);

        let leg = token_leg(&accounts.vault, &accounts.mint, &accounts.vault_token_account, &accounts.token_program)?;
        let paid_to = match &leg {
            None => {
                require!(accounts.destination_token_account.is_none(), VaultError::TokenAccountsMismatch);
                let to = accounts.destination.to_account_info();
                sol_from_vault(&accounts.vault.to_account_info(), &to, total)?;
                destination
            }
            Some(leg) => {
                let to = accounts.destination_token_account.as_ref().ok_or(VaultError::TokenAccountsMismatch)?;
                tokens_from_vault(leg, &accounts.vault, &to.to_account_info(), total)?;
                to.key()
            }
        };

        let vault = &accounts.vault;
        vault.invariant()?;
        let event = TradeExecuted {
            session_id: vault.session_id,
            parent: vault.parent,
            vault: vault_key,
            delegate: vault.delegate,
            mint: vault.mint,
            trade_id: args.trade_id,
            destination: paid_to,
            amount: args.amount,
            fee: args.fee,
            remaining_allowance: vault.remaining_allowance()?,
            totals: SessionTotals::from(&**vault),
            timestamp: now,
        };
        emit(ctx.accounts.event_authority.as_ref(), &event)?;
        Ok(())
    }
}
