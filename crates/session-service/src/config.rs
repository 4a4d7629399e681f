//! The session service's configuration. The non-secret part is plain data (serde: the TOML
//! settings file of `vault-service`, laid under its flags and environment variables, or built in
//! code); the key-encryption keys are loaded separately from the environment or a file by
//! [`load_keyring`], never from the settings file or the database.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde::{Deserialize, Serialize};

use vault_db::alerts::UnusualSpending;

use super::crypto::{CryptoError, Keyring};

/// The three actions rate_limits knows (its CHECK constraint lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateAction {
    /// Registering a session.
    SessionCreate,
    /// A relayed fee top-up (the action that moves funds to the ephemeral wallet).
    Deposit,
    /// A relayed trade.
    Trade,
}

impl RateAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionCreate => "session_create",
            Self::Deposit => "deposit",
            Self::Trade => "trade",
        }
    }
}

/// A fixed-window limit: at most `max_requests` per `window_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub max_requests: u32,
    pub window_seconds: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Limits that replace the database's `system_default` rows for every wallet. A wallet's own
    /// row (max_requests / window_seconds set on it) still wins over both.
    pub overrides: BTreeMap<RateAction, Limit>,
    /// A wallet that reaches `abuse_factor` times its limit within one window is blocked.
    pub abuse_factor: u32,
    /// How long a block lasts, seconds.
    pub block_seconds: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { overrides: BTreeMap::new(), abuse_factor: 3, block_seconds: 900 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// Alert when a session is used from an IP other than the one that registered it.
    pub ip_change: bool,
    /// And refuse relayed trades from such an IP.
    pub ip_change_blocks_relay: bool,
    /// Alert when a session relays at least this many trades within the window (0 = off).
    pub high_frequency_trades: u32,
    pub high_frequency_window_secs: u32,
    /// Alert when one relayed trade or top-up spends at least this many basis points of the
    /// approved amount (0 = off; the indexer applies the same rule to landed trades).
    pub unusual_spending_bps: UnusualSpending,
    /// And refuse to relay it.
    pub unusual_spending_blocks: bool,
    /// Alert when a session is used for a trade after its expiry (the relay refuses it anyway).
    pub expired_session: bool,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            ip_change: true,
            ip_change_blocks_relay: false,
            high_frequency_trades: 20,
            high_frequency_window_secs: 60,
            unusual_spending_bps: UnusualSpending::HALF,
            unusual_spending_blocks: false,
            expired_session: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    pub listen: SocketAddr,
    /// How far a request's timestamp may be from the service's clock, seconds.
    pub max_clock_skew_secs: u32,
    /// Peers whose X-Forwarded-For is believed (a reverse proxy in front of the service).
    pub trusted_proxies: Vec<IpAddr>,
    /// The admin wallet (base58) whose signature the admin endpoints require; none = disabled.
    pub admin_wallet: Option<String>,
    /// Whether this deployment signs and sends trades for sessions whose key it holds.
    pub relay_enabled: bool,
    /// JSON-RPC endpoint for the relay.
    pub rpc_url: Option<String>,
    /// Upper bound of a request body, bytes.
    pub max_body_bytes: usize,
    /// Role the service's connections switch to (`SET ROLE`), e.g. vault_service.
    pub db_role: Option<String>,
    pub rate_limits: RateLimitConfig,
    pub alerts: AlertConfig,
    /// Page size cap of list endpoints.
    pub max_page: u32,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            max_clock_skew_secs: 120,
            trusted_proxies: vec![],
            admin_wallet: None,
            relay_enabled: false,
            rpc_url: None,
            max_body_bytes: 16 * 1024,
            db_role: None,
            rate_limits: RateLimitConfig::default(),
            alerts: AlertConfig::default(),
            max_page: 200,
        }
    }
}

/// The KEKs: `VAULT_SERVICE_KEKS` (entries `id=base64key`) or the file named by
/// `VAULT_SERVICE_KEK_FILE` (same format, one per line), and `VAULT_SERVICE_ACTIVE_KEK`, the id
/// new envelopes are wrapped under (and the target of a rotation).
pub fn load_keyring() -> Result<Keyring, CryptoError> {
    let active = std::env::var("VAULT_SERVICE_ACTIVE_KEK")
        .map_err(|_| CryptoError::Config("VAULT_SERVICE_ACTIVE_KEK is not set".into()))?;
    let spec = match (std::env::var("VAULT_SERVICE_KEKS"), std::env::var_os("VAULT_SERVICE_KEK_FILE")) {
        (Ok(spec), _) => zeroize::Zeroizing::new(spec),
        (Err(_), Some(path)) => zeroize::Zeroizing::new(read_key_file(Path::new(&path))?),
        (Err(_), None) => return Err(CryptoError::Config("set VAULT_SERVICE_KEKS or VAULT_SERVICE_KEK_FILE".into())),
    };
    Keyring::parse(&spec, &active)
}

fn read_key_file(path: &Path) -> Result<String, CryptoError> {
    std::fs::read_to_string(path).map_err(|e| CryptoError::Config(format!("cannot read {}: {e}", path.display())))
}
