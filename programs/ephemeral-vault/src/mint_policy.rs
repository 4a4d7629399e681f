//! Which mints a vault may hold. A Token-2022 mint can carry extensions that would break the
//! vault's promises to the parent, so those are refused when the session is created.

use anchor_lang::prelude::*;
use anchor_spl::token_2022::spl_token_2022::extension::{
    BaseStateWithExtensions, ExtensionType, StateWithExtensions,
};
use anchor_spl::token_2022::spl_token_2022::state::Mint as MintState;
use anchor_spl::token_interface::Mint;

use crate::errors::VaultError;

/// Extensions a vault refuses:
/// - `PermanentDelegate`: the mint's delegate could move the vault's tokens at will.
/// - `TransferHook`: every transfer would run an arbitrary program with extra accounts.
/// - `NonTransferable`: tokens deposited could never be traded or returned.
/// - `ConfidentialTransferMint`: balances could move outside the amounts the vault accounts for.
/// - `DefaultAccountState`: the vault's token account could be born frozen.
/// Transfer fees, metadata, interest and the like are fine: deposits credit what actually arrived.
const REFUSED: [ExtensionType; 5] = [
    ExtensionType::PermanentDelegate,
    ExtensionType::TransferHook,
    ExtensionType::NonTransferable,
    ExtensionType::ConfidentialTransferMint,
    ExtensionType::DefaultAccountState,
];

pub fn require_supported_mint(mint: &InterfaceAccount<'_, Mint>) -> Result<()> {
    let info = mint.to_account_info();
    if *info.owner != anchor_spl::token_2022::ID {
        return Ok(());
    }
    let data = info.try_borrow_data()?;
    let state = StateWithExtensions::<MintState>::unpack(&data)
        .map_err(|_| error!(VaultError::UnsupportedMintExtension))?;
    let extensions = state
        .get_extension_types()
        .map_err(|_| error!(VaultError::UnsupportedMintExtension))?;
    require!(
        !extensions.iter().any(|e| REFUSED.contains(e)),
        VaultError::UnsupportedMintExtension
    );
    Ok(())
}
