//! Every refusal the program promises, each shown to leave the vault as it was.

#![allow(clippy::result_large_err)] // `Outcome` carries a refused transaction's metadata

use anchor_lang::error::ErrorCode as Anchor;
use ephemeral_vault::errors::VaultError;
use ephemeral_vault::instructions::{CreateSessionArgs, UpdateConfigArgs};
use ephemeral_vault::sdk;
use ephemeral_vault_testkit::*;
use solana_keypair::Keypair;
use solana_signer::Signer;

const SOL: u64 = LAMPORTS_PER_SOL;

fn pause(w: &mut VaultWorld) {
    let admin = w.admin.insecure_clone();
    w.send(&[sdk::set_paused(admin.pubkey(), true)], &admin, &[]).expect("pause");
}

fn create_with(w: &mut VaultWorld, edit: impl FnOnce(&mut CreateSessionArgs)) -> Outcome {
    let s = w.sol_session();
    let mut args = session_args(s.session.session_id);
    args.initial_deposit = SOL;
    edit(&mut args);
    w.create(&s, args)
}

#[test]
fn config_cannot_be_initialised_twice_or_by_anyone_but_the_upgrade_authority() {
    let mut w = VaultWorld::deployed();
    let stranger = w.new_wallet(SOL);
    assert_vault_error(
        w.send(&[sdk::initialize_config(stranger.pubkey(), default_params())], &stranger, &[]),
        VaultError::NotUpgradeAuthority,
    );
    let mut bad = default_params();
    bad.cleanup_reward_bps = 10_001;
    let admin = w.admin.insecure_clone();
    assert_vault_error(w.send(&[sdk::initialize_config(admin.pubkey(), bad)], &admin, &[]), VaultError::InvalidConfig);
    w.send(&[sdk::initialize_config(admin.pubkey(), default_params())], &admin, &[]).expect("first init");
    // Re-initialisation: the config PDA exists, so the system program refuses to create it again.
    let again = w.send(&[sdk::initialize_config(admin.pubkey(), default_params())], &admin, &[]);
    assert!(again.is_err(), "second initialize_config landed");
    assert_eq!(w.config().params(), default_params());
}

#[test]
fn only_the_admin_updates_or_pauses() {
    let mut w = VaultWorld::new();
    let stranger = w.new_wallet(SOL);
    let args = UpdateConfigArgs { params: default_params(), new_admin: Some(stranger.pubkey()) };
    assert_vault_error(
        w.send(&[sdk::update_config(stranger.pubkey(), args)], &stranger, &[]),
        VaultError::Unauthorized,
    );
    assert_vault_error(w.send(&[sdk::set_paused(stranger.pubkey(), true)], &stranger, &[]), VaultError::Unauthorized);
    let admin = w.admin.insecure_clone();
    let mut bad = default_params();
    bad.min_session_duration = bad.max_session_duration + 1;
    assert_vault_error(
        w.send(&[sdk::update_config(admin.pubkey(), UpdateConfigArgs { params: bad, new_admin: None })], &admin, &[]),
        VaultError::InvalidConfig,
    );
    assert_eq!(w.config().admin, admin.pubkey());
    assert!(!w.config().paused);
}

#[test]
fn create_session_checks_its_arguments() {
    let mut w = VaultWorld::new();
    assert_vault_error(create_with(&mut w, |a| a.duration_secs = 59), VaultError::InvalidDuration);
    assert_vault_error(create_with(&mut w, |a| a.duration_secs = 24 * 3600 + 1), VaultError::InvalidDuration);
    assert_vault_error(create_with(&mut w, |a| a.approved_amount = 0), VaultError::InvalidApprovedAmount);
    assert_vault_error(create_with(&mut w, |a| a.per_trade_cap = 0), VaultError::InvalidPerTradeCap);
    assert_vault_error(
        create_with(&mut w, |a| a.per_trade_cap = a.approved_amount + 1),
        VaultError::InvalidPerTradeCap,
    );
    assert_vault_error(
        create_with(&mut w, |a| a.destinations = (0..5).map(|_| Keypair::new().pubkey()).collect()),
        VaultError::TooManyDestinations,
    );
    let d = Keypair::new().pubkey();
    assert_vault_error(create_with(&mut w, |a| a.destinations = vec![d, d]), VaultError::DuplicateDestination);
    assert_vault_error(
        create_with(&mut w, |a| a.fee_top_up = default_params().fee_top_up_cap + 1),
        VaultError::FeeTopUpCapExceeded,
    );
    // The delegate may not be the parent.
    let s = w.sol_session();
    let ix = sdk::create_session(
        s.parent.pubkey(),
        s.parent.pubkey(),
        s.session.asset,
        None,
        session_args(s.session.session_id),
    );
    assert_vault_error(w.send(&[ix], &s.parent, &[]), VaultError::InvalidDelegate);
    assert!(w.account(&s.vault()).is_none());
}

#[test]
fn a_session_id_cannot_be_opened_twice() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(SOL);
    let again = w.create(&s, session_args(s.session.session_id));
    assert!(again.is_err(), "re-created an existing vault");
    assert_eq!(w.vault(&s.vault()).unwrap().total_deposited, SOL);
}

#[test]
fn only_the_current_delegate_trades() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(5 * SOL);
    let dest = w.new_wallet(SOL);
    let stranger = w.new_wallet(SOL);
    assert_vault_error(w.trade(&s, &stranger, dest.pubkey(), None, 1, SOL / 10, 0), VaultError::NotDelegate);
    assert_vault_error(w.trade(&s, &s.parent, dest.pubkey(), None, 1, SOL / 10, 0), VaultError::NotDelegate);

    let next = w.new_wallet(SOL);
    w.send(&[sdk::approve_delegate(&s.session, next.pubkey())], &s.parent, &[]).expect("rotate");
    assert_vault_error(w.trade(&s, &s.delegate, dest.pubkey(), None, 1, SOL / 10, 0), VaultError::NotDelegate);
    assert_vault_error(
        w.send(&[sdk::top_up_fees(&s.session, s.delegate.pubkey(), 1_000)], &s.delegate, &[]),
        VaultError::NotDelegate,
    );
    assert_eq!(w.vault(&s.vault()).unwrap().total_spent, 0);
}

#[test]
fn revoked_session_refuses_the_delegate_and_further_changes() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(5 * SOL);
    let dest = w.new_wallet(SOL);
    w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]).expect("revoke");
    assert_vault_error(w.trade(&s, &s.delegate, dest.pubkey(), None, 1, SOL / 10, 0), VaultError::SessionRevoked);
    assert_vault_error(
        w.send(&[sdk::top_up_fees(&s.session, s.delegate.pubkey(), 1_000)], &s.delegate, &[]),
        VaultError::SessionRevoked,
    );
    let next = Keypair::new().pubkey();
    assert_vault_error(w.send(&[sdk::approve_delegate(&s.session, next)], &s.parent, &[]), VaultError::SessionRevoked);
    assert_vault_error(w.send(&[sdk::deposit(&s.session, None, SOL)], &s.parent, &[]), VaultError::SessionRevoked);
    assert_vault_error(w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]), VaultError::SessionRevoked);
    // The parent can still take its money back.
    w.send(&[sdk::withdraw(&s.session, None, SOL)], &s.parent, &[]).expect("withdraw after revoke");
}

#[test]
fn expired_session_refuses_trades_top_ups_deposits_and_rotation() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(5 * SOL);
    let dest = w.new_wallet(SOL);
    w.advance(3_600);
    assert_vault_error(w.trade(&s, &s.delegate, dest.pubkey(), None, 1, SOL / 10, 0), VaultError::SessionExpired);
    assert_vault_error(
        w.send(&[sdk::top_up_fees(&s.session, s.delegate.pubkey(), 1_000)], &s.delegate, &[]),
        VaultError::SessionExpired,
    );
    assert_vault_error(w.send(&[sdk::deposit(&s.session, None, SOL)], &s.parent, &[]), VaultError::SessionExpired);
    let next = Keypair::new().pubkey();
    assert_vault_error(w.send(&[sdk::approve_delegate(&s.session, next)], &s.parent, &[]), VaultError::SessionExpired);
    w.send(&[sdk::withdraw(&s.session, None, SOL)], &s.parent, &[]).expect("withdraw after expiry");
}

#[test]
fn pause_stops_new_sessions_deposits_trades_and_top_ups_but_not_the_parent() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(5 * SOL);
    let dest = w.new_wallet(SOL);
    pause(&mut w);
    assert_vault_error(create_with(&mut w, |_| {}), VaultError::Paused);
    assert_vault_error(w.trade(&s, &s.delegate, dest.pubkey(), None, 1, SOL / 10, 0), VaultError::Paused);
    assert_vault_error(
        w.send(&[sdk::top_up_fees(&s.session, s.delegate.pubkey(), 1_000)], &s.delegate, &[]),
        VaultError::Paused,
    );
    assert_vault_error(w.send(&[sdk::deposit(&s.session, None, SOL)], &s.parent, &[]), VaultError::Paused);
    w.send(&[sdk::withdraw(&s.session, None, SOL)], &s.parent, &[]).expect("withdraw while paused");
    w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]).expect("revoke while paused");
}

#[test]
fn trades_respect_the_caps_the_allow_list_and_trade_order() {
    let mut w = VaultWorld::new();
    let s = w.sol_session();
    let allowed = w.new_wallet(SOL);
    let other = w.new_wallet(SOL);
    let mut args = session_args(s.session.session_id);
    args.approved_amount = 3 * SOL;
    args.per_trade_cap = SOL;
    args.initial_deposit = 5 * SOL;
    args.destinations = vec![allowed.pubkey()];
    w.create(&s, args).expect("create");

    assert_vault_error(
        w.trade(&s, &s.delegate, other.pubkey(), None, 1, SOL / 10, 0),
        VaultError::DestinationNotAllowed,
    );
    assert_vault_error(w.trade(&s, &s.delegate, allowed.pubkey(), None, 1, SOL, 1), VaultError::PerTradeCapExceeded);
    assert_vault_error(w.trade(&s, &s.delegate, allowed.pubkey(), None, 1, 0, 0), VaultError::ZeroAmount);
    w.trade(&s, &s.delegate, allowed.pubkey(), None, 1, SOL, 0).expect("trade 1");
    w.trade(&s, &s.delegate, allowed.pubkey(), None, 2, SOL, 0).expect("trade 2");
    assert_vault_error(
        w.trade(&s, &s.delegate, allowed.pubkey(), None, 2, SOL / 2, 0),
        VaultError::TradeIdNotIncreasing,
    );
    w.trade(&s, &s.delegate, allowed.pubkey(), None, 3, SOL / 2, 0).expect("trade 3");
    // 2.5 SOL spent of 3 approved: 0.5 + 1 lamport is over.
    assert_vault_error(
        w.trade(&s, &s.delegate, allowed.pubkey(), None, 4, SOL / 2, 1),
        VaultError::ApprovedAmountExceeded,
    );
    w.trade(&s, &s.delegate, allowed.pubkey(), None, 4, SOL / 2, 0).expect("exactly the cap");
    assert_vault_error(w.trade(&s, &s.delegate, allowed.pubkey(), None, 5, 1, 0), VaultError::ApprovedAmountExceeded);
    let vault = w.vault(&s.vault()).unwrap();
    assert_eq!((vault.total_spent, vault.trade_count), (3 * SOL, 4));
}

#[test]
fn spending_cannot_exceed_what_the_vault_holds() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(SOL / 2);
    let dest = w.new_wallet(SOL);
    assert_vault_error(w.trade(&s, &s.delegate, dest.pubkey(), None, 1, SOL, 0), VaultError::InsufficientVaultBalance);
    assert_vault_error(
        w.send(&[sdk::withdraw(&s.session, None, SOL)], &s.parent, &[]),
        VaultError::InsufficientVaultBalance,
    );
}

#[test]
fn fee_top_ups_are_bounded_and_only_for_sol_vaults() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(5 * SOL);
    let cap = default_params().fee_top_up_cap;
    w.send(&[sdk::top_up_fees(&s.session, s.delegate.pubkey(), cap)], &s.delegate, &[]).expect("up to the cap");
    assert_vault_error(
        w.send(&[sdk::top_up_fees(&s.session, s.delegate.pubkey(), 1)], &s.delegate, &[]),
        VaultError::FeeTopUpCapExceeded,
    );
    let mint = w.create_mint(MintKind::Spl, 6);
    let t = w.open_token_session(&mint, 1_000_000);
    assert_vault_error(
        w.send(&[sdk::top_up_fees(&t.session, t.delegate.pubkey(), 1_000)], &t.delegate, &[]),
        VaultError::TopUpRequiresSolVault,
    );
}

#[test]
fn rotation_rules() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(SOL);
    assert_vault_error(
        w.send(&[sdk::approve_delegate(&s.session, s.delegate.pubkey())], &s.parent, &[]),
        VaultError::SameDelegate,
    );
    assert_vault_error(
        w.send(&[sdk::approve_delegate(&s.session, s.parent.pubkey())], &s.parent, &[]),
        VaultError::InvalidDelegate,
    );
    assert_vault_error(
        w.send(&[sdk::approve_delegate(&s.session, s.vault())], &s.parent, &[]),
        VaultError::InvalidDelegate,
    );
}

#[test]
fn another_wallet_cannot_act_as_the_parent() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(2 * SOL);
    let thief = w.new_wallet(SOL);
    // Same vault, the thief signing as "parent": the vault's stored parent is the real one.
    let mut ix = sdk::withdraw(&s.session, None, SOL);
    ix.accounts[0].pubkey = thief.pubkey();
    assert_vault_error(w.send(&[ix], &thief, &[]), VaultError::Unauthorized);
    let mut ix = sdk::revoke_session(&s.session);
    ix.accounts[0].pubkey = thief.pubkey();
    assert_vault_error(w.send(&[ix], &thief, &[]), VaultError::Unauthorized);
    let mut ix = sdk::approve_delegate(&s.session, thief.pubkey());
    ix.accounts[0].pubkey = thief.pubkey();
    assert_vault_error(w.send(&[ix], &thief, &[]), VaultError::Unauthorized);
    let mut ix = sdk::deposit(&s.session, None, SOL);
    ix.accounts[0].pubkey = thief.pubkey();
    assert_vault_error(w.send(&[ix], &thief, &[]), VaultError::Unauthorized);
    // Cleanup must pay the real parent, not whoever is named as parent.
    w.advance(3_600);
    let mut ix = sdk::cleanup_vault(&s.session, thief.pubkey(), None);
    ix.accounts[3].pubkey = thief.pubkey();
    assert_vault_error(w.send(&[ix], &thief, &[]), VaultError::Unauthorized);
    assert_eq!(w.vault(&s.vault()).unwrap().total_deposited, 2 * SOL);
}

#[test]
fn token_sessions_refuse_the_wrong_mint_token_program_and_accounts() {
    let mut w = VaultWorld::new();
    let mint = w.create_mint(MintKind::Token2022, 6);
    let other = w.create_mint(MintKind::Token2022, 6);
    let s = w.open_token_session(&mint, 1_000_000);
    let parent_ta = s.parent_token_account.unwrap();

    // Wrong mint
    let mut ix = sdk::deposit(&s.session, Some(parent_ta), 1_000);
    ix.accounts[3].pubkey = other.address;
    assert_vault_error(w.send(&[ix], &s.parent, &[]), VaultError::WrongMint);

    // Wrong token program: classic SPL Token for a Token-2022 mint.
    let mut ix = sdk::deposit(&s.session, Some(parent_ta), 1_000);
    ix.accounts[6].pubkey = anchor_spl::token::ID;
    assert!(w.send(&[ix], &s.parent, &[]).is_err(), "wrong token program accepted");

    // A SOL-style call on a token vault, and token accounts on a SOL vault.
    assert_vault_error(
        w.send(&[sdk::deposit(&s.session, None, 1_000)], &s.parent, &[]),
        VaultError::TokenAccountsMismatch,
    );
    let sol = w.open_sol_session(SOL);
    let mut as_token = sol.session;
    as_token.asset = mint.asset();
    let ix = sdk::deposit(&as_token, Some(parent_ta), 1_000);
    assert!(w.send(&[ix], &sol.parent, &[]).is_err(), "token accounts accepted on a SOL vault");
    assert_eq!(w.vault(&s.vault()).unwrap().total_deposited, 1_000_000);
}

#[test]
fn cleanup_only_when_allowed_and_only_once() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(SOL);
    let caller = w.new_wallet(SOL);
    assert_vault_error(
        w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), None)], &caller, &[]),
        VaultError::CleanupNotAllowed,
    );
    w.advance(3_599);
    assert_vault_error(
        w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), None)], &caller, &[]),
        VaultError::CleanupNotAllowed,
    );
    w.advance(1);
    w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), None)], &caller, &[]).expect("cleanup");
    assert_anchor_error(
        w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), None)], &caller, &[]),
        Anchor::AccountNotInitialized,
    );
}

#[test]
fn cleanup_reward_never_reaches_the_principal() {
    let mut w = VaultWorld::new();
    let admin = w.admin.insecure_clone();
    // The most generous policy allowed: the whole reclaimed rent, no cap.
    let mut params = default_params();
    params.cleanup_reward_bps = 10_000;
    params.cleanup_reward_cap = u64::MAX;
    w.send(&[sdk::update_config(admin.pubkey(), UpdateConfigArgs { params, new_admin: None })], &admin, &[])
        .expect("update");
    let s = w.open_sol_session(3 * SOL);
    w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]).expect("revoke");
    let caller = w.new_wallet(SOL);
    let parent_before = w.lamports(&s.parent.pubkey());
    let caller_before = w.lamports(&caller.pubkey());
    let rent = w.rent(ephemeral_vault::state::Vault::SPACE);
    let landed = w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), None)], &caller, &[]).expect("cleanup");
    assert_eq!(w.lamports(&caller.pubkey()), caller_before + rent - landed.meta.fee);
    assert_eq!(w.lamports(&s.parent.pubkey()), parent_before + 3 * SOL);

    // And a cap below the share bounds it.
    params.cleanup_reward_cap = 1_234;
    w.send(&[sdk::update_config(admin.pubkey(), UpdateConfigArgs { params, new_admin: None })], &admin, &[])
        .expect("update");
    let s = w.open_sol_session(SOL);
    w.advance(3_600);
    let landed = w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), None)], &caller, &[]).expect("cleanup");
    assert!(matches!(only_event(&landed), ephemeral_vault::sdk::VaultEvent::VaultCleaned(e) if e.reward == 1_234));
}

#[test]
fn arithmetic_edges_at_u64_max() {
    let mut w = VaultWorld::new();
    let s = w.sol_session();
    let mut args = session_args(s.session.session_id);
    args.approved_amount = u64::MAX;
    args.per_trade_cap = u64::MAX;
    args.initial_deposit = SOL;
    w.create(&s, args).expect("u64::MAX caps are valid");
    let dest = w.new_wallet(SOL);
    assert_vault_error(w.trade(&s, &s.delegate, dest.pubkey(), None, 1, u64::MAX, 1), VaultError::MathOverflow);
    assert_vault_error(
        w.trade(&s, &s.delegate, dest.pubkey(), None, 1, u64::MAX, 0),
        VaultError::InsufficientVaultBalance,
    );
    assert_vault_error(w.trade(&s, &s.delegate, dest.pubkey(), None, 1, 1, u64::MAX), VaultError::MathOverflow);
    assert_vault_error(
        w.send(&[sdk::withdraw(&s.session, None, u64::MAX)], &s.parent, &[]),
        VaultError::InsufficientVaultBalance,
    );
    assert!(w.send(&[sdk::deposit(&s.session, None, u64::MAX)], &s.parent, &[]).is_err());
    assert_vault_error(
        w.send(&[sdk::top_up_fees(&s.session, s.delegate.pubkey(), u64::MAX)], &s.delegate, &[]),
        VaultError::FeeTopUpCapExceeded,
    );
    w.trade(&s, &s.delegate, dest.pubkey(), None, u64::MAX, 1, 0).expect("trade id u64::MAX");
    assert_vault_error(w.trade(&s, &s.delegate, dest.pubkey(), None, u64::MAX, 1, 0), VaultError::TradeIdNotIncreasing);
    // Duration overflow is refused by the bounds before it can overflow the clock.
    assert_vault_error(create_with(&mut w, |a| a.duration_secs = i64::MAX), VaultError::InvalidDuration);
    let vault = w.vault(&s.vault()).unwrap();
    assert_eq!((vault.total_deposited, vault.total_spent), (SOL, 1));
}
