//! The least-privilege roles: each may do its job and nothing else. Checked with SET ROLE inside
//! a transaction that is rolled back, so every check starts from the same rows.

use vault_devkit::test_db as common;

use common::*;
use sqlx::{Executor, PgPool};

/// Runs `sql` as `role`, binding `session_id` to $1 when the statement has a parameter.
async fn as_role(pool: &PgPool, role: &str, sql: &str, session_id: &str) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    tx.execute(format!("SET LOCAL ROLE {role}").as_str()).await?;
    let q = sqlx::query(sql);
    let q = if sql.contains("$1") { q.bind(session_id) } else { q };
    let result = q.execute(&mut *tx).await.map(|r| r.rows_affected());
    tx.rollback().await?;
    result
}

#[track_caller]
fn refused(result: Result<u64, sqlx::Error>) {
    assert_db_error(result, INSUFFICIENT_PRIVILEGE, None);
}

#[tokio::test]
async fn the_roles_exist_without_passwords() {
    let db = TestDb::new().await;
    let roles: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT rolname::text, rolpassword IS NULL, rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls
         FROM pg_authid WHERE rolname IN ('vault_indexer', 'vault_service', 'vault_readonly') ORDER BY rolname",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        roles,
        [
            ("vault_indexer".to_string(), true, false),
            ("vault_readonly".to_string(), true, false),
            ("vault_service".to_string(), true, false)
        ]
    );
}

#[tokio::test]
async fn vault_readonly_reads_but_writes_nothing_and_never_sees_keys() {
    let db = TestDb::new().await;
    let s = session(&db.pool).await;
    NewTx::default().insert(&db.pool, &s).await.unwrap();
    let r = "vault_readonly";
    for sql in [
        "SELECT * FROM active_sessions_view",
        "SELECT * FROM cleanup_candidates_view",
        "SELECT * FROM alerts_summary_view",
        "SELECT * FROM vault_transactions",
        "SELECT * FROM audit_log",
        "SELECT * FROM verify_audit_chain()",
        "SELECT session_id, parent_wallet, total_spent, user_ip FROM ephemeral_sessions",
    ] {
        as_role(&db.pool, r, sql, &s).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    refused(as_role(&db.pool, r, "SELECT encrypted_keypair FROM ephemeral_sessions", &s).await);
    refused(as_role(&db.pool, r, "SELECT * FROM ephemeral_sessions", &s).await);
    let sig = signature(5);
    refused(
        as_role(
            &db.pool,
            r,
            &format!(
                "INSERT INTO vault_transactions (session_id, transaction_signature, transaction_type, amount)
                 VALUES ($1, '{sig}', 'trade', 1)"
            ),
            &s,
        )
        .await,
    );
    refused(as_role(&db.pool, r, "UPDATE ephemeral_sessions SET user_agent = 'x' WHERE session_id = $1", &s).await);
    refused(as_role(&db.pool, r, "INSERT INTO audit_log (action, actor, success) VALUES ('a', 'b', true)", &s).await);
    refused(as_role(&db.pool, r, "DELETE FROM rate_limits", &s).await);
    refused(as_role(&db.pool, r, "CREATE TABLE sneaky (x int)", &s).await);
}

#[tokio::test]
async fn vault_indexer_writes_chain_data_only() {
    let db = TestDb::new().await;
    let r = "vault_indexer";
    let s = new_session_id();
    let w = wallet(3);
    let sig = signature(3);
    // A whole indexing step in one transaction: session, transaction (whose triggers maintain
    // analytics and activity), delegation, audit entry.
    let mut tx = db.pool.begin().await.unwrap();
    tx.execute("SET LOCAL ROLE vault_indexer").await.unwrap();
    for sql in [
        format!(
            "INSERT INTO ephemeral_sessions (session_id, parent_wallet, ephemeral_wallet, vault_pda, mint,
                 created_at, expires_at, approved_amount, total_deposited, last_event_slot, created_slot,
                 creation_signature, creation_instruction_index)
             VALUES ('{s}', '{w}', '{w}', '{w}', NULL, 1, 100000000000, 10, 10, 5, 5, '{sig}', 0)
             ON CONFLICT (creation_signature, creation_instruction_index) WHERE creation_signature IS NOT NULL
             DO UPDATE SET total_deposited = EXCLUDED.total_deposited"
        ),
        format!(
            "INSERT INTO vault_transactions (session_id, transaction_signature, transaction_type, amount, status, confirmed_at)
             VALUES ('{s}', '{sig}', 'trade', 4, 'finalized', 50)
             ON CONFLICT (transaction_signature, instruction_index) DO UPDATE SET status = EXCLUDED.status"
        ),
        format!("UPDATE vault_transactions SET status = 'failed' WHERE session_id = '{s}'"),
        format!(
            "INSERT INTO delegation_history (session_id, vault_pda, delegate_wallet, approved_at, approval_signature)
             VALUES ('{s}', '{w}', '{w}', 1, '{sig}') ON CONFLICT DO NOTHING"
        ),
        format!("UPDATE ephemeral_sessions SET status = 'revoked', revoked_at = 60 WHERE session_id = '{s}'"),
        format!(
            "INSERT INTO cleanup_events (session_id, vault_pda, returned_to_parent, cleanup_reward,
                 cleanup_caller, cleanup_signature, cleanup_timestamp, cleanup_reason)
             VALUES ('{s}', '{w}', 6, 1, '{w}', '{sig}', 70, 'manual_revoke')"
        ),
        format!("UPDATE session_analytics SET session_duration = 69 WHERE session_id = '{s}'"),
        format!(
            "INSERT INTO security_alerts (session_id, alert_type, severity, description)
             VALUES ('{s}', 'unusual_spending', 'high', 'big trade')"
        ),
        format!("INSERT INTO audit_log (session_id, action, actor, success) VALUES ('{s}', 'indexed', 'indexer', true)"),
    ] {
        tx.execute(sql.as_str()).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    tx.commit().await.unwrap();
    let a = analytics(&db.pool, &s).await.unwrap();
    assert_eq!((a.total_trades, a.failed_trades), (1, 1), "triggers ran for the indexer");

    // Not the service's columns, not the service's tables, no deletes, no audit edits.
    refused(
        as_role(&db.pool, r, "UPDATE ephemeral_sessions SET encrypted_keypair = '\\x00' WHERE session_id = $1", &s)
            .await,
    );
    refused(as_role(&db.pool, r, "UPDATE ephemeral_sessions SET user_ip = '1.2.3.4' WHERE session_id = $1", &s).await);
    refused(as_role(&db.pool, r, "SELECT encrypted_keypair FROM ephemeral_sessions WHERE session_id = $1", &s).await);
    refused(as_role(&db.pool, r, "UPDATE rate_limits SET request_count = 0", &s).await);
    refused(as_role(&db.pool, r, "DELETE FROM vault_transactions WHERE session_id = $1", &s).await);
    refused(as_role(&db.pool, r, "DELETE FROM ephemeral_sessions WHERE session_id = $1", &s).await);
    refused(as_role(&db.pool, r, "UPDATE audit_log SET action = 'x'", &s).await);
    refused(as_role(&db.pool, r, "SELECT * FROM audit_log", &s).await);
    // Only the column an idempotent insert's conflict check reads.
    as_role(&db.pool, r, "SELECT metadata FROM audit_log", &s).await.unwrap();
    refused(as_role(&db.pool, r, "UPDATE security_alerts SET severity = 'low'", &s).await);
}

#[tokio::test]
async fn vault_service_writes_metadata_rate_limits_alerts_and_audit() {
    let db = TestDb::new().await;
    let r = "vault_service";
    let s = new_session_id();
    let w = wallet(4);
    let mut tx = db.pool.begin().await.unwrap();
    tx.execute("SET LOCAL ROLE vault_service").await.unwrap();
    for sql in [
        // Registers the session before the chain has it.
        format!(
            "INSERT INTO ephemeral_sessions (session_id, parent_wallet, ephemeral_wallet, vault_pda,
                 created_at, expires_at, approved_amount, encrypted_keypair, user_ip, user_agent, device_fingerprint)
             VALUES ('{s}', '{w}', '{w}', '{w}', 1, 100000000000, 10, '\\x0102', '10.0.0.1', 'ua', 'fp')
             ON CONFLICT (vault_pda) WHERE creation_signature IS NULL AND cleaned_at IS NULL
             DO UPDATE SET encrypted_keypair = EXCLUDED.encrypted_keypair"
        ),
        format!("UPDATE ephemeral_sessions SET user_ip = '10.0.0.2' WHERE session_id = '{s}'"),
        format!("SELECT encrypted_keypair FROM ephemeral_sessions WHERE session_id = '{s}'"),
        format!(
            "INSERT INTO rate_limits (parent_wallet, action_type, request_count, window_start, window_end)
             VALUES ('{w}', 'session_create', 1, 0, 3600)
             ON CONFLICT (parent_wallet, action_type) DO UPDATE SET request_count = rate_limits.request_count + 1"
        ),
        format!(
            "INSERT INTO security_alerts (session_id, alert_type, severity, description)
             VALUES ('{s}', 'ip_change', 'medium', 'new ip')"
        ),
        format!("UPDATE security_alerts SET is_resolved = true, resolved_at = now(), resolved_by = 'ops' WHERE session_id = '{s}'"),
        format!("INSERT INTO audit_log (session_id, action, actor, success) VALUES ('{s}', 'session_create', '{w}', true)"),
        "SELECT * FROM verify_audit_chain()".to_string(),
        "DELETE FROM rate_limits WHERE window_end < 0".to_string(),
    ] {
        tx.execute(sql.as_str()).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    tx.commit().await.unwrap();

    // Chain data is the indexer's.
    refused(as_role(&db.pool, r, "UPDATE ephemeral_sessions SET total_spent = 0 WHERE session_id = $1", &s).await);
    refused(
        as_role(
            &db.pool,
            r,
            "UPDATE ephemeral_sessions SET status = 'revoked', revoked_at = 1 WHERE session_id = $1",
            &s,
        )
        .await,
    );
    let sig = signature(8);
    refused(
        as_role(
            &db.pool,
            r,
            &format!(
                "INSERT INTO vault_transactions (session_id, transaction_signature, transaction_type, amount)
                 VALUES ($1, '{sig}', 'trade', 1)"
            ),
            &s,
        )
        .await,
    );
    refused(as_role(&db.pool, r, "UPDATE session_analytics SET total_trades = 0", &s).await);
    refused(as_role(&db.pool, r, "INSERT INTO cleanup_events (session_id, vault_pda, returned_to_parent, cleanup_reward, cleanup_caller, cleanup_signature, cleanup_timestamp, cleanup_reason) SELECT $1, 'x', 0, 0, 'x', 'x', 0, 'expired'", &s).await);
    refused(as_role(&db.pool, r, "DELETE FROM audit_log", &s).await);
    refused(as_role(&db.pool, r, "DELETE FROM security_alerts", &s).await);
}
