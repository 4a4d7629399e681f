//! `vault-service`: the session service.
//!
//! ```text
//! vault-service [--config FILE] [serve]          serve the HTTP API
//! vault-service [--config FILE] rotate-kek [--batch N] [--max-batches N]
//!                                                re-wrap every data key under VAULT_SERVICE_ACTIVE_KEK
//! ```
//!
//! Settings come from flags, then environment variables (VAULT_SERVICE_*, DATABASE_URL), then
//! the TOML file (`--config` or VAULT_SERVICE_CONFIG; crates/session-service/vault-service.example.toml
//! shows every key), then the defaults of [`ServiceConfig`]. The key-encryption keys are never in
//! that file: VAULT_SERVICE_KEKS (`id=base64,...`) or VAULT_SERVICE_KEK_FILE, and
//! VAULT_SERVICE_ACTIVE_KEK. A rotation keeps both the old and the new key configured until it
//! reports `complete`; it is resumable: run it again after an interruption.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use solana_commitment_config::CommitmentConfig;
use vault_session_service::{self as service, App, Chain, RpcChain, ServiceConfig};

#[derive(Parser)]
#[command(name = "vault-service", about = "The Ephemeral Vault session service (HTTP API)")]
struct Cli {
    /// TOML settings file (the keys of ServiceConfig).
    #[arg(long, env = "VAULT_SERVICE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the HTTP API (the default).
    Serve,
    /// Re-wraps every data key under the active KEK, in batches; resumable.
    RotateKek {
        #[arg(long, default_value_t = 500)]
        batch: u32,
        #[arg(long)]
        max_batches: Option<u64>,
    },
}

/// What the command line and the environment may set, laid over the settings file.
#[derive(Args, Serialize, Default)]
struct Flags {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// Address to listen on (default 127.0.0.1:8787).
    #[arg(long, env = "VAULT_SERVICE_LISTEN", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// The admin wallet (base58) whose signature the admin endpoints require.
    #[arg(long, env = "VAULT_SERVICE_ADMIN_WALLET", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_wallet: Option<String>,
    /// Sign and send trades for sessions whose key the service holds (1/true/yes).
    #[arg(long = "relay", env = "VAULT_SERVICE_RELAY", global = true, num_args = 0..=1,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(rename = "relay_enabled", skip_serializing_if = "Option::is_none")]
    relay: Option<bool>,
    /// JSON-RPC endpoint for the relay.
    #[arg(long, env = "VAULT_SERVICE_RPC_URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    rpc_url: Option<String>,
    /// Reverse proxies whose X-Forwarded-For is believed (comma-separated IPs).
    #[arg(long, env = "VAULT_SERVICE_TRUSTED_PROXIES", global = true, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    trusted_proxies: Vec<IpAddr>,
    /// Role the service's connections switch to (`SET ROLE`), e.g. vault_service.
    #[arg(long, env = "VAULT_SERVICE_DB_ROLE", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    db_role: Option<String>,
}

/// The database URL, and the rest of the settings as the service's configuration (the file's
/// shape: ServiceConfig's keys beside `database_url`).
fn settings(cli: &Cli) -> anyhow::Result<(String, ServiceConfig)> {
    let mut table = vault_cli::settings::layered_table(&cli.flags, cli.config.as_deref())?;
    let url = match table.remove("database_url") {
        Some(toml::Value::String(url)) => url,
        Some(_) => anyhow::bail!("database_url must be a string"),
        None => anyhow::bail!("no database: pass --database-url or set DATABASE_URL"),
    };
    Ok((url, vault_cli::settings::from_table(table, cli.config.as_deref())?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vault_cli::logging::init("info");
    let cli = Cli::parse();
    let (url, config) = settings(&cli)?;
    let keyring = service::config::load_keyring().context("loading the key-encryption keys")?;
    let pool = service::connect_pool(&url, config.db_role.as_deref(), 20).await.context("connecting")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let chain: Option<Arc<dyn Chain>> = match (&config.relay_enabled, &config.rpc_url) {
                (true, Some(rpc)) => Some(Arc::new(RpcChain::new(rpc, CommitmentConfig::confirmed()))),
                (true, None) => anyhow::bail!("the relay needs an RPC URL (--rpc-url or VAULT_SERVICE_RPC_URL)"),
                (false, _) => None,
            };
            let listener = tokio::net::TcpListener::bind(config.listen).await.context("binding")?;
            tracing::info!(addr = %listener.local_addr()?, relay = config.relay_enabled, "session service listening");
            let app = App::new(pool, config, keyring, chain)?;
            let server = service::spawn(app, listener);
            tokio::select! {
                _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
                r = server => r.context("server task")?,
            }
            Ok(())
        }
        Command::RotateKek { batch, max_batches } => {
            let report = service::rotate_kek(&pool, &keyring, batch, max_batches).await?;
            service::audit::append(
                &pool,
                service::audit::AuditEntry {
                    action: "service.kek.rotate",
                    actor: "vault-service".into(),
                    target: Some(keyring.active_id().chars().take(44).collect()),
                    success: true,
                    metadata: serde_json::to_value(&report)?,
                    ..Default::default()
                },
            )
            .await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vault-service.example.toml");

    #[test]
    fn the_example_settings_file_loads_with_every_key() {
        let cli = Cli::try_parse_from(["vault-service", "--config", EXAMPLE, "serve"]).unwrap();
        let table = vault_cli::settings::read_table(cli.config.as_deref()).unwrap();
        assert_eq!(table["database_url"].as_str(), Some("postgres://postgres@127.0.0.1:54329/ephemeral_vault"));
        let (_, c) = settings(&Cli { flags: Flags::default(), ..cli }).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8787".parse().unwrap());
        assert!(!c.relay_enabled);
        assert_eq!(c.db_role.as_deref(), Some("vault_service"));
        assert_eq!(c.alerts, service::AlertConfig::default(), "the example documents the alert defaults");
        assert_eq!(c.rate_limits.abuse_factor, 3);
        assert_eq!(c.rate_limits.overrides.len(), 1);
    }

    #[test]
    fn flags_override_the_example_file() {
        let cli = Cli::try_parse_from([
            "vault-service",
            "--config",
            EXAMPLE,
            "--relay",
            "--rpc-url",
            "http://127.0.0.1:8899",
            "--trusted-proxies",
            "127.0.0.2,127.0.0.3",
        ])
        .unwrap();
        let (_, c) = settings(&cli).unwrap();
        assert!(c.relay_enabled);
        assert_eq!(c.rpc_url.as_deref(), Some("http://127.0.0.1:8899"));
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.max_page, 200, "the file's value stays where no flag is given");
    }
}
