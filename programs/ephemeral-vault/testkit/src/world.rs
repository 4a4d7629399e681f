use std::path::PathBuf;

use anchor_lang::prelude::{Clock, Pubkey};
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::AccountDeserialize;
use ephemeral_vault::errors::VaultError;
use ephemeral_vault::sdk::{self, VaultEvent};
use ephemeral_vault::state::{Config, ConfigParams, Vault};
use litesvm::types::TransactionMetadata;
use litesvm::LiteSVM;
use solana_account::Account;
use solana_instruction_error::InstructionError;
use solana_keypair::Keypair;
use solana_message::v0::LoadedAddresses;
use solana_message::Message;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction::Transaction;
use solana_transaction_error::TransactionError;

/// 2026-01-01T00:00:00Z: tests start from a realistic clock, not the epoch.
pub const START_TIME: i64 = 1_767_225_600;
pub const LAMPORTS_PER_SOL: u64 = 1_000_000_000;

/// Where the built program is: `EPHEMERAL_VAULT_SO`, or the workspace's target/deploy.
pub fn program_so_path() -> PathBuf {
    deployed_so("EPHEMERAL_VAULT_SO", "ephemeral_vault.so")
}

/// Where the built test-only router is (`vault_router.so`, see [`crate::router`]):
/// `VAULT_ROUTER_SO`, or the workspace's target/deploy.
pub fn router_so_path() -> PathBuf {
    deployed_so("VAULT_ROUTER_SO", "vault_router.so")
}

fn deployed_so(variable: &str, file: &str) -> PathBuf {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../target/deploy").join(file))
}

fn read_so(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!("cannot read {}: {e}. Build the programs first: scripts/build-program.sh", path.display())
    })
}

/// Settings the tests and the demo start from.
pub fn default_params() -> ConfigParams {
    ConfigParams {
        max_session_duration: 24 * 60 * 60,
        min_session_duration: 60,
        fee_top_up_cap: LAMPORTS_PER_SOL / 20,
        cleanup_reward_bps: 5_000,
        cleanup_reward_cap: 2_000_000,
    }
}

/// The on-chain error code of a program error, as transactions report it.
pub fn code(error: VaultError) -> u32 {
    anchor_lang::error::ERROR_CODE_OFFSET + error as u32
}

/// A transaction that landed, with the program's events decoded from its inner instructions.
#[derive(Debug)]
pub struct Landed {
    pub meta: TransactionMetadata,
    pub events: Vec<VaultEvent>,
}

/// A transaction the runtime refused, with what it said.
#[derive(Debug)]
pub struct Refused {
    pub err: TransactionError,
    pub meta: TransactionMetadata,
}

impl Refused {
    /// The custom error code of the failing instruction, if it failed with one.
    pub fn custom_code(&self) -> Option<u32> {
        match &self.err {
            TransactionError::InstructionError(_, InstructionError::Custom(code)) => Some(*code),
            _ => None,
        }
    }

    pub fn is_vault_error(&self, error: VaultError) -> bool {
        self.custom_code() == Some(code(error))
    }

    /// Refused by one of Anchor's own account checks (seeds, owner, signer, ...).
    pub fn is_anchor_error(&self, error: anchor_lang::error::ErrorCode) -> bool {
        self.custom_code() == Some(error as u32)
    }
}

/// Asserts that `outcome` was refused with `error`, showing the logs when it was not.
#[track_caller]
pub fn assert_vault_error(outcome: Outcome, error: VaultError) {
    match outcome {
        Ok(landed) => panic!("expected {error:?}, but it landed: {:?}", landed.meta.logs),
        Err(refused) => assert!(
            refused.is_vault_error(error),
            "expected {error:?} ({}), got {:?}\n{}",
            code(error),
            refused.err,
            refused.meta.logs.join("\n")
        ),
    }
}

/// Asserts that `outcome` was refused by Anchor's `error` check.
#[track_caller]
pub fn assert_anchor_error(outcome: Outcome, error: anchor_lang::error::ErrorCode) {
    match outcome {
        Ok(landed) => panic!("expected {error:?}, but it landed: {:?}", landed.meta.logs),
        Err(refused) => assert!(
            refused.is_anchor_error(error),
            "expected {error:?}, got {:?}\n{}",
            refused.err,
            refused.meta.logs.join("\n")
        ),
    }
}

pub type Outcome = Result<Landed, Refused>;

/// A transaction as it executed, with everything an indexer would receive from a node: the
/// signed message, the runtime's error, inner instructions and logs, the slot and chain time.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// A legacy or a v0 transaction, as signed.
    pub transaction: VersionedTransaction,
    /// What a v0 message loaded from its lookup tables (empty for a legacy one), in the order
    /// of its `address_table_lookups`: the node's `meta.loadedAddresses`.
    pub loaded_addresses: LoadedAddresses,
    pub err: Option<TransactionError>,
    /// The runtime's metadata: inner instructions, logs, compute units, fee.
    pub meta: litesvm::types::TransactionMetadata,
    pub slot: u64,
    pub unix_timestamp: i64,
}

impl Recorded {
    pub fn signature(&self) -> solana_signature::Signature {
        self.transaction.signatures[0]
    }

    /// Every account the transaction's instructions index into, as a node lists them: the
    /// message's static keys, then the loaded writable ones, then the loaded readonly ones.
    pub fn account_keys(&self) -> Vec<Pubkey> {
        let loaded = self.loaded_addresses.writable.iter().chain(&self.loaded_addresses.readonly);
        self.transaction.message.static_account_keys().iter().chain(loaded).copied().collect()
    }

    /// Whether `key` is among [`Self::account_keys`] (e.g. the program's id: the transaction
    /// concerns the program).
    pub fn mentions(&self, key: &Pubkey) -> bool {
        self.transaction.message.static_account_keys().contains(key)
            || self.loaded_addresses.writable.contains(key)
            || self.loaded_addresses.readonly.contains(key)
    }

    /// A v0 message (with or without lookups), not a legacy one.
    pub fn is_versioned(&self) -> bool {
        !matches!(self.transaction.message, solana_message::VersionedMessage::Legacy(_))
    }
}

/// litesvm with the program deployed (upgradeable, with `admin` as upgrade authority).
pub struct VaultWorld {
    pub svm: LiteSVM,
    pub admin: Keypair,
    /// Every transaction sent through [`VaultWorld::send`], landed or refused, in order.
    pub history: Vec<Recorded>,
}

impl Default for VaultWorld {
    fn default() -> Self {
        Self::new()
    }
}

impl VaultWorld {
    /// Deployed and configured with [`default_params`].
    pub fn new() -> Self {
        let mut world = Self::deployed();
        let admin = world.admin.insecure_clone();
        world
            .send(&[sdk::initialize_config(admin.pubkey(), default_params())], &admin, &[])
            .expect("initialize_config");
        world
    }

    /// Deployed, config not yet initialised. The test-only router ([`crate::router`]) is
    /// deployed beside the program.
    pub fn deployed() -> Self {
        let mut svm = LiteSVM::new();
        svm.add_program(ephemeral_vault::ID, &read_so(&program_so_path())).expect("load ephemeral_vault.so");
        svm.add_program(vault_router::ID, &read_so(&router_so_path())).expect("load vault_router.so");
        let admin = Keypair::new();
        let mut world = Self { svm, admin, history: vec![] };
        let admin_key = world.admin.pubkey();
        world.set_upgrade_authority(Some(admin_key));
        world.set_time(START_TIME);
        world.svm.airdrop(&admin_key, 10 * LAMPORTS_PER_SOL).expect("airdrop");
        world
    }

    /// Rewrites the ProgramData header, as an upgradeable deploy with that authority would.
    pub fn set_upgrade_authority(&mut self, authority: Option<Pubkey>) {
        let address = sdk::program_data_address();
        let mut account = self.svm.get_account(&address).expect("program data account");
        // ProgramData layout: u32 tag (3), u64 slot, Option<Pubkey> authority, then the ELF.
        match authority {
            Some(key) => {
                account.data[12] = 1;
                account.data[13..45].copy_from_slice(key.as_ref());
            }
            None => {
                account.data[12] = 0;
                account.data[13..45].fill(0);
            }
        }
        self.svm.set_account(address, account).expect("set program data");
    }

    pub fn now(&self) -> i64 {
        self.svm.get_sysvar::<Clock>().unix_timestamp
    }

    pub fn set_time(&mut self, unix_timestamp: i64) {
        let mut clock = self.svm.get_sysvar::<Clock>();
        clock.unix_timestamp = unix_timestamp;
        self.svm.set_sysvar(&clock);
    }

    /// Moves the clock forward (and the slot with it, at about 2.5 slots a second).
    pub fn advance(&mut self, seconds: i64) {
        let mut clock = self.svm.get_sysvar::<Clock>();
        clock.unix_timestamp += seconds;
        clock.slot += (seconds.max(0) as u64) * 5 / 2;
        self.svm.set_sysvar(&clock);
    }

    pub fn new_wallet(&mut self, lamports: u64) -> Keypair {
        let wallet = Keypair::new();
        if lamports > 0 {
            self.svm.airdrop(&wallet.pubkey(), lamports).expect("airdrop");
        }
        wallet
    }

    /// Signs with `payer` and `signers`, sends, and decodes the program's events. Each call gets
    /// a fresh blockhash so identical instructions sent twice are two transactions.
    pub fn send(&mut self, ixs: &[Instruction], payer: &Keypair, signers: &[&Keypair]) -> Outcome {
        self.svm.expire_blockhash();
        let tx = self.sign(ixs, payer, signers);
        self.execute(tx)
    }

    /// Executes a transaction signed elsewhere (against [`Self::latest_blockhash`]), records it
    /// in `history` and decodes the program's events.
    pub fn execute(&mut self, tx: Transaction) -> Outcome {
        self.execute_versioned(tx.into())
    }

    /// [`Self::execute`] for a legacy or v0 transaction. The addresses a v0 message loads are
    /// read from its lookup tables as they are when it executes, and recorded with it.
    pub fn execute_versioned(&mut self, tx: VersionedTransaction) -> Outcome {
        // One transaction per slot, as a lightly loaded chain would have it.
        let mut clock = self.svm.get_sysvar::<Clock>();
        clock.slot += 1;
        self.svm.set_sysvar(&clock);
        let loaded_addresses = self.loaded_addresses(&tx.message);
        let result = self.svm.send_transaction(tx.clone());
        let (err, meta) = match &result {
            Ok(meta) => (None, meta.clone()),
            Err(failed) => (Some(failed.err.clone()), failed.meta.clone()),
        };
        let recorded = Recorded {
            transaction: tx,
            loaded_addresses,
            err,
            meta,
            slot: clock.slot,
            unix_timestamp: clock.unix_timestamp,
        };
        let keys = recorded.account_keys();
        self.history.push(recorded);
        match result {
            Ok(meta) => {
                let events = decode_events(&keys, &meta);
                Ok(Landed { meta, events })
            }
            Err(failed) => Err(Refused { err: failed.err, meta: failed.meta }),
        }
    }

    /// A fresh blockhash to sign a transaction with, so identical instructions sent twice are
    /// two transactions.
    pub fn latest_blockhash(&mut self) -> solana_hash::Hash {
        self.svm.expire_blockhash();
        self.svm.latest_blockhash()
    }

    pub fn sign(&self, ixs: &[Instruction], payer: &Keypair, signers: &[&Keypair]) -> Transaction {
        let mut all: Vec<&Keypair> = vec![payer];
        all.extend(signers.iter().copied().filter(|s| s.pubkey() != payer.pubkey()));
        let message = Message::new(ixs, Some(&payer.pubkey()));
        Transaction::new(&all, message, self.svm.latest_blockhash())
    }

    pub fn lamports(&self, key: &Pubkey) -> u64 {
        self.svm.get_balance(key).unwrap_or(0)
    }

    pub fn account(&self, key: &Pubkey) -> Option<Account> {
        self.svm.get_account(key).filter(|a| a.lamports > 0)
    }

    pub fn vault(&self, key: &Pubkey) -> Option<Vault> {
        let account = self.account(key)?;
        Vault::try_deserialize(&mut account.data.as_slice()).ok()
    }

    pub fn config(&self) -> Config {
        let account = self.account(&sdk::config_address()).expect("config account");
        Config::try_deserialize(&mut account.data.as_slice()).expect("config data")
    }

    pub fn rent(&self, data_len: usize) -> u64 {
        self.svm.minimum_balance_for_rent_exemption(data_len)
    }
}

/// The program's events in a landed transaction: inner instructions the program sent to itself,
/// signed by its event authority (anything else could be forged by another program).
pub fn decode_events(keys: &[Pubkey], meta: &TransactionMetadata) -> Vec<VaultEvent> {
    let authority = sdk::event_authority_address();
    meta.inner_instructions
        .iter()
        .flatten()
        .filter(|inner| {
            let ix = &inner.instruction;
            keys.get(usize::from(ix.program_id_index)) == Some(&ephemeral_vault::ID)
                && ix.accounts.len() == 1
                && keys.get(usize::from(ix.accounts[0])) == Some(&authority)
        })
        .filter_map(|inner| sdk::decode_event_cpi(&inner.instruction.data))
        .map(|decoded| decoded.expect("the program's own event decodes"))
        .collect()
}
