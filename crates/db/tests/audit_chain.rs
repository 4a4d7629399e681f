//! The audit log: one gap-free chain from concurrent writers, no edits through SQL, and edits
//! made behind the guard's back found at the edited row.

use vault_devkit::test_db as common;

use common::*;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgPool};
use vault_db::audit::{verify_chain, BrokenLink};

async fn append(db: impl sqlx::PgExecutor<'_>, action: &str, actor: &str) {
    sqlx::query("INSERT INTO audit_log (action, actor, success, metadata) VALUES ($1, $2, true, $3)")
        .bind(action)
        .bind(actor)
        .bind(serde_json::json!({"actor": actor, "n": action}))
        .execute(db)
        .await
        .expect("audit insert");
}

#[tokio::test]
async fn concurrent_writers_build_one_gap_free_chain() {
    let db = TestDb::new().await;
    const WRITERS: usize = 8;
    const ROUNDS: usize = 12;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let mut conn = db.connect().await;
        tasks.spawn(async move {
            let actor = format!("writer-{w}");
            for round in 0..ROUNDS {
                match round % 3 {
                    // One row per transaction.
                    0 => append(&mut conn, &format!("single-{round}"), &actor).await,
                    // Two rows in one transaction, with work between them.
                    1 => {
                        let mut tx = conn.begin().await.unwrap();
                        append(&mut *tx, &format!("tx-a-{round}"), &actor).await;
                        tx.execute("SELECT pg_sleep(0.001)").await.unwrap();
                        append(&mut *tx, &format!("tx-b-{round}"), &actor).await;
                        tx.commit().await.unwrap();
                    }
                    // Three rows in one statement.
                    _ => {
                        sqlx::query(
                            "INSERT INTO audit_log (action, actor, success)
                             SELECT 'multi-' || g, $1, g % 2 = 0 FROM generate_series(1, 3) g",
                        )
                        .bind(&actor)
                        .execute(&mut conn)
                        .await
                        .unwrap();
                    }
                }
            }
            conn.close().await.ok();
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("writer panicked");
    }

    let expected = (WRITERS * ROUNDS / 3 * (1 + 2 + 3)) as i64;
    let (count, distinct, min, max): (i64, i64, i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT chain_seq), min(chain_seq), max(chain_seq) FROM audit_log")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((count, distinct, min, max), (expected, expected, 1, expected), "positions 1..=n, no gaps");
    assert_eq!(verify_chain(&db.pool).await.unwrap(), None);

    // Times follow chain order (they are taken under the chain lock).
    let out_of_order: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT created_at < lag(created_at) OVER (ORDER BY chain_seq) AS back
                               FROM audit_log) t WHERE back",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(out_of_order, 0);
}

#[tokio::test]
async fn writers_cannot_choose_chain_fields_or_time() {
    let db = TestDb::new().await;
    append(&db.pool, "first", "a").await;
    // Chain fields without a row_hash: the trigger chains the row and replaces them.
    sqlx::query(
        "INSERT INTO audit_log (action, actor, success, chain_seq, prev_hash, created_at)
         VALUES ('forged', 'b', true, 99, sha256('x'), '2000-01-01T00:00:00Z')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let (seq, year, linked): (i64, f64, bool) = sqlx::query_as(
        "SELECT a.chain_seq, extract(year FROM a.created_at)::float8, a.prev_hash = p.row_hash
         FROM audit_log a JOIN audit_log p ON p.chain_seq = a.chain_seq - 1
         WHERE a.action = 'forged'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(seq, 2);
    assert!(year > 2020.0);
    assert!(linked);
    assert_eq!(verify_chain(&db.pool).await.unwrap(), None);
}

/// Inserts one row chained by its writer, as the indexer does (migration 0013): reserved with
/// audit_log_reserve() and hashed with the database's own audit_log_row_hash(). Each `Some`
/// replaces one part of it with a forgery.
async fn insert_prechained(
    pool: &sqlx::PgPool,
    seq: Option<&str>,
    prev: Option<&str>,
    at: Option<&str>,
    hash: Option<&str>,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "WITH r AS (SELECT * FROM audit_log_reserve(1, '{{}}')),
              c AS (SELECT ROW(r.ids[1], NULL, NULL, 'prechained', 'b', NULL, NULL, NULL, true, NULL, '{{}}'::jsonb,
                               {at}, {seq}, {prev}, NULL)::audit_log AS a FROM r)
         INSERT INTO audit_log (id, action, actor, success, metadata, created_at, chain_seq, prev_hash, row_hash)
         SELECT (a).id, (a).action, (a).actor, (a).success, (a).metadata, (a).created_at, (a).chain_seq, (a).prev_hash,
                {hash} FROM c",
        at = at.unwrap_or("r.stamp::timestamptz"),
        seq = seq.unwrap_or("COALESCE(r.head_seq, 0) + 1"),
        prev = prev.unwrap_or("r.head_hash"),
        hash = hash.unwrap_or("audit_log_row_hash(a)"),
    );
    sqlx::query(&sql).execute(pool).await.map(|_| ())
}

#[tokio::test]
async fn rows_chained_by_their_writer_are_checked_and_forgeries_refused() {
    let db = TestDb::new().await;
    append(&db.pool, "first", "a").await;
    insert_prechained(&db.pool, None, None, None, None).await.expect("a correctly chained row is accepted");
    let forgeries = [
        ("a gap in the positions", Some("COALESCE(r.head_seq, 0) + 5"), None, None, None),
        ("a position already taken", Some("COALESCE(r.head_seq, 0)"), None, None, None),
        ("a prev_hash that is not the head's", None, Some("sha256('x')"), None, None),
        ("a row_hash that is not the row's", None, None, None, Some("sha256('y')")),
        ("a back-dated time", None, None, Some("'2000-01-01T00:00:00Z'::timestamptz"), None),
        ("a time in the future", None, None, Some("now() + interval '1 hour'"), None),
    ];
    for (what, seq, prev, at, hash) in forgeries {
        let err = insert_prechained(&db.pool, seq, prev, at, hash).await.expect_err(what);
        let code = err.as_database_error().and_then(|e| e.code().map(|c| c.to_string()));
        assert!(matches!(code.as_deref(), Some("23514") | Some("23505")), "{what}: {err}");
    }
    append(&db.pool, "after", "c").await;
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_log").fetch_one(&db.pool).await.unwrap();
    assert_eq!(count, 3);
    assert_eq!(verify_chain(&db.pool).await.unwrap(), None);
}

#[tokio::test]
async fn update_delete_and_truncate_are_refused_even_for_a_superuser() {
    let db = TestDb::new().await;
    append(&db.pool, "a", "x").await;
    for sql in ["UPDATE audit_log SET action = 'b'", "DELETE FROM audit_log", "TRUNCATE audit_log"] {
        let r = db.pool.execute(sql).await;
        let err = r.expect_err(sql);
        let db_err = err.as_database_error().unwrap();
        assert_eq!(db_err.code().as_deref(), Some(INSUFFICIENT_PRIVILEGE), "{sql}");
        assert!(db_err.message().contains("append-only"), "{sql}: {}", db_err.message());
    }
    // session_replication_role = replica skips ordinary triggers; the guard fires ALWAYS.
    let mut conn = db.connect().await;
    conn.execute("SET session_replication_role = replica").await.unwrap();
    assert!(conn.execute("UPDATE audit_log SET action = 'b'").await.is_err());
    assert!(conn.execute("DELETE FROM audit_log").await.is_err());
    conn.close().await.ok();
    let action: String = sqlx::query_scalar("SELECT action FROM audit_log").fetch_one(&db.pool).await.unwrap();
    assert_eq!(action, "a");
}

/// Runs `sql` as a superuser who has switched the guard off, and switches it back on.
async fn behind_the_guard(pool: &PgPool, sql: &str) {
    let mut tx = pool.begin().await.unwrap();
    tx.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only").await.unwrap();
    tx.execute(sql).await.unwrap();
    tx.execute("ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only").await.unwrap();
    tx.commit().await.unwrap();
}

async fn id_at(pool: &PgPool, seq: i64) -> i32 {
    sqlx::query_scalar("SELECT id FROM audit_log WHERE chain_seq = $1").bind(seq).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn edits_behind_the_guards_back_are_found_at_the_edited_row() {
    let db = TestDb::new().await;
    for i in 1..=6 {
        append(&db.pool, &format!("action-{i}"), "actor").await;
    }
    assert_eq!(verify_chain(&db.pool).await.unwrap(), None);

    let broken = |seq: i64| {
        let pool = db.pool.clone();
        async move {
            let found = verify_chain(&pool).await.unwrap().expect("the edit went unnoticed");
            assert_eq!((found.chain_seq, found.id), (seq, id_at(&pool, seq).await), "{found:?}");
            found
        }
    };

    // A column's content.
    behind_the_guard(&db.pool, "UPDATE audit_log SET success = false WHERE chain_seq = 3").await;
    let found: BrokenLink = broken(3).await;
    assert!(found.problem.contains("content"), "{found:?}");
    behind_the_guard(&db.pool, "UPDATE audit_log SET success = true WHERE chain_seq = 3").await;
    assert_eq!(verify_chain(&db.pool).await.unwrap(), None, "the original content verifies again");

    // Inside the JSON.
    behind_the_guard(&db.pool, "UPDATE audit_log SET metadata = metadata || '{\"n\": 0}' WHERE chain_seq = 2").await;
    broken(2).await;
    behind_the_guard(
        &db.pool,
        "UPDATE audit_log SET metadata = metadata || '{\"n\": \"action-2\"}' WHERE chain_seq = 2",
    )
    .await;
    assert_eq!(verify_chain(&db.pool).await.unwrap(), None);

    // The stored hash itself.
    behind_the_guard(&db.pool, "UPDATE audit_log SET row_hash = sha256('forged') WHERE chain_seq = 4").await;
    broken(4).await;
    // Re-hashing the edited row to hide it only moves the break to the next row's back link.
    behind_the_guard(&db.pool, "UPDATE audit_log SET row_hash = audit_log_row_hash(audit_log) WHERE chain_seq = 4")
        .await;
    assert_eq!(verify_chain(&db.pool).await.unwrap(), None, "row 4 unchanged, so its hash is the original");
    behind_the_guard(
        &db.pool,
        "UPDATE audit_log SET actor = 'someone else' WHERE chain_seq = 4;
         UPDATE audit_log SET row_hash = audit_log_row_hash(audit_log) WHERE chain_seq = 4",
    )
    .await;
    let found = broken(5).await;
    assert!(found.problem.contains("prev_hash"), "{found:?}");
}

#[tokio::test]
async fn a_deleted_row_breaks_the_chain_at_its_successor() {
    let db = TestDb::new().await;
    for i in 1..=4 {
        append(&db.pool, &format!("action-{i}"), "actor").await;
    }
    behind_the_guard(&db.pool, "DELETE FROM audit_log WHERE chain_seq = 2").await;
    let found = verify_chain(&db.pool).await.unwrap().expect("the deletion went unnoticed");
    assert_eq!(found.chain_seq, 3);
    assert!(found.problem.contains("expected"), "{found:?}");
}

/// The documented encoding, computed outside the database: an auditor can check the chain
/// without trusting the server's functions.
fn field(value: Option<&str>) -> Vec<u8> {
    match value {
        None => vec![0],
        Some(v) => {
            let mut out = vec![1];
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(v.as_bytes());
            out
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i32,
    chain_seq: i64,
    prev_hash: Option<Vec<u8>>,
    row_hash: Vec<u8>,
    session_id: Option<String>,
    parent_wallet: Option<String>,
    action: String,
    actor: String,
    target: Option<String>,
    ip_address: Option<String>,
    user_agent: Option<String>,
    success: bool,
    error_message: Option<String>,
    metadata_text: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn row_hashes_can_be_recomputed_outside_the_database() {
    let db = TestDb::new().await;
    append(&db.pool, "plain", "actor").await;
    sqlx::query(
        "INSERT INTO audit_log (session_id, parent_wallet, action, actor, target, ip_address,
             user_agent, success, error_message, metadata)
         VALUES ($1, $2, 'session_create', $2, $3, '::1', 'agent/1.0 ünïcødé', false, 'denied',
                 '{\"b\": [1, 2.50], \"a\": {\"z\": null}}')",
    )
    .bind(new_session_id())
    .bind(wallet(1))
    .bind(wallet(2))
    .execute(&db.pool)
    .await
    .unwrap();

    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, chain_seq, prev_hash, row_hash, session_id, parent_wallet, action, actor, target,
                ip_address, user_agent, success, error_message, metadata::text AS metadata_text, created_at
         FROM audit_log ORDER BY chain_seq",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut prev: Option<Vec<u8>> = None;
    for r in rows {
        assert_eq!(r.prev_hash, prev);
        let mut h = Sha256::new();
        h.update(b"ephemeral-vault/audit_log/v1");
        for f in [
            Some(r.chain_seq.to_string()),
            r.prev_hash.as_deref().map(hex),
            Some(r.id.to_string()),
            r.session_id,
            r.parent_wallet,
            Some(r.action),
            Some(r.actor),
            r.target,
            r.ip_address,
            r.user_agent,
            Some(if r.success { "true" } else { "false" }.to_string()),
            r.error_message,
            r.metadata_text,
            Some(r.created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
        ] {
            h.update(field(f.as_deref()));
        }
        assert_eq!(h.finalize().as_slice(), r.row_hash.as_slice(), "row {}", r.chain_seq);
        prev = Some(r.row_hash);
    }
}

#[tokio::test]
async fn an_insert_that_conflicts_takes_no_chain_position() {
    // Idempotent writers insert with ON CONFLICT DO NOTHING on a unique key. The trigger has
    // already run when the conflict is found; since positions come from the head of the chain,
    // not from a sequence, the skipped row leaves no gap.
    let db = TestDb::new().await;
    db.pool
        .execute(
            "CREATE UNIQUE INDEX test_audit_key ON audit_log ((metadata ->> 'test_key')) WHERE metadata ? 'test_key'",
        )
        .await
        .unwrap();
    let insert = |key: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO audit_log (action, actor, success, metadata)
                 VALUES ('replayable', 'indexer', true, jsonb_build_object('test_key', $1::text))
                 ON CONFLICT ((metadata ->> 'test_key')) WHERE metadata ? 'test_key' DO NOTHING",
            )
            .bind(key)
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected()
        }
    };
    assert_eq!(insert("a").await, 1);
    assert_eq!(insert("a").await, 0);
    assert_eq!(insert("b").await, 1);
    let max: i64 = sqlx::query_scalar("SELECT max(chain_seq) FROM audit_log").fetch_one(&db.pool).await.unwrap();
    assert_eq!(max, 2);
    assert_eq!(verify_chain(&db.pool).await.unwrap(), None);
}
