//! The dev kit's renderings of every transaction shape the testkit makes (legacy and v0 with a
//! lookup table; vault instructions top level and by CPI through the test-only router; landed
//! and failed) read back, through the indexer's own sources' parsers, as the transaction
//! [`chain_tx`] says a node reports: `getTransaction` JSON through the RPC source, the
//! Yellowstone update through its converter.

#![allow(clippy::result_large_err)] // `Outcome` carries a refused transaction's metadata

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::Instruction;
use ephemeral_vault::errors::VaultError;
use ephemeral_vault::instructions::ExecuteTradeArgs;
use ephemeral_vault::sdk;
use ephemeral_vault_testkit::*;
use serde_json::json;
use solana_signer::Signer;
use vault_devkit::recorded::{chain_tx, geyser_update};
use vault_devkit::rpc_server::get_transaction_json;
use vault_indexer::chain_tx::Commitment;
use vault_indexer::sources::rpc::read_get_transaction;
use vault_indexer::sources::yellowstone::convert::chain_tx_from_update;

const SOL: u64 = LAMPORTS_PER_SOL;

fn trade_ix(s: &TestSession, destination: Pubkey, trade_id: u64) -> Instruction {
    sdk::execute_trade(
        &s.session,
        s.delegate.pubkey(),
        destination,
        None,
        ExecuteTradeArgs { trade_id, amount: SOL / 10, fee: 5_000 },
    )
}

/// One transaction of each shape, in a world's history, and the v0 ones' lookup table.
fn shapes() -> (Vec<Recorded>, Pubkey) {
    let mut w = VaultWorld::new();
    let s = w.open_sol_session(5 * SOL);
    let destination = w.new_wallet(SOL).pubkey();
    let from = w.history.len();
    let table = w.create_lookup_table(&[s.vault(), destination, sdk::event_authority_address(), ephemeral_vault::ID]);
    let d = s.delegate.insecure_clone();
    w.send(&[trade_ix(&s, destination, 1)], &d, &[]).expect("legacy trade");
    w.send_v0(&[trade_ix(&s, destination, 2)], &d, &[], std::slice::from_ref(&table)).expect("v0 trade");
    w.send(&[router::forward(trade_ix(&s, destination, 3))], &d, &[]).expect("trade by CPI");
    w.send_v0(&[router::forward(trade_ix(&s, destination, 4))], &d, &[], std::slice::from_ref(&table))
        .expect("v0 trade by CPI");
    assert_vault_error(
        w.send_v0(&[trade_ix(&s, destination, 4)], &d, &[], std::slice::from_ref(&table)),
        VaultError::TradeIdNotIncreasing,
    );
    w.send(&[trade_ix(&s, destination, 5), router::fail()], &d, &[]).expect_err("router fails");
    w.send_v0(&[router::forward_then_fail(trade_ix(&s, destination, 5))], &d, &[], std::slice::from_ref(&table))
        .expect_err("router fails after the trade");
    let recorded = w.history[from..].to_vec();
    assert_eq!(recorded.len(), 7);
    assert_eq!(recorded.iter().filter(|r| r.is_versioned()).count(), 4);
    (recorded, table.key)
}

#[test]
fn get_transaction_json_reads_back_through_the_rpc_source_as_chain_tx() {
    let (recorded, table) = shapes();
    for r in &recorded {
        let answer = get_transaction_json(r);
        let read = read_get_transaction(&json!({ "result": answer.clone() }), Commitment::Confirmed)
            .unwrap_or_else(|e| panic!("{} does not read: {e:?}", r.signature()));
        assert_eq!(read, chain_tx(r), "transaction {}", r.signature());
        if r.is_versioned() {
            assert_eq!(answer["version"], json!(0));
            let loaded = &answer["meta"]["loadedAddresses"];
            let strings = |keys: &[Pubkey]| json!(keys.iter().map(|k| k.to_string()).collect::<Vec<_>>());
            assert_eq!(loaded["writable"], strings(&r.loaded_addresses.writable));
            assert_eq!(loaded["readonly"], strings(&r.loaded_addresses.readonly));
            assert!(!r.loaded_addresses.writable.is_empty() && !r.loaded_addresses.readonly.is_empty());
            // The signed message (base64) carries the lookups.
            let lookups = r.transaction.message.address_table_lookups().expect("v0");
            assert!(lookups.len() == 1 && lookups[0].account_key == table);
        } else {
            assert_eq!(answer["version"], json!("legacy"));
        }
    }
}

#[test]
fn geyser_updates_read_back_through_the_yellowstone_converter_as_chain_tx() {
    let (recorded, table) = shapes();
    for r in &recorded {
        let update = geyser_update(r).expect("encodes");
        let mut read = chain_tx_from_update(&update, Commitment::Confirmed).expect("decodes");
        let expected = chain_tx(r);
        // Block time comes with the block meta, not the transaction update.
        read.block_time = expected.block_time;
        assert_eq!(read, expected, "transaction {}", r.signature());

        let info = update.transaction.as_ref().expect("info");
        let message = info.transaction.as_ref().and_then(|t| t.message.as_ref()).expect("message");
        let meta = info.meta.as_ref().expect("meta");
        let bytes = |keys: &[Pubkey]| keys.iter().map(|k| k.to_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(message.versioned, r.is_versioned());
        assert_eq!(message.account_keys, bytes(r.transaction.message.static_account_keys()));
        assert_eq!(meta.loaded_writable_addresses, bytes(&r.loaded_addresses.writable));
        assert_eq!(meta.loaded_readonly_addresses, bytes(&r.loaded_addresses.readonly));
        match r.transaction.message.address_table_lookups() {
            Some(lookups) => {
                assert_eq!(message.address_table_lookups.len(), lookups.len());
                let (ours, theirs) = (&message.address_table_lookups[0], &lookups[0]);
                assert_eq!(ours.account_key, table.to_bytes().to_vec());
                assert_eq!(ours.writable_indexes, theirs.writable_indexes);
                assert_eq!(ours.readonly_indexes, theirs.readonly_indexes);
            }
            None => assert!(message.address_table_lookups.is_empty()),
        }
    }
}

/// A v0 transaction's [`chain_tx`] lists static keys, then loaded writable, then loaded readonly,
/// with the instruction account indexes as signed.
#[test]
fn chain_tx_of_a_v0_transaction_appends_the_loaded_keys() {
    let (recorded, _) = shapes();
    let r = recorded.iter().find(|r| r.is_versioned() && r.err.is_none()).expect("a landed v0 transaction");
    let tx = chain_tx(r);
    let statics = r.transaction.message.static_account_keys();
    let mut expected = statics.to_vec();
    expected.extend(&r.loaded_addresses.writable);
    expected.extend(&r.loaded_addresses.readonly);
    assert_eq!(tx.account_keys, expected);
    assert!(tx.account_keys.len() > statics.len());
    for (ours, signed) in tx.instructions.iter().zip(r.transaction.message.instructions()) {
        assert_eq!((ours.program_id_index, &ours.accounts), (signed.program_id_index, &signed.accounts));
    }
    assert!(tx.mentions(&ephemeral_vault::ID));
}
