//! Indexer benchmark: real transactions of the real program (litesvm), decoded and written by
//! the indexer's write path into a fresh database, against the same rows loaded by a raw COPY.
//! Prints sustained transactions/second, p50/p99 latency from a transaction's arrival to its
//! committed row, and the COPY ceiling as a ratio.
//!
//!   cargo run --release -p vault-devkit --bin vault-indexer-bench -- [transactions]        (scripts/bench-indexer.sh)

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bench::run().await
}

/// `vault-indexer-bench [TRANSACTIONS]` against DATABASE_URL's server.
#[derive(clap::Parser)]
#[command(name = "vault-indexer-bench", about = "Measures the indexer's write path against a raw COPY")]
struct Cli {
    /// Transactions of the real program to execute and index.
    #[arg(default_value_t = 10_000)]
    transactions: usize,
    /// The PostgreSQL server to make the benchmark's database on (scripts/postgres.sh start prints one).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

mod bench {
    use super::Cli;
    use std::time::{Duration, Instant};

    use anyhow::Context;
    use ephemeral_vault_testkit::*;
    use solana_signer::Signer;
    use sqlx::migrate::MigrateDatabase;
    use sqlx::{Connection, PgConnection, Postgres};
    use vault_devkit::recorded::chain_tx;
    use vault_indexer::chain_tx::ChainTx;
    use vault_indexer::decode::decode_all;
    use vault_indexer::ingest::Ingest;

    const BATCH: usize = 256;

    /// `count` transactions: sessions opened, then trades (one in ten refused) round-robin.
    fn generate(count: usize) -> Vec<ChainTx> {
        let mut w = VaultWorld::new();
        w.svm = std::mem::take(&mut w.svm).with_sigverify(false);
        let venue = w.new_wallet(LAMPORTS_PER_SOL);
        let sessions: Vec<TestSession> = (0..32)
            .map(|_| {
                let s = w.sol_session();
                let mut args = session_args(s.session.session_id);
                args.approved_amount = 90 * LAMPORTS_PER_SOL;
                args.per_trade_cap = LAMPORTS_PER_SOL;
                args.initial_deposit = 90 * LAMPORTS_PER_SOL;
                args.duration_secs = 86_400;
                w.create(&s, args).expect("create");
                s
            })
            .collect();
        let mut trade_id = vec![0u64; sessions.len()];
        let mut i = 0;
        while w.history.len() < count {
            let k = i % sessions.len();
            trade_id[k] += 1;
            let amount = if i % 10 == 9 { 2 * LAMPORTS_PER_SOL } else { 1_000 + (i as u64 % 5_000) };
            let _ = w.trade(&sessions[k], &sessions[k].delegate, venue.pubkey(), None, trade_id[k], amount, 10);
            i += 1;
        }
        w.history.iter().filter(|r| r.mentions(&ephemeral_vault::ID)).map(chain_tx).collect()
    }

    async fn fresh_database(admin: &str, name: &str) -> anyhow::Result<String> {
        let (base, _) = admin.rsplit_once('/').context("DATABASE_URL has no database name")?;
        let url = format!("{base}/{name}");
        if Postgres::database_exists(&url).await? {
            Postgres::drop_database(&url).await?;
        }
        Postgres::create_database(&url).await?;
        let pool = vault_db::connect(&url).await?;
        vault_db::migrate(&pool).await?;
        pool.close().await;
        Ok(url)
    }

    fn percentile(sorted: &[Duration], p: f64) -> Duration {
        sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
    }

    pub async fn run() -> anyhow::Result<()> {
        let cli = <Cli as clap::Parser>::parse();
        let (count, admin) = (cli.transactions, cli.database_url);
        eprintln!("executing {count} transactions of the real program in litesvm...");
        let txs = generate(count);

        // The indexer's write path: batches as the pipeline forms them, arrival = when a
        // transaction is handed to the writer, latency = until its batch is committed.
        let url = fresh_database(&admin, "vault_bench_indexer").await?;
        let pool = vault_db::connect(&url).await?;
        let ingest = Ingest::default();
        let mut latencies = Vec::with_capacity(txs.len());
        let started = Instant::now();
        for batch in txs.chunks(BATCH) {
            let arrived: Vec<Instant> = batch.iter().map(|_| Instant::now()).collect();
            let newest = batch
                .last()
                .map(|tx| vault_indexer::sources::Cursor { slot: tx.slot, signature: Some(tx.signature.clone()) });
            ingest.write_batch(&pool, "bench", &decode_all(batch), newest.as_ref()).await?;
            let committed = Instant::now();
            latencies.extend(arrived.iter().map(|a| committed - *a));
        }
        let indexer_time = started.elapsed();
        latencies.sort();
        let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM vault_transactions").fetch_one(&pool).await?;

        // The ceiling: the same sessions and transactions rows, COPYed into an empty schema.
        let mut source = PgConnection::connect(&url).await?;
        let sessions_columns = "session_id, parent_wallet, ephemeral_wallet, vault_pda, mint, created_at, expires_at, last_activity, approved_amount, per_trade_cap, status";
        let tx_columns = "session_id, transaction_signature, instruction_index, transaction_type, amount, fee_amount, trade_id, status, confirmed_at, block_slot, metadata, error_message";
        let mut data = vec![];
        for (table, columns) in [("ephemeral_sessions", sessions_columns), ("vault_transactions", tx_columns)] {
            let sql = format!("COPY (SELECT {columns} FROM {table}) TO STDOUT");
            let mut out = source.copy_out_raw(&sql).await?;
            let mut bytes = vec![];
            use futures::StreamExt;
            while let Some(chunk) = out.next().await {
                bytes.extend_from_slice(&chunk?);
            }
            data.push((table, columns, bytes));
        }
        drop(source);
        let copy_url = fresh_database(&admin, "vault_bench_copy").await?;
        let mut target = PgConnection::connect(&copy_url).await?;
        let copy_started = Instant::now();
        for (table, columns, bytes) in &data {
            let mut copy = target.copy_in_raw(&format!("COPY {table} ({columns}) FROM STDIN")).await?;
            copy.send(bytes.as_slice()).await?;
            copy.finish().await?;
        }
        let copy_time = copy_started.elapsed();

        let tps = txs.len() as f64 / indexer_time.as_secs_f64();
        println!(
            "indexer write path ({} transactions -> {rows} vault_transactions rows, batches of {BATCH}):",
            txs.len()
        );
        println!("  sustained      {tps:.0} transactions/s ({:.2} s)", indexer_time.as_secs_f64());
        println!("  latency p50    {:.1} ms", percentile(&latencies, 0.50).as_secs_f64() * 1e3);
        println!("  latency p99    {:.1} ms", percentile(&latencies, 0.99).as_secs_f64() * 1e3);
        println!("raw COPY of the same session and transaction rows: {:.3} s", copy_time.as_secs_f64());
        println!("  indexer / COPY time ratio: {:.1}x", indexer_time.as_secs_f64() / copy_time.as_secs_f64());
        pool.close().await;
        Ok(())
    }
}
