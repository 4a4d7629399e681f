//! Shared by the indexer tests: real transactions from the real program (litesvm via the
//! testkit) turned into what a node would deliver, a lifecycle scenario, and a canonical dump
//! of every table the indexer writes, to compare runs.

#![allow(dead_code)]

use ephemeral_vault::sdk;
use ephemeral_vault_testkit::*;
use solana_signer::Signer;
use sqlx::PgPool;
use vault_indexer::chain_tx::ChainTx;
use vault_indexer::decode::decode_all;

pub const SOL: u64 = LAMPORTS_PER_SOL;

pub use vault_devkit::recorded::chain_tx;

/// Every transaction of the world that names the program, as a node delivers it.
pub fn delivered(w: &VaultWorld) -> Vec<ChainTx> {
    w.history.iter().filter(|r| r.mentions(&ephemeral_vault::ID)).map(chain_tx).collect()
}

fn trade_args(trade_id: u64, amount: u64) -> ephemeral_vault::instructions::ExecuteTradeArgs {
    ephemeral_vault::instructions::ExecuteTradeArgs { trade_id, amount, fee: 0 }
}

/// The scenario's expected shape, for assertions.
pub struct Scenario {
    pub txs: Vec<ChainTx>,
    /// The same transactions as executed (signed message, runtime error), aligned with `txs`.
    pub recorded: Vec<Recorded>,
    pub sol_session: TestSession,
    pub token_session: TestSession,
    pub rotated_delegate: solana_keypair::Keypair,
    pub caller: solana_keypair::Keypair,
    /// Opened two sessions of her own under the SOL session's id, in one transaction.
    pub mallory: solana_keypair::Keypair,
    /// The SOL session's id opened again by its parent after cleanup.
    pub reopened: TestSession,
}

/// A full lifecycle on the real program:
/// - SOL session: create with deposit and fee top-up, deposit, three trades (one large), a
///   refused over-cap trade, a fee top-up, a rotation, a trade by the new delegate, a refused
///   trade by the old one, a deposit and an over-cap trade in one (failing) transaction, revoke,
///   cleanup by a bot, then the same session id opened again by the same parent (a second
///   session of the same vault) and a trade on it;
/// - mallory, in one transaction: create, revoke, cleanup and create again under the SOL
///   session's id (her own vault: two sessions that must not touch the SOL session);
/// - Token-2022 (transfer fee) session: create with deposit, a trade, expiry, a refused trade
///   after expiry (and one more reached by CPI from the router), cleanup;
/// - the reopened SOL session: a trade by CPI, a trade rolled back by the router's own failure,
///   a v0 trade with a lookup table.
pub fn lifecycle() -> Scenario {
    let mut w = VaultWorld::new();
    let venue = w.new_wallet(SOL);

    let s = w.sol_session();
    let mut args = session_args(s.session.session_id);
    args.approved_amount = 4 * SOL;
    args.per_trade_cap = 2 * SOL;
    args.initial_deposit = 5 * SOL;
    args.fee_top_up = 10_000_000;
    w.create(&s, args).expect("create");
    w.send(&[sdk::deposit(&s.session, None, SOL)], &s.parent, &[]).expect("deposit");
    w.trade(&s, &s.delegate, venue.pubkey(), None, 1, SOL / 10, 1_000).expect("trade 1");
    w.trade(&s, &s.delegate, venue.pubkey(), None, 2, SOL / 5, 2_000).expect("trade 2");
    w.trade(&s, &s.delegate, venue.pubkey(), None, 3, 2 * SOL, 0).expect("large trade");
    w.trade(&s, &s.delegate, venue.pubkey(), None, 4, 2 * SOL, 1).expect_err("over the per-trade cap");
    w.send(&[sdk::top_up_fees(&s.session, s.delegate.pubkey(), 5_000_000)], &s.delegate, &[]).expect("top up");
    let next = w.new_wallet(SOL / 10);
    w.send(&[sdk::approve_delegate(&s.session, next.pubkey())], &s.parent, &[]).expect("rotate");
    w.trade(&s, &next, venue.pubkey(), None, 5, SOL / 2, 0).expect("new delegate trades");
    w.trade(&s, &s.delegate, venue.pubkey(), None, 6, SOL / 2, 0).expect_err("old delegate refused");
    // The shapes real traffic has that the session's own flow does not:
    // another wallet opens, revokes, cleans and reopens a session under the same (public) id in
    // one transaction - two sessions of its own vault, nothing of them on the SOL session;
    let mallory = w.new_wallet(SOL);
    let reused = sdk::SessionRef { parent: mallory.pubkey(), session_id: s.session.session_id, asset: sdk::Asset::Sol };
    let mut first = session_args(reused.session_id);
    (first.approved_amount, first.per_trade_cap, first.initial_deposit) = (10_000, 10_000, 5_000);
    first.duration_secs = default_params().min_session_duration;
    let mut again = session_args(reused.session_id);
    again.approved_amount = 20_000;
    again.per_trade_cap = 20_000;
    let ixs = [
        sdk::create_session(mallory.pubkey(), w.new_wallet(0).pubkey(), sdk::Asset::Sol, None, first),
        sdk::revoke_session(&reused),
        sdk::cleanup_vault(&reused, mallory.pubkey(), None),
        sdk::create_session(mallory.pubkey(), w.new_wallet(0).pubkey(), sdk::Asset::Sol, None, again),
    ];
    w.send(&ixs, &mallory, &[]).expect("mallory's two sessions under the SOL session's id");
    // and two vault instructions in one failing transaction: a deposit, then an over-cap trade.
    let over_cap = sdk::execute_trade(
        &s.session,
        next.pubkey(),
        venue.pubkey(),
        None,
        ephemeral_vault::instructions::ExecuteTradeArgs { trade_id: 7, amount: 3 * SOL, fee: 0 },
    );
    w.send(&[sdk::deposit(&s.session, None, SOL / 10), over_cap], &s.parent, &[&next]).expect_err("over the cap");
    w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]).expect("revoke");
    let caller = w.new_wallet(SOL);
    w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), None)], &caller, &[]).expect("cleanup");
    // The SOL session's parent opens the same session id again after cleanup: a second session
    // of the same vault, with a new delegate, which trades.
    let reopened = TestSession {
        parent: s.parent.insecure_clone(),
        delegate: w.new_wallet(SOL / 10),
        session: s.session,
        parent_token_account: None,
        mint: None,
    };
    let mut args = session_args(reopened.session.session_id);
    args.initial_deposit = SOL;
    w.create(&reopened, args).expect("reopen");
    w.trade(&reopened, &reopened.delegate, venue.pubkey(), None, 1, SOL / 10, 0).expect("the reopened session trades");

    let mint = w.create_mint(MintKind::Token2022TransferFee { bps: 100, max_fee: 1_000_000 }, 6);
    let t = w.token_session(&mint, 100_000_000);
    let mut args = session_args(t.session.session_id);
    args.approved_amount = 50_000_000;
    args.per_trade_cap = 10_000_000;
    args.initial_deposit = 40_000_000;
    args.duration_secs = 600;
    w.create(&t, args).expect("create token session");
    let venue_ta = w.create_token_account(&mint, &venue.pubkey());
    w.trade(&t, &t.delegate, venue.pubkey(), Some(venue_ta), 1, 5_000_000, 0).expect("token trade");
    w.advance(601);
    w.trade(&t, &t.delegate, venue.pubkey(), Some(venue_ta), 2, 1_000_000, 0).expect_err("expired");
    // Reached by CPI from another program (the test-only router) after expiry: refused by the vault.
    let late =
        sdk::execute_trade(&t.session, t.delegate.pubkey(), venue.pubkey(), Some(venue_ta), trade_args(3, 1_000_000));
    w.send(&[router::forward(late)], &t.delegate, &[]).expect_err("expired, by CPI");
    w.send(&[sdk::cleanup_vault(&t.session, caller.pubkey(), t.parent_token_account)], &caller, &[])
        .expect("token cleanup");

    // The reopened session meets the other shapes: a trade by CPI, a trade rolled back by another
    // program's failure (its own 6012), a v0 trade loading the vault, the destination and the
    // event authority from a lookup table.
    let r = &reopened;
    let d = r.delegate.pubkey();
    let trade = |id: u64| sdk::execute_trade(&r.session, d, venue.pubkey(), None, trade_args(id, SOL / 10));
    w.send(&[router::forward(trade(2))], &r.delegate, &[]).expect("a trade by CPI");
    w.send(&[trade(3), router::fail()], &r.delegate, &[]).expect_err("the router fails the transaction");
    let table = w.create_lookup_table(&[r.vault(), venue.pubkey(), sdk::event_authority_address()]);
    w.send_v0(&[trade(4)], &r.delegate, &[], &[table]).expect("a v0 trade");

    // Only transactions that name the program reach an indexer that filters on it.
    let recorded: Vec<Recorded> = w.history.iter().filter(|r| r.mentions(&ephemeral_vault::ID)).cloned().collect();
    let txs = recorded.iter().map(chain_tx).collect();
    Scenario { txs, recorded, sol_session: s, token_session: t, rotated_delegate: next, caller, mallory, reopened }
}

/// The rows a direct write of `txs` into a fresh database gives: what every delivery path must
/// end with.
pub async fn reference_rows(txs: &[ChainTx]) -> Vec<String> {
    let reference = super::common::TestDb::new().await;
    vault_indexer::ingest::Ingest::default()
        .write_batch(&reference.pool, "test", &decode_all(txs), None)
        .await
        .expect("direct write");
    dump(&reference.pool).await
}

/// Every row the indexer writes, in a canonical order, without the columns that differ between
/// runs by nature (serial ids, wall-clock timestamps, audit hashes).
pub async fn dump(pool: &PgPool) -> Vec<String> {
    // Rows that belong to a session name it by its incarnation - the vault and the creation
    // that opened it (`incarnation`) - not by the serial session_ref, which depends on the order
    // rows were written in.
    const INCARNATION: &str = "(SELECT concat_ws('@', s.vault_pda, s.creation_signature, s.creation_instruction_index,
        s.bootstrapped) FROM ephemeral_sessions s WHERE s.id = session_ref)";
    let queries = [
        "SELECT concat_ws('|', session_id, parent_wallet, ephemeral_wallet, vault_pda, mint, created_at, expires_at,
            last_activity, revoked_at, cleaned_at, status, is_active, approved_amount, per_trade_cap, total_deposited,
            total_spent, total_withdrawn, total_fee_top_ups, created_slot, creation_signature, creation_instruction_index,
            bootstrapped) FROM ephemeral_sessions ORDER BY 1"
            .to_string(),
        format!("SELECT concat_ws('|', {INCARNATION}, session_id, transaction_signature, instruction_index, transaction_type,
            amount, fee_amount, trade_id, status, confirmed_at, block_slot, metadata::text, error_message)
            FROM vault_transactions ORDER BY transaction_signature, instruction_index"),
        format!("SELECT concat_ws('|', {INCARNATION}, session_id, vault_pda, delegate_wallet, approved_at, revoked_at,
            approval_signature, revocation_signature, is_active, rotation) FROM delegation_history
            ORDER BY 1"),
        format!("SELECT concat_ws('|', {INCARNATION}, session_id, vault_pda, returned_to_parent, cleanup_reward,
            rent_returned, cleanup_caller, cleanup_signature, cleanup_timestamp, cleanup_reason) FROM cleanup_events
            ORDER BY 1"),
        format!("SELECT concat_ws('|', {INCARNATION}, session_id, total_trades, successful_trades, failed_trades,
            total_volume, total_fees_paid, avg_trade_size, avg_confirmation_time, session_duration, trades_per_minute,
            peak_activity_hour, relayed_confirmations, relayed_confirmation_ms) FROM session_analytics ORDER BY 1"),
        format!("SELECT concat_ws('|', {INCARNATION}, hour, trades) FROM session_trade_hours ORDER BY 1"),
        format!("SELECT concat_ws('|', {INCARNATION}, session_id, alert_type, severity, description, metadata::text)
            FROM security_alerts ORDER BY metadata->>'dedup_key', 1"),
        "SELECT concat_ws('|', session_id, parent_wallet, action, actor, target, success, error_message, metadata::text)
            FROM audit_log ORDER BY metadata->>'chain_ref'"
            .to_string(),
        "SELECT concat_ws('|', transaction_signature, reason) FROM indexer_skipped ORDER BY transaction_signature"
            .to_string(),
        "SELECT concat_ws('|', transaction_signature, vault_pda) FROM indexer_parked ORDER BY transaction_signature"
            .to_string(),
    ];
    let mut rows = vec![];
    for query in queries {
        let table: Vec<(Option<String>,)> = sqlx::query_as(&query).fetch_all(pool).await.expect(&query);
        rows.push(format!(
            "-- {}",
            query.split_whitespace().find(|w| w.ends_with("_sessions") || w.contains('_')).unwrap_or("")
        ));
        rows.extend(table.into_iter().map(|(r,)| r.unwrap_or_default()));
    }
    rows
}

pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await.expect(sql);
    n
}

/// Asserts two dumps are equal, showing only the rows that differ.
#[track_caller]
pub fn assert_same_rows(got: &[String], expected: &[String], label: &str) {
    if got == expected {
        return;
    }
    let missing: Vec<&String> = expected.iter().filter(|r| !got.contains(r)).collect();
    let extra: Vec<&String> = got.iter().filter(|r| !expected.contains(r)).collect();
    panic!("{label}: rows differ\nmissing:\n{missing:#?}\nextra:\n{extra:#?}");
}

/// The Yellowstone update a geyser plugin would send for an executed transaction.
pub fn geyser_update(recorded: &Recorded) -> yellowstone_grpc_proto::prelude::SubscribeUpdateTransaction {
    vault_devkit::recorded::geyser_update(recorded).expect("encodes")
}

/// Waits until `source`'s committed cursor reaches `slot`.
pub async fn wait_for_cursor(pool: &PgPool, source: &str, slot: u64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let cursor = vault_indexer::ingest::load_cursor(pool, source).await.expect("cursor");
        if cursor.as_ref().is_some_and(|c| c.slot >= slot) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "indexer did not reach slot {slot}: at {cursor:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Waits until the rows equal `expected` (several transactions can share the final slot, so
/// the cursor reaching it does not mean all of them are in), then asserts they do.
pub async fn wait_for_rows(pool: &PgPool, expected: &[String], label: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let rows = dump(pool).await;
        if rows == expected || tokio::time::Instant::now() >= deadline {
            return assert_same_rows(&rows, expected, label);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
