//! The audit chain under concurrent writers: the service's requests (allowed and refused) and
//! the indexer appending at the same time; every request has its row and the chain verifies.

use vault_devkit::test_db as common;
mod service_common;

use sqlx::Executor;

use service_common::*;
use vault_session_service::Keyring;

#[tokio::test]
async fn audit_chain_verifies_after_concurrent_writers() {
    let h = Harness::start(test_config(), Keyring::generate("k1"), None).await;
    let parents: Vec<_> = (0..5).map(|_| random_key()).collect();
    let mut sessions = Vec::new();
    for p in &parents {
        let mut s = NewSession::random();
        assert_eq!(h.client.post(p, "/v1/sessions", &s.body(p, false)).await.unwrap().status, 201);
        sessions.push(s.session_id.clone());
    }
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&h.db.pool).await.unwrap();
    assert_eq!(before, 5);

    // 80 HTTP requests at once: own reads, foreign reads, unsigned ones, lists.
    let mut tasks = Vec::new();
    for i in 0..80usize {
        let client = vault_devkit::service_client::Client::new(h.base.clone());
        let me = parents[i % 5].clone();
        let other_session = sessions[(i + 1) % 5].clone();
        let own_session = sessions[i % 5].clone();
        tasks.push(tokio::spawn(async move {
            match i % 4 {
                0 => client.get(&me, &format!("/v1/sessions/{own_session}")).await.unwrap().status,
                1 => client.get(&me, &format!("/v1/sessions/{other_session}")).await.unwrap().status,
                2 => {
                    client
                        .send_raw("GET", &format!("/v1/sessions/{own_session}"), vec![], None, None)
                        .await
                        .unwrap()
                        .status
                }
                _ => client.get(&me, "/v1/alerts").await.unwrap().status,
            }
        }));
    }
    // Meanwhile the indexer appends its own rows, as vault_indexer.
    let indexer = {
        let pool = h.db.another_pool().await;
        tokio::spawn(async move {
            for n in 0..40 {
                let mut tx = pool.begin().await.unwrap();
                tx.execute("SET LOCAL ROLE vault_indexer").await.unwrap();
                sqlx::query(
                    "INSERT INTO audit_log (action, actor, success, metadata) VALUES ('chain.trade_executed', 'indexer', true, $1)",
                )
                .bind(serde_json::json!({"chain_ref": format!("sig{n}:0")}))
                .execute(&mut *tx)
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }
        })
    };
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for t in tasks {
        *statuses.entry(t.await.unwrap()).or_default() += 1;
    }
    indexer.await.unwrap();
    assert_eq!(statuses, [(200, 40), (401, 20), (404, 20)].into_iter().collect());

    let (total, service, refused): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE metadata ->> 'source' = 'service'),
                count(*) FILTER (WHERE NOT success)
         FROM audit_log",
    )
    .fetch_one(&h.db.pool)
    .await
    .unwrap();
    assert_eq!((total, service, refused), (5 + 80 + 40, 5 + 80, 40));
    let max_seq: i64 = sqlx::query_scalar("SELECT max(chain_seq) FROM audit_log").fetch_one(&h.db.pool).await.unwrap();
    assert_eq!(max_seq, total);
    assert_eq!(vault_db::audit::verify_chain(&h.db.pool).await.unwrap(), None);
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_untrusted_peers() {
    // No trusted proxies: a client cannot choose the IP it is recorded under.
    let h = Harness::start(test_config(), Keyring::generate("k1"), None).await;
    let p = random_key();
    let mut s = NewSession::random();
    let body = s.body(&p, false);
    let bytes = serde_json::to_vec(&body).unwrap();
    let signed = vault_session_service::auth::sign_request(
        &p,
        "POST",
        "/v1/sessions",
        &bytes,
        common::unix_now(),
        &vault_session_service::auth::random_nonce(),
    );
    let r = h
        .client
        .send_raw("POST", "/v1/sessions", bytes, Some(&signed), Some(("x-forwarded-for", "203.0.113.50")))
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.body["registered_ip"], "127.0.0.1");
}
