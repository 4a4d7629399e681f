//! The main job's driver (`vault_devkit::scenario`, what `scripts/demo.sh` runs) ends with the
//! rows the scenario implies, and the cleanup bot cleans exactly the sessions it left to clean.
//!
//! - `scenario_on_the_program_in_litesvm` always runs: the real program in litesvm, its
//!   transactions written by the indexer's ingest, the bot with database candidates.
//! - `scenario_on_a_local_validator` runs when a local validator is available (on PATH or built
//!   by `scripts/validator.sh ensure`): the real `vault-indexer stream --source rpc` follows the
//!   validator while the scenario runs; a `vault-indexer backfill` of the same chain into a second
//!   database gives the same rows. Without a validator it says so and passes: the litesvm test
//!   above and the gRPC tests cover the same code paths.

use vault_devkit::test_db as common;
#[path = "indexing/mod.rs"]
mod indexing;
use vault_devkit::litesvm_chain;
#[path = "local_validator/mod.rs"]
mod local_validator;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use async_trait::async_trait;
use common::TestDb;
use ephemeral_vault_testkit::{Recorded, VaultWorld};
use litesvm_chain::{LiteSvmChain, LiteSvmView};
use local_validator::LocalValidator;
use solana_commitment_config::CommitmentConfig;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction::Transaction;
use solana_transaction_error::TransactionError;
use vault_chain::RpcChain;
use vault_cleanup_bot::{BotConfig, CandidateSource, CleanupBot, DbCandidates, RpcClusterView};
use vault_devkit::scenario::{self, Expected, RpcScenarioChain, ScenarioChain, ScenarioOptions};
use vault_devkit::summary::{self, Summary};
use vault_indexer::decode::decode_all;
use vault_indexer::ingest::Ingest;

/// The scenario's chain on the real program in litesvm; waiting for the clock moves it.
struct LiteSvmScenarioChain(Arc<Mutex<VaultWorld>>);

#[async_trait]
impl ScenarioChain for LiteSvmScenarioChain {
    async fn latest_blockhash(&self) -> anyhow::Result<Hash> {
        Ok(self.0.lock().unwrap().latest_blockhash())
    }
    async fn execute(&self, tx: &Transaction) -> anyhow::Result<Option<TransactionError>> {
        Ok(self.0.lock().unwrap().execute(tx.clone()).err().map(|refused| refused.err))
    }
    async fn airdrop(&self, to: &Pubkey, lamports: u64) -> anyhow::Result<()> {
        self.0.lock().unwrap().svm.airdrop(to, lamports).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok(())
    }
    async fn unix_time(&self) -> anyhow::Result<i64> {
        Ok(self.0.lock().unwrap().now())
    }
    async fn wait_until(&self, unix_time: i64) -> anyhow::Result<()> {
        let mut world = self.0.lock().unwrap();
        if world.now() < unix_time {
            world.set_time(unix_time);
        }
        Ok(())
    }
    async fn account_exists(&self, key: &Pubkey) -> anyhow::Result<bool> {
        Ok(self.0.lock().unwrap().account(key).is_some())
    }
}

/// Writes the program's transactions recorded since `from` (what a node would deliver).
async fn index_history(world: &Arc<Mutex<VaultWorld>>, from: usize, db: &TestDb) -> usize {
    let recorded: Vec<Recorded> = world.lock().unwrap().history[from..].to_vec();
    let txs: Vec<_> = recorded.iter().filter(|r| r.mentions(&ephemeral_vault::ID)).map(indexing::chain_tx).collect();
    Ingest::default().write_batch(&db.pool, "test", &decode_all(&txs), None).await.expect("write");
    from + recorded.len()
}

fn sorted(keys: impl IntoIterator<Item = Pubkey>) -> BTreeSet<Pubkey> {
    keys.into_iter().collect()
}

/// The cleanup rewards indexed for the vaults the scenario left to the bot (mallory cleaned one
/// of hers herself).
async fn bot_rewards(pool: &sqlx::PgPool, expected: &Expected) -> u64 {
    let vaults: Vec<String> = expected.to_clean.iter().map(ToString::to_string).collect();
    let sum: String = sqlx::query_scalar(
        "SELECT COALESCE(sum(cleanup_reward), 0)::text FROM cleanup_events WHERE vault_pda = ANY($1)",
    )
    .bind(&vaults)
    .fetch_one(pool)
    .await
    .expect("rewards");
    sum.parse().expect("a u64")
}

/// Checks what every run of the scenario must end with, whatever the chain.
fn assert_scenario_rows(expected: &Expected, summary: &Summary, cleaned: usize) {
    let differences = expected.differences(summary, cleaned);
    assert!(differences.is_empty(), "{differences:#?}\n{summary}");
    // The scenario's shape, spelled out (so a scenario that silently did less fails here too).
    assert_eq!(expected.to_clean.len(), 3, "one revoked and two expired sessions");
    assert_eq!(expected.left_active.len(), 2, "carol's busy session and mallory's second one");
    assert_eq!(expected.cleaned_in_scenario, 1, "mallory's first session under carol's id");
    let rows = expected.after_cleanup(cleaned);
    let count = |kind: &str, landed: bool| rows.get(&(kind.to_string(), landed)).copied().unwrap_or(0);
    assert_eq!(count("create", true), 4 + 2, "four parents' sessions and mallory's two");
    assert_eq!(
        count("trade", false),
        4,
        "over the cap (twice: alone, and beside a deposit), a rotated-out delegate, after expiry"
    );
    assert_eq!(count("deposit", false), 1, "rolled back with the over-cap trade");
    // bob 2, carol 1, alice 3 then 1 by the rotated-in wallet, the busy session 12 and 1 more
    assert_eq!(count("trade", true), 2 + 1 + 3 + 1 + 12 + 1);
    assert_eq!((count("top_up", true), count("approve_delegate", true), count("revoke", true)), (1, 1, 2));
    assert_eq!(count("cleanup", true), 3 + 1);
    assert_eq!(summary.sessions_by_status.get("cleaned"), Some(&4));
    assert_eq!(summary.delegations, 6 + 1, "six first delegates and one rotation");
    assert_eq!(summary.trades.failed, 4);
    // Analytics per session (vault incarnation): six sessions, each trade counted once, though
    // three of them share one session id.
    assert_eq!((summary.trades.sessions, summary.trades.successful), (6, count("trade", true) as i64));
    assert_eq!(summary.audit_broken_at, None);
}

#[tokio::test]
async fn scenario_on_the_program_in_litesvm() {
    let db = TestDb::new().await;
    let mut world = VaultWorld::deployed();
    // The bot's chain keeps the world on the wall clock, and cleanup_candidates_view judges
    // expiry by the database's clock: start a little in the past, so that the short sessions
    // have expired by both clocks when the bot runs, and the hour-long ones by neither.
    world.set_time(common::unix_now() - 200);
    let admin = world.admin.insecure_clone();
    let world = Arc::new(Mutex::new(world));

    let options = ScenarioOptions { short_session_secs: 60, ..ScenarioOptions::default() };
    let expected =
        scenario::run(&LiteSvmScenarioChain(world.clone()), &admin, &options, &|_| {}).await.expect("scenario");
    let seen = index_history(&world, 0, &db).await;

    let caller = Keypair::new();
    world.lock().unwrap().svm.airdrop(&caller.pubkey(), 1_000_000_000).unwrap();
    let bot =
        CleanupBot::new(LiteSvmChain::new(world.clone()), LiteSvmView(world.clone()), caller, BotConfig::default())
            .with_candidates(CandidateSource::Database {
                candidates: DbCandidates::new(db.pool.clone()),
                scan_every: 10,
            })
            .database_first();
    let report = bot.run_once().await.expect("bot round");
    assert!(!report.full_scan && report.from_db == 3, "the candidates came from the database: {report:?}");
    assert_eq!(sorted(report.cleaned.iter().map(|(v, _, _)| *v)), sorted(expected.to_clean.clone()));
    index_history(&world, seen, &db).await;
    {
        let w = world.lock().unwrap();
        for vault in &expected.to_clean {
            assert!(w.vault(vault).is_none(), "{vault} was cleaned");
        }
        for vault in &expected.left_active {
            assert!(w.vault(vault).is_some(), "{vault} is still open");
        }
    }

    let summary = Summary::load(&db.pool).await.expect("summary");
    assert_scenario_rows(&expected, &summary, report.cleaned.len());
    assert_eq!(
        bot_rewards(&db.pool, &expected).await,
        report.rewards,
        "the rewards the bot reported are the ones indexed"
    );
    // A second bot round finds nothing left (the live session stays).
    assert!(bot.run_once().await.expect("second round").cleaned.is_empty());
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn scenario_on_a_local_validator() {
    let Some((validator, admin)) = LocalValidator::start_with_new_admin() else { return };
    let rpc_url = validator.rpc_url.clone();

    let db = TestDb::new().await;
    // Two streams, as a deployment runs them: `confirmed` rows first, then `finalized` ones
    // promote them as the chain roots their slots.
    let stream = |commitment: &str| {
        KillOnDrop(
            Command::new(env!("CARGO_BIN_EXE_vault-indexer"))
                .args(["stream", "--source", "rpc", "--rpc-url", &rpc_url, "--commitment", commitment])
                .env("DATABASE_URL", db.url())
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .spawn()
                .expect("start vault-indexer"),
        )
    };
    let _confirmed = stream("confirmed");
    let _finalized = stream("finalized");

    let chain = RpcScenarioChain::new(&rpc_url);
    let options = ScenarioOptions { short_session_secs: 20, ..ScenarioOptions::default() };
    let expected =
        scenario::run(&chain, &admin, &options, &|line| eprintln!("  scenario: {line}")).await.expect("scenario");

    // The bot's database candidates are only as fresh as the indexer: let it catch up first.
    let (_, caught_up) = summary::wait_for(&db.pool, Duration::from_secs(90), |s| expected.indexed(s)).await.unwrap();
    assert!(caught_up, "the streaming indexer did not catch up with the scenario");
    let caller = Keypair::new();
    chain.airdrop(&caller.pubkey(), 1_000_000_000).await.unwrap();
    let bot = CleanupBot::new(
        RpcChain::new(&rpc_url, CommitmentConfig::confirmed()),
        RpcClusterView::new(&rpc_url),
        caller,
        BotConfig::default(),
    )
    .with_candidates(CandidateSource::Database { candidates: DbCandidates::new(db.pool.clone()), scan_every: 10 })
    .database_first();
    let report = bot.run_once().await.expect("bot round");
    assert!(!report.full_scan && report.from_db == 3, "the candidates came from the database: {report:?}");
    assert_eq!(sorted(report.cleaned.iter().map(|(v, _, _)| *v)), sorted(expected.to_clean.clone()));
    let cleaned = report.cleaned.len();
    // The bot counted only confirmed cleanups: right after, nothing is left for it (it once
    // sent every cleanup again because its first ones were only submitted).
    let again = bot.run_once().await.expect("second round");
    assert!(again.cleaned.is_empty() && again.skipped.is_empty(), "{again:?}");

    let (summary, settled) =
        summary::wait_for(&db.pool, Duration::from_secs(90), |s| expected.differences(s, cleaned).is_empty())
            .await
            .unwrap();
    assert!(settled, "the streaming indexer did not catch up: {:#?}", expected.differences(&summary, cleaned));
    assert_scenario_rows(&expected, &summary, cleaned);
    assert_eq!(bot_rewards(&db.pool, &expected).await, report.rewards);

    // Every landed row ends finalized, every refused one stays failed, and nothing is counted
    // twice on the way (the rows are the same as before, only their status moved).
    let (finalized, all_final) =
        summary::wait_for(&db.pool, Duration::from_secs(90), |s| s.unfinalized() == 0).await.unwrap();
    assert!(all_final, "rows still confirmed: {}", finalized.unfinalized());
    assert!(finalized.transactions.keys().all(|(_, status)| status == "finalized" || status == "failed"));
    assert_scenario_rows(&expected, &finalized, cleaned);
    assert_eq!(finalized.trades, summary.trades, "analytics do not count a status change again");

    // The same chain backfilled over RPC into an empty database gives the same rows.
    let backfilled = TestDb::new().await;
    let status = Command::new(env!("CARGO_BIN_EXE_vault-indexer"))
        .args(["backfill", "--rpc-url", &rpc_url])
        .env("DATABASE_URL", backfilled.url())
        .env("RUST_LOG", "error")
        .status()
        .expect("run vault-indexer backfill");
    assert!(status.success());
    indexing::assert_same_rows(
        &indexing::dump(&backfilled.pool).await,
        &indexing::dump(&db.pool).await,
        "backfill vs stream",
    );
}
