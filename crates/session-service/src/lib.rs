//! The session service: an HTTP JSON API (axum) over the same database as the indexer.
//!
//! - Registers sessions: the parent wallet sends the session's addresses and the ephemeral
//!   keypair (sealed by the browser, or in clear for relay deployments), which is stored under
//!   envelope encryption ([`crypto`]) in the session's row, next to the indexer's chain columns
//!   (the sharing rule is in [`store`]).
//! - Reads sessions, transactions, analytics, cleanup candidates and alerts; admins resolve
//!   alerts.
//! - Optionally relays trades and fee top-ups, signing as the delegate ([`relay`]).
//!
//! Every request is signed by the wallet whose data it touches ([`auth`]); every action, allowed
//! or refused, is appended to the audit log ([`audit`]), both done by the layer every route runs
//! behind ([`guard`]); session creation and relayed actions are rate limited ([`ratelimit`]);
//! suspicious use raises security alerts ([`alerts`]). The API is described in
//! `crates/session-service/openapi/session-service.json`, served at `/openapi.json`.
//!
//! Depends on `vault-chain` (the relay's sending) and `vault-db` (pool, amounts, the alert
//! writer); never on the indexer, the cleanup bot or the dev kit (a dev-dependency of its tests).

pub mod alerts;
pub mod api;
pub mod audit;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod error;
pub mod guard;
pub mod ratelimit;
pub mod relay;
pub mod store;
pub mod validate;
pub mod views;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPool};

use audit::Audit;
use error::ApiError;
use guard::Caller;
use store::SessionRow;

pub use config::{AlertConfig, Limit, RateAction, RateLimitConfig, ServiceConfig};
pub use crypto::{rotate_kek, Kek, Keyring, RotationReport};
pub use vault_chain::{Chain, ChainError, RpcChain, Sent};

/// Everything a request handler needs.
pub struct App {
    pub pool: PgPool,
    pub config: ServiceConfig,
    pub keyring: Keyring,
    /// Present when the relay is enabled.
    pub chain: Option<Arc<dyn Chain>>,
    admin_wallet: Option<String>,
    trusted_proxies: HashSet<IpAddr>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("config", &self.config)
            .field("keyring", &self.keyring)
            .field("relay", &self.chain.is_some())
            .finish_non_exhaustive()
    }
}

impl App {
    pub fn new(
        pool: PgPool,
        config: ServiceConfig,
        keyring: Keyring,
        chain: Option<Arc<dyn Chain>>,
    ) -> anyhow::Result<Arc<Self>> {
        let admin_wallet = match &config.admin_wallet {
            Some(w) => Some(
                validate::pubkey("admin_wallet", w)
                    .map_err(|e| anyhow::anyhow!("admin_wallet: {}", e.message))?
                    .to_string(),
            ),
            None => None,
        };
        if config.relay_enabled && chain.is_none() {
            anyhow::bail!("the relay is enabled but no chain is configured");
        }
        let chain = if config.relay_enabled { chain } else { None };
        let trusted_proxies = config.trusted_proxies.iter().map(|ip| ip.to_canonical()).collect();
        Ok(Arc::new(Self { pool, config, keyring, chain, admin_wallet, trusted_proxies }))
    }

    pub fn admin_wallet(&self) -> Option<&str> {
        self.admin_wallet.as_deref()
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
    /// address in X-Forwarded-For that is not a trusted proxy (walking from the right, since
    /// everything left of the proxies' own entries is whatever the client chose to send).
    pub fn client_ip(&self, peer: SocketAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        let peer_ip = peer.ip().to_canonical();
        if !self.trusted_proxies.contains(&peer_ip) {
            return peer_ip;
        }
        let mut client = peer_ip;
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip.to_canonical();
                    if !self.trusted_proxies.contains(&client) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }

    /// The session `raw_id` names, if it exists and belongs to the caller (another wallet's is
    /// "not found"); raises ip_change when it is used from an IP other than its registered one.
    /// Returns the row and whether the IP changed.
    pub async fn owned_session(
        &self,
        caller: &Caller,
        audit: &Audit,
        raw_id: &str,
    ) -> Result<(SessionRow, bool), ApiError> {
        let (session_id, _) = validate::session_id(raw_id).inspect_err(|_| {
            audit.meta("raw_session_id", json!(raw_id.chars().take(64).collect::<String>()));
        })?;
        audit.session(&session_id);
        // Within the caller's wallet only: the same id may name another parent's session (or an
        // attacker's, opened under a public id), which is a different vault.
        let Some(session) = store::session(&self.pool, &caller.wallet, &session_id).await? else {
            let note = if store::id_used_by_another_wallet(&self.pool, &caller.wallet, &session_id).await? {
                "session belongs to another wallet"
            } else {
                "does not exist"
            };
            return Err(ApiError::not_found("no such session").with_note(note));
        };
        audit.update(|e| e.parent_wallet = Some(session.parent_wallet.clone()));
        audit.meta("session_ref", json!(session.id));
        let mut ip_changed = false;
        if let Some(registered) = &session.user_ip {
            if *registered != caller.ip {
                ip_changed = true;
                if self.config.alerts.ip_change {
                    alerts::ip_change(&self.pool, &session, registered, &caller.ip).await?;
                }
            }
        }
        Ok((session, ip_changed))
    }

    /// Counts the request against the caller's limit for `action`; 429 with Retry-After beyond it.
    pub async fn rate_limit(&self, caller: &Caller, audit: &Audit, action: config::RateAction) -> Result<(), ApiError> {
        let d = ratelimit::check(&self.pool, &self.config.rate_limits, &caller.wallet, action, caller.now).await?;
        audit.meta("rate", json!({"action": action.as_str(), "count": d.count, "limit": d.limit}));
        if d.allowed {
            return Ok(());
        }
        let retry = d.retry_after(caller.now);
        Err(match d.blocked_until {
            Some(_) => ApiError::too_many(
                "blocked",
                format!("too many {} requests: blocked for {retry} s", action.as_str()),
                retry,
            ),
            None => ApiError::too_many(
                "rate_limited",
                format!("at most {} {} requests per window; retry in {retry} s", d.limit, action.as_str()),
                retry,
            ),
        })
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A pool for the service: `max` connections, each switched to `role` when given.
pub async fn connect_pool(url: &str, role: Option<&str>, max: u32) -> anyhow::Result<PgPool> {
    connect_pool_with(url.parse()?, role, max).await
}

pub async fn connect_pool_with(options: PgConnectOptions, role: Option<&str>, max: u32) -> anyhow::Result<PgPool> {
    let settings =
        vault_db::PoolSettings { max_connections: max, role: role.map(str::to_string), ..Default::default() };
    Ok(settings.connect(options).await?)
}

/// Serves on `listener` until the task is aborted; purges expired nonces once a minute.
pub fn spawn(app: Arc<App>, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
    let purge_pool = app.pool.clone();
    let purger = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = auth::purge_nonces(&purge_pool, unix_now()).await {
                tracing::warn!(error = %e, "purging nonces failed");
            }
        }
    });
    let router = api::router(app);
    tokio::spawn(async move {
        let served = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await;
        purger.abort();
        if let Err(e) = served {
            tracing::error!(error = %e, "server stopped");
        }
    })
}
