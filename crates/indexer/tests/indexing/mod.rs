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

/// The scenario's expected shape, for assertions.
pub struct Scenario {
    pub txs: Vec<ChainTx>,
    /// The same transactions as executed (signed message, runtime error), aligned with `txs`.
    pub recorded: Vec<Recorded>,
    pub sol_session: TestSession,
    pub token_session: TestSession,
    pub rotated_delegate: solana_keypair::Keypair,
    pub caller: solana_keypair::Keypair,
}

/// A full lifecycle on the real program:
/// - SOL session: create with deposit and fee top-up, deposit, three trades (one large), a
///   refused over-cap trade, a fee top-up, a rotation, a trade by the new delegate, a refused
///   trade by the old one, revoke, cleanup by a bot;
/// - Token-2022 (transfer fee) session: create with deposit, a trade, expiry, a refused trade
///   after expiry, cleanup.
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
    w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]).expect("revoke");
    let caller = w.new_wallet(SOL);
    w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), None)], &caller, &[]).expect("cleanup");

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
    w.send(&[sdk::cleanup_vault(&t.session, caller.pubkey(), t.parent_token_account)], &caller, &[])
        .expect("token cleanup");

    // Only transactions that name the program reach an indexer that filters on it.
    let recorded: Vec<Recorded> = w.history.iter().filter(|r| r.mentions(&ephemeral_vault::ID)).cloned().collect();
    let txs = recorded.iter().map(chain_tx).collect();
    Scenario { txs, recorded, sol_session: s, token_session: t, rotated_delegate: next, caller }
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
    let queries = [
        "SELECT concat_ws('|', session_id, parent_wallet, ephemeral_wallet, vault_pda, mint, created_at, expires_at,
            last_activity, revoked_at, cleaned_at, status, is_active, approved_amount, per_trade_cap, total_deposited,
            total_spent, total_withdrawn, total_fee_top_ups) FROM ephemeral_sessions ORDER BY session_id",
        "SELECT concat_ws('|', session_id, transaction_signature, instruction_index, transaction_type, amount, fee_amount,
            trade_id, status, confirmed_at, block_slot, metadata::text, error_message) FROM vault_transactions
            ORDER BY transaction_signature, instruction_index",
        "SELECT concat_ws('|', session_id, vault_pda, delegate_wallet, approved_at, revoked_at, approval_signature,
            revocation_signature, is_active, rotation) FROM delegation_history ORDER BY session_id, rotation",
        "SELECT concat_ws('|', session_id, vault_pda, returned_to_parent, cleanup_reward, rent_returned, cleanup_caller,
            cleanup_signature, cleanup_timestamp, cleanup_reason) FROM cleanup_events ORDER BY session_id",
        "SELECT concat_ws('|', session_id, total_trades, successful_trades, failed_trades, total_volume, total_fees_paid,
            avg_trade_size) FROM session_analytics ORDER BY session_id",
        "SELECT concat_ws('|', session_id, alert_type, severity, description, metadata::text) FROM security_alerts
            ORDER BY metadata->>'dedup_key'",
        "SELECT concat_ws('|', session_id, parent_wallet, action, actor, target, success, error_message, metadata::text)
            FROM audit_log ORDER BY metadata->>'chain_ref'",
        "SELECT concat_ws('|', transaction_signature, reason) FROM indexer_skipped ORDER BY transaction_signature",
        "SELECT concat_ws('|', transaction_signature, vault_pda) FROM indexer_parked ORDER BY transaction_signature",
    ];
    let mut rows = vec![];
    for query in queries {
        let table: Vec<(Option<String>,)> = sqlx::query_as(query).fetch_all(pool).await.expect(query);
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
