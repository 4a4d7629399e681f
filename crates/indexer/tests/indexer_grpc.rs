//! The streaming path end to end over the real Yellowstone protocol: the replay server serves
//! transactions the real program executed, the real yellowstone-grpc-client subscribes, and the
//! pipeline writes PostgreSQL. Rows must equal those of a direct write, across server pings,
//! disconnects and an indexer restart that resumes from its cursor with `from_slot`.

use vault_devkit::test_db as common;
mod indexing;

use std::sync::Arc;
use std::time::Duration;

use common::TestDb;
use indexing::*;
use vault_devkit::geyser_replay::GeyserReplay;
use vault_indexer::chain_tx::Commitment;
use vault_indexer::ingest::Ingest;
use vault_indexer::metrics::IndexerMetrics;
use vault_indexer::pipeline::{self, PipelineConfig};
use vault_indexer::sources::yellowstone::{YellowstoneConfig, YellowstoneSource};

async fn start_server(window_slots: u64) -> (GeyserReplay, String, tokio::sync::oneshot::Sender<()>) {
    let server = GeyserReplay::new(window_slots).with_ping_interval(Duration::from_millis(150));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, _) = server
        .clone()
        .serve("127.0.0.1:0".parse().unwrap(), async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    (server, format!("http://{addr}"), stop)
}

/// A transaction and the end of its block, as a validator's plugin would send them.
fn publish(server: &GeyserReplay, recorded: &ephemeral_vault_testkit::Recorded) {
    server.publish(geyser_update(recorded));
    server.publish_block_meta(recorded.slot, Some(recorded.unix_timestamp));
}

fn indexer(pool: sqlx::PgPool, endpoint: &str) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    indexer_with_metrics(pool, endpoint, Arc::new(IndexerMetrics::default()))
}

fn indexer_with_metrics(
    pool: sqlx::PgPool,
    endpoint: &str,
    metrics: Arc<IndexerMetrics>,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let mut config = YellowstoneConfig::new(endpoint, Commitment::Confirmed);
    config.start_slot = Some(0);
    config.backoff_base = Duration::from_millis(20);
    config.backoff_cap = Duration::from_millis(200);
    let pipeline_config = PipelineConfig { batch_size: 4, ..PipelineConfig::default() };
    tokio::spawn(pipeline::run(pool, Ingest::default(), YellowstoneSource::new(config), metrics, pipeline_config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_through_pings_and_disconnects_into_the_same_rows() {
    let scenario = lifecycle();
    let expected = reference_rows(&scenario.txs).await;

    let (server, endpoint, _stop) = start_server(100_000).await;
    let db = TestDb::new().await;
    let metrics = Arc::new(IndexerMetrics::default());
    let (metrics_addr, _) = metrics.clone().serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let task = indexer_with_metrics(db.pool.clone(), &endpoint, metrics);
    let half = scenario.recorded.len() / 2;
    for recorded in &scenario.recorded[..half] {
        publish(&server, recorded);
    }
    wait_for_cursor(&db.pool, "yellowstone", scenario.recorded[half - 1].slot).await;
    // Several server pings have passed; the subscription must still be intact.
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.disconnect_all();
    for recorded in &scenario.recorded[half..] {
        publish(&server, recorded);
    }
    wait_for_cursor(&db.pool, "yellowstone", scenario.recorded.last().unwrap().slot).await;
    task.abort();
    assert!(server.subscriptions() >= 2, "the client resubscribed after the disconnect");
    // The Prometheus endpoint reports what was seen and written.
    let text = reqwest::get(format!("http://{metrics_addr}/metrics")).await.unwrap().text().await.unwrap();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
            .parse()
            .unwrap()
    };
    // Replays after the reconnect are written again (idempotently), so at least every one.
    assert!(value("vault_indexer_transactions_written_total") >= scenario.recorded.len() as u64);
    assert_eq!(value("vault_indexer_transactions_skipped_total"), 0);
    assert_eq!(value("vault_indexer_current_slot"), scenario.recorded.last().unwrap().slot);
    assert_eq!(value("vault_indexer_lag_slots"), 0);
    assert_same_rows(&dump(&db.pool).await, &expected, "streamed over gRPC");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_indexer_resumes_from_its_cursor() {
    let scenario = lifecycle();
    let expected = reference_rows(&scenario.txs).await;

    let (server, endpoint, _stop) = start_server(100_000).await;
    let db = TestDb::new().await;
    let third = scenario.recorded.len() / 3;
    for recorded in &scenario.recorded[..third] {
        publish(&server, recorded);
    }
    let first = indexer(db.pool.clone(), &endpoint);
    wait_for_cursor(&db.pool, "yellowstone", scenario.recorded[third - 1].slot).await;
    first.abort();
    let _ = first.await;
    // Published while no indexer runs: only from_slot replay can deliver these.
    for recorded in &scenario.recorded[third..] {
        publish(&server, recorded);
    }
    let second = indexer(db.pool.clone(), &endpoint);
    wait_for_cursor(&db.pool, "yellowstone", scenario.recorded.last().unwrap().slot).await;
    second.abort();
    assert_same_rows(&dump(&db.pool).await, &expected, "resumed from the cursor");
}
