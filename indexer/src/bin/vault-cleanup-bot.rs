//! `vault-cleanup-bot`: cleans up vaults that may be cleaned, earning their rewards.
//!
//!   vault-cleanup-bot --rpc-url http://127.0.0.1:8899 --keypair bot.json [--once] [--interval-secs 10]
//!       [--database-url postgres://... [--scan-every 10]]
//!
//! Without a database every round scans the program's accounts. With one, most rounds load only
//! the vaults `cleanup_candidates_view` lists, and every `--scan-every`-th round scans.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use solana_commitment_config::CommitmentConfig;
use sqlx::postgres::PgPoolOptions;
use vault_indexer::cleanup_bot::{BotConfig, CandidateSource, CleanupBot, DbCandidates, RpcClusterView, DEFAULT_SCAN_EVERY};
use vault_indexer::service::RpcChain;

#[derive(Parser)]
#[command(name = "vault-cleanup-bot", about = "Cleans up expired, revoked or paused Ephemeral Vault sessions for their reward")]
struct Cli {
    #[arg(long, env = "VAULT_RPC_URL")]
    rpc_url: String,
    /// The bot's keypair (a Solana CLI JSON file): it signs, pays the fee and receives rewards.
    #[arg(long, env = "VAULT_BOT_KEYPAIR")]
    keypair: PathBuf,
    /// One round, then exit.
    #[arg(long)]
    once: bool,
    #[arg(long, default_value_t = 10)]
    interval_secs: u64,
    /// Lamports of profit (reward minus fee) a cleanup must bring.
    #[arg(long, default_value_t = 0)]
    min_profit: u64,
    /// The indexer's database, to take candidates from `cleanup_candidates_view` (SELECT on it
    /// is enough, e.g. the vault_readonly role). Only a hint: every vault is checked on chain.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// With a database: scan all of the program's accounts once every this many rounds (the
    /// first round always does), to find vaults the indexer has not written yet.
    #[arg(long, default_value_t = DEFAULT_SCAN_EVERY, value_parser = clap::value_parser!(u32).range(1..))]
    scan_every: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vault_indexer::logging::init("info");
    let cli = Cli::parse();
    let caller = vault_indexer::keypair_file::read(&cli.keypair)?;
    let config = BotConfig { min_profit: cli.min_profit, ..BotConfig::default() };
    let bot = CleanupBot::new(
        RpcChain::new(&cli.rpc_url, CommitmentConfig::confirmed()),
        RpcClusterView::new(&cli.rpc_url),
        caller,
        config,
    );
    let bot = match cli.database_url.as_deref().filter(|url| !url.is_empty()) {
        // Lazy, and quick to give up: a database that is down makes a round scan the chain
        // instead (see CandidateSource), it does not stop the bot from starting or stall it.
        Some(url) => {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect_lazy(url)
                .context("--database-url is not a PostgreSQL URL")?;
            bot.with_candidates(CandidateSource::Database { candidates: DbCandidates::new(pool), scan_every: cli.scan_every })
        }
        None => bot,
    };
    let (mut earned, mut cleaned) = (0u64, 0usize);
    loop {
        match bot.run_once().await {
            Ok(report) => {
                for (vault, reason, reward) in &report.cleaned {
                    tracing::info!(%vault, ?reason, reward, "cleaned");
                }
                for (vault, why) in &report.skipped {
                    tracing::info!(%vault, why, "skipped");
                }
                cleaned += report.cleaned.len();
                earned += report.rewards.saturating_sub(report.fees);
                let source = if report.full_scan {
                    "full scan".to_string()
                } else {
                    format!("{} candidates from the database", report.from_db)
                };
                println!(
                    "round ({source}): {} vaults seen, {} cleaned, reward {} - fees {} lamports; total {cleaned} cleaned, {earned} lamports earned",
                    report.vaults_seen,
                    report.cleaned.len(),
                    report.rewards,
                    report.fees
                );
            }
            Err(e) => tracing::warn!(error = %e, "round failed"),
        }
        if cli.once {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(cli.interval_secs)).await;
    }
}
