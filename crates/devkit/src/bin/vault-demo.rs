//! `vault-demo`: the main job's driver (scripts/demo.sh runs it against a local validator while
//! `vault-indexer stream` follows the same chain).
//!
//!   vault-demo keygen PATH            write a keypair file unless it exists; print its address
//!   vault-demo run --rpc-url URL --admin-keypair PATH --database-url URL
//!
//! `run` drives the scenario (see `vault_devkit::scenario`), runs one round of the cleanup bot,
//! waits for the indexer to catch up, prints the summary from PostgreSQL and checks it against
//! what the scenario implies; it exits non-zero when they disagree.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use solana_commitment_config::CommitmentConfig;
use solana_keypair::Keypair;
use solana_signer::Signer;
use vault_chain::keypair_file;
use vault_chain::RpcChain;
use vault_cleanup_bot::{BotConfig, CandidateSource, CleanupBot, DbCandidates, RpcClusterView};
use vault_devkit::scenario::{self, RpcScenarioChain, ScenarioChain, ScenarioOptions};
use vault_devkit::summary::{self, Summary};

#[derive(Parser)]
#[command(
    name = "vault-demo",
    about = "Drives Ephemeral Vault sessions on a local chain and summarises what was indexed"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes a new keypair to PATH (Solana CLI JSON) unless the file exists; prints the address.
    Keygen { path: PathBuf },
    /// Drives the scenario, runs the cleanup bot once, and prints the indexed summary.
    Run {
        #[arg(long, env = "VAULT_RPC_URL")]
        rpc_url: String,
        /// The program's upgrade authority: initialises the config on a fresh chain.
        #[arg(long)]
        admin_keypair: PathBuf,
        /// The database the indexer writes.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// Lifetime of the sessions left to expire.
        #[arg(long, default_value_t = 20)]
        short_session_secs: i64,
        /// How long to wait for the indexer to catch up.
        #[arg(long, default_value_t = 90)]
        settle_secs: u64,
        /// Also wait until every landed row is finalized (a `--commitment finalized` indexer
        /// must be following the chain too).
        #[arg(long)]
        wait_finalized: bool,
    },
}

fn say(line: &str) {
    println!("  - {line}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vault_cli::logging::init("warn");
    match Cli::parse().command {
        Command::Keygen { path } => {
            println!("{}", keypair_file::read_or_create(&path)?.pubkey());
            Ok(())
        }
        Command::Run { rpc_url, admin_keypair, database_url, short_session_secs, settle_secs, wait_finalized } => {
            let admin = keypair_file::read(&admin_keypair)?;
            let pool = vault_db::connect(&database_url).await.context("connecting to PostgreSQL")?;
            let options = ScenarioOptions { short_session_secs, ..ScenarioOptions::default() };
            let chain = RpcScenarioChain::new(&rpc_url);

            println!("driving sessions on {rpc_url}");
            let started = Instant::now();
            let expected = scenario::run(&chain, &admin, &options, &say).await?;
            let rows: u64 = expected.transactions.values().sum();
            println!(
                "  {} transactions to the program ({rows} vault actions) in {:.0} s",
                expected.sent,
                started.elapsed().as_secs_f64()
            );

            // The bot's database candidates are only as fresh as the indexer.
            println!("waiting for the indexer to catch up with the scenario");
            let (_, caught_up) =
                summary::wait_for(&pool, Duration::from_secs(settle_secs), |s: &Summary| expected.indexed(s)).await?;
            if !caught_up {
                bail!("the indexer did not catch up with the scenario within {settle_secs} s; see its log");
            }

            println!(
                "cleanup bot: a round from cleanup_candidates_view (each checked on chain), then a full chain scan"
            );
            let caller = Keypair::new();
            chain.airdrop(&caller.pubkey(), 1_000_000_000).await?;
            let bot = CleanupBot::new(
                RpcChain::new(&rpc_url, CommitmentConfig::confirmed()),
                RpcClusterView::new(&rpc_url),
                caller,
                BotConfig::default(),
            )
            .with_candidates(CandidateSource::Database { candidates: DbCandidates::new(pool.clone()), scan_every: 2 })
            .database_first();
            let mut cleaned_vaults = vec![];
            for _ in 0..2 {
                let report = bot.run_once().await?;
                let source = if report.full_scan {
                    "full scan".to_string()
                } else {
                    format!("{} candidates from the database", report.from_db)
                };
                for (vault, reason, reward) in &report.cleaned {
                    say(&format!("cleaned {vault} ({reason:?}), reward {reward} lamports"));
                }
                for (vault, why) in &report.skipped {
                    say(&format!("skipped {vault}: {why}"));
                }
                println!(
                    "  round ({source}): {} vaults loaded, {} cleaned, earned {} lamports after {} in fees",
                    report.vaults_seen,
                    report.cleaned.len(),
                    report.rewards.saturating_sub(report.fees),
                    report.fees
                );
                cleaned_vaults.extend(report.cleaned.iter().map(|(vault, _, _)| *vault));
            }

            println!(
                "waiting for the indexer to catch up{}",
                if wait_finalized { " and the chain to finalize every transaction" } else { "" }
            );
            let cleaned = cleaned_vaults.len();
            let (summary, settled) = summary::wait_for(&pool, Duration::from_secs(settle_secs), |s: &Summary| {
                expected.differences(s, cleaned).is_empty() && (!wait_finalized || s.unfinalized() == 0)
            })
            .await?;
            println!("\nSummary (read back from PostgreSQL)\n{summary}");
            let differences = expected.differences(&summary, cleaned);
            if !settled || !differences.is_empty() {
                for d in &differences {
                    eprintln!("mismatch: {d}");
                }
                bail!("the indexed rows do not match the scenario");
            }
            let (mut wanted, mut got) = (expected.to_clean.clone(), cleaned_vaults);
            wanted.sort();
            got.sort();
            if got != wanted {
                bail!("the bot cleaned {got:?}; the scenario left {wanted:?} to clean");
            }
            println!("every table matches what the scenario implies");
            Ok(())
        }
    }
}
