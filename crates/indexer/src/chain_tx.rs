//! A transaction as the indexer sees it, whatever source it came from (Yellowstone gRPC or
//! JSON-RPC). Sources convert into this; the decoder reads only this.

use anchor_lang::prelude::Pubkey;
use serde::{Deserialize, Serialize};

/// How final a transaction is, as its source reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Commitment {
    Confirmed,
    Finalized,
}

impl Commitment {
    /// The `vault_transactions.status` word for a transaction that succeeded at this level.
    pub fn status(self) -> &'static str {
        match self {
            Commitment::Confirmed => "confirmed",
            Commitment::Finalized => "finalized",
        }
    }
}

/// One compiled instruction: indexes into [`ChainTx::account_keys`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawInstruction {
    pub program_id_index: u8,
    pub accounts: Vec<u8>,
    pub data: Vec<u8>,
    /// 1 for top-level instructions, 2+ for CPIs; `None` when the source did not say.
    pub stack_height: Option<u32>,
}

/// Why a transaction failed, as far as the source told us.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxFailure {
    /// The top-level instruction that failed, when the error names one.
    pub instruction_index: Option<u8>,
    /// A program's custom error code (Anchor errors are 6000+ for this program).
    pub custom_code: Option<u32>,
    /// The runtime's description, e.g. `InstructionError(0, Custom(6012))`.
    pub message: String,
}

impl TxFailure {
    /// What `vault_transactions.error_message` stores: the program's error name and message
    /// when the code is the program's, else the runtime's description.
    pub fn describe(&self) -> String {
        vault_chain::program_errors::describe(self.custom_code, &self.message)
    }

    /// True when the program refused because the session had expired.
    pub fn is_session_expired(&self) -> bool {
        vault_chain::program_errors::is_session_expired(self.custom_code)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTx {
    /// Base58 transaction signature.
    pub signature: String,
    pub slot: u64,
    /// Position in its block, when known; with `slot` it orders transactions.
    pub index_in_block: Option<u64>,
    /// Unix seconds of the block, when the source knows it.
    pub block_time: Option<i64>,
    /// Static keys, then loaded writable, then loaded readonly addresses.
    #[serde(with = "base58_keys")]
    pub account_keys: Vec<Pubkey>,
    pub instructions: Vec<RawInstruction>,
    /// Inner instructions per top-level instruction index (empty vectors where none).
    pub inner_instructions: Vec<Vec<RawInstruction>>,
    pub failure: Option<TxFailure>,
    pub logs: Vec<String>,
    pub commitment: Commitment,
}

impl ChainTx {
    pub fn key(&self, index: u8) -> Option<&Pubkey> {
        self.account_keys.get(usize::from(index))
    }

    pub fn program_of(&self, ix: &RawInstruction) -> Option<&Pubkey> {
        self.key(ix.program_id_index)
    }

    /// The instruction's accounts as keys; `None` if an index is out of range (malformed).
    pub fn accounts_of(&self, ix: &RawInstruction) -> Option<Vec<Pubkey>> {
        ix.accounts.iter().map(|i| self.key(*i).copied()).collect()
    }

    pub fn mentions(&self, program: &Pubkey) -> bool {
        self.account_keys.contains(program)
    }
}

impl TxFailure {
    /// Builds the failure description from the runtime's error value.
    pub fn from_transaction_error(err: &solana_transaction_error::TransactionError) -> Self {
        use solana_transaction_error::TransactionError;
        let (instruction_index, custom_code) = match err {
            TransactionError::InstructionError(index, ix_err) => (
                Some(*index),
                match ix_err {
                    solana_instruction_error::InstructionError::Custom(code) => Some(*code),
                    _ => None,
                },
            ),
            _ => (None, None),
        };
        Self { instruction_index, custom_code, message: format!("{err:?}") }
    }
}

/// Keys as base58 strings in serialized form (parked transactions are stored as JSON).
mod base58_keys {
    use std::str::FromStr;

    use anchor_lang::prelude::Pubkey;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(keys: &[Pubkey], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(keys.iter().map(|k| k.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Pubkey>, D::Error> {
        Vec::<String>::deserialize(d)?.iter().map(|k| Pubkey::from_str(k).map_err(serde::de::Error::custom)).collect()
    }
}
