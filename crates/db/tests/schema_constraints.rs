//! Every CHECK, key and foreign key refuses what it should and accepts the edges it should.

use vault_devkit::test_db as common;

use common::*;
use rust_decimal::Decimal;
use sqlx::PgPool;

/// Runs `sql` with `session_id` as $1 and `value` as $2.
async fn exec_with(pool: &PgPool, sql: &str, session_id: &str, value: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sql).bind(session_id).bind(value).execute(pool).await.map(|r| r.rows_affected())
}

#[tokio::test]
async fn enumerations_refuse_unknown_values() {
    let db = TestDb::new().await;
    let s = session(&db.pool).await;
    let sig = signature(77);
    let cases: [(&str, &[&str], &str, &str); 7] = [
        (
            "INSERT INTO vault_transactions (session_id, transaction_signature, transaction_type, amount)
             VALUES ($1, '{sig}', $2, 1)",
            &["create", "deposit", "trade", "withdraw", "top_up", "approve_delegate", "revoke", "cleanup"],
            "swap",
            "transactions_type_values",
        ),
        (
            "INSERT INTO vault_transactions (session_id, transaction_signature, transaction_type, amount, status)
             VALUES ($1, '{sig}', 'trade', 1, $2)",
            &["pending", "confirmed", "finalized", "failed"],
            "done",
            "transactions_status_values",
        ),
        (
            "INSERT INTO security_alerts (session_id, alert_type, severity, description)
             VALUES ($1, 'ip_change', $2, 'd')",
            &["low", "medium", "high", "critical"],
            "urgent",
            "alerts_severity_values",
        ),
        (
            "INSERT INTO security_alerts (session_id, alert_type, severity, description)
             VALUES ($1, $2, 'low', 'd')",
            &["unusual_spending", "high_frequency", "ip_change", "expired_session"],
            "phishing",
            "alerts_type_values",
        ),
        (
            "INSERT INTO cleanup_events (session_id, vault_pda, returned_to_parent, cleanup_reward,
                 cleanup_caller, cleanup_signature, cleanup_timestamp, cleanup_reason)
             VALUES ($1, '{w}', 0, 0, '{w}', '{sig}', 1, $2)",
            &["expired", "manual_revoke", "emergency"],
            "bored",
            "cleanup_reason_values",
        ),
        (
            "INSERT INTO rate_limits (parent_wallet, action_type, window_start, window_end)
             SELECT '{w}', $2, 0, 60 WHERE $1 IS NOT NULL",
            &["session_create", "deposit", "trade"],
            "withdraw",
            "rate_limits_action_type_values",
        ),
        (
            "UPDATE ephemeral_sessions SET status = $2,
                 revoked_at = CASE WHEN $2 = 'revoked' THEN 1 END,
                 cleaned_at = CASE WHEN $2 = 'cleaned' THEN 1 END
             WHERE session_id = $1",
            &["active", "revoked", "expired", "cleaned"],
            "paused",
            "sessions_status_values",
        ),
    ];
    for (template, good, bad, constraint) in cases {
        let sql = template.replace("{sig}", &sig).replace("{w}", &wallet(5));
        // Every allowed value goes in (inside a rolled-back transaction, so the unique keys of
        // one case do not collide with the next value).
        for value in good {
            let mut tx = db.pool.begin().await.unwrap();
            sqlx::query(&sql)
                .bind(&s)
                .bind(*value)
                .execute(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("{constraint}: {value} refused: {e}"));
            tx.rollback().await.unwrap();
        }
        assert_db_error(exec_with(&db.pool, &sql, &s, bad).await, CHECK_VIOLATION, Some(constraint));
    }
}

#[tokio::test]
async fn amounts_hold_exactly_the_u64_range() {
    let db = TestDb::new().await;
    let s = session(&db.pool).await;
    let amount_columns = [
        ("amount", "transactions_amount_u64"),
        ("fee_amount", "transactions_fee_amount_u64"),
        ("trade_id", "transactions_trade_id_u64"),
    ];
    for (i, (column, constraint)) in amount_columns.into_iter().enumerate() {
        // `amount` is required: the other columns are tried beside an amount of 0.
        let (columns, values) =
            if column == "amount" { ("amount".to_string(), "$4") } else { (format!("amount, {column}"), "0, $4") };
        let sql = format!(
            "INSERT INTO vault_transactions (session_id, transaction_signature, instruction_index,
                 transaction_type, {columns})
             VALUES ($1, $2, $3, 'trade', {values})"
        );
        let sig = signature(1000 + i as u64);
        let insert = |index: i32, value: Decimal| {
            let sql = sql.clone();
            let sig = sig.clone();
            let s = s.clone();
            let pool = db.pool.clone();
            async move { sqlx::query(&sql).bind(s).bind(sig).bind(index).bind(value).execute(&pool).await }
        };
        insert(0, dec(u64::MAX)).await.unwrap_or_else(|e| panic!("{column}: u64::MAX refused: {e}"));
        insert(1, dec(0)).await.unwrap_or_else(|e| panic!("{column}: 0 refused: {e}"));
        assert_db_error(insert(2, u64_max_plus_one()).await, CHECK_VIOLATION, Some(constraint));
        assert_db_error(insert(3, Decimal::from(-1)).await, CHECK_VIOLATION, Some(constraint));
    }
    let stored: Decimal =
        sqlx::query_scalar("SELECT max(amount) FROM vault_transactions").fetch_one(&db.pool).await.unwrap();
    assert_eq!(stored, dec(u64::MAX), "stored exactly");

    // The session's amounts, and the other tables' ones.
    for (column, constraint) in [
        ("approved_amount", "sessions_approved_amount_u64"),
        ("total_deposited", "sessions_total_deposited_u64"),
        ("total_spent", "sessions_total_spent_u64"),
        ("total_withdrawn", "sessions_total_withdrawn_u64"),
    ] {
        let sql = format!("UPDATE ephemeral_sessions SET {column} = $2 WHERE session_id = $1");
        let set = |v: Decimal| sqlx::query(&sql).bind(&s).bind(v).execute(&db.pool);
        set(dec(u64::MAX)).await.unwrap();
        assert_db_error(set(u64_max_plus_one()).await, CHECK_VIOLATION, Some(constraint));
        assert_db_error(set(Decimal::from(-1)).await, CHECK_VIOLATION, Some(constraint));
    }
    for (values, constraint) in [("$2, 0", "cleanup_returned_to_parent_u64"), ("0, $2", "cleanup_reward_u64")] {
        let sql = format!(
            "INSERT INTO cleanup_events (session_id, vault_pda, returned_to_parent, cleanup_reward,
                 cleanup_caller, cleanup_signature, cleanup_timestamp, cleanup_reason)
             VALUES ($1, $3, {values}, $3, $4, 1, 'expired')"
        );
        let r = sqlx::query(&sql)
            .bind(&s)
            .bind(Decimal::from(-1))
            .bind(wallet(4))
            .bind(signature(4))
            .execute(&db.pool)
            .await;
        assert_db_error(r, CHECK_VIOLATION, Some(constraint));
    }
}

#[tokio::test]
async fn a_transaction_needs_a_known_session() {
    let db = TestDb::new().await;
    let r = NewTx::default().insert(&db.pool, &new_session_id()).await;
    assert_db_error(r, FOREIGN_KEY_VIOLATION, Some("vault_transactions_session_ref_fkey"));
    for (table, sql) in [
        ("delegation_history", "INSERT INTO delegation_history (session_id, vault_pda, delegate_wallet, approved_at) VALUES ($1, $2, $2, 1)"),
        ("session_analytics", "INSERT INTO session_analytics (session_id) SELECT $1 WHERE $2 IS NOT NULL"),
        ("security_alerts", "INSERT INTO security_alerts (session_id, alert_type, severity, description) SELECT $1, 'ip_change', 'low', $2"),
    ] {
        let r = sqlx::query(sql).bind(new_session_id()).bind(wallet(1)).execute(&db.pool).await;
        assert_db_error(r, FOREIGN_KEY_VIOLATION, Some(&format!("{table}_session_ref_fkey")));
    }
}

#[tokio::test]
async fn identifiers_must_be_canonical() {
    let db = TestDb::new().await;
    let canonical = new_session_id();
    for bad in [
        canonical.to_uppercase(),
        canonical.replace('-', ""),
        format!("{{{}}}", &canonical[..34]),
        "abc".to_string(),
        canonical.replacen(|c: char| c.is_ascii_hexdigit(), "g", 1),
    ] {
        let r = NewSession { session_id: bad.clone(), ..NewSession::default() }.insert(&db.pool).await;
        assert_db_error(r, CHECK_VIOLATION, Some("sessions_session_id_format"));
    }
    // Wallets: base58 has no 0, O, I or l, and a 32-byte key is 32..44 characters.
    let good = wallet(8);
    for bad in [
        format!("0{}", &good[1..]),
        format!("O{}", &good[1..]),
        format!("I{}", &good[1..]),
        format!("l{}", &good[1..]),
        good[..31].to_string(),
        format!("{} ", &good[..40]),
    ] {
        let r = NewSession { parent_wallet: bad.clone(), ..NewSession::default() }.insert(&db.pool).await;
        assert_db_error(r, CHECK_VIOLATION, Some("sessions_parent_wallet_base58"));
    }
    NewSession { parent_wallet: good[..32].to_string(), ..NewSession::default() }
        .insert(&db.pool)
        .await
        .expect("32 characters is a valid key");
    // Signatures are 64..88 characters of base58.
    let s = session(&db.pool).await;
    let r = NewTx { signature: signature(3)[..63].to_string(), ..NewTx::default() }.insert(&db.pool, &s).await;
    assert_db_error(r, CHECK_VIOLATION, Some("transactions_signature_base58"));
}

#[tokio::test]
async fn one_signature_carries_several_instructions_once_each() {
    let db = TestDb::new().await;
    let s = session(&db.pool).await;
    let sig = signature(42);
    // create_session and deposit in one transaction.
    NewTx {
        signature: sig.clone(),
        instruction_index: 0,
        transaction_type: "create",
        amount: dec(0),
        ..NewTx::default()
    }
    .insert(&db.pool, &s)
    .await
    .unwrap();
    NewTx {
        signature: sig.clone(),
        instruction_index: 1,
        transaction_type: "deposit",
        amount: dec(500),
        ..NewTx::default()
    }
    .insert(&db.pool, &s)
    .await
    .unwrap();
    let r = NewTx { signature: sig.clone(), instruction_index: 1, transaction_type: "deposit", ..NewTx::default() }
        .insert(&db.pool, &s)
        .await;
    assert_db_error(r, UNIQUE_VIOLATION, Some("vault_transactions_signature_instruction_key"));

    // The indexer's upsert on that key: replaying the deposit as finalized updates the row.
    let upsert = "INSERT INTO vault_transactions (session_id, transaction_signature, instruction_index,
                      transaction_type, amount, status, confirmed_at)
                  VALUES ($1, $2, 1, 'deposit', 500, 'finalized', 10)
                  ON CONFLICT (transaction_signature, instruction_index)
                  DO UPDATE SET status = EXCLUDED.status, confirmed_at = EXCLUDED.confirmed_at";
    for _ in 0..2 {
        sqlx::query(upsert).bind(&s).bind(&sig).execute(&db.pool).await.unwrap();
    }
    let rows: Vec<(i32, String)> = sqlx::query_as(
        "SELECT instruction_index, status::text FROM vault_transactions WHERE transaction_signature = $1 ORDER BY 1",
    )
    .bind(&sig)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows, [(0, "pending".to_string()), (1, "finalized".to_string())]);

    // Trade ids only on trades.
    let r =
        NewTx { transaction_type: "deposit", trade_id: Some(dec(1)), ..NewTx::default() }.insert(&db.pool, &s).await;
    assert_db_error(r, CHECK_VIOLATION, Some("transactions_trade_id_only_on_trades"));
}

/// Records a cleanup; `replay_safe` adds the indexer's ON CONFLICT on the session.
async fn cleanup(pool: &PgPool, session_id: &str, sig: &str, replay_safe: bool) -> Result<u64, sqlx::Error> {
    let on_conflict = if replay_safe { "ON CONFLICT (session_ref) DO NOTHING" } else { "" };
    sqlx::query(&format!(
        "INSERT INTO cleanup_events (session_id, vault_pda, returned_to_parent, cleanup_reward,
             cleanup_caller, cleanup_signature, cleanup_timestamp, cleanup_reason)
         VALUES ($1, $3, 10, 1, $3, $2, 1, 'expired')
         {on_conflict}"
    ))
    .bind(session_id)
    .bind(sig)
    .bind(wallet(6))
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}

#[tokio::test]
async fn a_session_is_cleaned_up_once_and_replays_are_no_ops() {
    let db = TestDb::new().await;
    let s = session(&db.pool).await;
    assert_eq!(cleanup(&db.pool, &s, &signature(1), true).await.unwrap(), 1);
    assert_eq!(cleanup(&db.pool, &s, &signature(1), true).await.unwrap(), 0, "replayed event");
    assert_db_error(
        cleanup(&db.pool, &s, &signature(2), false).await,
        UNIQUE_VIOLATION,
        Some("cleanup_events_session_ref_key"),
    );
}

/// Approves delegate number `delegate` (10, 11, ...); the program counts rotations, and the
/// indexer's migration (0009) keys delegations by that count too, so delegate 10 is rotation 0.
async fn approve(
    pool: impl sqlx::PgExecutor<'_>,
    session_id: &str,
    delegate: u64,
    sig: &str,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO delegation_history (session_id, vault_pda, delegate_wallet, approved_at, approval_signature, rotation)
         VALUES ($1, $3, $4, 1, $2, $5)
         ON CONFLICT (session_ref, rotation) DO NOTHING",
    )
    .bind(session_id)
    .bind(sig)
    .bind(wallet(7))
    .bind(wallet(delegate))
    .bind(delegate as i32 - 10)
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}

#[tokio::test]
async fn one_active_delegate_per_session_and_idempotent_approvals() {
    let db = TestDb::new().await;
    let s = session(&db.pool).await;
    let other = session(&db.pool).await;
    assert_eq!(approve(&db.pool, &s, 10, &signature(10)).await.unwrap(), 1);
    assert_eq!(approve(&db.pool, &s, 10, &signature(10)).await.unwrap(), 0, "replayed approval");
    assert_eq!(approve(&db.pool, &other, 10, &signature(10)).await.unwrap(), 1, "another session");
    assert_db_error(
        approve(&db.pool, &s, 11, &signature(11)).await,
        UNIQUE_VIOLATION,
        Some("delegation_one_active_per_session"),
    );

    // A rotation closes the active row first, in one transaction.
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query(
        "UPDATE delegation_history SET is_active = false, revoked_at = 2, revocation_signature = $2
         WHERE session_id = $1 AND is_active",
    )
    .bind(&s)
    .bind(signature(11))
    .execute(&mut *tx)
    .await
    .unwrap();
    assert_eq!(approve(&mut *tx, &s, 11, &signature(11)).await.unwrap(), 1);
    tx.commit().await.unwrap();
    // Replaying the old approval after the rotation changes nothing either.
    assert_eq!(approve(&db.pool, &s, 10, &signature(10)).await.unwrap(), 0);

    let r = sqlx::query("UPDATE delegation_history SET revoked_at = 3 WHERE session_id = $1 AND is_active")
        .bind(&s)
        .execute(&db.pool)
        .await;
    assert_db_error(r, CHECK_VIOLATION, Some("delegation_active_not_revoked"));
}

#[tokio::test]
async fn session_status_and_timestamps_agree() {
    let db = TestDb::new().await;
    let r = NewSession { status: "cleaned", ..NewSession::default() }.insert(&db.pool).await;
    assert_db_error(r, CHECK_VIOLATION, Some("sessions_cleaned_iff_cleaned_at"));
    let r = NewSession { cleaned_at: Some(1), ..NewSession::default() }.insert(&db.pool).await;
    assert_db_error(r, CHECK_VIOLATION, Some("sessions_cleaned_iff_cleaned_at"));
    let r = NewSession { status: "revoked", ..NewSession::default() }.insert(&db.pool).await;
    assert_db_error(r, CHECK_VIOLATION, Some("sessions_revoked_has_revoked_at"));
    // Resolved alerts have a resolution time, unresolved ones none.
    let s = session(&db.pool).await;
    let r = sqlx::query(
        "INSERT INTO security_alerts (session_id, alert_type, severity, description, is_resolved)
         VALUES ($1, 'ip_change', 'low', 'd', true)",
    )
    .bind(&s)
    .execute(&db.pool)
    .await;
    assert_db_error(r, CHECK_VIOLATION, Some("alerts_resolved_iff_resolved_at"));
}

#[tokio::test]
async fn a_session_is_a_vault_incarnation_not_a_session_id() {
    let db = TestDb::new().await;
    // The indexer's row of a session (created on chain).
    let s = session(&db.pool).await;
    // The same id under another parent (another vault): legal on chain, a session of its own.
    let other = NewSession { session_id: s.clone(), parent_wallet: wallet(9), ..NewSession::default() };
    let (vault, sig): (String, String) =
        sqlx::query_as("SELECT vault_pda, creation_signature FROM ephemeral_sessions WHERE session_id = $1")
            .bind(&s)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    sqlx::query(
        "INSERT INTO ephemeral_sessions (session_id, parent_wallet, ephemeral_wallet, vault_pda, created_at,
             expires_at, last_activity, approved_amount, created_slot, creation_signature, creation_instruction_index)
         VALUES ($1, $2, $2, $3, 1, 10, 1, 1, 5, $4, 0)",
    )
    .bind(&other.session_id)
    .bind(&other.parent_wallet)
    .bind(wallet(10))
    .bind(signature(10))
    .execute(&db.pool)
    .await
    .expect("a second session with the same id");
    // A writer that names a session by id alone is refused once the id is ambiguous...
    let r = NewTx::default().insert(&db.pool, &s).await;
    assert_db_error(r, FOREIGN_KEY_VIOLATION, Some("vault_transactions_session_ref_fkey"));
    // ...and one incarnation per creation: the same create instruction cannot open two.
    let dup = sqlx::query(
        "INSERT INTO ephemeral_sessions (session_id, parent_wallet, ephemeral_wallet, vault_pda, created_at,
             expires_at, last_activity, approved_amount, created_slot, creation_signature, creation_instruction_index)
         VALUES ($1, $2, $2, $3, 1, 10, 1, 1, 1, $4, 0)",
    )
    .bind(&s)
    .bind(wallet(1))
    .bind(&vault)
    .bind(&sig)
    .execute(&db.pool)
    .await;
    assert_db_error(dup, UNIQUE_VIOLATION, Some("sessions_creation_key"));
    // At most one row per vault that the chain has not shown yet (the service's registration).
    let registered = |parent: String| {
        sqlx::query(
            "INSERT INTO ephemeral_sessions (session_id, parent_wallet, ephemeral_wallet, vault_pda, created_at,
                 expires_at, approved_amount, encrypted_keypair)
             VALUES ($1, $2, $2, $3, 0, 10, 1, '\\x0102')",
        )
        .bind(new_session_id())
        .bind(parent)
        .bind(wallet(11))
    };
    registered(wallet(1)).execute(&db.pool).await.expect("a registration ahead of the chain");
    assert_db_error(
        registered(wallet(1)).execute(&db.pool).await,
        UNIQUE_VIOLATION,
        Some("sessions_one_uncreated_per_vault"),
    );
}

#[tokio::test]
async fn rate_limit_counters_are_one_row_per_wallet_and_action() {
    let db = TestDb::new().await;
    let w = wallet(12);
    // The documented atomic upsert, from concurrent clients.
    let hit = "INSERT INTO rate_limits (parent_wallet, action_type, request_count, window_start, window_end)
               VALUES ($1, 'trade', 1, $2, $2 + 60)
               ON CONFLICT (parent_wallet, action_type) DO UPDATE SET
                 request_count = CASE WHEN rate_limits.window_end <= $2 THEN 1 ELSE rate_limits.request_count + 1 END,
                 window_start = CASE WHEN rate_limits.window_end <= $2 THEN $2 ELSE rate_limits.window_start END,
                 window_end = CASE WHEN rate_limits.window_end <= $2 THEN $2 + 60 ELSE rate_limits.window_end END
               RETURNING request_count";
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (pool, w) = (db.pool.clone(), w.clone());
        tasks.spawn(async move {
            for _ in 0..5 {
                sqlx::query_scalar::<_, i32>(hit).bind(&w).bind(1_000i64).fetch_one(&pool).await.unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let count: i32 = sqlx::query_scalar(hit).bind(&w).bind(1_000i64).fetch_one(&db.pool).await.unwrap();
    assert_eq!(count, 21);
    // A new window starts over.
    let count: i32 = sqlx::query_scalar(hit).bind(&w).bind(1_060i64).fetch_one(&db.pool).await.unwrap();
    assert_eq!(count, 1);

    let r = sqlx::query(
        "INSERT INTO rate_limits (parent_wallet, action_type, window_start, window_end) VALUES ($1, 'trade', 0, 1)",
    )
    .bind(&w)
    .execute(&db.pool)
    .await;
    assert_db_error(r, UNIQUE_VIOLATION, Some("rate_limits_wallet_action_key"));
    let r = sqlx::query("UPDATE rate_limits SET max_requests = NULL WHERE parent_wallet = 'system_default'")
        .execute(&db.pool)
        .await;
    assert_db_error(r, CHECK_VIOLATION, Some("rate_limits_default_has_limit"));
    let r = sqlx::query("INSERT INTO rate_limits (parent_wallet, action_type, window_start, window_end) VALUES ('someone', 'deposit', 0, 1)")
        .execute(&db.pool)
        .await;
    assert_db_error(r, CHECK_VIOLATION, Some("rate_limits_parent_wallet_format"));
}
