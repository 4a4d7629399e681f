//! Indexer benchmark: real transactions of the real program (litesvm), decoded and written by
//! the indexer's write path into fresh databases on DATABASE_URL's server. Prints, every figure
//! measured on this run:
//!
//! 1. the workload: transactions by kind, and how long litesvm took to execute them;
//! 2. saturation: the whole stream through `Ingest::write_batch` in batches, tx/s, round trips
//!    per batch;
//! 3. CPU per transaction of the PostgreSQL cluster and of this process meanwhile;
//! 4. the raw COPY ceiling: the same rows COPYed into another database, and the ratios;
//! 5. hand-over-to-commit latency through the real pipeline, paced at 1,000 tx/s and at
//!    saturation;
//! 6. one durable run (fsync and synchronous_commit on, restored afterwards);
//! 7. checks: the audit chain holds, and a replay of the stream changes no row (exit 1 if not).
//!
//! Targets are printed beside the figures; missing one does not fail the run.
//!
//!   cargo run --release -p vault-devkit --bin vault-indexer-bench -- [transactions]        (scripts/bench-indexer.sh)

mod checks;
mod copy;
mod cpu;
mod db;
mod durable;
mod latency;
mod workload;
mod write;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use ephemeral_vault_testkit::thousands;
use sqlx::PgPool;
use vault_indexer::chain_tx::ChainTx;
use vault_indexer::pipeline::PipelineConfig;

use checks::{Replay, TableReplay};
use copy::CopyRun;
use cpu::{Cluster, CpuUse, TickRate};
use db::{fresh_database, Settings};
use latency::LatencyRun;
use workload::Workload;
use write::{micros_per_tx, WriteRun};

/// Sustained transactions a second the write path should reach at saturation.
const TARGET_TX_PER_SECOND: f64 = 10_000.0;
/// Total CPU per transaction (server + client) at most this many times the raw COPY's.
const TARGET_CPU_RATIO: f64 = 2.5;
/// p99 hand-over-to-commit latency at 1,000 tx/s, at most.
const TARGET_P99_PACED: Duration = Duration::from_millis(100);

/// `vault-indexer-bench [TRANSACTIONS]` against DATABASE_URL's server.
#[derive(clap::Parser)]
#[command(name = "vault-indexer-bench", about = "Measures the indexer's write path against a raw COPY")]
struct Cli {
    /// Transactions of the real program to execute and index.
    #[arg(default_value_t = 200_000)]
    transactions: usize,
    /// The PostgreSQL server to make the benchmark's databases on (scripts/postgres.sh start
    /// prints one). A superuser: the COPY ceiling disables triggers, the durable run uses ALTER SYSTEM.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Transactions per write_batch call in the saturation, replay and durable runs (default: the
    /// pipeline's batch size, which is what it forms at saturation).
    #[arg(long, default_value_t = vault_indexer::pipeline::DEFAULT_BATCH_SIZE)]
    batch: usize,
    /// Hand-overs a second of the paced latency run.
    #[arg(long, default_value_t = 1_000.0)]
    paced_rate: f64,
    /// Seconds the paced latency run lasts (rate x seconds transactions, at most the stream).
    #[arg(long, default_value_t = 30.0)]
    paced_seconds: f64,
    /// Transactions of the durable run (fsync=on, synchronous_commit=on); 0 skips it.
    #[arg(long, default_value_t = 50_000)]
    durable_transactions: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = <Cli as clap::Parser>::parse();
    anyhow::ensure!(cli.transactions > 0 && cli.batch > 0, "transactions and batch must be positive");
    let passed = run(&cli).await?;
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Wall time of each phase, for the closing lines.
#[derive(Default)]
struct Phases(Vec<(&'static str, Duration)>);

impl Phases {
    async fn time<T>(&mut self, name: &'static str, f: impl std::future::Future<Output = T>) -> T {
        let started = Instant::now();
        let out = f.await;
        self.0.push((name, started.elapsed()));
        out
    }
}

/// Every phase in order; true when every check passed.
async fn run(cli: &Cli) -> anyhow::Result<bool> {
    let admin = cli.database_url.as_str();
    let mut phases = Phases::default();
    eprintln!("executing {} transactions of the real program in litesvm...", thousands(cli.transactions as u64));
    let workload = phases.time("workload (litesvm)", async { workload::generate(cli.transactions) }).await;
    print_workload(&workload);
    let txs = &workload.txs;

    let url = fresh_database(admin, "vault_bench_indexer").await?;
    let pool = vault_db::connect(&url).await?;
    let rate = TickRate::read();
    let cluster = Cluster::find(&pool, rate).await?;
    print_cpu_source(cluster.as_ref(), rate);

    eprintln!("saturation run...");
    let settings = Settings::read(&pool).await?;
    let saturation =
        phases.time("saturation (write_batch)", write::write_stream(&pool, txs, cli.batch, cluster.as_ref())).await?;
    print_saturation(&settings, &saturation);
    let decoding = write::decode_only(txs);
    println!(
        "  of which decoding   {:.1} µs/tx (decode_all alone over the same stream, this process)",
        write::micros_per_tx(decoding, txs.len())
    );

    eprintln!("raw COPY ceiling...");
    let copy_url = fresh_database(admin, "vault_bench_copy").await?;
    let copy = phases.time("COPY out + in", copy::copy_ceiling(&pool, &copy_url, cluster.as_ref())).await?;
    print_copy(&settings, &copy, &saturation);

    eprintln!("checks: audit chain, replay...");
    let (breaks, first_break) = checks::audit_chain_breaks(&pool).await?;
    let replay =
        phases.time("replay (write_batch again)", checks::replay(&pool, txs, cli.batch, cluster.as_ref())).await?;
    let passed = print_checks(&settings, breaks, first_break.as_deref(), &replay);
    pool.close().await;

    let paced_count = ((cli.paced_rate * cli.paced_seconds).round() as usize).min(txs.len());
    eprintln!("latency at {} tx/s ({paced_count} transactions)...", cli.paced_rate);
    let paced = phases
        .time("latency, paced", latency_run(admin, "vault_bench_paced", &txs[..paced_count], Some(cli.paced_rate)))
        .await?;
    eprintln!("latency at saturation...");
    let flooded = phases.time("latency, saturation", latency_run(admin, "vault_bench_pipeline", txs, None)).await?;
    print_latency(&paced, &flooded);

    let durable_count = cli.durable_transactions.min(txs.len());
    let durable = if durable_count > 0 {
        eprintln!("durable run ({durable_count} transactions, fsync=on, synchronous_commit=on)...");
        let run = durable_run(admin, &txs[..durable_count], cli.batch, cluster.as_ref());
        let outcome = phases
            .time("durable run", async {
                tokio::select! {
                    outcome = run => outcome,
                    _ = tokio::signal::ctrl_c() => Err(Interrupted.into()),
                }
            })
            .await;
        print_durable(&outcome);
        if let Err(e) = &outcome {
            if e.is::<Interrupted>() {
                // The settings are back (the guard restored them): stop here.
                anyhow::bail!("interrupted during the durable run");
            }
        }
        outcome.ok()
    } else {
        None
    };

    print_summary(&settings, &saturation, &copy, &paced, &flooded, durable.as_ref());
    print_phases(&phases);
    for name in ["vault_bench_copy", "vault_bench_paced", "vault_bench_pipeline", "vault_bench_durable"] {
        db::drop_database(admin, name).await?;
    }
    println!("\nchecks: {}", if passed { "PASS" } else { "FAIL" });
    Ok(passed)
}

/// A latency run with the pipeline's default configuration into fresh database `name`.
async fn latency_run(
    admin: &str,
    name: &str,
    txs: &[ChainTx],
    rate: Option<f64>,
) -> anyhow::Result<(Settings, LatencyRun)> {
    let url = fresh_database(admin, name).await?;
    let pool = vault_db::connect(&url).await?;
    let settings = Settings::read(&pool).await?;
    let run = latency::pipeline_latency(&pool, txs, rate, PipelineConfig::default()).await?;
    pool.close().await;
    Ok((settings, run))
}

/// Ctrl-C during the durable run.
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted (Ctrl-C); fsync and synchronous_commit restored")
    }
}

impl std::error::Error for Interrupted {}

/// The durable run: what it measured and what SHOW said with the durable settings on and
/// after they were put back.
struct Durable {
    settings: Settings,
    run: WriteRun,
    shown: String,
    restored: String,
}

/// `txs` through write_batch into a fresh database with fsync and synchronous_commit on; the
/// previous settings are restored whatever happens.
async fn durable_run(admin: &str, txs: &[ChainTx], batch: usize, cluster: Option<&Cluster>) -> anyhow::Result<Durable> {
    let (guard, shown) = durable::DurableGuard::enable(admin).await?;
    let measured = async {
        let off: Vec<&(String, String)> = shown.iter().filter(|(_, v)| v != "on").collect();
        anyhow::ensure!(
            off.is_empty(),
            "ALTER SYSTEM did not take effect: SHOW says {} (a setting given on the server's command line, \
             e.g. pg_ctl -o '-c fsync=off', overrides postgresql.auto.conf)",
            durable::describe(&shown)
        );
        let url = fresh_database(admin, "vault_bench_durable").await?;
        let pool: PgPool = vault_db::connect(&url).await?;
        let settings = Settings::read(&pool).await?;
        let run = write::write_stream(&pool, txs, batch, cluster).await?;
        pool.close().await;
        anyhow::Ok((settings, run))
    }
    .await;
    let restored = guard.restore().await.context("restoring fsync and synchronous_commit")?;
    let (settings, run) = measured?;
    Ok(Durable { settings, run, shown: durable::describe(&shown), restored: durable::describe(&restored) })
}

// ---- output -------------------------------------------------------------------------------

/// A rate (or any count) rounded, with thousands separators: `12,345`.
fn rate(x: f64) -> String {
    thousands(x.max(0.0).round() as u64)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn per_tx(d: Option<Duration>, n: usize) -> String {
    d.map(|d| format!("{:.1} µs/tx", micros_per_tx(d, n))).unwrap_or_else(|| "n/a (cluster not readable)".into())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets"
    } else {
        "MISSES"
    }
}

fn section(title: &str) {
    println!("\n== {title} ==");
}

fn print_workload(w: &Workload) {
    section("1. workload: the real program in litesvm (sigverify off)");
    let n = w.txs.len();
    println!(
        "  {} transactions executed in {} ({} tx/s, single thread), {} cores on this machine",
        thousands(n as u64),
        secs(w.elapsed),
        rate(n as f64 / w.elapsed.as_secs_f64().max(1e-9)),
        std::thread::available_parallelism().map(|c| c.get()).unwrap_or(1)
    );
    let (first, last) = w.chain_time();
    println!(
        "  chain time: block_time {first} .. {last} ({:.2} h, {} distinct UTC hours), slots {} .. {}",
        (last - first) as f64 / 3600.0,
        w.utc_hours(),
        w.txs.first().map(|t| t.slot).unwrap_or(0),
        w.txs.last().map(|t| t.slot).unwrap_or(0)
    );
    println!(
        "  sessions: {} opened ({} SOL, {} SPL), {} kept live (peak {}), each revoked after {}..{} trades",
        w.opened.0 + w.opened.1,
        w.opened.0,
        w.opened.1,
        w.target_live,
        w.peak_live,
        w.lifetime_range.0,
        w.lifetime_range.1
    );
    println!("  {:<40} {:>9} {:>9} {:>7}", "mix (what was sent)", "landed", "refused", "share");
    for (kind, (landed, refused)) in &w.mix.0 {
        let share = 100.0 * (landed + refused) as f64 / n.max(1) as f64;
        println!("  {:<40} {:>9} {:>9} {:>6.2}%", kind.label(), thousands(*landed), thousands(*refused), share);
    }
    let count = |kind| w.mix.0.get(&kind).map(|(l, r)| l + r).unwrap_or(0);
    let (trades, over_cap) = (count(workload::Kind::Trade), count(workload::Kind::TradeOverCap));
    println!(
        "  trades refused over the per-trade cap: {:.1}% of {} trades",
        100.0 * over_cap as f64 / (trades + over_cap).max(1) as f64,
        thousands(trades + over_cap)
    );
    if w.unexpected_refusals.0 > 0 {
        println!(
            "  NOTE: {} outcomes the generator did not intend; first: {}",
            w.unexpected_refusals.0,
            w.unexpected_refusals.1.as_deref().unwrap_or("?")
        );
    }
}

fn print_cpu_source(cluster: Option<&Cluster>, rate: TickRate) {
    match cluster {
        Some(c) => println!(
            "\nCPU: /proc utime+stime, {} (so to a tick per process and reading); server = postmaster {} ({}) + its children (living, and \
             ended ones via cutime+cstime) - every client of the cluster counts, the machine is shared",
            rate.describe(),
            c.postmaster,
            c.found_by
        ),
        None => {
            println!("\nCPU: the server's processes are not readable from here (not on this machine?): server CPU n/a")
        }
    }
}

fn print_cpu(label: &str, cpu: &CpuUse, n: usize) {
    println!("  {label} CPU, server   {}", per_tx(cpu.server, n));
    println!("  {label} CPU, client   {}", per_tx(Some(cpu.client), n));
    println!("  {label} CPU, total    {}", per_tx(cpu.total(), n));
}

fn print_saturation(settings: &Settings, run: &WriteRun) {
    section("2./3. saturation: Ingest::write_batch over the whole stream, one batch after another");
    println!("  {}", settings.line(Some(&run.batch_size.to_string())));
    let n = run.transactions;
    println!(
        "  transactions     {} (written {}, parked {}, skipped {}, ignored {}, unparked {})",
        thousands(n as u64),
        thousands(run.written as u64),
        run.parked,
        run.skipped,
        run.ignored,
        run.unparked
    );
    println!("  elapsed          {} (decoding included)", secs(run.elapsed));
    println!(
        "  sustained        {} tx/s            target >= {} tx/s: {}",
        rate(run.tx_per_second()),
        rate(TARGET_TX_PER_SECOND),
        verdict(run.tx_per_second() >= TARGET_TX_PER_SECOND)
    );
    println!("  batches          {}", thousands(run.batches as u64));
    println!(
        "  round trips      {:.1} per batch (BatchReport.statements, BEGIN and COMMIT included; 0 = the writer does not report it)",
        run.round_trips_per_batch()
    );
    print_cpu("indexer", &run.cpu, n);
}

/// Total CPU per transaction of the indexer's run over the COPY's, when both are known.
fn cpu_ratio(run: &WriteRun, copy: &CopyRun) -> Option<f64> {
    Some(run.cpu.total()?.as_secs_f64() / copy.cpu.total()?.as_secs_f64().max(1e-9))
}

fn print_copy(settings: &Settings, copy: &CopyRun, run: &WriteRun) {
    section("4. raw COPY ceiling: the indexer's rows COPYed (binary) into a fresh migrated database");
    println!("  {}, one connection, triggers disabled (ALTER TABLE .. DISABLE TRIGGER ALL)", settings.line(None));
    for t in &copy.tables {
        println!("  {:<28} {:>10} rows {:>12} bytes", t.table, thousands(t.rows), thousands(t.bytes as u64));
    }
    let n = run.transactions;
    println!(
        "  total            {} rows, {} bytes, for {} transactions",
        thousands(copy.rows()),
        thousands(copy.bytes() as u64),
        thousands(n as u64)
    );
    println!(
        "  COPY IN elapsed  {} ({} tx/s equivalent)",
        secs(copy.elapsed),
        rate(n as f64 / copy.elapsed.as_secs_f64().max(1e-9))
    );
    print_cpu("COPY", &copy.cpu, n);
    println!("  indexer / COPY   wall {:.1}x", run.elapsed.as_secs_f64() / copy.elapsed.as_secs_f64().max(1e-9));
    match cpu_ratio(run, copy) {
        Some(r) => println!(
            "  indexer / COPY   total CPU {r:.1}x      target <= {TARGET_CPU_RATIO}x: {}",
            verdict(r <= TARGET_CPU_RATIO)
        ),
        None => println!("  indexer / COPY   total CPU n/a (server CPU not readable)"),
    }
}

fn print_replay_table(t: &TableReplay) {
    let note = if t.excluded.is_empty() { String::new() } else { format!(" (without {})", t.excluded.join(", ")) };
    println!(
        "    {:<28} {:>10} -> {:<10} {}{note}",
        t.table,
        thousands(t.rows_before.max(0) as u64),
        thousands(t.rows_after.max(0) as u64),
        if t.equal { "equal" } else { "DIFFERS" }
    );
}

/// Prints the checks; true when all pass.
fn print_checks(settings: &Settings, breaks: i64, first_break: Option<&str>, replay: &Replay) -> bool {
    section("9. checks on the saturation run's database");
    println!("  {}", settings.line(Some(&replay.run.batch_size.to_string())));
    let chain_ok = breaks == 0;
    println!(
        "  audit chain: SELECT count(*) FROM verify_audit_chain() = {breaks}: {}{}",
        if chain_ok { "pass" } else { "FAIL" },
        first_break.map(|f| format!(" ({f})")).unwrap_or_default()
    );
    let replay_ok = replay.all_equal();
    println!(
        "  replay: the whole stream written again ({}, {} tx/s), every table's rows digested before and after: {}",
        secs(replay.run.elapsed),
        rate(replay.run.tx_per_second()),
        if replay_ok { "pass" } else { "FAIL" }
    );
    println!("    {:<28} {:>10}    {:<10}", "table", "rows", "after");
    for t in &replay.tables {
        print_replay_table(t);
    }
    chain_ok && replay_ok
}

fn print_latency_run(title: &str, settings: &Settings, run: &LatencyRun, target: Option<Duration>) {
    println!("  {title}");
    println!("    {}", settings.line(Some("as the pipeline forms them (PipelineConfig::default)")));
    println!("    pipeline: {:?}", PipelineConfig::default());
    println!(
        "    {} transactions handed over in {} ({} tx/s), all committed {} after the first ({} tx/s), {} batches",
        thousands(run.transactions as u64),
        secs(run.sending),
        rate(run.offered_rate()),
        secs(run.elapsed),
        rate(run.throughput()),
        thousands(run.batches)
    );
    let p99 = run.percentile(0.99);
    let target = target.map(|t| format!("            target <= {}: {}", ms(t), verdict(p99 <= t))).unwrap_or_default();
    println!("    latency p50 {}   p99 {}   max {}{target}", ms(run.percentile(0.5)), ms(p99), ms(run.max()));
    if run.unaccounted > 0 || run.accounted != run.transactions as u64 {
        println!(
            "    NOTE: the counters accounted for {} of {} transactions ({} written); {} stamped at the pipeline's end",
            run.accounted, run.transactions, run.written, run.unaccounted
        );
    }
}

fn print_latency(paced: &(Settings, LatencyRun), flooded: &(Settings, LatencyRun)) {
    section("5. latency through pipeline::run: hand-over (send returned) to commit");
    println!(
        "  commit = first watcher poll at which written+skipped+parked+ignored reaches the transaction; \
         polled every {} (measured mean interval {:.2} ms / {:.2} ms): resolution about one interval",
        ms(latency::POLL),
        paced.1.poll_interval.as_secs_f64() * 1e3,
        flooded.1.poll_interval.as_secs_f64() * 1e3
    );
    let paced_rate = rate(paced.1.rate.unwrap_or_default());
    print_latency_run(
        &format!("(a) paced at {paced_rate} tx/s, a fresh database"),
        &paced.0,
        &paced.1,
        Some(TARGET_P99_PACED),
    );
    print_latency_run(
        "(b) saturation: sent as fast as the channel accepts, a fresh database",
        &flooded.0,
        &flooded.1,
        None,
    );
}

fn print_durable(outcome: &anyhow::Result<Durable>) {
    section("6. durable run: write_batch at saturation with fsync=on, synchronous_commit=on");
    match outcome {
        Ok(d) => {
            println!("  ALTER SYSTEM + pg_reload_conf(); a new connection SHOWs {}", d.shown);
            println!("  {}", d.settings.line(Some(&d.run.batch_size.to_string())));
            println!(
                "  {} transactions in {}: {} tx/s, {:.1} round trips per batch",
                thousands(d.run.transactions as u64),
                secs(d.run.elapsed),
                rate(d.run.tx_per_second()),
                d.run.round_trips_per_batch()
            );
            print_cpu("indexer", &d.run.cpu, d.run.transactions);
            println!("  restored (ALTER SYSTEM RESET/SET + reload): {}", d.restored);
        }
        Err(e) => println!("  NOT DONE: {e:#}"),
    }
}

fn print_summary(
    settings: &Settings,
    saturation: &WriteRun,
    copy: &CopyRun,
    paced: &(Settings, LatencyRun),
    flooded: &(Settings, LatencyRun),
    durable: Option<&Durable>,
) {
    section("summary (targets are goals, not pass/fail)");
    println!("  {}", settings.line(Some(&saturation.batch_size.to_string())));
    println!("  latency runs: the pipeline's own batches; the durable run: fsync=on, synchronous_commit=on");
    println!("  {:<52} {:>14} {:>14} {:>8}", "figure", "measured", "target", "");
    let tps = saturation.tx_per_second();
    let row = |name: &str, measured: String, target: &str, verdict: &str| {
        println!("  {name:<52} {measured:>14} {target:>14} {verdict:>8}");
    };
    row(
        "sustained tx/s, write_batch at saturation",
        rate(tps),
        &format!(">= {}", rate(TARGET_TX_PER_SECOND)),
        verdict(tps >= TARGET_TX_PER_SECOND),
    );
    match cpu_ratio(saturation, copy) {
        Some(r) => row(
            "total CPU per tx, indexer / raw COPY",
            format!("{r:.2}x"),
            &format!("<= {TARGET_CPU_RATIO}x"),
            verdict(r <= TARGET_CPU_RATIO),
        ),
        None => row("total CPU per tx, indexer / raw COPY", "n/a".into(), &format!("<= {TARGET_CPU_RATIO}x"), ""),
    }
    let p99 = paced.1.percentile(0.99);
    row(
        &format!("p99 latency at {} tx/s", rate(paced.1.rate.unwrap_or_default())),
        ms(p99),
        &format!("<= {}", ms(TARGET_P99_PACED)),
        verdict(p99 <= TARGET_P99_PACED),
    );
    row("p99 latency at saturation (pipeline)", ms(flooded.1.percentile(0.99)), "", "");
    row("tx/s through the pipeline at saturation", rate(flooded.1.throughput()), "", "");
    row(
        "wall time, indexer / raw COPY",
        format!("{:.1}x", saturation.elapsed.as_secs_f64() / copy.elapsed.as_secs_f64().max(1e-9)),
        "",
        "",
    );
    if let Some(d) = durable {
        row("sustained tx/s, fsync=on synchronous_commit=on", rate(d.run.tx_per_second()), "", "");
    }
}

fn print_phases(phases: &Phases) {
    section("phase wall times");
    for (name, d) in &phases.0 {
        println!("  {name:<30} {}", secs(*d));
    }
}
