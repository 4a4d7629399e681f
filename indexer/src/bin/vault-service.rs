//! The session service.
//!
//! ```text
//! vault-service [serve]                          serve the HTTP API
//! vault-service rotate-kek [--batch N] [--max-batches N]
//!                                                re-wrap every data key under VAULT_SERVICE_ACTIVE_KEK
//! ```
//!
//! Environment: DATABASE_URL; the key-encryption keys in VAULT_SERVICE_KEKS (`id=base64,...`) or
//! VAULT_SERVICE_KEK_FILE, and VAULT_SERVICE_ACTIVE_KEK; the rest of the configuration in
//! VAULT_SERVICE_CONFIG (JSON, see service::config::ServiceConfig) and the overrides listed at
//! ServiceConfig::from_env. A rotation keeps both the old and the new key configured until it
//! reports `complete`; it is resumable: run it again after an interruption.

use std::sync::Arc;

use anyhow::Context;
use solana_commitment_config::CommitmentConfig;
use vault_indexer::service::{self, App, Chain, RpcChain, ServiceConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vault_indexer::logging::init("info");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL is not set")?;
    let config = ServiceConfig::from_env().context("reading the configuration")?;
    let keyring = service::config::load_keyring().context("loading the key-encryption keys")?;
    let pool = service::connect_pool(&url, config.db_role.as_deref(), 20).await.context("connecting")?;
    match args.first().map(String::as_str) {
        None | Some("serve") => {
            let chain: Option<Arc<dyn Chain>> = match (&config.relay_enabled, &config.rpc_url) {
                (true, Some(rpc)) => Some(Arc::new(RpcChain::new(rpc, CommitmentConfig::confirmed()))),
                (true, None) => anyhow::bail!("the relay needs VAULT_SERVICE_RPC_URL"),
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
        Some("rotate-kek") => {
            let mut batch = 500u32;
            let mut max_batches = None;
            let mut it = args.iter().skip(1);
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--batch" => batch = it.next().context("--batch N")?.parse()?,
                    "--max-batches" => max_batches = Some(it.next().context("--max-batches N")?.parse()?),
                    other => anyhow::bail!("unknown argument {other}"),
                }
            }
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
        Some(other) => anyhow::bail!("unknown command {other}; expected serve or rotate-kek"),
    }
}
