//! Security alerts the service raises from what it sees in requests (the indexer raises its own
//! from chain data; both write through [`vault_db::alerts::raise`]). Every alert carries a `dedup_key` (the unique index of
//! migrations/0009), inserted with ON CONFLICT DO NOTHING, so a retried request or two service
//! instances never raise one alert twice. Keys start with `service:` and never meet the
//! indexer's.
//!
//! - `ip_change`: a session is used from an IP other than the one that registered it (one alert
//!   per session and new IP).
//! - `high_frequency`: a session relays at least N trades within a window (one per window).
//! - `unusual_spending`: one relayed trade or top-up spends at least a share of the approved
//!   amount (one per request).
//! - `expired_session`: a trade or top-up is requested after the session's expiry (one per
//!   session and minute).

use serde_json::json;
use sqlx::PgPool;

use vault_db::alerts::Alert;

use crate::store::SessionRow;

/// Raises `alert` as the service's; true when it was new.
async fn raise(pool: &PgPool, alert: Alert<'_>) -> Result<bool, sqlx::Error> {
    vault_db::alerts::raise(pool, "service", alert).await
}

pub async fn ip_change(
    pool: &PgPool,
    session: &SessionRow,
    registered: &str,
    now_ip: &str,
) -> Result<bool, sqlx::Error> {
    raise(
        pool,
        Alert {
            session_id: &session.session_id,
            session_ref: Some(session.id),
            alert_type: "ip_change",
            severity: "medium",
            description: format!("session used from {now_ip}, registered from {registered}"),
            metadata: json!({"registered_ip": registered, "ip": now_ip}),
            dedup_key: format!("service:ip_change:{}:{now_ip}", session.id),
        },
    )
    .await
}

pub async fn expired_session(
    pool: &PgPool,
    session: &SessionRow,
    expires_at: i64,
    now: i64,
    ip: &str,
) -> Result<bool, sqlx::Error> {
    raise(
        pool,
        Alert {
            session_id: &session.session_id,
            session_ref: Some(session.id),
            alert_type: "expired_session",
            severity: "medium",
            description: format!("use of the session {} s after its expiry", now - expires_at),
            metadata: json!({"expires_at": expires_at, "at": now, "ip": ip}),
            dedup_key: format!("service:expired_session:{}:{}", session.id, now.div_euclid(60)),
        },
    )
    .await
}

pub async fn unusual_spending(
    pool: &PgPool,
    session: &SessionRow,
    spent: u128,
    approved: u64,
    request_ref: &str,
) -> Result<bool, sqlx::Error> {
    raise(
        pool,
        Alert {
            session_id: &session.session_id,
            session_ref: Some(session.id),
            alert_type: "unusual_spending",
            severity: "high",
            description: format!("one relayed request spends {spent} of an approved {approved}"),
            metadata: json!({"spent": spent.to_string(), "approved": approved.to_string()}),
            dedup_key: format!("service:unusual_spending:{}:{request_ref}", session.id),
        },
    )
    .await
}

/// Counts the session's relayed trades in the window ending now and raises the alert at the
/// threshold.
pub async fn high_frequency(
    pool: &PgPool,
    session: &SessionRow,
    threshold: u32,
    window_secs: u32,
    now: i64,
) -> Result<bool, sqlx::Error> {
    if threshold == 0 {
        return Ok(false);
    }
    let window = i64::from(window_secs.max(1));
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM vault_transactions
         WHERE session_ref = $1 AND transaction_type = 'trade' AND metadata ->> 'source' = 'relay'
           AND created_at > to_timestamp($2) - make_interval(secs => $3)",
    )
    .bind(session.id)
    .bind(now as f64)
    .bind(window as f64)
    .fetch_one(pool)
    .await?;
    if count < i64::from(threshold) {
        return Ok(false);
    }
    raise(
        pool,
        Alert {
            session_id: &session.session_id,
            session_ref: Some(session.id),
            alert_type: "high_frequency",
            severity: "medium",
            description: format!("{count} relayed trades within {window} s"),
            metadata: json!({"trades": count, "window_secs": window}),
            dedup_key: format!("service:high_frequency:{}:{}", session.id, now.div_euclid(window)),
        },
    )
    .await
}
