//! The RPC source's decoding, on the wire format a node sends: each transaction of the lifecycle
//! is rendered as `getTransaction` JSON (base64 encoding, as the source requests it), parsed by
//! solana-rpc-client's own types and decoded; the result must equal what the gRPC path and the
//! tests' direct path see. Against a live node: tests/main_job.rs and tests/indexer_gap_rpc.rs.

use vault_devkit::test_db as common;
mod indexing;

use base64::Engine;
use indexing::*;
use serde_json::json;
use solana_transaction_status_client_types::EncodedConfirmedTransactionWithStatusMeta;
use vault_devkit::rpc_server::get_transaction_json;
use vault_indexer::chain_tx::Commitment;
use vault_indexer::sources::rpc::{chain_tx_from_rpc, read_get_transaction, MAX_SUPPORTED_TRANSACTION_VERSION};

#[test]
fn get_transaction_responses_decode_to_the_same_transactions() {
    let scenario = lifecycle();
    assert!(scenario.recorded.iter().any(|r| r.err.is_some()), "the scenario has failed transactions");
    for (recorded, expected) in scenario.recorded.iter().zip(&scenario.txs) {
        let response: EncodedConfirmedTransactionWithStatusMeta =
            serde_json::from_value(get_transaction_json(recorded)).expect("a getTransaction response");
        let decoded = chain_tx_from_rpc(&response, Commitment::Confirmed).expect("decodes");
        assert_eq!(&decoded, expected, "transaction {}", expected.signature);
    }
}

/// The source asks nodes for transactions up to [`MAX_SUPPORTED_TRANSACTION_VERSION`]; that must
/// be a version the client crates decode: a v1 transaction (solana-message's `V1`) in a
/// `getTransaction` answer reads into the same keys and instruction.
#[test]
fn the_newest_version_the_source_asks_for_decodes() {
    use anchor_lang::solana_program::instruction::{AccountMeta, Instruction};
    use solana_keypair::Keypair;
    use solana_message::VersionedMessage;
    use solana_signer::Signer;
    use solana_transaction::versioned::VersionedTransaction;

    assert_eq!(MAX_SUPPORTED_TRANSACTION_VERSION, 1);
    let payer = Keypair::new();
    let ix = Instruction::new_with_bytes(ephemeral_vault::ID, &[7, 8, 9], vec![AccountMeta::new(payer.pubkey(), true)]);
    let message = solana_message::v1::Message::try_compile_with_config(
        &payer.pubkey(),
        &[ix],
        solana_hash::Hash::new_unique(),
        Default::default(),
    )
    .expect("a v1 message");
    let tx = VersionedTransaction::try_new(VersionedMessage::V1(message), &[&payer]).expect("signed");
    let wire = wincode::serialize(&tx).expect("serialize");
    let answer = json!({ "result": {
        "slot": 42,
        "blockTime": 1_700_000_000,
        "transaction": [base64::engine::general_purpose::STANDARD.encode(wire), "base64"],
        "meta": {
            "err": null, "status": { "Ok": null }, "fee": 5000, "preBalances": [], "postBalances": [],
            "innerInstructions": [], "logMessages": [], "preTokenBalances": [], "postTokenBalances": [],
            "rewards": [], "loadedAddresses": { "writable": [], "readonly": [] },
        },
        "version": 1,
    }});
    let read = read_get_transaction(&answer, Commitment::Confirmed).expect("a v1 transaction reads");
    assert_eq!(read.signature, tx.signatures[0].to_string());
    assert_eq!(read.account_keys, vec![payer.pubkey(), ephemeral_vault::ID]);
    assert_eq!(read.instructions.len(), 1);
    assert_eq!((read.instructions[0].program_id_index, read.instructions[0].data.clone()), (1, vec![7, 8, 9]));
}
