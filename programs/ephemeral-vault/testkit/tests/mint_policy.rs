//! The Token-2022 mint policy (`mint_policy.rs`): every refused extension is refused when a
//! session is created, and a mint re-created at the same address with other extensions is
//! refused on the next deposit. The accepted extensions' success paths are in `lifecycle.rs`.

use ephemeral_vault::errors::VaultError;
use ephemeral_vault::sdk;
use ephemeral_vault_testkit::*;
use solana_instruction_error::InstructionError;
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;

/// Creating a session on a mint of `kind` is refused with `UnsupportedMintExtension`, nothing is
/// created, and the program's log names the first refused type number.
fn refused_at_creation(kind: MintKind, refused_type: u16) {
    let mut w = VaultWorld::new();
    let mint = w.create_mint(kind, 6);
    let s = w.token_session(&mint, 0);
    let parent_before = w.lamports(&s.parent.pubkey());
    let outcome = w.create(&s, session_args(s.session.session_id));
    let logs = match &outcome {
        Err(refused) => refused.meta.logs.clone(),
        Ok(_) => vec![],
    };
    assert_vault_error(outcome, VaultError::UnsupportedMintExtension);
    let expected = format!("mint extension type {refused_type} is not accepted");
    assert!(logs.iter().any(|l| l.contains(&expected)), "no '{expected}' in {logs:#?}");
    assert!(w.account(&s.vault()).is_none(), "vault created");
    assert!(w.account(&s.session.vault_token_account().unwrap()).is_none(), "vault token account created");
    // Only the transaction fee left the parent: no rent was taken for accounts.
    assert!(parent_before - w.lamports(&s.parent.pubkey()) < 10_000);
}

fn with(extension: MintExtension) -> MintKind {
    MintKind::Token2022With(extension)
}

#[test]
fn permanent_delegate_mints_are_refused() {
    refused_at_creation(MintKind::Token2022PermanentDelegate, 12);
}

#[test]
fn pausable_mints_are_refused() {
    refused_at_creation(with(MintExtension::Pausable), 26);
}

#[test]
fn transfer_hook_mints_are_refused() {
    refused_at_creation(with(MintExtension::TransferHook), 14);
}

#[test]
fn non_transferable_mints_are_refused() {
    refused_at_creation(with(MintExtension::NonTransferable), 9);
}

#[test]
fn default_account_state_mints_are_refused_frozen_or_not() {
    refused_at_creation(with(MintExtension::DefaultFrozen), 6);
    refused_at_creation(with(MintExtension::DefaultInitialized), 6);
}

#[test]
fn confidential_transfer_mints_are_refused() {
    refused_at_creation(with(MintExtension::ConfidentialTransfer), 4);
}

#[test]
fn confidential_transfer_fee_mints_are_refused() {
    // With the transfer fee (accepted) and confidential transfers (refused too) it needs.
    refused_at_creation(with(MintExtension::ConfidentialTransferFee), 16);
}

#[test]
fn confidential_mint_burn_mints_are_refused() {
    refused_at_creation(with(MintExtension::ConfidentialMintBurn), 24);
}

#[test]
fn extensions_unknown_to_this_build_are_refused() {
    // PermissionedBurn (28) came to Token-2022 after the token library this program is built
    // with. At creation Anchor already fails to size the vault's token account from a type its
    // library cannot name; the policy's own refusal by number shows on deposit (below).
    let mut w = VaultWorld::new();
    let mint = w.create_mint(with(MintExtension::PermissionedBurn), 6);
    let s = w.token_session(&mint, 0);
    let refused =
        w.create(&s, session_args(s.session.session_id)).expect_err("a mint with an unknown extension was accepted");
    assert_eq!(refused.err, TransactionError::InstructionError(0, InstructionError::InvalidAccountData));
    assert!(w.account(&s.vault()).is_none(), "vault created");
}

/// Opens a session on a mint with a close authority, takes every token back out and burns
/// them, closes the mint and re-creates it at the same address as `recreated`. Returns the
/// session with 1,000,000 tokens of the new mint in the parent's account.
fn session_on_a_recreated_mint(w: &mut VaultWorld, recreated: MintKind) -> TestSession {
    let key = Keypair::new();
    let original = w.create_mint_at(&key, with(MintExtension::CloseAuthority), 6);
    let s = w.open_token_session(&original, 1_000_000);
    let parent_ta = s.parent_token_account.unwrap();
    let vault_ta = s.session.vault_token_account().unwrap();
    w.send(&[sdk::withdraw(&s.session, Some(parent_ta), 1_000_000)], &s.parent, &[]).expect("withdraw everything");
    w.burn(&original, &parent_ta, &s.parent, 2_000_000);
    assert_eq!(w.supply(&original), 0);
    w.close_mint(&original);
    assert!(w.account(&key.pubkey()).is_none(), "mint closed");

    let replacement = w.create_mint_at(&key, recreated, 6);
    assert_eq!(replacement.address, original.address);
    w.mint_to(&replacement, &parent_ta, 1_000_000);
    assert_eq!(w.token_balance(&parent_ta), 1_000_000);
    assert_eq!(w.token_balance(&vault_ta), 0);
    s
}

#[test]
fn a_mint_recreated_with_a_permanent_delegate_is_refused_on_deposit() {
    let mut w = VaultWorld::new();
    let s = session_on_a_recreated_mint(&mut w, MintKind::Token2022PermanentDelegate);
    let parent_ta = s.parent_token_account.unwrap();
    let vault_ta = s.session.vault_token_account().unwrap();
    let books_before = w.vault(&s.vault()).unwrap();

    // The new mint's permanent delegate (its authority) could take whatever the vault received
    // while the books counted it: the deposit must not happen.
    assert_vault_error(
        w.send(&[sdk::deposit(&s.session, Some(parent_ta), 1_000_000)], &s.parent, &[]),
        VaultError::UnsupportedMintExtension,
    );
    assert_eq!(w.token_balance(&vault_ta), 0);
    assert_eq!(w.token_balance(&parent_ta), 1_000_000);
    let books = w.vault(&s.vault()).unwrap();
    assert_eq!(
        (books.total_deposited, books.total_withdrawn),
        (books_before.total_deposited, books_before.total_withdrawn)
    );

    // Outflows are not refused, so the parent can still close the session and get its rent back.
    w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]).expect("revoke");
    let caller = w.new_wallet(LAMPORTS_PER_SOL);
    w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), Some(parent_ta))], &caller, &[])
        .expect("cleanup after the mint changed");
    assert!(w.account(&s.vault()).is_none());
    assert!(w.account(&vault_ta).is_none());
}

#[test]
fn a_mint_recreated_with_an_extension_unknown_to_this_build_is_refused_on_deposit() {
    let mut w = VaultWorld::new();
    let s = session_on_a_recreated_mint(&mut w, with(MintExtension::PermissionedBurn));
    let outcome = w.send(&[sdk::deposit(&s.session, s.parent_token_account, 1_000_000)], &s.parent, &[]);
    let logs = outcome.as_ref().err().map(|r| r.meta.logs.clone()).unwrap_or_default();
    assert_vault_error(outcome, VaultError::UnsupportedMintExtension);
    let expected = format!("mint extension type {PERMISSIONED_BURN_TYPE} is not accepted");
    assert!(logs.iter().any(|l| l.contains(&expected)), "{logs:#?}");
    assert_eq!(w.token_balance(&s.session.vault_token_account().unwrap()), 0);
}

#[test]
fn a_mint_recreated_with_accepted_extensions_still_takes_deposits() {
    // The check on deposit refuses what changed for the worse, not the change itself.
    let mut w = VaultWorld::new();
    let s = session_on_a_recreated_mint(&mut w, with(MintExtension::Metadata));
    let landed = w
        .send(&[sdk::deposit(&s.session, s.parent_token_account, 400_000)], &s.parent, &[])
        .expect("deposit of the re-created, harmless mint");
    assert!(matches!(
        only_event(&landed),
        sdk::VaultEvent::Deposited(e) if e.received == 400_000
    ));
    assert_eq!(w.token_balance(&s.session.vault_token_account().unwrap()), 400_000);
}
