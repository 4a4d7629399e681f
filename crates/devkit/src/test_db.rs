//! Shared by the schema tests: a fresh database per test on the real server, and fixtures.
//!
//! `DATABASE_URL` names an admin connection (scripts/postgres.sh prints one). Each test creates
//! its own database from it, so tests run in parallel without seeing each other's rows, and
//! drops it when the `TestDb` goes out of scope, even if the test panicked.

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection};

pub fn admin_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "DATABASE_URL is not set. These tests need a real PostgreSQL server: run \
             `scripts/postgres.sh start` and export the DATABASE_URL it prints \
             (scripts/test-db.sh does both and runs the tests)."
        ),
    }
}

fn admin_options() -> PgConnectOptions {
    PgConnectOptions::from_str(&admin_url()).expect("DATABASE_URL is not a PostgreSQL URL")
}

/// A database of its own for one test.
pub struct TestDb {
    pub name: String,
    pub pool: PgPool,
}

impl TestDb {
    /// A connection URL for this database (for a process of its own, like the indexer binary).
    pub fn url(&self) -> String {
        let admin = admin_url();
        let (base, _) = admin.rsplit_once('/').expect("DATABASE_URL has a database name");
        let base = base.to_string();
        format!("{base}/{}", self.name)
    }

    /// A new database with every migration applied.
    pub async fn new() -> Self {
        let db = Self::empty().await;
        vault_db::migrate(&db.pool).await.expect("migrations failed");
        db
    }

    /// A new database with nothing in it.
    pub async fn empty() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("vault_test_{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed), nanos);
        let mut admin = PgConnection::connect_with(&admin_options())
            .await
            .expect("cannot connect to DATABASE_URL; is `scripts/postgres.sh start` running?");
        admin.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await.expect("CREATE DATABASE");
        admin.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(Self::options_for(&name))
            .await
            .expect("connecting to the test database");
        TestDb { name, pool }
    }

    fn options_for(name: &str) -> PgConnectOptions {
        admin_options().database(name)
    }

    /// A connection of its own (not from the pool), as a separate client would have.
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect_with(&Self::options_for(&self.name)).await.expect("connecting to the test database")
    }

    /// Another pool on the same database.
    pub async fn another_pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(4)
            .connect_with(Self::options_for(&self.name))
            .await
            .expect("connecting to the test database")
    }
}

impl Drop for TestDb {
    // Best effort. Drop cannot await, and a runtime cannot be started on a thread that is
    // already driving one, so a short-lived thread with its own runtime does the DROP.
    // WITH (FORCE) ends the pool's connections, which are being dropped anyway.
    fn drop(&mut self) {
        let name = self.name.clone();
        let options = admin_options();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                let mut admin = PgConnection::connect_with(&options).await.ok()?;
                admin.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await.ok()?;
                admin.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

// ----- values -----

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// A deterministic base58 string of `len` characters (splitmix64 over `seed`): the shape of a
/// public key (44) or a signature (88) without needing real keys.
pub fn base58(seed: u64, len: usize) -> String {
    let mut state = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            BASE58[(z % 58) as usize] as char
        })
        .collect()
}

pub fn wallet(seed: u64) -> String {
    base58(seed, 44)
}

pub fn signature(seed: u64) -> String {
    base58(seed.wrapping_add(1 << 40), 88)
}

pub fn new_session_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn dec(v: u64) -> Decimal {
    Decimal::from(v)
}

/// u64::MAX + 1, the first value an amount column must refuse.
pub fn u64_max_plus_one() -> Decimal {
    Decimal::from(u64::MAX) + Decimal::ONE
}

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

// ----- fixtures -----

/// A session row as the indexer would write it from a SessionCreated event (its own vault and
/// creation, derived from the session id); `Default` is an active one-hour session.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub session_id: String,
    pub parent_wallet: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub status: &'static str,
    pub revoked_at: Option<i64>,
    pub cleaned_at: Option<i64>,
    pub approved_amount: Decimal,
    pub total_deposited: Decimal,
    pub total_spent: Decimal,
    pub total_withdrawn: Decimal,
}

impl Default for NewSession {
    fn default() -> Self {
        let now = unix_now();
        NewSession {
            session_id: new_session_id(),
            parent_wallet: wallet(1),
            created_at: now - 60,
            expires_at: now + 3600,
            status: "active",
            revoked_at: None,
            cleaned_at: None,
            approved_amount: dec(1_000_000),
            total_deposited: dec(0),
            total_spent: dec(0),
            total_withdrawn: dec(0),
        }
    }
}

impl NewSession {
    pub async fn insert<'e>(&self, db: impl sqlx::PgExecutor<'e>) -> Result<String, sqlx::Error> {
        // One vault and one creation per session id, as the chain would have them.
        let seed = uuid::Uuid::parse_str(&self.session_id).map(|u| u.as_u64_pair().0).unwrap_or(0);
        sqlx::query(
            "INSERT INTO ephemeral_sessions (session_id, parent_wallet, ephemeral_wallet, vault_pda,
                 created_at, expires_at, status, revoked_at, cleaned_at, approved_amount,
                 total_deposited, total_spent, total_withdrawn, created_slot, creation_signature,
                 creation_instruction_index)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14, 0)",
        )
        .bind(&self.session_id)
        .bind(&self.parent_wallet)
        .bind(wallet(2))
        .bind(base58(seed, 44))
        .bind(self.created_at)
        .bind(self.expires_at)
        .bind(self.status)
        .bind(self.revoked_at)
        .bind(self.cleaned_at)
        .bind(self.approved_amount)
        .bind(self.total_deposited)
        .bind(self.total_spent)
        .bind(self.total_withdrawn)
        .bind(base58(seed ^ 0x5EED, 88))
        .execute(db)
        .await?;
        Ok(self.session_id.clone())
    }
}

/// Inserts an active session with defaults and returns its id.
pub async fn session(pool: &PgPool) -> String {
    NewSession::default().insert(pool).await.expect("inserting a session")
}

/// A vault_transactions row; `Default` is a pending trade of 100 at instruction 0.
#[derive(Clone, Debug)]
pub struct NewTx {
    pub signature: String,
    pub instruction_index: i32,
    pub transaction_type: &'static str,
    pub status: &'static str,
    pub amount: Decimal,
    pub fee_amount: Option<Decimal>,
    pub trade_id: Option<Decimal>,
    pub confirmed_at: Option<i64>,
}

impl Default for NewTx {
    fn default() -> Self {
        static SEED: AtomicU32 = AtomicU32::new(1);
        NewTx {
            signature: signature(u64::from(SEED.fetch_add(1, Ordering::Relaxed))),
            instruction_index: 0,
            transaction_type: "trade",
            status: "pending",
            amount: dec(100),
            fee_amount: None,
            trade_id: None,
            confirmed_at: None,
        }
    }
}

impl NewTx {
    /// Inserts it for `session_id` and returns the row's id.
    pub async fn insert<'e>(&self, db: impl sqlx::PgExecutor<'e>, session_id: &str) -> Result<i32, sqlx::Error> {
        sqlx::query_scalar(
            "INSERT INTO vault_transactions (session_id, transaction_signature, instruction_index,
                 transaction_type, status, amount, fee_amount, trade_id, confirmed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             RETURNING id",
        )
        .bind(session_id)
        .bind(&self.signature)
        .bind(self.instruction_index)
        .bind(self.transaction_type)
        .bind(self.status)
        .bind(self.amount)
        .bind(self.fee_amount)
        .bind(self.trade_id)
        .bind(self.confirmed_at)
        .fetch_one(db)
        .await
    }
}

/// A session's analytics counters, as one comparable value.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Analytics {
    pub total_trades: i32,
    pub successful_trades: i32,
    pub failed_trades: i32,
    pub total_volume: Decimal,
    pub total_fees_paid: Decimal,
    pub avg_trade_size: Option<Decimal>,
}

pub async fn analytics(pool: &PgPool, session_id: &str) -> Option<Analytics> {
    sqlx::query_as(
        "SELECT total_trades, successful_trades, failed_trades, total_volume, total_fees_paid,
                avg_trade_size
         FROM session_analytics WHERE session_id = $1",
    )
    .bind(session_id)
    .fetch_optional(pool)
    .await
    .expect("reading session_analytics")
}

// ----- errors -----

/// Asserts that `result` failed in the database with `sqlstate` and, when given, on the named
/// constraint, so a test cannot pass because some other rule happened to fire.
#[track_caller]
pub fn assert_db_error<T: std::fmt::Debug>(result: Result<T, sqlx::Error>, sqlstate: &str, constraint: Option<&str>) {
    let err = match result {
        Ok(v) => panic!("expected SQLSTATE {sqlstate} ({constraint:?}), but it succeeded: {v:?}"),
        Err(e) => e,
    };
    let db_err = err.as_database_error().unwrap_or_else(|| panic!("expected a database error {sqlstate}, got {err}"));
    assert_eq!(db_err.code().as_deref(), Some(sqlstate), "wrong SQLSTATE for: {}", db_err.message());
    if let Some(name) = constraint {
        assert_eq!(db_err.constraint(), Some(name), "wrong constraint for: {}", db_err.message());
    }
}

pub const CHECK_VIOLATION: &str = "23514";
pub const UNIQUE_VIOLATION: &str = "23505";
pub const FOREIGN_KEY_VIOLATION: &str = "23503";
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// A name quoted as an SQL identifier.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The tables of the public schema, the migrations' own bookkeeping aside, by name.
pub async fn public_tables(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> '_sqlx_migrations'
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(name,)| name).collect())
}

/// Rows of a table and a digest of their full text (md5 of the sorted md5s of `row::text`, so
/// the order rows are stored in does not matter and no giant string is built). `volatile`
/// columns are left out.
pub async fn table_digest(pool: &PgPool, table: &str, volatile: &[&str]) -> Result<(i64, String), sqlx::Error> {
    let row = if volatile.is_empty() {
        "t::text".to_string()
    } else {
        let minus: Vec<String> = volatile.iter().map(|c| format!(" - '{c}'")).collect();
        format!("(to_jsonb(t){})::text", minus.join(""))
    };
    let sql = format!(
        "SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h), ''))
         FROM (SELECT md5({row}) AS h FROM {} t) rows",
        quote(table)
    );
    sqlx::query_as(&sql).fetch_one(pool).await
}
