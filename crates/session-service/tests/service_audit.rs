//! The audit chain under concurrent writers: the service's requests (allowed and refused) and
//! the indexer appending at the same time; every request has its row and the chain verifies.

use vault_devkit::test_db as common;
mod service_common;

use sqlx::Executor;

use service_common::*;
use vault_session_service::Keyring;

/// A session created and 39 trades on it, executed by the real program: one vault action each.
fn program_transactions() -> Vec<vault_indexer::chain_tx::ChainTx> {
    use ephemeral_vault_testkit::*;
    use solana_signer::Signer;
    let mut w = VaultWorld::new();
    let venue = w.new_wallet(LAMPORTS_PER_SOL);
    let s = w.sol_session();
    let mut args = session_args(s.session.session_id);
    args.initial_deposit = LAMPORTS_PER_SOL;
    w.create(&s, args).expect("create");
    for trade_id in 1..40 {
        w.trade(&s, &s.delegate, venue.pubkey(), None, trade_id, 1_000, 10).expect("trade");
    }
    w.history.iter().filter(|r| r.mentions(&ephemeral_vault::ID)).map(vault_devkit::recorded::chain_tx).collect()
}

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
    // Meanwhile the real indexer writer appends the rows of real transactions (a session and 39
    // trades of the program, in batches of 4), as the vault_indexer role: its rows are chained by
    // the writer itself (migration 0013) while the service's are chained by the trigger.
    let txs = program_transactions();
    let indexed_actions: i64 =
        vault_indexer::decode::decode_all(&txs).iter().map(|d| d.decoded.actions.len() as i64).sum();
    let indexer = {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET ROLE vault_indexer").await?;
                    Ok(())
                })
            })
            .connect(&h.db.url())
            .await
            .unwrap();
        tokio::spawn(async move {
            let ingest = vault_indexer::ingest::Ingest::default();
            for batch in txs.chunks(4) {
                let decoded = vault_indexer::decode::decode_all(batch);
                ingest.write_batch(&pool, "test", &decoded, None).await.unwrap();
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
    assert_eq!((total, service, refused), (5 + 80 + indexed_actions, 5 + 80, 40));
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
