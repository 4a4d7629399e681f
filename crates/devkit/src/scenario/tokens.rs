//! The scenario's token: a Token-2022 mint with a transfer fee, the kind of mint whose amounts
//! differ between what is sent and what arrives, and the instructions that make and fill its
//! accounts.

use anchor_lang::prelude::{Pubkey, Rent};
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::solana_program::system_instruction;
use anchor_spl::token_2022::spl_token_2022;
use spl_token_2022::extension::transfer_fee::instruction::initialize_transfer_fee_config;
use spl_token_2022::extension::ExtensionType;
use spl_token_2022::state::Mint;

use vault_chain::token_accounts::{associated_token_address, create_associated_token_account_idempotent};

pub const TOKEN_2022: Pubkey = anchor_spl::token_2022::ID;

/// A transfer-fee mint: `fee_bps` of every transfer, at most `max_fee`, withheld for the
/// authority.
#[derive(Clone, Copy, Debug)]
pub struct FeeMint {
    pub address: Pubkey,
    pub decimals: u8,
    pub fee_bps: u16,
    pub max_fee: u64,
}

impl FeeMint {
    pub fn asset(&self) -> ephemeral_vault::sdk::Asset {
        ephemeral_vault::sdk::Asset::Token { mint: self.address, token_program: TOKEN_2022 }
    }

    /// Creates the mint account and initialises its transfer fee and then the mint itself
    /// (extensions must be set up before InitializeMint2). `authority` holds every role.
    pub fn create(&self, payer: &Pubkey, authority: &Pubkey) -> anyhow::Result<Vec<Instruction>> {
        let space = ExtensionType::try_calculate_account_len::<Mint>(&[ExtensionType::TransferFeeConfig])?;
        Ok(vec![
            system_instruction::create_account(
                payer,
                &self.address,
                Rent::default().minimum_balance(space),
                space as u64,
                &TOKEN_2022,
            ),
            initialize_transfer_fee_config(
                &TOKEN_2022,
                &self.address,
                Some(authority),
                Some(authority),
                self.fee_bps,
                self.max_fee,
            )?,
            spl_token_2022::instruction::initialize_mint2(&TOKEN_2022, &self.address, authority, None, self.decimals)?,
        ])
    }

    /// `owner`'s associated token account, and the instruction that creates it if missing.
    pub fn associated_account(&self, payer: &Pubkey, owner: &Pubkey) -> (Pubkey, Instruction) {
        (
            associated_token_address(owner, &self.address, &TOKEN_2022),
            create_associated_token_account_idempotent(payer, owner, &self.address, &TOKEN_2022),
        )
    }

    pub fn mint_to(&self, authority: &Pubkey, account: &Pubkey, amount: u64) -> anyhow::Result<Instruction> {
        Ok(spl_token_2022::instruction::mint_to(&TOKEN_2022, &self.address, account, authority, &[], amount)?)
    }
}
