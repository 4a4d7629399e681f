//! Mints and token accounts for tests, made with the real SPL Token and Token-2022 programs that
//! litesvm loads.

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::{AccountMeta, Instruction};
use anchor_lang::solana_program::system_instruction;
use anchor_spl::token_2022::spl_token_2022;
use solana_keypair::Keypair;
use solana_signer::Signer;
use spl_token_2022::extension::confidential_transfer::DecryptableBalance as PodAeCiphertext;
use spl_token_2022::extension::transfer_fee::instruction::initialize_transfer_fee_config;
use spl_token_2022::extension::transfer_fee::TransferFeeConfig;
use spl_token_2022::extension::{
    confidential_mint_burn, confidential_transfer, confidential_transfer_fee, default_account_state,
    group_member_pointer, group_pointer, interest_bearing_mint, metadata_pointer, pausable, scaled_ui_amount,
    transfer_hook,
};
use spl_token_2022::extension::{BaseStateWithExtensions, ExtensionType, StateWithExtensions};
use spl_token_2022::solana_zk_sdk::encryption::pod::elgamal::PodElGamalPubkey;
use spl_token_2022::state::{Account as TokenAccountState, AccountState, Mint as MintState};

use crate::world::VaultWorld;

/// Which token program, and which Token-2022 extensions, a test mint uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MintKind {
    Spl,
    Token2022,
    /// Token-2022 with a transfer fee of `bps`, at most `max_fee` per transfer.
    Token2022TransferFee {
        bps: u16,
        max_fee: u64,
    },
    /// Token-2022 with a permanent delegate (a vault must refuse it).
    Token2022PermanentDelegate,
    /// Token-2022 with one more extension (and whatever Token-2022 requires with it).
    Token2022With(MintExtension),
}

/// Token-2022 mint extensions the tests create, the vault's policy aside (`mint_policy.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MintExtension {
    /// The mint authority may close the mint at zero supply.
    CloseAuthority,
    InterestBearing,
    ScaledUiAmount,
    /// A metadata pointer to the mint itself, and the metadata in it.
    Metadata,
    /// A group pointer to the mint itself, and the group (collection) in it.
    Group,
    /// A group-member pointer to the mint itself, and its membership of a fresh group mint.
    GroupMember,
    /// Pausable, with the mint authority as pause authority.
    Pausable,
    /// A transfer hook naming some program.
    TransferHook,
    NonTransferable,
    /// DefaultAccountState: new accounts are born frozen (the mint gets a freeze authority).
    DefaultFrozen,
    /// DefaultAccountState: new accounts are born initialized (the mint gets a freeze authority).
    DefaultInitialized,
    /// Confidential transfers.
    ConfidentialTransfer,
    /// Confidential transfer fees, with the transfer fee and confidential transfers they need.
    ConfidentialTransferFee,
    /// Confidential mint and burn, with the confidential transfers it needs.
    ConfidentialMintBurn,
    /// PermissionedBurn (type 28): added to Token-2022 after the token library this program is
    /// built with, so the program does not know it. Created through raw instruction bytes.
    PermissionedBurn,
}

/// Type number of Token-2022's PermissionedBurn extension (not in this build's library).
pub const PERMISSIONED_BURN_TYPE: u16 = 28;

impl MintKind {
    pub fn program(&self) -> Pubkey {
        match self {
            MintKind::Spl => anchor_spl::token::ID,
            _ => anchor_spl::token_2022::ID,
        }
    }

    /// The fixed-size extensions the mint account is created with; variable-length ones
    /// (metadata, group, member) grow the account when they are initialised.
    fn extensions(&self) -> Vec<ExtensionType> {
        use MintExtension as E;
        match self {
            MintKind::Spl | MintKind::Token2022 => vec![],
            MintKind::Token2022TransferFee { .. } => vec![ExtensionType::TransferFeeConfig],
            MintKind::Token2022PermanentDelegate => vec![ExtensionType::PermanentDelegate],
            MintKind::Token2022With(extension) => match extension {
                E::CloseAuthority => vec![ExtensionType::MintCloseAuthority],
                E::InterestBearing => vec![ExtensionType::InterestBearingConfig],
                E::ScaledUiAmount => vec![ExtensionType::ScaledUiAmount],
                E::Metadata => vec![ExtensionType::MetadataPointer],
                E::Group => vec![ExtensionType::GroupPointer],
                E::GroupMember => vec![ExtensionType::GroupMemberPointer],
                E::Pausable => vec![ExtensionType::Pausable],
                E::TransferHook => vec![ExtensionType::TransferHook],
                E::NonTransferable => vec![ExtensionType::NonTransferable],
                E::DefaultFrozen | E::DefaultInitialized => {
                    vec![ExtensionType::DefaultAccountState]
                }
                E::ConfidentialTransfer => vec![ExtensionType::ConfidentialTransferMint],
                E::ConfidentialTransferFee => vec![
                    ExtensionType::TransferFeeConfig,
                    ExtensionType::ConfidentialTransferMint,
                    ExtensionType::ConfidentialTransferFeeConfig,
                ],
                E::ConfidentialMintBurn => {
                    vec![ExtensionType::ConfidentialTransferMint, ExtensionType::ConfidentialMintBurn]
                }
                E::PermissionedBurn => vec![],
            },
        }
    }

    fn has_freeze_authority(&self) -> bool {
        matches!(self, MintKind::Token2022With(MintExtension::DefaultFrozen | MintExtension::DefaultInitialized))
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
        ephemeral_vault::sdk::Asset::Token { mint: self.address, token_program: self.program() }
    }
}

/// Room left in a mint account for its variable-length extensions (metadata, group, member).
const VARIABLE_EXTENSION_ROOM: usize = 512;

impl VaultWorld {
    /// A mint at a fresh address, with the admin as mint (and close, pause, fee...) authority.
    pub fn create_mint(&mut self, kind: MintKind, decimals: u8) -> TestMint {
        self.create_mint_at(&Keypair::new(), kind, decimals)
    }

    /// A mint at `mint`'s address; with [`VaultWorld::close_mint`] this re-creates a mint at an
    /// address that held another one.
    pub fn create_mint_at(&mut self, mint: &Keypair, kind: MintKind, decimals: u8) -> TestMint {
        use MintExtension as E;
        let payer = self.admin.insecure_clone();
        let authority = payer.pubkey();
        let address = mint.pubkey();
        let program = kind.program();
        let mut space = if program == anchor_spl::token::ID {
            82
        } else {
            ExtensionType::try_calculate_account_len::<MintState>(&kind.extensions()).expect("mint size")
        };
        if kind == MintKind::Token2022With(E::PermissionedBurn) {
            // Base mint and account type, then one entry: type, length, a 32-byte authority.
            space = 165 + 1 + 4 + 32;
        }
        let variable = matches!(kind, MintKind::Token2022With(E::Metadata | E::Group | E::GroupMember));
        let lamports = self.rent(space + if variable { VARIABLE_EXTENSION_ROOM } else { 0 });
        let group = match kind {
            MintKind::Token2022With(E::GroupMember) => {
                Some(self.create_mint(MintKind::Token2022With(E::Group), 0).address)
            }
            _ => None,
        };
        let mut ixs =
            vec![system_instruction::create_account(&payer.pubkey(), &address, lamports, space as u64, &program)];
        let confidential_transfer = || {
            confidential_transfer::instruction::initialize_mint(&program, &address, Some(authority), false, None)
                .expect("confidential transfer ix")
        };
        let transfer_fee = |bps, max_fee| {
            initialize_transfer_fee_config(&program, &address, Some(&authority), Some(&authority), bps, max_fee)
                .expect("transfer fee ix")
        };
        match kind {
            MintKind::Spl | MintKind::Token2022 => {}
            MintKind::Token2022TransferFee { bps, max_fee } => ixs.push(transfer_fee(bps, max_fee)),
            MintKind::Token2022PermanentDelegate => ixs.push(
                spl_token_2022::instruction::initialize_permanent_delegate(&program, &address, &authority)
                    .expect("permanent delegate ix"),
            ),
            MintKind::Token2022With(extension) => match extension {
                E::CloseAuthority => ixs.push(
                    spl_token_2022::instruction::initialize_mint_close_authority(&program, &address, Some(&authority))
                        .expect("close authority ix"),
                ),
                E::InterestBearing => ixs.push(
                    interest_bearing_mint::instruction::initialize(&program, &address, Some(authority), 500)
                        .expect("interest bearing ix"),
                ),
                E::ScaledUiAmount => ixs.push(
                    scaled_ui_amount::instruction::initialize(&program, &address, Some(authority), 2.5)
                        .expect("scaled ui amount ix"),
                ),
                E::Metadata => ixs.push(
                    metadata_pointer::instruction::initialize(&program, &address, Some(authority), Some(address))
                        .expect("metadata pointer ix"),
                ),
                E::Group => ixs.push(
                    group_pointer::instruction::initialize(&program, &address, Some(authority), Some(address))
                        .expect("group pointer ix"),
                ),
                E::GroupMember => ixs.push(
                    group_member_pointer::instruction::initialize(&program, &address, Some(authority), Some(address))
                        .expect("group member pointer ix"),
                ),
                E::Pausable => {
                    ixs.push(pausable::instruction::initialize(&program, &address, &authority).expect("pausable ix"))
                }
                E::TransferHook => ixs.push(
                    transfer_hook::instruction::initialize(
                        &program,
                        &address,
                        Some(authority),
                        Some(Pubkey::new_unique()),
                    )
                    .expect("transfer hook ix"),
                ),
                E::NonTransferable => ixs.push(
                    spl_token_2022::instruction::initialize_non_transferable_mint(&program, &address)
                        .expect("non-transferable ix"),
                ),
                E::DefaultFrozen | E::DefaultInitialized => {
                    let state =
                        if extension == E::DefaultFrozen { AccountState::Frozen } else { AccountState::Initialized };
                    ixs.push(
                        default_account_state::instruction::initialize_default_account_state(
                            &program, &address, &state,
                        )
                        .expect("default account state ix"),
                    );
                }
                E::ConfidentialTransfer => ixs.push(confidential_transfer()),
                // The extension under test is initialised (and laid out) before the confidential
                // transfers it needs, so it is the first refused type in the mint.
                E::ConfidentialTransferFee => {
                    ixs.push(transfer_fee(100, 1_000_000));
                    ixs.push(
                        confidential_transfer_fee::instruction::initialize_confidential_transfer_fee_config(
                            &program,
                            &address,
                            Some(authority),
                            &PodElGamalPubkey::default(),
                        )
                        .expect("confidential transfer fee ix"),
                    );
                    ixs.push(confidential_transfer());
                }
                E::ConfidentialMintBurn => {
                    ixs.push(
                        confidential_mint_burn::instruction::initialize_mint(
                            &program,
                            &address,
                            &PodElGamalPubkey::default(),
                            &PodAeCiphertext::default(),
                        )
                        .expect("confidential mint burn ix"),
                    );
                    ixs.push(confidential_transfer());
                }
                E::PermissionedBurn => {
                    // PermissionedBurnExtension (46), Initialize (0), the burn authority.
                    let mut data = vec![46, 0];
                    data.extend_from_slice(authority.as_ref());
                    ixs.push(Instruction {
                        program_id: program,
                        accounts: vec![AccountMeta::new(address, false)],
                        data,
                    });
                }
            },
        }
        let freeze_authority = kind.has_freeze_authority().then_some(&authority);
        ixs.push(
            spl_token_2022::instruction::initialize_mint2(&program, &address, &authority, freeze_authority, decimals)
                .expect("initialize_mint2"),
        );
        // Variable-length extensions are initialised on the mint once it exists.
        match kind {
            MintKind::Token2022With(E::Metadata) => ixs.push(spl_token_metadata_interface::instruction::initialize(
                &program,
                &address,
                &authority,
                &address,
                &authority,
                "Vault Test".into(),
                "VLT".into(),
                "https://example.invalid/vlt.json".into(),
            )),
            MintKind::Token2022With(E::Group) => ixs.push(spl_token_group_interface::instruction::initialize_group(
                &program,
                &address,
                &address,
                &authority,
                Some(authority),
                10,
            )),
            MintKind::Token2022With(E::GroupMember) => {
                ixs.push(spl_token_group_interface::instruction::initialize_member(
                    &program,
                    &address,
                    &address,
                    &authority,
                    &group.expect("group mint"),
                    &authority,
                ))
            }
            _ => {}
        }
        self.send(&ixs, &payer, &[mint]).expect("create mint");
        TestMint { address, kind, decimals }
    }

    /// Closes a Token-2022 mint with a close authority (the admin); its supply must be zero.
    pub fn close_mint(&mut self, mint: &TestMint) {
        let authority = self.admin.insecure_clone();
        let ix = spl_token_2022::instruction::close_account(
            &mint.program(),
            &mint.address,
            &authority.pubkey(),
            &authority.pubkey(),
            &[],
        )
        .expect("close_account");
        self.send(&[ix], &authority, &[]).expect("close mint");
    }

    /// Burns `amount` from `account`, signed by its owner.
    pub fn burn(&mut self, mint: &TestMint, account: &Pubkey, owner: &Keypair, amount: u64) {
        let ix = spl_token_2022::instruction::burn_checked(
            &mint.program(),
            account,
            &mint.address,
            &owner.pubkey(),
            &[],
            amount,
            mint.decimals,
        )
        .expect("burn_checked");
        self.send(&[ix], owner, &[]).expect("burn");
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
            spl_token_2022::instruction::initialize_account3(&mint.program(), &account.pubkey(), &mint.address, owner)
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
        // A type this build's library does not know (PermissionedBurn) needs nothing on accounts.
        let known: Vec<ExtensionType> = state.get_extension_types().unwrap_or_else(|_| vec![]);
        let required = ExtensionType::get_required_init_account_extensions(&known);
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
            .and_then(|a| StateWithExtensions::<TokenAccountState>::unpack(&a.data).ok().map(|s| s.base.amount))
            .unwrap_or(0)
    }

    /// Total token supply of a mint.
    pub fn supply(&self, mint: &TestMint) -> u64 {
        let data = self.account(&mint.address).expect("mint").data;
        StateWithExtensions::<MintState>::unpack(&data).expect("mint").base.supply
    }

    /// Transfer fees withheld on a mint (harvested there at cleanup) and in a token account.
    pub fn withheld_in_mint(&self, mint: &TestMint) -> u64 {
        let data = self.account(&mint.address).expect("mint").data;
        let state = StateWithExtensions::<MintState>::unpack(&data).expect("mint");
        state.get_extension::<TransferFeeConfig>().map(|c| u64::from(c.withheld_amount)).unwrap_or(0)
    }

    pub fn withheld_in_account(&self, account: &Pubkey) -> u64 {
        use spl_token_2022::extension::transfer_fee::TransferFeeAmount;
        self.account(account)
            .and_then(|a| {
                let state = StateWithExtensions::<TokenAccountState>::unpack(&a.data).ok()?;
                state.get_extension::<TransferFeeAmount>().ok().map(|f| u64::from(f.withheld_amount))
            })
            .unwrap_or(0)
    }
}
