//! Moving value into and out of a vault, for SOL and for SPL / Token-2022 sessions.
//! Handlers decide how much may move; these functions only move it.

use anchor_lang::prelude::*;
use anchor_lang::system_program;
use anchor_spl::token_2022::spl_token_2022::extension::transfer_fee::instruction::harvest_withheld_tokens_to_mint;
use anchor_spl::token_2022::spl_token_2022::extension::transfer_fee::TransferFeeAmount;
use anchor_spl::token_2022::spl_token_2022::extension::{BaseStateWithExtensions, StateWithExtensions};
use anchor_spl::token_2022::spl_token_2022::state::Account as TokenAccountState;
use anchor_spl::token_interface::{self, CloseAccount, Mint, TokenAccount, TokenInterface, TransferChecked};

use crate::errors::VaultError;
use crate::mint_policy::require_supported_mint;
use crate::state::Vault;

/// The token accounts of a token session, once checked to belong to it.
pub struct TokenLeg<'a, 'info> {
    pub mint: &'a InterfaceAccount<'info, Mint>,
    pub vault_token_account: &'a InterfaceAccount<'info, TokenAccount>,
    pub token_program: &'a Interface<'info, TokenInterface>,
}

/// Pairs a vault with the optional token accounts an instruction received. A SOL vault must get
/// none and a token vault all of them; the accounts' own constraints tie them to the vault.
pub fn token_leg<'a, 'info>(
    vault: &Vault,
    mint: &'a Option<InterfaceAccount<'info, Mint>>,
    vault_token_account: &'a Option<InterfaceAccount<'info, TokenAccount>>,
    token_program: &'a Option<Interface<'info, TokenInterface>>,
) -> Result<Option<TokenLeg<'a, 'info>>> {
    match (vault.is_native(), mint, vault_token_account, token_program) {
        (true, None, None, None) => Ok(None),
        (false, Some(mint), Some(vault_token_account), Some(token_program)) => {
            require_keys_eq!(mint.key(), vault.mint, VaultError::WrongMint);
            require_keys_eq!(token_program.key(), vault.token_program, VaultError::WrongTokenProgram);
            Ok(Some(TokenLeg { mint, vault_token_account, token_program }))
        }
        _ => err!(VaultError::TokenAccountsMismatch),
    }
}

/// Lamports from a signing wallet into any account, through the system program.
pub fn sol_from_wallet<'info>(
    from: &Signer<'info>,
    to: &AccountInfo<'info>,
    system_program: &Program<'info, System>,
    amount: u64,
) -> Result<()> {
    if amount == 0 {
        return Ok(());
    }
    system_program::transfer(
        CpiContext::new(
            system_program.key(),
            system_program::Transfer { from: from.to_account_info(), to: to.clone() },
        ),
        amount,
    )
}

/// Lamports out of the vault PDA, which this program owns and may debit directly. The vault must
/// stay rent-exempt: only lamports above its minimum balance are funds.
pub fn sol_from_vault<'info>(vault: &AccountInfo<'info>, to: &AccountInfo<'info>, amount: u64) -> Result<()> {
    let rent_floor = Rent::get()?.minimum_balance(vault.data_len());
    let available = vault.lamports().checked_sub(rent_floor).ok_or(VaultError::InsufficientVaultBalance)?;
    require!(amount <= available, VaultError::InsufficientVaultBalance);
    vault.sub_lamports(amount)?;
    to.add_lamports(amount)?;
    Ok(())
}

/// Tokens from the parent's account into the vault. Returns what the vault actually received,
/// which is less than `amount` for a Token-2022 mint with a transfer fee.
///
/// The mint policy is checked here, on every inflow, not only when the session was created: a
/// mint with a close authority can be re-created at the same address with other extensions
/// (see `mint_policy`).
pub fn tokens_into_vault<'info>(
    leg: &TokenLeg<'_, 'info>,
    from: &InterfaceAccount<'info, TokenAccount>,
    authority: &Signer<'info>,
    amount: u64,
) -> Result<u64> {
    require_supported_mint(&leg.mint.to_account_info())?;
    let before = leg.vault_token_account.amount;
    token_interface::transfer_checked(
        CpiContext::new(
            leg.token_program.key(),
            TransferChecked {
                from: from.to_account_info(),
                mint: leg.mint.to_account_info(),
                to: leg.vault_token_account.to_account_info(),
                authority: authority.to_account_info(),
            },
        ),
        amount,
        leg.mint.decimals,
    )?;
    let after = reload_amount(leg.vault_token_account)?;
    after.checked_sub(before).ok_or_else(|| error!(VaultError::MathOverflow))
}

/// Tokens out of the vault's token account, signed by the vault PDA. The mint policy is not
/// checked on the way out: refusing would trap the parent's funds (see `mint_policy`).
pub fn tokens_from_vault<'info>(
    leg: &TokenLeg<'_, 'info>,
    vault: &Account<'info, Vault>,
    to: &AccountInfo<'info>,
    amount: u64,
) -> Result<()> {
    if amount == 0 {
        return Ok(());
    }
    let seeds = vault.signer_seeds();
    token_interface::transfer_checked(
        CpiContext::new(
            leg.token_program.key(),
            TransferChecked {
                from: leg.vault_token_account.to_account_info(),
                mint: leg.mint.to_account_info(),
                to: to.clone(),
                authority: vault.to_account_info(),
            },
        )
        .with_signer(&[&seeds]),
        amount,
        leg.mint.decimals,
    )
}

/// A token account's balance as it is now, after CPIs that changed it.
pub fn reload_amount(account: &InterfaceAccount<'_, TokenAccount>) -> Result<u64> {
    let info = account.to_account_info();
    let data = info.try_borrow_data()?;
    let mut slice: &[u8] = &data;
    let fresh = TokenAccount::try_deserialize(&mut slice)?;
    Ok(fresh.amount)
}

/// Closes the vault's token account, sending its rent lamports to the vault PDA (from where
/// cleanup splits them between the caller's reward and the parent). Token-2022 refuses to close
/// an account still holding withheld transfer fees, so those are first harvested to the mint,
/// which any caller may do.
pub fn close_vault_token_account<'info>(leg: &TokenLeg<'_, 'info>, vault: &Account<'info, Vault>) -> Result<()> {
    if withheld_fees(leg.vault_token_account)? > 0 {
        let ix = harvest_withheld_tokens_to_mint(
            &leg.token_program.key(),
            &leg.mint.key(),
            &[&leg.vault_token_account.key()],
        )?;
        anchor_lang::solana_program::program::invoke(
            &ix,
            &[leg.mint.to_account_info(), leg.vault_token_account.to_account_info()],
        )?;
    }
    let seeds = vault.signer_seeds();
    token_interface::close_account(
        CpiContext::new(
            leg.token_program.key(),
            CloseAccount {
                account: leg.vault_token_account.to_account_info(),
                destination: vault.to_account_info(),
                authority: vault.to_account_info(),
            },
        )
        .with_signer(&[&seeds]),
    )
}

/// Transfer fees withheld in a Token-2022 account (0 for accounts without the extension).
fn withheld_fees(account: &InterfaceAccount<'_, TokenAccount>) -> Result<u64> {
    let info = account.to_account_info();
    if *info.owner != anchor_spl::token_2022::ID {
        return Ok(0);
    }
    let data = info.try_borrow_data()?;
    let state = StateWithExtensions::<TokenAccountState>::unpack(&data)?;
    Ok(state.get_extension::<TransferFeeAmount>().map(|fee| u64::from(fee.withheld_amount)).unwrap_or(0))
}
