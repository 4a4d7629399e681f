//! Shared by the session service's tests: a service on 127.0.0.1 (ephemeral port) over its own
//! test database, connected as the vault_service role, and request fixtures.

#![allow(dead_code)]

pub mod spec;

use std::str::FromStr;
use std::sync::Arc;

use aes_gcm::aead::rand_core::RngCore;
use base64::Engine;
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use solana_keypair::Keypair;
use solana_signer::Signer;
use sqlx::postgres::PgConnectOptions;
use vault_devkit::service_client::Client;
use vault_session_service::{self as service, App, Chain, Keyring, ServiceConfig};

use vault_devkit::test_db::{admin_url, TestDb};

pub struct Harness {
    pub db: TestDb,
    pub app: Arc<App>,
    pub client: Client,
    pub base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn db_options(db: &TestDb) -> PgConnectOptions {
    PgConnectOptions::from_str(&admin_url()).expect("DATABASE_URL").database(&db.name)
}

/// A service pool on the test database, switched to vault_service, as a deployment would run.
pub async fn service_pool(db: &TestDb, max: u32) -> sqlx::PgPool {
    service::connect_pool_with(db_options(db), Some("vault_service"), max).await.expect("service pool")
}

/// Config for tests: generous limits unless a test says otherwise.
pub fn test_config() -> ServiceConfig {
    ServiceConfig { max_clock_skew_secs: 60, ..ServiceConfig::default() }
}

impl Harness {
    pub async fn start(config: ServiceConfig, keyring: Keyring, chain: Option<Arc<dyn Chain>>) -> Self {
        let db = TestDb::new().await;
        Self::start_on(db, config, keyring, chain).await
    }

    pub async fn start_on(db: TestDb, config: ServiceConfig, keyring: Keyring, chain: Option<Arc<dyn Chain>>) -> Self {
        let pool = service_pool(&db, 24).await;
        let app = App::new(pool, config, keyring, chain).expect("app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = service::spawn(app.clone(), listener);
        // Every reply the tests get through `client` must be what the OpenAPI document says.
        let spec = Arc::new(spec::Spec::load());
        let client = Client::new(base.clone()).with_observer(Arc::new(move |method, path, reply| {
            if let Err(e) = spec.check(method, path, reply.status, reply.content_type.as_deref(), &reply.body) {
                panic!("the reply disagrees with the OpenAPI document: {e}");
            }
        }));
        Harness { db, app, client, base, server }
    }

    /// audit_log rows for `action` with `success`, as (actor, error_message).
    pub async fn audit_rows(&self, action: &str, success: bool) -> Vec<(String, Option<String>)> {
        sqlx::query_as(
            "SELECT actor, error_message FROM audit_log WHERE action = $1 AND success = $2 ORDER BY chain_seq",
        )
        .bind(action)
        .bind(success)
        .fetch_all(&self.db.pool)
        .await
        .expect("audit rows")
    }

    pub async fn alerts_of(&self, session_id: &str) -> Vec<String> {
        sqlx::query_scalar("SELECT alert_type FROM security_alerts WHERE session_id = $1 ORDER BY id")
            .bind(session_id)
            .fetch_all(&self.db.pool)
            .await
            .expect("alerts")
    }
}

pub fn random_key() -> SigningKey {
    let mut seed = [0u8; 32];
    aes_gcm::aead::OsRng.fill_bytes(&mut seed);
    SigningKey::from_bytes(&seed)
}

pub fn wallet_of(key: &SigningKey) -> String {
    bs58::encode(key.verifying_key().as_bytes()).into_string()
}

/// A session a parent is about to register: its id, the ephemeral seed and the request body.
pub struct NewSession {
    pub session_id: String,
    pub id_bytes: [u8; 16],
    pub ephemeral_seed: [u8; 32],
    pub ephemeral_wallet: String,
    /// For client-sealed registrations: the browser envelope sent.
    pub client_envelope: Option<Vec<u8>>,
}

impl NewSession {
    pub fn random() -> Self {
        let id = uuid::Uuid::new_v4();
        let mut seed = [0u8; 32];
        aes_gcm::aead::OsRng.fill_bytes(&mut seed);
        Self::with(id, seed)
    }

    pub fn with(id: uuid::Uuid, seed: [u8; 32]) -> Self {
        let ephemeral_wallet = Keypair::new_from_array(seed).pubkey().to_string();
        NewSession {
            session_id: id.to_string(),
            id_bytes: *id.as_bytes(),
            ephemeral_seed: seed,
            ephemeral_wallet,
            client_envelope: None,
        }
    }

    pub fn keypair(&self) -> Keypair {
        Keypair::new_from_array(self.ephemeral_seed)
    }

    pub fn vault(&self, parent: &SigningKey) -> String {
        let parent = anchor_lang::prelude::Pubkey::new_from_array(parent.verifying_key().to_bytes());
        ephemeral_vault::sdk::vault_address(&parent, &self.id_bytes).to_string()
    }

    /// A registration body; `seed_format` sends the seed in clear (relay deployments), otherwise
    /// a browser-style envelope (random bytes in the v1 layout with the right public key).
    pub fn body(&mut self, parent: &SigningKey, seed_format: bool) -> Value {
        let now = service::unix_now();
        self.body_with(parent, seed_format, 1_000_000_000, Some(1_000_000_000), now - 5, now + 3600)
    }

    pub fn body_with(
        &mut self,
        parent: &SigningKey,
        seed_format: bool,
        approved: u64,
        per_trade_cap: Option<u64>,
        created_at: i64,
        expires_at: i64,
    ) -> Value {
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = if seed_format {
            json!({"format": "seed", "data": b64.encode(self.ephemeral_seed)})
        } else {
            let mut env = vec![0u8; 125];
            aes_gcm::aead::OsRng.fill_bytes(&mut env);
            env[0] = 1;
            let pk = self.keypair().pubkey().to_bytes();
            env[45..77].copy_from_slice(&pk);
            self.client_envelope = Some(env.clone());
            json!({"format": "client_sealed_v1", "data": b64.encode(&env)})
        };
        let mut body = json!({
            "session_id": self.session_id,
            "parent_wallet": wallet_of(parent),
            "ephemeral_wallet": self.ephemeral_wallet,
            "vault_pda": self.vault(parent),
            "approved_amount": approved.to_string(),
            "created_at": created_at,
            "expires_at": expires_at,
            "device_fingerprint": "test-device-1",
            "ephemeral_key": key,
        });
        if let Some(cap) = per_trade_cap {
            body["per_trade_cap"] = json!(cap.to_string());
        }
        body
    }
}
