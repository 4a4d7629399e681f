//! Which mints a vault may hold: an allow-list of Token-2022 mint extensions.
//!
//! A Token-2022 mint can carry extensions that would break the vault's promises to the parent
//! (a permanent delegate takes tokens from any account, a pause authority stops every transfer).
//! Only extensions known to be safe for custody are accepted; every other type number is
//! refused, including types added to Token-2022 after this program was built. The mint's TLV
//! area is therefore read here by type number, not through the token library's `ExtensionType`
//! enum, so an unknown number can be neither skipped nor mistaken for a known one.
//!
//! When: whenever tokens enter a vault - at `create_session` (an account constraint on the mint)
//! and in
//! [`crate::transfers::tokens_into_vault`], so every deposit, initial or later. Checking at
//! creation alone is not enough: a mint with a close authority can be closed at zero supply and
//! created again at the same address with other extensions, and a session opened on the harmless
//! mint would then be fed tokens of, say, a permanent-delegate mint that takes them from the vault
//! while its books still count them.
//!
//! Tokens leaving a vault are not checked. Withdrawals and cleanup pay the parent: refusing them
//! because the mint changed would trap the parent's funds, the very thing the policy protects.
//! Trades need no check either: a mint's extensions can only change by close-and-recreate, which
//! needs zero supply, so the vault is then empty and its books (every unit they count arrived
//! through a checked deposit) at zero - a trade has nothing to spend. A re-created mint can still
//! grief a vault the way a freeze authority can (README: known trade-offs), but it cannot take or
//! mint what the vault counts.

use anchor_lang::prelude::*;

use crate::errors::VaultError;

/// Token-2022 extension type numbers: the discriminants of its `ExtensionType`, part of the
/// on-chain account layout (the numbering only ever grows). Named here so the policy does not
/// depend on the token library's enum; a host test checks them against it.
pub mod extension_type {
    /// Marks the end of the TLV entries (zero padding).
    pub const UNINITIALIZED: u16 = 0;
    /// Transfer fee rate and authorities.
    pub const TRANSFER_FEE_CONFIG: u16 = 1;
    /// An optional authority that may close the mint at zero supply.
    pub const MINT_CLOSE_AUTHORITY: u16 = 3;
    /// Confidential (encrypted) transfers.
    pub const CONFIDENTIAL_TRANSFER_MINT: u16 = 4;
    /// The state new token accounts start in (possibly frozen).
    pub const DEFAULT_ACCOUNT_STATE: u16 = 6;
    /// Tokens that can never be transferred.
    pub const NON_TRANSFERABLE: u16 = 9;
    /// A displayed interest rate.
    pub const INTEREST_BEARING_CONFIG: u16 = 10;
    /// A delegate over every account of the mint.
    pub const PERMANENT_DELEGATE: u16 = 12;
    /// A program invoked on every transfer.
    pub const TRANSFER_HOOK: u16 = 14;
    /// Confidential handling of withheld transfer fees.
    pub const CONFIDENTIAL_TRANSFER_FEE_CONFIG: u16 = 16;
    /// Where the mint's metadata lives.
    pub const METADATA_POINTER: u16 = 18;
    /// Name, symbol and URI stored in the mint.
    pub const TOKEN_METADATA: u16 = 19;
    /// Where the mint's group (collection) configuration lives.
    pub const GROUP_POINTER: u16 = 20;
    /// A group (collection) configuration stored in the mint.
    pub const TOKEN_GROUP: u16 = 21;
    /// Where the mint's group membership lives.
    pub const GROUP_MEMBER_POINTER: u16 = 22;
    /// A group membership stored in the mint.
    pub const TOKEN_GROUP_MEMBER: u16 = 23;
    /// Confidential minting and burning.
    pub const CONFIDENTIAL_MINT_BURN: u16 = 24;
    /// A displayed amount multiplier.
    pub const SCALED_UI_AMOUNT: u16 = 25;
    /// An authority that can pause every mint, burn and transfer.
    pub const PAUSABLE: u16 = 26;
}

use extension_type::*;

/// The mint extensions a vault accepts. Everything else is refused, notably:
/// `PermanentDelegate` (takes tokens from the vault at will), `Pausable` (its authority can stop
/// the parent's withdrawals and every cleanup), `TransferHook` (an arbitrary program on every
/// transfer, with accounts the vault does not pass), `NonTransferable` (deposits could never
/// leave), `DefaultAccountState` whatever its state (a frozen default creates the vault's token
/// account frozen, and the authority may switch the default at any time), the confidential
/// extensions (balances and supply move in encrypted form, outside the amounts the vault
/// counts), token-account extension types (they never belong on a mint) and unknown types.
pub const ACCEPTED_MINT_EXTENSIONS: [u16; 10] = [
    // Deposits credit what actually arrived; withheld fees are harvested before cleanup closes.
    TRANSFER_FEE_CONFIG,
    // Closing needs zero supply (an empty vault); a re-created mint is checked on every deposit.
    MINT_CLOSE_AUTHORITY,
    // Changes only the displayed amount, never the raw amounts the vault counts and moves.
    INTEREST_BEARING_CONFIG,
    // Descriptive data and pointers to it: no say over balances or transfers.
    METADATA_POINTER,
    TOKEN_METADATA,
    GROUP_POINTER,
    TOKEN_GROUP,
    GROUP_MEMBER_POINTER,
    TOKEN_GROUP_MEMBER,
    // A display multiplier, like interest-bearing: raw amounts are unchanged.
    SCALED_UI_AMOUNT,
];

/// Length of a mint without extensions (SPL Token's and Token-2022's base layout).
const MINT_BASE_LEN: usize = 82;
/// Token-2022 puts the account type right after the space of a base token account (165 bytes),
/// so mints and token accounts with extensions share one layout.
const ACCOUNT_TYPE_OFFSET: usize = 165;
/// `AccountType::Mint`.
const ACCOUNT_TYPE_MINT: u8 = 1;

/// Why a mint's data fails the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MintRefusal {
    /// It carries an extension of this type number, which is not on the allow-list.
    Extension(u16),
    /// Its extension area cannot be read.
    Malformed,
}

/// Refuses a mint that fails the policy with `UnsupportedMintExtension`.
pub fn require_supported_mint(mint: &AccountInfo<'_>) -> Result<()> {
    require!(is_supported_mint(mint), VaultError::UnsupportedMintExtension);
    Ok(())
}

/// Whether a mint passes the policy (logging why when it does not). SPL Token mints have no
/// extensions and always pass; Token-2022 mints pass when every extension they carry is on
/// [`ACCEPTED_MINT_EXTENSIONS`].
pub fn is_supported_mint(mint: &AccountInfo<'_>) -> bool {
    if *mint.owner != anchor_spl::token_2022::ID {
        return true;
    }
    let Ok(data) = mint.try_borrow_data() else {
        msg!("mint data cannot be borrowed");
        return false;
    };
    match check_mint_extensions(&data) {
        Ok(()) => true,
        Err(MintRefusal::Extension(found)) => {
            msg!("mint extension type {} is not accepted", found);
            false
        }
        Err(MintRefusal::Malformed) => {
            msg!("mint extension data cannot be read");
            false
        }
    }
}

/// Checks a Token-2022 mint's raw data against the allow-list. The layout: the 82-byte base
/// mint, zero padding up to byte 165 (checked by Anchor when it deserializes the mint), the
/// account type byte, then TLV entries (`u16` type, `u16` length, value, little-endian) until
/// the data ends or a type 0 marks the padding after the last one.
pub fn check_mint_extensions(data: &[u8]) -> core::result::Result<(), MintRefusal> {
    if data.len() == MINT_BASE_LEN {
        return Ok(());
    }
    let (account_type, mut tlv) =
        data.get(ACCOUNT_TYPE_OFFSET..).and_then(<[u8]>::split_first).ok_or(MintRefusal::Malformed)?;
    if *account_type != ACCOUNT_TYPE_MINT {
        return Err(MintRefusal::Malformed);
    }
    loop {
        // Fewer than two bytes cannot hold another type: the entries have ended.
        let Some((found, after_type)) = read_u16(tlv) else {
            return Ok(());
        };
        if found == UNINITIALIZED {
            return Ok(());
        }
        if !ACCEPTED_MINT_EXTENSIONS.contains(&found) {
            return Err(MintRefusal::Extension(found));
        }
        let (length, value) = read_u16(after_type).ok_or(MintRefusal::Malformed)?;
        tlv = value.get(usize::from(length)..).ok_or(MintRefusal::Malformed)?;
    }
}

fn read_u16(data: &[u8]) -> Option<(u16, &[u8])> {
    let (bytes, rest) = data.split_first_chunk::<2>()?;
    Some((u16::from_le_bytes(*bytes), rest))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use anchor_spl::token_2022::spl_token_2022::extension::ExtensionType;

    /// A Token-2022 mint's data with these TLV entries (type, value length) and `padding` zero
    /// bytes after them.
    fn mint_data(entries: &[(u16, u16)], padding: usize) -> Vec<u8> {
        let mut data = vec![0u8; ACCOUNT_TYPE_OFFSET];
        data[45] = 1; // is_initialized, not that the policy reads it
        data.push(ACCOUNT_TYPE_MINT);
        for (ty, len) in entries {
            data.extend_from_slice(&ty.to_le_bytes());
            data.extend_from_slice(&len.to_le_bytes());
            data.extend(std::iter::repeat_n(0xAB, usize::from(*len)));
        }
        data.extend(std::iter::repeat_n(0, padding));
        data
    }

    #[test]
    fn type_numbers_match_token_2022() {
        let pairs = [
            (UNINITIALIZED, ExtensionType::Uninitialized),
            (TRANSFER_FEE_CONFIG, ExtensionType::TransferFeeConfig),
            (MINT_CLOSE_AUTHORITY, ExtensionType::MintCloseAuthority),
            (CONFIDENTIAL_TRANSFER_MINT, ExtensionType::ConfidentialTransferMint),
            (DEFAULT_ACCOUNT_STATE, ExtensionType::DefaultAccountState),
            (NON_TRANSFERABLE, ExtensionType::NonTransferable),
            (INTEREST_BEARING_CONFIG, ExtensionType::InterestBearingConfig),
            (PERMANENT_DELEGATE, ExtensionType::PermanentDelegate),
            (TRANSFER_HOOK, ExtensionType::TransferHook),
            (CONFIDENTIAL_TRANSFER_FEE_CONFIG, ExtensionType::ConfidentialTransferFeeConfig),
            (METADATA_POINTER, ExtensionType::MetadataPointer),
            (TOKEN_METADATA, ExtensionType::TokenMetadata),
            (GROUP_POINTER, ExtensionType::GroupPointer),
            (TOKEN_GROUP, ExtensionType::TokenGroup),
            (GROUP_MEMBER_POINTER, ExtensionType::GroupMemberPointer),
            (TOKEN_GROUP_MEMBER, ExtensionType::TokenGroupMember),
            (CONFIDENTIAL_MINT_BURN, ExtensionType::ConfidentialMintBurn),
            (SCALED_UI_AMOUNT, ExtensionType::ScaledUiAmount),
            (PAUSABLE, ExtensionType::Pausable),
        ];
        for (number, ty) in pairs {
            assert_eq!(number, u16::from(ty), "{ty:?}");
        }
    }

    #[test]
    fn no_account_side_extension_is_accepted_on_a_mint() {
        for number in ACCEPTED_MINT_EXTENSIONS {
            let ty = ExtensionType::try_from(number).expect("a known type");
            assert_eq!(
                ty.get_account_type(),
                anchor_spl::token_2022::spl_token_2022::extension::AccountType::Mint,
                "{ty:?}"
            );
        }
    }

    #[test]
    fn base_mints_and_accepted_extensions_pass() {
        assert_eq!(check_mint_extensions(&[0u8; MINT_BASE_LEN]), Ok(()));
        // Extensions with nothing after them, or followed by zero padding, or by a dangling
        // byte (Token-2022 leaves room for a realloc that way).
        assert_eq!(check_mint_extensions(&mint_data(&[], 0)), Ok(()));
        let accepted: Vec<(u16, u16)> = ACCEPTED_MINT_EXTENSIONS.iter().map(|t| (*t, 8)).collect();
        assert_eq!(check_mint_extensions(&mint_data(&accepted, 0)), Ok(()));
        assert_eq!(check_mint_extensions(&mint_data(&accepted, 7)), Ok(()));
        let mut dangling = mint_data(&[(TRANSFER_FEE_CONFIG, 108)], 0);
        dangling.push(0);
        assert_eq!(check_mint_extensions(&dangling), Ok(()));
    }

    #[test]
    fn anything_off_the_list_is_refused_wherever_it_sits() {
        for number in (1..=u16::MAX).filter(|n| !ACCEPTED_MINT_EXTENSIONS.contains(n)) {
            let data = mint_data(&[(METADATA_POINTER, 64), (number, 4)], 3);
            assert_eq!(check_mint_extensions(&data), Err(MintRefusal::Extension(number)));
        }
        assert_eq!(check_mint_extensions(&mint_data(&[(PAUSABLE, 33)], 0)), Err(MintRefusal::Extension(PAUSABLE)));
    }

    #[test]
    fn unreadable_extension_data_is_refused() {
        // A length running past the end.
        let mut data = mint_data(&[(METADATA_POINTER, 64)], 0);
        data.truncate(data.len() - 1);
        assert_eq!(check_mint_extensions(&data), Err(MintRefusal::Malformed));
        // A type with no room for its length.
        let mut data = mint_data(&[], 0);
        data.extend_from_slice(&METADATA_POINTER.to_le_bytes());
        assert_eq!(check_mint_extensions(&data), Err(MintRefusal::Malformed));
        // Not a mint: a token account's type byte, or too short for one.
        let mut data = mint_data(&[], 0);
        data[ACCOUNT_TYPE_OFFSET] = 2;
        assert_eq!(check_mint_extensions(&data), Err(MintRefusal::Malformed));
        assert_eq!(check_mint_extensions(&[0u8; 100]), Err(MintRefusal::Malformed));
    }
}
