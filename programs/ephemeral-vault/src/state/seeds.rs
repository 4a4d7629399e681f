//! Every PDA seed in one place, so the program, the indexer and the TypeScript client derive the
//! same addresses from the same words.

/// `["config"]` - the single deployment-wide configuration account.
pub const CONFIG_SEED: &[u8] = b"config";

/// The config PDA's address and bump, derived at compile time from [`CONFIG_SEED`] and the
/// program id. Instructions that read the config compare its key with this constant instead of
/// re-deriving the PDA on chain (`create_program_address` costs 1,500 compute units); with the
/// owner and discriminator checks of `Account<Config>` that binds the one config there is.
pub const CONFIG_ADDRESS_AND_BUMP: (anchor_lang::prelude::Pubkey, u8) = {
    let (address, bump) = anchor_lang::derive_program_address(&[CONFIG_SEED], &crate::ID_CONST.to_bytes());
    (anchor_lang::prelude::Pubkey::new_from_array(address), bump)
};

/// The config PDA, `["config"]` under this program.
pub const CONFIG_ADDRESS: anchor_lang::prelude::Pubkey = CONFIG_ADDRESS_AND_BUMP.0;

/// `["vault", parent, session_id(16 bytes)]` - one vault per session.
pub const VAULT_SEED: &[u8] = b"vault";

/// `["vault_token", vault]` - the vault's token account for SPL / Token-2022 sessions.
pub const VAULT_TOKEN_SEED: &[u8] = b"vault_token";
