//! Events, emitted through a self-CPI the indexer reads from inner instructions (`emit`, the
//! bytes and signer of Anchor's `emit_cpi!`), because log lines can be truncated by the runtime
//! or forged by another program's logs. Each carries what the indexer needs to fill its tables
//! without reading accounts.

use anchor_lang::event::EVENT_IX_TAG_LE;
use anchor_lang::prelude::*;
use anchor_lang::solana_program::instruction::{AccountMeta, Instruction};
use anchor_lang::solana_program::program::invoke_signed_unchecked;
use anchor_lang::{Discriminator, Event};

use crate::state::{CleanupReason, ConfigParams, Vault};

/// Seeds of the event authority PDA, which signs every event CPI (Anchor's `emit_cpi!` seeds).
const EVENT_AUTHORITY_SEED: &[u8] = b"__event_authority";

/// Room for the largest event (`SessionCreated` with four destinations: 16 + 316 bytes), so the
/// instruction data is written once, without regrowing.
const EVENT_IX_DATA_CAPACITY: usize = 352;

/// Emits `event` exactly as Anchor's `emit_cpi!` does - a CPI into this program whose data is
/// Anchor's event tag, the event's discriminator and its borsh bytes, with the event authority
/// PDA as the one account, signed by the program - so the indexer and the client decode it as
/// before, and Anchor's event handler (`__event_dispatch`) still refuses any such call the event
/// authority did not sign: nobody else can forge an event.
///
/// Cheaper than the macro (about 2,500 compute units per event): the data is serialised once
/// into a buffer of the right size instead of through `Event::data`'s vector copied byte by
/// byte into a second one and then cloned into the instruction, and the CPI skips the account
/// borrow checks of `invoke_signed` (the event authority holds no data and this program never
/// borrows it).
pub fn emit<'info, E: Event>(event_authority: &AccountInfo<'info>, event: &E) -> Result<()> {
    let mut data = Vec::with_capacity(EVENT_IX_DATA_CAPACITY);
    data.extend_from_slice(EVENT_IX_TAG_LE);
    data.extend_from_slice(E::DISCRIMINATOR);
    event.serialize(&mut data).map_err(|_| error!(ErrorCode::AccountDidNotSerialize))?;
    let ix = Instruction {
        program_id: crate::ID,
        accounts: vec![AccountMeta::new_readonly(crate::EVENT_AUTHORITY_AND_BUMP.0, true)],
        data,
    };
    invoke_signed_unchecked(
        &ix,
        core::slice::from_ref(event_authority),
        &[&[EVENT_AUTHORITY_SEED, &[crate::EVENT_AUTHORITY_AND_BUMP.1]]],
    )
    .map_err(Into::into)
}

/// A vault's running totals after the change an event reports.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionTotals {
    pub total_deposited: u64,
    pub total_spent: u64,
    pub total_withdrawn: u64,
    pub total_fee_top_ups: u64,
    pub trade_count: u64,
}

impl From<&Vault> for SessionTotals {
    fn from(vault: &Vault) -> Self {
        Self {
            total_deposited: vault.total_deposited,
            total_spent: vault.total_spent,
            total_withdrawn: vault.total_withdrawn,
            total_fee_top_ups: vault.total_fee_top_ups,
            trade_count: vault.trade_count,
        }
    }
}

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigInitialized {
    pub admin: Pubkey,
    pub params: ConfigParams,
    pub timestamp: i64,
}

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigUpdated {
    pub admin: Pubkey,
    pub new_admin: Pubkey,
    pub params: ConfigParams,
    pub timestamp: i64,
}

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseSet {
    pub admin: Pubkey,
    pub paused: bool,
    pub timestamp: i64,
}

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCreated {
    pub session_id: [u8; 16],
    pub parent: Pubkey,
    pub vault: Pubkey,
    pub delegate: Pubkey,
    /// `Pubkey::default()` for native SOL.
    pub mint: Pubkey,
    pub approved_amount: u64,
    pub per_trade_cap: u64,
    pub destinations: Vec<Pubkey>,
    /// Lamports the parent paid straight to the delegate for its transaction fees.
    pub fee_top_up: u64,
    pub created_at: i64,
    pub expires_at: i64,
}

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelegateApproved {
    pub session_id: [u8; 16],
    pub parent: Pubkey,
    pub vault: Pubkey,
    pub previous_delegate: Pubkey,
    pub delegate: Pubkey,
    pub rotations: u32,
    pub timestamp: i64,
}

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deposited {
    pub session_id: [u8; 16],
    pub parent: Pubkey,
    pub vault: Pubkey,
    pub mint: Pubkey,
    /// What the parent sent.
    pub amount: u64,
    /// What the vault received (less than `amount` for a transfer-fee mint).
    pub received: u64,
    pub totals: SessionTotals,
    pub timestamp: i64,
}

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withdrawn {
    pub session_id: [u8; 16],
    pub parent: Pubkey,
    pub vault: Pubkey,
    pub mint: Pubkey,
    pub amount: u64,
    pub totals: SessionTotals,
    pub timestamp: i64,
}

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TradeExecuted {
    pub session_id: [u8; 16],
    pub parent: Pubkey,
    pub vault: Pubkey,
    pub delegate: Pubkey,
    pub mint: Pubkey,
    pub trade_id: u64,
    /// The destination wallet (SOL) or token account (SPL).
    pub destination: Pubkey,
    pub amount: u64,
    pub fee: u64,
    pub remaining_allowance: u64,
    pub totals: SessionTotals,
    pub timestamp: i64,
}

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeesToppedUp {
    pub session_id: [u8; 16],
    pub parent: Pubkey,
    pub vault: Pubkey,
    pub delegate: Pubkey,
    pub amount: u64,
    pub remaining_allowance: u64,
    pub totals: SessionTotals,
    pub timestamp: i64,
}

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRevoked {
    pub session_id: [u8; 16],
    pub parent: Pubkey,
    pub vault: Pubkey,
    pub delegate: Pubkey,
    pub totals: SessionTotals,
    pub revoked_at: i64,
}

#[event]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultCleaned {
    pub session_id: [u8; 16],
    pub parent: Pubkey,
    pub vault: Pubkey,
    pub delegate: Pubkey,
    pub mint: Pubkey,
    pub caller: Pubkey,
    pub reason: CleanupReason,
    /// Balance returned to the parent, in the vault's unit (lamports for SOL, tokens for SPL).
    pub returned_amount: u64,
    /// Rent lamports returned to the parent (what was left after the reward).
    pub rent_returned: u64,
    /// Lamports paid to `caller`, taken from the reclaimed rent.
    pub reward: u64,
    pub totals: SessionTotals,
    pub timestamp: i64,
}
