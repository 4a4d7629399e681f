//! Two indexers, one writer (issue 13, part 4), with the real binary.
//!
//! Two `vault-indexer stream` processes on one database: one holds the writer lock (a
//! PostgreSQL advisory lock on its own connection), the other stands by - each says so in its
//! metrics. The chain grows while they run (the JSON-RPC test server gets the lifecycle's
//! transactions one by one); half way the writer is killed with SIGKILL, the standby must take
//! over within a few seconds from the stored cursor, and the rows must equal those of a single
//! clean run of the binary: nothing lost, nothing doubled.

use vault_devkit::test_db as common;
mod indexing;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDb;
use indexing::*;
use vault_devkit::rpc_server::RpcServer;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Indexer {
    child: Child,
    metrics: String,
}

impl Drop for Indexer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(database_url: &str, rpc_url: &str) -> Indexer {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_vault-indexer"))
        .args(["stream", "--source", "rpc", "--rpc-url", rpc_url, "--metrics-addr", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vault-indexer");
    Indexer { child, metrics: format!("http://127.0.0.1:{port}/metrics") }
}

/// "writer", "standby", or None while the metrics are not served yet.
async fn role(indexer: &Indexer) -> Option<&'static str> {
    let text = reqwest::get(&indexer.metrics).await.ok()?.text().await.ok()?;
    for role in ["writer", "standby"] {
        if text.contains(&format!("vault_indexer_role{{role=\"{role}\"}} 1\n")) {
            return Some(role);
        }
    }
    None
}

async fn wait_for_role(indexer: &Indexer, want: &str, within: Duration) -> Duration {
    let started = Instant::now();
    while role(indexer).await != Some(want) {
        assert!(started.elapsed() < within, "not {want} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

async fn rpc_node() -> (RpcServer, String) {
    let server = RpcServer::new();
    let (addr, _) = server.clone().serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (server, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_a_killed_writer_with_no_row_lost_or_doubled() {
    let scenario = lifecycle();
    let last = scenario.txs.last().unwrap().slot;

    // A single clean run of the binary, on the whole chain.
    let (clean_node, clean_url) = rpc_node().await;
    clean_node.extend(&scenario.recorded);
    let clean = TestDb::new().await;
    let single = start(&clean.url(), &clean_url);
    wait_for_role(&single, "writer", Duration::from_secs(30)).await;
    wait_for_cursor(&clean.pool, "rpc", last).await;
    drop(single);
    let clean_rows = dump(&clean.pool).await;
    assert_same_rows(&clean_rows, &reference_rows(&scenario.txs).await, "the clean run");

    // Two processes on one database; the chain grows one transaction every 150 ms.
    let (node, url) = rpc_node().await;
    let db = TestDb::new().await;
    let a = start(&db.url(), &url);
    wait_for_role(&a, "writer", Duration::from_secs(30)).await;
    let b = start(&db.url(), &url);
    wait_for_role(&b, "standby", Duration::from_secs(30)).await;
    assert_eq!(role(&a).await, Some("writer"), "one writer");
    let half = scenario.recorded.len() / 2;
    let feed = {
        let (node, recorded) = (node.clone(), scenario.recorded.clone());
        tokio::spawn(async move {
            for r in &recorded {
                node.extend([r]);
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    wait_for_cursor(&db.pool, "rpc", scenario.txs[half].slot).await;

    // kill -9 the writer mid-stream.
    let (mut a, b) = (a, b);
    a.child.kill().expect("SIGKILL");
    a.child.wait().unwrap();
    let took_over = wait_for_role(&b, "writer", Duration::from_secs(10)).await;
    eprintln!("standby became the writer {took_over:?} after the SIGKILL");
    assert!(took_over < Duration::from_secs(5), "took over after {took_over:?}");
    feed.await.unwrap();
    wait_for_cursor(&db.pool, "rpc", last).await;
    wait_for_rows(&db.pool, &clean_rows, "writer killed, standby took over").await;

    // A writer whose lock connection is cut has lost the lock: it stops at once (exits).
    let mut b = b;
    let (terminated,): (i64,) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = $1::oid
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(i64::from(0x7661_756c_u32))
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(terminated, 1, "one writer lock, on its own connection");
    let cut = Instant::now();
    let status = loop {
        if let Some(status) = b.child.try_wait().unwrap() {
            break status;
        }
        assert!(cut.elapsed() < Duration::from_secs(5), "the writer kept running without its lock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success());
    eprintln!("writer stopped {:?} after its lock connection was cut", cut.elapsed());
}
