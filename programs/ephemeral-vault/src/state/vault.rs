use anchor_lang::prelude::*;
use anchor_lang::{AccountDeserialize, AccountSerialize, Discriminator, Owner};

use crate::constants::MAX_DESTINATIONS;
use crate::errors::VaultError;
use crate::state::codec::{put, take};
use crate::state::{Config, VAULT_SEED};

/// Lifecycle of a vault. `Expired` is not stored: it follows from the clock and `expires_at`.
/// A cleaned vault no longer exists (its account is closed).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub enum VaultStatus {
    Active,
    Revoked,
}

/// Why a vault was cleaned up; the database's `cleanup_reason` uses the same words.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CleanupReason {
    Expired,
    ManualRevoke,
    Emergency,
}

/// One trading session: PDA at `["vault", parent, session_id]`.
///
/// SOL sessions keep their balance in this account's lamports above its rent-exempt minimum.
/// Token sessions keep it in the token account at `["vault_token", vault]`, owned by this PDA.
///
/// Size: 8 (discriminator) + `Vault::INIT_SPACE` (= 32*4 + 16 + 8*8 + 32*4 + 1 + 8*4 + 4 + 1
/// + 1 + 1 = 376) = 384 bytes. Field order is stable: the cleanup bot filters on `status`.
// The account traits `#[account]` would generate are written out below (same discriminator,
// owner and bytes) so that the program reads and writes the vault with fixed-offset copies
// instead of Borsh's field-by-field writer; the Borsh derives stay for the IDL and for
// off-chain decoders. `tests/vault_codec.rs` checks both give the same bytes.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, InitSpace, Debug)]
pub struct Vault {
    /// The wallet that opened the session and owns every unit in it.
    pub parent: Pubkey,
    /// The ephemeral wallet currently allowed to trade.
    pub delegate: Pubkey,
    /// The session's UUID, as the database's `session_id` stores it.
    pub session_id: [u8; 16],
    /// Token mint; `Pubkey::default()` for a native SOL session.
    pub mint: Pubkey,
    /// Token program owning `mint`; `Pubkey::default()` for a native SOL session.
    pub token_program: Pubkey,
    /// Most the delegate may ever spend (trades, their fees, and fee top-ups).
    pub approved_amount: u64,
    /// Most one trade (amount plus fee) may spend.
    pub per_trade_cap: u64,
    /// What the vault actually received from the parent (after any transfer fee).
    pub total_deposited: u64,
    /// What the delegate has spent: trade amounts, trade fees and fee top-ups.
    pub total_spent: u64,
    /// What the parent took back before cleanup.
    pub total_withdrawn: u64,
    /// The part of `total_spent` that went to the delegate as fee top-ups.
    pub total_fee_top_ups: u64,
    pub trade_count: u64,
    /// Trade ids must increase, so a retried order cannot execute twice.
    pub last_trade_id: u64,
    /// Allowed destinations (wallets, or token-account owners); unused slots are default keys.
    pub destinations: [Pubkey; MAX_DESTINATIONS],
    /// How many of `destinations` are in use; 0 means any destination is allowed.
    pub destination_count: u8,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_activity: i64,
    /// 0 while active; the revocation time once revoked.
    pub revoked_at: i64,
    /// How many times the parent has rotated the delegate.
    pub delegate_rotations: u32,
    pub status: VaultStatus,
    pub bump: u8,
    /// Bump of the vault token account; 0 for a SOL session.
    pub token_account_bump: u8,
}

impl Discriminator for Vault {
    /// `sha256("account:Vault")[..8]`, what `#[account]` derives (checked in the tests).
    const DISCRIMINATOR: &'static [u8] = &[211, 8, 232, 43, 2, 152, 117, 119];
}

impl Owner for Vault {
    fn owner() -> Pubkey {
        crate::ID
    }
}

impl AccountSerialize for Vault {
    fn try_serialize<W: std::io::Write>(&self, writer: &mut W) -> Result<()> {
        let bytes = self.to_account_bytes()?;
        writer.write_all(&bytes).map_err(|_| error!(ErrorCode::AccountDidNotSerialize))
    }
}

impl AccountDeserialize for Vault {
    fn try_deserialize(buf: &mut &[u8]) -> Result<Self> {
        let Some((disc, _)) = buf.split_first_chunk::<8>() else {
            return err!(ErrorCode::AccountDiscriminatorNotFound);
        };
        if disc.as_slice() != Vault::DISCRIMINATOR {
            return Err(error!(ErrorCode::AccountDiscriminatorMismatch).with_account_name("Vault"));
        }
        Self::try_deserialize_unchecked(buf)
    }

    fn try_deserialize_unchecked(buf: &mut &[u8]) -> Result<Self> {
        let fields = buf
            .get(8..)
            .and_then(|rest| rest.split_first_chunk::<{ Vault::INIT_SPACE }>())
            .map(|(fields, _)| fields)
            .ok_or_else(|| error!(ErrorCode::AccountDidNotDeserialize))?;
        Vault::from_fields(fields).ok_or_else(|| error!(ErrorCode::AccountDidNotDeserialize))
    }
}

impl Vault {
    pub const SPACE: usize = 8 + Vault::INIT_SPACE;

    /// The account's bytes: discriminator, then the fields in Borsh's layout (declaration order,
    /// little-endian integers, the status as its variant index).
    fn to_account_bytes(&self) -> Result<[u8; Vault::SPACE]> {
        let mut out = [0u8; Vault::SPACE];
        self.write_account_bytes(&mut out).ok_or_else(|| error!(ErrorCode::AccountDidNotSerialize))?;
        Ok(out)
    }

    #[inline(always)]
    fn write_account_bytes(&self, out: &mut [u8; Vault::SPACE]) -> Option<()> {
        let mut w: &mut [u8] = out;
        let w = &mut w;
        put(w, <[u8; 8]>::try_from(Vault::DISCRIMINATOR).ok()?)?;
        put(w, self.parent.to_bytes())?;
        put(w, self.delegate.to_bytes())?;
        put(w, self.session_id)?;
        put(w, self.mint.to_bytes())?;
        put(w, self.token_program.to_bytes())?;
        put(w, self.approved_amount.to_le_bytes())?;
        put(w, self.per_trade_cap.to_le_bytes())?;
        put(w, self.total_deposited.to_le_bytes())?;
        put(w, self.total_spent.to_le_bytes())?;
        put(w, self.total_withdrawn.to_le_bytes())?;
        put(w, self.total_fee_top_ups.to_le_bytes())?;
        put(w, self.trade_count.to_le_bytes())?;
        put(w, self.last_trade_id.to_le_bytes())?;
        for destination in &self.destinations {
            put(w, destination.to_bytes())?;
        }
        put(w, [self.destination_count])?;
        put(w, self.created_at.to_le_bytes())?;
        put(w, self.expires_at.to_le_bytes())?;
        put(w, self.last_activity.to_le_bytes())?;
        put(w, self.revoked_at.to_le_bytes())?;
        put(w, self.delegate_rotations.to_le_bytes())?;
        let status = match self.status {
            VaultStatus::Active => 0,
            VaultStatus::Revoked => 1,
        };
        put(w, [status])?;
        put(w, [self.bump])?;
        put(w, [self.token_account_bump])
    }

    /// The fields from their Borsh bytes (after the discriminator); `None` for an unknown status.
    #[inline(always)]
    fn from_fields(fields: &[u8; Vault::INIT_SPACE]) -> Option<Self> {
        let mut r: &[u8] = fields;
        let r = &mut r;
        let key = |r: &mut &[u8]| take::<32>(r).map(Pubkey::new_from_array);
        let u64_at = |r: &mut &[u8]| take::<8>(r).map(u64::from_le_bytes);
        let i64_at = |r: &mut &[u8]| take::<8>(r).map(i64::from_le_bytes);
        Some(Vault {
            parent: key(r)?,
            delegate: key(r)?,
            session_id: take::<16>(r)?,
            mint: key(r)?,
            token_program: key(r)?,
            approved_amount: u64_at(r)?,
            per_trade_cap: u64_at(r)?,
            total_deposited: u64_at(r)?,
            total_spent: u64_at(r)?,
            total_withdrawn: u64_at(r)?,
            total_fee_top_ups: u64_at(r)?,
            trade_count: u64_at(r)?,
            last_trade_id: u64_at(r)?,
            destinations: [key(r)?, key(r)?, key(r)?, key(r)?],
            destination_count: take::<1>(r)?[0],
            created_at: i64_at(r)?,
            expires_at: i64_at(r)?,
            last_activity: i64_at(r)?,
            revoked_at: i64_at(r)?,
            delegate_rotations: take::<4>(r).map(u32::from_le_bytes)?,
            status: match take::<1>(r)?[0] {
                0 => VaultStatus::Active,
                1 => VaultStatus::Revoked,
                _ => return None,
            },
            bump: take::<1>(r)?[0],
            token_account_bump: take::<1>(r)?[0],
        })
    }

    pub fn is_native(&self) -> bool {
        self.mint == Pubkey::default()
    }

    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }

    pub fn allowed_destinations(&self) -> &[Pubkey] {
        let count = usize::from(self.destination_count).min(MAX_DESTINATIONS);
        &self.destinations[..count]
    }

    /// Seeds to sign for the vault in CPIs.
    pub fn signer_seeds(&self) -> [&[u8]; 4] {
        [VAULT_SEED, self.parent.as_ref(), self.session_id.as_ref(), core::slice::from_ref(&self.bump)]
    }

    /// Everything a delegate action needs: the session is live and the program not paused.
    pub fn require_delegate_may_act(&self, config: &Config, now: i64) -> Result<()> {
        config.require_not_paused()?;
        self.require_parent_may_change(now)
    }

    /// Rotating the delegate or adding funds makes sense only while the session is live.
    pub fn require_parent_may_change(&self, now: i64) -> Result<()> {
        require!(self.status == VaultStatus::Active, VaultError::SessionRevoked);
        require!(!self.is_expired(now), VaultError::SessionExpired);
        Ok(())
    }

    /// What the delegate may still spend.
    pub fn remaining_allowance(&self) -> Result<u64> {
        self.approved_amount.checked_sub(self.total_spent).ok_or_else(|| error!(VaultError::InvariantViolated))
    }

    /// What the vault holds by its own books: deposits less spending and withdrawals.
    pub fn book_balance(&self) -> Result<u64> {
        self.total_deposited
            .checked_sub(self.total_spent)
            .and_then(|v| v.checked_sub(self.total_withdrawn))
            .ok_or_else(|| error!(VaultError::InvariantViolated))
    }

    /// Counts `amount` against the approved cap.
    pub fn record_spend(&mut self, amount: u64) -> Result<()> {
        require!(amount <= self.remaining_allowance()?, VaultError::ApprovedAmountExceeded);
        require!(amount <= self.book_balance()?, VaultError::InsufficientVaultBalance);
        self.total_spent = self.total_spent.checked_add(amount).ok_or(VaultError::MathOverflow)?;
        Ok(())
    }

    pub fn record_deposit(&mut self, received: u64) -> Result<()> {
        self.total_deposited = self.total_deposited.checked_add(received).ok_or(VaultError::MathOverflow)?;
        Ok(())
    }

    pub fn record_withdrawal(&mut self, amount: u64) -> Result<()> {
        require!(amount <= self.book_balance()?, VaultError::InsufficientVaultBalance);
        self.total_withdrawn = self.total_withdrawn.checked_add(amount).ok_or(VaultError::MathOverflow)?;
        Ok(())
    }

    pub fn touch(&mut self, now: i64) {
        self.last_activity = self.last_activity.max(now);
    }

    /// What must hold after every instruction that changes a vault.
    pub fn invariant(&self) -> Result<()> {
        require!(self.total_spent <= self.approved_amount, VaultError::InvariantViolated);
        require!(self.total_fee_top_ups <= self.total_spent, VaultError::InvariantViolated);
        let outflow = self.total_spent.checked_add(self.total_withdrawn).ok_or(VaultError::InvariantViolated)?;
        require!(outflow <= self.total_deposited, VaultError::InvariantViolated);
        require!(self.per_trade_cap > 0 && self.per_trade_cap <= self.approved_amount, VaultError::InvariantViolated);
        require!(usize::from(self.destination_count) <= MAX_DESTINATIONS, VaultError::InvariantViolated);
        require!(
            self.expires_at > self.created_at && self.last_activity >= self.created_at,
            VaultError::InvariantViolated
        );
        let status_consistent = match self.status {
            VaultStatus::Active => self.revoked_at == 0,
            VaultStatus::Revoked => self.revoked_at >= self.created_at,
        };
        require!(status_consistent, VaultError::InvariantViolated);
        require!(self.is_native() == (self.token_program == Pubkey::default()), VaultError::InvariantViolated);
        require!(self.delegate != self.parent && self.delegate != Pubkey::default(), VaultError::InvariantViolated);
        Ok(())
    }

    /// The reason a cleanup is allowed now, or an error if it is not.
    pub fn cleanup_reason(&self, config: &Config, now: i64) -> Result<CleanupReason> {
        if self.status == VaultStatus::Revoked {
            Ok(CleanupReason::ManualRevoke)
        } else if self.is_expired(now) {
            Ok(CleanupReason::Expired)
        } else if config.paused {
            Ok(CleanupReason::Emergency)
        } else {
            err!(VaultError::CleanupNotAllowed)
        }
    }
}
