//! Yellowstone's protobuf transaction <-> [`ChainTx`]. The decode direction is what the indexer
//! uses; the encode direction lets the replay server (geyser_replay) publish transactions that
//! real SVMs executed, in exactly the shape a Yellowstone plugin would.

use anchor_lang::prelude::Pubkey;
use yellowstone_grpc_proto::prelude::{
    CompiledInstruction, InnerInstruction, InnerInstructions, Message, MessageAddressTableLookup, MessageHeader,
    SubscribeUpdateTransaction, SubscribeUpdateTransactionInfo, Transaction, TransactionError, TransactionStatusMeta,
};

use crate::chain_tx::{ChainTx, Commitment, RawInstruction, TxFailure};

/// Why an update could not become a [`ChainTx`].
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("transaction update without {0}")]
    Missing(&'static str),
    #[error("bad {what}: {detail}")]
    Bad { what: &'static str, detail: String },
}

fn pubkey(bytes: &[u8], what: &'static str) -> Result<Pubkey, ConvertError> {
    <[u8; 32]>::try_from(bytes)
        .map(Pubkey::from)
        .map_err(|_| ConvertError::Bad { what, detail: format!("{} bytes, expected 32", bytes.len()) })
}

fn index_u8(value: u32, what: &'static str) -> Result<u8, ConvertError> {
    u8::try_from(value).map_err(|_| ConvertError::Bad { what, detail: format!("index {value} > 255") })
}

/// Decodes a Yellowstone transaction update seen at `commitment`.
pub fn chain_tx_from_update(
    update: &SubscribeUpdateTransaction,
    commitment: Commitment,
) -> Result<ChainTx, ConvertError> {
    let info = update.transaction.as_ref().ok_or(ConvertError::Missing("transaction info"))?;
    let transaction = info.transaction.as_ref().ok_or(ConvertError::Missing("transaction"))?;
    let message = transaction.message.as_ref().ok_or(ConvertError::Missing("message"))?;
    let meta = info.meta.as_ref().ok_or(ConvertError::Missing("status meta"))?;

    let mut account_keys = Vec::with_capacity(
        message.account_keys.len() + meta.loaded_writable_addresses.len() + meta.loaded_readonly_addresses.len(),
    );
    for key in message.account_keys.iter().chain(&meta.loaded_writable_addresses).chain(&meta.loaded_readonly_addresses)
    {
        account_keys.push(pubkey(key, "account key")?);
    }

    let instructions = message
        .instructions
        .iter()
        .map(|ix| {
            Ok(RawInstruction {
                program_id_index: index_u8(ix.program_id_index, "program id index")?,
                accounts: ix.accounts.clone(),
                data: ix.data.clone(),
                stack_height: Some(1),
            })
        })
        .collect::<Result<Vec<_>, ConvertError>>()?;

    let mut inner_instructions = vec![Vec::new(); instructions.len()];
    for group in &meta.inner_instructions {
        let slot = inner_instructions
            .get_mut(group.index as usize)
            .ok_or(ConvertError::Bad { what: "inner instructions index", detail: group.index.to_string() })?;
        for ix in &group.instructions {
            slot.push(RawInstruction {
                program_id_index: index_u8(ix.program_id_index, "inner program id index")?,
                accounts: ix.accounts.clone(),
                data: ix.data.clone(),
                stack_height: ix.stack_height,
            });
        }
    }

    let failure = match &meta.err {
        None => None,
        Some(err) => {
            let decoded: solana_transaction_error::TransactionError = bincode::deserialize(&err.err)
                .map_err(|e| ConvertError::Bad { what: "transaction error", detail: e.to_string() })?;
            Some(TxFailure::from_transaction_error(&decoded))
        }
    };

    let signature = transaction.signatures.first().filter(|s| !s.is_empty()).unwrap_or(&info.signature);
    Ok(ChainTx {
        signature: bs58::encode(signature).into_string(),
        slot: update.slot,
        index_in_block: Some(info.index),
        block_time: None,
        account_keys,
        instructions,
        inner_instructions,
        failure,
        logs: meta.log_messages.clone(),
        commitment,
    })
}

/// Encodes an executed transaction as a Yellowstone update (used by the replay server).
/// `err` is the runtime's error value when the transaction failed. `lookups` is `None` for a
/// legacy message and a v0 message's `address_table_lookups` otherwise: then the last of
/// `tx.account_keys` are the addresses they loaded (writable, then readonly, as every source
/// lists them), which go to the meta's `loaded_writable_addresses` / `loaded_readonly_addresses`
/// and not to the message's keys.
pub fn update_from_chain_tx(
    tx: &ChainTx,
    signature: &[u8],
    header: (u8, u8, u8),
    lookups: Option<&[MessageAddressTableLookup]>,
    err: Option<&solana_transaction_error::TransactionError>,
) -> Result<SubscribeUpdateTransaction, ConvertError> {
    let err = err
        .map(|e| {
            bincode::serialize(e)
                .map(|bytes| TransactionError { err: bytes })
                .map_err(|e| ConvertError::Bad { what: "transaction error", detail: e.to_string() })
        })
        .transpose()?;
    let loaded =
        |indexes: fn(&MessageAddressTableLookup) -> usize| lookups.unwrap_or_default().iter().map(indexes).sum();
    let (writable, readonly): (usize, usize) =
        (loaded(|l| l.writable_indexes.len()), loaded(|l| l.readonly_indexes.len()));
    let static_len = tx.account_keys.len().checked_sub(writable + readonly).ok_or_else(|| ConvertError::Bad {
        what: "account keys",
        detail: format!("{} keys, but the lookups load {}", tx.account_keys.len(), writable + readonly),
    })?;
    let bytes = |keys: &[Pubkey]| keys.iter().map(|k| k.to_bytes().to_vec()).collect::<Vec<_>>();
    let (static_keys, loaded_keys) = tx.account_keys.split_at(static_len);
    let (loaded_writable, loaded_readonly) = loaded_keys.split_at(writable);
    let message = Message {
        header: Some(MessageHeader {
            num_required_signatures: u32::from(header.0),
            num_readonly_signed_accounts: u32::from(header.1),
            num_readonly_unsigned_accounts: u32::from(header.2),
        }),
        account_keys: bytes(static_keys),
        recent_blockhash: vec![0; 32],
        instructions: tx
            .instructions
            .iter()
            .map(|ix| CompiledInstruction {
                program_id_index: u32::from(ix.program_id_index),
                accounts: ix.accounts.clone(),
                data: ix.data.clone(),
            })
            .collect(),
        versioned: lookups.is_some(),
        address_table_lookups: lookups.unwrap_or_default().to_vec(),
        ..Default::default()
    };
    let inner_instructions = tx
        .inner_instructions
        .iter()
        .enumerate()
        .filter(|(_, group)| !group.is_empty())
        .map(|(index, group)| InnerInstructions {
            index: index as u32,
            instructions: group
                .iter()
                .map(|ix| InnerInstruction {
                    program_id_index: u32::from(ix.program_id_index),
                    accounts: ix.accounts.clone(),
                    data: ix.data.clone(),
                    stack_height: ix.stack_height,
                })
                .collect(),
        })
        .collect();
    Ok(SubscribeUpdateTransaction {
        transaction: Some(SubscribeUpdateTransactionInfo {
            signature: signature.to_vec(),
            is_vote: false,
            transaction: Some(Transaction { signatures: vec![signature.to_vec()], message: Some(message) }),
            meta: Some(TransactionStatusMeta {
                err,
                inner_instructions,
                log_messages: tx.logs.clone(),
                loaded_writable_addresses: bytes(loaded_writable),
                loaded_readonly_addresses: bytes(loaded_readonly),
                ..Default::default()
            }),
            index: tx.index_in_block.unwrap_or(0),
        }),
        slot: tx.slot,
        ..Default::default()
    })
}
