//! Prints the compute units each instruction uses (SOL and token variants), the program's size,
//! and each account's size and rent, measured by running the built .so in litesvm. Each figure
//! is printed beside the previous release's (the README's table before issue 14) and the issue's
//! target; the run fails (exit status 1) if a target is missed.
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

const VARIANTS: [&str; 4] = ["SOL", "SPL Token", "Token-2022", "Token-2022 + transfer fee"];

/// The previous release's figures: the README's table before issue 14, measured on the same
/// route (`scripts/bench-program.sh`). Per instruction, one per entry of [`VARIANTS`] (0: none).
const PREVIOUS: &[(&str, [u64; 4])] = &[
    ("initialize_config", [10_194, 0, 0, 0]),
    ("update_config", [6_726, 0, 0, 0]),
    ("set_paused", [5_715, 0, 0, 0]),
    ("create_session (+deposit)", [19_175, 27_672, 30_970, 33_489]),
    ("deposit", [13_019, 17_578, 19_287, 20_415]),
    ("execute_trade", [12_948, 18_297, 19_981, 21_083]),
    ("top_up_fees", [10_959, 0, 0, 0]),
    ("approve_delegate", [8_125, 8_125, 8_125, 8_125]),
    ("withdraw", [9_691, 15_035, 16_719, 17_821]),
    ("revoke_session", [8_143, 8_143, 8_143, 8_143]),
    ("cleanup_vault", [12_182, 21_822, 24_770, 28_722]),
];

/// Issue 14's targets (instruction, variant or `*` for all, most compute units). Every other
/// figure must simply not exceed the previous release's.
const TARGETS: &[(&str, &str, u64)] = &[
    ("execute_trade", "SOL", 7_000),
    ("execute_trade", "SPL Token", 12_500),
    ("execute_trade", "Token-2022", 14_000),
    ("create_session (+deposit)", "SOL", 14_000),
    ("deposit", "SOL", 7_500),
    ("approve_delegate", "*", 4_500),
    ("revoke_session", "*", 4_500),
    ("cleanup_vault", "SOL", 7_500),
];

fn previous(instruction: &str, variant: &str) -> Option<u64> {
    let (_, figures) = PREVIOUS.iter().find(|(name, _)| *name == instruction)?;
    let index = if variant == "-" { 0 } else { VARIANTS.iter().position(|v| *v == variant)? };
    figures.get(index).copied().filter(|units| *units > 0)
}

/// The target for a row, else the previous release's figure (not to be exceeded).
fn limit(instruction: &str, variant: &str) -> Option<u64> {
    TARGETS
        .iter()
        .find(|(name, v, _)| *name == instruction && (*v == "*" || *v == variant))
        .map(|(_, _, units)| *units)
        .or_else(|| previous(instruction, variant))
}

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
    println!("| instruction | variant | compute units | previous release | change | target (most) | |");
    println!("|---|---|---:|---:|---:|---:|---|");
    let mut missed = vec![];
    for row in &rows {
        let before = previous(row.instruction, &row.variant);
        let change = before.map(|b| format!("{:+}", i128::from(row.units) - i128::from(b))).unwrap_or_default();
        let target = limit(row.instruction, &row.variant);
        let verdict = match target {
            Some(most) if row.units > most => {
                missed.push(format!("{} ({}): {} > {}", row.instruction, row.variant, row.units, most));
                "MISSED"
            }
            Some(_) => "ok",
            None => "",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.instruction,
            row.variant,
            thousands(row.units),
            before.map(thousands).unwrap_or_default(),
            change,
            target.map(thousands).unwrap_or_default(),
            verdict,
        );
    }

    // The README's layout: this build's figure, the previous release's in parentheses.
    println!("\nAs in the README (previous release in parentheses):\n");
    println!("| instruction | {} |", VARIANTS.join(" | "));
    println!("|---|---:|---:|---:|---:|");
    let mut names: Vec<&str> = vec![];
    for row in &rows {
        if row.variant != "-" && !names.contains(&row.instruction) {
            names.push(row.instruction);
        }
    }
    for name in names {
        let cells: Vec<String> = VARIANTS
            .iter()
            .map(|variant| {
                let now = rows.iter().find(|r| r.instruction == name && r.variant == *variant);
                match (now, previous(name, variant)) {
                    (Some(r), Some(b)) => format!("{} ({})", thousands(r.units), thousands(b)),
                    (Some(r), None) => thousands(r.units),
                    _ => "-".into(),
                }
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    let admin: Vec<String> = rows
        .iter()
        .filter(|r| r.variant == "-")
        .map(|r| match previous(r.instruction, "-") {
            Some(b) => format!("{} ({})", thousands(r.units), thousands(b)),
            None => thousands(r.units),
        })
        .collect();
    println!("| initialize_config / update_config / set_paused | {} | | | |", admin.join(" / "));

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

    if missed.is_empty() {
        println!("\nEvery figure is within its target (issue 14) or the previous release's.");
    } else {
        eprintln!("\nAbove target or above the previous release:\n  {}", missed.join("\n  "));
        std::process::exit(1);
    }
}
