//! Prints the compute units each instruction uses (SOL and token variants), the program's size,
//! and each account's size and rent, measured by running the built .so in litesvm.
//!
//! `cargo run -p ephemeral-vault-testkit --bin vault-cu-bench` (scripts/bench-program.sh).

use anchor_lang::prelude::Pubkey;
use anchor_lang::Space;
use ephemeral_vault::instructions::UpdateConfigArgs;
use ephemeral_vault::sdk;
use ephemeral_vault::state::{Config, Vault, VAULT_SEED, VAULT_TOKEN_SEED};
use ephemeral_vault_testkit::*;
use solana_signer::Signer;

const SOL: u64 = LAMPORTS_PER_SOL;

struct Row {
    instruction: &'static str,
    variant: String,
    units: u64,
}

fn units(outcome: Outcome, what: &str) -> u64 {
    match outcome {
        Ok(landed) => landed.meta.compute_units_consumed,
        Err(refused) => panic!("{what} failed: {:?}\n{}", refused.err, refused.meta.logs.join("\n")),
    }
}

/// Runs one session through every instruction and records each one's compute units.
/// Returns the vault token account's size for token sessions.
fn measure(w: &mut VaultWorld, label: &str, mint: Option<MintKind>, rows: &mut Vec<Row>) -> Option<usize> {
    let mint = mint.map(|kind| w.create_mint(kind, 6));
    let mut s = match &mint {
        Some(m) => w.token_session(m, 1_000_000_000),
        None => w.sol_session(),
    };
    // create_session finds its PDAs' bumps on chain, which costs ~1.5k compute units per bump
    // tried: pick a session id whose vault and vault token account both take the first bump, so
    // runs are comparable.
    loop {
        let parent = s.parent.pubkey();
        let (vault, bump) =
            Pubkey::find_program_address(&[VAULT_SEED, parent.as_ref(), &s.session.session_id], &ephemeral_vault::ID);
        let (_, token_bump) = Pubkey::find_program_address(&[VAULT_TOKEN_SEED, vault.as_ref()], &ephemeral_vault::ID);
        if bump == u8::MAX && token_bump == u8::MAX {
            break;
        }
        s.session.session_id = random_session_id();
    }
    let mut record = |instruction, units| rows.push(Row { instruction, variant: label.to_string(), units });
    let mut args = session_args(s.session.session_id);
    args.initial_deposit = 100_000_000;
    args.approved_amount = 500_000_000;
    args.per_trade_cap = 100_000_000;
    record("create_session (+deposit)", units(w.create(&s, args), "create_session"));
    let dest = w.new_wallet(SOL);
    let dest_ta = mint.as_ref().map(|m| w.create_token_account(m, &dest.pubkey()));
    record(
        "deposit",
        units(w.send(&[sdk::deposit(&s.session, s.parent_token_account, 50_000_000)], &s.parent, &[]), "deposit"),
    );
    record("execute_trade", units(w.trade(&s, &s.delegate, dest.pubkey(), dest_ta, 1, 10_000_000, 1_000), "trade"));
    if mint.is_none() {
        record(
            "top_up_fees",
            units(w.send(&[sdk::top_up_fees(&s.session, s.delegate.pubkey(), 1_000_000)], &s.delegate, &[]), "top_up"),
        );
    }
    let next = w.new_wallet(SOL);
    record(
        "approve_delegate",
        units(w.send(&[sdk::approve_delegate(&s.session, next.pubkey())], &s.parent, &[]), "approve_delegate"),
    );
    record(
        "withdraw",
        units(w.send(&[sdk::withdraw(&s.session, s.parent_token_account, 1_000_000)], &s.parent, &[]), "withdraw"),
    );
    record("revoke_session", units(w.send(&[sdk::revoke_session(&s.session)], &s.parent, &[]), "revoke"));
    let token_account_len = s.session.vault_token_account().and_then(|a| w.account(&a)).map(|a| a.data.len());
    let caller = w.new_wallet(SOL);
    record(
        "cleanup_vault",
        units(
            w.send(&[sdk::cleanup_vault(&s.session, caller.pubkey(), s.parent_token_account)], &caller, &[]),
            "cleanup",
        ),
    );
    token_account_len
}

fn main() {
    let mut rows = vec![];
    let mut w = VaultWorld::deployed();
    let admin = w.admin.insecure_clone();
    let init = w.send(&[sdk::initialize_config(admin.pubkey(), default_params())], &admin, &[]);
    rows.push(Row { instruction: "initialize_config", variant: "-".into(), units: units(init, "init") });
    let update = w.send(
        &[sdk::update_config(admin.pubkey(), UpdateConfigArgs { params: default_params(), new_admin: None })],
        &admin,
        &[],
    );
    rows.push(Row { instruction: "update_config", variant: "-".into(), units: units(update, "update") });
    let pause = w.send(&[sdk::set_paused(admin.pubkey(), false)], &admin, &[]);
    rows.push(Row { instruction: "set_paused", variant: "-".into(), units: units(pause, "pause") });

    measure(&mut w, "SOL", None, &mut rows);
    let spl_len = measure(&mut w, "SPL Token", Some(MintKind::Spl), &mut rows).unwrap_or(0);
    let t22_len = measure(&mut w, "Token-2022", Some(MintKind::Token2022), &mut rows).unwrap_or(0);
    let fee_len = measure(
        &mut w,
        "Token-2022 + transfer fee",
        Some(MintKind::Token2022TransferFee { bps: 100, max_fee: 1_000_000 }),
        &mut rows,
    )
    .unwrap_or(0);

    println!("Compute units per instruction (litesvm, SBPF v3 build of target/deploy/ephemeral_vault.so)\n");
    println!("| instruction | variant | compute units |");
    println!("|---|---|---:|");
    for row in &rows {
        println!("| {} | {} | {} |", row.instruction, row.variant, row.units);
    }

    let so = std::fs::metadata(program_so_path()).map(|m| m.len()).unwrap_or(0);
    println!("\nProgram: target/deploy/ephemeral_vault.so = {so} bytes\n");
    println!("| account | size (bytes) | rent-exempt minimum (lamports) |");
    println!("|---|---:|---:|");
    let config_len = 8 + Config::INIT_SPACE;
    println!("| Config | {config_len} | {} |", w.rent(config_len));
    println!("| Vault | {} | {} |", Vault::SPACE, w.rent(Vault::SPACE));
    for (label, len) in [("SPL Token", spl_len), ("Token-2022", t22_len), ("Token-2022 + transfer fee", fee_len)] {
        println!("| vault token account ({label}) | {len} | {} |", w.rent(len));
    }
}
