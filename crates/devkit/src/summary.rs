//! What the indexed database says, in a few lines: the main job ends by printing it, and its
//! test compares it with what the scenario implies.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;
use sqlx::PgPool;

#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub sessions_by_status: BTreeMap<String, i64>,
    /// vault_transactions rows by (transaction_type, status).
    pub transactions: BTreeMap<(String, String), i64>,
    pub trades: TradeTotals,
    /// delegation_history rows (every delegate a session ever had).
    pub delegations: i64,
    pub alerts_by_type: BTreeMap<String, i64>,
    /// cleanup_events rows by reason.
    pub cleanups_by_reason: BTreeMap<String, i64>,
    /// Lamports paid to cleanup callers.
    pub rewards_paid: Decimal,
    pub audit_rows: i64,
    /// None when the audit log's hash chain verifies; else where it breaks.
    pub audit_broken_at: Option<i64>,
}

/// session_analytics summed over every session.
#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct TradeTotals {
    pub sessions: i64,
    pub total: i64,
    pub successful: i64,
    pub failed: i64,
    /// In each session's own unit (lamports or token base units), so only meaningful per asset;
    /// the summary shows it for SOL sessions.
    pub sol_volume: Decimal,
}

impl Summary {
    pub async fn load(pool: &PgPool) -> Result<Self, sqlx::Error> {
        let sessions_by_status = pairs(pool, "SELECT status, count(*) FROM ephemeral_sessions GROUP BY status").await?;
        let transactions: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT transaction_type, status, count(*) FROM vault_transactions GROUP BY 1, 2")
                .fetch_all(pool)
                .await?;
        let trades = sqlx::query_as::<_, TradeTotals>(
            "SELECT count(*) AS sessions,
                    coalesce(sum(a.total_trades), 0)::BIGINT AS total,
                    coalesce(sum(a.successful_trades), 0)::BIGINT AS successful,
                    coalesce(sum(a.failed_trades), 0)::BIGINT AS failed,
                    coalesce(sum(a.total_volume) FILTER (WHERE s.mint IS NULL), 0) AS sol_volume
             FROM session_analytics a JOIN ephemeral_sessions s ON s.id = a.session_ref",
        )
        .fetch_one(pool)
        .await?;
        let (delegations,): (i64,) = sqlx::query_as("SELECT count(*) FROM delegation_history").fetch_one(pool).await?;
        let alerts_by_type = pairs(pool, "SELECT alert_type, count(*) FROM security_alerts GROUP BY 1").await?;
        let cleanups_by_reason = pairs(pool, "SELECT cleanup_reason, count(*) FROM cleanup_events GROUP BY 1").await?;
        let (rewards_paid,): (Decimal,) =
            sqlx::query_as("SELECT coalesce(sum(cleanup_reward), 0) FROM cleanup_events").fetch_one(pool).await?;
        let (audit_rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_log").fetch_one(pool).await?;
        let audit_broken_at = vault_db::audit::verify_chain(pool).await?.map(|b| b.chain_seq);
        Ok(Self {
            sessions_by_status,
            transactions: transactions.into_iter().map(|(t, s, n)| ((t, s), n)).collect(),
            trades,
            delegations,
            alerts_by_type,
            cleanups_by_reason,
            rewards_paid,
            audit_rows,
            audit_broken_at,
        })
    }

    /// Rows of landed transactions not yet seen at `finalized`.
    pub fn unfinalized(&self) -> i64 {
        self.transactions
            .iter()
            .filter(|((_, status), _)| status == "confirmed" || status == "pending")
            .map(|(_, n)| n)
            .sum()
    }

    /// Transactions by (type, landed successfully): confirmed and finalized count as landed.
    pub fn transactions_by_outcome(&self) -> BTreeMap<(String, bool), u64> {
        let mut out = BTreeMap::new();
        for ((kind, status), n) in &self.transactions {
            let landed = status != "failed";
            *out.entry((kind.clone(), landed)).or_default() += *n as u64;
        }
        out
    }
}

async fn pairs(pool: &PgPool, query: &str) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    Ok(sqlx::query_as::<_, (String, i64)>(query).fetch_all(pool).await?.into_iter().collect())
}

fn join(map: &BTreeMap<String, i64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "sessions       {}", join(&self.sessions_by_status))?;
        writeln!(f, "transactions   (type: confirmed/finalized/failed)")?;
        let mut kinds: BTreeMap<&str, [i64; 3]> = BTreeMap::new();
        for ((kind, status), n) in &self.transactions {
            let column = match status.as_str() {
                "confirmed" | "pending" => 0,
                "finalized" => 1,
                _ => 2,
            };
            kinds.entry(kind).or_default()[column] += n;
        }
        for (kind, [confirmed, finalized, failed]) in kinds {
            writeln!(f, "  {kind:<17}{confirmed:>4} /{finalized:>4} /{failed:>4}")?;
        }
        let t = &self.trades;
        writeln!(
            f,
            "analytics      {} sessions, {} trades ({} ok, {} refused), SOL volume {} SOL",
            t.sessions,
            t.total,
            t.successful,
            t.failed,
            t.sol_volume / Decimal::from(1_000_000_000u64)
        )?;
        writeln!(f, "delegations    {} delegates approved over all sessions", self.delegations)?;
        writeln!(f, "alerts         {}", join(&self.alerts_by_type))?;
        writeln!(
            f,
            "cleanups       {} ({}), rewards paid {} lamports",
            self.cleanups_by_reason.values().sum::<i64>(),
            join(&self.cleanups_by_reason),
            self.rewards_paid
        )?;
        let verdict = match self.audit_broken_at {
            None => "hash chain verifies".to_string(),
            Some(seq) => format!("hash chain BROKEN at {seq}"),
        };
        write!(f, "audit log      {} rows, {verdict}", self.audit_rows)
    }
}

/// Loads the summary until `settled` accepts it or `timeout` passes (the indexer is a separate
/// process catching up); returns the last one and whether it settled.
pub async fn wait_for(
    pool: &PgPool,
    timeout: std::time::Duration,
    settled: impl Fn(&Summary) -> bool,
) -> Result<(Summary, bool), sqlx::Error> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let summary = Summary::load(pool).await?;
        if settled(&summary) {
            return Ok((summary, true));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok((summary, false));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
