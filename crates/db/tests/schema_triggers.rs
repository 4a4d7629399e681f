//! The triggers with real rows: analytics by deltas (no double counting through status
//! transitions), last_activity from chain time, updated_at, the derived is_active.

use vault_devkit::test_db as common;

use common::*;
use sqlx::PgPool;

async fn set_status(pool: &PgPool, id: i32, status: &str, confirmed_at: Option<i64>) {
    sqlx::query("UPDATE vault_transactions SET status = $2, confirmed_at = COALESCE($3, confirmed_at) WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(confirmed_at)
        .execute(pool)
        .await
        .expect("status update");
}

fn trade(amount: u64, fee: Option<u64>, status: &'static str) -> NewTx {
    NewTx { amount: dec(amount), fee_amount: fee.map(dec), status, ..NewTx::default() }
}

#[tokio::test]
async fn status_transitions_count_like_a_single_insert_of_the_final_state() {
    let db = TestDb::new().await;
    let walked = session(&db.pool).await;
    let direct = session(&db.pool).await;

    // Each row: its path of statuses; the direct session gets only the last one.
    let paths: [(u64, Option<u64>, &[&'static str]); 7] = [
        (100, Some(2), &["pending", "confirmed", "finalized"]),
        (50, Some(1), &["pending", "failed"]),
        (30, None, &["pending", "confirmed"]),
        (7, Some(5), &["pending"]),
        // A fork drops it, a later slot lands it again.
        (20, Some(1), &["confirmed", "failed", "pending", "finalized"]),
        (40, Some(3), &["finalized"]),
        (9, Some(9), &["pending", "confirmed", "failed"]),
    ];
    for (amount, fee, path) in paths {
        let id = trade(amount, fee, path[0]).insert(&db.pool, &walked).await.unwrap();
        for status in &path[1..] {
            set_status(&db.pool, id, status, Some(1_000)).await;
            // An unrelated edit between transitions must not count the row again.
            sqlx::query("UPDATE vault_transactions SET metadata = '{\"note\": 1}', error_message = 'x' WHERE id = $1")
                .bind(id)
                .execute(&db.pool)
                .await
                .unwrap();
        }
        trade(amount, fee, path[path.len() - 1]).insert(&db.pool, &direct).await.unwrap();
    }
    // Transactions that are not trades create the analytics row but count nothing.
    for s in [&walked, &direct] {
        NewTx { transaction_type: "deposit", status: "finalized", amount: dec(5_000), ..NewTx::default() }
            .insert(&db.pool, s)
            .await
            .unwrap();
    }

    let a = analytics(&db.pool, &walked).await.expect("analytics row");
    let b = analytics(&db.pool, &direct).await.expect("analytics row");
    assert_eq!(a, b, "walking the statuses must end where a direct insert starts");
    // Successful: 100, 30, 20, 40. Failed: 50, 9. Pending: 7.
    assert_eq!(
        a,
        Analytics {
            total_trades: 7,
            successful_trades: 4,
            failed_trades: 2,
            total_volume: dec(190),
            total_fees_paid: dec(2 + 1 + 3),
            avg_trade_size: Some(dec(190 / 4)),
        }
    );
}

#[tokio::test]
async fn a_session_without_trades_has_zero_counters_and_no_average() {
    let db = TestDb::new().await;
    let s = session(&db.pool).await;
    assert_eq!(analytics(&db.pool, &s).await, None, "no transaction, no analytics row yet");
    NewTx { transaction_type: "create", status: "finalized", amount: dec(0), ..NewTx::default() }
        .insert(&db.pool, &s)
        .await
        .unwrap();
    let failed = trade(10, Some(1), "failed").insert(&db.pool, &s).await.unwrap();
    assert_eq!(
        analytics(&db.pool, &s).await.unwrap(),
        Analytics {
            total_trades: 1,
            successful_trades: 0,
            failed_trades: 1,
            total_volume: dec(0),
            total_fees_paid: dec(0),
            avg_trade_size: None,
        },
        "a failed trade counts as failed, moves no volume and pays no fee"
    );
    // Deleting it takes its contribution away again.
    sqlx::query("DELETE FROM vault_transactions WHERE id = $1").bind(failed).execute(&db.pool).await.unwrap();
    let a = analytics(&db.pool, &s).await.unwrap();
    assert_eq!((a.total_trades, a.failed_trades), (0, 0));
}

#[tokio::test]
async fn average_and_sums_are_exact_up_to_u64_max() {
    let db = TestDb::new().await;
    let s = session(&db.pool).await;
    let half = u64::MAX / 2; // 9223372036854775807
    trade(half, Some(0), "confirmed").insert(&db.pool, &s).await.unwrap();
    trade(half + 1, None, "finalized").insert(&db.pool, &s).await.unwrap();
    let a = analytics(&db.pool, &s).await.unwrap();
    assert_eq!(a.total_volume, dec(u64::MAX));
    // floor(u64::MAX / 2): NUMERIC `/` would have rounded this up by one.
    assert_eq!(a.avg_trade_size, Some(dec(half)));
    assert_eq!(vault_db::amount::from_db(a.total_volume), Ok(u64::MAX));
}

#[tokio::test]
async fn moving_a_row_to_another_session_moves_its_contribution() {
    let db = TestDb::new().await;
    let from = session(&db.pool).await;
    let to = session(&db.pool).await;
    let id = trade(70, Some(7), "confirmed").insert(&db.pool, &from).await.unwrap();
    sqlx::query("UPDATE vault_transactions SET session_id = $2, amount = 80 WHERE id = $1")
        .bind(id)
        .bind(&to)
        .execute(&db.pool)
        .await
        .unwrap();
    let a = analytics(&db.pool, &from).await.unwrap();
    let b = analytics(&db.pool, &to).await.unwrap();
    assert_eq!((a.total_trades, a.total_volume, a.total_fees_paid), (0, dec(0), dec(0)));
    assert_eq!((b.total_trades, b.total_volume, b.total_fees_paid), (1, dec(80), dec(7)));
}

#[tokio::test]
async fn concurrent_writers_lose_no_count() {
    let db = TestDb::new().await;
    let s = session(&db.pool).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let pool = db.pool.clone();
        let s = s.clone();
        tasks.spawn(async move {
            for i in 0..10u64 {
                let id = trade(10, Some(1), "pending").insert(&pool, &s).await.unwrap();
                let status = if i % 5 == 0 { "failed" } else { "confirmed" };
                set_status(&pool, id, status, None).await;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let a = analytics(&db.pool, &s).await.unwrap();
    assert_eq!((a.total_trades, a.successful_trades, a.failed_trades), (60, 48, 12));
    assert_eq!((a.total_volume, a.total_fees_paid, a.avg_trade_size), (dec(480), dec(48), Some(dec(10))));
}

async fn last_activity(pool: &PgPool, session_id: &str) -> i64 {
    sqlx::query_scalar("SELECT last_activity FROM ephemeral_sessions WHERE session_id = $1")
        .bind(session_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn last_activity_follows_chain_time_and_never_goes_back() {
    let db = TestDb::new().await;
    // A backfilled session from long ago: last_activity starts at its creation, not now.
    let s =
        NewSession { created_at: 1_000, expires_at: 5_000, ..NewSession::default() }.insert(&db.pool).await.unwrap();
    assert_eq!(last_activity(&db.pool, &s).await, 1_000);

    trade(1, None, "finalized").with_time(2_000).insert(&db.pool, &s).await.unwrap();
    assert_eq!(last_activity(&db.pool, &s).await, 2_000, "the transaction's chain time");

    trade(1, None, "finalized").with_time(1_500).insert(&db.pool, &s).await.unwrap();
    assert_eq!(last_activity(&db.pool, &s).await, 2_000, "an older transaction indexed late");

    // Confirming a pending row brings its block time.
    let id = NewTx { transaction_type: "deposit", ..trade(1, None, "pending") }
        .with_time(2_500)
        .insert(&db.pool, &s)
        .await
        .unwrap();
    assert_eq!(last_activity(&db.pool, &s).await, 2_500);
    set_status(&db.pool, id, "confirmed", Some(3_000)).await;
    assert_eq!(last_activity(&db.pool, &s).await, 3_000);

    // A writer cannot move it back either.
    sqlx::query("UPDATE ephemeral_sessions SET last_activity = 10 WHERE session_id = $1")
        .bind(&s)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(last_activity(&db.pool, &s).await, 3_000);

    // A row not on chain yet has no chain time: the database's clock stands in.
    let before = unix_now();
    trade(1, None, "pending").insert(&db.pool, &s).await.unwrap();
    let after = unix_now();
    let now_ish = last_activity(&db.pool, &s).await;
    assert!((before - 1..=after).contains(&now_ish), "{now_ish} not in {before}..={after}");
}

trait WithTime {
    fn with_time(self, confirmed_at: i64) -> Self;
}
impl WithTime for NewTx {
    fn with_time(self, confirmed_at: i64) -> Self {
        NewTx { confirmed_at: Some(confirmed_at), ..self }
    }
}

async fn updated_at(pool: &PgPool, table: &str, key: &str, value: &str) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar(&format!("SELECT updated_at FROM {table} WHERE {key}::text = $1"))
        .bind(value)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn updated_at_moves_on_every_real_change_only() {
    let db = TestDb::new().await;
    let s = session(&db.pool).await;
    let tx_id = trade(5, None, "pending").insert(&db.pool, &s).await.unwrap().to_string();

    for (table, key, value, change, no_op) in [
        (
            "ephemeral_sessions",
            "session_id",
            s.as_str(),
            "UPDATE ephemeral_sessions SET user_agent = 'ua' WHERE session_id = $1",
            "UPDATE ephemeral_sessions SET user_agent = 'ua' WHERE session_id = $1",
        ),
        (
            "vault_transactions",
            "id",
            tx_id.as_str(),
            "UPDATE vault_transactions SET status = 'confirmed' WHERE id::text = $1",
            "UPDATE vault_transactions SET status = 'confirmed' WHERE id::text = $1",
        ),
        (
            "session_analytics",
            "session_id",
            s.as_str(),
            "UPDATE session_analytics SET peak_activity_hour = 3 WHERE session_id = $1",
            "UPDATE session_analytics SET peak_activity_hour = 3 WHERE session_id = $1",
        ),
        (
            "rate_limits",
            "action_type",
            "trade",
            "UPDATE rate_limits SET request_count = 5 WHERE action_type = $1 AND parent_wallet = 'system_default'",
            "UPDATE rate_limits SET request_count = 5 WHERE action_type = $1 AND parent_wallet = 'system_default'",
        ),
    ] {
        let t0 = updated_at(&db.pool, table, key, value).await;
        // now() is the transaction's start: each statement below is its own transaction, later.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        sqlx::query(change).bind(value).execute(&db.pool).await.unwrap();
        let t1 = updated_at(&db.pool, table, key, value).await;
        assert!(t1 > t0, "{table}: updated_at did not move on a change");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        sqlx::query(no_op).bind(value).execute(&db.pool).await.unwrap();
        let t2 = updated_at(&db.pool, table, key, value).await;
        assert_eq!(t2, t1, "{table}: rewriting identical values is not a change");
    }
}

#[tokio::test]
async fn is_active_follows_status_and_cannot_be_written() {
    let db = TestDb::new().await;
    let s = session(&db.pool).await;
    let active = |pool: PgPool, s: String| async move {
        sqlx::query_scalar::<_, bool>("SELECT is_active FROM ephemeral_sessions WHERE session_id = $1")
            .bind(s)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert!(active(db.pool.clone(), s.clone()).await);
    sqlx::query("UPDATE ephemeral_sessions SET status = 'revoked', revoked_at = 1 WHERE session_id = $1")
        .bind(&s)
        .execute(&db.pool)
        .await
        .unwrap();
    assert!(!active(db.pool.clone(), s.clone()).await);
    // 428C9: generated_always.
    assert_db_error(
        sqlx::query("UPDATE ephemeral_sessions SET is_active = true WHERE session_id = $1")
            .bind(&s)
            .execute(&db.pool)
            .await,
        "428C9",
        None,
    );
}
