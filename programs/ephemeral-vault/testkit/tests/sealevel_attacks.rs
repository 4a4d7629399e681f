//! One test per coral-xyz/sealevel-attacks class that applies to this program, each showing the
//! attack fails. (Class 5, arbitrary CPI, is tested through the token program account; the
//! program makes no other CPI whose target a caller chooses.)

use anchor_lang::error::ErrorCode as Anchor;
use anchor_lang::prelude::Pubkey;
use ephemeral_vault::errors::VaultError;
use ephemeral_vault::sdk;
use ephemeral_vault::state::{Vault, VAULT_SEED};
use ephemeral_vault_testkit::*;
use solana_signer::Signer;

const SOL: u64 = LAMPORTS_PER_SOL;

/// 0 - signer authorization: naming the delegate without its signature.
#[test]
fn signer_authorization() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(2 * SOL);
    let thief = w.new_wallet(SOL);
    let mut ix = sdk::execute_trade(
        &s.session,
        s.delegate.pubkey(),
        thief.pubkey(),
        None,
        ephemeral_vault::instructions::ExecuteTradeArgs { trade_id: 1, amount: SOL, fee: 0 },
    );
    ix.accounts[0].is_signer = false;
    assert_anchor_error(w.send(&[ix], &thief, &[]), Anchor::AccountNotSigner);
    let mut ix = sdk::withdraw(&s.session, None, SOL);
    ix.accounts[0].is_signer = false;
    assert_anchor_error(w.send(&[ix], &thief, &[]), Anchor::AccountNotSigner);
    assert_eq!(w.vault(&s.vault()).unwrap().total_spent, 0);
}

/// 1 - account data matching: a real delegate of one session using another session's vault.
#[test]
fn account_data_matching() {
    let mut w = VaultWorld::new();
    let victim = w.open_sol_session(2 * SOL);
    let attacker = w.open_sol_session(SOL);
    let dest = w.new_wallet(SOL);
    assert_vault_error(w.trade(&victim, &attacker.delegate, dest.pubkey(), None, 1, SOL, 0), VaultError::NotDelegate);
}

/// 2 - owner checks: a vault-shaped account not owned by the program.
#[test]
fn owner_checks() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(2 * SOL);
    let mut account = w.svm.get_account(&s.vault()).unwrap();
    account.owner = Pubkey::new_unique();
    w.svm.set_account(s.vault(), account).unwrap();
    let dest = w.new_wallet(SOL);
    assert_anchor_error(w.trade(&s, &s.delegate, dest.pubkey(), None, 1, SOL, 0), Anchor::AccountOwnedByWrongProgram);
}

/// 3 - type cosplay: the config account (also owned by the program) passed as a vault.
#[test]
fn type_cosplay() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(2 * SOL);
    let dest = w.new_wallet(SOL);
    let mut ix = sdk::execute_trade(
        &s.session,
        s.delegate.pubkey(),
        dest.pubkey(),
        None,
        ephemeral_vault::instructions::ExecuteTradeArgs { trade_id: 1, amount: SOL, fee: 0 },
    );
    ix.accounts[2].pubkey = sdk::config_address();
    assert_anchor_error(w.send(&[ix], &s.delegate, &[]), Anchor::AccountDiscriminatorMismatch);
}

/// 4 - initialization: re-initialising a live vault to take it over.
#[test]
fn initialization() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(2 * SOL);
    let before = w.vault(&s.vault()).unwrap();
    let again = w.create(&s, session_args(s.session.session_id));
    assert!(again.is_err());
    let after = w.vault(&s.vault()).unwrap();
    assert_eq!(after.delegate, before.delegate);
    assert_eq!(after.total_deposited, before.total_deposited);
}

/// 5 - arbitrary CPI: a fake program in the token program's place.
#[test]
fn arbitrary_cpi() {
    let mut w = VaultWorld::new();
    let mint = w.create_mint(MintKind::Spl, 6);
    let s = w.open_token_session(&mint, 1_000_000);
    let mut ix = sdk::withdraw(&s.session, s.parent_token_account, 1_000);
    let fake = Pubkey::new_unique();
    ix.accounts[5].pubkey = fake;
    assert_anchor_error(w.send(&[ix], &s.parent, &[]), Anchor::InvalidProgramId);
    assert_eq!(w.token_balance(&s.session.vault_token_account().unwrap()), 1_000_000);
}

/// 6 - duplicate mutable accounts: the vault paying itself.
#[test]
fn duplicate_mutable_accounts() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(2 * SOL);
    assert_vault_error(w.trade(&s, &s.delegate, s.vault(), None, 1, SOL, 0), VaultError::InvalidDestination);
    let mint = w.create_mint(MintKind::Spl, 6);
    let t = w.open_token_session(&mint, 1_000_000);
    let vault_ta = t.session.vault_token_account();
    // Anchor 1.x refuses the same writable token account twice before the handler runs.
    assert_anchor_error(
        w.trade(&t, &t.delegate, t.vault(), vault_ta, 1, 1_000, 0),
        Anchor::ConstraintDuplicateMutableAccount,
    );
    assert_eq!(w.token_balance(&vault_ta.unwrap()), 1_000_000);
}

/// 7 - bump seed canonicalization: a vault at a non-canonical bump of the same seeds.
#[test]
fn bump_seed_canonicalization() {
    let mut w = VaultWorld::new();
    let s = w.sol_session();
    let parent = s.parent.pubkey();
    let seeds: [&[u8]; 3] = [VAULT_SEED, parent.as_ref(), &s.session.session_id];
    let (canonical, canonical_bump) = Pubkey::find_program_address(&seeds, &ephemeral_vault::ID);
    let other = (0..canonical_bump)
        .rev()
        .find_map(|bump| {
            Pubkey::create_program_address(&[seeds[0], seeds[1], seeds[2], &[bump]], &ephemeral_vault::ID).ok()
        })
        .expect("a non-canonical bump");
    assert_ne!(other, canonical);
    let mut ix = sdk::create_session(
        s.parent.pubkey(),
        s.delegate.pubkey(),
        s.session.asset,
        None,
        session_args(s.session.session_id),
    );
    ix.accounts[2].pubkey = other;
    assert_anchor_error(w.send(&[ix], &s.parent, &[]), Anchor::ConstraintSeeds);
}

/// 8 - PDA sharing: one session's vault signing for another session's token account.
#[test]
fn pda_sharing() {
    let mut w = VaultWorld::new();
    let mint = w.create_mint(MintKind::Spl, 6);
    let victim = w.open_token_session(&mint, 5_000_000);
    let attacker = w.open_token_session(&mint, 1);
    let mut ix = sdk::withdraw(&attacker.session, attacker.parent_token_account, 5_000_000);
    ix.accounts[3].pubkey = victim.session.vault_token_account().unwrap();
    assert_anchor_error(w.send(&[ix], &attacker.parent, &[]), Anchor::ConstraintSeeds);
    assert_eq!(w.token_balance(&victim.session.vault_token_account().unwrap()), 5_000_000);
}

/// 9 - closing accounts: refunding a cleaned vault in the same transaction does not revive it.
#[test]
fn closing_accounts() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(SOL);
    w.advance(3_600);
    let caller = w.new_wallet(SOL);
    let revive =
        anchor_lang::solana_program::system_instruction::transfer(&caller.pubkey(), &s.vault(), w.rent(Vault::SPACE));
    w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), None), revive], &caller, &[])
        .expect("cleanup then refund");
    let account = w.svm.get_account(&s.vault()).unwrap();
    assert_ne!(account.owner, ephemeral_vault::ID, "the refunded account is not the program's");
    assert!(account.data.iter().all(|b| *b == 0));
    assert!(w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), None)], &caller, &[]).is_err());
    assert!(w.trade(&s, &s.delegate, caller.pubkey(), None, 1, 1, 0).is_err());
}
