//! The shapes other programs and wallets give vault instructions on chain, which the indexer is
//! tested against: a vault instruction reached by CPI (through the test-only router), a vault
//! instruction that succeeded inside a transaction or an instruction that failed, a failure
//! whose number (6012) is the vault's too but comes from another program, and v0 transactions
//! loading the vault's accounts from an address lookup table.

#![allow(clippy::result_large_err)] // `Outcome` carries a refused transaction's metadata

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::Instruction;
use ephemeral_vault::errors::VaultError;
use ephemeral_vault::instructions::ExecuteTradeArgs;
use ephemeral_vault::sdk::{self, VaultEvent};
use ephemeral_vault_testkit::*;
use solana_account::Account;
use solana_instruction_error::InstructionError;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;

const SOL: u64 = LAMPORTS_PER_SOL;

/// A SOL session with 5 SOL in the vault and a destination wallet.
fn funded(w: &mut VaultWorld) -> (TestSession, Pubkey) {
    let s = w.open_sol_session(5 * SOL);
    let destination = w.new_wallet(SOL).pubkey();
    (s, destination)
}

fn trade_ix(s: &TestSession, destination: Pubkey, trade_id: u64, amount: u64) -> Instruction {
    sdk::execute_trade(
        &s.session,
        s.delegate.pubkey(),
        destination,
        None,
        ExecuteTradeArgs { trade_id, amount, fee: 5_000 },
    )
}

/// The vault's account and the destination's lamports, to show a failure changed nothing.
fn snapshot(w: &VaultWorld, s: &TestSession, destination: &Pubkey) -> (Option<Account>, u64) {
    (w.account(&s.vault()), w.lamports(destination))
}

#[track_caller]
fn assert_fails_with(outcome: &Outcome, index: u8, code: u32) {
    match outcome {
        Ok(landed) => {
            panic!("expected InstructionError({index}, Custom({code})), it landed:\n{}", landed.meta.logs.join("\n"))
        }
        Err(refused) => assert_eq!(
            refused.err,
            TransactionError::InstructionError(index, InstructionError::Custom(code)),
            "{}",
            refused.meta.logs.join("\n")
        ),
    }
}

/// The last transaction in the world's history.
fn last(w: &VaultWorld) -> &Recorded {
    w.history.last().expect("a recorded transaction")
}

#[test]
fn the_router_is_deployed_and_targets_this_vault() {
    assert_eq!(vault_router::VAULT_PROGRAM_ID, ephemeral_vault::ID);
    let w = VaultWorld::new();
    assert!(w.svm.get_account(&router::ID).is_some_and(|a| a.executable));
}

#[test]
fn a_trade_by_cpi_lands_and_its_event_is_emitted_through_the_event_authority() {
    let mut w = VaultWorld::new();
    let (s, destination) = funded(&mut w);
    let before = w.lamports(&destination);
    let landed = w
        .send(&[router::forward(trade_ix(&s, destination, 1, SOL / 2))], &s.delegate, &[])
        .expect("a trade forwarded by the router lands");
    assert_eq!(w.lamports(&destination), before + SOL / 2 + 5_000);
    let vault = w.vault(&s.vault()).expect("vault");
    assert_eq!((vault.trade_count, vault.last_trade_id, vault.total_spent), (1, 1, SOL / 2 + 5_000));
    assert!(
        matches!(only_event(&landed), VaultEvent::TradeExecuted(e) if e.trade_id == 1 && e.amount == SOL / 2 && e.destination == destination)
    );

    // The top-level instruction is the router's; the vault runs at stack height 2 and its
    // event is its self-CPI at height 3, signed by the event authority.
    let recorded = last(&w);
    let keys = recorded.account_keys();
    let message = &recorded.transaction.message;
    assert_eq!(keys[usize::from(message.instructions()[0].program_id_index)], router::ID);
    let inner = &recorded.meta.inner_instructions[0];
    let by_vault: Vec<u8> = inner
        .iter()
        .filter(|i| keys[usize::from(i.instruction.program_id_index)] == ephemeral_vault::ID)
        .map(|i| i.stack_height)
        .collect();
    assert_eq!(by_vault, vec![2, 3], "the vault instruction, then its event: {inner:?}");
    let event = inner.iter().find(|i| i.stack_height == 3).expect("the event's self-CPI");
    assert_eq!(event.instruction.accounts.len(), 1);
    assert_eq!(keys[usize::from(event.instruction.accounts[0])], sdk::event_authority_address());
}

#[test]
fn a_refused_trade_by_cpi_fails_with_the_vault_s_code() {
    let mut w = VaultWorld::new();
    let (s, destination) = funded(&mut w);
    let before = snapshot(&w, &s, &destination);
    // Over the per-trade cap (1 SOL).
    let outcome = w.send(&[router::forward(trade_ix(&s, destination, 1, 2 * SOL))], &s.delegate, &[]);
    assert_fails_with(&outcome, 0, code(VaultError::PerTradeCapExceeded));
    assert_eq!(snapshot(&w, &s, &destination), before);
    // After expiry the vault refuses with SessionExpired: 6012, the router's number too.
    w.advance(3_601);
    let outcome = w.send(&[router::forward(trade_ix(&s, destination, 1, SOL / 2))], &s.delegate, &[]);
    assert_eq!(code(VaultError::SessionExpired), router::FAIL_CODE);
    assert_fails_with(&outcome, 0, router::FAIL_CODE);
    let logs = &outcome.as_ref().expect_err("refused").meta.logs;
    assert!(logs.iter().any(|l| l == &format!("Program {} failed: custom program error: 0x177c", ephemeral_vault::ID)));
    assert_eq!(snapshot(&w, &s, &destination), before);
}

#[test]
fn a_trade_followed_by_a_failing_router_instruction_rolls_back() {
    let mut w = VaultWorld::new();
    let (s, destination) = funded(&mut w);
    let before = snapshot(&w, &s, &destination);
    let outcome = w.send(&[trade_ix(&s, destination, 1, SOL / 2), router::fail()], &s.delegate, &[]);
    assert_fails_with(&outcome, 1, router::FAIL_CODE);
    let logs = &outcome.as_ref().expect_err("refused").meta.logs;
    // Anchor's log names the error and its number; the runtime's names the program.
    assert!(logs.iter().any(|l| l.contains("Error Code: AskedToFail. Error Number: 6012.")), "{logs:#?}");
    assert!(logs.iter().any(|l| l == &format!("Program {} failed: custom program error: 0x177c", router::ID)));
    assert!(!logs.iter().any(|l| l.starts_with(&format!("Program {} failed", ephemeral_vault::ID))));
    assert_eq!(snapshot(&w, &s, &destination), before);
    assert_eq!(w.vault(&s.vault()).expect("vault").trade_count, 0);
}

#[test]
fn a_trade_by_cpi_inside_a_failing_router_instruction_rolls_back() {
    let mut w = VaultWorld::new();
    let (s, destination) = funded(&mut w);
    let before = snapshot(&w, &s, &destination);
    let outcome = w.send(&[router::forward_then_fail(trade_ix(&s, destination, 1, SOL / 2))], &s.delegate, &[]);
    assert_fails_with(&outcome, 0, router::FAIL_CODE);
    let logs = &outcome.as_ref().expect_err("refused").meta.logs;
    // The vault succeeded (and emitted its event) before the router failed.
    assert!(logs.iter().any(|l| l == &format!("Program {} success", ephemeral_vault::ID)), "{logs:#?}");
    assert!(logs.iter().any(|l| l == &format!("Program {} failed: custom program error: 0x177c", router::ID)));
    assert_eq!(snapshot(&w, &s, &destination), before);
    assert_eq!(w.vault(&s.vault()).expect("vault").trade_count, 0);
}

/// What litesvm reports for a failed transaction, which the indexer reads as a node's meta:
/// one inner-instruction group per top-level instruction, kept although everything rolled back,
/// so a vault instruction (and its event, which decodes like a landed one's) can appear in a
/// failed transaction, and only `err` says it did not happen. The logs name the failing program:
/// "Program <id> failed: custom program error: 0x177c" (6012) for the router's own failure,
/// while a vault refusal reached by CPI logs one such line for the vault and then one for the
/// router the error propagates through; the transaction error names the top-level instruction.
#[test]
fn a_failed_transaction_keeps_its_inner_instructions_and_logs() {
    let mut w = VaultWorld::new();
    let (s, destination) = funded(&mut w);
    let failed = |program: Pubkey, hex: &str| format!("Program {program} failed: custom program error: {hex}");

    // forward_then_fail: the vault ran (height 2) and emitted its event (height 3), then the
    // router failed.
    let refused = w
        .send(&[router::forward_then_fail(trade_ix(&s, destination, 1, SOL / 2))], &s.delegate, &[])
        .expect_err("refused");
    assert_eq!(refused.err, TransactionError::InstructionError(0, InstructionError::Custom(6012)));
    let keys = last(&w).account_keys();
    let heights: Vec<(Pubkey, u8)> = refused.meta.inner_instructions[0]
        .iter()
        .map(|i| (keys[usize::from(i.instruction.program_id_index)], i.stack_height))
        .collect();
    assert_eq!(heights, vec![(ephemeral_vault::ID, 2), (ephemeral_vault::ID, 3)]);
    let events = decode_events(&keys, &refused.meta);
    assert!(matches!(events.as_slice(), [VaultEvent::TradeExecuted(e)] if e.trade_id == 1), "{events:?}");
    let logs = &refused.meta.logs;
    assert_eq!(logs.last(), Some(&failed(router::ID, "0x177c")));
    assert_eq!(logs.iter().filter(|l| l.contains(" failed: ")).count(), 1, "{logs:#?}");

    // [execute_trade, fail]: the trade's group holds its event; the router's group is empty.
    let refused =
        w.send(&[trade_ix(&s, destination, 1, SOL / 2), router::fail()], &s.delegate, &[]).expect_err("refused");
    assert_eq!(refused.err, TransactionError::InstructionError(1, InstructionError::Custom(6012)));
    assert_eq!(refused.meta.inner_instructions.len(), 2, "one group per top-level instruction");
    assert!(refused.meta.inner_instructions[1].is_empty());
    let events = decode_events(&last(&w).account_keys(), &refused.meta);
    assert!(matches!(events.as_slice(), [VaultEvent::TradeExecuted(e)] if e.trade_id == 1), "{events:?}");
    assert_eq!(refused.meta.logs.last(), Some(&failed(router::ID, "0x177c")));

    // forward of a trade the vault refuses: the vault's CPI shows (it failed), no event; the
    // vault's failure line comes first, then the router's with the same code.
    let refused =
        w.send(&[router::forward(trade_ix(&s, destination, 1, 2 * SOL))], &s.delegate, &[]).expect_err("refused");
    let code = code(VaultError::PerTradeCapExceeded);
    assert_eq!(refused.err, TransactionError::InstructionError(0, InstructionError::Custom(code)));
    let keys = last(&w).account_keys();
    let heights: Vec<(Pubkey, u8)> = refused.meta.inner_instructions[0]
        .iter()
        .map(|i| (keys[usize::from(i.instruction.program_id_index)], i.stack_height))
        .collect();
    assert_eq!(heights, vec![(ephemeral_vault::ID, 2)]);
    assert!(decode_events(&keys, &refused.meta).is_empty());
    let failures: Vec<&String> = refused.meta.logs.iter().filter(|l| l.contains(" failed: ")).collect();
    let hex = format!("{code:#x}");
    assert_eq!(failures, vec![&failed(ephemeral_vault::ID, &hex), &failed(router::ID, &hex)]);
}

#[test]
fn a_v0_trade_loading_accounts_from_a_lookup_table_has_the_legacy_trade_s_effect() {
    let mut w = VaultWorld::new();
    let (legacy, legacy_destination) = funded(&mut w);
    let (v0, v0_destination) = funded(&mut w);

    let legacy_before = (w.lamports(&legacy.vault()), w.lamports(&legacy_destination));
    let landed =
        w.send(&[trade_ix(&legacy, legacy_destination, 3, SOL / 2)], &legacy.delegate, &[]).expect("legacy trade");
    let legacy_after = (w.lamports(&legacy.vault()), w.lamports(&legacy_destination));
    let VaultEvent::TradeExecuted(legacy_event) = only_event(&landed).clone() else { panic!("a trade event") };
    assert!(!last(&w).is_versioned());

    let table = w.create_lookup_table(&[v0.vault(), v0_destination, sdk::event_authority_address()]);
    let v0_before = (w.lamports(&v0.vault()), w.lamports(&v0_destination));
    let landed = w
        .send_v0(&[trade_ix(&v0, v0_destination, 3, SOL / 2)], &v0.delegate, &[], std::slice::from_ref(&table))
        .expect("v0 trade");
    let v0_after = (w.lamports(&v0.vault()), w.lamports(&v0_destination));
    let VaultEvent::TradeExecuted(v0_event) = only_event(&landed).clone() else { panic!("a trade event") };

    assert_eq!(v0_before.0 - v0_after.0, legacy_before.0 - legacy_after.0);
    assert_eq!(v0_after.1 - v0_before.1, legacy_after.1 - legacy_before.1);
    let (lv, vv) = (w.vault(&legacy.vault()).expect("vault"), w.vault(&v0.vault()).expect("vault"));
    assert_eq!((vv.trade_count, vv.last_trade_id, vv.total_spent), (lv.trade_count, lv.last_trade_id, lv.total_spent));
    assert_eq!(
        (v0_event.trade_id, v0_event.amount, v0_event.fee),
        (legacy_event.trade_id, legacy_event.amount, legacy_event.fee)
    );
    assert_eq!((v0_event.vault, v0_event.destination), (v0.vault(), v0_destination));

    // Recorded as a v0 transaction with what it loaded: the vault and the destination
    // writable, the event authority readonly, and none of them among the static keys.
    let recorded = last(&w);
    assert!(recorded.is_versioned());
    let lookups = recorded.transaction.message.address_table_lookups().expect("a v0 message");
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].account_key, table.key);
    // (In the order the message's lookup indexes give, which the compiler does not fix.)
    let mut writable = recorded.loaded_addresses.writable.clone();
    writable.sort();
    let mut expected = vec![v0.vault(), v0_destination];
    expected.sort();
    assert_eq!(writable, expected);
    assert_eq!(recorded.loaded_addresses.readonly, vec![sdk::event_authority_address()]);
    let resolve = |indexes: &[u8]| indexes.iter().map(|&i| table.addresses[usize::from(i)]).collect::<Vec<_>>();
    assert_eq!(resolve(&lookups[0].writable_indexes), recorded.loaded_addresses.writable);
    assert_eq!(resolve(&lookups[0].readonly_indexes), recorded.loaded_addresses.readonly);
    let statics = recorded.transaction.message.static_account_keys();
    assert!(!statics.contains(&v0.vault()) && !statics.contains(&sdk::event_authority_address()));
    let keys = recorded.account_keys();
    assert_eq!(keys.len(), statics.len() + 3);
    let loaded: Vec<Pubkey> =
        recorded.loaded_addresses.writable.iter().chain(&recorded.loaded_addresses.readonly).copied().collect();
    assert_eq!(&keys[statics.len()..], loaded.as_slice());
    // The instruction's account indexes reach into the loaded keys.
    let ix = &recorded.transaction.message.instructions()[0];
    let accounts: Vec<Pubkey> = ix.accounts.iter().map(|&i| keys[usize::from(i)]).collect();
    assert_eq!(
        accounts,
        trade_ix(&v0, v0_destination, 3, SOL / 2).accounts.iter().map(|m| m.pubkey).collect::<Vec<_>>()
    );
}

/// Both shapes at once: a v0 transaction whose only static program is the router; the vault's
/// own id (an account of the forward) is loaded from the table.
#[test]
fn a_v0_router_forward_with_the_vault_loaded_from_a_lookup_table_lands() {
    let mut w = VaultWorld::new();
    let (s, destination) = funded(&mut w);
    let table = w.create_lookup_table(&[s.vault(), destination, sdk::event_authority_address(), ephemeral_vault::ID]);
    let landed = w
        .send_v0(&[router::forward(trade_ix(&s, destination, 1, SOL / 2))], &s.delegate, &[], &[table])
        .expect("a v0 forwarded trade lands");
    assert!(matches!(only_event(&landed), VaultEvent::TradeExecuted(e) if e.trade_id == 1));
    let recorded = last(&w);
    assert!(!recorded.transaction.message.static_account_keys().contains(&ephemeral_vault::ID));
    assert!(recorded.loaded_addresses.readonly.contains(&ephemeral_vault::ID));
    assert!(recorded.mentions(&ephemeral_vault::ID));
}
