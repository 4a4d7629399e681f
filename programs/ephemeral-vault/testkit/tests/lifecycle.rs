//! Every instruction's success path, with balances, account state and events asserted.

use ephemeral_vault::events::SessionTotals;
use ephemeral_vault::instructions::UpdateConfigArgs;
use ephemeral_vault::sdk::{self, VaultEvent};
use ephemeral_vault::state::{CleanupReason, VaultStatus};
use ephemeral_vault_testkit::*;
use solana_signer::Signer;

const SOL: u64 = LAMPORTS_PER_SOL;

#[test]
fn config_is_initialised_by_the_upgrade_authority() {
    let w = VaultWorld::new();
    let config = w.config();
    assert_eq!(config.admin, w.admin.pubkey());
    assert!(!config.paused);
    assert_eq!(config.params(), default_params());
}

#[test]
fn admin_updates_config_hands_over_admin_and_pauses() {
    let mut w = VaultWorld::new();
    let admin = w.admin.insecure_clone();
    let next_admin = w.new_wallet(SOL);
    let mut params = default_params();
    params.cleanup_reward_bps = 1_000;
    params.max_session_duration = 7_200;
    let landed = w
        .send(
            &[sdk::update_config(admin.pubkey(), UpdateConfigArgs { params, new_admin: Some(next_admin.pubkey()) })],
            &admin,
            &[],
        )
        .expect("update_config");
    assert!(
        matches!(only_event(&landed), VaultEvent::ConfigUpdated(e) if e.new_admin == next_admin.pubkey() && e.params == params)
    );
    assert_eq!(w.config().params(), params);
    assert_eq!(w.config().admin, next_admin.pubkey());

    let landed = w.send(&[sdk::set_paused(next_admin.pubkey(), true)], &next_admin, &[]).expect("pause");
    assert!(matches!(only_event(&landed), VaultEvent::PauseSet(e) if e.paused));
    assert!(w.config().paused);
    w.send(&[sdk::set_paused(next_admin.pubkey(), false)], &next_admin, &[]).expect("unpause");
    assert!(!w.config().paused);
}

#[test]
fn create_sol_session_with_deposit_and_fee_top_up() {
    let mut w = VaultWorld::new();
    let s = w.sol_session();
    let dest = w.new_wallet(SOL);
    let mut args = session_args(s.session.session_id);
    args.initial_deposit = 3 * SOL;
    args.fee_top_up = 10_000_000;
    args.destinations = vec![dest.pubkey()];
    let parent_before = w.lamports(&s.parent.pubkey());
    let delegate_before = w.lamports(&s.delegate.pubkey());

    let landed = w.create(&s, args.clone()).expect("create");

    let vault_rent = w.rent(ephemeral_vault::state::Vault::SPACE);
    assert_eq!(w.lamports(&s.vault()), vault_rent + 3 * SOL);
    assert_eq!(w.lamports(&s.delegate.pubkey()), delegate_before + 10_000_000);
    assert_eq!(w.lamports(&s.parent.pubkey()), parent_before - vault_rent - 3 * SOL - 10_000_000 - landed.meta.fee);
    let vault = w.vault(&s.vault()).expect("vault");
    assert_eq!(vault.parent, s.parent.pubkey());
    assert_eq!(vault.delegate, s.delegate.pubkey());
    assert_eq!(vault.session_id, s.session.session_id);
    assert_eq!(vault.mint, Default::default());
    assert_eq!(vault.approved_amount, 10 * SOL);
    assert_eq!(vault.per_trade_cap, SOL);
    assert_eq!(vault.total_deposited, 3 * SOL);
    assert_eq!(vault.allowed_destinations(), &[dest.pubkey()]);
    assert_eq!(vault.created_at, START_TIME);
    assert_eq!(vault.expires_at, START_TIME + 3_600);
    assert_eq!(vault.status, VaultStatus::Active);

    assert_eq!(landed.events.len(), 2);
    match &landed.events[0] {
        VaultEvent::SessionCreated(e) => {
            assert_eq!(e.vault, s.vault());
            assert_eq!(e.delegate, s.delegate.pubkey());
            assert_eq!(e.fee_top_up, 10_000_000);
            assert_eq!(e.destinations, vec![dest.pubkey()]);
            assert_eq!(e.expires_at, START_TIME + 3_600);
        }
        other => panic!("expected SessionCreated, got {other:?}"),
    }
    match &landed.events[1] {
        VaultEvent::Deposited(e) => {
            assert_eq!((e.amount, e.received), (3 * SOL, 3 * SOL));
            assert_eq!(e.totals.total_deposited, 3 * SOL);
        }
        other => panic!("expected Deposited, got {other:?}"),
    }
}

#[test]
fn sol_session_full_lifecycle() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(2 * SOL);
    let vault_key = s.vault();
    let dest = w.new_wallet(SOL);

    // deposit
    let landed = w.send(&[sdk::deposit(&s.session, None, SOL)], &s.parent, &[]).expect("deposit");
    assert!(matches!(only_event(&landed), VaultEvent::Deposited(e) if e.totals.total_deposited == 3 * SOL));

    // trade: amount and fee both reach the destination and count against the cap
    let dest_before = w.lamports(&dest.pubkey());
    let landed = w.trade(&s, &s.delegate, dest.pubkey(), None, 7, SOL / 2, 5_000).expect("trade");
    assert_eq!(w.lamports(&dest.pubkey()), dest_before + SOL / 2 + 5_000);
    match only_event(&landed) {
        VaultEvent::TradeExecuted(e) => {
            assert_eq!((e.trade_id, e.amount, e.fee), (7, SOL / 2, 5_000));
            assert_eq!(e.destination, dest.pubkey());
            assert_eq!(e.remaining_allowance, 10 * SOL - SOL / 2 - 5_000);
            assert_eq!(e.totals.trade_count, 1);
        }
        other => panic!("{other:?}"),
    }

    // top up the delegate's fees from the vault
    let delegate_before = w.lamports(&s.delegate.pubkey());
    let landed =
        w.send(&[sdk::top_up_fees(&s.session, s.delegate.pubkey(), 1_000_000)], &s.delegate, &[]).expect("top up");
    assert_eq!(w.lamports(&s.delegate.pubkey()), delegate_before + 1_000_000 - landed.meta.fee);
    let vault = w.vault(&vault_key).unwrap();
    assert_eq!(vault.total_fee_top_ups, 1_000_000);
    assert_eq!(vault.total_spent, SOL / 2 + 5_000 + 1_000_000);

    // rotate the delegate
    let next = w.new_wallet(SOL / 10);
    let landed = w.send(&[sdk::approve_delegate(&s.session, next.pubkey())], &s.parent, &[]).expect("rotate");
    assert!(matches!(only_event(&landed), VaultEvent::DelegateApproved(e)
        if e.previous_delegate == s.delegate.pubkey() && e.delegate == next.pubkey() && e.rotations == 1));
    w.trade(&s, &next, dest.pubkey(), None, 8, SOL / 4, 0).expect("new delegate trades");

    // withdraw
    let parent_before = w.lamports(&s.parent.pubkey());
    let landed = w.send(&[sdk::withdraw(&s.session, None, SOL)], &s.parent, &[]).expect("withdraw");
    assert_eq!(w.lamports(&s.parent.pubkey()), parent_before + SOL - landed.meta.fee);

    // revoke, then anyone cleans up
    let landed = w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]).expect("revoke");
    assert!(matches!(only_event(&landed), VaultEvent::SessionRevoked(_)));
    let vault = w.vault(&vault_key).unwrap();
    assert_eq!(vault.status, VaultStatus::Revoked);
    assert_eq!(vault.revoked_at, START_TIME);

    let caller = w.new_wallet(SOL);
    let vault_lamports = w.lamports(&vault_key);
    let vault_rent = w.rent(ephemeral_vault::state::Vault::SPACE);
    let principal = vault_lamports - vault_rent;
    assert_eq!(principal, 3 * SOL - (SOL / 2 + 5_000) - 1_000_000 - SOL / 4 - SOL);
    let parent_before = w.lamports(&s.parent.pubkey());
    let caller_before = w.lamports(&caller.pubkey());
    let landed = w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), None)], &caller, &[]).expect("cleanup");
    let reward = (vault_rent * 5_000 / 10_000).min(default_params().cleanup_reward_cap);
    assert_eq!(w.lamports(&caller.pubkey()), caller_before + reward - landed.meta.fee);
    assert_eq!(w.lamports(&s.parent.pubkey()), parent_before + vault_lamports - reward);
    assert!(w.account(&vault_key).is_none(), "vault closed");
    match only_event(&landed) {
        VaultEvent::VaultCleaned(e) => {
            assert_eq!(e.reason, CleanupReason::ManualRevoke);
            assert_eq!(e.returned_amount, principal);
            assert_eq!(e.reward, reward);
            assert_eq!(e.rent_returned, vault_rent - reward);
            assert_eq!(e.caller, caller.pubkey());
            assert_eq!(e.totals.trade_count, 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn expired_session_is_cleaned_with_reason_expired() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(SOL);
    w.advance(3_600);
    let caller = w.new_wallet(SOL);
    let landed = w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), None)], &caller, &[]).expect("cleanup");
    assert!(
        matches!(only_event(&landed), VaultEvent::VaultCleaned(e) if e.reason == CleanupReason::Expired && e.returned_amount == SOL)
    );
}

#[test]
fn paused_program_lets_anyone_clean_with_reason_emergency() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(SOL);
    let admin = w.admin.insecure_clone();
    w.send(&[sdk::set_paused(admin.pubkey(), true)], &admin, &[]).expect("pause");
    let caller = w.new_wallet(SOL);
    let parent_before = w.lamports(&s.parent.pubkey());
    let landed = w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), None)], &caller, &[]).expect("cleanup");
    assert!(matches!(only_event(&landed), VaultEvent::VaultCleaned(e) if e.reason == CleanupReason::Emergency));
    assert!(w.lamports(&s.parent.pubkey()) > parent_before + SOL);
}

fn token_lifecycle(kind: MintKind) {
    let mut w = VaultWorld::new();
    let mint = w.create_mint(kind, 6);
    let s = w.token_session(&mint, 50_000_000);
    let parent_ta = s.parent_token_account.unwrap();
    let mut args = session_args(s.session.session_id);
    args.approved_amount = 20_000_000;
    args.per_trade_cap = 5_000_000;
    args.initial_deposit = 10_000_000;
    args.fee_top_up = 5_000_000;
    let landed = w.create(&s, args).expect("create token session");
    let vault_ta = s.session.vault_token_account().unwrap();
    let fee_of = |amount: u64| match kind {
        MintKind::Token2022TransferFee { bps, max_fee } => (amount * u64::from(bps) / 10_000).min(max_fee),
        _ => 0,
    };
    let received = 10_000_000 - fee_of(10_000_000);
    assert_eq!(w.token_balance(&vault_ta), received);
    assert_eq!(w.vault(&s.vault()).unwrap().total_deposited, received);
    assert!(matches!(&landed.events[1], VaultEvent::Deposited(e) if e.amount == 10_000_000 && e.received == received));

    let landed = w.send(&[sdk::deposit(&s.session, Some(parent_ta), 4_000_000)], &s.parent, &[]).expect("deposit");
    let received2 = 4_000_000 - fee_of(4_000_000);
    assert!(matches!(only_event(&landed), VaultEvent::Deposited(e) if e.received == received2));

    let venue = w.new_wallet(0);
    let venue_ta = w.create_token_account(&mint, &venue.pubkey());
    w.trade(&s, &s.delegate, venue.pubkey(), Some(venue_ta), 1, 2_000_000, 10_000).expect("token trade");
    let sent = 2_010_000;
    assert_eq!(w.token_balance(&venue_ta), sent - fee_of(sent));
    assert_eq!(w.token_balance(&vault_ta), received + received2 - sent);

    let parent_before = w.token_balance(&parent_ta);
    w.send(&[sdk::withdraw(&s.session, Some(parent_ta), 1_000_000)], &s.parent, &[]).expect("withdraw");
    assert_eq!(w.token_balance(&parent_ta), parent_before + 1_000_000 - fee_of(1_000_000));

    w.advance(3_601);
    let remaining = w.token_balance(&vault_ta);
    let caller = w.new_wallet(SOL);
    let parent_before = w.token_balance(&parent_ta);
    let parent_lamports = w.lamports(&s.parent.pubkey());
    let rent_total = w.lamports(&s.vault()) + w.lamports(&vault_ta);
    let landed = w
        .send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), Some(parent_ta))], &caller, &[])
        .expect("token cleanup");
    assert_eq!(w.token_balance(&parent_ta), parent_before + remaining - fee_of(remaining));
    assert!(w.account(&vault_ta).is_none(), "vault token account closed");
    assert!(w.account(&s.vault()).is_none(), "vault closed");
    let reward = (rent_total * 5_000 / 10_000).min(default_params().cleanup_reward_cap);
    assert_eq!(w.lamports(&s.parent.pubkey()), parent_lamports + rent_total - reward);
    match only_event(&landed) {
        VaultEvent::VaultCleaned(e) => {
            assert_eq!(e.returned_amount, remaining);
            assert_eq!(e.reward, reward);
            assert_eq!(e.reason, CleanupReason::Expired);
            assert_eq!(
                e.totals,
                SessionTotals {
                    total_deposited: received + received2,
                    total_spent: sent,
                    total_withdrawn: 1_000_000,
                    total_fee_top_ups: 0,
                    trade_count: 1,
                }
            );
        }
        other => panic!("{other:?}"),
    }
    if let MintKind::Token2022TransferFee { .. } = kind {
        // Fees withheld in the vault's account were harvested to the mint before it closed.
        assert!(w.withheld_in_mint(&mint) >= fee_of(10_000_000) + fee_of(4_000_000));
    }
}

#[test]
fn spl_token_session_lifecycle() {
    token_lifecycle(MintKind::Spl);
}

#[test]
fn token_2022_session_lifecycle() {
    token_lifecycle(MintKind::Token2022);
}

#[test]
fn token_2022_transfer_fee_session_credits_what_arrived() {
    token_lifecycle(MintKind::Token2022TransferFee { bps: 150, max_fee: 100_000 });
}

// The Token-2022 extensions the mint policy accepts (mint_policy.rs), each through the whole
// lifecycle. Their refused counterparts are in tests/mint_policy.rs.

#[test]
fn token_2022_close_authority_session_lifecycle() {
    token_lifecycle(MintKind::Token2022With(MintExtension::CloseAuthority));
}

#[test]
fn token_2022_interest_bearing_session_lifecycle() {
    token_lifecycle(MintKind::Token2022With(MintExtension::InterestBearing));
}

#[test]
fn token_2022_scaled_ui_amount_session_lifecycle() {
    token_lifecycle(MintKind::Token2022With(MintExtension::ScaledUiAmount));
}

#[test]
fn token_2022_metadata_session_lifecycle() {
    token_lifecycle(MintKind::Token2022With(MintExtension::Metadata));
}

#[test]
fn token_2022_group_session_lifecycle() {
    token_lifecycle(MintKind::Token2022With(MintExtension::Group));
}

#[test]
fn token_2022_group_member_session_lifecycle() {
    token_lifecycle(MintKind::Token2022With(MintExtension::GroupMember));
}

/// The README's account table ("The program"), checked against what the accounts really are:
/// their lengths, the rent-exempt minimum this litesvm charges (its feature set lowers rent to
/// 5,080 lamports a byte, SIMD-0437) and the genesis default of 6,960 lamports a byte that a
/// local validator and the TypeScript tests' litesvm charge.
#[test]
fn account_sizes_and_rent_match_the_readme() {
    let mut w = VaultWorld::new();
    let mut observed: Vec<(&str, usize)> = vec![];
    let mut measure = |w: &VaultWorld, name, address: &anchor_lang::prelude::Pubkey, principal: u64| {
        let account = w.account(address).expect("account exists");
        let len = account.data.len();
        assert_eq!(account.lamports - principal, w.rent(len), "{name} holds exactly its rent");
        observed.push((name, len));
    };
    measure(&w, "`Config`", &sdk::config_address(), 0);
    let s = w.open_sol_session(SOL);
    measure(&w, "`Vault`", &s.vault(), SOL);
    for (name, kind) in [
        ("vault token account (SPL Token / Token-2022)", MintKind::Spl),
        ("vault token account (SPL Token / Token-2022)", MintKind::Token2022),
        (
            "vault token account (Token-2022 with transfer fee)",
            MintKind::Token2022TransferFee { bps: 100, max_fee: 1_000 },
        ),
    ] {
        let mint = w.create_mint(kind, 6);
        let t = w.open_token_session(&mint, 0);
        measure(&w, name, &t.session.vault_token_account().unwrap(), 0);
    }
    assert_eq!(observed[1].1, ephemeral_vault::state::Vault::SPACE);
    assert_eq!(w.rent(0) / 128, 5_080, "this litesvm's lamports per byte");
    let genesis = anchor_lang::prelude::Rent::default();

    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../README.md")).expect("README.md");
    for (name, len) in observed {
        let row = readme
            .lines()
            .find(|line| line.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("README has no row for {name}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(
            cells[cells.len() - 4..cells.len() - 1],
            [format!("{len} B"), thousands(genesis.minimum_balance(len)), thousands(w.rent(len)),],
            "README row: {row}"
        );
    }
}
