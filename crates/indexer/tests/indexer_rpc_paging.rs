//! RPC listing never mistakes a short answer for the end of history (issue 13, part 2).
//!
//! 1,206 transactions of the real program (litesvm: a session's setup and 1,204 deposits, one
//! slot each) served by the JSON-RPC test server; the indexer's stored cursor is the 5th, so more
//! than 1,000 signatures lie between the cursor and the tip. Against short pages, a node that
//! ignores `until`, and a pruned ledger (with and without an archive fallback), the RPC source
//! must end with exactly the rows of a direct write, fetching each transaction once, and a gap
//! must be said (error log, vault_indexer_gaps_total), never skipped.

use vault_devkit::test_db as common;
mod indexing;

use std::sync::Arc;
use std::time::Duration;

use common::TestDb;
use ephemeral_vault::sdk;
use ephemeral_vault_testkit::*;
use indexing::*;
use sqlx::PgPool;
use vault_devkit::rpc_server::RpcServer;
use vault_indexer::chain_tx::{ChainTx, Commitment};
use vault_indexer::decode::decode_all;
use vault_indexer::ingest::{load_cursor, Ingest};
use vault_indexer::metrics::IndexerMetrics;
use vault_indexer::pipeline::{self, PipelineConfig};
use vault_indexer::sources::rpc::{RpcConfig, RpcSource};
use vault_indexer::sources::Cursor;

const DEPOSITS: u64 = 1_204;
/// Transactions written directly before the indexer starts; its cursor is the last of them.
const PREFIX: usize = 5;

/// A session and `DEPOSITS` deposits of different amounts, every one in its own slot.
fn many_transactions() -> Vec<Recorded> {
    let mut w = VaultWorld::new();
    let s = w.sol_session();
    let mut args = session_args(s.session.session_id);
    args.initial_deposit = LAMPORTS_PER_SOL;
    w.create(&s, args).expect("create");
    for i in 0..DEPOSITS {
        w.send(&[sdk::deposit(&s.session, None, 1_000 + i)], &s.parent, &[]).expect("deposit");
    }
    w.history.iter().filter(|r| r.mentions(&ephemeral_vault::ID)).cloned().collect()
}

struct Chain {
    recorded: Vec<Recorded>,
    txs: Vec<ChainTx>,
    expected: Vec<String>,
    cursor: Cursor,
}

async fn chain() -> Chain {
    let recorded = many_transactions();
    let txs: Vec<ChainTx> = recorded.iter().map(chain_tx).collect();
    assert!(txs.len() > DEPOSITS as usize, "the deposits and the session's setup");
    assert!(txs.windows(2).all(|w| w[0].slot < w[1].slot), "one slot each");
    let expected = reference_rows(&txs).await;
    let cursor = Cursor { slot: txs[PREFIX - 1].slot, signature: Some(txs[PREFIX - 1].signature.clone()) };
    assert!(txs.len() - PREFIX > 1_000, "more than a page between the cursor and the tip");
    Chain { recorded, txs, expected, cursor }
}

async fn serve(server: &RpcServer) -> String {
    let (addr, _) = server.clone().serve("127.0.0.1:0".parse().unwrap()).await.expect("serve");
    format!("http://{addr}")
}

fn source(url: &str) -> RpcSource {
    let mut config = RpcConfig::new(url, Commitment::Confirmed);
    config.poll_interval = Duration::from_millis(50);
    config.concurrency = 16;
    RpcSource::new(config)
}

/// A database where an indexer already wrote the first transactions and its cursor.
async fn resumed_db(chain: &Chain) -> TestDb {
    let db = TestDb::new().await;
    Ingest::default()
        .write_batch(&db.pool, "rpc", &decode_all(&chain.txs[..PREFIX]), Some(&chain.cursor))
        .await
        .expect("prefix");
    db
}

fn run(pool: &PgPool, source: RpcSource, metrics: Arc<IndexerMetrics>) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let config = PipelineConfig { batch_size: 256, ..PipelineConfig::default() };
    tokio::spawn(pipeline::run(pool.clone(), Ingest::default(), source.with_metrics(metrics.clone()), metrics, config))
}

async fn wait_for_tip(pool: &PgPool, chain: &Chain, label: &str) {
    let last = chain.txs.last().unwrap();
    let want = Some(Cursor { slot: last.slot, signature: Some(last.signature.clone()) });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while load_cursor(pool, "rpc").await.unwrap() != want {
        assert!(tokio::time::Instant::now() < deadline, "{label}: the cursor did not reach the tip");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_same_rows(&dump(pool).await, &chain.expected, label);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_pages_an_ignored_until_and_a_pruned_ledger_lose_nothing() {
    let chain = chain().await;
    let new = (chain.txs.len() - PREFIX) as u64;

    // 1. Short pages mid-range: every page holds at most 100 of the 1,000 asked for.
    let server = RpcServer::new();
    server.extend(&chain.recorded);
    server.misbehave(|m| m.page_cap = Some(100));
    let db = resumed_db(&chain).await;
    let task = run(&db.pool, source(&serve(&server).await), Arc::default());
    wait_for_tip(&db.pool, &chain, "short pages").await;
    task.abort();
    assert_eq!(server.calls("getTransaction"), new, "each new transaction fetched once");
    // 1,200 new signatures in pages of 100, then the empty page above the cursor and one probe.
    assert!(server.calls("getSignaturesForAddress") >= new.div_ceil(100) + 2);

    // 2. A node that ignores `until` (it does not know the cursor's signature): bounded by the
    //    cursor, never the whole history.
    let server = RpcServer::new();
    server.extend(&chain.recorded);
    server.misbehave(|m| m.ignore_until = true);
    let db = resumed_db(&chain).await;
    let task = run(&db.pool, source(&serve(&server).await), Arc::default());
    wait_for_tip(&db.pool, &chain, "until ignored").await;
    tokio::time::sleep(Duration::from_millis(300)).await; // later polls: nothing more
    task.abort();
    assert_eq!(server.calls("getTransaction"), new, "nothing at or below the cursor fetched again");

    // 3. A pruned ledger: the node's history starts 20 transactions above the cursor.
    let pruned_from = chain.txs[PREFIX + 20].slot;
    let pruned = RpcServer::new();
    pruned.extend(&chain.recorded);
    pruned.misbehave(|m| m.first_available_slot = pruned_from);
    let pruned_url = serve(&pruned).await;
    //    Without a fallback: the gap is said and counted, and the cursor stays where it is.
    let db = resumed_db(&chain).await;
    let metrics = Arc::new(IndexerMetrics::default());
    let task = run(&db.pool, source(&pruned_url), metrics.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    task.abort();
    assert!(metrics.gaps_detected.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert!(metrics.render().contains("vault_indexer_gaps_total "));
    assert_eq!(load_cursor(&db.pool, "rpc").await.unwrap(), Some(chain.cursor.clone()), "never past a gap");
    assert_eq!(pruned.calls("getTransaction"), 0, "nothing fetched past a gap");
    //    With an archive node as the fallback: the gap is filled from it.
    let archive = RpcServer::new();
    archive.extend(&chain.recorded);
    let with_archive = source(&pruned_url).with_fallback(source(&serve(&archive).await));
    let metrics = Arc::new(IndexerMetrics::default());
    let task = run(&db.pool, with_archive, metrics.clone());
    wait_for_tip(&db.pool, &chain, "gap filled from the archive").await;
    task.abort();
    assert_eq!(metrics.gaps_detected.load(std::sync::atomic::Ordering::Relaxed), 1, "one gap, filled once");
    assert_eq!(archive.calls("getTransaction"), new);
}
