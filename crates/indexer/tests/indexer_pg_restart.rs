//! PostgreSQL restarted under a streaming indexer: the writer keeps its batch, retries with
//! backoff while the server is down, and continues when it is back - same rows as a direct write.
//!
//! Needs the project's own server (scripts/test.sh sets VAULT_PG_RESTARTABLE=1 when it started
//! it); against an external DATABASE_URL it says so and does nothing.

use vault_devkit::test_db as common;
mod indexing;

use std::process::Command;
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

fn postgres(command: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/postgres.sh");
    let status = Command::new("bash").args([script, command]).status().expect("run scripts/postgres.sh");
    assert!(status.success(), "scripts/postgres.sh {command} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indexer_waits_for_a_restarted_postgres_and_continues() {
    if std::env::var("VAULT_PG_RESTARTABLE").as_deref() != Ok("1") {
        eprintln!("not run: DATABASE_URL is not the project's own PostgreSQL (scripts/test.sh starts one)");
        return;
    }
    let scenario = lifecycle();
    let expected = reference_rows(&scenario.txs).await;

    let server = GeyserReplay::new(1_000_000).with_ping_interval(Duration::from_millis(200));
    let (addr, _) = server.clone().serve("127.0.0.1:0".parse().unwrap(), std::future::pending()).await.unwrap();
    let db = TestDb::new().await;
    let metrics = Arc::new(IndexerMetrics::default());
    let mut config = YellowstoneConfig::new(format!("http://{addr}"), Commitment::Confirmed);
    config.start_slot = Some(0);
    let task = tokio::spawn(pipeline::run(
        db.pool.clone(),
        Ingest::default(),
        YellowstoneSource::new(config),
        metrics.clone(),
        PipelineConfig { batch_size: 2, ..PipelineConfig::default() },
    ));
    let half = scenario.recorded.len() / 2;
    let publish = |r: &ephemeral_vault_testkit::Recorded| {
        server.publish(geyser_update(r));
        server.publish_block_meta(r.slot, Some(r.unix_timestamp));
    };
    scenario.recorded[..half].iter().for_each(publish);
    wait_for_cursor(&db.pool, "yellowstone", scenario.recorded[half - 1].slot).await;

    postgres("stop");
    scenario.recorded[half..].iter().for_each(publish);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // While the server is down nothing more commits (the writer holds its batch and waits for a
    // connection or retries), whatever the source delivers meanwhile.
    let committed_during_outage = metrics.current_slot.load(std::sync::atomic::Ordering::Relaxed);
    postgres("server-start");

    wait_for_cursor(&db.pool, "yellowstone", scenario.recorded.last().unwrap().slot).await;
    task.abort();
    assert!(
        committed_during_outage < scenario.recorded.last().unwrap().slot,
        "everything was committed before the outage; the test did not exercise it"
    );
    assert_same_rows(&dump(&db.pool).await, &expected, "across a PostgreSQL restart");
}
