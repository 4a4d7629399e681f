//! Crash safety of the real binary: `vault-indexer stream` follows the replay server and is
//! killed with SIGKILL at random moments, many times, then restarted; the rows must equal a
//! direct write of the same transactions - nothing lost, nothing doubled.

use vault_devkit::test_db as common;
mod indexing;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::TestDb;
use indexing::*;
use vault_devkit::geyser_replay::GeyserReplay;

fn spawn_indexer(database_url: &str, endpoint: &str, config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vault-indexer"))
        .args(["--config", config.to_str().unwrap(), "stream"])
        .env("DATABASE_URL", database_url)
        .env("VAULT_SOURCE", "grpc")
        .env("VAULT_GRPC_ENDPOINT", endpoint)
        .env("VAULT_START_SLOT", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start vault-indexer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_and_doubles_nothing() {
    // Several lifecycles, merged in slot order, so there is a stream worth interrupting.
    let mut recorded = vec![];
    for _ in 0..4 {
        recorded.extend(lifecycle().recorded);
    }
    recorded.sort_by_key(|r| r.slot);
    let txs: Vec<_> = recorded.iter().map(chain_tx).collect();
    let expected = reference_rows(&txs).await;

    let server = GeyserReplay::new(1_000_000).with_ping_interval(Duration::from_millis(200));
    let (addr, _) = server.clone().serve("127.0.0.1:0".parse().unwrap(), std::future::pending()).await.unwrap();
    let endpoint = format!("http://{addr}");
    let db = TestDb::new().await;
    // Small batches: many commits, so kills land between, inside and after them.
    let config = std::env::temp_dir().join(format!("vault-indexer-crash-{}.toml", std::process::id()));
    std::fs::write(&config, "batch_size = 2\n").unwrap();

    // Publish while the indexer keeps dying, then let one instance finish.
    let mut seed = 0x5eed_u64 ^ u64::from(std::process::id());
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut published = 0;
    let mut kills = 0;
    let mut cursors_at_kill = std::collections::BTreeSet::new();
    while published < recorded.len() || kills < 12 {
        let mut child = spawn_indexer(&db.url(), &endpoint, &config);
        for r in recorded.iter().skip(published).take(1 + (next() % 8) as usize) {
            server.publish(geyser_update(r));
            server.publish_block_meta(r.slot, Some(r.unix_timestamp));
            published += 1;
        }
        tokio::time::sleep(Duration::from_millis(30 + next() % 400)).await;
        child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
        child.wait().unwrap();
        kills += 1;
        let at = vault_indexer::ingest::load_cursor(&db.pool, "yellowstone").await.unwrap().map(|c| c.slot);
        cursors_at_kill.insert(at);
    }
    let mut last = spawn_indexer(&db.url(), &endpoint, &config);
    wait_for_rows(&db.pool, &expected, "after repeated SIGKILLs").await;
    last.kill().unwrap();
    last.wait().unwrap();
    let _ = std::fs::remove_file(&config);

    assert!(kills >= 12);
    // The kills interrupted a stream in progress, not only idle or finished processes.
    let final_slot = recorded.last().unwrap().slot;
    let midway = cursors_at_kill.iter().flatten().filter(|slot| **slot < final_slot).count();
    assert!(midway >= 3, "kills landed mid-stream only at {cursors_at_kill:?}");
}
