//! Rate limits under concurrency: of 50 simultaneous requests against a limit of N, exactly N
//! pass; abuse blocks the wallet; the limits come from the system_default rows unless
//! configured.

use vault_devkit::test_db as common;
mod service_common;

use std::collections::BTreeMap;

use service_common::*;
use vault_session_service::{Keyring, Limit, RateAction};

#[tokio::test]
async fn fifty_concurrent_registrations_against_a_limit_of_seven() {
    const N: u32 = 7;
    let mut config = test_config();
    config.rate_limits.overrides =
        BTreeMap::from([(RateAction::SessionCreate, Limit { max_requests: N, window_seconds: 3600 })]);
    config.rate_limits.abuse_factor = 3;
    let h = Harness::start(config, Keyring::generate("k1"), None).await;
    let parent = random_key();
    let other = random_key();

    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = vault_devkit::service_client::Client::new(h.base.clone());
        let parent = parent.clone();
        let mut s = NewSession::random();
        let body = s.body(&parent, false);
        tasks.push(tokio::spawn(async move { client.post(&parent, "/v1/sessions", &body).await.unwrap() }));
    }
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        let r = t.await.unwrap();
        *by_status.entry(r.status).or_default() += 1;
        if let Some(c) = r.code() {
            *codes.entry(c.to_string()).or_default() += 1;
        }
    }
    assert_eq!(by_status.get(&201).copied(), Some(N as usize), "{by_status:?} {codes:?}");
    assert_eq!(by_status.get(&429).copied(), Some(50 - N as usize), "{by_status:?}");
    let registered: i64 = sqlx::query_scalar("SELECT count(*) FROM ephemeral_sessions WHERE parent_wallet = $1")
        .bind(wallet_of(&parent))
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(registered, i64::from(N));

    // 50 > 3 x 7: the wallet is blocked, and stays blocked (its counter frozen).
    let (count, blocked, until): (i32, bool, Option<i64>) = sqlx::query_as(
        "SELECT request_count, is_blocked, blocked_until FROM rate_limits
         WHERE parent_wallet = $1 AND action_type = 'session_create'",
    )
    .bind(wallet_of(&parent))
    .fetch_one(&h.db.pool)
    .await
    .unwrap();
    assert!(blocked && until.unwrap() > common::unix_now(), "{count} {blocked} {until:?}");
    assert_eq!(count, 3 * N as i32 + 1);
    assert!(codes.get("blocked").copied().unwrap_or(0) > 0, "{codes:?}");

    // Another wallet is not affected.
    let mut s = NewSession::random();
    let r = h.client.post(&other, "/v1/sessions", &s.body(&other, false)).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    // Every one of the 50 is audited.
    assert_eq!(h.audit_rows("service.session.register", true).await.len(), N as usize + 1);
    assert_eq!(h.audit_rows("service.session.register", false).await.len(), 50 - N as usize);
}

#[tokio::test]
async fn limits_default_to_the_system_default_rows_and_windows_reset() {
    let h = Harness::start(test_config(), Keyring::generate("k1"), None).await;
    // Lower the database default to 2 per 2 s.
    sqlx::query(
        "UPDATE rate_limits SET max_requests = 2, window_seconds = 2
         WHERE parent_wallet = 'system_default' AND action_type = 'session_create'",
    )
    .execute(&h.db.pool)
    .await
    .unwrap();
    let parent = random_key();
    let mut statuses = vec![];
    for _ in 0..3 {
        let mut s = NewSession::random();
        statuses.push(h.client.post(&parent, "/v1/sessions", &s.body(&parent, false)).await.unwrap().status);
    }
    assert_eq!(statuses, vec![201, 201, 429]);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let mut s = NewSession::random();
    let r = h.client.post(&parent, "/v1/sessions", &s.body(&parent, false)).await.unwrap();
    assert_eq!(r.status, 201, "a new window: {:?}", r.body);
}
