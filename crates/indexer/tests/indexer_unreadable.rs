//! One unreadable transaction never blocks the cursor (issue 13, part 1).
//!
//! The lifecycle's transactions (the real program in litesvm) are served by the JSON-RPC test
//! server and the Geyser replay server, with some made unreadable the ways nodes make them: a
//! version above what the client asks for (-32015), garbled bytes, a runtime error variant no
//! client crate knows. Each must end in `indexer_skipped` with its raw answer, be counted by
//! reason, and the indexer must stream past it to the last transaction. `reprocess` then reads
//! them again (once the node serves them readably) exactly once: the rows end equal to a direct
//! write of every transaction.

use vault_devkit::test_db as common;
mod indexing;

use std::sync::Arc;
use std::time::Duration;

use common::TestDb;
use indexing::*;
use sqlx::PgPool;
use vault_devkit::geyser_replay::GeyserReplay;
use vault_devkit::rpc_server::RpcServer;
use vault_indexer::chain_tx::{ChainTx, Commitment};
use vault_indexer::ingest::{load_cursor, Ingest};
use vault_indexer::metrics::IndexerMetrics;
use vault_indexer::pipeline::{self, PipelineConfig};
use vault_indexer::reprocess::{read_stored, reprocess, ReprocessReport};
use vault_indexer::sources::rpc::{RpcConfig, RpcSource, MAX_SUPPORTED_TRANSACTION_VERSION};
use vault_indexer::sources::yellowstone::{YellowstoneConfig, YellowstoneSource};
use vault_indexer::sources::Cursor;

async fn rpc_server(server: &RpcServer) -> String {
    let (addr, _) = server.clone().serve("127.0.0.1:0".parse().unwrap()).await.expect("serve");
    format!("http://{addr}")
}

fn rpc_source(url: &str) -> RpcSource {
    let mut config = RpcConfig::new(url, Commitment::Confirmed);
    config.poll_interval = Duration::from_millis(50);
    RpcSource::new(config)
}

fn pipeline_config() -> PipelineConfig {
    PipelineConfig { batch_size: 4, ..PipelineConfig::default() }
}

/// Waits until `source`'s cursor is exactly at `last` (the indexer went past everything).
async fn wait_for_last(pool: &PgPool, source: &str, last: &ChainTx) {
    let want = Cursor { slot: last.slot, signature: Some(last.signature.clone()) };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let cursor = load_cursor(pool, source).await.expect("cursor");
        if cursor.as_ref() == Some(&want) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the cursor stopped at {cursor:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `indexer_skipped` as (signature, kind, raw_format, reprocess_outcome), in chain order.
async fn skipped_rows(pool: &PgPool) -> Vec<(String, String, Option<String>, Option<String>)> {
    sqlx::query_as(
        "SELECT transaction_signature, kind, raw_format, reprocess_outcome FROM indexer_skipped
         ORDER BY block_slot, transaction_signature",
    )
    .fetch_all(pool)
    .await
    .expect("indexer_skipped")
}

/// A dump without the `indexer_skipped` rows of `signatures` (compared separately, exactly).
fn without_skipped(rows: Vec<String>, signatures: &[&str]) -> Vec<String> {
    rows.into_iter().filter(|r| !signatures.iter().any(|s| r.starts_with(&format!("{s}|")))).collect()
}

fn sorted_by_chain_order<'a>(txs: &'a [ChainTx], signatures: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&ChainTx> = txs.iter().filter(|tx| signatures.contains(&tx.signature.as_str())).collect();
    v.sort_by(|a, b| (a.slot, &a.signature).cmp(&(b.slot, &b.signature)));
    v.into_iter().map(|tx| tx.signature.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_source_records_unreadable_transactions_streams_past_them_and_reprocess_reads_them_once() {
    let scenario = lifecycle();
    let txs = &scenario.txs;
    let sig = |i: usize| txs[i].signature.clone();
    // The unknown error goes on a transaction that failed (the refused over-cap trade).
    let f = txs.iter().position(|tx| tx.failure.is_some()).expect("a refused trade");
    assert!(f > 3);
    let server = RpcServer::new();
    server.extend(&scenario.recorded);
    server.misbehave(|m| {
        // Version 1: readable, since the source asks for the newest version its crates decode.
        m.versions.insert(sig(1), 1);
        m.versions.insert(sig(2), MAX_SUPPORTED_TRANSACTION_VERSION + 1);
        m.malformed.insert(sig(3));
        m.unknown_error.insert(sig(f));
    });
    let url = rpc_server(&server).await;
    let db = TestDb::new().await;
    let metrics = Arc::new(IndexerMetrics::default());
    let run = pipeline::run(db.pool.clone(), Ingest::default(), rpc_source(&url), metrics.clone(), pipeline_config());
    let task = tokio::spawn(run);
    wait_for_last(&db.pool, "rpc", txs.last().unwrap()).await;
    // Nothing more comes: the poll that went past them is the last that writes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    task.abort();

    let skipped = [sig(2), sig(3), sig(f)];
    let skipped: Vec<&str> = skipped.iter().map(String::as_str).collect();
    let readable: Vec<ChainTx> = txs.iter().filter(|tx| !skipped.contains(&tx.signature.as_str())).cloned().collect();
    assert_same_rows(
        &without_skipped(dump(&db.pool).await, &skipped),
        &without_skipped(reference_rows(&readable).await, &skipped),
        "every readable transaction, the unreadable ones streamed past",
    );
    let in_order = sorted_by_chain_order(txs, &skipped);
    let kind_of = |s: &str| match s {
        s if s == sig(2) => "unsupported_version",
        s if s == sig(3) => "malformed",
        _ => "unknown_error",
    };
    let expected: Vec<_> =
        in_order.iter().map(|s| (s.to_string(), kind_of(s).to_string(), Some("rpc_json".to_string()), None)).collect();
    assert_eq!(skipped_rows(&db.pool).await, expected);
    let (reason, raw): (String, serde_json::Value) =
        sqlx::query_as("SELECT reason, raw FROM indexer_skipped WHERE transaction_signature = $1")
            .bind(sig(2))
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(raw["error"]["code"], -32015);
    assert!(reason.contains("Transaction version (2) is not supported by the requesting client"), "{reason}");
    for reason in ["unsupported_version", "malformed", "unknown_error"] {
        assert_eq!(metrics.skipped(reason), 1, "{reason}");
    }
    assert!(metrics.render().contains("vault_indexer_skipped_total{reason=\"unsupported_version\"} 1\n"));
    // Bounded retries: 3 asks for each of the three, 1 for every other transaction.
    assert_eq!(server.calls("getTransaction"), (txs.len() - 3) as u64 + 3 * 3);

    // The stored answers still do not read; without RPC, reprocess leaves every row pending.
    let stored: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT raw_format, raw FROM indexer_skipped").fetch_all(&db.pool).await.unwrap();
    assert!(stored.iter().all(|(format, raw)| read_stored(format, raw, Commitment::Confirmed).is_err()));
    let before = dump(&db.pool).await;
    let report = reprocess(&db.pool, &Ingest::default(), None, Commitment::Confirmed).await.unwrap();
    assert_eq!(report.still_unreadable.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(), in_order);
    assert_eq!(dump(&db.pool).await, before);

    // The node serves them readably now (the upgrade): read again over RPC, once.
    server.behave();
    let rpc = rpc_source(&url);
    let report = reprocess(&db.pool, &Ingest::default(), Some(&rpc), Commitment::Confirmed).await.unwrap();
    assert_eq!(report, ReprocessReport { written: 3, ..ReprocessReport::default() });
    let all = without_skipped(reference_rows(txs).await, &skipped);
    assert_same_rows(&without_skipped(dump(&db.pool).await, &skipped), &all, "after reprocess");
    let done: Vec<_> =
        expected.iter().map(|(s, k, f, _)| (s.clone(), k.clone(), f.clone(), Some("written".into()))).collect();
    assert_eq!(skipped_rows(&db.pool).await, done);
    let again = reprocess(&db.pool, &Ingest::default(), Some(&rpc), Commitment::Confirmed).await.unwrap();
    assert_eq!(again, ReprocessReport::default(), "exactly once");
    assert_same_rows(&without_skipped(dump(&db.pool).await, &skipped), &all, "a second reprocess changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_source_records_unconvertible_updates_and_streams_past_them() {
    let scenario = lifecycle();
    let txs = &scenario.txs;
    let f = txs.iter().position(|tx| tx.failure.is_some()).expect("a refused trade");
    let server = GeyserReplay::new(100_000).with_ping_interval(Duration::from_millis(150));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, _) = server
        .clone()
        .serve("127.0.0.1:0".parse().unwrap(), async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    for (i, recorded) in scenario.recorded.iter().enumerate() {
        let mut update = geyser_update(recorded);
        let info = update.transaction.as_mut().unwrap();
        match i {
            // An account key of 31 bytes.
            3 => {
                info.transaction.as_mut().unwrap().message.as_mut().unwrap().account_keys[1].pop();
            }
            // A runtime error whose enum variant index no client crate knows.
            i if i == f => info.meta.as_mut().unwrap().err.as_mut().unwrap().err = vec![0xfe, 0, 0, 0],
            _ => {}
        }
        server.publish(update);
        server.publish_block_meta(recorded.slot, Some(recorded.unix_timestamp));
    }
    let db = TestDb::new().await;
    let metrics = Arc::new(IndexerMetrics::default());
    let mut config = YellowstoneConfig::new(format!("http://{addr}"), Commitment::Confirmed);
    config.start_slot = Some(0);
    let source = YellowstoneSource::new(config);
    let task =
        tokio::spawn(pipeline::run(db.pool.clone(), Ingest::default(), source, metrics.clone(), pipeline_config()));
    wait_for_last(&db.pool, "yellowstone", txs.last().unwrap()).await;
    task.abort();

    let (s3, s5) = (txs[3].signature.clone(), txs[f].signature.clone());
    let skipped = [s3.as_str(), s5.as_str()];
    let readable: Vec<ChainTx> = txs.iter().filter(|tx| !skipped.contains(&tx.signature.as_str())).cloned().collect();
    assert_same_rows(
        &without_skipped(dump(&db.pool).await, &skipped),
        &without_skipped(reference_rows(&readable).await, &skipped),
        "every convertible update, the others streamed past",
    );
    let kind = |s: &str| if s == s3 { "malformed" } else { "unknown_error" };
    let expected: Vec<_> = sorted_by_chain_order(txs, &skipped)
        .into_iter()
        .map(|s| (s.to_string(), kind(s).to_string(), Some("grpc_protobuf".to_string()), None))
        .collect();
    assert_eq!(skipped_rows(&db.pool).await, expected);
    assert_eq!((metrics.skipped("malformed"), metrics.skipped("unknown_error")), (1, 1));

    // The stored protobuf still does not convert; a node serving them readably does.
    let report = reprocess(&db.pool, &Ingest::default(), None, Commitment::Confirmed).await.unwrap();
    assert_eq!(report.still_unreadable.len(), 2);
    let rpc_node = RpcServer::new();
    rpc_node.extend(&scenario.recorded);
    let rpc = rpc_source(&rpc_server(&rpc_node).await);
    let report = reprocess(&db.pool, &Ingest::default(), Some(&rpc), Commitment::Confirmed).await.unwrap();
    assert_eq!(report, ReprocessReport { written: 2, ..ReprocessReport::default() });
    assert_same_rows(
        &without_skipped(dump(&db.pool).await, &skipped),
        &without_skipped(reference_rows(txs).await, &skipped),
        "after reprocess",
    );
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_sources_rpc_gap_filler_streams_past_an_unreadable_transaction() {
    let scenario = lifecycle();
    let txs = &scenario.txs;
    // The indexer ran before: the first 2 are written with the cursor; the gap after them comes
    // from RPC (the gRPC server has no replay), and one transaction in it is of a newer version.
    let prefix = 2;
    let cursor = Cursor { slot: txs[prefix - 1].slot, signature: Some(txs[prefix - 1].signature.clone()) };
    let db = TestDb::new().await;
    Ingest::default()
        .write_batch(&db.pool, "yellowstone", &vault_indexer::decode::decode_all(&txs[..prefix]), Some(&cursor))
        .await
        .unwrap();
    let unreadable = txs[prefix + 1].signature.clone();
    let node = RpcServer::new();
    node.extend(&scenario.recorded);
    node.misbehave(|m| {
        m.versions.insert(unreadable.clone(), MAX_SUPPORTED_TRANSACTION_VERSION + 1);
    });
    let filler = rpc_source(&rpc_server(&node).await);

    let server = GeyserReplay::new(100_000).with_ping_interval(Duration::from_millis(100)).without_replay();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, _) = server
        .clone()
        .serve("127.0.0.1:0".parse().unwrap(), async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    let mut config = YellowstoneConfig::new(format!("http://{addr}"), Commitment::Confirmed);
    config.backoff_base = Duration::from_millis(20);
    config.backoff_cap = Duration::from_millis(200);
    let metrics = Arc::new(IndexerMetrics::default());
    let source = YellowstoneSource::with_gap_filler(config, filler);
    let task =
        tokio::spawn(pipeline::run(db.pool.clone(), Ingest::default(), source, metrics.clone(), pipeline_config()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server.subscriptions() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let live_from = txs.len() / 2;
    for recorded in &scenario.recorded[live_from..] {
        server.publish(geyser_update(recorded));
        server.publish_block_meta(recorded.slot, Some(recorded.unix_timestamp));
    }
    wait_for_last(&db.pool, "yellowstone", txs.last().unwrap()).await;
    task.abort();
    let _ = stop.send(());

    let skipped = [unreadable.as_str()];
    let readable: Vec<ChainTx> = txs.iter().filter(|tx| tx.signature != unreadable).cloned().collect();
    assert_same_rows(
        &without_skipped(dump(&db.pool).await, &skipped),
        &without_skipped(reference_rows(&readable).await, &skipped),
        "the gap filled from RPC past the unreadable transaction",
    );
    assert_eq!(
        skipped_rows(&db.pool).await,
        vec![(unreadable.clone(), "unsupported_version".to_string(), Some("rpc_json".to_string()), None)]
    );
    assert_eq!(metrics.skipped("unsupported_version"), 1);
}
