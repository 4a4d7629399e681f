//! `vault-indexer`: streams the Ephemeral Vault program's transactions into PostgreSQL.
//!
//!   vault-indexer migrate
//!   vault-indexer stream --source grpc --grpc-endpoint http://127.0.0.1:10000
//!   vault-indexer stream --source rpc --rpc-url http://127.0.0.1:8899
//!   vault-indexer backfill --rpc-url http://127.0.0.1:8899 [--before SIGNATURE]
//!   vault-indexer reprocess [--rpc-url http://127.0.0.1:8899]
//!
//! Settings come from flags, then environment variables (VAULT_*), then a TOML file
//! (`--config`, see crates/indexer/vault-indexer.example.toml), then defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use vault_indexer::alerts::AlertRules;
use vault_indexer::chain_tx::Commitment;
use vault_indexer::decode::DecodedTx;
use vault_indexer::ingest::bootstrap::RpcVaultAccounts;
use vault_indexer::ingest::{load_cursor, Ingest};
use vault_indexer::metrics::{IndexerMetrics, Role};
use vault_indexer::pipeline::{self, PipelineConfig};
use vault_indexer::sources::rpc::{RpcConfig, RpcSource};
use vault_indexer::sources::yellowstone::{YellowstoneConfig, YellowstoneSource};
use vault_indexer::sources::{SourceItem, TransactionSource};
use vault_indexer::writer_lock::WriterLock;

#[derive(Parser)]
#[command(name = "vault-indexer", about = "Indexes the Ephemeral Vault program into PostgreSQL")]
struct Cli {
    /// TOML file with settings (crates/indexer/vault-indexer.example.toml shows every key).
    #[arg(long, env = "VAULT_INDEXER_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, Serialize, Deserialize, Debug)]
#[serde(rename_all = "lowercase")]
enum SourceKind {
    Grpc,
    Rpc,
}

#[derive(Clone, Copy, ValueEnum, Serialize, Deserialize, Debug)]
#[serde(rename_all = "lowercase")]
enum CommitmentArg {
    Confirmed,
    Finalized,
}

impl From<CommitmentArg> for Commitment {
    fn from(c: CommitmentArg) -> Self {
        match c {
            CommitmentArg::Confirmed => Commitment::Confirmed,
            CommitmentArg::Finalized => Commitment::Finalized,
        }
    }
}

/// What the command line and the environment may set; the same keys as [`Settings`], laid over
/// the `--config` file (see vault_cli::settings).
#[derive(Args, Serialize, Default)]
struct Flags {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// Where transactions come from (stream).
    #[arg(long, value_enum, env = "VAULT_SOURCE", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<SourceKind>,
    /// Yellowstone gRPC endpoint (`--source grpc`).
    #[arg(long, env = "VAULT_GRPC_ENDPOINT", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    grpc_endpoint: Option<String>,
    #[arg(long, env = "VAULT_GRPC_X_TOKEN", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    grpc_x_token: Option<String>,
    /// Seconds without any message on the gRPC stream (pings included) before resubscribing
    /// (default 30).
    #[arg(long, env = "VAULT_GRPC_SILENCE_TIMEOUT_SECS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    grpc_silence_timeout_secs: Option<u64>,
    /// JSON-RPC URL: the source for `--source rpc` and backfill, the gap filler for `--source grpc`.
    #[arg(long, env = "VAULT_RPC_URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    rpc_url: Option<String>,
    /// An archive node that fills gaps --rpc-url cannot list (its ledger starts above the cursor).
    #[arg(long, env = "VAULT_FALLBACK_RPC_URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback_rpc_url: Option<String>,
    /// confirmed (fresh rows) or finalized (promotions); default confirmed.
    #[arg(long, value_enum, env = "VAULT_COMMITMENT", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    commitment: Option<CommitmentArg>,
    /// Slot to start from when nothing is indexed yet (gRPC).
    #[arg(long, env = "VAULT_START_SLOT", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    start_slot: Option<u64>,
    /// Where to serve Prometheus metrics.
    #[arg(long, env = "VAULT_METRICS_ADDR", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_addr: Option<SocketAddr>,
    /// Most transactions per database transaction (default 4096, pipeline::DEFAULT_BATCH_SIZE).
    #[arg(long, env = "VAULT_BATCH_SIZE", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_size: Option<usize>,
    /// Slots a transaction may wait for its session (parked) before it moves to
    /// indexer_skipped (default 9000, about an hour).
    #[arg(long, env = "VAULT_PARK_MAX_SLOTS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    park_max_slots: Option<u64>,
    /// Do not read unknown vaults from the chain over --rpc-url (bootstrapping); their
    /// transactions park instead.
    #[arg(long, env = "VAULT_NO_BOOTSTRAP", global = true, num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    no_bootstrap: Option<bool>,
}

#[derive(Subcommand)]
enum Command {
    /// Applies the migrations.
    Migrate,
    /// Follows the program live, as the writer; while another process holds the writer lock of
    /// the same source, stands by and takes over when it goes.
    Stream,
    /// Fetches past transactions over RPC, newest to oldest page by page, down to the stored
    /// cursor (or the program's first transaction), and writes them oldest first.
    Backfill {
        /// Start below this signature instead of the newest one.
        #[arg(long)]
        before: Option<String>,
        /// Do not go below this slot.
        #[arg(long)]
        from_slot: Option<u64>,
    },
    /// Reads again what was recorded in indexer_skipped (run after upgrading the indexer): from
    /// the stored raw answer, else fetched again over --rpc-url. Each row is applied once.
    Reprocess,
}

/// Every setting, after layering; the file's shape.
#[derive(Deserialize, Default, Debug)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    database_url: Option<String>,
    source: Option<SourceKind>,
    grpc_endpoint: Option<String>,
    grpc_x_token: Option<String>,
    grpc_silence_timeout_secs: Option<u64>,
    rpc_url: Option<String>,
    fallback_rpc_url: Option<String>,
    commitment: Option<CommitmentArg>,
    start_slot: Option<u64>,
    metrics_addr: Option<SocketAddr>,
    batch_size: Option<usize>,
    park_max_slots: Option<u64>,
    no_bootstrap: Option<bool>,
    alerts: AlertRules,
}

/// Runs `source` into the database as the writer: waits (a standby) until this process holds
/// the source's writer lock, then writes until the source ends - or the lock's connection is
/// lost, when it stops at once (the process exits with an error; restarted, it stands by).
async fn run_as_writer<S: TransactionSource>(
    database_url: &str,
    pool: sqlx::PgPool,
    ingest: Ingest,
    source: S,
    metrics: Arc<IndexerMetrics>,
    config: PipelineConfig,
) -> anyhow::Result<()> {
    let poll = std::time::Duration::from_millis(250);
    let mut lock = WriterLock::acquire(database_url, source.name(), &metrics, poll).await;
    tokio::select! {
        ran = pipeline::run(pool, ingest, source, metrics.clone(), config) => ran,
        lost = lock.lost(std::time::Duration::from_secs(1)) => {
            metrics.role.store(Role::Standby as u64, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(error = %lost, "the writer lock's connection is lost: stopping at once");
            Err(anyhow::anyhow!("writer lock lost: {lost}"))
        }
    }
}

/// The RPC source (or gap filler), with the fallback for gaps when one is configured.
fn rpc_source(
    url: String,
    fallback: Option<String>,
    commitment: Commitment,
    metrics: &Arc<IndexerMetrics>,
) -> RpcSource {
    let mut source = RpcSource::new(RpcConfig::new(url, commitment));
    if let Some(fallback) = fallback {
        source = source.with_fallback(RpcSource::new(RpcConfig::new(fallback, commitment)));
    }
    source.with_metrics(metrics.clone())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vault_cli::logging::init("info");
    let cli = Cli::parse();
    let file: Settings = vault_cli::settings::layered(&cli.flags, cli.config.as_deref())?;
    let database_url = file.database_url.clone().context("no database: pass --database-url or set DATABASE_URL")?;
    let pool = vault_db::connect(&database_url).await.context("connecting to PostgreSQL")?;
    vault_db::migrate(&pool).await.context("applying migrations")?;
    let mut ingest = Ingest::new(file.alerts.clone());
    if let Some(slots) = file.park_max_slots {
        ingest.park_max_slots = slots;
    }
    if let (Some(url), false) = (&file.rpc_url, file.no_bootstrap.unwrap_or(false)) {
        let commitment: Commitment = file.commitment.unwrap_or(CommitmentArg::Confirmed).into();
        let accounts = RpcVaultAccounts::new(url, commitment);
        ingest = ingest.with_bootstrap(Arc::new(accounts));
    }
    let mut pipeline_config = PipelineConfig::default();
    if let Some(size) = file.batch_size {
        pipeline_config.batch_size = size.max(1);
    }

    match cli.command {
        Command::Migrate => {
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Stream => {
            let metrics = Arc::new(IndexerMetrics::default());
            if let Some(addr) = file.metrics_addr {
                let (bound, _) = metrics.clone().serve(addr).await?;
                tracing::info!("metrics on http://{bound}/metrics");
            }
            let commitment: Commitment = file.commitment.unwrap_or(CommitmentArg::Confirmed).into();
            let rpc_url = file.rpc_url.clone();
            if let Some(url) = &rpc_url {
                // The chain's tip, read independently of the source: a stalled source shows as lag.
                let tip = RpcSource::new(RpcConfig::new(url.clone(), commitment));
                tokio::spawn(tip.follow_tip(metrics.clone(), std::time::Duration::from_secs(2)));
            }
            match file.source.context("choose a source: --source grpc|rpc")? {
                SourceKind::Grpc => {
                    let endpoint = file.grpc_endpoint.clone().context("--grpc-endpoint is required")?;
                    let mut config = YellowstoneConfig::new(endpoint, commitment);
                    config.x_token = file.grpc_x_token.clone();
                    config.start_slot = file.start_slot;
                    if let Some(secs) = file.grpc_silence_timeout_secs {
                        config.silence_timeout = std::time::Duration::from_secs(secs.max(1));
                    }
                    match rpc_url {
                        Some(url) => {
                            let filler = rpc_source(url, file.fallback_rpc_url.clone(), commitment, &metrics);
                            let source =
                                YellowstoneSource::with_gap_filler(config, filler).with_metrics(metrics.clone());
                            run_as_writer(&database_url, pool, ingest, source, metrics, pipeline_config).await
                        }
                        None => {
                            let source = YellowstoneSource::new(config).with_metrics(metrics.clone());
                            run_as_writer(&database_url, pool, ingest, source, metrics, pipeline_config).await
                        }
                    }
                }
                SourceKind::Rpc => {
                    let url = rpc_url.context("--rpc-url is required for --source rpc")?;
                    let source = rpc_source(url, file.fallback_rpc_url.clone(), commitment, &metrics);
                    run_as_writer(&database_url, pool, ingest, source, metrics, pipeline_config).await
                }
            }
        }
        Command::Backfill { before, from_slot } => {
            let url = file.rpc_url.clone().context("--rpc-url is required")?;
            let source = RpcSource::new(RpcConfig::new(url, Commitment::Confirmed));
            let cursor = load_cursor(&pool, "rpc").await?;
            let before = before.map(|s| s.parse()).transpose().context("--before is not a signature")?;
            let signatures = source
                .signatures_between(cursor.as_ref().and_then(|c| c.signature.as_deref()), before, from_slot)
                .await?;
            eprintln!("backfilling {} transactions", signatures.len());
            let (sender, mut receiver) = tokio::sync::mpsc::channel::<SourceItem>(1_024);
            let total = signatures.len();
            let fetch = async move {
                // The sender moves in and drops at the end, which ends the writer below.
                source
                    .fetch_in_order(&signatures, &sender, |done| {
                        if done % 100 == 0 || done == total {
                            eprint!("\r  fetched {done}/{total}");
                        }
                    })
                    .await
            };
            let write = async {
                let (mut batch, mut unreadable) = (vec![], vec![]);
                let mut written = 0usize;
                while let Some(item) = receiver.recv().await {
                    match item {
                        SourceItem::Tx(tx) => batch.push(DecodedTx::new(tx)),
                        SourceItem::Unreadable(u) => unreadable.push(u),
                    }
                    if batch.len() + unreadable.len() >= pipeline_config.batch_size {
                        ingest.write_batch_with_unreadable(&pool, "backfill", &batch, &unreadable, None).await?;
                        written += batch.len();
                        batch.clear();
                        unreadable.clear();
                    }
                }
                ingest.write_batch_with_unreadable(&pool, "backfill", &batch, &unreadable, None).await?;
                anyhow::Ok(written + batch.len())
            };
            let (fetched, written) = tokio::join!(fetch, write);
            fetched?;
            eprintln!("\nbackfill wrote {} transactions", written?);
            Ok(())
        }
        Command::Reprocess => {
            let commitment: Commitment = file.commitment.unwrap_or(CommitmentArg::Confirmed).into();
            let rpc = file.rpc_url.clone().map(|url| RpcSource::new(RpcConfig::new(url, commitment)));
            let report = vault_indexer::reprocess::reprocess(&pool, &ingest, rpc.as_ref(), commitment).await?;
            println!(
                "reprocessed: {} written, {} parked, {} ignored; {} still unreadable",
                report.written,
                report.parked,
                report.ignored,
                report.still_unreadable.len()
            );
            for (signature, why) in &report.still_unreadable {
                println!("  {signature}: {why}");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn example() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/vault-indexer.example.toml"))
    }

    #[test]
    fn the_example_settings_file_loads_with_every_key() {
        let s: Settings = vault_cli::settings::layered(&Flags::default(), Some(example())).unwrap();
        assert_eq!(s.database_url.as_deref(), Some("postgres://postgres@127.0.0.1:54329/ephemeral_vault"));
        assert!(matches!(s.source, Some(SourceKind::Rpc)));
        assert!(matches!(s.commitment, Some(CommitmentArg::Confirmed)));
        assert_eq!(s.batch_size, Some(4_096));
        assert_eq!(s.alerts, AlertRules::default(), "the example documents the defaults");
    }

    #[test]
    fn a_flag_overrides_the_example_file() {
        let cli = Cli::try_parse_from([
            "vault-indexer",
            "--config",
            example().to_str().unwrap(),
            "stream",
            "--rpc-url",
            "http://flag:1",
            "--source",
            "grpc",
        ])
        .unwrap();
        let s: Settings = vault_cli::settings::layered(&cli.flags, cli.config.as_deref()).unwrap();
        assert_eq!(s.rpc_url.as_deref(), Some("http://flag:1"));
        assert!(matches!(s.source, Some(SourceKind::Grpc)));
        assert_eq!(s.metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));
    }
}
