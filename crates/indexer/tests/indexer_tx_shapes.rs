//! Every shape of transaction that carries a vault instruction, built with the real program in
//! litesvm, through the real decoder and writer, with the exact rows each must give: several
//! vault instructions in one failing transaction (each attributed to what it did).

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

/// Every transaction of the world that names the program, as a node delivers it.
fn delivered(w: &VaultWorld) -> Vec<ChainTx> {
    w.history
        .iter()
        .filter(|r| r.mentions(&ephemeral_vault::ID))
        .map(chain_tx)
        .collect()
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
    assert_eq!(refused.custom_code(), Some(code(ephemeral_vault::errors::VaultError::PerTradeCapExceeded)));
    let signature = w.history.last().unwrap().signature().to_string();
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
