//! Host-side helpers for building this program's instructions: addresses and one builder per
//! instruction. Used by the tests, the benchmarks, the indexer's fixtures and the cleanup bot, so
//! every Rust caller derives accounts the same way. (Frontends use the TypeScript client in app/.)

use anchor_lang::prelude::*;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::{InstructionData, ToAccountMetas};

use crate::instructions::{CreateSessionArgs, ExecuteTradeArgs, UpdateConfigArgs};
use crate::state::{ConfigParams, CONFIG_SEED, VAULT_SEED, VAULT_TOKEN_SEED};
use crate::{accounts, instruction, ID};

/// The upgradeable BPF loader, which owns the program's ProgramData account.
pub const BPF_LOADER_UPGRADEABLE: Pubkey = pubkey!("BPFLoaderUpgradeab1e11111111111111111111111");
pub const SYSTEM_PROGRAM: Pubkey = pubkey!("11111111111111111111111111111111");

pub fn config_address() -> Pubkey {
    Pubkey::find_program_address(&[CONFIG_SEED], &ID).0
}

pub fn vault_address(parent: &Pubkey, session_id: &[u8; 16]) -> Pubkey {
    Pubkey::find_program_address(&[VAULT_SEED, parent.as_ref(), session_id.as_ref()], &ID).0
}

pub fn vault_token_address(vault: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[VAULT_TOKEN_SEED, vault.as_ref()], &ID).0
}

pub fn event_authority_address() -> Pubkey {
    Pubkey::find_program_address(&[b"__event_authority"], &ID).0
}

pub fn program_data_address() -> Pubkey {
    Pubkey::find_program_address(&[ID.as_ref()], &BPF_LOADER_UPGRADEABLE).0
}

/// What a session holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asset {
    Sol,
    Token { mint: Pubkey, token_program: Pubkey },
}

impl Asset {
    fn mint(&self) -> Option<Pubkey> {
        match self {
            Asset::Sol => None,
            Asset::Token { mint, .. } => Some(*mint),
        }
    }

    fn token_program(&self) -> Option<Pubkey> {
        match self {
            Asset::Sol => None,
            Asset::Token { token_program, .. } => Some(*token_program),
        }
    }
}

/// Names one session: enough to derive every account its instructions need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRef {
    pub parent: Pubkey,
    pub session_id: [u8; 16],
    pub asset: Asset,
}

impl SessionRef {
    pub fn vault(&self) -> Pubkey {
        vault_address(&self.parent, &self.session_id)
    }

    /// The vault's token account, for token sessions.
    pub fn vault_token_account(&self) -> Option<Pubkey> {
        self.asset.mint().map(|_| vault_token_address(&self.vault()))
    }
}

fn build(accounts: impl ToAccountMetas, data: impl InstructionData) -> Instruction {
    Instruction { program_id: ID, accounts: accounts.to_account_metas(None), data: data.data() }
}

pub fn initialize_config(admin: Pubkey, params: ConfigParams) -> Instruction {
    build(
        accounts::InitializeConfig {
            admin,
            config: config_address(),
            this_program: ID,
            program_data: program_data_address(),
            system_program: SYSTEM_PROGRAM,
            event_authority: event_authority_address(),
            program: ID,
        },
        instruction::InitializeConfig { params },
    )
}

pub fn update_config(admin: Pubkey, args: UpdateConfigArgs) -> Instruction {
    build(
        accounts::UpdateConfig {
            admin,
            config: config_address(),
            event_authority: event_authority_address(),
            program: ID,
        },
        instruction::UpdateConfig { args },
    )
}

pub fn set_paused(admin: Pubkey, paused: bool) -> Instruction {
    build(
        accounts::SetPaused {
            admin,
            config: config_address(),
            event_authority: event_authority_address(),
            program: ID,
        },
        instruction::SetPaused { paused },
    )
}

/// `parent_token_account` is needed for a token session with an initial deposit.
pub fn create_session(
    parent: Pubkey,
    delegate: Pubkey,
    asset: Asset,
    parent_token_account: Option<Pubkey>,
    args: CreateSessionArgs,
) -> Instruction {
    let session = SessionRef { parent, session_id: args.session_id, asset };
    build(
        accounts::CreateSession {
            parent,
            config: config_address(),
            vault: session.vault(),
            delegate,
            mint: asset.mint(),
            vault_token_account: session.vault_token_account(),
            parent_token_account,
            token_program: asset.token_program(),
            system_program: SYSTEM_PROGRAM,
            event_authority: event_authority_address(),
            program: ID,
        },
        instruction::CreateSession { args },
    )
}

pub fn approve_delegate(session: &SessionRef, new_delegate: Pubkey) -> Instruction {
    build(
        accounts::ApproveDelegate {
            parent: session.parent,
            vault: session.vault(),
            event_authority: event_authority_address(),
            program: ID,
        },
        instruction::ApproveDelegate { new_delegate },
    )
}

pub fn deposit(session: &SessionRef, parent_token_account: Option<Pubkey>, amount: u64) -> Instruction {
    build(
        accounts::Deposit {
            parent: session.parent,
            config: config_address(),
            vault: session.vault(),
            mint: session.asset.mint(),
            vault_token_account: session.vault_token_account(),
            parent_token_account,
            token_program: session.asset.token_program(),
            system_program: SYSTEM_PROGRAM,
            event_authority: event_authority_address(),
            program: ID,
        },
        instruction::Deposit { amount },
    )
}

pub fn withdraw(session: &SessionRef, parent_token_account: Option<Pubkey>, amount: u64) -> Instruction {
    build(
        accounts::Withdraw {
            parent: session.parent,
            vault: session.vault(),
            mint: session.asset.mint(),
            vault_token_account: session.vault_token_account(),
            parent_token_account,
            token_program: session.asset.token_program(),
            event_authority: event_authority_address(),
            program: ID,
        },
        instruction::Withdraw { amount },
    )
}

/// For a token session `destination` is the receiving wallet and `destination_token_account`
/// its token account; for a SOL session pass `None`.
pub fn execute_trade(
    session: &SessionRef,
    delegate: Pubkey,
    destination: Pubkey,
    destination_token_account: Option<Pubkey>,
    args: ExecuteTradeArgs,
) -> Instruction {
    build(
        accounts::ExecuteTrade {
            delegate,
            config: config_address(),
            vault: session.vault(),
            destination,
            destination_token_account,
            mint: session.asset.mint(),
            vault_token_account: session.vault_token_account(),
            token_program: session.asset.token_program(),
            event_authority: event_authority_address(),
            program: ID,
        },
        instruction::ExecuteTrade { args },
    )
}

pub fn top_up_fees(session: &SessionRef, delegate: Pubkey, amount: u64) -> Instruction {
    build(
        accounts::TopUpFees {
            delegate,
            config: config_address(),
            vault: session.vault(),
            event_authority: event_authority_address(),
            program: ID,
        },
        instruction::TopUpFees { amount },
    )
}

pub fn revoke_session(session: &SessionRef) -> Instruction {
    build(
        accounts::RevokeSession {
            parent: session.parent,
            vault: session.vault(),
            event_authority: event_authority_address(),
            program: ID,
        },
        instruction::RevokeSession {},
    )
}

/// `parent_token_account` receives a token session's balance.
pub fn cleanup_vault(session: &SessionRef, caller: Pubkey, parent_token_account: Option<Pubkey>) -> Instruction {
    build(
        accounts::CleanupVault {
            caller,
            config: config_address(),
            vault: session.vault(),
            parent: session.parent,
            mint: session.asset.mint(),
            vault_token_account: session.vault_token_account(),
            parent_token_account,
            token_program: session.asset.token_program(),
            event_authority: event_authority_address(),
            program: ID,
        },
        instruction::CleanupVault {},
    )
}

/// Every event this program emits, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultEvent {
    ConfigInitialized(crate::events::ConfigInitialized),
    ConfigUpdated(crate::events::ConfigUpdated),
    PauseSet(crate::events::PauseSet),
    SessionCreated(crate::events::SessionCreated),
    DelegateApproved(crate::events::DelegateApproved),
    Deposited(crate::events::Deposited),
    Withdrawn(crate::events::Withdrawn),
    TradeExecuted(crate::events::TradeExecuted),
    FeesToppedUp(crate::events::FeesToppedUp),
    SessionRevoked(crate::events::SessionRevoked),
    VaultCleaned(crate::events::VaultCleaned),
}

/// Why bytes that look like one of this program's events could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventDecodeError {
    UnknownDiscriminator([u8; 8]),
    Malformed(String),
}

impl std::fmt::Display for EventDecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownDiscriminator(d) => write!(f, "unknown event discriminator {d:?}"),
            Self::Malformed(e) => write!(f, "malformed event: {e}"),
        }
    }
}

impl std::error::Error for EventDecodeError {}

/// Decodes the data of an `emit_cpi!` self-invocation (the inner instruction this program sends
/// to itself, signed by its event authority). Returns `None` when the data is not an event CPI at
/// all. The caller must check the inner instruction's program id is this program's and that its
/// only account is the event authority signing - otherwise anyone could forge events.
pub fn decode_event_cpi(data: &[u8]) -> Option<std::result::Result<VaultEvent, EventDecodeError>> {
    let body = data.strip_prefix(anchor_lang::event::EVENT_IX_TAG_LE)?;
    Some(decode_event(body))
}

/// Decodes an event from its discriminator and Borsh body.
pub fn decode_event(data: &[u8]) -> std::result::Result<VaultEvent, EventDecodeError> {
    use crate::events::*;
    use anchor_lang::Discriminator;

    fn body<T: AnchorDeserialize>(rest: &[u8]) -> std::result::Result<T, EventDecodeError> {
        let mut slice = rest;
        let value = T::deserialize(&mut slice).map_err(|e| EventDecodeError::Malformed(e.to_string()))?;
        if !slice.is_empty() {
            return Err(EventDecodeError::Malformed(format!("{} trailing bytes", slice.len())));
        }
        Ok(value)
    }

    if data.len() < 8 {
        return Err(EventDecodeError::Malformed("shorter than a discriminator".into()));
    }
    let (disc, rest) = data.split_at(8);
    macro_rules! match_events {
        ($($name:ident),* $(,)?) => {
            $(if disc == $name::DISCRIMINATOR {
                return body::<$name>(rest).map(VaultEvent::$name);
            })*
        };
    }
    match_events!(
        ConfigInitialized,
        ConfigUpdated,
        PauseSet,
        SessionCreated,
        DelegateApproved,
        Deposited,
        Withdrawn,
        TradeExecuted,
        FeesToppedUp,
        SessionRevoked,
        VaultCleaned,
    );
    let mut unknown = [0u8; 8];
    unknown.copy_from_slice(disc);
    Err(EventDecodeError::UnknownDiscriminator(unknown))
}

/// Every program error, in declaration order (their codes are 6000, 6001, ...).
pub const ALL_ERRORS: [crate::errors::VaultError; 30] = {
    use crate::errors::VaultError;
    [
        VaultError::Paused,
        VaultError::Unauthorized,
        VaultError::NotUpgradeAuthority,
        VaultError::InvalidConfig,
        VaultError::InvalidDuration,
        VaultError::InvalidApprovedAmount,
        VaultError::InvalidPerTradeCap,
        VaultError::TooManyDestinations,
        VaultError::DuplicateDestination,
        VaultError::InvalidDelegate,
        VaultError::SameDelegate,
        VaultError::ZeroAmount,
        VaultError::SessionExpired,
        VaultError::SessionRevoked,
        VaultError::NotDelegate,
        VaultError::PerTradeCapExceeded,
        VaultError::ApprovedAmountExceeded,
        VaultError::InsufficientVaultBalance,
        VaultError::DestinationNotAllowed,
        VaultError::InvalidDestination,
        VaultError::TradeIdNotIncreasing,
        VaultError::FeeTopUpCapExceeded,
        VaultError::TopUpRequiresSolVault,
        VaultError::CleanupNotAllowed,
        VaultError::TokenAccountsMismatch,
        VaultError::WrongMint,
        VaultError::WrongTokenProgram,
        VaultError::UnsupportedMintExtension,
        VaultError::MathOverflow,
        VaultError::InvariantViolated,
    ]
};

/// The program error with this on-chain code, if it is one of ours.
pub fn vault_error(code: u32) -> Option<crate::errors::VaultError> {
    let index = code.checked_sub(anchor_lang::error::ERROR_CODE_OFFSET)?;
    ALL_ERRORS.get(usize::try_from(index).ok()?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_back_from_its_code() {
        for (i, error) in ALL_ERRORS.iter().enumerate() {
            assert_eq!(*error as u32, i as u32, "ALL_ERRORS out of declaration order at {i}");
            let code = anchor_lang::error::ERROR_CODE_OFFSET + *error as u32;
            assert_eq!(vault_error(code).map(|e| e as u32), Some(*error as u32));
        }
        assert!(vault_error(anchor_lang::error::ERROR_CODE_OFFSET + ALL_ERRORS.len() as u32).is_none());
        assert!(vault_error(2006).is_none());
    }
}
