//! Transactions the testkit executed (the real program in litesvm), in the shapes a node
//! delivers them: a [`ChainTx`] as any source produces, and a Yellowstone update for the
//! replay server. Shared by the indexer's tests and its benchmark. Legacy and v0 transactions
//! alike: a v0 transaction's keys are its static keys, then the addresses it loaded from lookup
//! tables (writable, then readonly), as the RPC and Yellowstone sources list them.

use ephemeral_vault_testkit::Recorded;
use yellowstone_grpc_proto::prelude::{MessageAddressTableLookup, SubscribeUpdateTransaction};

use vault_indexer::chain_tx::{ChainTx, Commitment, RawInstruction, TxFailure};
use vault_indexer::sources::yellowstone::convert::{update_from_chain_tx, ConvertError};

/// What a node reports for a transaction the testkit executed, seen at `confirmed`.
pub fn chain_tx(recorded: &Recorded) -> ChainTx {
    let message = &recorded.transaction.message;
    let raw = |program_id_index, accounts: &Vec<u8>, data: &Vec<u8>, stack_height| RawInstruction {
        program_id_index,
        accounts: accounts.clone(),
        data: data.clone(),
        stack_height: Some(stack_height),
    };
    let instructions: Vec<RawInstruction> =
        message.instructions().iter().map(|ix| raw(ix.program_id_index, &ix.accounts, &ix.data, 1)).collect();
    // litesvm reports one group per top-level instruction; keep exactly that many.
    let mut inner_instructions = vec![Vec::new(); instructions.len()];
    for (slot, group) in inner_instructions.iter_mut().zip(&recorded.meta.inner_instructions) {
        *slot = group
            .iter()
            .map(|i| {
                raw(
                    i.instruction.program_id_index,
                    &i.instruction.accounts,
                    &i.instruction.data,
                    u32::from(i.stack_height),
                )
            })
            .collect();
    }
    ChainTx {
        signature: recorded.signature().to_string(),
        slot: recorded.slot,
        index_in_block: Some(0),
        block_time: Some(recorded.unix_timestamp),
        account_keys: recorded.account_keys(),
        instructions,
        inner_instructions,
        failure: recorded.err.as_ref().map(TxFailure::from_transaction_error),
        logs: recorded.meta.logs.clone(),
        commitment: Commitment::Confirmed,
    }
}

/// The Yellowstone update a geyser plugin would send for an executed transaction (a v0 one with
/// its `address_table_lookups` and the meta's loaded addresses).
pub fn geyser_update(recorded: &Recorded) -> Result<SubscribeUpdateTransaction, ConvertError> {
    let message = &recorded.transaction.message;
    let header = message.header();
    let lookups = recorded.is_versioned().then(|| proto_lookups(message).unwrap_or_default());
    update_from_chain_tx(
        &chain_tx(recorded),
        recorded.signature().as_ref(),
        (header.num_required_signatures, header.num_readonly_signed_accounts, header.num_readonly_unsigned_accounts),
        lookups.as_deref(),
        recorded.err.as_ref(),
    )
}

/// A message's address table lookups in Yellowstone's protobuf form; None for a legacy message.
pub fn proto_lookups(message: &solana_message::VersionedMessage) -> Option<Vec<MessageAddressTableLookup>> {
    message.address_table_lookups().map(|lookups| {
        lookups
            .iter()
            .map(|l| MessageAddressTableLookup {
                account_key: l.account_key.to_bytes().to_vec(),
                writable_indexes: l.writable_indexes.clone(),
                readonly_indexes: l.readonly_indexes.clone(),
            })
            .collect()
    })
}
