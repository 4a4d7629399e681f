//! The trade relay against the real program (litesvm via the testkit): trades and top-ups land,
//! pending rows are written for the indexer, and requests beyond the session's caps, the chain's
//! rules or the rate limits are refused. The alert rules fire on their scenarios and not on a
//! normal session.

mod service_common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use ephemeral_vault::instructions::CreateSessionArgs;
use ephemeral_vault::sdk::{self, Asset};
use ephemeral_vault_testkit::{VaultWorld, LAMPORTS_PER_SOL};
use serde_json::{json, Value};
use service_common::*;
use solana_keypair::Keypair;
use solana_signer::Signer;
use vault_db::alerts::UnusualSpending;
use vault_devkit::litesvm_chain::{sync_clock, LiteSvmChain};
use vault_devkit::service_client::Reply;
use vault_session_service::auth::{random_nonce, sign_request};
use vault_session_service::{unix_now, Keyring, Limit, RateAction, ServiceConfig};

const SOL: u64 = LAMPORTS_PER_SOL;

async fn relay_harness(mut config: ServiceConfig) -> (Harness, Arc<Mutex<VaultWorld>>) {
    let mut world = VaultWorld::new();
    sync_clock(&mut world);
    let world = Arc::new(Mutex::new(world));
    config.relay_enabled = true;
    let h = Harness::start(config, Keyring::generate("k1"), Some(Arc::new(LiteSvmChain::new(world.clone())))).await;
    (h, world)
}

fn quiet_alerts(config: &mut ServiceConfig) {
    config.alerts.high_frequency_trades = 0;
    config.alerts.unusual_spending_bps = UnusualSpending { share_bps: 0 };
}

/// Creates the session on chain (the parent signs create_session with the ephemeral wallet as
/// delegate) and registers it with the service, sending the seed (relay deployment).
async fn open_session(
    h: &Harness,
    world: &Arc<Mutex<VaultWorld>>,
    parent: &SigningKey,
    approved: u64,
    cap: u64,
    deposit: u64,
    from_ip: Option<&str>,
) -> NewSession {
    let mut s = NewSession::random();
    let (created_at, expires_at) = {
        let mut w = world.lock().unwrap();
        sync_clock(&mut w);
        let parent_kp = Keypair::new_from_array(parent.to_bytes());
        w.svm.airdrop(&parent_kp.pubkey(), 100 * SOL).unwrap();
        w.svm.airdrop(&s.keypair().pubkey(), SOL / 10).unwrap();
        let args = CreateSessionArgs {
            session_id: s.id_bytes,
            approved_amount: approved,
            per_trade_cap: cap,
            duration_secs: 3600,
            destinations: vec![],
            initial_deposit: deposit,
            fee_top_up: 0,
        };
        let ix = sdk::create_session(parent_kp.pubkey(), s.keypair().pubkey(), Asset::Sol, None, args);
        w.send(&[ix], &parent_kp, &[]).expect("create_session");
        (w.now(), w.now() + 3600)
    };
    let body = s.body_with(parent, true, approved, Some(cap), created_at, expires_at);
    let r = send_from(h, parent, "POST", "/v1/sessions", Some(&body), from_ip).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["key"]["kind"], "seed");
    s
}

async fn send_from(
    h: &Harness,
    key: &SigningKey,
    method: &str,
    path: &str,
    body: Option<&Value>,
    ip: Option<&str>,
) -> Reply {
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
    let signed = sign_request(key, method, path, &bytes, unix_now(), &random_nonce());
    h.client.send_raw(method, path, bytes, Some(&signed), ip.map(|ip| ("x-forwarded-for", ip))).await.unwrap()
}

// The trade's own fields plus who sends it from where.
#[allow(clippy::too_many_arguments)]
async fn trade(
    h: &Harness,
    parent: &SigningKey,
    s: &NewSession,
    id: u64,
    amount: u64,
    fee: u64,
    dest: &str,
    ip: Option<&str>,
) -> Reply {
    let body = json!({"action": "trade", "trade_id": id.to_string(), "amount": amount.to_string(), "fee": fee.to_string(), "destination": dest});
    send_from(h, parent, "POST", &format!("/v1/sessions/{}/relay", s.session_id), Some(&body), ip).await
}

async fn tx_rows(h: &Harness, session_id: &str) -> Vec<(String, String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT transaction_type, status, transaction_signature, metadata ->> 'source'
         FROM vault_transactions WHERE session_id = $1 ORDER BY id",
    )
    .bind(session_id)
    .fetch_all(&h.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn relayed_trades_land_and_limits_refuse() {
    let mut config = test_config();
    quiet_alerts(&mut config);
    config.rate_limits.overrides = BTreeMap::from([
        (RateAction::Trade, Limit { max_requests: 8, window_seconds: 60 }),
        (RateAction::Deposit, Limit { max_requests: 5, window_seconds: 60 }),
    ]);
    let (h, world) = relay_harness(config).await;
    let parent = random_key();
    let s = open_session(&h, &world, &parent, 10 * SOL, SOL, 5 * SOL, None).await;
    let dest = Keypair::new().pubkey();

    // 1. A trade lands on the real program.
    let r = trade(&h, &parent, &s, 1, SOL / 10, SOL / 100, &dest.to_string(), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["result"], "landed");
    let sig1 = r.body["signature"].as_str().unwrap().to_string();
    // The program pays amount and fee to the destination.
    assert_eq!(world.lock().unwrap().lamports(&dest), SOL / 10 + SOL / 100);
    let vault = world.lock().unwrap().vault(&s.vault(&parent).parse().unwrap()).unwrap();
    assert_eq!(vault.last_trade_id, 1);

    // 2. A fee top-up lands too.
    let path = format!("/v1/sessions/{}/relay", s.session_id);
    let r = send_from(
        &h,
        &parent,
        "POST",
        &path,
        Some(&json!({"action": "top_up", "amount": (SOL / 100).to_string()})),
        None,
    )
    .await;
    assert_eq!((r.status, r.body["result"].as_str()), (200, Some("landed")), "{:?}", r.body);

    // 3. Over the per-trade cap: refused by the service, nothing signed.
    let r = trade(&h, &parent, &s, 2, SOL, 1, &dest.to_string(), None).await;
    assert_eq!((r.status, r.code()), (422, Some("per_trade_cap_exceeded")), "{:?}", r.body);

    // 4. Refused by the program (trade id not increasing): reported with its signature, row failed.
    let r = trade(&h, &parent, &s, 1, SOL / 10, 0, &dest.to_string(), None).await;
    assert_eq!((r.status, r.code()), (422, Some("chain_refused")), "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("TradeIdNotIncreasing"), "{:?}", r.body);
    // Over the program's fee top-up cap (0.05 SOL per session).
    let r = send_from(
        &h,
        &parent,
        "POST",
        &path,
        Some(&json!({"action": "top_up", "amount": (SOL / 20).to_string()})),
        None,
    )
    .await;
    assert_eq!((r.status, r.code()), (422, Some("chain_refused")), "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("FeeTopUpCapExceeded"), "{:?}", r.body);

    // The rows the indexer will settle: landed ones pending, refused ones failed.
    let rows = tx_rows(&h, &s.session_id).await;
    let summary: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(summary, vec![("trade", "pending"), ("top_up", "pending"), ("trade", "failed"), ("top_up", "failed")]);
    assert_eq!(rows[0].2, sig1);
    assert!(rows.iter().all(|r| r.3.as_deref() == Some("relay")));
    // The indexer confirms the pending row by its key, as its upsert does.
    sqlx::query(
        "UPDATE vault_transactions SET status = 'confirmed', confirmed_at = $2, block_slot = 1
         WHERE transaction_signature = $1 AND instruction_index = 0",
    )
    .bind(&sig1)
    .bind(unix_now())
    .execute(&h.db.pool)
    .await
    .unwrap();
    let r = h.client.get(&parent, &format!("/v1/sessions/{}/analytics", s.session_id)).await.unwrap();
    assert_eq!(
        (r.body["total_trades"].as_i64(), r.body["successful_trades"].as_i64(), r.body["failed_trades"].as_i64()),
        (Some(2), Some(1), Some(1))
    );
    let r = h.client.get(&parent, &format!("/v1/sessions/{}/transactions", s.session_id)).await.unwrap();
    assert_eq!(r.body["transactions"].as_array().unwrap().len(), 4);

    // 5. Rate limit: 8 trade requests a minute for this wallet; 3 used (1 ok, 2 refused), so 5
    //    more pass and then the limit refuses.
    let mut statuses = vec![];
    for id in 10..16 {
        statuses.push(trade(&h, &parent, &s, id, 1000, 0, &dest.to_string(), None).await.status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429]);

    // 6. The approved amount: a second wallet's session with 1 SOL approved.
    let parent2 = random_key();
    let s2 = open_session(&h, &world, &parent2, SOL, SOL, SOL, None).await;
    let mut statuses = vec![];
    for id in 1..=3 {
        let r = trade(&h, &parent2, &s2, id, 4 * SOL / 10, 0, &dest.to_string(), None).await;
        statuses.push((r.status, r.code().map(str::to_string)));
    }
    assert_eq!(statuses[..2], [(200, None), (200, None)]);
    assert_eq!(statuses[2], (422, Some("approved_amount_exceeded".to_string())));

    // 7. Another wallet cannot relay on this session.
    let r = trade(&h, &parent2, &s, 99, 1000, 0, &dest.to_string(), None).await;
    assert_eq!((r.status, r.code()), (404, Some("not_found")));
    // And a client-sealed key cannot be relayed.
    let mut sealed = NewSession::random();
    let body = sealed.body(&parent2, false);
    assert_eq!(h.client.post(&parent2, "/v1/sessions", &body).await.unwrap().status, 201);
    let r = trade(&h, &parent2, &sealed, 1, 1000, 0, &dest.to_string(), None).await;
    assert_eq!((r.status, r.code()), (409, Some("key_not_relayable")), "{:?}", r.body);

    // Every relay request is audited; the chain holds.
    let ok = h.audit_rows("service.relay.trade", true).await.len();
    let refused = h.audit_rows("service.relay.trade", false).await.len();
    assert_eq!((ok, refused), (1 + 5 + 2, 2 + 1 + 1 + 1 + 1));
    assert!(vault_db::audit::verify_chain(&h.db.pool).await.unwrap().is_none());
}

#[tokio::test]
async fn relay_disabled_deployments_refuse() {
    let h = Harness::start(test_config(), Keyring::generate("k1"), None).await;
    let parent = random_key();
    let mut s = NewSession::random();
    assert_eq!(h.client.post(&parent, "/v1/sessions", &s.body(&parent, false)).await.unwrap().status, 201);
    let r = trade(&h, &parent, &s, 1, 1, 0, &Keypair::new().pubkey().to_string(), None).await;
    assert_eq!((r.status, r.code()), (404, Some("not_found")));
    assert_eq!(h.audit_rows("service.relay", false).await.len(), 1);
}

#[tokio::test]
async fn alert_rules_fire_on_their_scenarios_and_not_on_a_normal_session() {
    let admin = random_key();
    let mut config = test_config();
    config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    config.admin_wallet = Some(wallet_of(&admin));
    config.alerts.high_frequency_trades = 3;
    config.alerts.high_frequency_window_secs = 60;
    config.alerts.unusual_spending_bps = UnusualSpending::HALF;
    let (h, world) = relay_harness(config).await;
    let dest = Keypair::new().pubkey().to_string();
    let home = Some("198.51.100.1");

    // A normal session: registered and used from one IP, two modest trades, some reads.
    let normal_parent = random_key();
    let normal = open_session(&h, &world, &normal_parent, 10 * SOL, SOL, 5 * SOL, home).await;
    for id in 1..=2 {
        let r = trade(&h, &normal_parent, &normal, id, SOL / 10, 0, &dest, home).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let r = send_from(&h, &normal_parent, "GET", &format!("/v1/sessions/{}", normal.session_id), None, home).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["registered_ip"], "198.51.100.1");

    // ip_change: the session used from another address (once per new address).
    let p = random_key();
    let moved = open_session(&h, &world, &p, 10 * SOL, SOL, 5 * SOL, home).await;
    for _ in 0..2 {
        let r =
            send_from(&h, &p, "GET", &format!("/v1/sessions/{}", moved.session_id), None, Some("203.0.113.9")).await;
        assert_eq!(r.status, 200);
    }

    // high_frequency: three trades within the window.
    let p = random_key();
    let busy = open_session(&h, &world, &p, 10 * SOL, SOL, 5 * SOL, home).await;
    for id in 1..=3 {
        assert_eq!(trade(&h, &p, &busy, id, 1000, 0, &dest, home).await.status, 200);
    }

    // unusual_spending: one trade of 60 % of the approved amount.
    let p = random_key();
    let big = open_session(&h, &world, &p, SOL, SOL, SOL, home).await;
    assert_eq!(trade(&h, &p, &big, 1, 6 * SOL / 10, 0, &dest, home).await.status, 200);

    // expired_session: the chain's expiry has passed (as the indexer records it).
    let p = random_key();
    let old = open_session(&h, &world, &p, 10 * SOL, SOL, 5 * SOL, home).await;
    sqlx::query("UPDATE ephemeral_sessions SET expires_at = $2 WHERE session_id = $1")
        .bind(&old.session_id)
        .bind(unix_now() - 5)
        .execute(&h.db.pool)
        .await
        .unwrap();
    let r = trade(&h, &p, &old, 1, 1000, 0, &dest, home).await;
    assert_eq!((r.status, r.code()), (409, Some("session_expired")));

    assert_eq!(h.alerts_of(&normal.session_id).await, Vec::<String>::new());
    assert_eq!(h.alerts_of(&moved.session_id).await, vec!["ip_change"]);
    assert_eq!(h.alerts_of(&busy.session_id).await, vec!["high_frequency"]);
    assert_eq!(h.alerts_of(&big.session_id).await, vec!["unusual_spending"]);
    assert_eq!(h.alerts_of(&old.session_id).await, vec!["expired_session"]);

    // The owner sees its alert; the admin resolves it once.
    let r = send_from(&h, &p, "GET", "/v1/alerts?unresolved=true", None, home).await;
    let alerts = r.body["alerts"].as_array().unwrap().clone();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["alert_type"], "expired_session");
    let id = alerts[0]["id"].as_i64().unwrap();
    let resolve = format!("/v1/admin/alerts/{id}/resolve");
    let r = send_from(&h, &p, "POST", &resolve, Some(&json!({})), home).await;
    assert_eq!(r.status, 403);
    let r = send_from(&h, &admin, "POST", &resolve, Some(&json!({"note": "user confirmed"})), None).await;
    assert_eq!((r.status, r.body["is_resolved"].as_bool()), (200, Some(true)), "{:?}", r.body);
    assert_eq!(r.body["resolved_by"], wallet_of(&admin));
    let r = send_from(&h, &admin, "POST", &resolve, Some(&json!({})), None).await;
    assert_eq!((r.status, r.code()), (409, Some("already_resolved")));
    let r = send_from(&h, &admin, "GET", "/v1/admin/alerts?unresolved=true", None, None).await;
    assert_eq!(r.body["alerts"].as_array().unwrap().len(), 3);
    // X-Forwarded-For is believed only from a trusted proxy: the audit shows the client's IP.
    let ips: Vec<Option<String>> =
        sqlx::query_scalar("SELECT DISTINCT ip_address FROM audit_log ORDER BY 1").fetch_all(&h.db.pool).await.unwrap();
    assert!(ips.contains(&Some("198.51.100.1".into())) && ips.contains(&Some("203.0.113.9".into())), "{ips:?}");
}

#[tokio::test]
async fn blocking_rules_refuse_when_configured() {
    let mut config = test_config();
    config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    config.alerts.ip_change_blocks_relay = true;
    config.alerts.unusual_spending_blocks = true;
    config.alerts.unusual_spending_bps = UnusualSpending::HALF;
    let (h, world) = relay_harness(config).await;
    let dest = Keypair::new().pubkey().to_string();
    let home = Some("198.51.100.1");
    let p = random_key();
    let s = open_session(&h, &world, &p, SOL, SOL, SOL, home).await;

    let r = trade(&h, &p, &s, 1, SOL / 10, 0, &dest, Some("203.0.113.77")).await;
    assert_eq!((r.status, r.code()), (403, Some("forbidden")), "{:?}", r.body);
    let r = trade(&h, &p, &s, 2, 6 * SOL / 10, 0, &dest, home).await;
    assert_eq!((r.status, r.code()), (403, Some("forbidden")), "{:?}", r.body);
    let r = trade(&h, &p, &s, 3, SOL / 10, 0, &dest, home).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(h.alerts_of(&s.session_id).await, vec!["ip_change", "unusual_spending"]);
    // Only the allowed trade reached the chain.
    assert_eq!(tx_rows(&h, &s.session_id).await.len(), 1);
    assert_eq!(world.lock().unwrap().lamports(&dest.parse().unwrap()), SOL / 10);
}

#[tokio::test]
async fn a_sent_trade_whose_audit_fails_keeps_its_pending_row_and_fails_the_request() {
    let mut config = test_config();
    quiet_alerts(&mut config);
    let (h, world) = relay_harness(config).await;
    let parent = random_key();
    let s = open_session(&h, &world, &parent, 10 * SOL, SOL, 5 * SOL, None).await;
    let dest = Keypair::new().pubkey();
    sqlx::query("ALTER TABLE audit_log ADD CONSTRAINT test_refuses CHECK (action <> 'service.relay.trade') NOT VALID")
        .execute(&h.db.pool)
        .await
        .unwrap();
    // A raw client: 500 is not a documented answer.
    let raw = vault_devkit::service_client::Client::new(h.base.clone());
    let amount = SOL / 10;
    let body = json!({"action": "trade", "trade_id": "1", "amount": amount.to_string(), "fee": "0",
                      "destination": dest.to_string()});
    let r = raw.post(&parent, &format!("/v1/sessions/{}/relay", s.session_id), &body).await.unwrap();
    assert_eq!((r.status, r.code()), (500, Some("internal")), "{:?}", r.body);
    // The trade was sent and landed: its row for the indexer is kept.
    assert_eq!(world.lock().unwrap().lamports(&dest), amount);
    let rows = tx_rows(&h, &s.session_id).await;
    assert_eq!(rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect::<Vec<_>>(), vec![("trade", "pending")]);
}

fn s_parent(key: &SigningKey) -> String {
    Keypair::new_from_array(key.to_bytes()).pubkey().to_string()
}

/// Indexes everything the world has executed into the harness's database, as the indexer would.
async fn index_world(h: &Harness, world: &Arc<Mutex<VaultWorld>>) {
    let txs: Vec<_> = world
        .lock()
        .unwrap()
        .history
        .iter()
        .filter(|r| r.mentions(&ephemeral_vault::ID))
        .map(vault_devkit::recorded::chain_tx)
        .collect();
    let decoded = vault_indexer::decode::decode_all(&txs);
    vault_indexer::ingest::Ingest::default().write_batch(&h.db.pool, "test", &decoded, None).await.expect("indexed");
}

/// Session ids are public (every event carries one) and a vault is derived from the parent and
/// the id, so anyone may open a session under a live session's id. The service names a session
/// by the signing wallet and the id: B's play with A's id never reaches A's session.
#[tokio::test]
async fn another_wallet_reusing_a_session_id_leaves_the_first_sessions_relay_alone() {
    let mut config = test_config();
    quiet_alerts(&mut config);
    let (h, world) = relay_harness(config).await;
    let a = random_key();
    let s = open_session(&h, &world, &a, 10 * SOL, SOL, 5 * SOL, None).await;
    index_world(&h, &world).await;
    let dest = Keypair::new().pubkey().to_string();
    let r = trade(&h, &a, &s, 1, SOL / 10, 0, &dest, None).await;
    assert_eq!((r.status, r.body["result"].as_str()), (200, Some("landed")), "{:?}", r.body);

    // B: create_session under A's id with the shortest duration, revoke, cleanup - one transaction.
    let b = random_key();
    let b_parent = Keypair::new_from_array(b.to_bytes());
    {
        let mut w = world.lock().unwrap();
        w.svm.airdrop(&b_parent.pubkey(), 10 * SOL).unwrap();
        let session = sdk::SessionRef { parent: b_parent.pubkey(), session_id: s.id_bytes, asset: Asset::Sol };
        let args = CreateSessionArgs {
            session_id: s.id_bytes,
            approved_amount: 10_000,
            per_trade_cap: 10_000,
            duration_secs: ephemeral_vault_testkit::default_params().min_session_duration,
            destinations: vec![],
            initial_deposit: 0,
            fee_top_up: 0,
        };
        let ixs = [
            sdk::create_session(b_parent.pubkey(), Keypair::new().pubkey(), Asset::Sol, None, args),
            sdk::revoke_session(&session),
            sdk::cleanup_vault(&session, b_parent.pubkey(), None),
        ];
        w.send(&ixs, &b_parent, &[]).expect("B's transaction");
    }
    index_world(&h, &world).await;

    // A's session is as it was, and its relay keeps working.
    let r = send_from(&h, &a, "GET", &format!("/v1/sessions/{}", s.session_id), None, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!((r.body["status"].as_str(), r.body["approved_amount"].as_str()), (Some("active"), Some("10000000000")));
    assert_eq!(r.body["vault_pda"].as_str(), Some(s.vault(&a).as_str()));
    let a_ref = r.body["session_ref"].as_i64().expect("session_ref");
    // One row for A: the registration, completed by the chain's creation (not a second row).
    assert!(r.body["creation_signature"].is_string() && r.body["seen_on_chain"] == true, "{:?}", r.body);
    let a_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM ephemeral_sessions WHERE parent_wallet = $1")
        .bind(s_parent(&a))
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(a_rows, 1);
    let r = trade(&h, &a, &s, 2, SOL / 10, 0, &dest, None).await;
    assert_eq!((r.status, r.body["result"].as_str()), (200, Some("landed")), "{:?}", r.body);
    // B, signing, sees B's own session under that id: another incarnation, cleaned.
    let r = send_from(&h, &b, "GET", &format!("/v1/sessions/{}", s.session_id), None, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"].as_str(), Some("cleaned"));
    assert_ne!(r.body["session_ref"].as_i64(), Some(a_ref));
    assert_eq!(r.body["parent_wallet"].as_str(), Some(b_parent.pubkey().to_string().as_str()));
}
