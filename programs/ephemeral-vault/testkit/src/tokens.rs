//! Mints and token accounts for tests, made with the real SPL Token and Token-2022 programs that
//! litesvm loads.

use anchor_lang::prelude::Pubkey;
use anchor_spl::token_2022::spl_token_2022;
use spl_token_2022::extension::transfer_fee::instruction::initialize_transfer_fee_config;
use spl_token_2022::extension::transfer_fee::TransferFeeConfig;
use spl_token_2022::extension::{BaseStateWithExtensions, ExtensionType, StateWithExtensions};
use spl_token_2022::state::{Account as TokenAccountState, Mint as MintState};
use anchor_lang::solana_program::system_instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::world::VaultWorld;

/// Which token program, and which Token-2022 extensions, a test mint uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MintKind {
    Spl,
    Token2022,
    /// Token-2022 with a transfer fee of `bps`, at most `max_fee` per transfer.
    Token2022TransferFee { bps: u16, max_fee: u64 },
    /// Token-2022 with a permanent delegate (a vault must refuse it).
    Token2022PermanentDelegate,
}

impl MintKind {
    pub fn program(&self) -> Pubkey {
        match self {
            MintKind::Spl => anchor_spl::token::ID,
            _ => anchor_spl::token_2022::ID,
        }
    }

    fn extensions(&self) -> Vec<ExtensionType> {
        match self {
            MintKind::Spl | MintKind::Token2022 => vec![],
            MintKind::Token2022TransferFee { .. } => vec![ExtensionType::TransferFeeConfig],
            MintKind::Token2022PermanentDelegate => vec![ExtensionType::PermanentDelegate],
        }
    }
}

/// A mint whose authority is `authority`.
#[derive(Clone, Copy, Debug)]
pub struct TestMint {
    pub address: Pubkey,
    pub kind: MintKind,
    pub decimals: u8,
}

impl TestMint {
    pub fn program(&self) -> Pubkey {
        self.kind.program()
    }

    pub fn asset(&self) -> ephemeral_vault::sdk::Asset {
        ephemeral_vault::sdk::Asset::Token {
            mint: self.address,
            token_program: self.program(),
        }
    }
}

impl VaultWorld {
    pub fn create_mint(&mut self, kind: MintKind, decimals: u8) -> TestMint {
        let payer = self.admin.insecure_clone();
        let mint = Keypair::new();
        let program = kind.program();
        let extensions = kind.extensions();
        let space = if program == anchor_spl::token::ID {
            82
        } else {
            ExtensionType::try_calculate_account_len::<MintState>(&extensions).expect("mint size")
        };
        let mut ixs = vec![system_instruction::create_account(
            &payer.pubkey(),
            &mint.pubkey(),
            self.rent(space),
            space as u64,
            &program,
        )];
        match kind {
            MintKind::Token2022TransferFee { bps, max_fee } => {
                ixs.push(
                    initialize_transfer_fee_config(
                        &program,
                        &mint.pubkey(),
                        Some(&payer.pubkey()),
                        Some(&payer.pubkey()),
                        bps,
                        max_fee,
                    )
                    .expect("transfer fee ix"),
                );
            }
            MintKind::Token2022PermanentDelegate => {
                ixs.push(
                    spl_token_2022::instruction::initialize_permanent_delegate(
                        &program,
                        &mint.pubkey(),
                        &payer.pubkey(),
                    )
                    .expect("permanent delegate ix"),
                );
            }
            MintKind::Spl | MintKind::Token2022 => {}
        }
        ixs.push(
            spl_token_2022::instruction::initialize_mint2(
                &program,
                &mint.pubkey(),
                &payer.pubkey(),
                None,
                decimals,
            )
            .expect("initialize_mint2"),
        );
        self.send(&ixs, &payer, &[&mint]).expect("create mint");
        TestMint {
            address: mint.pubkey(),
            kind,
            decimals,
        }
    }

    /// A token account for `owner` (a fresh keypair account, sized for the mint's extensions).
    pub fn create_token_account(&mut self, mint: &TestMint, owner: &Pubkey) -> Pubkey {
        let payer = self.admin.insecure_clone();
        let account = Keypair::new();
        let space = self.token_account_len(mint);
        let ixs = [
            system_instruction::create_account(
                &payer.pubkey(),
                &account.pubkey(),
                self.rent(space),
                space as u64,
                &mint.program(),
            ),
            spl_token_2022::instruction::initialize_account3(
                &mint.program(),
                &account.pubkey(),
                &mint.address,
                owner,
            )
            .expect("initialize_account3"),
        ];
        self.send(&ixs, &payer, &[&account]).expect("create token account");
        account.pubkey()
    }

    fn token_account_len(&self, mint: &TestMint) -> usize {
        if mint.program() == anchor_spl::token::ID {
            return 165;
        }
        let data = self.account(&mint.address).expect("mint").data;
        let state = StateWithExtensions::<MintState>::unpack(&data).expect("mint state");
        let required = ExtensionType::get_required_init_account_extensions(
            &state.get_extension_types().expect("extensions"),
        );
        ExtensionType::try_calculate_account_len::<TokenAccountState>(&required).expect("size")
    }

    pub fn mint_to(&mut self, mint: &TestMint, account: &Pubkey, amount: u64) {
        let authority = self.admin.insecure_clone();
        let ix = spl_token_2022::instruction::mint_to(
            &mint.program(),
            &mint.address,
            account,
            &authority.pubkey(),
            &[],
            amount,
        )
        .expect("mint_to");
        self.send(&[ix], &authority, &[]).expect("mint_to");
    }

    /// A token account's balance; 0 when it does not exist.
    pub fn token_balance(&self, account: &Pubkey) -> u64 {
        self.account(account)
            .and_then(|a| {
                StateWithExtensions::<TokenAccountState>::unpack(&a.data)
                    .ok()
                    .map(|s| s.base.amount)
            })
            .unwrap_or(0)
    }

    /// Total token supply of a mint.
    pub fn supply(&self, mint: &TestMint) -> u64 {
        let data = self.account(&mint.address).expect("mint").data;
        StateWithExtensions::<MintState>::unpack(&data)
            .expect("mint")
            .base
            .supply
    }

    /// Transfer fees withheld on a mint (harvested there at cleanup) and in a token account.
    pub fn withheld_in_mint(&self, mint: &TestMint) -> u64 {
        let data = self.account(&mint.address).expect("mint").data;
        let state = StateWithExtensions::<MintState>::unpack(&data).expect("mint");
        state
            .get_extension::<TransferFeeConfig>()
            .map(|c| u64::from(c.withheld_amount))
            .unwrap_or(0)
    }

    pub fn withheld_in_account(&self, account: &Pubkey) -> u64 {
        use spl_token_2022::extension::transfer_fee::TransferFeeAmount;
        self.account(account)
            .and_then(|a| {
                let state = StateWithExtensions::<TokenAccountState>::unpack(&a.data).ok()?;
                state
                    .get_extension::<TransferFeeAmount>()
                    .ok()
                    .map(|f| u64::from(f.withheld_amount))
            })
            .unwrap_or(0)
    }
}
