//! One writer per source, any number of standbys: the writer role is a PostgreSQL session
//! advisory lock (`pg_try_advisory_lock`) held on a connection of its own for the writer's whole
//! life. PostgreSQL releases it the moment that session ends - the process killed, the host
//! gone, the connection cut - and a standby polling for it takes over from the stored cursor.
//!
//! A writer that loses its connection has lost the lock: [`WriterLock::lost`] resolves and the
//! caller stops writing at once (the binary exits, for its supervisor to restart it as a
//! standby). A batch already in flight at that moment may still commit beside the new writer's;
//! that is harmless, since every write is an idempotent upsert and the cursor never moves back.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, PgConnection};

use crate::metrics::{IndexerMetrics, Role};

/// The advisory lock's first key: "vaul" in ASCII; the second is derived from the source name,
/// so the confirmed and the finalized indexer each have their own writer.
const LOCK_CLASS: i32 = 0x7661_756c;

/// The lock's second key for `source` (FNV-1a, folded to 32 bits: stable across builds).
pub fn lock_key(source: &str) -> i32 {
    let hash = source.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    i32::from_ne_bytes(hash.to_ne_bytes())
}

async fn try_lock(conn: &mut PgConnection, source: &str) -> Result<bool, sqlx::Error> {
    let (held,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1, $2)")
        .bind(LOCK_CLASS)
        .bind(lock_key(source))
        .fetch_one(conn)
        .await?;
    Ok(held)
}

pub struct WriterLock {
    conn: PgConnection,
    source: String,
}

impl WriterLock {
    /// Waits until this process holds the writer role for `source`: tries the lock every
    /// `poll` on one connection, as a standby meanwhile (so say the metrics).
    pub async fn acquire(database_url: &str, source: &str, metrics: &Arc<IndexerMetrics>, poll: Duration) -> Self {
        metrics.role.store(Role::Standby as u64, Relaxed);
        let mut said = false;
        let mut conn: Option<PgConnection> = None;
        loop {
            let tried = async {
                if conn.is_none() {
                    conn = Some(PgConnection::connect(database_url).await?);
                }
                let held = try_lock(conn.as_mut().expect("connected"), source).await?;
                Ok::<_, sqlx::Error>(held)
            };
            match tried.await {
                Ok(true) => {
                    metrics.role.store(Role::Writer as u64, Relaxed);
                    tracing::info!(source, "holding the writer lock: writing");
                    return Self { conn: conn.expect("connected"), source: source.to_string() };
                }
                Ok(false) if !said => {
                    tracing::info!(source, "another indexer holds the writer lock: standing by");
                    said = true;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "trying the writer lock failed; retrying");
                    conn = None;
                }
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// One try, on a new connection (closed again when the lock is not taken).
    pub async fn try_acquire(database_url: &str, source: &str) -> Result<Option<Self>, sqlx::Error> {
        let mut conn = PgConnection::connect(database_url).await?;
        if try_lock(&mut conn, source).await? {
            Ok(Some(Self { conn, source: source.to_string() }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Resolves when the lock's connection is gone (checked every `every`, each check given as
    /// long again to answer): from then on another indexer may hold the lock.
    pub async fn lost(&mut self, every: Duration) -> sqlx::Error {
        loop {
            tokio::time::sleep(every).await;
            let check = sqlx::query("SELECT 1").execute(&mut self.conn);
            match tokio::time::timeout(every.max(Duration::from_secs(1)), check).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return e,
                Err(_) => return sqlx::Error::PoolTimedOut,
            }
            tracing::trace!(source = %self.source, "writer lock held");
        }
    }
}
