//! A silent gRPC stream is noticed (issue 13, part 3).
//!
//! - The replay server keeps the stream open and sends nothing more, not even pings
//!   (`silence_open_streams`): while it is silent the lag metric grows against the chain's tip
//!   read over RPC (`getSlot` on the JSON-RPC test server), and the watchdog resubscribes from
//!   the cursor after the silence timeout, ending with exactly the rows of a direct write.
//! - A server without replay (`SubscribeReplayInfo` unimplemented, `from_slot` refused): the
//!   source subscribes live and fills the slots between its cursor and the first streamed slot
//!   from RPC, again ending with exactly the rows of a direct write.

use vault_devkit::test_db as common;
mod indexing;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use common::TestDb;
use indexing::*;
use vault_devkit::geyser_replay::GeyserReplay;
use vault_devkit::rpc_server::RpcServer;
use vault_indexer::chain_tx::Commitment;
use vault_indexer::decode::decode_all;
use vault_indexer::ingest::Ingest;
use vault_indexer::metrics::IndexerMetrics;
use vault_indexer::pipeline::{self, PipelineConfig};
use vault_indexer::sources::rpc::{RpcConfig, RpcSource};
use vault_indexer::sources::yellowstone::{YellowstoneConfig, YellowstoneSource};
use vault_indexer::sources::Cursor;

async fn geyser(server: GeyserReplay) -> (String, tokio::sync::oneshot::Sender<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, _) = server
        .serve("127.0.0.1:0".parse().unwrap(), async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    (format!("http://{addr}"), stop)
}

async fn rpc(server: &RpcServer) -> RpcSource {
    let (addr, _) = server.clone().serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    RpcSource::new(RpcConfig::new(format!("http://{addr}"), Commitment::Confirmed))
}

fn config(endpoint: &str, silence: Duration) -> YellowstoneConfig {
    let mut config = YellowstoneConfig::new(endpoint, Commitment::Confirmed);
    config.start_slot = Some(0);
    config.backoff_base = Duration::from_millis(20);
    config.backoff_cap = Duration::from_millis(200);
    config.silence_timeout = silence;
    config
}

fn publish(server: &GeyserReplay, recorded: &ephemeral_vault_testkit::Recorded) {
    server.publish(geyser_update(recorded));
    server.publish_block_meta(recorded.slot, Some(recorded.unix_timestamp));
}

fn gauge(metrics: &IndexerMetrics, name: &str) -> u64 {
    let text = metrics.render();
    let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stream_shows_as_lag_and_is_resubscribed_from_the_cursor() {
    let scenario = lifecycle();
    let expected = reference_rows(&scenario.txs).await;
    let half = scenario.recorded.len() / 2;
    let (first_half_last, last) = (scenario.txs[half - 1].slot, scenario.txs.last().unwrap().slot);

    let server = GeyserReplay::new(100_000).with_ping_interval(Duration::from_millis(100));
    let (endpoint, _stop) = geyser(server.clone()).await;
    let node = RpcServer::new();
    node.extend(&scenario.recorded);
    let tip = rpc(&node).await;
    node.set_tip(first_half_last);

    let db = TestDb::new().await;
    let metrics = Arc::new(IndexerMetrics::default());
    let _tip = tokio::spawn(tip.follow_tip(metrics.clone(), Duration::from_millis(50)));
    let silence = Duration::from_secs(3);
    let source = YellowstoneSource::new(config(&endpoint, silence)).with_metrics(metrics.clone());
    let task = tokio::spawn(pipeline::run(
        db.pool.clone(),
        Ingest::default(),
        source,
        metrics.clone(),
        PipelineConfig { batch_size: 4, ..PipelineConfig::default() },
    ));
    for recorded in &scenario.recorded[..half] {
        publish(&server, recorded);
    }
    wait_for_cursor(&db.pool, "yellowstone", first_half_last).await;
    assert_eq!(server.subscriptions(), 1);
    assert_eq!(gauge(&metrics, "vault_indexer_lag_slots"), 0);

    // The stream goes silent while the chain moves on.
    server.silence_open_streams();
    let stalled_at = tokio::time::Instant::now();
    for recorded in &scenario.recorded[half..] {
        publish(&server, recorded);
    }
    node.set_tip(last);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gauge(&metrics, "vault_indexer_current_slot"), first_half_last);
    assert_eq!(gauge(&metrics, "vault_indexer_chain_tip_slot"), last);
    assert_eq!(gauge(&metrics, "vault_indexer_lag_slots"), last - first_half_last, "a stall shows as lag");
    assert_eq!(metrics.stream_stalls.load(Relaxed), 0);

    // The watchdog resubscribes from the cursor, and the rest arrives by replay.
    wait_for_rows(&db.pool, &expected, "after the stall").await;
    let recovered = stalled_at.elapsed();
    assert!(recovered >= silence && recovered < silence + Duration::from_secs(5), "recovered after {recovered:?}");
    assert_eq!(metrics.stream_stalls.load(Relaxed), 1);
    assert_eq!(server.subscriptions(), 2);
    wait_for_cursor(&db.pool, "yellowstone", last).await;
    assert_eq!(gauge(&metrics, "vault_indexer_lag_slots"), 0);
    assert!(metrics.render().contains("vault_indexer_stream_stalls_total 1\n"));
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_replay_is_subscribed_live_and_the_gap_comes_from_rpc() {
    let scenario = lifecycle();
    let txs = &scenario.txs;
    let expected = reference_rows(txs).await;
    // The indexer ran before: the first 3 are written with the cursor.
    let prefix = 3;
    let cursor = Cursor { slot: txs[prefix - 1].slot, signature: Some(txs[prefix - 1].signature.clone()) };
    let db = TestDb::new().await;
    Ingest::default().write_batch(&db.pool, "yellowstone", &decode_all(&txs[..prefix]), Some(&cursor)).await.unwrap();

    // Only RPC has the middle; the gRPC server (no replay) streams the rest, live.
    let live_from = txs.len() / 2;
    let server = GeyserReplay::new(100_000).with_ping_interval(Duration::from_millis(100)).without_replay();
    let (endpoint, _stop) = geyser(server.clone()).await;
    let node = RpcServer::new();
    node.extend(&scenario.recorded);
    let filler = rpc(&node).await;
    let source = YellowstoneSource::with_gap_filler(config(&endpoint, Duration::from_secs(30)), filler);
    let task = tokio::spawn(pipeline::run(
        db.pool.clone(),
        Ingest::default(),
        source,
        Arc::new(IndexerMetrics::default()),
        PipelineConfig { batch_size: 4, ..PipelineConfig::default() },
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server.subscriptions() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for recorded in &scenario.recorded[live_from..] {
        publish(&server, recorded);
    }
    wait_for_rows(&db.pool, &expected, "gap from RPC, the rest live").await;
    assert_eq!(server.subscriptions(), 1, "subscribed once, without from_slot");
    assert!(node.calls("getTransaction") >= (live_from - prefix) as u64);
    task.abort();
}
