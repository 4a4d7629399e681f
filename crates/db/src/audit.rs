//! The audit log is append-only and hash-chained in the database itself (see
//! `migrations/0006_audit_log.sql`): writers only INSERT, and a BEFORE INSERT trigger assigns the
//! chain position and hashes. This module reads the verdict back.

use sqlx::PgExecutor;

/// The first row at which `verify_audit_chain()` found the chain broken.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BrokenLink {
    /// Position the row claims in the chain.
    pub chain_seq: i64,
    /// Its primary key, to find the row.
    pub id: i32,
    /// What does not hold there: a gap, a wrong back link, or content that no longer matches
    /// its hash.
    pub problem: String,
}

/// `None` when every row's hash matches its content and its predecessor and the positions have
/// no gaps; otherwise the first row where that fails.
pub async fn verify_chain<'e>(db: impl PgExecutor<'e>) -> Result<Option<BrokenLink>, sqlx::Error> {
    sqlx::query_as::<_, BrokenLink>("SELECT chain_seq, id, problem FROM verify_audit_chain()").fetch_optional(db).await
}
