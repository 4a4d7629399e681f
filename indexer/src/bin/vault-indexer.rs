//! `vault-indexer`: streams the Ephemeral Vault program's transactions into PostgreSQL.
//!
//!   vault-indexer migrate
//!   vault-indexer stream --source grpc --grpc-endpoint http://127.0.0.1:10000
//!   vault-indexer stream --source rpc --rpc-url http://127.0.0.1:8899
//!   vault-indexer backfill --rpc-url http://127.0.0.1:8899 [--before SIGNATURE]
//!
//! Settings come from flags, then environment variables (VAULT_*), then a TOML file
//! (`--config`), then defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use vault_indexer::alerts::AlertRules;
use vault_indexer::chain_tx::Commitment;
use vault_indexer::ingest::{load_cursor, Ingest};
use vault_indexer::metrics::IndexerMetrics;
use vault_indexer::pipeline::{self, PipelineConfig};
use vault_indexer::sources::rpc::{RpcConfig, RpcSource};
use vault_indexer::sources::yellowstone::{YellowstoneConfig, YellowstoneSource};

#[derive(Parser)]
#[command(name = "vault-indexer", about = "Indexes the Ephemeral Vault program into PostgreSQL")]
struct Cli {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// TOML file with settings (see indexer/vault-indexer.example.toml).
    #[arg(long, env = "VAULT_INDEXER_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, Deserialize, Debug)]
#[serde(rename_all = "lowercase")]
enum SourceKind {
    Grpc,
    Rpc,
}

#[derive(Clone, Copy, ValueEnum, Deserialize, Debug)]
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

#[derive(Subcommand)]
enum Command {
    /// Applies the migrations.
    Migrate,
    /// Follows the program live.
    Stream {
        #[arg(long, value_enum, env = "VAULT_SOURCE")]
        source: Option<SourceKind>,
        #[arg(long, env = "VAULT_GRPC_ENDPOINT")]
        grpc_endpoint: Option<String>,
        #[arg(long, env = "VAULT_GRPC_X_TOKEN")]
        grpc_x_token: Option<String>,
        /// JSON-RPC URL: the source for `--source rpc`, the gap filler for `--source grpc`.
        #[arg(long, env = "VAULT_RPC_URL")]
        rpc_url: Option<String>,
        #[arg(long, value_enum, env = "VAULT_COMMITMENT")]
        commitment: Option<CommitmentArg>,
        /// Slot to start from when nothing is indexed yet (gRPC).
        #[arg(long, env = "VAULT_START_SLOT")]
        start_slot: Option<u64>,
        /// Where to serve Prometheus metrics.
        #[arg(long, env = "VAULT_METRICS_ADDR")]
        metrics_addr: Option<SocketAddr>,
    },
    /// Fetches past transactions over RPC, newest to oldest page by page, down to the stored
    /// cursor (or the program's first transaction), and writes them oldest first.
    Backfill {
        #[arg(long, env = "VAULT_RPC_URL")]
        rpc_url: Option<String>,
        /// Start below this signature instead of the newest one.
        #[arg(long)]
        before: Option<String>,
        /// Do not go below this slot.
        #[arg(long)]
        from_slot: Option<u64>,
    },
}

/// The TOML file's shape; every field optional.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    source: Option<SourceKind>,
    grpc_endpoint: Option<String>,
    grpc_x_token: Option<String>,
    rpc_url: Option<String>,
    commitment: Option<CommitmentArg>,
    start_slot: Option<u64>,
    metrics_addr: Option<SocketAddr>,
    batch_size: Option<usize>,
    alerts: AlertRules,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vault_indexer::logging::init("info");
    let cli = Cli::parse();
    let file: FileConfig = match &cli.config {
        Some(path) => toml::from_str(&std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?)
            .with_context(|| format!("parsing {}", path.display()))?,
        None => FileConfig::default(),
    };
    let database_url = cli
        .database_url
        .or(file.database_url.clone())
        .context("no database: pass --database-url or set DATABASE_URL")?;
    let pool = vault_indexer::db::connect(&database_url).await.context("connecting to PostgreSQL")?;
    vault_indexer::db::migrate(&pool).await.context("applying migrations")?;
    let ingest = Ingest::new(file.alerts.clone());
    let mut pipeline_config = PipelineConfig::default();
    if let Some(size) = file.batch_size {
        pipeline_config.batch_size = size.max(1);
    }

    match cli.command {
        Command::Migrate => {
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Stream { source, grpc_endpoint, grpc_x_token, rpc_url, commitment, start_slot, metrics_addr } => {
            let metrics = Arc::new(IndexerMetrics::default());
            if let Some(addr) = metrics_addr.or(file.metrics_addr) {
                let (bound, _) = metrics.clone().serve(addr).await?;
                tracing::info!("metrics on http://{bound}/metrics");
            }
            let commitment: Commitment = commitment.or(file.commitment).unwrap_or(CommitmentArg::Confirmed).into();
            let rpc_url = rpc_url.or(file.rpc_url.clone());
            match source.or(file.source).context("choose a source: --source grpc|rpc")? {
                SourceKind::Grpc => {
                    let endpoint = grpc_endpoint.or(file.grpc_endpoint.clone()).context("--grpc-endpoint is required")?;
                    let mut config = YellowstoneConfig::new(endpoint, commitment);
                    config.x_token = grpc_x_token.or(file.grpc_x_token.clone());
                    config.start_slot = start_slot.or(file.start_slot);
                    match rpc_url {
                        Some(url) => {
                            let filler = RpcSource::new(RpcConfig::new(url, commitment));
                            let source = YellowstoneSource::with_gap_filler(config, filler);
                            pipeline::run(pool, ingest, source, metrics, pipeline_config).await
                        }
                        None => pipeline::run(pool, ingest, YellowstoneSource::new(config), metrics, pipeline_config).await,
                    }
                }
                SourceKind::Rpc => {
                    let url = rpc_url.context("--rpc-url is required for --source rpc")?;
                    let source = RpcSource::new(RpcConfig::new(url, commitment));
                    pipeline::run(pool, ingest, source, metrics, pipeline_config).await
                }
            }
        }
        Command::Backfill { rpc_url, before, from_slot } => {
            let url = rpc_url.or(file.rpc_url).context("--rpc-url is required")?;
            let source = RpcSource::new(RpcConfig::new(url, Commitment::Confirmed));
            let cursor = load_cursor(&pool, "rpc").await?;
            let before = before.map(|s| s.parse()).transpose().context("--before is not a signature")?;
            let signatures = source
                .signatures_between(cursor.as_ref().and_then(|c| c.signature.as_deref()), before, from_slot)
                .await?;
            eprintln!("backfilling {} transactions", signatures.len());
            let (sender, mut receiver) = tokio::sync::mpsc::channel(1_024);
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
                let mut batch = vec![];
                let mut written = 0usize;
                while let Some(tx) = receiver.recv().await {
                    batch.push(tx);
                    if batch.len() >= 256 {
                        ingest.write_batch(&pool, "backfill", &batch, None).await?;
                        written += batch.len();
                        batch.clear();
                    }
                }
                ingest.write_batch(&pool, "backfill", &batch, None).await?;
                anyhow::Ok(written + batch.len())
            };
            let (fetched, written) = tokio::join!(fetch, write);
            fetched?;
            eprintln!("\nbackfill wrote {} transactions", written?);
            Ok(())
        }
    }
}
