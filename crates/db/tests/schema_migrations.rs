//! The migrations apply to an empty database, create what the reference schema names, and a
//! second run changes nothing; several databases of one cluster can migrate at once.

use vault_devkit::test_db as common;

use common::TestDb;
use sqlx::PgPool;

/// Everything the schema defines, as sorted text lines: a change anywhere shows as a diff.
async fn catalog_snapshot(pool: &PgPool) -> Vec<String> {
    let queries = [
        "SELECT format('column %s.%s %s(%s,%s,%s) null=%s default=%s generated=%s %s',
                table_name, column_name, data_type, character_maximum_length, numeric_precision,
                numeric_scale, is_nullable, column_default, is_generated, generation_expression)
         FROM information_schema.columns WHERE table_schema = 'public'",
        "SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = 'public'",
        "SELECT format('view %s %s', viewname, definition) FROM pg_views WHERE schemaname = 'public'",
        "SELECT format('trigger %s %s', t.tgenabled, pg_get_triggerdef(t.oid))
         FROM pg_trigger t WHERE NOT t.tgisinternal",
        "SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
        "SELECT format('function %s', pg_get_functiondef(p.oid))
         FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace",
        "SELECT format('grant %s %s %s', grantee, table_name, privilege_type)
         FROM information_schema.role_table_grants WHERE table_schema = 'public'",
        "SELECT format('column grant %s %s.%s %s', grantee, table_name, column_name, privilege_type)
         FROM information_schema.column_privileges WHERE table_schema = 'public'",
        "SELECT format('rate limit %s', r) FROM (
             SELECT parent_wallet, action_type, request_count, window_start, window_end,
                    max_requests, window_seconds FROM rate_limits) r",
        "SELECT format('migration %s %s %s', version, success, encode(checksum, 'hex'))
         FROM _sqlx_migrations",
    ];
    let mut lines = Vec::new();
    for q in queries {
        let rows: Vec<String> = sqlx::query_scalar(q).fetch_all(pool).await.expect(q);
        lines.extend(rows);
    }
    lines.sort();
    lines
}

async fn names(pool: &PgPool, query: &str) -> Vec<String> {
    let mut v: Vec<String> = sqlx::query_scalar(query).fetch_all(pool).await.expect(query);
    v.sort();
    v
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_a_rerun_changes_nothing() {
    let db = TestDb::empty().await;
    vault_db::migrate(&db.pool).await.expect("first run");
    let first = catalog_snapshot(&db.pool).await;

    // Every migration recorded, and the reference's objects all present.
    let applied: i64 =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success").fetch_one(&db.pool).await.unwrap();
    assert_eq!(applied as usize, vault_db::MIGRATOR.iter().count());

    let tables = names(
        &db.pool,
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations'",
    )
    .await;
    // Later migrations add tables and views of their own; the reference's must all be there.
    for reference_table in [
        "audit_log",
        "cleanup_events",
        "delegation_history",
        "ephemeral_sessions",
        "rate_limits",
        "security_alerts",
        "session_analytics",
        "vault_transactions",
    ] {
        assert!(tables.iter().any(|t| t == reference_table), "table {reference_table} missing");
    }
    let views = names(&db.pool, "SELECT viewname::text FROM pg_views WHERE schemaname = 'public'").await;
    for reference_view in ["active_sessions_view", "alerts_summary_view", "cleanup_candidates_view"] {
        assert!(views.iter().any(|v| v == reference_view), "view {reference_view} missing");
    }

    let indexes = names(&db.pool, "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'").await;
    for reference_index in [
        "idx_sessions_parent_wallet",
        "idx_sessions_session_id",
        "idx_sessions_active",
        "idx_sessions_expires_at",
        "idx_sessions_vault_pda",
        "idx_transactions_session_id",
        // idx_transactions_signature: dropped by 0013 (the unique (signature, instruction_index)
        // index serves the same lookups).
        "idx_transactions_type",
        "idx_transactions_status",
        "idx_transactions_created_at",
        "idx_delegation_session_id",
        "idx_delegation_vault_pda",
        "idx_delegation_active",
        "idx_cleanup_session_id",
        "idx_cleanup_vault_pda",
        "idx_cleanup_timestamp",
        "idx_analytics_session_id",
        "idx_alerts_session_id",
        "idx_alerts_type",
        "idx_alerts_severity",
        "idx_alerts_unresolved",
        "idx_rate_limits_wallet",
        "idx_rate_limits_action",
        "idx_rate_limits_window",
        "idx_audit_session_id",
        "idx_audit_parent_wallet",
        "idx_audit_action",
        "idx_audit_created_at",
    ] {
        assert!(indexes.iter().any(|i| i == reference_index), "index {reference_index} missing");
    }

    let triggers = names(
        &db.pool,
        "SELECT tgname::text FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = 'vault_transactions'::regclass",
    )
    .await;
    for t in ["update_activity_on_transaction", "update_analytics_on_transaction"] {
        assert!(triggers.iter().any(|x| x == t), "trigger {t} missing");
    }
    let functions =
        names(&db.pool, "SELECT proname::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace").await;
    for f in ["update_session_activity", "update_session_analytics", "verify_audit_chain"] {
        assert!(functions.iter().any(|x| x == f), "function {f} missing");
    }

    // The three default limits, with the documented values.
    let defaults: Vec<(String, i32, i32)> = sqlx::query_as(
        "SELECT action_type::text, max_requests, window_seconds FROM rate_limits
         WHERE parent_wallet = 'system_default' ORDER BY action_type",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        defaults,
        [("deposit".to_string(), 30, 3600), ("session_create".to_string(), 10, 3600), ("trade".to_string(), 60, 60)]
    );

    // Again, from a fresh pool as a restarted service would: nothing changes.
    let again = db.another_pool().await;
    vault_db::migrate(&again).await.expect("second run");
    again.close().await;
    let second = catalog_snapshot(&db.pool).await;
    assert_eq!(first, second);
}

#[tokio::test]
async fn several_databases_of_one_cluster_migrate_at_the_same_time() {
    // Roles are cluster-wide: each database's role migration must cope with the others'.
    let dbs = [TestDb::empty().await, TestDb::empty().await, TestDb::empty().await, TestDb::empty().await];
    let mut tasks = tokio::task::JoinSet::new();
    for db in &dbs {
        let pool = db.pool.clone();
        tasks.spawn(async move { vault_db::migrate(&pool).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task panicked").expect("concurrent migration failed");
    }
    // And two pools racing on one database apply each migration once (sqlx's advisory lock).
    let db = TestDb::empty().await;
    let other = db.another_pool().await;
    let (a, b) = tokio::join!(vault_db::migrate(&db.pool), vault_db::migrate(&other));
    a.expect("first racer");
    b.expect("second racer");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&db.pool).await.unwrap();
    assert_eq!(applied as usize, vault_db::MIGRATOR.iter().count());
    other.close().await;
}

/// Rows written by a version before migration 0012 (sessions keyed on session_id alone) keep
/// every row and value, and each gains its session's key: session_ref of every child row names
/// the one session that had its id, and the session's creation is taken from its landed 'create'.
#[tokio::test]
async fn rows_of_the_session_id_schema_migrate_to_incarnations_without_loss() {
    let db = TestDb::empty().await;
    let before_0012 = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            vault_db::MIGRATOR.migrations.iter().filter(|m| m.version < 12).cloned().collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before_0012.run(&db.pool).await.expect("migrations 1..=11");
    let (a, b) = (common::new_session_id(), common::new_session_id());
    let (wa, wb, create_sig) = (common::wallet(1), common::wallet(2), common::signature(1));
    for (id, wallet) in [(&a, &wa), (&b, &wb)] {
        sqlx::query(
            "INSERT INTO ephemeral_sessions (session_id, parent_wallet, ephemeral_wallet, vault_pda, created_at,
                 expires_at, last_activity, approved_amount)
             VALUES ($1, $2, $2, $2, 1, 100, 1, 50)",
        )
        .bind(id)
        .bind(wallet)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    for (sig, index, kind, status, slot) in
        [(&create_sig, 0, "create", "finalized", 7), (&common::signature(2), 0, "trade", "confirmed", 8)]
    {
        sqlx::query(
            "INSERT INTO vault_transactions (session_id, transaction_signature, instruction_index, transaction_type,
                 amount, status, block_slot) VALUES ($1, $2, $3, $4, 5, $5, $6)",
        )
        .bind(&a)
        .bind(sig)
        .bind(index)
        .bind(kind)
        .bind(status)
        .bind(slot)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    for sql in [
        "INSERT INTO delegation_history (session_id, vault_pda, delegate_wallet, approved_at) VALUES ($1, $2, $2, 1)",
        "INSERT INTO cleanup_events (session_id, vault_pda, returned_to_parent, cleanup_reward, cleanup_caller,
             cleanup_signature, cleanup_timestamp, cleanup_reason) VALUES ($1, $2, 1, 1, $2, $3, 2, 'expired')",
        "INSERT INTO security_alerts (session_id, alert_type, severity, description) SELECT $1, 'ip_change', 'low', $2",
    ] {
        sqlx::query(sql).bind(&b).bind(&wb).bind(common::signature(3)).execute(&db.pool).await.expect(sql);
    }
    let tables = ["vault_transactions", "delegation_history", "cleanup_events", "session_analytics", "security_alerts"];
    let rows_before = row_texts(&db.pool, &tables).await;

    vault_db::migrate(&db.pool).await.expect("migration 0012");

    // Every row of every table, every column the old schema had, unchanged.
    assert_eq!(row_texts(&db.pool, &tables).await, rows_before);
    for table in tables {
        let unmatched: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} t LEFT JOIN ephemeral_sessions s ON s.id = t.session_ref
             WHERE t.session_id IS NOT NULL AND (s.session_id IS DISTINCT FROM t.session_id)"
        ))
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(unmatched, 0, "{table}: a row's session_ref names another session");
    }
    let creation: Vec<(String, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT session_id, created_slot, creation_signature FROM ephemeral_sessions ORDER BY parent_wallet",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(creation, [(a.clone(), Some(7), Some(create_sig)), (b.clone(), None, None)]);
}

/// Each table's rows as text, in the columns the schema had before 0012.
async fn row_texts(pool: &PgPool, tables: &[&str]) -> Vec<String> {
    let mut out = vec![];
    for table in tables {
        let rows: Vec<String> =
            // Without the columns later migrations add (0012 session_ref; 0013 the analytics inputs).
            sqlx::query_scalar(&format!(
                "SELECT (to_jsonb(t) - 'session_ref' - 'relayed_confirmations' - 'relayed_confirmation_ms')::text
                 FROM {table} t ORDER BY id"
            ))
                .fetch_all(pool)
                .await
                .unwrap();
        out.extend(rows.into_iter().map(|r| format!("{table}: {r}")));
    }
    out
}
