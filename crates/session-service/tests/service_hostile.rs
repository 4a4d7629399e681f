//! The session service under hostile input (issue 16): NUL characters anywhere, bodies without
//! their content type, ids in odd spellings, a relay whose RPC endpoint is down, an audit log
//! that refuses the row. Every input is refused with a 4xx JSON error before it reaches the
//! database, every request is audited or not acted on, and no response carries configuration.

mod service_common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};
use service_common::*;
use vault_devkit::service_client::{Client, Reply};
use vault_session_service::auth::{random_nonce, sign_request};
use vault_session_service::{unix_now, Keyring, RpcChain};

async fn audit_count(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&h.db.pool).await.unwrap()
}

async fn last_audit(h: &Harness) -> (String, bool, Option<String>) {
    sqlx::query_as("SELECT action, success, error_message FROM audit_log ORDER BY chain_seq DESC LIMIT 1")
        .fetch_one(&h.db.pool)
        .await
        .unwrap()
}

/// Sends `body` bytes as they are, signed, with `content_type`.
async fn post_bytes(
    h: &Harness,
    key: &ed25519_dalek::SigningKey,
    path: &str,
    body: &[u8],
    content_type: Option<&str>,
) -> Reply {
    let signed = sign_request(key, "POST", path, body, unix_now(), &random_nonce());
    let mut rb = h.client.http.post(format!("{}{}", h.base, path)).body(body.to_vec());
    for (k, v) in signed.pairs() {
        rb = rb.header(k, v);
    }
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = resp.json().await.unwrap_or(Value::Null);
    let reply = Reply { status, content_type, body };
    let spec = service_common::spec::Spec::load();
    spec.check("POST", path, reply.status, reply.content_type.as_deref(), &reply.body).unwrap();
    reply
}

#[tokio::test]
async fn nul_anywhere_is_refused_with_400_and_audited() {
    let h = Harness::start(test_config(), Keyring::generate("k1"), None).await;
    let parent = random_key();
    let mut s = NewSession::random();
    assert_eq!(h.client.post(&parent, "/v1/sessions", &s.body(&parent, false)).await.unwrap().status, 201);

    for path in [
        "/v1/alerts?a%00b=1".to_string(),
        "/v1/sessions/%00".to_string(),
        "/v1/sessions/%00/transactions".to_string(),
        format!("/v1/sessions/{}?x=%00", s.session_id),
    ] {
        let before = audit_count(&h).await;
        let r = h.client.get(&parent, &path).await.unwrap();
        assert_eq!((r.status, r.code()), (400, Some("invalid_input")), "{path}: {:?}", r.body);
        assert_eq!(audit_count(&h).await, before + 1, "{path} is audited");
        let (_, success, error) = last_audit(&h).await;
        assert!(!success && error.unwrap().starts_with("invalid_input"));
    }

    let mut with_nul_format = s.body(&parent, false);
    with_nul_format["ephemeral_key"]["format"] = json!("seed\u{0}");
    let mut with_nul_fingerprint = s.body(&parent, false);
    with_nul_fingerprint["device_fingerprint"] = json!("a\u{0}b");
    for body in [json!({"\u{0}": 1}), with_nul_format, with_nul_fingerprint] {
        let before = audit_count(&h).await;
        let r = h.client.post(&parent, "/v1/sessions", &body).await.unwrap();
        assert_eq!((r.status, r.code()), (400, Some("invalid_body")), "{body}: {:?}", r.body);
        assert_eq!(audit_count(&h).await, before + 1);
        assert_eq!(last_audit(&h).await.0, "service.session.register");
    }
    // Unsigned, the same paths are refused as unauthenticated, and audited too.
    let before = audit_count(&h).await;
    let r = h.client.send_raw("GET", "/v1/sessions/%00", vec![], None, None).await.unwrap();
    assert_eq!((r.status, r.code()), (401, Some("missing_auth")));
    assert_eq!(audit_count(&h).await, before + 1);
    assert!(vault_db::audit::verify_chain(&h.db.pool).await.unwrap().is_none());
}

#[tokio::test]
async fn a_failed_audit_fails_the_request_and_undoes_its_action() {
    let h = Harness::start(test_config(), Keyring::generate("k1"), None).await;
    let parent = random_key();
    let mut kept = NewSession::random();
    assert_eq!(h.client.post(&parent, "/v1/sessions", &kept.body(&parent, false)).await.unwrap().status, 201);
    // The audit log refuses every row of these two actions from now on.
    sqlx::query(
        "ALTER TABLE audit_log ADD CONSTRAINT test_refuses CHECK (action NOT IN ('service.session.register', 'service.session.read')) NOT VALID",
    )
    .execute(&h.db.pool)
    .await
    .unwrap();
    // A raw client: 500 is not a documented answer, and should never be one outside this test.
    let raw = Client::new(h.base.clone());
    let mut s = NewSession::random();
    let r = raw.post(&parent, "/v1/sessions", &s.body(&parent, false)).await.unwrap();
    assert_eq!((r.status, r.code()), (500, Some("internal")), "{:?}", r.body);
    assert_eq!(r.body["error"]["message"], "internal error");
    let registered: i64 = sqlx::query_scalar("SELECT count(*) FROM ephemeral_sessions WHERE session_id = $1")
        .bind(&s.session_id)
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(registered, 0, "the registration is rolled back with its audit row");
    // A read that cannot be audited is not answered either.
    let r = raw.get(&parent, &format!("/v1/sessions/{}", kept.session_id)).await.unwrap();
    assert_eq!(r.status, 500);
    assert!(r.body.get("session_id").is_none());
}

#[tokio::test]
async fn odd_spellings_methods_and_content_types() {
    let admin = random_key();
    let mut config = test_config();
    config.admin_wallet = Some(wallet_of(&admin));
    let h = Harness::start(config, Keyring::generate("k1"), None).await;
    let parent = random_key();

    // A session without a per-trade cap reads back with null (the observer checks the document).
    let mut s = NewSession::random();
    let now = unix_now();
    let body = s.body_with(&parent, false, 1000, None, now - 5, now + 3600);
    let r = h.client.post(&parent, "/v1/sessions", &body).await.unwrap();
    assert_eq!((r.status, r.body["per_trade_cap"].clone()), (201, Value::Null));
    let r = h.client.get(&parent, &format!("/v1/sessions/{}/analytics", s.session_id)).await.unwrap();
    assert_eq!((r.status, r.body["avg_trade_size"].clone()), (200, Value::Null));

    // created_at a year ahead, the system program as mint, zero amounts.
    let mut s2 = NewSession::random();
    let b = s2.body_with(&parent, false, 1000, None, now + 365 * 86400, now + 365 * 86400 + 60);
    let r = h.client.post(&parent, "/v1/sessions", &b).await.unwrap();
    assert_eq!((r.status, r.code()), (400, Some("invalid_times")));
    let mut b = s2.body(&parent, false);
    b["mint"] = json!("11111111111111111111111111111111");
    let r = h.client.post(&parent, "/v1/sessions", &b).await.unwrap();
    assert_eq!((r.status, r.code()), (400, Some("invalid_mint")));
    let mut b = s2.body(&parent, false);
    b["approved_amount"] = json!("0");
    assert_eq!(h.client.post(&parent, "/v1/sessions", &b).await.unwrap().code(), Some("invalid_amount"));

    // Alert ids: digits only, no sign, no leading zero.
    for id in ["+5", "05", "-1", "0", "2147483648", "1e3"] {
        let r = h.client.post(&admin, &format!("/v1/admin/alerts/{id}/resolve"), &json!({})).await.unwrap();
        assert_eq!((r.status, r.code()), (400, Some("invalid_alert_id")), "{id}");
    }
    let r = h.client.post(&admin, "/v1/admin/alerts/5/resolve", &json!({})).await.unwrap();
    assert_eq!((r.status, r.code()), (404, Some("not_found")));
    // The resolve body is optional, as documented.
    let r = h.client.send(&admin, "POST", "/v1/admin/alerts/5/resolve", None).await.unwrap();
    assert_eq!((r.status, r.code()), (404, Some("not_found")));

    // A string the wallet pattern admits but that is no 32-byte key: refused as any other wallet.
    let not_a_key = "z".repeat(44);
    let r = h.client.get(&parent, &format!("/v1/parents/{not_a_key}/sessions")).await.unwrap();
    assert_eq!((r.status, r.code()), (403, Some("forbidden")));
    let mut b = s2.body(&parent, false);
    b["parent_wallet"] = json!(not_a_key);
    let r = h.client.post(&parent, "/v1/sessions", &b).await.unwrap();
    assert_eq!((r.status, r.code()), (403, Some("forbidden")));

    // Another method on a known route: 405 with the JSON error; an unknown route: 404.
    let r = h.client.send(&parent, "DELETE", "/v1/sessions", None).await.unwrap();
    assert_eq!((r.status, r.code()), (405, Some("method_not_allowed")));
    let r = h.client.get(&parent, "/v1/nothing-here").await.unwrap();
    assert_eq!((r.status, r.code()), (404, Some("not_found")));

    // A JSON body needs its content type.
    let good = serde_json::to_vec(&s2.body(&parent, false)).unwrap();
    for ct in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        let r = post_bytes(&h, &parent, "/v1/sessions", &good, ct).await;
        assert_eq!((r.status, r.code()), (415, Some("unsupported_media_type")), "{ct:?}");
    }
    let r = post_bytes(&h, &parent, "/v1/sessions", &good, Some("application/json; charset=utf-8")).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert!(vault_db::audit::verify_chain(&h.db.pool).await.unwrap().is_none());
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn relay_with_the_rpc_down_answers_503_without_the_url() {
    let secret = "rpc-secret-4c1d";
    let rpc_url = format!("http://127.0.0.1:{}/?api-key={secret}", closed_port());
    let mut config = test_config();
    config.relay_enabled = true;
    config.rpc_url = Some(rpc_url.clone());
    let chain = Arc::new(RpcChain::new(&rpc_url, solana_commitment_config::CommitmentConfig::confirmed()));
    let h = Harness::start(config, Keyring::generate("k1"), Some(chain)).await;
    let parent = random_key();
    let mut s = NewSession::random();
    let r = h.client.post(&parent, "/v1/sessions", &s.body(&parent, true)).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let body = json!({"action": "top_up", "amount": "1000"});
    let r = h.client.post(&parent, &format!("/v1/sessions/{}/relay", s.session_id), &body).await.unwrap();
    assert_eq!((r.status, r.code()), (503, Some("chain_unavailable")), "{:?}", r.body);
    let text = r.body.to_string();
    assert!(!text.contains(secret) && !text.contains("127.0.0.1") && !text.contains("http"), "{text}");
    // Nor is it in the audit row.
    let errors: Vec<Option<String>> = sqlx::query_scalar("SELECT error_message FROM audit_log WHERE NOT success")
        .fetch_all(&h.db.pool)
        .await
        .unwrap();
    assert!(errors.iter().flatten().all(|e| !e.contains(secret)), "{errors:?}");
    assert_eq!(errors.len(), 1);
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn no_response_carries_the_rpc_url_the_kek_path_or_the_database_url() {
    let db = vault_devkit::test_db::TestDb::new().await;
    let dir = std::env::temp_dir().join(format!("vault-service-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kek_path = dir.join("keks-0b7e.txt");
    use base64::Engine;
    std::fs::write(&kek_path, format!("k1={}\n", base64::engine::general_purpose::STANDARD.encode([7u8; 32]))).unwrap();
    let secret = "rpc-secret-9f2a";
    let rpc_url = format!("http://127.0.0.1:{}/v2/{secret}?api-key={secret}", closed_port());
    let port = closed_port();
    let admin = random_key();
    let child = Command::new(env!("CARGO_BIN_EXE_vault-service"))
        .env("DATABASE_URL", db.url())
        .env("VAULT_SERVICE_KEK_FILE", &kek_path)
        .env("VAULT_SERVICE_ACTIVE_KEK", "k1")
        .env_remove("VAULT_SERVICE_KEKS")
        .args(["--listen", &format!("127.0.0.1:{port}"), "--relay", "--rpc-url", &rpc_url])
        .args(["--admin-wallet", &wallet_of(&admin)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vault-service");
    let _service = Service(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new(base.clone());
    for _ in 0..100 {
        if client.http.get(format!("{base}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let parent = random_key();
    let mut s = NewSession::random();
    let sid = s.session_id.clone();
    let mut replies: Vec<(String, Reply)> = vec![];
    let mut note = |what: String, r: Reply| replies.push((what, r));
    let r = client.post(&parent, "/v1/sessions", &s.body(&parent, true)).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    note("register".into(), r);
    let relay = format!("/v1/sessions/{sid}/relay");
    for body in [
        json!({"action": "top_up", "amount": "1000"}),
        json!({"action": "trade", "trade_id": "1", "amount": "10", "fee": "0", "destination": wallet_of(&random_key())}),
        json!({"action": "nope"}),
    ] {
        note(format!("relay {body}"), client.post(&parent, &relay, &body).await.unwrap());
    }
    let gets = [
        format!("/v1/sessions/{sid}"),
        format!("/v1/sessions/{sid}/transactions"),
        format!("/v1/sessions/{sid}/analytics"),
        format!("/v1/sessions/{sid}/alerts"),
        format!("/v1/sessions/{sid}/sealed-key"),
        format!("/v1/parents/{}/sessions", wallet_of(&parent)),
        "/v1/cleanup-candidates".into(),
        "/v1/alerts".into(),
        "/v1/admin/alerts".into(),
        "/v1/admin/cleanup-candidates".into(),
        "/v1/sessions/%00".into(),
        "/v1/unknown".into(),
    ];
    for p in &gets {
        note(format!("GET {p}"), client.get(&parent, p).await.unwrap());
        note(format!("admin GET {p}"), client.get(&admin, p).await.unwrap());
        note(format!("unsigned GET {p}"), client.send_raw("GET", p, vec![], None, None).await.unwrap());
    }
    note("resolve".into(), client.post(&admin, "/v1/admin/alerts/1/resolve", &json!({})).await.unwrap());
    let openapi = client.http.get(format!("{base}/openapi.json")).send().await.unwrap().text().await.unwrap();
    let health = client.http.get(format!("{base}/health")).send().await.unwrap().text().await.unwrap();

    let kek = kek_path.to_string_lossy().to_string();
    let needles = [rpc_url.as_str(), secret, kek.as_str(), "keks-0b7e", &db.url(), &db.name];
    let mut texts: Vec<(String, String)> = replies.into_iter().map(|(w, r)| (w, r.body.to_string())).collect();
    texts.push(("openapi".into(), openapi));
    texts.push(("health".into(), health));
    assert!(texts.iter().any(|(w, t)| w.starts_with("relay") && t.contains("chain_unavailable")), "{texts:?}");
    for (what, text) in &texts {
        for n in needles {
            assert!(!text.contains(n), "{what}: the response carries {n:?}: {text}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
