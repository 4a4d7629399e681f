//! The program reads and writes `Vault` with its own fixed-offset codec (`state/vault.rs`,
//! `state/codec.rs`) instead of the Borsh code `#[account]` would generate: it must give exactly
//! Anchor's bytes - discriminator `sha256("account:Vault")[..8]` then the Borsh encoding - and
//! refuse what Borsh and `#[account]` refuse.

use anchor_lang::error::ErrorCode as Anchor;
use anchor_lang::prelude::Pubkey;
use anchor_lang::{AccountDeserialize, AccountSerialize, AnchorSerialize, Discriminator, Owner, Space};
use ephemeral_vault::state::{Vault, VaultStatus};

// `#[account]` on a struct named `Vault` in this crate, for the discriminator Anchor derives.
anchor_lang::declare_id!("LcbuhnHozNqGewPGm62N4kqTirH9Enzkn6fMFJBLiwC");

mod anchor_generated {
    use anchor_lang::prelude::*;

    #[account]
    pub struct Vault {}
}

/// A small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn key(&mut self) -> Pubkey {
        let mut bytes = [0u8; 32];
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        Pubkey::new_from_array(bytes)
    }

    fn vault(&mut self) -> Vault {
        let mut session_id = [0u8; 16];
        session_id[..8].copy_from_slice(&self.next().to_le_bytes());
        session_id[8..].copy_from_slice(&self.next().to_le_bytes());
        Vault {
            parent: self.key(),
            delegate: self.key(),
            session_id,
            mint: self.key(),
            token_program: self.key(),
            approved_amount: self.next(),
            per_trade_cap: self.next(),
            total_deposited: self.next(),
            total_spent: self.next(),
            total_withdrawn: self.next(),
            total_fee_top_ups: self.next(),
            trade_count: self.next(),
            last_trade_id: self.next(),
            destinations: [self.key(), self.key(), self.key(), self.key()],
            destination_count: self.next() as u8,
            created_at: self.next() as i64,
            expires_at: self.next() as i64,
            last_activity: self.next() as i64,
            revoked_at: self.next() as i64,
            delegate_rotations: self.next() as u32,
            status: if self.next() % 2 == 0 { VaultStatus::Active } else { VaultStatus::Revoked },
            bump: self.next() as u8,
            token_account_bump: self.next() as u8,
        }
    }
}

/// What `#[account]` writes: the discriminator, then the Borsh encoding.
fn anchors_bytes(vault: &Vault) -> Vec<u8> {
    let mut bytes = Vault::DISCRIMINATOR.to_vec();
    vault.serialize(&mut bytes).unwrap();
    bytes
}

fn ours(vault: &Vault) -> Vec<u8> {
    let mut bytes = vec![];
    vault.try_serialize(&mut bytes).unwrap();
    bytes
}

#[test]
fn discriminator_owner_and_size_are_anchors() {
    assert_eq!(Vault::DISCRIMINATOR, anchor_generated::Vault::DISCRIMINATOR);
    assert_eq!(ID, ephemeral_vault::ID);
    assert_eq!(Vault::owner(), ephemeral_vault::ID);
    assert_eq!(Vault::SPACE, 8 + Vault::INIT_SPACE);
    assert_eq!(Vault::SPACE, 384);
}

#[test]
fn encodes_and_decodes_as_borsh() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..500 {
        let vault = rng.vault();
        let expected = anchors_bytes(&vault);
        assert_eq!(expected.len(), Vault::SPACE);
        assert_eq!(ours(&vault), expected);
        let decoded = Vault::try_deserialize(&mut expected.as_slice()).unwrap();
        assert_eq!(anchors_bytes(&decoded), expected);
        assert_eq!(format!("{decoded:?}"), format!("{vault:?}"));
        // Trailing bytes are ignored, as Anchor's generated code does.
        let mut longer = expected.clone();
        longer.extend_from_slice(&[7; 16]);
        assert_eq!(anchors_bytes(&Vault::try_deserialize(&mut longer.as_slice()).unwrap()), expected);
    }
}

#[test]
fn refuses_what_anchor_refuses() {
    let vault = Rng(42).vault();
    let bytes = anchors_bytes(&vault);
    let code = |bytes: &[u8]| match Vault::try_deserialize(&mut &bytes[..]) {
        Err(anchor_lang::error::Error::AnchorError(e)) => e.error_code_number,
        other => panic!("expected an Anchor error, got {other:?}"),
    };
    assert_eq!(code(&bytes[..7]), Anchor::AccountDiscriminatorNotFound as u32);
    let mut other = bytes.clone();
    other[0] ^= 1;
    assert_eq!(code(&other), Anchor::AccountDiscriminatorMismatch as u32);
    assert_eq!(code(&bytes[..Vault::SPACE - 1]), Anchor::AccountDidNotDeserialize as u32);
    // The status byte (offset 8 + 373) holds a variant index: anything but 0 or 1 is refused.
    let mut bad_status = bytes.clone();
    bad_status[8 + 373] = 2;
    assert_eq!(code(&bad_status), Anchor::AccountDidNotDeserialize as u32);
    assert!(anchor_lang::AnchorDeserialize::deserialize(&mut &bad_status[8..]).map(|_: Vault| ()).is_err());
    // Without the discriminator check, the fields alone.
    let decoded = Vault::try_deserialize_unchecked(&mut bytes.as_slice()).unwrap();
    assert_eq!(anchors_bytes(&decoded), bytes);
}
