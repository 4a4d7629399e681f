//! Measures the session service on this machine, against 127.0.0.1 only: requests per second and
//! p50/p99 latency of reading a session (signed GET) and of a relayed trade (signed POST that
//! the service signs and executes on the real program in litesvm).
//!
//! ```text
//! DATABASE_URL=... cargo run --release -p vault-devkit --bin vault-service-bench [-- READS CONCURRENCY TRADES]
//! ```
//!
//! It creates a database of its own (vault_bench_<pid>) on DATABASE_URL's server, migrates it,
//! serves the API on an ephemeral port of 127.0.0.1, and drops the database at the end. Request counts are bounded
//! (defaults: 4000 reads at concurrency 16, 600 relayed trades).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};
use vault_devkit::service_client::Client;
use vault_session_service::{self as service, App, Chain, Keyring, Limit, RateAction, ServiceConfig};

use vault_devkit::litesvm_chain;

fn report(name: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    println!(
        "{name:<14} n={:<6} {:>9.1} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        lat.len(),
        lat.len() as f64 / wall.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3,
    );
}

fn key() -> ed25519_dalek::SigningKey {
    use aes_gcm::aead::rand_core::RngCore;
    let mut seed = [0u8; 32];
    aes_gcm::aead::OsRng.fill_bytes(&mut seed);
    ed25519_dalek::SigningKey::from_bytes(&seed)
}

fn register_body(
    parent: &ed25519_dalek::SigningKey,
    id: uuid::Uuid,
    seed: [u8; 32],
    created: i64,
    approved: u64,
) -> serde_json::Value {
    use base64::Engine;
    use solana_signer::Signer;
    let eph = solana_keypair::Keypair::new_from_array(seed).pubkey();
    let parent_pk = anchor_lang::prelude::Pubkey::new_from_array(parent.verifying_key().to_bytes());
    serde_json::json!({
        "session_id": id.to_string(),
        "parent_wallet": parent_pk.to_string(),
        "ephemeral_wallet": eph.to_string(),
        "vault_pda": ephemeral_vault::sdk::vault_address(&parent_pk, id.as_bytes()).to_string(),
        "approved_amount": approved.to_string(),
        "per_trade_cap": approved.to_string(),
        "created_at": created,
        "expires_at": created + 3600,
        "ephemeral_key": {"format": "seed", "data": base64::engine::general_purpose::STANDARD.encode(seed)},
    })
}

#[derive(clap::Parser)]
#[command(name = "vault-service-bench", about = "Measures the session service on 127.0.0.1")]
struct Cli {
    /// Signed session reads (at most 100,000).
    #[arg(default_value_t = 4000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    reads: u32,
    /// Requests in flight at once (1 to 256).
    #[arg(default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    concurrency: u32,
    /// Relayed trades (at most 20,000).
    #[arg(default_value_t = 600, value_parser = clap::value_parser!(u32).range(0..=20_000))]
    trades: u32,
    /// The PostgreSQL server to make the benchmark's database on.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = <Cli as clap::Parser>::parse();
    let (reads, concurrency, trades) = (cli.reads as usize, cli.concurrency as usize, cli.trades as usize);
    let url = cli.database_url;
    let name = format!("vault_bench_{}", std::process::id());
    let mut admin = PgConnection::connect(&url).await?;
    admin.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await?;
    let options: sqlx::postgres::PgConnectOptions = url.parse::<sqlx::postgres::PgConnectOptions>()?.database(&name);
    let result = run(options, reads, concurrency, trades).await;
    admin.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await?;
    result
}

async fn run(
    options: sqlx::postgres::PgConnectOptions,
    reads: usize,
    concurrency: usize,
    trades: usize,
) -> anyhow::Result<()> {
    {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with(options.clone()).await?;
        vault_db::migrate(&pool).await?;
        pool.close().await;
    }
    let pool = service::connect_pool_with(options, Some("vault_service"), 32).await?;

    let mut config = ServiceConfig::default();
    config.rate_limits.overrides = [RateAction::Trade, RateAction::SessionCreate, RateAction::Deposit]
        .into_iter()
        .map(|a| (a, Limit { max_requests: 1_000_000, window_seconds: 3600 }))
        .collect();
    config.alerts.high_frequency_trades = 0;

    let world = {
        let mut w = ephemeral_vault_testkit::VaultWorld::new();
        litesvm_chain::sync_clock(&mut w);
        Arc::new(std::sync::Mutex::new(w))
    };
    let chain: Option<Arc<dyn Chain>> = {
        config.relay_enabled = true;
        Some(Arc::new(litesvm_chain::LiteSvmChain::new(world.clone())))
    };

    let app = App::new(pool, config, Keyring::generate("bench"), chain)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = service::spawn(app, listener);
    println!("session service at {base}; {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));

    // One session to read.
    let client = Arc::new(Client::new(base.clone()));
    let parent = Arc::new(key());
    let id = uuid::Uuid::new_v4();
    let now = service::unix_now();
    let r = client.post(&parent, "/v1/sessions", &register_body(&parent, id, [7u8; 32], now - 1, 1_000_000)).await?;
    anyhow::ensure!(r.status == 201, "register: {:?}", r.body);
    let path = Arc::new(format!("/v1/sessions/{id}"));

    // Warm-up, then the read benchmark: `concurrency` workers share `reads` requests.
    for _ in 0..50 {
        client.get(&parent, &path).await?;
    }
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, parent, path, next) = (client.clone(), parent.clone(), path.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < reads {
                let t = Instant::now();
                let r = client.get(&parent, &path).await.expect("request");
                assert_eq!(r.status, 200, "{:?}", r.body);
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.await?);
    }
    report("read session", lat, started.elapsed());

    {
        use ephemeral_vault_testkit::LAMPORTS_PER_SOL;
        use solana_signer::Signer;
        // Relayed trades: `sessions` sessions on chain, each driven by one worker with increasing
        // trade ids (the program requires them), all at once.
        let sessions = concurrency.min(8);
        let per = trades.div_ceil(sessions);
        let mut handles = Vec::new();
        // A funded destination: small transfers to a fresh account would leave it below rent.
        let dest_key = solana_keypair::Keypair::new().pubkey();
        world.lock().unwrap().svm.airdrop(&dest_key, LAMPORTS_PER_SOL).unwrap();
        let dest = dest_key.to_string();
        let mut prepared = Vec::new();
        for _ in 0..sessions {
            let parent = key();
            let id = uuid::Uuid::new_v4();
            let mut seed = [0u8; 32];
            use aes_gcm::aead::rand_core::RngCore;
            aes_gcm::aead::OsRng.fill_bytes(&mut seed);
            let created = {
                let mut w = world.lock().unwrap();
                litesvm_chain::sync_clock(&mut w);
                let parent_kp = solana_keypair::Keypair::new_from_array(parent.to_bytes());
                let eph = solana_keypair::Keypair::new_from_array(seed);
                w.svm.airdrop(&parent_kp.pubkey(), 1000 * LAMPORTS_PER_SOL).unwrap();
                w.svm.airdrop(&eph.pubkey(), LAMPORTS_PER_SOL).unwrap();
                let args = ephemeral_vault::instructions::CreateSessionArgs {
                    session_id: *id.as_bytes(),
                    approved_amount: 100 * LAMPORTS_PER_SOL,
                    per_trade_cap: LAMPORTS_PER_SOL,
                    duration_secs: 3600,
                    destinations: vec![],
                    initial_deposit: 100 * LAMPORTS_PER_SOL,
                    fee_top_up: 0,
                };
                let ix = ephemeral_vault::sdk::create_session(
                    parent_kp.pubkey(),
                    eph.pubkey(),
                    ephemeral_vault::sdk::Asset::Sol,
                    None,
                    args,
                );
                w.send(&[ix], &parent_kp, &[]).map_err(|e| anyhow::anyhow!("create_session: {:?}", e.err))?;
                w.now()
            };
            let r = client
                .post(&parent, "/v1/sessions", &register_body(&parent, id, seed, created, 100 * LAMPORTS_PER_SOL))
                .await?;
            anyhow::ensure!(r.status == 201, "register: {:?}", r.body);
            prepared.push((parent, id));
        }
        let started_all = Instant::now();
        for (parent, id) in prepared {
            let (client, dest) = (client.clone(), dest.clone());
            handles.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let path = format!("/v1/sessions/{id}/relay");
                for trade_id in 1..=per as u64 {
                    let body = serde_json::json!({"action": "trade", "trade_id": trade_id.to_string(),
                        "amount": "1000", "fee": "10", "destination": dest});
                    let t = Instant::now();
                    let r = client.post(&parent, &path, &body).await.expect("request");
                    assert_eq!(r.status, 200, "{:?}", r.body);
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut lat = Vec::new();
        for h in handles {
            lat.extend(h.await?);
        }
        report("relayed trade", lat, started_all.elapsed());
    }
    server.abort();
    Ok(())
}
