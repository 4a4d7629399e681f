//! Every shape of transaction that carries a vault instruction, built with the real program in
//! litesvm, through the real decoder and writer, with the exact rows each must give: a vault
//! instruction reached by CPI from another program (the test-only router) that lands or fails;
//! a transaction failed by ANOTHER program with a code the vault also uses (6012); several vault
//! instructions in one failing transaction; a v0 transaction loading the vault, the destination
//! and the event authority from a lookup table, through the RPC and the gRPC wire formats; and
//! an event-shaped call without the event tag (ignored).

use vault_devkit::test_db as common;
mod indexing;

use common::TestDb;
use ephemeral_vault::instructions::ExecuteTradeArgs;
use ephemeral_vault::sdk;
use ephemeral_vault_testkit::*;
use indexing::*;
use solana_signer::Signer;
use sqlx::PgPool;
use vault_indexer::chain_tx::ChainTx;
use vault_indexer::decode::decode_all;
use vault_indexer::ingest::Ingest;

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::{AccountMeta, Instruction};
use ephemeral_vault::errors::VaultError;
use ephemeral_vault_testkit::router;
use vault_devkit::rpc_server::get_transaction_json;

/// Rows of every transaction of `w` written by a fresh indexer; the database.
async fn indexed(w: &VaultWorld) -> TestDb {
    let db = TestDb::new().await;
    let report = Ingest::default().write_batch(&db.pool, "test", &decode_all(&delivered(w)), None).await.unwrap();
    assert_eq!((report.parked, report.skipped), (0, 0), "{report:?}");
    db
}

fn last_signature(w: &VaultWorld) -> String {
    w.history.last().expect("sent").signature().to_string()
}

fn trade_ix(s: &TestSession, delegate: &Pubkey, venue: &Pubkey, trade_id: u64, amount: u64) -> Instruction {
    sdk::execute_trade(&s.session, *delegate, *venue, None, ExecuteTradeArgs { trade_id, amount, fee: 0 })
}

async fn alert_types(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT alert_type FROM security_alerts ORDER BY id").fetch_all(pool).await.unwrap()
}

#[tokio::test]
async fn a_vault_instruction_reached_by_cpi_is_recorded_whether_it_lands_or_fails() {
    let mut w = VaultWorld::new();
    let venue = w.new_wallet(SOL);
    let s = w.open_sol_session(2 * SOL);
    let d = s.delegate.pubkey();
    w.send(&[router::forward(trade_ix(&s, &d, &venue.pubkey(), 1, SOL / 10))], &s.delegate, &[]).expect("lands by CPI");
    let landed = last_signature(&w);
    w.advance(3_601);
    w.send(&[router::forward(trade_ix(&s, &d, &venue.pubkey(), 2, SOL / 10))], &s.delegate, &[])
        .expect_err("expired, refused by the vault under the router");
    let refused = last_signature(&w);
    let db = indexed(&w).await;
    let vault = ephemeral_vault::ID.to_string();
    assert_eq!(
        rows_of_signature(&db.pool, &landed).await,
        [("trade".into(), (SOL / 10).to_string(), "confirmed".into(), None, None, None)]
    );
    assert_eq!(
        rows_of_signature(&db.pool, &refused).await,
        [(
            "trade".into(),
            (SOL / 10).to_string(),
            "failed".into(),
            Some("SessionExpired (6012): The session has expired".into()),
            Some(vault),
            None
        )]
    );
    // The vault refused it: its alert rules apply, as to a top-level refusal.
    assert_eq!(alert_types(&db.pool).await, ["expired_session"]);
    let audit: i64 = count(&db.pool, "SELECT count(*) FROM audit_log WHERE NOT success").await;
    assert_eq!(audit, 1);
}

#[tokio::test]
async fn a_failure_of_another_program_is_attributed_to_it_and_raises_no_vault_alert() {
    let mut w = VaultWorld::new();
    let venue = w.new_wallet(SOL);
    let s = w.open_sol_session(2 * SOL);
    let d = s.delegate.pubkey();
    // [vault execute_trade on a live session, router fail with its own 6012]: the number is the
    // vault's SessionExpired too.
    let refused = w.send(&[trade_ix(&s, &d, &venue.pubkey(), 1, SOL / 10), router::fail()], &s.delegate, &[]);
    assert_eq!(refused.expect_err("the router failed it").custom_code(), Some(router::FAIL_CODE));
    let after_trade = last_signature(&w);
    // The router calls the vault (which succeeds), then fails.
    w.send(&[router::forward_then_fail(trade_ix(&s, &d, &venue.pubkey(), 2, SOL / 10))], &s.delegate, &[])
        .expect_err("the router failed after the vault's success");
    let inside = last_signature(&w);
    let db = indexed(&w).await;
    let router_id = router::ID.to_string();
    let rolled_back = |index: u8| {
        (
            "trade".to_string(),
            (SOL / 10).to_string(),
            "failed".to_string(),
            Some(format!(
                "rolled back: instruction {index} (program {router_id}) failed: InstructionError({index}, Custom(6012))"
            )),
            None,
            Some(format!(r#"{{"program": "{router_id}", "instruction_index": {index}}}"#)),
        )
    };
    assert_eq!(rows_of_signature(&db.pool, &after_trade).await, [rolled_back(1)]);
    assert_eq!(rows_of_signature(&db.pool, &inside).await, [rolled_back(0)]);
    assert!(alert_types(&db.pool).await.is_empty(), "no vault alert for another program's failure");
    let (status, spent): (String, String) =
        sqlx::query_as("SELECT status, total_spent::text FROM ephemeral_sessions").fetch_one(&db.pool).await.unwrap();
    assert_eq!((status.as_str(), spent.as_str()), ("active", "0"));
}

#[tokio::test]
async fn a_v0_transaction_with_a_lookup_table_gives_the_rows_of_a_legacy_one_over_rpc_and_grpc() {
    use solana_transaction_status_client_types::EncodedConfirmedTransactionWithStatusMeta;
    use vault_indexer::chain_tx::Commitment;
    use vault_indexer::sources::rpc::chain_tx_from_rpc;
    use vault_indexer::sources::yellowstone::convert::chain_tx_from_update;

    let mut w = VaultWorld::new();
    let venue = w.new_wallet(SOL);
    let s = w.open_sol_session(2 * SOL);
    let d = s.delegate.pubkey();
    w.trade(&s, &s.delegate, venue.pubkey(), None, 1, SOL / 10, 0).expect("legacy trade");
    let legacy = last_signature(&w);
    let table = w.create_lookup_table(&[s.vault(), venue.pubkey(), sdk::event_authority_address()]);
    w.send_v0(&[trade_ix(&s, &d, &venue.pubkey(), 2, SOL / 10)], &s.delegate, &[], &[table]).expect("v0 trade");
    let v0 = w.history.last().unwrap().clone();
    assert!(v0.is_versioned() && !v0.loaded_addresses.writable.is_empty(), "the vault came from the table");

    // The same transaction as each wire format delivers it, decoded by the sources' own code.
    let direct = chain_tx(&v0);
    let response: EncodedConfirmedTransactionWithStatusMeta =
        serde_json::from_value(get_transaction_json(&v0)).expect("getTransaction JSON");
    let over_rpc = chain_tx_from_rpc(&response, Commitment::Confirmed).expect("RPC decodes");
    let update = vault_devkit::recorded::geyser_update(&v0).expect("a Yellowstone update");
    let over_grpc = chain_tx_from_update(&update, Commitment::Confirmed).expect("gRPC decodes");
    let mut dumps = vec![];
    for v0_tx in [direct, over_rpc, over_grpc] {
        let db = TestDb::new().await;
        let mut txs: Vec<ChainTx> = delivered(&w).into_iter().filter(|t| t.signature != v0_tx.signature).collect();
        txs.push(v0_tx);
        Ingest::default().write_batch(&db.pool, "test", &decode_all(&txs), None).await.unwrap();
        // The v0 trade's row has the legacy trade's shape, on the same session.
        let rows = rows_of_signature(&db.pool, &v0.signature().to_string()).await;
        assert_eq!(rows, rows_of_signature(&db.pool, &legacy).await);
        assert_eq!(rows, [("trade".into(), (SOL / 10).to_string(), "confirmed".into(), None, None, None)]);
        let spent: String =
            sqlx::query_scalar("SELECT total_spent::text FROM ephemeral_sessions").fetch_one(&db.pool).await.unwrap();
        assert_eq!(spent, (SOL / 5).to_string());
        dumps.push(dump(&db.pool).await);
    }
    assert_same_rows(&dumps[1], &dumps[0], "over RPC");
    assert_same_rows(&dumps[2], &dumps[0], "over gRPC");
}

#[tokio::test]
async fn an_event_shaped_call_without_the_event_tag_is_ignored() {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(SOL);
    // The router calls the vault with the event authority as the only account and data that is
    // not an event: the vault refuses it, and the indexer records nothing of it.
    let junk = Instruction::new_with_bytes(
        ephemeral_vault::ID,
        b"not an event, not an instruction",
        vec![AccountMeta::new_readonly(sdk::event_authority_address(), false)],
    );
    w.send(&[router::forward(junk)], &s.parent, &[]).expect_err("the vault refuses it");
    let signature = last_signature(&w);
    let db = TestDb::new().await;
    let tx = chain_tx(w.history.last().unwrap());
    assert!(tx.inner_instructions.iter().flatten().any(|i| tx.key(i.program_id_index) == Some(&ephemeral_vault::ID)));
    let report = Ingest::default().write_batch(&db.pool, "test", &decode_all(&[tx]), None).await.unwrap();
    assert_eq!((report.ignored, report.skipped, report.written), (1, 0, 0), "{report:?}");
    assert!(rows_of_signature(&db.pool, &signature).await.is_empty());
}

/// One vault_transactions row: type, amount, status, error, failed_program, rolled_back_by.
type Row = (String, String, String, Option<String>, Option<String>, Option<String>);

async fn rows_of_signature(pool: &PgPool, signature: &str) -> Vec<Row> {
    sqlx::query_as(
        "SELECT transaction_type, amount::text, status, error_message, metadata->>'failed_program',
            metadata->>'rolled_back_by'
         FROM vault_transactions WHERE transaction_signature = $1 ORDER BY instruction_index",
    )
    .bind(signature)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn several_vault_instructions_in_a_failing_transaction_are_each_attributed() {
    let mut w = VaultWorld::new();
    let venue = w.new_wallet(SOL);
    let s = w.open_sol_session(2 * SOL);
    // [deposit by the parent (fine on its own), execute_trade over the per-trade cap (refused)].
    let ixs = [
        sdk::deposit(&s.session, None, SOL / 2),
        sdk::execute_trade(
            &s.session,
            s.delegate.pubkey(),
            venue.pubkey(),
            None,
            ExecuteTradeArgs { trade_id: 1, amount: 2 * SOL, fee: 0 },
        ),
    ];
    let refused = w.send(&ixs, &s.parent, &[&s.delegate]).expect_err("over the cap");
    assert_eq!(refused.custom_code(), Some(code(VaultError::PerTradeCapExceeded)));
    let signature = last_signature(&w);
    let txs = delivered(&w);

    let db = TestDb::new().await;
    Ingest::default().write_batch(&db.pool, "test", &decode_all(&txs), None).await.unwrap();
    let rows = rows_of_signature(&db.pool, &signature).await;
    let vault = ephemeral_vault::ID.to_string();
    let failure =
        format!("InstructionError(1, Custom({}))", code(ephemeral_vault::errors::VaultError::PerTradeCapExceeded));
    assert_eq!(
        rows,
        [
            (
                "deposit".into(),
                (SOL / 2).to_string(),
                "failed".into(),
                Some(format!("rolled back: instruction 1 (program {vault}) failed: {failure}")),
                None,
                Some(format!(r#"{{"program": "{vault}", "instruction_index": 1}}"#)),
            ),
            (
                "trade".into(),
                (2 * SOL).to_string(),
                "failed".into(),
                Some("PerTradeCapExceeded (6015): Trade amount exceeds the per-trade cap".into()),
                Some(vault.clone()),
                None,
            ),
        ]
    );
    // The session's totals are the chain's: neither instruction changed them.
    let (deposited, spent): (String, String) =
        sqlx::query_as("SELECT total_deposited::text, total_spent::text FROM ephemeral_sessions")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((deposited, spent), ((2 * SOL).to_string(), "0".to_string()));
}
