//! The cleanup bot against the real program (litesvm): it cleans exactly the vaults that may be
//! cleaned - expired, revoked, every one while paused - and none other, is paid for it, and a
//! second round finds nothing left to do.

#[path = "service_common/litesvm_chain.rs"]
mod litesvm_chain;

use std::sync::{Arc, Mutex};

use anchor_lang::prelude::Pubkey;
use async_trait::async_trait;
use ephemeral_vault::sdk;
use ephemeral_vault::state::{CleanupReason, Config, Vault};
use ephemeral_vault_testkit::*;
use litesvm_chain::LiteSvmChain;
use solana_signer::Signer;
use vault_indexer::cleanup_bot::{BotConfig, CleanupBot, ClusterView, VaultAccount};
use vault_indexer::service::ChainError;

struct LiteSvmView(Arc<Mutex<VaultWorld>>);

#[async_trait]
impl ClusterView for LiteSvmView {
    async fn vaults(&self) -> Result<Vec<VaultAccount>, ChainError> {
        let world = self.0.lock().unwrap();
        Ok(world
            .svm
            .get_program_accounts(&ephemeral_vault::ID)
            .into_iter()
            .filter(|(_, a)| a.data.len() == Vault::SPACE)
            .filter_map(|(address, a)| {
                Some(VaultAccount { address, vault: vault_indexer::cleanup_bot::decode_vault(&a.data)? })
            })
            .collect())
    }
    async fn config(&self) -> Result<Config, ChainError> {
        Ok(self.0.lock().unwrap().config())
    }
    async fn unix_time(&self) -> Result<i64, ChainError> {
        Ok(self.0.lock().unwrap().now())
    }
    async fn lamports(&self, key: &Pubkey) -> Result<u64, ChainError> {
        Ok(self.0.lock().unwrap().lamports(key))
    }
    async fn minimum_balance(&self, data_len: usize) -> Result<u64, ChainError> {
        Ok(self.0.lock().unwrap().rent(data_len))
    }
}

#[tokio::test]
async fn cleans_exactly_the_vaults_that_may_be_cleaned_and_is_paid() {
    let mut w = VaultWorld::new();
    // The relay's chain keeps the world on the wall clock; start there.
    w.set_time(vault_indexer::service::unix_now());
    let active = w.open_sol_session(LAMPORTS_PER_SOL);
    let revoked = w.open_sol_session(LAMPORTS_PER_SOL);
    w.send(&[sdk::revoke_session(&revoked.session)], &revoked.parent, &[]).expect("revoke");
    let expired = w.sol_session();
    let mut args = session_args(expired.session.session_id);
    args.duration_secs = 60;
    args.initial_deposit = LAMPORTS_PER_SOL;
    w.create(&expired, args).expect("short session");
    let caller = w.new_wallet(LAMPORTS_PER_SOL);
    let expired_parent_before = w.lamports(&expired.parent.pubkey());
    let world = Arc::new(Mutex::new(w));
    // Move the clock past the short session's expiry (and keep the chain there).
    world.lock().unwrap().set_time(vault_indexer::service::unix_now() + 120);

    let bot = CleanupBot::new(
        LiteSvmChain::new(world.clone()),
        LiteSvmView(world.clone()),
        caller.insecure_clone(),
        BotConfig::default(),
    );
    let caller_before = world.lock().unwrap().lamports(&caller.pubkey());
    let report = bot.run_once().await.expect("round");
    assert_eq!(report.vaults_seen, 3);
    let mut cleaned: Vec<(Pubkey, CleanupReason)> = report.cleaned.iter().map(|(v, r, _)| (*v, *r)).collect();
    cleaned.sort_by_key(|(v, _)| *v);
    let mut expected = vec![(revoked.vault(), CleanupReason::ManualRevoke), (expired.vault(), CleanupReason::Expired)];
    expected.sort_by_key(|(v, _)| *v);
    assert_eq!(cleaned, expected);
    {
        let w = world.lock().unwrap();
        assert!(w.vault(&active.vault()).is_some(), "the live session was left alone");
        assert!(w.vault(&revoked.vault()).is_none() && w.vault(&expired.vault()).is_none());
        assert_eq!(w.lamports(&caller.pubkey()), caller_before + report.rewards - report.fees, "paid what it reported");
        assert!(report.rewards > report.fees);
        assert!(w.lamports(&expired.parent.pubkey()) >= expired_parent_before + LAMPORTS_PER_SOL, "funds went home");
    }

    let again = bot.run_once().await.expect("second round");
    assert!(again.cleaned.is_empty(), "nothing left: {again:?}");

    // Paused: every vault may be cleaned (reason emergency).
    {
        let mut w = world.lock().unwrap();
        let admin = w.admin.insecure_clone();
        w.send(&[sdk::set_paused(admin.pubkey(), true)], &admin, &[]).expect("pause");
    }
    let paused = bot.run_once().await.expect("paused round");
    assert_eq!(paused.cleaned.iter().map(|(v, r, _)| (*v, *r)).collect::<Vec<_>>(), vec![(active.vault(), CleanupReason::Emergency)]);
    assert!(world.lock().unwrap().vault(&active.vault()).is_none());
}

#[tokio::test]
async fn skips_vaults_whose_reward_does_not_cover_the_fee() {
    let mut w = VaultWorld::new();
    w.set_time(vault_indexer::service::unix_now());
    let admin = w.admin.insecure_clone();
    let mut params = default_params();
    params.cleanup_reward_cap = 1_000; // below the 5,000-lamport signature fee
    w.send(&[sdk::update_config(admin.pubkey(), ephemeral_vault::instructions::UpdateConfigArgs { params, new_admin: None })], &admin, &[])
        .expect("update");
    let s = w.open_sol_session(LAMPORTS_PER_SOL);
    w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]).expect("revoke");
    let caller = w.new_wallet(LAMPORTS_PER_SOL);
    let world = Arc::new(Mutex::new(w));
    let bot = CleanupBot::new(LiteSvmChain::new(world.clone()), LiteSvmView(world.clone()), caller, BotConfig::default());
    let report = bot.run_once().await.expect("round");
    assert!(report.cleaned.is_empty());
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].1.contains("does not cover"), "{report:?}");
    assert!(world.lock().unwrap().vault(&s.vault()).is_some());
}

#[tokio::test]
async fn returns_a_token_vault_to_an_associated_account_it_creates_for_the_parent() {
    let mut w = VaultWorld::new();
    w.set_time(vault_indexer::service::unix_now());
    let mint = w.create_mint(MintKind::Spl, 6);
    // The parent's tokens come from a plain token account; it has no associated one.
    let s = w.open_token_session(&mint, 7_000_000);
    w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]).expect("revoke");
    let ata = vault_indexer::cleanup_bot::associated_token_address(&s.parent.pubkey(), &mint.address, &mint.program());
    assert!(w.account(&ata).is_none());
    let caller = w.new_wallet(LAMPORTS_PER_SOL);
    let world = Arc::new(Mutex::new(w));
    let bot = CleanupBot::new(LiteSvmChain::new(world.clone()), LiteSvmView(world.clone()), caller, BotConfig::default());
    let report = bot.run_once().await.expect("round");
    assert_eq!(report.cleaned.len(), 1, "{report:?}");
    let w = world.lock().unwrap();
    assert!(w.vault(&s.vault()).is_none());
    assert_eq!(w.token_balance(&ata), 7_000_000, "the vault's tokens are in the parent's new associated account");
}
