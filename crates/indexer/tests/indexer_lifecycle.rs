//! The indexer's write path on a full session lifecycle of the real program: the exact rows in
//! every table; the same rows whatever the delivery (twice, reordered across batches, cut and
//! resumed); malformed and foreign transactions recorded or ignored without stopping anything.

use vault_devkit::test_db as common;
mod indexing;

use common::TestDb;
use indexing::*;
use solana_signer::Signer;
use vault_indexer::chain_tx::{ChainTx, Commitment};
use vault_indexer::decode::decode_all;
use vault_indexer::ingest::{load_cursor, session_uuid, Ingest};
use vault_indexer::sources::Cursor;

fn cursor_of(tx: &ChainTx) -> Cursor {
    Cursor { slot: tx.slot, signature: Some(tx.signature.clone()) }
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

    let a = session_uuid(&scenario.sol_session.session.session_id);
    let b = session_uuid(&scenario.token_session.session.session_id);

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
            total_fee_top_ups::text, revoked_at, cleaned_at FROM ephemeral_sessions WHERE session_id = $1",
    )
    .bind(&a)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), is_active), ("cleaned", false));
    assert_eq!(wallet, scenario.rotated_delegate.pubkey().to_string(), "the current delegate is the rotated one");
    assert_eq!(deposited, (6 * SOL).to_string());
    let spent_a = SOL / 10 + 1_000 + SOL / 5 + 2_000 + 2 * SOL + 5_000_000 + SOL / 2;
    assert_eq!(spent, spent_a.to_string());
    assert_eq!((withdrawn.as_str(), top_ups.as_str()), ("0", "5000000"));
    assert!(revoked.is_some() && cleaned.is_some());
    let (status_b, mint_b, deposited_b, revoked_b): (String, Option<String>, String, Option<i64>) = sqlx::query_as(
        "SELECT status, mint, total_deposited::text, revoked_at FROM ephemeral_sessions WHERE session_id = $1",
    )
    .bind(&b)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(status_b, "cleaned");
    assert_eq!(mint_b, scenario.token_session.mint.map(|m| m.address.to_string()));
    assert_eq!(deposited_b, (40_000_000u64 - 400_000).to_string(), "what arrived after the 1% transfer fee");
    assert_eq!(revoked_b, None, "expired, never revoked");

    // Transactions, by session, type and status
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT session_id, transaction_type, status, count(*) FROM vault_transactions
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let got: Vec<(String, &str, &str, i64)> = rows
        .iter()
        .map(|(s, t, st, n)| (if *s == a { "A".to_string() } else { "B".to_string() }, t.as_str(), st.as_str(), *n))
        .collect();
    let mut expected = vec![
        ("A".to_string(), "approve_delegate", "confirmed", 1),
        ("A".to_string(), "cleanup", "confirmed", 1),
        ("A".to_string(), "create", "confirmed", 1),
        ("A".to_string(), "deposit", "confirmed", 2),
        ("A".to_string(), "revoke", "confirmed", 1),
        ("A".to_string(), "top_up", "confirmed", 1),
        ("A".to_string(), "trade", "confirmed", 4),
        ("A".to_string(), "trade", "failed", 2),
        ("B".to_string(), "cleanup", "confirmed", 1),
        ("B".to_string(), "create", "confirmed", 1),
        ("B".to_string(), "deposit", "confirmed", 1),
        ("B".to_string(), "trade", "confirmed", 1),
        ("B".to_string(), "trade", "failed", 1),
    ];
    let mut got_sorted = got.clone();
    got_sorted.sort();
    expected.sort();
    assert_eq!(got_sorted, expected);
    let refused: Vec<(String,)> =
        sqlx::query_as("SELECT error_message FROM vault_transactions WHERE status = 'failed' ORDER BY block_slot")
            .fetch_all(pool)
            .await
            .unwrap();
    assert!(refused[0].0.starts_with("PerTradeCapExceeded (6015)"), "{refused:?}");
    assert!(refused[1].0.starts_with("NotDelegate (6014)"), "{refused:?}");
    assert!(refused[2].0.starts_with("SessionExpired (6012)"), "{refused:?}");

    // Delegations: the first delegate ended by the rotation, the second by the revocation.
    let delegations: Vec<(String, i32, String, bool, bool)> = sqlx::query_as(
        "SELECT session_id, rotation, delegate_wallet, is_active, revoked_at IS NOT NULL FROM delegation_history
         ORDER BY session_id = $1 DESC, rotation",
    )
    .bind(&a)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        delegations,
        vec![
            (a.clone(), 0, scenario.sol_session.delegate.pubkey().to_string(), false, true),
            (a.clone(), 1, scenario.rotated_delegate.pubkey().to_string(), false, true),
            (b.clone(), 0, scenario.token_session.delegate.pubkey().to_string(), false, true),
        ]
    );

    // Cleanups: who was paid, why, and what went home.
    let cleanups: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT session_id, cleanup_reason, cleanup_caller, returned_to_parent::text FROM cleanup_events
         ORDER BY session_id = $1 DESC",
    )
    .bind(&a)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(cleanups.len(), 2);
    assert_eq!((cleanups[0].1.as_str(), cleanups[1].1.as_str()), ("manual_revoke", "expired"));
    assert!(cleanups.iter().all(|c| c.2 == scenario.caller.pubkey().to_string()));
    assert_eq!(cleanups[0].3, (6 * SOL - spent_a).to_string());
    assert_eq!(cleanups[1].3, (40_000_000u64 - 400_000 - 5_000_000).to_string());
    let (rewards,): (String,) =
        sqlx::query_as("SELECT sum(cleanup_reward)::text FROM cleanup_events").fetch_one(pool).await.unwrap();
    assert!(rewards.parse::<u64>().unwrap() > 0);

    // Analytics: successful and refused trades per session.
    let analytics: Vec<(String, i32, i32, i32)> = sqlx::query_as(
        "SELECT session_id, total_trades, successful_trades, failed_trades FROM session_analytics ORDER BY session_id = $1 DESC",
    )
    .bind(&a)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(analytics, vec![(a.clone(), 6, 4, 2), (b.clone(), 2, 1, 1)]);

    // Alerts: the 50%-of-cap trade and the use after expiry; nothing for normal activity.
    let alerts: Vec<(String, String, String)> =
        sqlx::query_as("SELECT session_id, alert_type, severity FROM security_alerts ORDER BY alert_type")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        alerts,
        vec![
            (b.clone(), "expired_session".into(), "medium".into()),
            (a.clone(), "unusual_spending".into(), "high".into())
        ]
    );

    // Audit: one row per on-chain action (config + 13 + 5), and the chain verifies.
    assert_eq!(count(pool, "SELECT count(*) FROM audit_log WHERE action LIKE 'chain.%'").await, 19);
    assert_eq!(count(pool, "SELECT count(*) FROM audit_log WHERE NOT success").await, 3);
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
    assert_eq!(count(&resumed.pool, "SELECT count(*) FROM vault_transactions WHERE status = 'failed'").await, 3);
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
