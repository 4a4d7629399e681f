//! The session service's authentication and input validation over real HTTP: every refusal is
//! answered with a 4xx JSON error and recorded in the audit log; one wallet never reaches
//! another's sessions.

mod service_common;

use serde_json::json;
use service_common::*;
use vault_session_service::auth::{random_nonce, sign_request};
use vault_session_service::{unix_now, Keyring};

async fn audited_refusals(h: &Harness, action: &str) -> Vec<String> {
    h.audit_rows(action, false).await.into_iter().map(|(_, e)| e.unwrap_or_default()).collect()
}

#[tokio::test]
async fn register_then_read_own_session() {
    let mut config = test_config();
    config.admin_wallet = None;
    let h = Harness::start(config, Keyring::generate("k1"), None).await;
    let parent = random_key();
    let mut s = NewSession::random();
    let body = s.body(&parent, false);
    let r = h.client.post(&parent, "/v1/sessions", &body).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["session_id"], s.session_id);
    assert_eq!(r.body["key"]["registered"], true);
    assert_eq!(r.body["key"]["kind"], "client_sealed");
    assert_eq!(r.body["registered_ip"], "127.0.0.1");
    assert!(r.body.get("encrypted_keypair").is_none());

    let r = h.client.get(&parent, &format!("/v1/sessions/{}", s.session_id)).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["approved_amount"], "1000000000");
    let r = h.client.get(&parent, &format!("/v1/parents/{}/sessions", wallet_of(&parent))).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body["sessions"].as_array().unwrap().len(), 1);
    let r = h.client.get(&parent, &format!("/v1/sessions/{}/transactions?limit=10", s.session_id)).await.unwrap();
    assert_eq!((r.status, r.body["transactions"].as_array().map(Vec::len)), (200, Some(0)));
    let r = h.client.get(&parent, &format!("/v1/sessions/{}/analytics", s.session_id)).await.unwrap();
    assert_eq!((r.status, r.body["total_trades"].as_i64()), (200, Some(0)));
    // The browser gets its own envelope back, byte for byte.
    let r = h.client.get(&parent, &format!("/v1/sessions/{}/sealed-key", s.session_id)).await.unwrap();
    assert_eq!(r.status, 200);
    use base64::Engine;
    let back = base64::engine::general_purpose::STANDARD.decode(r.body["data"].as_str().unwrap()).unwrap();
    assert_eq!(Some(back), s.client_envelope);

    // Registering the same session again is refused; the key is never replaced.
    let again = s.body(&parent, false);
    let r = h.client.post(&parent, "/v1/sessions", &again).await.unwrap();
    assert_eq!((r.status, r.code()), (409, Some("already_registered")));

    // Every action above is in the log, and the chain holds.
    assert_eq!(h.audit_rows("service.session.register", true).await.len(), 1);
    assert_eq!(h.audit_rows("service.session.read", true).await.len(), 1);
    assert!(vault_db::audit::verify_chain(&h.db.pool).await.unwrap().is_none());
    let served = h.client.http.get(format!("{}/openapi.json", h.base)).send().await.unwrap();
    let doc: serde_json::Value = served.json().await.unwrap();
    assert!(doc["paths"]["/v1/sessions/{session_id}/relay"].is_object());
}

#[tokio::test]
async fn refusals_are_answered_and_audited() {
    let admin = random_key();
    let mut config = test_config();
    config.admin_wallet = Some(wallet_of(&admin));
    let h = Harness::start(config, Keyring::generate("k1"), None).await;
    let alice = random_key();
    let mallory = random_key();
    let mut s = NewSession::random();
    let r = h.client.post(&alice, "/v1/sessions", &s.body(&alice, false)).await.unwrap();
    assert_eq!(r.status, 201);
    let path = format!("/v1/sessions/{}", s.session_id);
    let now = unix_now();

    // No headers at all.
    let r = h.client.send_raw("GET", &path, vec![], None, None).await.unwrap();
    assert_eq!((r.status, r.code()), (401, Some("missing_auth")));

    // Bad signature: signed for another path.
    let signed = sign_request(&alice, "GET", "/v1/sessions/other", b"", now, &random_nonce());
    let r = h.client.send_raw("GET", &path, vec![], Some(&signed), None).await.unwrap();
    assert_eq!((r.status, r.code()), (401, Some("bad_signature")));

    // Wrong wallet: Mallory's signature presented as Alice's.
    let mut forged = sign_request(&mallory, "GET", &path, b"", now, &random_nonce());
    forged.wallet = wallet_of(&alice);
    let r = h.client.send_raw("GET", &path, vec![], Some(&forged), None).await.unwrap();
    assert_eq!((r.status, r.code()), (401, Some("bad_signature")));

    // Tampered body on a signed POST.
    let body = s.body(&alice, false);
    let signed =
        sign_request(&alice, "POST", "/v1/sessions", &serde_json::to_vec(&body).unwrap(), now, &random_nonce());
    let mut tampered = body.clone();
    tampered["approved_amount"] = json!("1");
    let r = h
        .client
        .send_raw("POST", "/v1/sessions", serde_json::to_vec(&tampered).unwrap(), Some(&signed), None)
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (401, Some("bad_signature")));

    // Replayed nonce: the same signed request twice.
    let nonce = random_nonce();
    let r = h.client.send_signed_with(&alice, "GET", &path, None, now, &nonce).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = h.client.send_signed_with(&alice, "GET", &path, None, now, &nonce).await.unwrap();
    assert_eq!((r.status, r.code()), (401, Some("replayed_nonce")));

    // Stale and future timestamps.
    let r = h.client.send_signed_with(&alice, "GET", &path, None, now - 3600, &random_nonce()).await.unwrap();
    assert_eq!((r.status, r.code()), (401, Some("stale_timestamp")));
    let r = h.client.send_signed_with(&alice, "GET", &path, None, now + 3600, &random_nonce()).await.unwrap();
    assert_eq!((r.status, r.code()), (401, Some("stale_timestamp")));

    // Another parent's session: validly signed by Mallory, answered as if it did not exist.
    for p in [
        path.clone(),
        format!("{path}/transactions"),
        format!("{path}/analytics"),
        format!("{path}/alerts"),
        format!("{path}/sealed-key"),
    ] {
        let r = h.client.get(&mallory, &p).await.unwrap();
        assert_eq!((r.status, r.code()), (404, Some("not_found")), "{p}");
    }
    // Another parent's list.
    let r = h.client.get(&mallory, &format!("/v1/parents/{}/sessions", wallet_of(&alice))).await.unwrap();
    assert_eq!((r.status, r.code()), (403, Some("forbidden")));
    // Registering for another parent.
    let mut s2 = NewSession::random();
    let r = h.client.post(&mallory, "/v1/sessions", &s2.body(&alice, false)).await.unwrap();
    assert_eq!((r.status, r.code()), (403, Some("forbidden")));
    // Admin endpoints with a parent's key.
    let r = h.client.get(&alice, "/v1/admin/alerts").await.unwrap();
    assert_eq!((r.status, r.code()), (403, Some("forbidden")));
    let r = h.client.get(&admin, "/v1/admin/alerts").await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Mallory's alert list holds nothing of Alice's.
    let r = h.client.get(&mallory, "/v1/alerts").await.unwrap();
    assert_eq!(r.body["alerts"].as_array().unwrap().len(), 0);

    // Every refusal is audited, with who claimed to be asking and why it failed.
    let reads = audited_refusals(&h, "service.session.read").await;
    for code in ["missing_auth", "bad_signature", "replayed_nonce", "stale_timestamp", "not_found"] {
        assert!(reads.iter().any(|e| e.starts_with(code)), "no audited {code} in {reads:?}");
    }
    assert_eq!(reads.iter().filter(|e| e.starts_with("bad_signature")).count(), 2);
    assert_eq!(reads.iter().filter(|e| e.starts_with("stale_timestamp")).count(), 2);
    assert!(reads.iter().any(|e| e.contains("another wallet")), "{reads:?}");
    let foreign: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT actor, error_message FROM audit_log WHERE NOT success AND actor = $1 AND session_id = $2",
    )
    .bind(wallet_of(&mallory))
    .bind(&s.session_id)
    .fetch_all(&h.db.pool)
    .await
    .unwrap();
    assert_eq!(foreign.len(), 5, "{foreign:?}");
    let forged_rows = h.audit_rows("service.session.read", false).await;
    assert!(forged_rows
        .iter()
        .any(|(actor, e)| actor == &wallet_of(&alice) && e.as_deref().unwrap_or("").starts_with("bad_signature")));
    assert_eq!(audited_refusals(&h, "service.sessions.list").await.len(), 1);
    assert_eq!(audited_refusals(&h, "service.session.register").await.len(), 2);
    assert_eq!(audited_refusals(&h, "service.admin.alerts.list").await.len(), 1);
    let ip_ua: (Option<String>, Option<String>) =
        sqlx::query_as("SELECT ip_address, user_agent FROM audit_log WHERE NOT success ORDER BY chain_seq LIMIT 1")
            .fetch_one(&h.db.pool)
            .await
            .unwrap();
    assert_eq!(ip_ua.0.as_deref(), Some("127.0.0.1"));
    assert!(vault_db::audit::verify_chain(&h.db.pool).await.unwrap().is_none());
}

#[tokio::test]
async fn inputs_are_validated() {
    let mut config = test_config();
    config.max_body_bytes = 4096;
    // Every attempt counts against session_create, invalid ones too.
    config.rate_limits.overrides.insert(
        vault_session_service::RateAction::SessionCreate,
        vault_session_service::Limit { max_requests: 100, window_seconds: 3600 },
    );
    let h = Harness::start(config, Keyring::generate("k1"), None).await;
    let parent = random_key();
    let post = |body: serde_json::Value| {
        let h = &h;
        let parent = parent.clone();
        async move { h.client.post(&parent, "/v1/sessions", &body).await.unwrap() }
    };
    let mut s = NewSession::random();
    let good = s.body(&parent, false);

    let mut b = good.clone();
    b["session_id"] = json!("not-a-uuid");
    assert_eq!(post(b).await.code(), Some("invalid_session_id"));
    let mut b = good.clone();
    b["vault_pda"] = json!(wallet_of(&random_key()));
    assert_eq!(post(b).await.code(), Some("vault_mismatch"));
    let mut b = good.clone();
    b["ephemeral_wallet"] = json!("0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl");
    assert_eq!(post(b).await.code(), Some("invalid_pubkey"));
    let mut b = good.clone();
    b["approved_amount"] = json!("18446744073709551616");
    assert_eq!(post(b).await.code(), Some("invalid_body"));
    let mut b = good.clone();
    b["approved_amount"] = json!(-5);
    assert_eq!(post(b).await.code(), Some("invalid_body"));
    let mut b = good.clone();
    b["per_trade_cap"] = json!("2000000000");
    assert_eq!(post(b).await.code(), Some("invalid_amount"));
    let mut b = good.clone();
    b["expires_at"] = json!(unix_now() - 10);
    b["created_at"] = json!(unix_now() - 100);
    assert_eq!(post(b).await.code(), Some("session_expired"));
    let mut b = good.clone();
    b["unexpected"] = json!(1);
    assert_eq!(post(b).await.code(), Some("invalid_body"));
    let mut b = good.clone();
    b["ephemeral_key"]["data"] = json!("!!!");
    assert_eq!(post(b).await.code(), Some("invalid_key"));
    // The envelope must carry the ephemeral wallet's public key.
    let mut other = NewSession::random();
    let mut b = good.clone();
    b["ephemeral_key"] = other.body(&parent, false)["ephemeral_key"].clone();
    assert_eq!(post(b).await.code(), Some("key_mismatch"));
    // A clear seed is refused where the relay is off.
    let mut b = good.clone();
    b["ephemeral_key"] = s.body(&parent, true)["ephemeral_key"].clone();
    assert_eq!(post(b).await.code(), Some("clear_key_not_accepted"));
    // Oversized bodies.
    let mut b = good.clone();
    b["device_fingerprint"] = json!("x".repeat(10_000));
    let r = post(b).await;
    assert_eq!((r.status, r.code()), (413, Some("body_too_large")));
    // Bad query parameters and ids.
    let r = h.client.get(&parent, "/v1/cleanup-candidates?limit=0").await.unwrap();
    assert_eq!(r.code(), Some("invalid_limit"));
    let r = h.client.get(&parent, "/v1/cleanup-candidates?bogus=1").await.unwrap();
    assert_eq!(r.code(), Some("invalid_query"));
    let r = h.client.get(&parent, "/v1/sessions/xyz").await.unwrap();
    assert_eq!((r.status, r.code()), (400, Some("invalid_session_id")));
    // Nothing was registered, and the good body still works.
    assert_eq!(post(good).await.status, 201);
}
