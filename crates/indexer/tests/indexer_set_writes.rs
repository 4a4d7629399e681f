//! The set-based writer (issue: "The indexer writes a batch in a handful of set-based
//! statements"): however a stream is cut into batches, and however often it is replayed, every
//! table ends byte for byte the same; the audit chain it appends verifies; the analytics it keeps
//! equal a recomputation from the rows, every column; a batch costs a constant number of round
//! trips.

use vault_devkit::test_db as common;
mod indexing;

use common::TestDb;
use ephemeral_vault::sdk::VaultEvent;
use indexing::*;
use sqlx::PgPool;
use vault_indexer::chain_tx::ChainTx;
use vault_indexer::decode::{decode_all, VaultAction};
use vault_indexer::ingest::{BatchReport, Ingest};

async fn write_in_batches(pool: &PgPool, txs: &[ChainTx], size: usize) -> Vec<BatchReport> {
    let ingest = Ingest::default();
    let mut reports = vec![];
    for batch in txs.chunks(size) {
        reports.push(ingest.write_batch(pool, "test", &decode_all(batch), None).await.expect("batch"));
    }
    reports
}

/// Every table of the schema with its rows' digest: the full rows, serial ids, timestamps and
/// hashes included.
async fn digests(pool: &PgPool) -> Vec<(String, (i64, String))> {
    let mut out = vec![];
    for table in common::public_tables(pool).await.unwrap() {
        let digest = common::table_digest(pool, &table, &[]).await.unwrap();
        out.push((table, digest));
    }
    out
}

/// The index of the first landed trade in `txs`.
fn first_trade(txs: &[ChainTx]) -> usize {
    txs.iter()
        .position(|tx| {
            decode_all(std::slice::from_ref(tx))[0]
                .decoded
                .actions
                .iter()
                .any(|a| matches!(a, VaultAction::Event(VaultEvent::TradeExecuted(_))))
        })
        .expect("the lifecycle trades")
}

/// The lifecycle, with its first trade sent by the session service's relay 2.5 s before its
/// block time: the pending row the relay writes (service_record_relay), then the stream.
async fn lifecycle_with_a_relayed_trade(pool: &PgPool, txs: &[ChainTx], size: usize) {
    let relayed = first_trade(txs);
    write_in_batches(pool, &txs[..relayed], size).await;
    let trade = &txs[relayed];
    let (session_ref,): (i32,) = sqlx::query_as(
        "SELECT s.id FROM ephemeral_sessions s
         WHERE s.creation_signature IS NOT NULL AND s.vault_pda = $1 ORDER BY s.id DESC LIMIT 1",
    )
    .bind(trade_vault(trade))
    .fetch_one(pool)
    .await
    .unwrap();
    let (recorded,): (bool,) = sqlx::query_as("SELECT service_record_relay($1, $2, 'trade', 1, 0, 1, '{}'::jsonb)")
        .bind(session_ref)
        .bind(&trade.signature)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(recorded);
    // The submission time, as the relay would have stamped it had it sent the trade 2.5 s before
    // its block time.
    sqlx::query("UPDATE vault_transactions SET created_at = to_timestamp($2 - 2.5) WHERE transaction_signature = $1")
        .bind(&trade.signature)
        .bind(trade.block_time.expect("litesvm gives a block time") as f64)
        .execute(pool)
        .await
        .unwrap();
    write_in_batches(pool, &txs[relayed..], size).await;
}

fn trade_vault(tx: &ChainTx) -> String {
    decode_all(std::slice::from_ref(tx))[0]
        .decoded
        .actions
        .iter()
        .find_map(|a| match a {
            VaultAction::Event(VaultEvent::TradeExecuted(e)) => Some(e.vault.to_string()),
            _ => None,
        })
        .unwrap()
}

#[tokio::test]
async fn a_replay_in_any_batching_leaves_every_table_byte_for_byte_unchanged() {
    let scenario = lifecycle();
    let db = TestDb::new().await;
    lifecycle_with_a_relayed_trade(&db.pool, &scenario.txs, 5).await;
    let problems = count(&db.pool, "SELECT count(*) FROM verify_audit_chain()").await;
    assert_eq!(problems, 0, "the audit chain the writer appended verifies");
    assert_eq!(
        count(&db.pool, "SELECT count(*) FROM audit_log").await,
        count(&db.pool, "SELECT count(DISTINCT metadata->>'chain_ref') FROM audit_log").await,
        "one audit row per action"
    );
    let before = digests(&db.pool).await;
    assert!(before.iter().any(|(t, _)| t == "session_trade_hours"));
    for size in [1, 3, scenario.txs.len()] {
        write_in_batches(&db.pool, &scenario.txs, size).await;
        let after = digests(&db.pool).await;
        for ((table, was), (_, is)) in before.iter().zip(&after) {
            assert_eq!(was, is, "{table} changed by a replay in batches of {size}");
        }
    }

    // Another cut of the same stream into batches gives the same rows (without the relay's
    // pending row, whose activity time is the wall clock's).
    let (one, fives) = (TestDb::new().await, TestDb::new().await);
    write_in_batches(&one.pool, &scenario.txs, scenario.txs.len()).await;
    write_in_batches(&fives.pool, &scenario.txs, 5).await;
    assert_same_rows(&dump(&one.pool).await, &dump(&fives.pool).await, "one batch vs batches of 5");
}

/// session_analytics recomputed from vault_transactions and ephemeral_sessions, written here
/// from the definitions in migrations/0013 (not with the database's own functions).
const RECOMPUTED: &str = "
    WITH trades AS (
        SELECT t.session_ref,
               count(*) AS total,
               count(*) FILTER (WHERE t.status IN ('confirmed', 'finalized')) AS ok,
               count(*) FILTER (WHERE t.status = 'failed') AS failed,
               COALESCE(sum(t.amount) FILTER (WHERE t.status IN ('confirmed', 'finalized')), 0) AS volume,
               COALESCE(sum(COALESCE(t.fee_amount, 0)) FILTER (WHERE t.status IN ('confirmed', 'finalized')), 0) AS fees,
               avg(GREATEST(t.confirmed_at * 1000 - floor(extract(epoch FROM t.created_at) * 1000), 0))
                   FILTER (WHERE t.status IN ('confirmed', 'finalized') AND t.confirmed_at IS NOT NULL
                           AND t.metadata->>'source' = 'relay') AS confirmation_ms
        FROM vault_transactions t WHERE t.transaction_type = 'trade' GROUP BY t.session_ref
    ), hours AS (
        SELECT DISTINCT ON (session_ref) session_ref, hour
        FROM (SELECT t.session_ref, extract(hour FROM to_timestamp(t.confirmed_at) AT TIME ZONE 'UTC')::int AS hour,
                     count(*) AS n
              FROM vault_transactions t
              WHERE t.transaction_type = 'trade' AND t.status IN ('confirmed', 'finalized') AND t.confirmed_at IS NOT NULL
              GROUP BY 1, 2) h
        ORDER BY session_ref, n DESC, hour
    ), sessions AS (
        SELECT s.id,
               CASE WHEN s.revoked_at IS NOT NULL OR s.cleaned_at IS NOT NULL
                    THEN GREATEST(LEAST(s.revoked_at, s.cleaned_at, s.expires_at) - s.created_at, 0) END AS duration
        FROM ephemeral_sessions s
        WHERE EXISTS (SELECT 1 FROM vault_transactions t WHERE t.session_ref = s.id)
    )
    SELECT concat_ws('|', s.id, COALESCE(tr.total, 0), COALESCE(tr.ok, 0), COALESCE(tr.failed, 0),
                     COALESCE(tr.volume, 0), COALESCE(tr.fees, 0),
                     CASE WHEN tr.ok > 0 THEN div(tr.volume, tr.ok) END,
                     floor(tr.confirmation_ms)::int, s.duration,
                     CASE WHEN s.duration > 0 THEN round(COALESCE(tr.ok, 0) * 60.0 / s.duration, 2) END,
                     h.hour)
    FROM sessions s LEFT JOIN trades tr ON tr.session_ref = s.id LEFT JOIN hours h ON h.session_ref = s.id
    ORDER BY s.id";

const STORED: &str = "
    SELECT concat_ws('|', session_ref, total_trades, successful_trades, failed_trades, total_volume, total_fees_paid,
                     avg_trade_size, avg_confirmation_time, session_duration, trades_per_minute, peak_activity_hour)
    FROM session_analytics ORDER BY session_ref";

#[tokio::test]
async fn analytics_equal_a_recomputation_from_the_rows_every_column() {
    let scenario = lifecycle();
    let db = TestDb::new().await;
    lifecycle_with_a_relayed_trade(&db.pool, &scenario.txs, 4).await;
    let stored: Vec<(String,)> = sqlx::query_as(STORED).fetch_all(&db.pool).await.unwrap();
    let recomputed: Vec<(String,)> = sqlx::query_as(RECOMPUTED).fetch_all(&db.pool).await.unwrap();
    assert_eq!(stored, recomputed);

    // The definitions hold something to compare: the relayed trade's 2,500 ms, sessions that
    // ended with a duration and a rate, and a peak hour.
    let (confirmation,): (Option<i32>,) =
        sqlx::query_as("SELECT max(avg_confirmation_time) FROM session_analytics").fetch_one(&db.pool).await.unwrap();
    assert_eq!(confirmation, Some(2_500));
    // (The lifecycle's clock moves only where it warps past an expiry.)
    assert!(count(&db.pool, "SELECT count(*) FROM session_analytics WHERE session_duration > 0").await >= 1);
    assert!(count(&db.pool, "SELECT count(*) FROM session_analytics WHERE trades_per_minute > 0").await >= 1);
    assert!(count(&db.pool, "SELECT count(*) FROM session_analytics WHERE peak_activity_hour IS NOT NULL").await >= 2);
    // A live session's duration runs to now (or its expiry) in the view, and is NULL in the table.
    assert!(
        count(
            &db.pool,
            "SELECT count(*) FROM session_analytics_view v JOIN session_analytics a USING (session_ref)
             WHERE a.session_duration IS NULL AND v.session_duration >= 0"
        )
        .await
            >= 1
    );
}

/// Every statement a batch can need, once: BEGIN, the sessions read, the creations' claim and
/// insert, delegations, sessions, transactions, the two delegation passes, cleanups, the
/// high-frequency count, alerts, the parked check, parking expiry, the audit reserve and insert,
/// COMMIT.
const MOST_ROUND_TRIPS: usize = 17;

#[tokio::test]
async fn a_batch_costs_a_constant_number_of_round_trips() {
    let scenario = lifecycle();
    // The whole lifecycle (six sessions created, refusals, rotations, cleanups, a reopening) in
    // one batch: each kind of statement once, however many transactions need it.
    let db = TestDb::new().await;
    let whole = write_in_batches(&db.pool, &scenario.txs, scenario.txs.len()).await[0].statements;
    let replay = TestDb::new().await;
    let single: usize = write_in_batches(&replay.pool, &scenario.txs, 1).await.iter().map(|r| r.statements).sum();
    assert!(whole <= MOST_ROUND_TRIPS, "{} transactions took {whole} round trips", scenario.txs.len());
    assert!(single > 5 * whole, "one at a time took {single} round trips, all at once {whole}");
}
