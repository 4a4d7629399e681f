//! One audit_log row per API action, allowed or refused, appended to the database's hash chain
//! (migrations/0006). Each is its own statement, so the chain's advisory lock is held only for
//! that insert.

use serde_json::Value;
use sqlx::PgPool;

/// What one API call did, for its audit row.
#[derive(Clone, Debug, Default)]
pub struct AuditEntry {
    /// e.g. `service.session.register`.
    pub action: &'static str,
    /// The verified wallet, the claimed one for a refused request, or `anonymous`.
    pub actor: String,
    /// A session id, an alert id or a wallet the action is about.
    pub target: Option<String>,
    pub session_id: Option<String>,
    pub parent_wallet: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub success: bool,
    pub error: Option<String>,
    pub metadata: Value,
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// A session id column value only when it has the column's shape (audit_log takes anything up
/// to 36 characters, but a garbage path segment is better kept in metadata).
fn short(s: Option<String>, max: usize) -> Option<String> {
    s.map(|v| clip(&v, max))
}

pub async fn append(pool: &PgPool, e: AuditEntry) -> Result<(), sqlx::Error> {
    let mut metadata = e.metadata;
    if !metadata.is_object() {
        metadata = serde_json::json!({});
    }
    metadata["source"] = Value::from("service");
    sqlx::query(
        "INSERT INTO audit_log (session_id, parent_wallet, action, actor, target, ip_address, user_agent,
                                success, error_message, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(short(e.session_id, 36))
    .bind(short(e.parent_wallet, 44))
    .bind(e.action)
    .bind(clip(&e.actor, 44))
    .bind(short(e.target, 44))
    .bind(short(e.ip, 45))
    .bind(short(e.user_agent, 512))
    .bind(e.success)
    .bind(short(e.error, 1000))
    .bind(metadata)
    .execute(pool)
    .await?;
    Ok(())
}
