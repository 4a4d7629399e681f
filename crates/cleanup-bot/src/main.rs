//! `vault-cleanup-bot`: cleans up vaults that may be cleaned, earning their rewards.
//!
//!   vault-cleanup-bot --rpc-url http://127.0.0.1:8899 --keypair bot.json [--once] [--interval-secs 10]
//!       [--database-url postgres://... [--scan-every 10]] [--config vault-cleanup-bot.toml]
//!
//! Settings come from flags, then environment variables, then the TOML file, then defaults.
//!
//! Without a database every round scans the program's accounts. With one, most rounds load only
//! the vaults `cleanup_candidates_view` lists, and every `--scan-every`-th round scans.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser};
use serde::{Deserialize, Serialize};
use solana_commitment_config::CommitmentConfig;
use vault_chain::RpcChain;
use vault_cleanup_bot::{BotConfig, CandidateSource, CleanupBot, DbCandidates, RpcClusterView, DEFAULT_SCAN_EVERY};

#[derive(Parser)]
#[command(
    name = "vault-cleanup-bot",
    about = "Cleans up expired, revoked or paused Ephemeral Vault sessions for their reward"
)]
struct Cli {
    /// TOML file with settings (crates/cleanup-bot/vault-cleanup-bot.example.toml shows every key).
    #[arg(long, env = "VAULT_BOT_CONFIG")]
    config: Option<PathBuf>,
    /// One round, then exit.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    flags: Flags,
}

/// What the command line and the environment may set, laid over the `--config` file.
#[derive(Args, Serialize, Default)]
struct Flags {
    /// JSON-RPC endpoint of the cluster.
    #[arg(long, env = "VAULT_RPC_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    rpc_url: Option<String>,
    /// The bot's keypair (a Solana CLI JSON file): it signs, pays the fee and receives rewards.
    #[arg(long, env = "VAULT_BOT_KEYPAIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    keypair: Option<PathBuf>,
    /// Seconds between rounds (default 10).
    #[arg(long, env = "VAULT_BOT_INTERVAL_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    interval_secs: Option<u64>,
    /// Lamports of profit (reward minus fee) a cleanup must bring (default 0).
    #[arg(long, env = "VAULT_BOT_MIN_PROFIT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    min_profit: Option<u64>,
    /// The indexer's database, to take candidates from `cleanup_candidates_view` (SELECT on it
    /// is enough, e.g. the vault_readonly role). Only a hint: every vault is checked on chain.
    #[arg(long, env = "DATABASE_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// With a database: scan all of the program's accounts once every this many rounds (the
    /// first round always does), to find vaults the indexer has not written yet (default 10).
    #[arg(long, env = "VAULT_BOT_SCAN_EVERY", value_parser = clap::value_parser!(u32).range(1..))]
    #[serde(skip_serializing_if = "Option::is_none")]
    scan_every: Option<u32>,
}

/// Every setting after layering; the file's shape.
#[derive(Deserialize, Debug)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    rpc_url: Option<String>,
    keypair: Option<PathBuf>,
    interval_secs: u64,
    min_profit: u64,
    database_url: Option<String>,
    scan_every: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rpc_url: None,
            keypair: None,
            interval_secs: 10,
            min_profit: 0,
            database_url: None,
            scan_every: DEFAULT_SCAN_EVERY,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vault_cli::logging::init("info");
    let cli = Cli::parse();
    let settings: Settings = vault_cli::settings::layered(&cli.flags, cli.config.as_deref())?;
    anyhow::ensure!(settings.scan_every >= 1, "scan_every must be at least 1");
    let rpc_url = settings.rpc_url.clone().context("no cluster: pass --rpc-url or set VAULT_RPC_URL")?;
    let keypair = settings.keypair.clone().context("no keypair: pass --keypair or set VAULT_BOT_KEYPAIR")?;
    let caller = vault_chain::keypair_file::read(&keypair)?;
    let config = BotConfig { min_profit: settings.min_profit, ..BotConfig::default() };
    let bot = CleanupBot::new(
        RpcChain::new(&rpc_url, CommitmentConfig::confirmed()),
        RpcClusterView::new(&rpc_url),
        caller,
        config,
    );
    let bot = match settings.database_url.as_deref().filter(|url| !url.is_empty()) {
        // Lazy, and quick to give up: a database that is down makes a round scan the chain
        // instead (see CandidateSource), it does not stop the bot from starting or stall it.
        Some(url) => {
            let pool_settings =
                vault_db::PoolSettings { max_connections: 1, acquire_timeout: Duration::from_secs(5), role: None };
            let pool = pool_settings
                .connect_lazy(url.parse().context("--database-url is not a PostgreSQL URL")?)
                .context("--database-url")?;
            bot.with_candidates(CandidateSource::Database {
                candidates: DbCandidates::new(pool),
                scan_every: settings.scan_every,
            })
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
        tokio::time::sleep(Duration::from_secs(settings.interval_secs)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_example_settings_file_loads_with_every_key() {
        let example = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/vault-cleanup-bot.example.toml"));
        let s: Settings = vault_cli::settings::layered(&Flags::default(), Some(example)).unwrap();
        assert_eq!(s.rpc_url.as_deref(), Some("http://127.0.0.1:8899"));
        assert_eq!(s.keypair.as_deref(), Some(Path::new("bot.json")));
        assert_eq!((s.interval_secs, s.min_profit, s.scan_every), (10, 5_000, 10));
        assert_eq!(s.database_url.as_deref(), Some("postgres://vault_readonly@127.0.0.1:54329/ephemeral_vault"));
    }
}
