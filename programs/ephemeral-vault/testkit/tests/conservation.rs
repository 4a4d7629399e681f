//! Property test: random sequences of every instruction from random signers (right and wrong),
//! random amounts (including u64::MAX) and a moving clock. After every step no lamport or token
//! is created or lost across parents, vaults, destinations, delegates and cleanup callers (the
//! only sink is the transaction fee, checked around every transaction), and every live vault satisfies its invariant and holds at
//! least what its books say.
//!
//! `VAULT_PROPERTY_STEPS` sets the length (default 10,000); `VAULT_PROPERTY_SEED` replays a run.

use std::collections::BTreeSet;

use anchor_lang::prelude::Pubkey;
use ephemeral_vault::instructions::UpdateConfigArgs;
use ephemeral_vault::sdk::{self, Asset, SessionRef};
use ephemeral_vault::state::Vault;
use ephemeral_vault_testkit::*;
use solana_keypair::Keypair;
use solana_signer::Signer;

const SOL: u64 = LAMPORTS_PER_SOL;

/// xorshift64*: small, seedable, and enough to explore instruction sequences.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// Mostly ordinary amounts, sometimes zero, one, or u64::MAX.
    fn amount(&mut self, scale: u64) -> u64 {
        match self.below(20) {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            _ => 1 + self.below(scale),
        }
    }
}

struct LiveSession {
    session: SessionRef,
    parent: usize,
    delegate: usize,
    next_trade_id: u64,
}

struct Harness {
    w: VaultWorld,
    rng: Rng,
    parents: Vec<Keypair>,
    delegates: Vec<Keypair>,
    destinations: Vec<Keypair>,
    callers: Vec<Keypair>,
    mints: Vec<TestMint>,
    /// token_accounts[mint][owner-address] for every parent and destination.
    token_accounts: Vec<Vec<(Pubkey, Pubkey)>>,
    sessions: Vec<LiveSession>,
    tracked: BTreeSet<Pubkey>,
    /// Every token account that may hold tokens (parents', destinations', vaults').
    token_holders: BTreeSet<Pubkey>,
    landed: u64,
    seed: u64,
    step: u64,
}

impl Harness {
    fn new(seed: u64) -> Self {
        let mut w = VaultWorld::new();
        // Signatures are not what this test is about; verifying them dominates a debug build.
        w.svm = std::mem::take(&mut w.svm).with_sigverify(false);
        let parents: Vec<Keypair> = (0..2).map(|_| w.new_wallet(1_000 * SOL)).collect();
        let delegates: Vec<Keypair> = (0..4).map(|_| w.new_wallet(SOL)).collect();
        let destinations: Vec<Keypair> = (0..2).map(|_| w.new_wallet(SOL)).collect();
        let callers: Vec<Keypair> = (0..2).map(|_| w.new_wallet(SOL)).collect();
        let mints = vec![
            w.create_mint(MintKind::Spl, 6),
            w.create_mint(MintKind::Token2022TransferFee { bps: 250, max_fee: 5_000 }, 6),
        ];
        let mut token_accounts = vec![];
        for mint in &mints {
            let mut accounts = vec![];
            for owner in parents.iter().chain(destinations.iter()) {
                let account = w.create_token_account(mint, &owner.pubkey());
                if parents.iter().any(|p| p.pubkey() == owner.pubkey()) {
                    w.mint_to(mint, &account, 1_000_000_000_000);
                }
                accounts.push((owner.pubkey(), account));
            }
            token_accounts.push(accounts);
        }
        let token_holders = token_accounts.iter().flatten().map(|(_, a)| *a).collect();
        let mut tracked = BTreeSet::new();
        tracked.insert(w.admin.pubkey());
        for k in parents.iter().chain(&delegates).chain(&destinations).chain(&callers) {
            tracked.insert(k.pubkey());
        }
        for (i, mint) in mints.iter().enumerate() {
            tracked.insert(mint.address);
            tracked.extend(token_accounts[i].iter().map(|(_, a)| *a));
        }
        Self {
            w,
            rng: Rng(seed | 1),
            parents,
            delegates,
            destinations,
            callers,
            mints,
            token_accounts,
            sessions: vec![],
            token_holders,
            tracked,
            landed: 0,
            seed,
            step: 0,
        }
    }

    fn token_account(&self, asset: &Asset, owner: &Pubkey) -> Option<Pubkey> {
        let Asset::Token { mint, .. } = asset else { return None };
        let i = self.mints.iter().position(|m| m.address == *mint)?;
        self.token_accounts[i].iter().find(|(o, _)| o == owner).map(|(_, a)| *a)
    }

    fn total_lamports(&self) -> u128 {
        self.tracked.iter().map(|k| u128::from(self.w.lamports(k))).sum()
    }

    /// Tokens of `mint` held anywhere we track, plus fees withheld in accounts and the mint.
    fn total_tokens(&self, mint: &TestMint) -> u128 {
        let mut total = u128::from(self.w.withheld_in_mint(mint));
        for key in &self.token_holders {
            if let Some(account) = self.w.account(key) {
                if account.owner == mint.program() && account.data[..32] == mint.address.to_bytes() {
                    total += u128::from(self.w.token_balance(key)) + u128::from(self.w.withheld_in_account(key));
                }
            }
        }
        total
    }

    /// Sends one instruction and checks that, over every account it names and every account
    /// seen before, lamports after plus the fee equal lamports before.
    fn send(&mut self, ix: anchor_lang::solana_program::instruction::Instruction, signer: &Keypair) {
        for meta in &ix.accounts {
            self.tracked.insert(meta.pubkey);
        }
        if let Some(session) = self.sessions.iter().find(|s| ix.accounts.iter().any(|m| m.pubkey == s.session.vault()))
        {
            self.token_holders.extend(session.session.vault_token_account());
        }
        let before = self.total_lamports();
        let fee = match self.w.send(&[ix], signer, &[]) {
            Ok(landed) => {
                self.landed += 1;
                landed.meta.fee
            }
            Err(refused) => refused.meta.fee,
        };
        let after = self.total_lamports();
        assert_eq!(after + u128::from(fee), before, "seed {} step {}: lamports created or lost", self.seed, self.step);
    }

    fn step(&mut self) {
        let action = self.rng.below(100);
        if self.sessions.is_empty() && self.w.config().paused && self.rng.chance(20) {
            let admin = self.w.admin.insecure_clone();
            return self.send(sdk::set_paused(admin.pubkey(), false), &admin);
        }
        if self.sessions.is_empty() || (action < 12 && self.sessions.len() < 6) {
            return self.create();
        }
        let index = self.rng.below(self.sessions.len() as u64) as usize;
        let (session, parent_index, delegate_index) = {
            let s = &self.sessions[index];
            (s.session, s.parent, s.delegate)
        };
        // One step in five signs with someone who should not be able to do it.
        let wrong = self.rng.chance(20);
        let parent = if wrong {
            self.rng.pick(&self.delegates).insecure_clone()
        } else {
            self.parents[parent_index].insecure_clone()
        };
        let delegate = if wrong {
            self.rng.pick(&self.parents).insecure_clone()
        } else {
            self.delegates[delegate_index].insecure_clone()
        };
        let parent_ta = self.token_account(&session.asset, &session.parent);
        match action {
            0..=11 => {
                let ix = as_signer(sdk::deposit(&session, parent_ta, self.rng.amount(5 * SOL)), &parent);
                self.send(ix, &parent);
            }
            12..=19 => {
                let ix = as_signer(sdk::withdraw(&session, parent_ta, self.rng.amount(3 * SOL)), &parent);
                self.send(ix, &parent);
            }
            20..=49 => {
                let dest = self.rng.pick(&self.destinations).pubkey();
                let dest_ta = self.token_account(&session.asset, &dest);
                let trade_id = if self.rng.chance(10) { 1 } else { self.sessions[index].next_trade_id };
                self.sessions[index].next_trade_id += 1 + self.rng.below(3);
                let args = ephemeral_vault::instructions::ExecuteTradeArgs {
                    trade_id,
                    amount: self.rng.amount(SOL),
                    fee: if self.rng.chance(50) { 0 } else { self.rng.amount(10_000) },
                };
                let ix = sdk::execute_trade(&session, delegate.pubkey(), dest, dest_ta, args);
                self.send(ix, &delegate);
            }
            50..=57 => {
                let ix = sdk::top_up_fees(&session, delegate.pubkey(), self.rng.amount(SOL / 50));
                self.send(ix, &delegate);
            }
            58..=63 => {
                let next = self.rng.below(self.delegates.len() as u64) as usize;
                let ix = as_signer(sdk::approve_delegate(&session, self.delegates[next].pubkey()), &parent);
                let before = self.w.vault(&session.vault()).map(|v| v.delegate);
                self.send(ix, &parent);
                if self.w.vault(&session.vault()).map(|v| v.delegate) != before {
                    self.sessions[index].delegate = next;
                }
            }
            64..=69 => {
                let ix = as_signer(sdk::revoke_session(&session), &parent);
                self.send(ix, &parent);
            }
            70..=84 => {
                let caller = self.rng.pick(&self.callers).insecure_clone();
                let ix = sdk::cleanup_vault(&session, caller.pubkey(), parent_ta);
                self.send(ix, &caller);
                if self.w.vault(&session.vault()).is_none() {
                    self.sessions.remove(index);
                }
            }
            85..=97 => {
                let seconds = self.rng.below(900) as i64;
                self.w.advance(seconds);
            }
            _ => {
                let admin = self.w.admin.insecure_clone();
                let paused = self.w.config().paused;
                let ix = if self.rng.chance(50) {
                    sdk::set_paused(admin.pubkey(), !paused)
                } else {
                    let mut params = default_params();
                    params.cleanup_reward_bps = self.rng.below(10_001) as u16;
                    params.cleanup_reward_cap = self.rng.amount(10_000_000);
                    sdk::update_config(admin.pubkey(), UpdateConfigArgs { params, new_admin: None })
                };
                self.send(ix, &admin);
            }
        }
    }

    fn create(&mut self) {
        let parent_index = self.rng.below(self.parents.len() as u64) as usize;
        let delegate_index = self.rng.below(self.delegates.len() as u64) as usize;
        let parent = self.parents[parent_index].insecure_clone();
        let asset = match self.rng.below(3) {
            0 => Asset::Sol,
            i => self.mints[i as usize - 1].asset(),
        };
        let session = SessionRef { parent: parent.pubkey(), session_id: random_session_id(), asset };
        let mut args = session_args(session.session_id);
        args.approved_amount = 1 + self.rng.below(20 * SOL);
        args.per_trade_cap = 1 + self.rng.below(args.approved_amount);
        args.duration_secs = 60 + self.rng.below(7_200) as i64;
        args.initial_deposit = if self.rng.chance(70) { self.rng.below(10 * SOL) } else { 0 };
        args.fee_top_up = if self.rng.chance(30) { self.rng.below(default_params().fee_top_up_cap) } else { 0 };
        if self.rng.chance(40) {
            args.destinations = vec![self.destinations[0].pubkey()];
        }
        let parent_ta = self.token_account(&asset, &parent.pubkey());
        let ix = sdk::create_session(parent.pubkey(), self.delegates[delegate_index].pubkey(), asset, parent_ta, args);
        self.token_holders.extend(session.vault_token_account());
        self.send(ix, &parent);
        if self.w.vault(&session.vault()).is_some() {
            self.sessions.push(LiveSession {
                session,
                parent: parent_index,
                delegate: delegate_index,
                next_trade_id: 1,
            });
        }
    }

    fn check_vaults(&self, step: u64, seed: u64) {
        for live in &self.sessions {
            let vault: Vault = self.w.vault(&live.session.vault()).expect("live vault exists");
            if let Err(e) = vault.invariant() {
                panic!("seed {seed} step {step}: invariant broken: {e:?}\n{vault:?}");
            }
            let book = vault.book_balance().expect("book balance");
            let held = match live.session.vault_token_account() {
                None => self.w.lamports(&live.session.vault()) - self.w.rent(Vault::SPACE),
                Some(account) => self.w.token_balance(&account),
            };
            assert!(held >= book, "seed {seed} step {step}: vault holds {held} < books {book}");
        }
    }
}

/// Puts `signer` in the instruction's first (signing) account, which for parent instructions is
/// the parent: a wrong signer then claims to be the parent.
fn as_signer(
    mut ix: anchor_lang::solana_program::instruction::Instruction,
    signer: &Keypair,
) -> anchor_lang::solana_program::instruction::Instruction {
    ix.accounts[0].pubkey = signer.pubkey();
    ix
}

#[test]
fn no_value_is_created_or_lost_and_invariants_hold() {
    let steps: u64 = std::env::var("VAULT_PROPERTY_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let seed: u64 = std::env::var("VAULT_PROPERTY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    println!("property run: {steps} steps, VAULT_PROPERTY_SEED={seed}");
    let mut h = Harness::new(seed);
    let tokens_at_start: Vec<u128> = h.mints.iter().map(|m| h.total_tokens(m)).collect();
    for (i, mint) in h.mints.iter().enumerate() {
        assert_eq!(tokens_at_start[i], u128::from(h.w.supply(mint)), "every token is tracked");
    }

    for step in 0..steps {
        h.step = step;
        h.step();
        for (i, mint) in h.mints.iter().enumerate() {
            assert_eq!(
                h.total_tokens(mint),
                tokens_at_start[i],
                "seed {seed} step {step}: tokens of mint {i} created or lost"
            );
        }
        h.check_vaults(step, seed);
    }
    println!("{} of {steps} transactions landed; {} sessions still open", h.landed, h.sessions.len());
    assert!(h.landed > steps / 10, "too few transactions landed to mean anything: {}", h.landed);
}
