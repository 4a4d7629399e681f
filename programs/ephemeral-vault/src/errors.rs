use anchor_lang::prelude::*;

/// Every refusal the program can return. Messages are what the TypeScript client and the
/// indexer show; keep them short and specific.
#[error_code]
pub enum VaultError {
    #[msg("The program is paused by its admin")]
    Paused,
    #[msg("Only the config admin may do this")]
    Unauthorized,
    #[msg("Only the program's upgrade authority may initialise the config")]
    NotUpgradeAuthority,
    #[msg("Config parameters are out of range")]
    InvalidConfig,
    #[msg("Session duration is outside the configured bounds")]
    InvalidDuration,
    #[msg("Approved amount must be greater than zero")]
    InvalidApprovedAmount,
    #[msg("Per-trade cap must be greater than zero and at most the approved amount")]
    InvalidPerTradeCap,
    #[msg("Too many trade destinations")]
    TooManyDestinations,
    #[msg("Duplicate trade destination")]
    DuplicateDestination,
    #[msg("The delegate must be a wallet other than the parent and the vault")]
    InvalidDelegate,
    #[msg("That wallet is already the delegate")]
    SameDelegate,
    #[msg("Amount must be greater than zero")]
    ZeroAmount,
    #[msg("The session has expired")]
    SessionExpired,
    #[msg("The session has been revoked")]
    SessionRevoked,
    #[msg("Signer is not the session's current delegate")]
    NotDelegate,
    #[msg("Trade amount exceeds the per-trade cap")]
    PerTradeCapExceeded,
    #[msg("Spending would exceed the approved amount")]
    ApprovedAmountExceeded,
    #[msg("The vault does not hold enough funds")]
    InsufficientVaultBalance,
    #[msg("Destination is not on the session's allow-list")]
    DestinationNotAllowed,
    #[msg("Destination may not be the vault itself")]
    InvalidDestination,
    #[msg("Trade ids must increase")]
    TradeIdNotIncreasing,
    #[msg("Fee top-up exceeds the configured cap")]
    FeeTopUpCapExceeded,
    #[msg("Fee top-ups draw lamports and are only available for SOL vaults")]
    TopUpRequiresSolVault,
    #[msg("Cleanup is allowed only after expiry, after revocation or while paused")]
    CleanupNotAllowed,
    #[msg("Token accounts must be passed for a token vault and omitted for a SOL vault")]
    TokenAccountsMismatch,
    #[msg("Mint does not match the session's mint")]
    WrongMint,
    #[msg("Token program does not match the session's token program")]
    WrongTokenProgram,
    #[msg("The mint has a Token-2022 extension this vault cannot hold safely")]
    UnsupportedMintExtension,
    #[msg("Arithmetic overflow")]
    MathOverflow,
    #[msg("Vault invariant violated")]
    InvariantViolated,
}
