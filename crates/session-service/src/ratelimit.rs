//! Fixed-window rate limits per parent wallet and action, counted in `rate_limits`.
//!
//! One statement counts a request and decides: an upsert on the (parent_wallet, action_type) key,
//! so concurrent requests queue on the row's lock and each sees the count its own increment
//! produced; of M concurrent requests against a limit of N, exactly N are allowed.
//!
//! The limit of a wallet is, first to last: its own row's max_requests / window_seconds, the
//! service's configured override for the action, the `system_default` row. A wallet that
//! reaches more than `abuse_factor` times its limit within a window is blocked for
//! `block_seconds` (is_blocked, blocked_until); requests while blocked are refused without being
//! counted, and the first request after the block starts a fresh window.

use sqlx::PgPool;

use super::config::{RateAction, RateLimitConfig};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub count: i32,
    pub limit: i32,
    pub window_end: i64,
    pub blocked_until: Option<i64>,
}

impl Decision {
    /// Seconds until a retry can succeed.
    pub fn retry_after(&self, now: i64) -> u64 {
        let until = self.blocked_until.unwrap_or(self.window_end);
        (until - now).max(1) as u64
    }
}

/// Counts one request of `wallet` for `action` at `now` (unix seconds) and says whether it may
/// proceed.
pub async fn check(
    pool: &PgPool,
    cfg: &RateLimitConfig,
    wallet: &str,
    action: RateAction,
    now: i64,
) -> Result<Decision, sqlx::Error> {
    let ov = cfg.overrides.get(&action);
    let row: (i32, bool, Option<i64>, i64, i32) = sqlx::query_as(
        "WITH lim AS (
             SELECT COALESCE($4::INTEGER, d.max_requests, 60) AS max_requests,
                    COALESCE($5::INTEGER, d.window_seconds, 60) AS window_seconds
             FROM (SELECT 1) one
             LEFT JOIN rate_limits d ON d.parent_wallet = 'system_default' AND d.action_type = $2
         )
         INSERT INTO rate_limits AS r (parent_wallet, action_type, request_count, window_start, window_end)
         SELECT $1, $2, 1, $3, $3 + lim.window_seconds FROM lim
         ON CONFLICT (parent_wallet, action_type) DO UPDATE SET
             request_count = CASE
                 WHEN r.is_blocked AND r.blocked_until > $3 THEN r.request_count
                 WHEN r.window_end <= $3 OR r.is_blocked THEN 1
                 ELSE r.request_count + 1 END,
             window_start = CASE
                 WHEN r.is_blocked AND r.blocked_until > $3 THEN r.window_start
                 WHEN r.window_end <= $3 OR r.is_blocked THEN $3
                 ELSE r.window_start END,
             window_end = CASE
                 WHEN r.is_blocked AND r.blocked_until > $3 THEN r.window_end
                 WHEN r.window_end <= $3 OR r.is_blocked
                     THEN $3 + COALESCE(r.window_seconds, EXCLUDED.window_end - EXCLUDED.window_start)
                 ELSE r.window_end END,
             is_blocked = CASE
                 WHEN r.is_blocked AND r.blocked_until > $3 THEN true
                 WHEN r.window_end <= $3 OR r.is_blocked THEN false
                 ELSE r.request_count + 1 > $6::INTEGER * COALESCE(r.max_requests, (SELECT max_requests FROM lim)) END,
             blocked_until = CASE
                 WHEN r.is_blocked AND r.blocked_until > $3 THEN r.blocked_until
                 WHEN r.window_end <= $3 OR r.is_blocked THEN NULL
                 WHEN r.request_count + 1 > $6::INTEGER * COALESCE(r.max_requests, (SELECT max_requests FROM lim))
                     THEN $3 + $7::BIGINT
                 ELSE NULL END
         RETURNING request_count, is_blocked, blocked_until, window_end,
                   COALESCE(max_requests, (SELECT max_requests FROM lim))",
    )
    .bind(wallet)
    .bind(action.as_str())
    .bind(now)
    .bind(ov.map(|l| l.max_requests.clamp(1, i32::MAX as u32) as i32))
    .bind(ov.map(|l| l.window_seconds.clamp(1, i32::MAX as u32) as i32))
    .bind(cfg.abuse_factor.clamp(1, 1000) as i32)
    .bind(i64::from(cfg.block_seconds.max(1)))
    .fetch_one(pool)
    .await?;
    let (count, blocked, blocked_until, window_end, limit) = row;
    Ok(Decision {
        allowed: !blocked && count <= limit,
        count,
        limit,
        window_end,
        blocked_until: if blocked { blocked_until } else { None },
    })
}
