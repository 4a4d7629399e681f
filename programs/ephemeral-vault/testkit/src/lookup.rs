//! Version 0 transactions that load accounts from an address lookup table, as wallets and
//! aggregators send them: the lookup table program (litesvm ships it) creates and extends the
//! table, and [`VaultWorld::send_v0`] compiles, signs, sends and records the transaction.

use anchor_lang::prelude::{Clock, Pubkey};
use anchor_lang::solana_program::instruction::Instruction;
use solana_address_lookup_table_interface::instruction::{create_lookup_table, extend_lookup_table};
use solana_address_lookup_table_interface::state::AddressLookupTable;
use solana_keypair::Keypair;
use solana_message::v0::{self, LoadedAddresses};
use solana_message::{AddressLookupTableAccount, Message, VersionedMessage};
use solana_signer::Signer;
use solana_slot_hashes::SlotHashes;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction::Transaction;

use crate::world::{Outcome, VaultWorld};

impl VaultWorld {
    /// Creates a lookup table holding `addresses` (admin is authority and payer), usable from
    /// the next transaction on. Its two setup transactions are not recorded in `history`: they
    /// do not concern the vault.
    pub fn create_lookup_table(&mut self, addresses: &[Pubkey]) -> AddressLookupTableAccount {
        let admin = self.admin.insecure_clone();
        let mut clock = self.svm.get_sysvar::<Clock>();
        clock.slot += 1;
        self.svm.set_sysvar(&clock);
        // The table's address derives from a recent slot, which must be in SlotHashes; litesvm
        // keeps only the slot it started at there.
        let mut slot_hashes: Vec<_> = self.svm.get_sysvar::<SlotHashes>().iter().copied().collect();
        slot_hashes.insert(0, (clock.slot, self.svm.latest_blockhash()));
        self.svm.set_sysvar(&SlotHashes::new(&slot_hashes));
        let (create, table) = create_lookup_table(admin.pubkey(), admin.pubkey(), clock.slot);
        let extend = extend_lookup_table(table, admin.pubkey(), Some(admin.pubkey()), addresses.to_vec());
        self.svm.expire_blockhash();
        let tx = Transaction::new(
            &[&admin],
            Message::new(&[create, extend], Some(&admin.pubkey())),
            self.svm.latest_blockhash(),
        );
        if let Err(failed) = self.svm.send_transaction(tx) {
            panic!("creating a lookup table failed: {:?}\n{}", failed.err, failed.meta.logs.join("\n"));
        }
        AddressLookupTableAccount { key: table, addresses: addresses.to_vec() }
    }

    /// Signs a version 0 message of `ixs` that loads every account it can from `tables` (all
    /// but signers and invoked programs), with a fresh blockhash.
    pub fn sign_v0(
        &mut self,
        ixs: &[Instruction],
        payer: &Keypair,
        signers: &[&Keypair],
        tables: &[AddressLookupTableAccount],
    ) -> VersionedTransaction {
        let blockhash = self.latest_blockhash();
        let message = v0::Message::try_compile(&payer.pubkey(), ixs, tables, blockhash).expect("compile a v0 message");
        let mut all: Vec<&Keypair> = vec![payer];
        all.extend(signers.iter().copied().filter(|s| s.pubkey() != payer.pubkey()));
        VersionedTransaction::try_new(VersionedMessage::V0(message), &all).expect("sign a v0 transaction")
    }

    /// [`Self::send`] as a version 0 transaction loading accounts from `tables` (made with
    /// [`Self::create_lookup_table`]); recorded in `history` with the addresses it loaded.
    pub fn send_v0(
        &mut self,
        ixs: &[Instruction],
        payer: &Keypair,
        signers: &[&Keypair],
        tables: &[AddressLookupTableAccount],
    ) -> Outcome {
        let tx = self.sign_v0(ixs, payer, signers, tables);
        self.execute_versioned(tx)
    }

    /// What `message` loads from its lookup tables as they are now, writable then readonly
    /// (empty for a legacy message or a table that does not resolve: the runtime refuses those).
    pub fn loaded_addresses(&self, message: &VersionedMessage) -> LoadedAddresses {
        let mut loaded = LoadedAddresses::default();
        for lookup in message.address_table_lookups().unwrap_or_default() {
            let Some(account) = self.svm.get_account(&lookup.account_key) else { continue };
            let Ok(table) = AddressLookupTable::deserialize(&account.data) else { continue };
            let pick = |indexes: &[u8]| -> Vec<Pubkey> {
                indexes.iter().filter_map(|i| table.addresses.get(usize::from(*i)).copied()).collect()
            };
            loaded.writable.extend(pick(&lookup.writable_indexes));
            loaded.readonly.extend(pick(&lookup.readonly_indexes));
        }
        loaded
    }
}
