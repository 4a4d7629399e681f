//! Keys at rest: after registering many sessions and rotating the key-encryption key twice (the
//! first rotation interrupted and resumed), every keypair opens to the original, and no secret
//! byte sequence appears anywhere in the database.

use vault_devkit::test_db as common;
mod service_common;

use std::sync::Arc;

use base64::Engine;
use service_common::*;
use vault_devkit::litesvm_chain::LiteSvmChain;
use vault_session_service::crypto::{envelope_key_id, KeyKind};
use vault_session_service::{rotate_kek, Kek, Keyring};

fn key(byte: u8) -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = byte.wrapping_mul(31).wrapping_add(i as u8);
    }
    k
}

fn ring(ids: &[(&str, u8)], active: &str) -> Keyring {
    Keyring::new(ids.iter().map(|(id, b)| Kek::new(*id, key(*b)).unwrap()).collect(), active).unwrap()
}

async fn key_ids(pool: &sqlx::PgPool) -> Vec<String> {
    let envs: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT encrypted_keypair FROM ephemeral_sessions WHERE encrypted_keypair IS NOT NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    envs.iter().map(|e| envelope_key_id(e).unwrap().to_string()).collect()
}

/// Every column of every table, as text, searched for each needle (and bytea columns for the
/// raw bytes).
async fn occurrences(pool: &sqlx::PgPool, needles_text: &[String], needles_bytes: &[Vec<u8>]) -> Vec<String> {
    let cols: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text
         FROM information_schema.columns c
         JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(cols.len() > 50, "expected the whole schema, got {} columns", cols.len());
    let mut found = Vec::new();
    for (table, column, ty) in cols {
        let text_expr = if ty == "bytea" {
            format!("encode(\"{column}\", 'hex') || ' ' || encode(\"{column}\", 'base64') || ' ' || encode(\"{column}\", 'escape')")
        } else {
            format!("\"{column}\"::text")
        };
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM \"{table}\"
             WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) n WHERE strpos({text_expr}, n) > 0)"
        ))
        .bind(needles_text)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{table}.{column}: {e}"));
        if n > 0 {
            found.push(format!("{table}.{column} (text)"));
        }
        if ty == "bytea" {
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM \"{table}\" WHERE EXISTS (SELECT 1 FROM unnest($1::bytea[]) n WHERE position(n IN \"{column}\") > 0)"
            ))
            .bind(needles_bytes)
            .fetch_one(pool)
            .await
            .unwrap();
            if n > 0 {
                found.push(format!("{table}.{column} (bytes)"));
            }
        }
    }
    found
}

#[tokio::test]
async fn rotation_twice_with_resume_keeps_every_key_and_no_secret_leaks() {
    // The relay must be on for clear seeds to be accepted; its chain is never used here.
    let world = Arc::new(std::sync::Mutex::new(ephemeral_vault_testkit::VaultWorld::new()));
    let mut config = test_config();
    config.relay_enabled = true;
    config.rate_limits.overrides.insert(
        vault_session_service::RateAction::SessionCreate,
        vault_session_service::Limit { max_requests: 1000, window_seconds: 3600 },
    );
    let h = Harness::start(config, ring(&[("k1", 1)], "k1"), Some(Arc::new(LiteSvmChain::new(world)))).await;

    let parents: Vec<_> = (0..4).map(|_| random_key()).collect();
    let mut sessions = Vec::new();
    for i in 0..40 {
        let parent = &parents[i % parents.len()];
        let mut s = NewSession::random();
        let seed_format = i % 2 == 0;
        let body = s.body(parent, seed_format);
        let r = h.client.post(parent, "/v1/sessions", &body).await.unwrap();
        assert_eq!(r.status, 201, "{:?}", r.body);
        sessions.push((s, seed_format));
    }
    // A session the indexer saw without a key is left alone by the rotation.
    common::session(&h.db.pool).await;
    assert!(key_ids(&h.db.pool).await.iter().all(|k| k == "k1"));

    // Rotation 1 (k1 -> k2), interrupted after two batches of 7, then resumed.
    let both = ring(&[("k1", 1), ("k2", 2)], "k2");
    let first = rotate_kek(&h.db.pool, &both, 7, Some(2)).await.unwrap();
    assert_eq!((first.rewrapped, first.batches, first.complete), (14, 2, false));
    let ids = key_ids(&h.db.pool).await;
    assert_eq!(ids.iter().filter(|k| *k == "k2").count(), 14);
    assert_eq!(ids.iter().filter(|k| *k == "k1").count(), 26);
    let resumed = rotate_kek(&h.db.pool, &both, 7, None).await.unwrap();
    assert_eq!((resumed.rewrapped, resumed.complete), (26, true));
    assert!(key_ids(&h.db.pool).await.iter().all(|k| k == "k2"));
    // A rerun finds nothing to do.
    assert_eq!(rotate_kek(&h.db.pool, &both, 7, None).await.unwrap().rewrapped, 0);

    // Rotation 2 (k2 -> k3), as the vault_service role; k1 is gone from the configuration.
    let pool = service_pool(&h.db, 4).await;
    let final_ring = ring(&[("k2", 2), ("k3", 3)], "k3");
    let second = rotate_kek(&pool, &final_ring, 16, None).await.unwrap();
    assert_eq!((second.rewrapped, second.complete), (40, true));

    // Every envelope opens to what was sent, under k3 alone.
    let k3_only = ring(&[("k3", 3)], "k3");
    for (s, seed_format) in &sessions {
        let env: Vec<u8> = sqlx::query_scalar("SELECT encrypted_keypair FROM ephemeral_sessions WHERE session_id = $1")
            .bind(&s.session_id)
            .fetch_one(&h.db.pool)
            .await
            .unwrap();
        assert_eq!(envelope_key_id(&env).unwrap(), "k3");
        let (kind, payload) = k3_only.open(&env, &s.session_id, &s.ephemeral_wallet).unwrap();
        if *seed_format {
            assert_eq!(kind, KeyKind::Seed);
            assert_eq!(payload.as_slice(), &s.ephemeral_seed);
        } else {
            assert_eq!(kind, KeyKind::ClientSealed);
            assert_eq!(Some(payload.to_vec()), s.client_envelope);
        }
        // Bound to its session: it does not open as another one.
        assert!(
            k3_only.open(&env, &sessions[0].0.session_id, &s.ephemeral_wallet).is_err()
                || s.session_id == sessions[0].0.session_id
        );
        // The old key no longer opens it.
        assert!(ring(&[("k1", 1)], "k1").open(&env, &s.session_id, &s.ephemeral_wallet).is_err());
    }

    // No secret anywhere: the seeds (raw, hex, base64, base58), the 64-byte keypairs, and the
    // KEKs themselves.
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut text = Vec::new();
    let mut bytes = Vec::new();
    for (s, _) in &sessions {
        let kp = s.keypair().to_bytes().to_vec();
        for secret in [s.ephemeral_seed.to_vec(), kp] {
            text.push(vault_session_service::auth::hex(&secret));
            text.push(b64.encode(&secret));
            text.push(bs58::encode(&secret).into_string());
            bytes.push(secret[..16].to_vec());
        }
    }
    for b in [1u8, 2, 3] {
        let k = key(b);
        text.push(vault_session_service::auth::hex(&k));
        text.push(b64.encode(k));
        bytes.push(k[..16].to_vec());
    }
    let found = occurrences(&h.db.pool, &text, &bytes).await;
    assert!(found.is_empty(), "secret material found in {found:?}");
    // And the check itself can see: a planted seed is found.
    let planted = &sessions[0].0;
    sqlx::query("UPDATE ephemeral_sessions SET device_fingerprint = $1 WHERE session_id = $2")
        .bind(vault_session_service::auth::hex(&planted.ephemeral_seed))
        .bind(&planted.session_id)
        .execute(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(
        occurrences(&h.db.pool, &text, &bytes).await,
        vec!["ephemeral_sessions.device_fingerprint (text)".to_string()]
    );

    // Nothing printable leaks either.
    let dbg = format!("{:?} {:?}", h.app, final_ring);
    for b in [1u8, 2, 3] {
        assert!(!dbg.contains(&b64.encode(key(b))) && !dbg.contains(&format!("{:?}", key(b))));
    }
}
