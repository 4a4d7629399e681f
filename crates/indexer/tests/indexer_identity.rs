//! A session is one vault incarnation (issue: "The indexer reads the chain as it really is"):
//! a session id reused by another parent, or reopened by the same parent after cleanup, makes a
//! session of its own, and nothing of it touches the other's rows - through the real program,
//! decoder and writer, in every delivery order. Refusals are recorded at once and never wait
//! for a session that cannot come; what does wait is bounded; an indexer without history
//! bootstraps live sessions from their vault accounts.

use vault_devkit::test_db as common;
mod indexing;

use std::collections::HashMap;

use anchor_lang::prelude::Pubkey;
use common::TestDb;
use ephemeral_vault::sdk::{self, Asset, SessionRef};
use ephemeral_vault_testkit::*;
use indexing::*;
use solana_keypair::Keypair;
use solana_signer::Signer;
use sqlx::PgPool;
use vault_indexer::chain_tx::ChainTx;
use vault_indexer::decode::decode_all;
use vault_indexer::ingest::bootstrap::{VaultAccounts, VaultState};
use vault_indexer::ingest::{session_uuid, Ingest};

async fn write_all(pool: &PgPool, ingest: &Ingest, txs: &[ChainTx]) -> vault_indexer::ingest::BatchReport {
    ingest.write_batch(pool, "test", &decode_all(txs), None).await.expect("batch")
}

/// (parent, status, approved_amount, expires_at, ephemeral_wallet) of each session with `id`,
/// in creation order.
async fn sessions_with_id(pool: &PgPool, id: &str) -> Vec<(String, String, String, i64, String)> {
    sqlx::query_as(
        "SELECT parent_wallet, status, approved_amount::text, expires_at, ephemeral_wallet FROM ephemeral_sessions
         WHERE session_id = $1 ORDER BY created_slot, id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The transaction rows of the session (vault incarnation) opened by `creation`: signature and type.
async fn rows_of(pool: &PgPool, vault: &Pubkey, creation: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT t.transaction_signature, t.transaction_type, t.status FROM vault_transactions t
         JOIN ephemeral_sessions s ON s.id = t.session_ref
         WHERE s.vault_pda = $1 AND s.creation_signature = $2
         ORDER BY t.block_slot, t.instruction_index",
    )
    .bind(vault.to_string())
    .bind(creation)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The signature of the world's newest transaction.
fn last_signature(w: &VaultWorld) -> String {
    w.history.last().expect("sent").signature().to_string()
}

#[tokio::test]
async fn a_session_id_reused_by_another_parent_never_touches_the_first_session() {
    let mut w = VaultWorld::new();
    let venue = w.new_wallet(SOL);
    // A opens X and keeps trading.
    let a = w.open_sol_session(2 * SOL);
    let a_create = last_signature(&w);
    w.trade(&a, &a.delegate, venue.pubkey(), None, 1, SOL / 10, 0).expect("A trades");
    let a_trade_1 = last_signature(&w);

    // B, in ONE transaction: create_session under X with the shortest duration, revoke, cleanup.
    let b_parent = w.new_wallet(10 * SOL);
    let b_delegate = Keypair::new();
    let b = SessionRef { parent: b_parent.pubkey(), session_id: a.session.session_id, asset: Asset::Sol };
    let mut args = session_args(b.session_id);
    args.approved_amount = 10_000;
    args.per_trade_cap = 10_000;
    args.duration_secs = default_params().min_session_duration;
    args.initial_deposit = 5_000;
    let ixs = [
        sdk::create_session(b_parent.pubkey(), b_delegate.pubkey(), Asset::Sol, None, args),
        sdk::revoke_session(&b),
        sdk::cleanup_vault(&b, b_parent.pubkey(), None),
    ];
    w.send(&ixs, &b_parent, &[]).expect("B's create, revoke and cleanup in one transaction");
    let b_tx = last_signature(&w);

    w.trade(&a, &a.delegate, venue.pubkey(), None, 2, SOL / 10, 0).expect("A still trades");
    let a_trade_2 = last_signature(&w);
    let txs = delivered(&w);

    let db = TestDb::new().await;
    let report = write_all(&db.pool, &Ingest::default(), &txs).await;
    assert_eq!((report.parked, report.skipped), (0, 0), "{report:?}");

    let x = session_uuid(&a.session.session_id);
    let expires_a = w.vault(&a.vault()).expect("A's vault").expires_at;
    let sessions = sessions_with_id(&db.pool, &x).await;
    assert_eq!(
        sessions,
        [
            (
                a.parent.pubkey().to_string(),
                "active".into(),
                (10 * SOL).to_string(),
                expires_a,
                a.delegate.pubkey().to_string()
            ),
            (
                b_parent.pubkey().to_string(),
                "cleaned".into(),
                "10000".into(),
                sessions[1].3,
                b_delegate.pubkey().to_string()
            ),
        ],
        "two sessions: A's untouched, B's its own"
    );
    let confirmed = |sig: &str, kind: &str| (sig.to_string(), kind.to_string(), "confirmed".to_string());
    assert_eq!(
        rows_of(&db.pool, &a.vault(), &a_create).await,
        [
            confirmed(&a_create, "create"),
            confirmed(&a_create, "deposit"),
            confirmed(&a_trade_1, "trade"),
            confirmed(&a_trade_2, "trade")
        ]
    );
    assert_eq!(
        rows_of(&db.pool, &b.vault(), &b_tx).await,
        [
            confirmed(&b_tx, "create"),
            confirmed(&b_tx, "deposit"),
            confirmed(&b_tx, "revoke"),
            confirmed(&b_tx, "cleanup")
        ]
    );
    // The cleanup is B's, on B's vault; A has none and its delegation is still active.
    let cleanups: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.vault_pda, c.cleanup_reason, s.parent_wallet FROM cleanup_events c
         JOIN ephemeral_sessions s ON s.id = c.session_ref",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(cleanups, [(b.vault().to_string(), "manual_revoke".into(), b_parent.pubkey().to_string())]);
    let delegations: Vec<(String, bool)> = sqlx::query_as(
        "SELECT d.delegate_wallet, d.is_active FROM delegation_history d
         JOIN ephemeral_sessions s ON s.id = d.session_ref WHERE s.session_id = $1 ORDER BY s.created_slot",
    )
    .bind(&x)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(delegations, [(a.delegate.pubkey().to_string(), true), (b_delegate.pubkey().to_string(), false)]);
    let a_analytics: (i32, String) = sqlx::query_as(
        "SELECT total_trades, total_volume::text FROM session_analytics a JOIN ephemeral_sessions s ON s.id = a.session_ref
         WHERE s.vault_pda = $1",
    )
    .bind(a.vault().to_string())
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(a_analytics, (2, (SOL / 5).to_string()));

    // Every delivery order ends with the same rows.
    assert_every_order_gives_the_same_rows(&txs).await;
}

#[tokio::test]
async fn a_session_reopened_after_cleanup_is_a_second_session() {
    let mut w = VaultWorld::new();
    let venue = w.new_wallet(SOL);
    let first = w.open_sol_session(SOL);
    let first_create = last_signature(&w);
    w.trade(&first, &first.delegate, venue.pubkey(), None, 1, SOL / 10, 0).expect("trade");
    w.send(&[sdk::revoke_session(&first.session)], &first.parent, &[]).expect("revoke");
    w.send(&[sdk::cleanup_vault(&first.session, first.parent.pubkey(), None)], &first.parent, &[]).expect("cleanup");
    // The same parent opens the same session id again, with a new delegate: the same vault address.
    let second_delegate = w.new_wallet(SOL / 10);
    let second = TestSession {
        parent: first.parent.insecure_clone(),
        delegate: second_delegate,
        session: first.session,
        parent_token_account: None,
        mint: None,
    };
    let mut args = session_args(second.session.session_id);
    args.initial_deposit = SOL / 2;
    w.create(&second, args).expect("reopen");
    let second_create = last_signature(&w);
    w.trade(&second, &second.delegate, venue.pubkey(), None, 1, SOL / 20, 0).expect("trade of the second");
    let second_trade = last_signature(&w);
    let txs = delivered(&w);

    let db = TestDb::new().await;
    let report = write_all(&db.pool, &Ingest::default(), &txs).await;
    assert_eq!((report.parked, report.skipped), (0, 0), "{report:?}");
    let x = session_uuid(&first.session.session_id);
    let sessions = sessions_with_id(&db.pool, &x).await;
    let statuses: Vec<(&str, &str)> = sessions.iter().map(|s| (s.1.as_str(), s.4.as_str())).collect();
    let d1 = first.delegate.pubkey().to_string();
    let d2 = second.delegate.pubkey().to_string();
    assert_eq!(statuses, [("cleaned", d1.as_str()), ("active", d2.as_str())]);
    let kinds = |rows: Vec<(String, String, String)>| rows.into_iter().map(|r| r.1).collect::<Vec<_>>();
    assert_eq!(
        kinds(rows_of(&db.pool, &first.vault(), &first_create).await),
        ["create", "deposit", "trade", "revoke", "cleanup"]
    );
    let second_rows = rows_of(&db.pool, &second.vault(), &second_create).await;
    assert_eq!(kinds(second_rows.clone()), ["create", "deposit", "trade"]);
    assert_eq!(second_rows[2].0, second_trade, "the second delegate's trade is the second session's");

    // The same history packed into one slot (a busy chain puts many transactions in one), in one
    // batch and with the first creation in a batch of its own: the two creations are told apart
    // by arrival, and the last trade belongs to the session created later.
    let mut one_slot = txs.clone();
    for tx in &mut one_slot {
        tx.slot = txs[0].slot;
    }
    for split in [0, 1] {
        let packed = TestDb::new().await;
        if split > 0 {
            write_all(&packed.pool, &Ingest::default(), &one_slot[..split]).await;
        }
        write_all(&packed.pool, &Ingest::default(), &one_slot[split..]).await;
        // (Rows of one slot are listed by signature: compared as sets.)
        let sorted = |mut kinds: Vec<String>| {
            kinds.sort();
            kinds
        };
        let first_rows = sorted(kinds(rows_of(&packed.pool, &first.vault(), &first_create).await));
        assert_eq!(first_rows, ["cleanup", "create", "deposit", "revoke", "trade"], "one slot, split at {split}");
        let second_rows = rows_of(&packed.pool, &second.vault(), &second_create).await;
        assert_eq!(sorted(kinds(second_rows.clone())), ["create", "deposit", "trade"], "one slot, split at {split}");
        assert!(second_rows.iter().any(|r| r.0 == second_trade && r.1 == "trade"), "one slot, split at {split}");
    }
    // Each has its own delegation history: the second delegate's approval is there, active.
    let delegations: Vec<(String, i32, bool)> = sqlx::query_as(
        "SELECT d.delegate_wallet, d.rotation, d.is_active FROM delegation_history d
         JOIN ephemeral_sessions s ON s.id = d.session_ref WHERE s.vault_pda = $1 ORDER BY s.created_slot",
    )
    .bind(first.vault().to_string())
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(delegations, [(d1, 0, false), (d2, 0, true)]);
    assert_eq!(count(&db.pool, "SELECT count(*) FROM cleanup_events").await, 1);

    assert_every_order_gives_the_same_rows(&txs).await;
}

/// Delivered twice, in reverse (one transaction per batch) and shuffled across batches: the
/// rows of a direct in-order write, exactly.
async fn assert_every_order_gives_the_same_rows(txs: &[ChainTx]) {
    let expected = reference_rows(txs).await;
    let ingest = Ingest::default();
    let reversed = TestDb::new().await;
    for tx in txs.iter().rev() {
        write_all(&reversed.pool, &ingest, std::slice::from_ref(tx)).await;
    }
    assert_same_rows(&dump(&reversed.pool).await, &expected, "delivered in reverse");
    let twice = TestDb::new().await;
    write_all(&twice.pool, &ingest, txs).await;
    write_all(&twice.pool, &ingest, txs).await;
    assert_same_rows(&dump(&twice.pool).await, &expected, "delivered twice");
    let shuffled = TestDb::new().await;
    let mut order: Vec<&ChainTx> = txs.iter().collect();
    // A fixed interleaving: odd positions first, then even ones.
    order.sort_by_key(|tx| (txs.iter().position(|t| t == *tx).unwrap() % 2 == 0, tx.slot));
    for chunk in order.chunks(2) {
        let chunk: Vec<ChainTx> = chunk.iter().map(|t| (*t).clone()).collect();
        write_all(&shuffled.pool, &ingest, &chunk).await;
    }
    assert_same_rows(&dump(&shuffled.pool).await, &expected, "shuffled");
}

#[tokio::test]
async fn refusals_are_recorded_at_once_and_what_waits_is_bounded() {
    let mut w = VaultWorld::new();
    // A refused create_session: a duration below the config's minimum.
    let s = w.sol_session();
    let mut args = session_args(s.session.session_id);
    args.duration_secs = default_params().min_session_duration - 1;
    w.create(&s, args).expect_err("too short");
    let refused_create = last_signature(&w);
    // A trade naming an account that is no vault (a plain wallet in the vault's place).
    let live = w.open_sol_session(SOL);
    let impostor = w.new_wallet(SOL);
    let mut ix = sdk::execute_trade(
        &live.session,
        live.delegate.pubkey(),
        impostor.pubkey(),
        None,
        ephemeral_vault::instructions::ExecuteTradeArgs { trade_id: 1, amount: 1, fee: 0 },
    );
    let position = ix.accounts.iter().position(|a| a.pubkey == live.vault()).expect("vault account");
    ix.accounts[position].pubkey = impostor.pubkey();
    w.send(&[ix], &live.delegate, &[]).expect_err("not a vault");
    let refused_trade = last_signature(&w);
    let txs = delivered(&w);

    let db = TestDb::new().await;
    let ingest = Ingest::default();
    // Only the two refusals: neither has (or will ever have) a session to wait for.
    let refusals: Vec<ChainTx> =
        txs.iter().filter(|t| t.signature == refused_create || t.signature == refused_trade).cloned().collect();
    let report = write_all(&db.pool, &ingest, &refusals).await;
    assert_eq!((report.written, report.parked), (2, 0), "{report:?}");
    let audit: Vec<(String, bool, String)> = sqlx::query_as(
        "SELECT action, success, error_message FROM audit_log WHERE metadata->>'chain_ref' LIKE ANY($1) ORDER BY id",
    )
    .bind(vec![format!("{refused_create}:%"), format!("{refused_trade}:%")])
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!((audit[0].0.as_str(), audit[0].1), ("chain.refused.createsession", false));
    assert!(audit[0].2.starts_with("InvalidDuration"), "{audit:?}");
    assert_eq!((audit[1].0.as_str(), audit[1].1), ("chain.refused.executetrade", false));
    assert!(audit[1].2.contains("3012") || audit[1].2.contains("3007"), "{audit:?}");
    assert_eq!(count(&db.pool, "SELECT count(*) FROM indexer_parked").await, 0);
    assert_eq!(count(&db.pool, "SELECT count(*) FROM vault_transactions").await, 0);

    // A landed transaction whose session is never indexed waits at most park_max_slots slots,
    // then moves to indexer_skipped with its reason.
    let bounded = Ingest { park_max_slots: 5, ..Ingest::default() };
    let db = TestDb::new().await;
    let orphan_trade = {
        let venue = w.new_wallet(SOL);
        w.trade(&live, &live.delegate, venue.pubkey(), None, 2, SOL / 10, 0).expect("trade");
        chain_tx(w.history.last().unwrap())
    };
    let report = write_all(&db.pool, &bounded, std::slice::from_ref(&orphan_trade)).await;
    assert_eq!(report.parked, 1);
    let mut later = orphan_trade.clone();
    later.slot += 10;
    later.signature = "1".repeat(64);
    later.instructions.clear();
    later.inner_instructions.clear();
    let report = write_all(&db.pool, &bounded, &[later]).await;
    assert_eq!(report.expired, 1, "{report:?}");
    let skipped: Vec<(String, String, String)> =
        sqlx::query_as("SELECT transaction_signature, kind, reason FROM indexer_skipped")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!((skipped[0].0.as_str(), skipped[0].1.as_str()), (orphan_trade.signature.as_str(), "session_unknown"));
    assert!(skipped[0].2.contains(&live.vault().to_string()) && skipped[0].2.contains("5 slots"), "{skipped:?}");
    assert_eq!(count(&db.pool, "SELECT count(*) FROM indexer_parked").await, 0);
}

/// The vault accounts of a litesvm world at one moment, read with the indexer's own decoding
/// (the same [`VaultState::read`] the JSON-RPC reader uses).
struct WorldAccounts {
    accounts: HashMap<Pubkey, (Pubkey, Vec<u8>)>,
    slot: u64,
}

#[async_trait::async_trait]
impl VaultAccounts for WorldAccounts {
    async fn vaults(&self, addresses: &[Pubkey]) -> anyhow::Result<Vec<VaultState>> {
        Ok(addresses
            .iter()
            .filter_map(|a| self.accounts.get(a).and_then(|(owner, data)| VaultState::read(*a, owner, data, self.slot)))
            .collect())
    }
}

#[tokio::test]
async fn an_indexer_started_from_now_bootstraps_live_sessions_from_their_accounts() {
    let mut w = VaultWorld::new();
    let venue = w.new_wallet(SOL);
    let live = w.open_sol_session(2 * SOL);
    let history_starts = w.history.len();
    w.trade(&live, &live.delegate, venue.pubkey(), None, 1, SOL / 10, 0).expect("trade");
    w.trade(&live, &live.delegate, venue.pubkey(), None, 2, SOL / 10, 0).expect("trade");
    let from_now: Vec<ChainTx> = w.history[history_starts..].iter().map(chain_tx).collect();
    let vault = live.vault();
    let account = w.account(&vault).expect("vault account");
    let accounts = WorldAccounts {
        accounts: HashMap::from([
            (vault, (account.owner, account.data)),
            (venue.pubkey(), (Pubkey::default(), vec![])),
        ]),
        slot: from_now.last().unwrap().slot,
    };

    // Without bootstrapping, every action of the session waits.
    let parked = TestDb::new().await;
    assert_eq!(write_all(&parked.pool, &Ingest::default(), &from_now).await.parked, 2);

    let db = TestDb::new().await;
    let ingest = Ingest::default().with_bootstrap(std::sync::Arc::new(accounts));
    let report = write_all(&db.pool, &ingest, &from_now).await;
    assert_eq!((report.bootstrapped, report.written, report.parked), (1, 2, 0), "{report:?}");
    let row: (bool, String, String, String, Option<String>, String) = sqlx::query_as(
        "SELECT bootstrapped, status, total_deposited::text, total_spent::text, creation_signature, parent_wallet
         FROM ephemeral_sessions WHERE vault_pda = $1",
    )
    .bind(vault.to_string())
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        (true, "active".into(), (2 * SOL).to_string(), (SOL / 5).to_string(), None, live.parent.pubkey().to_string())
    );
    let trades = count(&db.pool, "SELECT count(*) FROM vault_transactions WHERE transaction_type = 'trade'").await;
    assert_eq!(trades, 2);
    // The creation, seen later (a backfill), completes the same session instead of making another.
    let creation = chain_tx(&w.history[history_starts - 1]);
    write_all(&db.pool, &ingest, std::slice::from_ref(&creation)).await;
    let sessions: Vec<(bool, Option<String>)> =
        sqlx::query_as("SELECT bootstrapped, creation_signature FROM ephemeral_sessions")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(sessions, [(true, Some(creation.signature))]);
}

#[tokio::test]
async fn a_session_created_and_rotated_twice_in_one_transaction_keeps_every_delegation() {
    // Three delegations approved by one signature: (session, approving signature) is as unique
    // as (session, rotation), and neither may stop the batch.
    let mut w = VaultWorld::new();
    let s = w.sol_session();
    let (second, third) = (w.new_wallet(SOL / 10), w.new_wallet(SOL / 10));
    let create = sdk::create_session(
        s.parent.pubkey(),
        s.delegate.pubkey(),
        s.session.asset,
        None,
        session_args(s.session.session_id),
    );
    let rotations =
        [sdk::approve_delegate(&s.session, second.pubkey()), sdk::approve_delegate(&s.session, third.pubkey())];
    w.send(&[create, rotations[0].clone(), rotations[1].clone()], &s.parent, &[]).expect("create and rotate twice");
    let txs = delivered(&w);

    let db = TestDb::new().await;
    for _ in 0..2 {
        let report = write_all(&db.pool, &Ingest::default(), &txs).await;
        assert_eq!((report.written, report.parked, report.skipped), (txs.len(), 0, 0), "{report:?}");
    }
    let delegations: Vec<(String, i32, bool)> =
        sqlx::query_as("SELECT delegate_wallet, rotation, is_active FROM delegation_history ORDER BY rotation")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let expected = [(s.delegate.pubkey(), 0, false), (second.pubkey(), 1, false), (third.pubkey(), 2, true)];
    let expected: Vec<(String, i32, bool)> = expected.iter().map(|(k, r, a)| (k.to_string(), *r, *a)).collect();
    assert_eq!(delegations, expected);
    let (delegate,): (String,) =
        sqlx::query_as("SELECT ephemeral_wallet FROM ephemeral_sessions").fetch_one(&db.pool).await.unwrap();
    assert_eq!(delegate, third.pubkey().to_string());
}
