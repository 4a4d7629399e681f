//! The three views with real rows: sessions with and without trades and alerts, and every way a
//! session becomes (or stops being) a cleanup candidate.

use vault_devkit::test_db as common;

use common::*;
use rust_decimal::Decimal;
use sqlx::PgPool;

#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
struct ActiveRow {
    session_id: String,
    remaining_balance: Decimal,
    total_trades: i32,
    total_volume: Decimal,
}

async fn active_rows(pool: &PgPool) -> Vec<ActiveRow> {
    sqlx::query_as(
        "SELECT session_id::text, remaining_balance, total_trades, total_volume
         FROM active_sessions_view ORDER BY session_id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn active_sessions_view_shows_zero_for_sessions_without_trades() {
    let db = TestDb::new().await;
    let quiet = NewSession { total_deposited: dec(1_000), ..NewSession::default() }.insert(&db.pool).await.unwrap();
    let busy = NewSession {
        total_deposited: dec(1_000),
        total_spent: dec(300),
        total_withdrawn: dec(200),
        ..NewSession::default()
    }
    .insert(&db.pool)
    .await
    .unwrap();
    for (amount, status) in [(100, "confirmed"), (200, "finalized"), (50, "failed")] {
        NewTx { amount: dec(amount), status, ..NewTx::default() }.insert(&db.pool, &busy).await.unwrap();
    }
    // Not active: revoked; past its expiry though nobody marked it; cleaned.
    let now = unix_now();
    NewSession { status: "revoked", revoked_at: Some(now), ..NewSession::default() }.insert(&db.pool).await.unwrap();
    NewSession { created_at: now - 7200, expires_at: now - 10, ..NewSession::default() }
        .insert(&db.pool)
        .await
        .unwrap();
    NewSession { status: "cleaned", cleaned_at: Some(now), ..NewSession::default() }.insert(&db.pool).await.unwrap();

    let mut expected = vec![
        ActiveRow { session_id: quiet.clone(), remaining_balance: dec(1_000), total_trades: 0, total_volume: dec(0) },
        // 1000 deposited - 300 spent - 200 withdrawn; 3 trades, 300 of successful volume.
        ActiveRow { session_id: busy.clone(), remaining_balance: dec(500), total_trades: 3, total_volume: dec(300) },
    ];
    expected.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    assert_eq!(active_rows(&db.pool).await, expected);

    // The no-analytics case reads 0, not NULL, in the raw columns too.
    let (trades, volume): (Option<i32>, Option<Decimal>) =
        sqlx::query_as("SELECT total_trades, total_volume FROM active_sessions_view WHERE session_id = $1")
            .bind(&quiet)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((trades, volume), (Some(0), Some(dec(0))));
}

#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
struct AlertRow {
    session_id: String,
    total_alerts: i64,
    critical_alerts: i64,
    high_alerts: i64,
    has_last_alert: bool,
}

async fn alert(pool: &PgPool, session_id: &str, severity: &str, resolved: bool) {
    sqlx::query(
        "INSERT INTO security_alerts (session_id, alert_type, severity, description, is_resolved, resolved_at)
         VALUES ($1, 'unusual_spending', $2, 'test', $3, CASE WHEN $3 THEN now() END)",
    )
    .bind(session_id)
    .bind(severity)
    .bind(resolved)
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn alerts_summary_view_lists_every_session_and_counts_unresolved_alerts() {
    let db = TestDb::new().await;
    let none = session(&db.pool).await;
    let only_resolved = session(&db.pool).await;
    let alerted = session(&db.pool).await;
    alert(&db.pool, &only_resolved, "critical", true).await;
    alert(&db.pool, &alerted, "critical", false).await;
    alert(&db.pool, &alerted, "critical", false).await;
    alert(&db.pool, &alerted, "high", false).await;
    alert(&db.pool, &alerted, "low", false).await;
    alert(&db.pool, &alerted, "critical", true).await;
    alert(&db.pool, &alerted, "high", true).await;

    let rows: Vec<AlertRow> = sqlx::query_as(
        "SELECT session_id::text, total_alerts, critical_alerts, high_alerts,
                last_alert_time IS NOT NULL AS has_last_alert
         FROM alerts_summary_view",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let row = |id: &str| rows.iter().find(|r| r.session_id == id).unwrap_or_else(|| panic!("{id} missing"));
    assert_eq!(rows.len(), 3, "every session is listed, alerts or not");
    let zero = |id: &str| AlertRow {
        session_id: id.to_string(),
        total_alerts: 0,
        critical_alerts: 0,
        high_alerts: 0,
        has_last_alert: false,
    };
    assert_eq!(row(&none), &zero(&none));
    assert_eq!(row(&only_resolved), &zero(&only_resolved));
    assert_eq!(
        row(&alerted),
        &AlertRow {
            session_id: alerted.clone(),
            total_alerts: 4,
            critical_alerts: 2,
            high_alerts: 1,
            has_last_alert: true
        }
    );
}

#[tokio::test]
async fn cleanup_candidates_are_expired_or_inactive_sessions_not_yet_cleaned() {
    let db = TestDb::new().await;
    let now = unix_now();
    let live = session(&db.pool).await;
    let expired_unmarked = NewSession { created_at: now - 7200, expires_at: now - 100, ..NewSession::default() }
        .insert(&db.pool)
        .await
        .unwrap();
    let marked_expired =
        NewSession { created_at: now - 7200, expires_at: now - 50, status: "expired", ..NewSession::default() }
            .insert(&db.pool)
            .await
            .unwrap();
    let revoked_early = NewSession { status: "revoked", revoked_at: Some(now), ..NewSession::default() }
        .insert(&db.pool)
        .await
        .unwrap();
    let cleaned_expired = NewSession {
        created_at: now - 7200,
        expires_at: now - 100,
        status: "cleaned",
        cleaned_at: Some(now),
        ..NewSession::default()
    }
    .insert(&db.pool)
    .await
    .unwrap();
    let cleaned_revoked =
        NewSession { status: "cleaned", revoked_at: Some(now - 5), cleaned_at: Some(now), ..NewSession::default() }
            .insert(&db.pool)
            .await
            .unwrap();

    let rows: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT session_id::text, seconds_expired, status::text FROM cleanup_candidates_view")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    for candidate in [&expired_unmarked, &marked_expired, &revoked_early] {
        assert!(ids.contains(&candidate.as_str()), "{candidate} should be a candidate");
    }
    for not_candidate in [&live, &cleaned_expired, &cleaned_revoked] {
        assert!(!ids.contains(&not_candidate.as_str()), "{not_candidate} should not be a candidate");
    }
    assert_eq!(rows.len(), 3);
    let seconds = |id: &str| rows.iter().find(|r| r.0 == id).unwrap().1;
    assert!((100..110).contains(&seconds(&expired_unmarked)));
    assert!(seconds(&revoked_early) < 0, "revoked before its expiry");

    // The second of expiry itself counts as expired, as on chain (now >= expires_at), and such a
    // session is no longer in the active view. One transaction, so now() is one instant.
    let mut tx = db.pool.begin().await.unwrap();
    let edge = new_session_id();
    sqlx::query(
        "INSERT INTO ephemeral_sessions (session_id, parent_wallet, ephemeral_wallet, vault_pda,
             created_at, expires_at, approved_amount, created_slot, creation_signature, creation_instruction_index)
         VALUES ($1, $2, $2, $2, 0, floor(extract(epoch FROM now()))::bigint, 1, 1, $3, 0)",
    )
    .bind(&edge)
    .bind(wallet(9))
    .bind(signature(9))
    .execute(&mut *tx)
    .await
    .unwrap();
    let in_cleanup: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM cleanup_candidates_view WHERE session_id = $1)")
            .bind(&edge)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    let in_active: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM active_sessions_view WHERE session_id = $1)")
            .bind(&edge)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert!(in_cleanup && !in_active);
    tx.rollback().await.unwrap();

    // A session registered with the service but never created on chain has no vault to clean.
    let never_created = new_session_id();
    sqlx::query(
        "INSERT INTO ephemeral_sessions (session_id, parent_wallet, ephemeral_wallet, vault_pda,
             created_at, expires_at, approved_amount)
         VALUES ($1, $2, $2, $2, 0, 1, 1)",
    )
    .bind(&never_created)
    .bind(wallet(12))
    .execute(&db.pool)
    .await
    .unwrap();
    let listed: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM cleanup_candidates_view WHERE session_id = $1)")
            .bind(&never_created)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(!listed, "a registration the chain never showed is no cleanup candidate");
}
