//! The one writer of `security_alerts`, shared by the indexer's chain rules and the session
//! service's request rules, and the one unusual-spending rule both apply.

use serde_json::json;

/// One alert to raise. `dedup_key` identifies it: raising it again is a no-op.
pub struct Alert<'a> {
    pub session_id: &'a str,
    /// The session (vault incarnation) it is about: `ephemeral_sessions.id`. None only where the
    /// writer knows just the id, which the database then accepts while it names one session.
    pub session_ref: Option<i32>,
    pub alert_type: &'static str,
    pub severity: &'static str,
    pub description: String,
    pub metadata: serde_json::Value,
    pub dedup_key: String,
}

/// Inserts the alert unless its dedup key exists (the unique index of migrations/0009); true
/// when it was new. `source` ("indexer", "service") is recorded in its metadata. Shared by the
/// indexer's chain rules and the session service's request rules.
pub async fn raise<'e>(db: impl sqlx::PgExecutor<'e>, source: &str, alert: Alert<'_>) -> Result<bool, sqlx::Error> {
    let mut metadata = alert.metadata;
    if !metadata.is_object() {
        metadata = json!({});
    }
    metadata["dedup_key"] = json!(alert.dedup_key);
    metadata["source"] = json!(source);
    let done = sqlx::query(
        "INSERT INTO security_alerts (session_id, alert_type, severity, description, metadata, session_ref)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT ((metadata ->> 'dedup_key')) WHERE metadata ? 'dedup_key' DO NOTHING",
    )
    .bind(alert.session_id)
    .bind(alert.alert_type)
    .bind(alert.severity)
    .bind(alert.description)
    .bind(metadata)
    .bind(alert.session_ref)
    .execute(db)
    .await?;
    let new = done.rows_affected() == 1;
    if new {
        tracing::warn!(alert = alert.alert_type, session = alert.session_id, source, "security alert raised");
    }
    Ok(new)
}

/// [`raise`] for many alerts in one statement; the number that were new. Alerts sharing a
/// dedup key within `alerts` are raised once (the first).
pub async fn raise_all<'e>(
    db: impl sqlx::PgExecutor<'e>,
    source: &str,
    alerts: Vec<Alert<'_>>,
) -> Result<u64, sqlx::Error> {
    let mut seen = std::collections::HashSet::new();
    let alerts: Vec<Alert<'_>> = alerts.into_iter().filter(|a| seen.insert(a.dedup_key.clone())).collect();
    if alerts.is_empty() {
        return Ok(0);
    }
    let metadata: Vec<serde_json::Value> = alerts
        .iter()
        .map(|alert| {
            let mut metadata = if alert.metadata.is_object() { alert.metadata.clone() } else { json!({}) };
            metadata["dedup_key"] = json!(alert.dedup_key);
            metadata["source"] = json!(source);
            metadata
        })
        .collect();
    let done = sqlx::query(
        "INSERT INTO security_alerts (session_id, alert_type, severity, description, metadata, session_ref)
         SELECT * FROM UNNEST($1::varchar[], $2::varchar[], $3::varchar[], $4::text[], $5::jsonb[], $6::int4[])
         ON CONFLICT ((metadata ->> 'dedup_key')) WHERE metadata ? 'dedup_key' DO NOTHING",
    )
    .bind(alerts.iter().map(|a| a.session_id).collect::<Vec<_>>())
    .bind(alerts.iter().map(|a| a.alert_type).collect::<Vec<_>>())
    .bind(alerts.iter().map(|a| a.severity).collect::<Vec<_>>())
    .bind(alerts.iter().map(|a| a.description.as_str()).collect::<Vec<_>>())
    .bind(metadata)
    .bind(alerts.iter().map(|a| a.session_ref).collect::<Vec<_>>())
    .execute(db)
    .await?;
    if done.rows_affected() > 0 {
        tracing::warn!(alerts = done.rows_affected(), source, "security alerts raised");
    }
    Ok(done.rows_affected())
}

/// The unusual-spending rule: one trade or top-up spends at least `share_bps` basis points of
/// the session's approved amount. Compared in integer units (base units or lamports), never
/// floats, so the boundary is exact for every u64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct UnusualSpending {
    /// Basis points of the approved amount (5000 = half); 0 turns the rule off.
    pub share_bps: u32,
}

impl UnusualSpending {
    /// Half the approved amount: the default of both the indexer and the service.
    pub const HALF: Self = Self { share_bps: 5_000 };

    /// True when `spent` (amount plus fee, base units) reaches the share of `approved`.
    pub fn is_unusual(self, spent: u128, approved: u64) -> bool {
        self.share_bps > 0 && approved > 0 && spent * 10_000 >= u128::from(self.share_bps) * u128::from(approved)
    }
}

impl Default for UnusualSpending {
    fn default() -> Self {
        Self::HALF
    }
}

#[cfg(test)]
mod tests {
    use super::UnusualSpending;

    #[test]
    fn the_boundary_is_exact_in_integers() {
        let half = UnusualSpending::HALF;
        assert!(half.is_unusual(5, 10));
        assert!(!half.is_unusual(4, 10));
        // Where f64 rounds: u64::MAX / 2 + 1 is exactly half of u64::MAX rounded up.
        assert!(half.is_unusual(u128::from(u64::MAX / 2 + 1), u64::MAX));
        assert!(!half.is_unusual(u128::from(u64::MAX / 2), u64::MAX));
        assert!(!UnusualSpending { share_bps: 0 }.is_unusual(u128::from(u64::MAX), 1));
        assert!(!half.is_unusual(1, 0));
    }
}
