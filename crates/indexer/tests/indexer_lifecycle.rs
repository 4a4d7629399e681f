//! The indexer's write path on a full session lifecycle of the real program: the exact rows in
//! every table; the same rows whatever the delivery (twice, reordered across batches, cut and
//! resumed); malformed and foreign transactions recorded or ignored without stopping anything.

use vault_devkit::test_db as common;
mod indexing;

use common::TestDb;
use ephemeral_vault_testkit::router;
use indexing::*;
use solana_signer::Signer;
use vault_indexer::chain_tx::{ChainTx, Commitment};
use vault_indexer::decode::decode_all;
use vault_indexer::ingest::{load_cursor, Ingest};
use vault_indexer::sources::Cursor;

fn cursor_of(tx: &ChainTx) -> Cursor {
    Cursor { slot: tx.slot, signature: Some(tx.signature.clone()) }
}

/// Each session row's name in the scenario: A (the SOL session), A2 (its id reopened after
/// cleanup), M1 and M2 (mallory's two under the same id), B (the token session).
async fn incarnation_labels(pool: &sqlx::PgPool, scenario: &Scenario) -> std::collections::HashMap<i32, &'static str> {
    let rows: Vec<(i32, String)> = sqlx::query_as(
        "SELECT id, parent_wallet FROM ephemeral_sessions ORDER BY created_slot, creation_instruction_index",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let (a, m) = (scenario.sol_session.parent.pubkey().to_string(), scenario.mallory.pubkey().to_string());
    let (mut seen_a, mut seen_m) = (0, 0);
    rows.into_iter()
        .map(|(id, parent)| {
            let name = if parent == a {
                seen_a += 1;
                if seen_a == 1 {
                    "A"
                } else {
                    "A2"
                }
            } else if parent == m {
                seen_m += 1;
                if seen_m == 1 {
                    "M1"
                } else {
                    "M2"
                }
            } else {
                "B"
            };
            (id, name)
        })
        .collect()
}

#[tokio::test]
async fn a_full_lifecycle_gives_exactly_the_expected_rows() {
    let scenario = lifecycle();
    let db = TestDb::new().await;
    let pool = &db.pool;
    let ingest = Ingest::default();
    let last = scenario.txs.last().unwrap();
    let report = ingest.write_batch(pool, "test", &decode_all(&scenario.txs), Some(&cursor_of(last))).await.unwrap();
    assert_eq!(report.skipped + report.parked, 0, "{report:?}");

    let labels = incarnation_labels(pool, &scenario).await;
    let label = |session_ref: i32| labels.get(&session_ref).copied().unwrap_or("?");
    let a = *labels.iter().find(|(_, l)| **l == "A").expect("A").0;
    let a2 = *labels.iter().find(|(_, l)| **l == "A2").expect("A2").0;
    let b = *labels.iter().find(|(_, l)| **l == "B").expect("B").0;
    assert_eq!(labels.len(), 5, "A, A reopened, mallory's two, B: {labels:?}");

    // Sessions
    let (status, is_active, wallet, deposited, spent, withdrawn, top_ups, revoked, cleaned): (
        String,
        bool,
        String,
        String,
        String,
        String,
        String,
        Option<i64>,
        Option<i64>,
    ) = sqlx::query_as(
        "SELECT status, is_active, ephemeral_wallet, total_deposited::text, total_spent::text, total_withdrawn::text,
            total_fee_top_ups::text, revoked_at, cleaned_at FROM ephemeral_sessions WHERE id = $1",
    )
    .bind(a)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), is_active), ("cleaned", false));
    assert_eq!(wallet, scenario.rotated_delegate.pubkey().to_string(), "the current delegate is the rotated one");
    assert_eq!(deposited, (6 * SOL).to_string(), "the rolled-back deposit is not counted");
    let spent_a = SOL / 10 + 1_000 + SOL / 5 + 2_000 + 2 * SOL + 5_000_000 + SOL / 2;
    assert_eq!(spent, spent_a.to_string());
    assert_eq!((withdrawn.as_str(), top_ups.as_str()), ("0", "5000000"));
    assert!(revoked.is_some() && cleaned.is_some());
    let reopened: (String, String, String, String) = sqlx::query_as(
        "SELECT status, ephemeral_wallet, total_deposited::text, total_spent::text FROM ephemeral_sessions WHERE id = $1",
    )
    .bind(a2)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        reopened,
        ("active".into(), scenario.reopened.delegate.pubkey().to_string(), SOL.to_string(), (3 * SOL / 10).to_string()),
        "three landed trades: top-level, by CPI, v0"
    );
    let mallorys: Vec<(String, String)> = sqlx::query_as(
        "SELECT status, approved_amount::text FROM ephemeral_sessions WHERE parent_wallet = $1
         ORDER BY created_slot, creation_instruction_index",
    )
    .bind(scenario.mallory.pubkey().to_string())
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(mallorys, [("cleaned".into(), "10000".into()), ("active".into(), "20000".into())]);
    let (status_b, mint_b, deposited_b, revoked_b): (String, Option<String>, String, Option<i64>) =
        sqlx::query_as("SELECT status, mint, total_deposited::text, revoked_at FROM ephemeral_sessions WHERE id = $1")
            .bind(b)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(status_b, "cleaned");
    assert_eq!(mint_b, scenario.token_session.mint.map(|m| m.address.to_string()));
    assert_eq!(deposited_b, (40_000_000u64 - 400_000).to_string(), "what arrived after the 1% transfer fee");
    assert_eq!(revoked_b, None, "expired, never revoked");

    // Transactions, by session, type and status
    let rows: Vec<(i32, String, String, i64)> = sqlx::query_as(
        "SELECT session_ref, transaction_type, status, count(*) FROM vault_transactions
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut got: Vec<(&str, &str, &str, i64)> =
        rows.iter().map(|(s, t, st, n)| (label(*s), t.as_str(), st.as_str(), *n)).collect();
    let mut expected = vec![
        ("A", "approve_delegate", "confirmed", 1),
        ("A", "cleanup", "confirmed", 1),
        ("A", "create", "confirmed", 1),
        ("A", "deposit", "confirmed", 2),
        ("A", "deposit", "failed", 1),
        ("A", "revoke", "confirmed", 1),
        ("A", "top_up", "confirmed", 1),
        ("A", "trade", "confirmed", 4),
        ("A", "trade", "failed", 3),
        ("A2", "create", "confirmed", 1),
        ("A2", "deposit", "confirmed", 1),
        ("A2", "trade", "confirmed", 3),
        ("A2", "trade", "failed", 1),
        ("M1", "cleanup", "confirmed", 1),
        ("M1", "create", "confirmed", 1),
        ("M1", "deposit", "confirmed", 1),
        ("M1", "revoke", "confirmed", 1),
        ("M2", "create", "confirmed", 1),
        ("B", "cleanup", "confirmed", 1),
        ("B", "create", "confirmed", 1),
        ("B", "deposit", "confirmed", 1),
        ("B", "trade", "confirmed", 1),
        ("B", "trade", "failed", 2),
    ];
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    let refused: Vec<(String,)> = sqlx::query_as(
        "SELECT error_message FROM vault_transactions WHERE status = 'failed' AND transaction_type = 'trade'
         ORDER BY block_slot",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(refused[0].0.starts_with("PerTradeCapExceeded (6015)"), "{refused:?}");
    assert!(refused[1].0.starts_with("NotDelegate (6014)"), "{refused:?}");
    assert!(refused[2].0.starts_with("PerTradeCapExceeded (6015)"), "{refused:?}");
    assert!(refused[3].0.starts_with("SessionExpired (6012)"), "{refused:?}");
    assert!(refused[4].0.starts_with("SessionExpired (6012)"), "by CPI: {refused:?}");
    assert_eq!(
        refused[5].0,
        format!("rolled back: instruction 1 (program {}) failed: InstructionError(1, Custom(6012))", router::ID),
        "another program's 6012 is not the vault's SessionExpired"
    );
    let (rolled_back,): (String,) = sqlx::query_as(
        "SELECT error_message FROM vault_transactions WHERE status = 'failed' AND transaction_type = 'deposit'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(
        rolled_back.starts_with(&format!("rolled back: instruction 1 (program {})", ephemeral_vault::ID)),
        "{rolled_back}"
    );

    // Delegations: the first delegate ended by the rotation, the second by the revocation; each
    // session of the reused id has its own.
    let delegations: Vec<(i32, i32, String, bool, bool)> = sqlx::query_as(
        "SELECT session_ref, rotation, delegate_wallet, is_active, revoked_at IS NOT NULL FROM delegation_history",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut delegations: Vec<(&str, i32, Option<String>, bool, bool)> = delegations
        .into_iter()
        .map(|(s, rotation, wallet, active, ended)| {
            let named = ["A", "A2", "B"].contains(&label(s)).then_some(wallet);
            (label(s), rotation, named, active, ended)
        })
        .collect();
    delegations.sort();
    assert_eq!(
        delegations,
        vec![
            ("A", 0, Some(scenario.sol_session.delegate.pubkey().to_string()), false, true),
            ("A", 1, Some(scenario.rotated_delegate.pubkey().to_string()), false, true),
            ("A2", 0, Some(scenario.reopened.delegate.pubkey().to_string()), true, false),
            ("B", 0, Some(scenario.token_session.delegate.pubkey().to_string()), false, true),
            ("M1", 0, None, false, true),
            ("M2", 0, None, true, false),
        ]
    );

    // Cleanups: who was paid, why, and what went home.
    let cleanups: Vec<(i32, String, String, String)> = sqlx::query_as(
        "SELECT session_ref, cleanup_reason, cleanup_caller, returned_to_parent::text FROM cleanup_events",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut cleanups: Vec<(&str, String, String, String)> =
        cleanups.into_iter().map(|(s, reason, caller, returned)| (label(s), reason, caller, returned)).collect();
    cleanups.sort();
    let caller = scenario.caller.pubkey().to_string();
    assert_eq!(
        cleanups,
        vec![
            ("A", "manual_revoke".into(), caller.clone(), (6 * SOL - spent_a).to_string()),
            ("B", "expired".into(), caller, (40_000_000u64 - 400_000 - 5_000_000).to_string()),
            ("M1", "manual_revoke".into(), scenario.mallory.pubkey().to_string(), "5000".into()),
        ]
    );

    // Analytics: successful and refused trades per session.
    let analytics: Vec<(i32, i32, i32, i32)> =
        sqlx::query_as("SELECT session_ref, total_trades, successful_trades, failed_trades FROM session_analytics")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut analytics: Vec<(&str, i32, i32, i32)> =
        analytics.into_iter().map(|(s, total, ok, failed)| (label(s), total, ok, failed)).collect();
    analytics.sort();
    assert_eq!(analytics, vec![("A", 7, 4, 3), ("A2", 4, 3, 1), ("B", 3, 1, 2), ("M1", 0, 0, 0), ("M2", 0, 0, 0)]);

    // Alerts: the 50%-of-cap trade and the use after expiry; nothing for normal activity.
    let alerts: Vec<(i32, String, String)> =
        sqlx::query_as("SELECT session_ref, alert_type, severity FROM security_alerts ORDER BY alert_type")
            .fetch_all(pool)
            .await
            .unwrap();
    let alerts: Vec<(&str, &str, &str)> = alerts.iter().map(|(s, t, v)| (label(*s), t.as_str(), v.as_str())).collect();
    assert_eq!(
        alerts,
        vec![("B", "expired_session", "medium"), ("B", "expired_session", "medium"), ("A", "unusual_spending", "high")],
        "the refusals after expiry (top-level and by CPI); none for the router's own failure"
    );

    // Audit: one row per on-chain action (config + 13 + 2 + 3 + 3 for the SOL session and its
    // reopening, 5 for mallory's transaction, 6 for the token session), and the chain verifies.
    assert_eq!(count(pool, "SELECT count(*) FROM audit_log WHERE action LIKE 'chain.%'").await, 33);
    assert_eq!(count(pool, "SELECT count(*) FROM audit_log WHERE NOT success").await, 7);
    assert!(vault_db::audit::verify_chain(pool).await.unwrap().is_none());

    assert_eq!(load_cursor(pool, "test").await.unwrap(), Some(cursor_of(last)));
}

#[tokio::test]
async fn duplicates_reordering_and_resumption_give_the_same_rows() {
    let scenario = lifecycle();
    let ingest = Ingest::default();
    let expected = reference_rows(&scenario.txs).await;

    // Twice, in batches of three.
    let twice = TestDb::new().await;
    for _ in 0..2 {
        for chunk in scenario.txs.chunks(3) {
            ingest
                .write_batch(&twice.pool, "test", &decode_all(chunk), Some(&cursor_of(chunk.last().unwrap())))
                .await
                .unwrap();
        }
    }
    assert_same_rows(&dump(&twice.pool).await, &expected, "delivered twice");

    // Backwards, one transaction per batch: every session's creation arrives last.
    let reversed = TestDb::new().await;
    for tx in scenario.txs.iter().rev() {
        ingest.write_batch(&reversed.pool, "test", &decode_all(std::slice::from_ref(tx)), None).await.unwrap();
    }
    assert_same_rows(&dump(&reversed.pool).await, &expected, "delivered in reverse");
    assert_eq!(count(&reversed.pool, "SELECT count(*) FROM indexer_parked").await, 0);

    // Interleaved chunks (odd batches first), then the whole stream again from the middle.
    let shuffled = TestDb::new().await;
    let chunks: Vec<&[ChainTx]> = scenario.txs.chunks(4).collect();
    for chunk in chunks.iter().skip(1).step_by(2).chain(chunks.iter().step_by(2)) {
        ingest.write_batch(&shuffled.pool, "test", &decode_all(chunk), None).await.unwrap();
    }
    let middle = scenario.txs.len() / 2;
    ingest.write_batch(&shuffled.pool, "test", &decode_all(&scenario.txs[middle..]), None).await.unwrap();
    assert_same_rows(&dump(&shuffled.pool).await, &expected, "shuffled and replayed");

    // Cut after a batch and resumed from the stored cursor by a fresh ingest.
    let resumed = TestDb::new().await;
    let (first, _) = scenario.txs.split_at(middle);
    ingest
        .write_batch(&resumed.pool, "test", &decode_all(first), Some(&cursor_of(first.last().unwrap())))
        .await
        .unwrap();
    let cursor = load_cursor(&resumed.pool, "test").await.unwrap().unwrap();
    let rest: Vec<ChainTx> = scenario.txs.iter().filter(|tx| tx.slot >= cursor.slot).cloned().collect();
    Ingest::default()
        .write_batch(&resumed.pool, "test", &decode_all(&rest), Some(&cursor_of(rest.last().unwrap())))
        .await
        .unwrap();
    assert_same_rows(&dump(&resumed.pool).await, &expected, "cut and resumed");

    // A later finalized delivery only moves statuses forward.
    let finalized: Vec<ChainTx> = scenario
        .txs
        .iter()
        .cloned()
        .map(|mut tx| {
            tx.commitment = Commitment::Finalized;
            tx
        })
        .collect();
    ingest.write_batch(&resumed.pool, "test-finalized", &decode_all(&finalized), None).await.unwrap();
    assert_eq!(count(&resumed.pool, "SELECT count(*) FROM vault_transactions WHERE status = 'confirmed'").await, 0);
    assert_eq!(count(&resumed.pool, "SELECT count(*) FROM vault_transactions WHERE status = 'failed'").await, 7);
    ingest.write_batch(&resumed.pool, "test", &decode_all(&scenario.txs), None).await.unwrap();
    assert_eq!(count(&resumed.pool, "SELECT count(*) FROM vault_transactions WHERE status = 'confirmed'").await, 0);
}

#[tokio::test]
async fn malformed_and_foreign_transactions_are_recorded_or_ignored_and_the_stream_goes_on() {
    let scenario = lifecycle();
    let db = TestDb::new().await;
    let ingest = Ingest::default();
    let mut stream = scenario.txs.clone();

    // Garbage sent to the program: recorded as skipped with its reason.
    let mut garbage = scenario.txs[3].clone();
    garbage.signature = bs58::encode([7u8; 64]).into_string();
    garbage.failure = Some(vault_indexer::chain_tx::TxFailure {
        instruction_index: Some(0),
        custom_code: Some(101),
        message: "InstructionError(0, Custom(101))".into(),
    });
    let program_ix = garbage
        .instructions
        .iter()
        .position(|ix| garbage.account_keys[ix.program_id_index as usize] == ephemeral_vault::ID)
        .unwrap();
    garbage.instructions[program_ix].data = vec![1, 2, 3];
    // A forged event: event-shaped data in a CPI not signed by the event authority.
    let mut forged = scenario.txs[2].clone();
    forged.signature = bs58::encode([8u8; 64]).into_string();
    for group in &mut forged.inner_instructions {
        for ix in group.iter_mut() {
            if ix.accounts.len() == 1 {
                ix.accounts[0] = 0; // the fee payer instead of the event authority
            }
        }
    }
    // A transaction of another program that never names ours: ignored.
    let mut foreign = scenario.txs[2].clone();
    foreign.signature = bs58::encode([9u8; 64]).into_string();
    foreign.account_keys.retain(|k| *k != ephemeral_vault::ID);
    foreign.instructions.clear();
    foreign.inner_instructions.clear();
    stream.insert(4, garbage.clone());
    stream.insert(5, forged.clone());
    stream.insert(6, foreign);

    let report = ingest.write_batch(&db.pool, "test", &decode_all(&stream), None).await.unwrap();
    assert_eq!((report.skipped, report.ignored), (2, 1), "{report:?}");
    let skipped: Vec<(String, String)> =
        sqlx::query_as("SELECT transaction_signature, reason FROM indexer_skipped ORDER BY transaction_signature")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(skipped.len(), 2);
    assert!(
        skipped.iter().any(|(s, r)| *s == garbage.signature && r.contains("shorter than a discriminator")),
        "{skipped:?}"
    );
    assert!(
        skipped.iter().any(|(s, r)| *s == forged.signature && r.contains("without the event authority")),
        "{skipped:?}"
    );
    // Everything else is as if the bad transactions had never been there.
    let expected = reference_rows(&scenario.txs).await;
    let strip = |rows: Vec<String>| {
        rows.into_iter()
            .filter(|r| !r.contains(&garbage.signature) && !r.contains(&forged.signature))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(dump(&db.pool).await), strip(expected));
}
