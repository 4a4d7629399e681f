//! The Yellowstone source's RPC gap filling against a live node: an indexer whose committed
//! cursor is older than the gRPC server's replay window gets the transactions in between from a
//! real solana-test-validator over JSON-RPC (`impl GapFiller for RpcSource`), the rest over gRPC,
//! and ends with exactly the rows of a direct write of every transaction.
//!
//! The chain is the main job's scenario on the validator. Its transactions are split three ways:
//! - the first few are written directly with the "yellowstone-finalized" cursor (an indexer that ran once);
//! - the middle ones (the gap) exist only on the validator: never published to the gRPC server;
//! - the rest are published to a replay server (Yellowstone's protocol, `GeyserReplay`) built
//!   from the validator's own `getTransaction` answers, whose window starts after the gap; the
//!   last slots only once the indexer is streaming.
//!
//! A control run with no gap filler on the same start must not get past the stored cursor.
//! Without a validator (`scripts/validator.sh find` fails) the test says so and passes.

use vault_devkit::test_db as common;
mod indexing;
#[path = "local_validator/mod.rs"]
mod local_validator;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestDb;
use indexing::*;
use local_validator::LocalValidator;
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::config::RpcTransactionConfig;
use solana_signature::Signature;
use solana_transaction_error::TransactionError;
use solana_transaction_status_client_types::UiTransactionEncoding;
use sqlx::PgPool;
use tokio::sync::mpsc;
use vault_devkit::geyser_replay::GeyserReplay;
use vault_devkit::scenario::{self, RpcScenarioChain, ScenarioOptions};
use vault_devkit::summary::Summary;
use vault_indexer::chain_tx::{ChainTx, Commitment};
use vault_indexer::decode::decode_all;
use vault_indexer::ingest::{load_cursor, Ingest};
use vault_indexer::metrics::IndexerMetrics;
use vault_indexer::pipeline::{self, PipelineConfig};
use vault_indexer::sources::rpc::{chain_tx_from_rpc, RpcConfig, RpcSource};
use vault_indexer::sources::yellowstone::convert::{chain_tx_from_update, update_from_chain_tx};
use vault_indexer::sources::yellowstone::{GapFiller, YellowstoneConfig, YellowstoneSource};
use vault_indexer::sources::{Cursor, SourceItem, TransactionSource};
use yellowstone_grpc_proto::prelude::SubscribeUpdateTransaction;

/// Transactions written directly before the indexer starts (its stored cursor is the last one).
const PREFIX: usize = 4;
/// Slots published to the gRPC server only after the indexer is streaming.
const LIVE_SLOTS: usize = 2;
/// The Yellowstone source's cursor row (confirmed commitment).
/// The whole test reads at `finalized` (after waiting for the chain to root the scenario): the
/// RPC listing marks finalized transactions finalized, so with `confirmed` the paths would
/// disagree on status by when each happened to read.
const COMMITMENT: Commitment = Commitment::Finalized;
const SOURCE: &str = "yellowstone-finalized";

/// The RPC gap filler, recording what it was asked to fill.
struct RecordingFiller {
    rpc: RpcSource,
    calls: Arc<Mutex<Vec<(Cursor, u64)>>>,
}

impl GapFiller for RecordingFiller {
    async fn fill(&mut self, from: &Cursor, to_slot: u64, out: &mpsc::Sender<SourceItem>) -> anyhow::Result<()> {
        self.calls.lock().unwrap().push((from.clone(), to_slot));
        self.rpc.fill(from, to_slot, out).await
    }
}

/// One of the validator's transactions as a geyser plugin would send it: `getTransaction`
/// (base64) for the signed message's header and signature and the runtime's error value.
async fn geyser_update_from_node(client: &RpcClient, tx: &ChainTx) -> SubscribeUpdateTransaction {
    let signature: Signature = tx.signature.parse().expect("signature");
    let encoded = client
        .get_transaction_with_config(
            &signature,
            RpcTransactionConfig {
                encoding: Some(UiTransactionEncoding::Base64),
                commitment: Some(CommitmentConfig::confirmed()),
                max_supported_transaction_version: Some(0),
            },
        )
        .await
        .expect("getTransaction");
    // The same answer the RPC source decoded (a sanity check of this helper, not of the indexer).
    assert_eq!(&chain_tx_from_rpc(&encoded, COMMITMENT).expect("decodes"), tx);
    let transaction = encoded.transaction.transaction.decode().expect("a base64 transaction");
    let header = transaction.message.header();
    let err: Option<TransactionError> = encoded.transaction.meta.as_ref().expect("meta").err.clone().map(Into::into);
    assert_eq!(err.is_some(), tx.failure.is_some());
    let lookups = vault_devkit::recorded::proto_lookups(&transaction.message);
    let update = update_from_chain_tx(
        tx,
        transaction.signatures[0].as_ref(),
        (header.num_required_signatures, header.num_readonly_signed_accounts, header.num_readonly_unsigned_accounts),
        lookups.as_deref(),
        err.as_ref(),
    )
    .expect("encodes");
    // Over gRPC it must read back as the same transaction (block time comes with the block meta).
    let mut back = chain_tx_from_update(&update, COMMITMENT).expect("decodes");
    back.block_time = tx.block_time;
    back.index_in_block = tx.index_in_block;
    assert_eq!(&back, tx, "the gRPC form of {} differs from the RPC one", tx.signature);
    update
}

/// Publishes one slot's transactions and then its block meta (which releases them, with the
/// block time, in the source).
fn publish_slot(server: &GeyserReplay, slot: &[(ChainTx, SubscribeUpdateTransaction)]) {
    for (_, update) in slot {
        server.publish(update.clone());
    }
    let (tx, _) = slot.last().expect("a non-empty slot");
    server.publish_block_meta(tx.slot, tx.block_time);
}

/// Which of `signatures` have rows in vault_transactions.
async fn signatures_with_rows(pool: &PgPool, signatures: &[String]) -> BTreeSet<String> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT transaction_signature FROM vault_transactions WHERE transaction_signature = ANY($1)",
    )
    .bind(signatures)
    .fetch_all(pool)
    .await
    .expect("vault_transactions");
    rows.into_iter().map(|(s,)| s).collect()
}

fn yellowstone_config(endpoint: &str) -> YellowstoneConfig {
    let mut config = YellowstoneConfig::new(endpoint, COMMITMENT);
    config.backoff_base = Duration::from_millis(20);
    config.backoff_cap = Duration::from_millis(300);
    config
}

/// The indexer's pipeline for `source` into `pool`, as the stream command runs it.
fn indexer<S: TransactionSource>(pool: &PgPool, source: S) -> impl std::future::Future<Output = anyhow::Result<()>> {
    pipeline::run(
        pool.clone(),
        Ingest::default(),
        source,
        Arc::new(IndexerMetrics::default()),
        PipelineConfig { batch_size: 4, ..PipelineConfig::default() },
    )
}

/// Runs `indexer` on a spawned task (the pipeline, gap filler included, is `Send`) while
/// `driver` runs; the indexer must outlive the driver, and is stopped after it.
async fn alongside<T>(
    indexer: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    driver: impl std::future::Future<Output = T>,
) -> T {
    let mut task = tokio::spawn(indexer);
    let done = tokio::select! {
        ended = &mut task => panic!("the indexer ended: {ended:?}"),
        done = driver => done,
    };
    task.abort();
    let _ = task.await;
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_older_than_the_grpc_window_is_filled_from_the_validator_over_rpc() {
    let _ = tracing_subscriber::fmt().with_env_filter("vault_indexer=info").with_test_writer().try_init();
    let t0 = Instant::now();
    let Some((validator, admin)) = LocalValidator::start_with_new_admin() else { return };
    let url = validator.rpc_url.clone();
    eprintln!("[{:>6.1?}] validator up at {url}", t0.elapsed());

    // 1. Realistic program transactions over many slots.
    let options = ScenarioOptions { short_session_secs: 20, ..ScenarioOptions::default() };
    let implied =
        scenario::run(&RpcScenarioChain::new(&url), &admin, &options, &|line| eprintln!("  scenario: {line}"))
            .await
            .expect("scenario");
    eprintln!("[{:>6.1?}] scenario done", t0.elapsed());

    // 2. Every program transaction, oldest first, and the rows a direct write of them gives.
    let confirmed = RpcSource::new(RpcConfig::new(&url, Commitment::Confirmed));
    let landed = confirmed.signatures_between(None, None, None).await.expect("getSignaturesForAddress").len();
    let rpc = RpcSource::new(RpcConfig::new(&url, COMMITMENT));
    let finalizing = Instant::now();
    let signatures = loop {
        let finalized = rpc.signatures_between(None, None, None).await.expect("getSignaturesForAddress");
        if finalized.len() >= landed {
            break finalized;
        }
        assert!(finalizing.elapsed() < Duration::from_secs(90), "the chain did not finalize the scenario");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("[{:>6.1?}] all {landed} finalized after {:?}", t0.elapsed(), finalizing.elapsed());
    let mut txs: Vec<ChainTx> = vec![];
    for listed in &signatures {
        let tx = rpc.fetch(&listed.signature).await.expect("getTransaction");
        assert_eq!((tx.signature.as_str(), tx.slot), (listed.signature.to_string().as_str(), listed.slot));
        txs.push(tx);
    }
    assert!(txs.len() >= 30, "the scenario put only {} program transactions on the chain", txs.len());
    assert!(txs.windows(2).all(|w| w[0].slot <= w[1].slot), "oldest first");
    assert!(txs.iter().any(|tx| tx.failure.is_some()), "refused transactions landed, failed");
    assert!(txs.iter().all(|tx| tx.block_time.is_some()), "the node reports block times");
    let reference = TestDb::new().await;
    Ingest::default().write_batch(&reference.pool, "test", &decode_all(&txs), None).await.expect("direct write");
    let expected = dump(&reference.pool).await;
    // Complete and rightly decoded: the rows are what the scenario's own tally implies.
    let summary = Summary::load(&reference.pool).await.expect("summary");
    assert_eq!(summary.transactions_by_outcome(), implied.transactions, "{summary}");
    let alerts: Vec<&str> = summary.alerts_by_type.keys().map(String::as_str).collect();
    assert_eq!(alerts, implied.alerts, "{summary}");
    let sessions: i64 = summary.sessions_by_status.values().sum();
    assert_eq!(
        sessions as usize,
        implied.to_clean.len() + implied.left_active.len() + implied.cleaned_in_scenario,
        "{summary}"
    );
    eprintln!(
        "[{:>6.1?}] {} program transactions in slots {}..={}",
        t0.elapsed(),
        txs.len(),
        txs[0].slot,
        txs.last().unwrap().slot
    );

    // 3. Where the indexer stopped, and where the gRPC server's window starts: at the first slot
    //    boundary from the middle of the chain on.
    let cursor = Cursor { slot: txs[PREFIX - 1].slot, signature: Some(txs[PREFIX - 1].signature.clone()) };
    let split = (txs.len() / 2..txs.len())
        .find(|&i| txs[i].slot > txs[i - 1].slot && txs[i - 1].slot > cursor.slot)
        .expect("a slot boundary after the cursor");
    let window_start = txs[split].slot;
    let gap = &txs[PREFIX..split];
    let mut slots: Vec<Vec<(ChainTx, SubscribeUpdateTransaction)>> = vec![];
    let node = vault_chain::rpc::client(&url, std::time::Duration::from_secs(30), CommitmentConfig::confirmed());
    for tx in &txs[split..] {
        let update = geyser_update_from_node(&node, tx).await;
        match slots.last_mut() {
            Some(slot) if slot[0].0.slot == tx.slot => slot.push((tx.clone(), update)),
            _ => slots.push(vec![(tx.clone(), update)]),
        }
    }
    assert!(slots.len() > LIVE_SLOTS, "the window holds {} slots", slots.len());
    assert!(!gap.is_empty() && gap.iter().all(|tx| tx.slot >= cursor.slot && tx.slot < window_start));
    eprintln!(
        "[{:>6.1?}] cursor at slot {} (after {PREFIX} txs); gap: {} txs in slots {}..{window_start}; \
         gRPC window: {} txs in {} slots from {window_start}",
        t0.elapsed(),
        cursor.slot,
        gap.len(),
        gap[0].slot,
        txs.len() - split,
        slots.len()
    );

    // The stream database: an indexer that committed the first transactions and its cursor.
    let stream = TestDb::new().await;
    let control = TestDb::new().await;
    for db in [&stream, &control] {
        Ingest::default()
            .write_batch(&db.pool, SOURCE, &decode_all(&txs[..PREFIX]), Some(&cursor))
            .await
            .expect("prefix");
        assert_eq!(load_cursor(&db.pool, SOURCE).await.unwrap(), Some(cursor.clone()));
    }
    let prefix_rows = dump(&stream.pool).await;
    assert_ne!(prefix_rows, expected);

    // 4. A replay server whose window is only the last part of the chain.
    let window_slots = txs.last().unwrap().slot - window_start;
    let server = GeyserReplay::new(window_slots).with_ping_interval(Duration::from_millis(500));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, _) = server
        .clone()
        .serve("127.0.0.1:0".parse().unwrap(), async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    let endpoint = format!("http://{addr}");
    let (early, live) = slots.split_at(slots.len() - LIVE_SLOTS);
    for slot in early {
        publish_slot(&server, slot);
    }
    assert_eq!(server.first_available(), Some(window_start));
    assert!(window_start > cursor.slot, "the stored cursor is older than the replay window");
    let published: BTreeSet<&str> = slots.iter().flatten().map(|(tx, _)| tx.signature.as_str()).collect();
    assert!(gap.iter().all(|tx| !published.contains(tx.signature.as_str())), "the gap never went to the gRPC server");

    // Control: without a gap filler the indexer must not get past its cursor (it would have to
    // skip the gap silently), so the rows below can only come from RPC.
    let mut patient = yellowstone_config(&endpoint);
    (patient.backoff_base, patient.backoff_cap) = (Duration::from_millis(300), Duration::from_secs(1));
    alongside(indexer(&control.pool, YellowstoneSource::new(patient)), tokio::time::sleep(Duration::from_secs(3)))
        .await;
    assert_same_rows(&dump(&control.pool).await, &prefix_rows, "no gap filler: nothing after the cursor");
    assert_eq!(load_cursor(&control.pool, SOURCE).await.unwrap(), Some(cursor.clone()));
    assert_eq!(server.subscriptions(), 0, "no subscription without the gap filled first");

    // 5. The Yellowstone source with the RPC gap filler, against the stream database.
    let calls = Arc::new(Mutex::new(vec![]));
    let filler = RecordingFiller { rpc: RpcSource::new(RpcConfig::new(&url, COMMITMENT)), calls: calls.clone() };
    let indexing_started = Instant::now();
    let with_rpc = YellowstoneSource::with_gap_filler(yellowstone_config(&endpoint), filler);
    alongside(indexer(&stream.pool, with_rpc), async {
        wait_for_cursor(&stream.pool, SOURCE, early.last().unwrap()[0].0.slot).await;
        eprintln!("[{:>6.1?}] gap filled and window replayed in {:?}", t0.elapsed(), indexing_started.elapsed());
        for slot in live {
            publish_slot(&server, slot);
        }
        wait_for_rows(&stream.pool, &expected, "gap from RPC, window and live over gRPC").await;
        wait_for_cursor(&stream.pool, SOURCE, txs.last().unwrap().slot).await;
        eprintln!("[{:>6.1?}] same rows as the direct write after {:?}", t0.elapsed(), indexing_started.elapsed());
    })
    .await;
    let _ = stop.send(());

    // The gap was asked of RPC, from the stored cursor to the window's first slot.
    let calls = calls.lock().unwrap().clone();
    assert!(!calls.is_empty(), "the gap filler was never called");
    assert!(calls.iter().all(|call| *call == (cursor.clone(), window_start)), "{calls:?}");
    assert!(server.subscriptions() >= 1);
    // And the gap's transactions are in: the same rows as in the direct write.
    let gap_signatures: Vec<String> = gap.iter().map(|tx| tx.signature.clone()).collect();
    let in_reference = signatures_with_rows(&reference.pool, &gap_signatures).await;
    assert!(!in_reference.is_empty(), "the gap holds vault transactions");
    assert_eq!(signatures_with_rows(&stream.pool, &gap_signatures).await, in_reference);
    assert_same_rows(&dump(&stream.pool).await, &expected, "gap filled from RPC");
    drop(validator);
    eprintln!("[{:>6.1?}] done ({} gap fills)", t0.elapsed(), calls.len());
}
