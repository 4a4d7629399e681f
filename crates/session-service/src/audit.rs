//! One audit_log row per API action, allowed or refused, appended to the database's hash chain
//! (migrations/0006).
//!
//! A request's row is built up in an [`Audit`] while the request runs (the guard layer creates
//! it, handlers add what they learn) and written once, in one of two ways:
//! - an action that changes data writes the row in the action's own transaction
//!   ([`Audit::write_in`], then [`Audit::mark_written`] after the commit), so the two commit
//!   together or not at all;
//! - everything else (reads, refusals) is written by the guard after the handler, as its own
//!   statement; if that fails, the request fails with a 500 and nothing it returned is sent.
//!
//! The row is written last in a transaction, so the chain's advisory lock is held only from that
//! insert to the commit. Text that PostgreSQL cannot store (NUL) is removed here, so no input can
//! keep a request out of the log; the guard refuses such input anyway.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgExecutor};

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

/// `s` without NUL characters (which text and jsonb columns refuse).
fn storable(s: &str) -> String {
    s.replace('\0', "")
}

fn storable_opt(s: Option<String>) -> Option<String> {
    s.map(|v| if v.contains('\0') { storable(&v) } else { v })
}

fn storable_json(v: Value) -> Value {
    match v {
        Value::String(s) if s.contains('\0') => Value::String(storable(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(storable_json).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (storable(&k), storable_json(v))).collect()),
        other => other,
    }
}

pub async fn append<'e>(db: impl PgExecutor<'e>, e: AuditEntry) -> Result<(), sqlx::Error> {
    let mut metadata = storable_json(e.metadata);
    if !metadata.is_object() {
        metadata = serde_json::json!({});
    }
    metadata["source"] = Value::from("service");
    sqlx::query(
        "INSERT INTO audit_log (session_id, parent_wallet, action, actor, target, ip_address, user_agent,
                                success, error_message, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(short(storable_opt(e.session_id), 36))
    .bind(short(storable_opt(e.parent_wallet), 44))
    .bind(e.action)
    .bind(clip(&storable(&e.actor), 44))
    .bind(short(storable_opt(e.target), 44))
    .bind(short(storable_opt(e.ip), 45))
    .bind(short(storable_opt(e.user_agent), 512))
    .bind(e.success)
    .bind(short(storable_opt(e.error), 1000))
    .bind(metadata)
    .execute(db)
    .await?;
    Ok(())
}

/// The audit row of one request in progress (cheap to clone: one shared entry).
#[derive(Clone, Debug)]
pub struct Audit(Arc<Mutex<Pending>>);

#[derive(Debug)]
struct Pending {
    entry: AuditEntry,
    written: bool,
}

impl Audit {
    pub fn new(entry: AuditEntry) -> Self {
        Self(Arc::new(Mutex::new(Pending { entry, written: false })))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Pending) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    /// Changes the entry (action, target, session, parent wallet...).
    pub fn update(&self, f: impl FnOnce(&mut AuditEntry)) {
        self.with(|p| f(&mut p.entry))
    }

    /// The session the request is about (also its target).
    pub fn session(&self, session_id: &str) {
        self.update(|e| {
            e.session_id = Some(session_id.to_string());
            e.target = Some(session_id.to_string());
        })
    }

    /// Sets `metadata[key]`.
    pub fn meta(&self, key: &str, value: Value) {
        self.update(|e| e.metadata[key] = value)
    }

    pub fn user_agent(&self) -> Option<String> {
        self.with(|p| p.entry.user_agent.clone())
    }

    /// The row for an outcome: its status, and the error's text when refused.
    pub fn finished(&self, status: StatusCode, error: Option<String>) -> AuditEntry {
        self.with(|p| {
            let mut e = p.entry.clone();
            e.success = error.is_none();
            e.error = error;
            e.metadata["status"] = json!(status.as_u16());
            e
        })
    }

    /// Writes the row in the caller's transaction; [`Audit::mark_written`] after its commit.
    pub async fn write_in(
        &self,
        conn: &mut PgConnection,
        status: StatusCode,
        error: Option<String>,
    ) -> Result<(), sqlx::Error> {
        append(conn, self.finished(status, error)).await
    }

    pub fn mark_written(&self) {
        self.with(|p| p.written = true)
    }

    pub fn is_written(&self) -> bool {
        self.with(|p| p.written)
    }
}
