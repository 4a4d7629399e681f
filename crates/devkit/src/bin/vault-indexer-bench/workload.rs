//! The benchmark's workload: transactions of the real program executed in litesvm, with the
//! proportions of a live deployment. Sessions open, deposit, trade (most of the traffic, some
//! refused over the per-trade cap), rotate their delegate, top up fees, withdraw, are revoked
//! and then cleaned up, while new sessions open, so the set of live sessions turns over. The
//! chain clock moves through several hours so the indexer's per-hour analytics see real hours.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use ephemeral_vault::sdk;
use ephemeral_vault_testkit::*;
use solana_keypair::Keypair;
use solana_signer::Signer;
use vault_devkit::recorded::chain_tx;
use vault_indexer::chain_tx::ChainTx;

/// Chain time the whole stream spans, seconds (6 hours).
const CHAIN_SPAN_SECS: f64 = 6.0 * 3600.0;
/// A trade's amount is at most this (lamports or token base units); the cap is ten times more.
const TRADE_MAX: u64 = 1_000_000;
const PER_TRADE_CAP: u64 = 10 * TRADE_MAX;
const TRADE_FEE: u64 = 5_000;
const INITIAL_DEPOSIT: u64 = 5 * LAMPORTS_PER_SOL;
const DEPOSIT: u64 = LAMPORTS_PER_SOL / 5;
const WITHDRAWAL: u64 = LAMPORTS_PER_SOL / 10;
const TOP_UP: u64 = 1_000_000;
/// One session in this many holds an SPL token instead of SOL.
const SPL_EVERY: usize = 100;

/// What the benchmark sent, by the instruction's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    CreateSol,
    CreateSpl,
    Deposit,
    Trade,
    TradeOverCap,
    TopUpFees,
    RotateDelegate,
    Withdraw,
    Revoke,
    Cleanup,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::CreateSol => "create_session (SOL)",
            Kind::CreateSpl => "create_session (SPL token)",
            Kind::Deposit => "deposit",
            Kind::Trade => "execute_trade",
            Kind::TradeOverCap => "execute_trade over the per-trade cap",
            Kind::TopUpFees => "top_up_fees",
            Kind::RotateDelegate => "approve_delegate (rotation)",
            Kind::Withdraw => "withdraw",
            Kind::Revoke => "revoke_session",
            Kind::Cleanup => "cleanup_vault",
        }
    }
}

/// Transactions sent by kind: (landed, refused by the program).
#[derive(Default)]
pub struct Mix(pub BTreeMap<Kind, (u64, u64)>);

impl Mix {
    fn count(&mut self, kind: Kind, landed: bool) {
        let entry = self.0.entry(kind).or_default();
        if landed {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
}

/// The stream and what it is made of.
pub struct Workload {
    /// The program's transactions in chain order, as a node delivers them.
    pub txs: Vec<ChainTx>,
    pub mix: Mix,
    /// Wall time of executing the stream in litesvm.
    pub elapsed: Duration,
    /// Live sessions the generator keeps open.
    pub target_live: usize,
    /// Live sessions at most, at once.
    pub peak_live: usize,
    /// Sessions opened (SOL, SPL).
    pub opened: (usize, usize),
    /// Trades a session makes before it is revoked: (fewest, most) drawn.
    pub lifetime_range: (u32, u32),
    /// Refusals the workload did not intend (a bug in the generator if not 0), and the first.
    pub unexpected_refusals: (u64, Option<String>),
}

impl Workload {
    /// (first, last) block_time of the stream, unix seconds.
    pub fn chain_time(&self) -> (i64, i64) {
        let times = self.txs.iter().filter_map(|t| t.block_time);
        let first = times.clone().min().unwrap_or(0);
        (first, times.max().unwrap_or(0))
    }

    /// Distinct UTC hours the stream's block times fall in.
    pub fn utc_hours(&self) -> usize {
        self.txs.iter().filter_map(|t| t.block_time).map(|t| t.div_euclid(3600)).collect::<BTreeSet<_>>().len()
    }
}

/// A small deterministic generator (splitmix64): the same stream on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// A session that is open, with what the generator knows of its books.
struct Live {
    s: TestSession,
    /// Where its trades go: the venue's token account for an SPL session.
    venue_token: Option<Pubkey>,
    trade_id: u64,
    trades_left: u32,
    /// Deposited less spent and withdrawn.
    balance: u64,
    topped_up: u64,
}

/// A revoked session waiting for the cleanup bot, due at a position in the stream.
struct Revoked {
    s: TestSession,
    due: usize,
}

/// The world and the stream being recorded from it.
struct Generator {
    w: VaultWorld,
    rng: Rng,
    txs: Vec<ChainTx>,
    mix: Mix,
    venue: Keypair,
    bot: Keypair,
    mint: Option<(TestMint, Pubkey)>,
    unexpected: (u64, Option<String>),
    clock_debt: f64,
    seconds_per_tx: f64,
}

impl Generator {
    /// Records what the world executed since the last call (the program's transactions only)
    /// and counts the outcome under `kind`.
    fn record(&mut self, kind: Kind, outcome: &Outcome, expect_landed: bool) {
        for r in self.w.history.drain(..) {
            if r.mentions(&ephemeral_vault::ID) {
                self.txs.push(chain_tx(&r));
            }
        }
        self.mix.count(kind, outcome.is_ok());
        if outcome.is_ok() != expect_landed {
            self.unexpected.0 += 1;
            if self.unexpected.1.is_none() {
                let what = match outcome {
                    Ok(_) => "landed".to_string(),
                    Err(refused) => format!("{:?}", refused.err),
                };
                self.unexpected.1 = Some(format!("{}: {what}", kind.label()));
            }
        }
    }

    /// Moves the chain clock on by this transaction's share of the span.
    fn tick(&mut self) {
        self.clock_debt += self.seconds_per_tx;
        let whole = self.clock_debt.floor();
        if whole >= 1.0 {
            self.w.advance(whole as i64);
            self.clock_debt -= whole;
        }
    }

    fn open(&mut self, spl: bool, lifetime: u32) -> Live {
        let (s, venue_token, kind) = match (spl, self.mint) {
            (true, Some((mint, venue_token))) => {
                (self.w.token_session(&mint, 100 * LAMPORTS_PER_SOL), Some(venue_token), Kind::CreateSpl)
            }
            _ => (self.w.sol_session(), None, Kind::CreateSol),
        };
        let mut args = session_args(s.session.session_id);
        args.approved_amount = 50 * LAMPORTS_PER_SOL;
        args.per_trade_cap = PER_TRADE_CAP;
        args.initial_deposit = INITIAL_DEPOSIT;
        args.duration_secs = 86_400;
        let outcome = self.w.create(&s, args);
        self.record(kind, &outcome, true);
        Live { s, venue_token, trade_id: 0, trades_left: lifetime, balance: INITIAL_DEPOSIT, topped_up: 0 }
    }

    fn trade(&mut self, live: &mut Live, over_cap: bool) {
        live.trade_id += 1;
        let amount = if over_cap {
            PER_TRADE_CAP + self.rng.between(1, PER_TRADE_CAP)
        } else {
            self.rng.between(1_000, TRADE_MAX)
        };
        let venue = self.venue.pubkey();
        let outcome =
            self.w.trade(&live.s, &live.s.delegate, venue, live.venue_token, live.trade_id, amount, TRADE_FEE);
        if outcome.is_ok() {
            live.balance -= amount + TRADE_FEE;
        }
        let kind = if over_cap { Kind::TradeOverCap } else { Kind::Trade };
        self.record(kind, &outcome, !over_cap);
    }

    fn deposit(&mut self, live: &mut Live) {
        let ix = sdk::deposit(&live.s.session, live.s.parent_token_account, DEPOSIT);
        let outcome = self.w.send(&[ix], &live.s.parent, &[]);
        if outcome.is_ok() {
            live.balance += DEPOSIT;
        }
        self.record(Kind::Deposit, &outcome, true);
    }

    fn withdraw(&mut self, live: &mut Live) {
        let ix = sdk::withdraw(&live.s.session, live.s.parent_token_account, WITHDRAWAL);
        let outcome = self.w.send(&[ix], &live.s.parent, &[]);
        if outcome.is_ok() {
            live.balance -= WITHDRAWAL;
        }
        self.record(Kind::Withdraw, &outcome, true);
    }

    fn top_up(&mut self, live: &mut Live) {
        let ix = sdk::top_up_fees(&live.s.session, live.s.delegate.pubkey(), TOP_UP);
        let outcome = self.w.send(&[ix], &live.s.delegate, &[]);
        if outcome.is_ok() {
            live.balance -= TOP_UP;
            live.topped_up += TOP_UP;
        }
        self.record(Kind::TopUpFees, &outcome, true);
    }

    fn rotate(&mut self, live: &mut Live) {
        let next = self.w.new_wallet(LAMPORTS_PER_SOL / 10);
        let ix = sdk::approve_delegate(&live.s.session, next.pubkey());
        let outcome = self.w.send(&[ix], &live.s.parent, &[]);
        if outcome.is_ok() {
            live.s.delegate = next;
        }
        self.record(Kind::RotateDelegate, &outcome, true);
    }

    fn revoke(&mut self, live: Live, due: usize) -> Revoked {
        let ix = sdk::revoke_session(&live.s.session);
        let outcome = self.w.send(&[ix], &live.s.parent, &[]);
        self.record(Kind::Revoke, &outcome, true);
        Revoked { s: live.s, due }
    }

    fn cleanup(&mut self, revoked: Revoked) {
        let ix = sdk::cleanup_vault(&revoked.s.session, self.bot.pubkey(), revoked.s.parent_token_account);
        let bot = self.bot.insecure_clone();
        let outcome = self.w.send(&[ix], &bot, &[]);
        self.record(Kind::Cleanup, &outcome, true);
    }

    /// One action on a live session, by the workload's proportions (per mille): deposit 40,
    /// withdraw 20, delegate rotation 10, fee top-up 3 (SOL sessions), trade the rest, of which
    /// one in fourteen is over the per-trade cap.
    fn act(&mut self, live: &mut Live) {
        let roll = self.rng.between(0, 999);
        match roll {
            0..=39 => self.deposit(live),
            40..=59 if live.balance > 2 * WITHDRAWAL + 2 * PER_TRADE_CAP => self.withdraw(live),
            60..=69 => self.rotate(live),
            70..=72 if live.s.mint.is_none() && live.topped_up + TOP_UP <= default_params().fee_top_up_cap => {
                self.top_up(live)
            }
            _ => {
                let over_cap = self.rng.between(0, 13) == 0;
                if !over_cap && live.balance < TRADE_MAX + TRADE_FEE {
                    self.deposit(live);
                } else {
                    self.trade(live, over_cap);
                    live.trades_left = live.trades_left.saturating_sub(1);
                }
            }
        }
    }
}

/// Live sessions kept open for a stream of `count` transactions: about one per thousand,
/// between 16 and 200.
pub fn target_live(count: usize) -> usize {
    (count / 1_000).clamp(16, 200)
}

/// Executes at least `count` transactions of the real program (sigverify off) and records them
/// as the indexer receives them, in chain order.
pub fn generate(count: usize) -> Workload {
    let started = Instant::now();
    let mut w = VaultWorld::new();
    w.svm = std::mem::take(&mut w.svm).with_sigverify(false);
    let venue = w.new_wallet(LAMPORTS_PER_SOL);
    let bot = w.new_wallet(LAMPORTS_PER_SOL);
    let mint = w.create_mint(MintKind::Spl, 6);
    let venue_token = w.create_token_account(&mint, &venue.pubkey());
    w.history.clear();
    let mut g = Generator {
        w,
        rng: Rng(0x5EED_F00D_BE4C),
        txs: Vec::with_capacity(count + 16),
        mix: Mix::default(),
        venue,
        bot,
        mint: Some((mint, venue_token)),
        unexpected: (0, None),
        clock_debt: 0.0,
        seconds_per_tx: CHAIN_SPAN_SECS / count.max(1) as f64,
    };
    let target = target_live(count);
    let lifetime_range = (200u32, 2_000u32);
    let mut live: Vec<Live> = Vec::with_capacity(target);
    let mut revoked: VecDeque<Revoked> = VecDeque::new();
    let (mut opened_sol, mut opened_spl, mut peak_live) = (0usize, 0usize, 0usize);
    while g.txs.len() < count {
        g.tick();
        let position = g.txs.len();
        if live.len() < target {
            let opened = opened_sol + opened_spl;
            // The third session is SPL, then one in SPL_EVERY.
            let spl = opened % SPL_EVERY == 2;
            let lifetime = g.rng.between(u64::from(lifetime_range.0), u64::from(lifetime_range.1)) as u32;
            live.push(g.open(spl, lifetime));
            if spl {
                opened_spl += 1;
            } else {
                opened_sol += 1;
            }
            peak_live = peak_live.max(live.len());
            continue;
        }
        if let Some(next) = revoked.pop_front_if(|r| r.due <= position) {
            g.cleanup(next);
            continue;
        }
        let k = g.rng.between(0, live.len() as u64 - 1) as usize;
        g.act(&mut live[k]);
        if live[k].trades_left == 0 {
            let done = live.swap_remove(k);
            // The cleanup bot comes by a while later.
            let due = position + g.rng.between(50, 500) as usize;
            revoked.push_back(g.revoke(done, due));
        }
    }
    Workload {
        txs: g.txs,
        mix: g.mix,
        elapsed: started.elapsed(),
        target_live: target,
        peak_live,
        opened: (opened_sol, opened_spl),
        lifetime_range,
        unexpected_refusals: g.unexpected,
    }
}
