//! The cleanup bot against the real program (litesvm): it cleans exactly the vaults that may be
//! cleaned - expired, revoked, every one while paused - and none other, is paid for it, and a
//! second round finds nothing left to do. With the indexer's database as candidate source
//! (real rows: the world's transactions written by the indexer's ingest), a database round
//! cleans what the database lists and the chain confirms, nothing the chain refutes, and the
//! periodic scan finds what the database has not seen.

use vault_devkit::litesvm_chain;
use vault_devkit::test_db as common;

use std::sync::{Arc, Mutex};

use anchor_lang::prelude::Pubkey;
use common::TestDb;
use ephemeral_vault::sdk;
use ephemeral_vault::state::CleanupReason;
use ephemeral_vault_testkit::*;
use litesvm_chain::{LiteSvmChain, LiteSvmView};
use solana_keypair::Keypair;
use solana_signer::Signer;
use sqlx::PgPool;
use vault_cleanup_bot::{BotConfig, CandidateSource, CleanupBot, DbCandidates, RoundReport};
use vault_devkit::recorded::chain_tx;
use vault_indexer::chain_tx::ChainTx;
use vault_indexer::ingest::Ingest;

#[tokio::test]
async fn cleans_exactly_the_vaults_that_may_be_cleaned_and_is_paid() {
    let mut w = VaultWorld::new();
    // The relay's chain keeps the world on the wall clock; start there.
    w.set_time(common::unix_now());
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
    world.lock().unwrap().set_time(common::unix_now() + 120);

    let bot = CleanupBot::new(
        LiteSvmChain::new(world.clone()),
        LiteSvmView(world.clone()),
        caller.insecure_clone(),
        BotConfig::default(),
    );
    let caller_before = world.lock().unwrap().lamports(&caller.pubkey());
    let report = bot.run_once().await.expect("round");
    assert!(report.full_scan && report.from_db == 0, "no database: the chain is scanned");
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
    assert_eq!(
        paused.cleaned.iter().map(|(v, r, _)| (*v, *r)).collect::<Vec<_>>(),
        vec![(active.vault(), CleanupReason::Emergency)]
    );
    assert!(world.lock().unwrap().vault(&active.vault()).is_none());
}

#[tokio::test]
async fn skips_vaults_whose_reward_does_not_cover_the_fee() {
    let mut w = VaultWorld::new();
    w.set_time(common::unix_now());
    let admin = w.admin.insecure_clone();
    let mut params = default_params();
    params.cleanup_reward_cap = 1_000; // below the 5,000-lamport signature fee
    w.send(
        &[sdk::update_config(
            admin.pubkey(),
            ephemeral_vault::instructions::UpdateConfigArgs { params, new_admin: None },
        )],
        &admin,
        &[],
    )
    .expect("update");
    let s = w.open_sol_session(LAMPORTS_PER_SOL);
    w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]).expect("revoke");
    let caller = w.new_wallet(LAMPORTS_PER_SOL);
    let world = Arc::new(Mutex::new(w));
    let bot =
        CleanupBot::new(LiteSvmChain::new(world.clone()), LiteSvmView(world.clone()), caller, BotConfig::default());
    let report = bot.run_once().await.expect("round");
    assert!(report.cleaned.is_empty());
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].1.contains("does not cover"), "{report:?}");
    assert!(world.lock().unwrap().vault(&s.vault()).is_some());
}

#[tokio::test]
async fn returns_a_token_vault_to_an_associated_account_it_creates_for_the_parent() {
    let mut w = VaultWorld::new();
    w.set_time(common::unix_now());
    let mint = w.create_mint(MintKind::Spl, 6);
    // The parent's tokens come from a plain token account; it has no associated one.
    let s = w.open_token_session(&mint, 7_000_000);
    w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]).expect("revoke");
    let ata = vault_chain::token_accounts::associated_token_address(&s.parent.pubkey(), &mint.address, &mint.program());
    assert!(w.account(&ata).is_none());
    let caller = w.new_wallet(LAMPORTS_PER_SOL);
    let world = Arc::new(Mutex::new(w));
    let bot =
        CleanupBot::new(LiteSvmChain::new(world.clone()), LiteSvmView(world.clone()), caller, BotConfig::default());
    let report = bot.run_once().await.expect("round");
    assert_eq!(report.cleaned.len(), 1, "{report:?}");
    let w = world.lock().unwrap();
    assert!(w.vault(&s.vault()).is_none());
    assert_eq!(w.token_balance(&ata), 7_000_000, "the vault's tokens are in the parent's new associated account");
}

// ----- candidates from the indexer's database -----

/// Writes every transaction of the world that names the program (what an indexer filtering on
/// it receives) through the indexer's ingest. Writes are idempotent, so the whole history can be
/// written again after more has happened.
async fn index(world: &Arc<Mutex<VaultWorld>>, pool: &PgPool) {
    let txs: Vec<ChainTx> =
        world.lock().unwrap().history.iter().filter(|r| r.mentions(&ephemeral_vault::ID)).map(chain_tx).collect();
    let report = Ingest::default()
        .write_batch(pool, "test", &vault_indexer::decode::decode_all(&txs), None)
        .await
        .expect("indexing");
    assert_eq!(report.skipped + report.parked, 0, "{report:?}");
}

/// The vault addresses cleanup_candidates_view lists, sorted.
async fn db_candidates(pool: &PgPool) -> Vec<Pubkey> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT vault_pda FROM cleanup_candidates_view").fetch_all(pool).await.expect("view");
    let mut keys: Vec<Pubkey> = rows.iter().map(|r| r.parse().expect("an address")).collect();
    keys.sort();
    keys
}

fn sorted(mut keys: Vec<Pubkey>) -> Vec<Pubkey> {
    keys.sort();
    keys
}

fn cleaned(report: &RoundReport) -> Vec<(Pubkey, CleanupReason)> {
    let mut cleaned: Vec<_> = report.cleaned.iter().map(|(v, r, _)| (*v, *r)).collect();
    cleaned.sort_by_key(|(v, _)| *v);
    cleaned
}

/// A world on the wall clock with a funded bot key, and a bot taking candidates from `pool`.
/// The bot's first round (always a full scan) has run, on a world with no vault yet, so the
/// next round is a database round.
async fn world_and_db_bot(
    pool: PgPool,
    scan_every: u32,
) -> (Arc<Mutex<VaultWorld>>, CleanupBot<LiteSvmChain, LiteSvmView>, Keypair) {
    let mut w = VaultWorld::new();
    w.set_time(common::unix_now());
    let caller = w.new_wallet(LAMPORTS_PER_SOL);
    let world = Arc::new(Mutex::new(w));
    let bot = CleanupBot::new(
        LiteSvmChain::new(world.clone()),
        LiteSvmView(world.clone()),
        caller.insecure_clone(),
        BotConfig::default(),
    )
    .with_candidates(CandidateSource::Database { candidates: DbCandidates::new(pool), scan_every });
    let first = bot.run_once().await.expect("first round");
    assert!(first.full_scan, "the first round scans the chain: {first:?}");
    assert_eq!((first.vaults_seen, first.from_db), (0, 0));
    (world, bot, caller)
}

fn revoked_session(world: &Arc<Mutex<VaultWorld>>) -> TestSession {
    let mut w = world.lock().unwrap();
    let s = w.open_sol_session(LAMPORTS_PER_SOL);
    w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]).expect("revoke");
    s
}

#[tokio::test]
async fn a_database_round_cleans_exactly_the_revoked_and_expired_sessions_the_database_lists() {
    let db = TestDb::new().await;
    let (world, bot, caller) = world_and_db_bot(db.pool.clone(), 10).await;
    let start = common::unix_now();
    let (expired, live) = {
        let mut w = world.lock().unwrap();
        // A one-minute session opened an hour ago: expired by the chain's clock and the
        // database's alike.
        w.set_time(start - 3_600);
        let expired = w.sol_session();
        let mut args = session_args(expired.session.session_id);
        args.duration_secs = 60;
        args.initial_deposit = LAMPORTS_PER_SOL;
        w.create(&expired, args).expect("short session");
        w.set_time(start);
        let live = w.open_sol_session(LAMPORTS_PER_SOL);
        (expired, live)
    };
    let revoked = revoked_session(&world);
    index(&world, &db.pool).await;
    assert_eq!(db_candidates(&db.pool).await, sorted(vec![expired.vault(), revoked.vault()]), "what the indexer wrote");
    let expired_parent_before = world.lock().unwrap().lamports(&expired.parent.pubkey());
    let caller_before = world.lock().unwrap().lamports(&caller.pubkey());

    let report = bot.run_once().await.expect("database round");
    assert!(!report.full_scan, "{report:?}");
    assert_eq!((report.from_db, report.vaults_seen), (2, 2), "only the candidates were loaded: {report:?}");
    let mut expected = vec![(revoked.vault(), CleanupReason::ManualRevoke), (expired.vault(), CleanupReason::Expired)];
    expected.sort_by_key(|(v, _)| *v);
    assert_eq!(cleaned(&report), expected);
    assert!(report.skipped.is_empty(), "{report:?}");
    {
        let w = world.lock().unwrap();
        assert!(w.vault(&live.vault()).is_some(), "the live session was left alone");
        assert!(w.vault(&revoked.vault()).is_none() && w.vault(&expired.vault()).is_none());
        assert!(w.lamports(&expired.parent.pubkey()) >= expired_parent_before + LAMPORTS_PER_SOL, "funds went home");
        assert!(report.rewards > report.fees);
        assert_eq!(w.lamports(&caller.pubkey()), caller_before + report.rewards - report.fees, "paid what it reported");
    }

    // The indexer has not written the cleanups yet, so the rows are still listed; their vaults
    // are gone from the chain, and nothing is sent for them.
    assert_eq!(db_candidates(&db.pool).await.len(), 2);
    let again = bot.run_once().await.expect("second database round");
    assert!(!again.full_scan);
    assert_eq!((again.from_db, again.vaults_seen), (2, 0), "{again:?}");
    assert!(again.cleaned.is_empty() && again.skipped.is_empty(), "{again:?}");
    assert_eq!(world.lock().unwrap().lamports(&caller.pubkey()), caller_before + report.rewards - report.fees);
}

#[tokio::test]
async fn a_database_row_that_says_a_live_session_may_be_cleaned_gets_no_cleanup() {
    let db = TestDb::new().await;
    let (world, bot, caller) = world_and_db_bot(db.pool.clone(), 10).await;
    let (said_revoked, said_expired) = {
        let mut w = world.lock().unwrap();
        (w.open_sol_session(LAMPORTS_PER_SOL), w.open_sol_session(LAMPORTS_PER_SOL))
    };
    index(&world, &db.pool).await;
    assert!(db_candidates(&db.pool).await.is_empty(), "both sessions are live, and the indexer says so");
    // Wrong rows, by hand: one claims its session was revoked, the other that it expired.
    let now = common::unix_now();
    sqlx::query("UPDATE ephemeral_sessions SET status = 'revoked', revoked_at = $2 WHERE vault_pda = $1")
        .bind(said_revoked.vault().to_string())
        .bind(now - 10)
        .execute(&db.pool)
        .await
        .expect("update");
    sqlx::query("UPDATE ephemeral_sessions SET expires_at = $2 WHERE vault_pda = $1")
        .bind(said_expired.vault().to_string())
        .bind(now - 10)
        .execute(&db.pool)
        .await
        .expect("update");
    assert_eq!(db_candidates(&db.pool).await, sorted(vec![said_revoked.vault(), said_expired.vault()]));
    let (caller_before, vaults_before) = {
        let w = world.lock().unwrap();
        (w.lamports(&caller.pubkey()), [w.lamports(&said_revoked.vault()), w.lamports(&said_expired.vault())])
    };

    let report = bot.run_once().await.expect("database round");
    assert!(!report.full_scan);
    assert_eq!((report.from_db, report.vaults_seen), (2, 2), "both were loaded from the chain: {report:?}");
    assert!(report.cleaned.is_empty() && report.skipped.is_empty(), "the chain says live: {report:?}");
    let w = world.lock().unwrap();
    assert!(w.vault(&said_revoked.vault()).is_some_and(|v| v.cleanup_reason(&w.config(), w.now()).is_err()));
    assert!(w.vault(&said_expired.vault()).is_some_and(|v| v.cleanup_reason(&w.config(), w.now()).is_err()));
    assert_eq!([w.lamports(&said_revoked.vault()), w.lamports(&said_expired.vault())], vaults_before);
    assert_eq!(w.lamports(&caller.pubkey()), caller_before, "nothing was even sent (no fee paid)");
}

#[tokio::test]
async fn a_vault_the_indexer_has_not_seen_is_found_by_the_next_scan_round() {
    let db = TestDb::new().await;
    // Rounds 1, 4, 7... scan; 2 and 3 read the database.
    let (world, bot, _caller) = world_and_db_bot(db.pool.clone(), 3).await;
    let indexed = revoked_session(&world);
    index(&world, &db.pool).await;
    // Revoked after the indexer's last write: on chain only.
    let unseen = revoked_session(&world);
    assert_eq!(db_candidates(&db.pool).await, vec![indexed.vault()]);

    let round2 = bot.run_once().await.expect("round 2");
    assert!(!round2.full_scan);
    assert_eq!(cleaned(&round2), vec![(indexed.vault(), CleanupReason::ManualRevoke)]);
    let round3 = bot.run_once().await.expect("round 3");
    assert!(!round3.full_scan && round3.cleaned.is_empty(), "{round3:?}");
    assert!(world.lock().unwrap().vault(&unseen.vault()).is_some(), "database rounds do not see it");

    let round4 = bot.run_once().await.expect("round 4");
    assert!(round4.full_scan && round4.from_db == 0, "{round4:?}");
    assert_eq!(cleaned(&round4), vec![(unseen.vault(), CleanupReason::ManualRevoke)]);
    assert!(world.lock().unwrap().vault(&unseen.vault()).is_none());

    let round5 = bot.run_once().await.expect("round 5");
    assert!(!round5.full_scan, "back to the database after a scan: {round5:?}");
}

#[tokio::test]
async fn database_rows_that_name_no_vault_are_skipped_and_the_rest_still_cleaned() {
    let db = TestDb::new().await;
    let (world, bot, _caller) = world_and_db_bot(db.pool.clone(), 10).await;
    let revoked = revoked_session(&world);
    index(&world, &db.pool).await;
    let now = common::unix_now();
    // Expired candidates naming: base58 that is no public key (the schema checks only the
    // alphabet and length), a wallet, and the program's config account (owned by the program,
    // but not a vault).
    let wallet = world.lock().unwrap().new_wallet(LAMPORTS_PER_SOL).pubkey();
    let not_a_key = "z".repeat(44);
    assert!(not_a_key.parse::<Pubkey>().is_err());
    for vault_pda in [not_a_key.clone(), wallet.to_string(), sdk::config_address().to_string()] {
        let id = common::NewSession { expires_at: now - 10, ..common::NewSession::default() }
            .insert(&db.pool)
            .await
            .expect("insert");
        sqlx::query("UPDATE ephemeral_sessions SET vault_pda = $1 WHERE session_id = $2")
            .bind(&vault_pda)
            .bind(&id)
            .execute(&db.pool)
            .await
            .expect("update");
    }
    assert_eq!(vault_cleanup_bot::parse_addresses(vec![not_a_key, wallet.to_string()]), vec![wallet]);

    let report = bot.run_once().await.expect("database round");
    assert!(!report.full_scan);
    assert_eq!(report.from_db, 3, "the malformed address is left out: {report:?}");
    assert_eq!(report.vaults_seen, 1, "only one of them is a vault: {report:?}");
    assert_eq!(cleaned(&report), vec![(revoked.vault(), CleanupReason::ManualRevoke)]);
    assert!(world.lock().unwrap().account(&sdk::config_address()).is_some());
}

#[tokio::test]
async fn a_round_whose_database_read_fails_scans_the_chain() {
    let db = TestDb::new().await;
    let pool = db.another_pool().await;
    let (world, bot, _caller) = world_and_db_bot(pool.clone(), 10).await;
    let revoked = revoked_session(&world);
    pool.close().await;

    let report = bot.run_once().await.expect("round");
    assert!(report.full_scan && report.from_db == 0, "{report:?}");
    assert_eq!(cleaned(&report), vec![(revoked.vault(), CleanupReason::ManualRevoke)]);
}
