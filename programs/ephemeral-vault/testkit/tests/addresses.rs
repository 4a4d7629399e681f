//! What the re-derivation of the config and vault PDAs used to protect, still protected without
//! it (issue 14).
//!
//! The instructions no longer call `create_program_address` for the config (its key is compared
//! with the compile-time constant `CONFIG_ADDRESS`) nor for the vault (bound by the owner and
//! discriminator checks of `Account<Vault>` plus `has_one` on the parent or the delegate). That
//! is sound only if no program-owned Config or Vault can exist anywhere but at its PDA, and if a
//! vault's stored seeds (parent, session id, bump) never change: these tests show both, and that
//! the events, now emitted without `emit_cpi!`, keep Anchor's bytes and stay unforgeable.

use anchor_lang::error::ErrorCode as Anchor;
use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::{AccountMeta, Instruction};
use anchor_lang::{Discriminator, Event};
use ephemeral_vault::errors::VaultError;
use ephemeral_vault::events::TradeExecuted;
use ephemeral_vault::sdk::{self, VaultEvent};
use ephemeral_vault::state::{Vault, CONFIG_ADDRESS, CONFIG_ADDRESS_AND_BUMP, CONFIG_SEED, VAULT_SEED};
use ephemeral_vault_testkit::*;
use solana_keypair::Keypair;
use solana_signer::Signer;

const SOL: u64 = LAMPORTS_PER_SOL;

#[test]
fn the_config_constant_is_the_config_pda() {
    let (address, bump) = Pubkey::find_program_address(&[CONFIG_SEED], &ephemeral_vault::ID);
    assert_eq!(CONFIG_ADDRESS, address);
    assert_eq!(CONFIG_ADDRESS_AND_BUMP, (address, bump));
    assert_eq!(sdk::config_address(), address);
}

/// `initialize_config` is the only instruction that creates a Config, and only at the PDA.
#[test]
fn no_instruction_creates_a_config_anywhere_but_at_its_pda() {
    let mut w = VaultWorld::deployed();
    let admin = w.admin.insecure_clone();
    let elsewhere = Keypair::new();
    let mut ix = sdk::initialize_config(admin.pubkey(), default_params());
    ix.accounts[1] = AccountMeta::new(elsewhere.pubkey(), true);
    assert_anchor_error(w.send(&[ix], &admin, &[&elsewhere]), Anchor::ConstraintSeeds);
    let mut ix = sdk::initialize_config(admin.pubkey(), default_params());
    ix.accounts[1].pubkey = sdk::vault_address(&admin.pubkey(), &[0; 16]);
    assert_anchor_error(w.send(&[ix], &admin, &[]), Anchor::ConstraintSeeds);
    assert!(w.account(&elsewhere.pubkey()).is_none());

    w.send(&[sdk::initialize_config(admin.pubkey(), default_params())], &admin, &[]).expect("initialize_config");
    assert_eq!(w.account(&CONFIG_ADDRESS).expect("config").owner, ephemeral_vault::ID);
    assert!(w.send(&[sdk::initialize_config(admin.pubkey(), default_params())], &admin, &[]).is_err());
}

/// Were a second Config ever to exist (here planted by the test), no instruction would read it:
/// the constant address check refuses it as the seeds check did.
#[test]
fn a_config_anywhere_but_at_its_pda_is_refused() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(2 * SOL);
    let admin = w.admin.insecure_clone();
    w.send(&[sdk::set_paused(admin.pubkey(), true)], &admin, &[]).expect("pause");
    // An unpaused copy, with another admin, owned by the program at another address.
    let attacker = w.new_wallet(SOL);
    let mut copy = w.account(&CONFIG_ADDRESS).expect("config");
    copy.data[8..40].copy_from_slice(attacker.pubkey().as_ref());
    copy.data[40] = 0;
    let planted = Pubkey::new_unique();
    w.svm.set_account(planted, copy).expect("plant");

    let dest = w.new_wallet(SOL);
    let mut ix = sdk::execute_trade(
        &s.session,
        s.delegate.pubkey(),
        dest.pubkey(),
        None,
        ephemeral_vault::instructions::ExecuteTradeArgs { trade_id: 1, amount: SOL, fee: 0 },
    );
    ix.accounts[1].pubkey = planted;
    assert_anchor_error(w.send(&[ix], &s.delegate, &[]), Anchor::ConstraintAddress);
    let mut ix = sdk::deposit(&s.session, None, SOL);
    ix.accounts[1].pubkey = planted;
    assert_anchor_error(w.send(&[ix], &s.parent, &[]), Anchor::ConstraintAddress);
    let mut ix = sdk::set_paused(attacker.pubkey(), false);
    ix.accounts[1].pubkey = planted;
    assert_anchor_error(w.send(&[ix], &attacker, &[]), Anchor::ConstraintAddress);
    let mut ix = sdk::create_session(
        s.parent.pubkey(),
        s.delegate.pubkey(),
        s.session.asset,
        None,
        session_args(random_session_id()),
    );
    ix.accounts[1].pubkey = planted;
    assert_anchor_error(w.send(&[ix], &s.parent, &[]), Anchor::ConstraintAddress);
    assert!(w.config().paused);
    assert_eq!(w.vault(&s.vault()).unwrap().total_spent, 0);
}

/// `create_session` is the only instruction that creates a Vault, and only at the canonical PDA
/// of the parent who signs and the session id it stores.
#[test]
fn no_instruction_creates_a_vault_anywhere_but_at_its_pda() {
    let mut w = VaultWorld::new();
    let victim = w.open_sol_session(SOL);
    let s = w.sol_session();
    let create = |vault: AccountMeta| {
        let mut ix = sdk::create_session(
            s.parent.pubkey(),
            s.delegate.pubkey(),
            s.session.asset,
            None,
            session_args(s.session.session_id),
        );
        ix.accounts[2] = vault;
        ix
    };
    // A fresh keypair, signing: not the PDA.
    let keypair = Keypair::new();
    let outcome = w.send(&[create(AccountMeta::new(keypair.pubkey(), true))], &s.parent, &[&keypair]);
    assert_anchor_error(outcome, Anchor::ConstraintSeeds);
    assert!(w.account(&keypair.pubkey()).is_none());
    // The PDA of the same session id under another parent, and of another session id.
    let others = [
        sdk::vault_address(&victim.parent.pubkey(), &s.session.session_id),
        sdk::vault_address(&s.parent.pubkey(), &random_session_id()),
    ];
    for other in others {
        assert_anchor_error(w.send(&[create(AccountMeta::new(other, false))], &s.parent, &[]), Anchor::ConstraintSeeds);
        assert!(w.account(&other).is_none());
    }
    // (A non-canonical bump of the right seeds: sealevel_attacks::bump_seed_canonicalization.)
    w.create(&s, session_args(s.session.session_id)).expect("at the PDA");
    assert_eq!(w.account(&s.vault()).expect("vault").owner, ephemeral_vault::ID);
}

fn assert_at_its_pda(w: &VaultWorld, address: Pubkey) {
    let vault: Vault = w.vault(&address).expect("vault");
    let derived = Pubkey::create_program_address(
        &[VAULT_SEED, vault.parent.as_ref(), vault.session_id.as_ref(), &[vault.bump]],
        &ephemeral_vault::ID,
    )
    .expect("the stored seeds are a PDA");
    assert_eq!(derived, address, "the vault's stored seeds derive its own address");
    assert_eq!(
        Pubkey::find_program_address(&[VAULT_SEED, vault.parent.as_ref(), &vault.session_id], &ephemeral_vault::ID).1,
        vault.bump
    );
}

/// The vault's stored seeds are written once, by `create_session`, and no instruction changes
/// them: every vault stays at the PDA of its own fields, for SOL and token sessions.
#[test]
fn no_instruction_moves_a_vault_off_its_stored_seeds() {
    let mut w = VaultWorld::new();
    let mint = w.create_mint(MintKind::Token2022, 6);
    let sol = w.open_sol_session(2 * SOL);
    let token = w.open_token_session(&mint, 2_000_000);
    for s in [&sol, &token] {
        assert_at_its_pda(&w, s.vault());
        let dest = w.new_wallet(SOL);
        let dest_ta = s.mint.as_ref().map(|m| w.create_token_account(m, &dest.pubkey()));
        w.send(&[sdk::deposit(&s.session, s.parent_token_account, 1_000)], &s.parent, &[]).expect("deposit");
        w.trade(s, &s.delegate, dest.pubkey(), dest_ta, 1, 1_000, 0).expect("trade");
        if s.mint.is_none() {
            w.send(&[sdk::top_up_fees(&s.session, s.delegate.pubkey(), 1_000)], &s.delegate, &[]).expect("top up");
        }
        let next = w.new_wallet(SOL);
        w.send(&[sdk::approve_delegate(&s.session, next.pubkey())], &s.parent, &[]).expect("rotate");
        w.send(&[sdk::withdraw(&s.session, s.parent_token_account, 1_000)], &s.parent, &[]).expect("withdraw");
        w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]).expect("revoke");
        assert_at_its_pda(&w, s.vault());
        assert_eq!(w.vault(&s.vault()).unwrap().parent, s.parent.pubkey());
        assert_eq!(w.vault(&s.vault()).unwrap().session_id, s.session.session_id);
    }
}

/// A vault is bound to its parent and delegate by `has_one`, which now carries what the seeds
/// check also caught: another wallet naming itself parent or delegate of someone else's vault.
#[test]
fn another_parent_or_delegate_is_refused_by_has_one() {
    let mut w = VaultWorld::new();
    let mint = w.create_mint(MintKind::Spl, 6);
    let victim = w.open_token_session(&mint, 1_000_000);
    let attacker = w.open_token_session(&mint, 1_000);
    // The attacker's own instructions, pointed at the victim's vault and token account.
    let retarget = |mut ix: Instruction| {
        for meta in &mut ix.accounts {
            if meta.pubkey == attacker.vault() {
                meta.pubkey = victim.vault();
            } else if Some(meta.pubkey) == attacker.session.vault_token_account() {
                meta.pubkey = victim.session.vault_token_account().unwrap();
            }
        }
        ix
    };
    let ix = retarget(sdk::withdraw(&attacker.session, attacker.parent_token_account, 1_000));
    assert_vault_error(w.send(&[ix], &attacker.parent, &[]), VaultError::Unauthorized);
    let ix = retarget(sdk::revoke_session(&attacker.session));
    assert_vault_error(w.send(&[ix], &attacker.parent, &[]), VaultError::Unauthorized);
    let dest_ta = w.create_token_account(&mint, &attacker.delegate.pubkey());
    let ix = retarget(sdk::execute_trade(
        &attacker.session,
        attacker.delegate.pubkey(),
        attacker.delegate.pubkey(),
        Some(dest_ta),
        ephemeral_vault::instructions::ExecuteTradeArgs { trade_id: 1, amount: 1_000, fee: 0 },
    ));
    assert_vault_error(w.send(&[ix], &attacker.delegate, &[]), VaultError::NotDelegate);
    w.advance(3_600);
    let ix = retarget(sdk::cleanup_vault(&attacker.session, attacker.parent.pubkey(), attacker.parent_token_account));
    assert_vault_error(w.send(&[ix], &attacker.parent, &[]), VaultError::Unauthorized);
    assert_eq!(w.token_balance(&victim.session.vault_token_account().unwrap()), 1_000_000);
}

/// The events keep Anchor's `emit_cpi!` bytes: event tag, discriminator, borsh body, with the
/// event authority as the only account, signing.
#[test]
fn events_keep_anchors_bytes() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(2 * SOL);
    let dest = w.new_wallet(SOL);
    let landed = w.trade(&s, &s.delegate, dest.pubkey(), None, 7, SOL / 2, 10).expect("trade");
    let VaultEvent::TradeExecuted(event) = only_event(&landed).clone() else { panic!("not a trade event") };
    let inner: Vec<_> = landed.meta.inner_instructions.iter().flatten().collect();
    assert_eq!(inner.len(), 1);
    let mut expected = anchor_lang::event::EVENT_IX_TAG_LE.to_vec();
    expected.extend_from_slice(&event.data());
    assert_eq!(inner[0].instruction.data, expected);
    assert_eq!(&inner[0].instruction.data[8..16], TradeExecuted::DISCRIMINATOR);
    assert_eq!(event.trade_id, 7);
    assert_eq!(event.amount, SOL / 2);
}

/// Nobody but the program, signing as its event authority, can make the program emit an event.
#[test]
fn events_cannot_be_forged() {
    let mut w = VaultWorld::new();
    let forger = w.new_wallet(SOL);
    let fake = TradeExecuted {
        session_id: [1; 16],
        parent: forger.pubkey(),
        vault: forger.pubkey(),
        delegate: forger.pubkey(),
        mint: Pubkey::default(),
        trade_id: 1,
        destination: forger.pubkey(),
        amount: 1,
        fee: 0,
        remaining_allowance: 0,
        totals: ephemeral_vault::events::SessionTotals {
            total_deposited: 0,
            total_spent: 0,
            total_withdrawn: 0,
            total_fee_top_ups: 0,
            trade_count: 0,
        },
        timestamp: 0,
    };
    let mut data = anchor_lang::event::EVENT_IX_TAG_LE.to_vec();
    data.extend_from_slice(&fake.data());
    // The event authority named but not signing (nobody holds its key).
    let ix = Instruction::new_with_bytes(
        ephemeral_vault::ID,
        &data,
        vec![AccountMeta::new_readonly(sdk::event_authority_address(), false)],
    );
    assert_anchor_error(w.send(&[ix], &forger, &[]), Anchor::ConstraintSigner);
    // Another signer in its place.
    let ix =
        Instruction::new_with_bytes(ephemeral_vault::ID, &data, vec![AccountMeta::new_readonly(forger.pubkey(), true)]);
    assert_anchor_error(w.send(&[ix], &forger, &[]), Anchor::ConstraintSeeds);
}
