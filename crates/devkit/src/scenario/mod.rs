//! The main job's sessions: several parents open SOL and Token-2022 sessions and their
//! ephemeral wallets trade, through real signed transactions on a real chain. Along the way it
//! does what users and attackers do - an over-cap trade, a fee top-up, a delegate rotation, a
//! stale delegate trying on, a withdrawal, a revoke, sessions left to expire and a trade after
//! expiry - and it tallies the rows the indexer must end up with ([`Expected`]).
//!
//! What it leaves for the cleanup bot: one revoked and two expired sessions; one session stays
//! active and must be left alone.

pub mod chain;
pub mod expected;
pub mod tokens;

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::solana_program::system_instruction;
use anyhow::{bail, Context};
use ephemeral_vault::errors::VaultError;
use ephemeral_vault::instructions::{CreateSessionArgs, ExecuteTradeArgs};
use ephemeral_vault::sdk::{self, Asset, SessionRef};
use ephemeral_vault::state::ConfigParams;
use solana_keypair::Keypair;
use solana_message::Message;
use solana_signer::Signer;
use solana_transaction::Transaction;
use solana_transaction_error::TransactionError;

pub use chain::{RpcScenarioChain, ScenarioChain};
pub use expected::Expected;
use tokens::FeeMint;
use vault_chain::ChainError;

const SOL: u64 = 1_000_000_000;
/// One whole token of the scenario's 6-decimal mint.
const TOKEN: u64 = 1_000_000;

/// Knobs for the scenario.
#[derive(Clone, Debug)]
pub struct ScenarioOptions {
    /// Lifetime of the sessions that are left to expire; the config's minimum is set to it.
    pub short_session_secs: i64,
    /// Trades of the busy session (the `high_frequency` alert fires from 10 within a minute).
    pub busy_trades: u64,
}

impl Default for ScenarioOptions {
    fn default() -> Self {
        Self { short_session_secs: 20, busy_trades: 12 }
    }
}

/// The config a fresh local chain gets.
pub fn local_config(options: &ScenarioOptions) -> ConfigParams {
    ConfigParams {
        max_session_duration: 24 * 60 * 60,
        min_session_duration: options.short_session_secs,
        fee_top_up_cap: SOL / 20,
        cleanup_reward_bps: 5_000,
        cleanup_reward_cap: 2_000_000,
    }
}

/// Drives the scenario. `admin` is the program's upgrade authority (it initialises the config
/// when the chain has none); `progress` gets one line per step.
pub async fn run(
    chain: &dyn ScenarioChain,
    admin: &Keypair,
    options: &ScenarioOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<Expected> {
    let mut d = Driver { chain, expected: Expected::default(), progress };
    let operator = Keypair::new();
    d.chain.airdrop(&operator.pubkey(), 100 * SOL).await.context("funding the operator")?;
    if !d.chain.account_exists(&sdk::config_address()).await? {
        d.step("initialising the program's config");
        d.chain.airdrop(&admin.pubkey(), SOL).await?;
        d.send_ok(&[sdk::initialize_config(admin.pubkey(), local_config(options))], admin, &[]).await?;
    }

    d.step("funding three parents and a trading venue");
    let (alice, bob, carol, venue) = (Keypair::new(), Keypair::new(), Keypair::new(), Keypair::new());
    let funding: Vec<Instruction> = [(&alice, 10 * SOL), (&bob, 2 * SOL), (&carol, 10 * SOL), (&venue, SOL / 100)]
        .iter()
        .map(|(k, lamports)| system_instruction::transfer(&operator.pubkey(), &k.pubkey(), *lamports))
        .collect();
    d.send_ok(&funding, &operator, &[]).await?;

    d.step("creating a Token-2022 mint with a 1% transfer fee; minting 1,000 tokens to bob");
    let mint_key = Keypair::new();
    let mint = FeeMint { address: mint_key.pubkey(), decimals: 6, fee_bps: 100, max_fee: 5 * TOKEN };
    d.send_ok(&mint.create(&operator.pubkey(), &operator.pubkey())?, &operator, &[&mint_key]).await?;
    let (bob_tokens, create_bob_ata) = mint.associated_account(&operator.pubkey(), &bob.pubkey());
    let (venue_tokens, create_venue_ata) = mint.associated_account(&operator.pubkey(), &venue.pubkey());
    let mint_to_bob = mint.mint_to(&operator.pubkey(), &bob_tokens, 1_000 * TOKEN)?;
    d.send_ok(&[create_bob_ata, create_venue_ata, mint_to_bob], &operator, &[]).await?;

    // The sessions that are left to expire go first, so their clocks run during the rest.
    let short = options.short_session_secs;
    d.step(&format!("bob opens a Token-2022 session ({short} s) with 500 tokens; carol a SOL one"));
    let bob_session =
        d.open(&bob, mint.asset(), Some(bob_tokens), terms(300 * TOKEN, 100 * TOKEN, 500 * TOKEN, short)).await?;
    let carol_short = d.open(&carol, Asset::Sol, None, terms(SOL / 2, SOL / 4, SOL, short)).await?;
    let expires_at = d.chain.unix_time().await? + short;
    d.trade(&bob_session, &venue.pubkey(), Some(venue_tokens), 1, 50 * TOKEN, 0, None).await?;
    d.trade(&bob_session, &venue.pubkey(), Some(venue_tokens), 2, 80 * TOKEN, 0, None).await?;
    d.trade(&carol_short, &venue.pubkey(), None, 1, SOL / 10, 0, None).await?;

    d.step("alice opens a SOL session (1 h, 3 SOL approved) and her ephemeral wallet trades");
    let mut alice_terms = terms(3 * SOL, 2 * SOL, 4 * SOL, 3_600);
    alice_terms.fee_top_up = SOL / 100;
    let mut alice_session = d.open(&alice, Asset::Sol, None, alice_terms).await?;
    d.send_ok(&[sdk::deposit(&alice_session.session, None, SOL / 2)], &alice, &[]).await?;
    d.trade(&alice_session, &venue.pubkey(), None, 1, SOL / 5, SOL / 1_000, None).await?;
    d.trade(&alice_session, &venue.pubkey(), None, 2, 3 * SOL / 10, 0, None).await?;
    d.step("a 1.6 SOL trade (over half the approval: an unusual_spending alert)");
    d.trade(&alice_session, &venue.pubkey(), None, 3, 16 * SOL / 10, 0, None).await?;
    d.step("a 2.5 SOL trade over the 2 SOL per-trade cap: refused on chain");
    d.trade(&alice_session, &venue.pubkey(), None, 4, 5 * SOL / 2, 0, Some(VaultError::PerTradeCapExceeded)).await?;
    d.step("the ephemeral wallet tops up its fee balance; alice rotates it out");
    let delegate = alice_session.delegate.insecure_clone();
    d.send_ok(&[sdk::top_up_fees(&alice_session.session, delegate.pubkey(), SOL / 200)], &delegate, &[]).await?;
    let rotated = Keypair::new();
    d.send_ok(&[sdk::approve_delegate(&alice_session.session, rotated.pubkey())], &alice, &[]).await?;
    d.fund_fees(&alice, &rotated.pubkey()).await?;
    let stale = std::mem::replace(&mut alice_session.delegate, rotated);
    d.trade(&alice_session, &venue.pubkey(), None, 5, SOL / 10, 0, None).await?;
    d.step("the rotated-out wallet tries to trade: refused");
    let stale_session = OpenSession { delegate: stale, ..alice_session.clone() };
    d.trade(&stale_session, &venue.pubkey(), None, 6, SOL / 10, 0, Some(VaultError::NotDelegate)).await?;
    d.step("alice's deposit and an over-cap trade in one transaction: both rolled back, each attributed");
    let over_cap = sdk::execute_trade(
        &alice_session.session,
        alice_session.delegate.pubkey(),
        venue.pubkey(),
        None,
        ExecuteTradeArgs { trade_id: 7, amount: 5 * SOL / 2, fee: 0 },
    );
    let both = [sdk::deposit(&alice_session.session, None, SOL / 10), over_cap];
    match d.send(&both, &alice, &[&alice_session.delegate]).await? {
        Some(e)
            if refused(&e).0
                == Some(anchor_lang::error::ERROR_CODE_OFFSET + VaultError::PerTradeCapExceeded as u32) => {}
        other => bail!("the over-cap trade should have failed the transaction: {other:?}"),
    }
    d.step("alice withdraws 0.5 SOL and revokes the session");
    d.send_ok(&[sdk::withdraw(&alice_session.session, None, SOL / 2)], &alice, &[]).await?;
    d.send_ok(&[sdk::revoke_session(&alice_session.session)], &alice, &[]).await?;
    d.expected.to_clean.push(alice_session.session.vault());

    d.step(&format!("carol's busy session: {} quick trades (a high_frequency alert)", options.busy_trades));
    let busy = d.open(&carol, Asset::Sol, None, terms(SOL, SOL / 10, 2 * SOL, 3_600)).await?;
    for trade_id in 1..=options.busy_trades {
        d.trade(&busy, &venue.pubkey(), None, trade_id, SOL / 100 + trade_id, 0, None).await?;
    }
    d.expected.left_active.push(busy.session.vault());

    // Session ids are public: anyone may open a session under a live one's id. Mallory takes
    // carol's busy session id and, in ONE transaction, opens a session (the shortest allowed),
    // revokes it, cleans it up and opens it again: two sessions of her own vault, neither of
    // which may touch carol's.
    d.step("mallory reuses carol's session id: create, revoke, cleanup, create again - one transaction");
    let mallory = Keypair::new();
    d.send_ok(&[system_instruction::transfer(&operator.pubkey(), &mallory.pubkey(), SOL)], &operator, &[]).await?;
    let reused = SessionRef { parent: mallory.pubkey(), session_id: busy.session.session_id, asset: Asset::Sol };
    let mut first = terms(10_000, 10_000, 5_000, local_config(options).min_session_duration);
    first.session_id = reused.session_id;
    let mut second = terms(20_000, 20_000, 0, 3_600);
    second.session_id = reused.session_id;
    let mallory_ixs = [
        sdk::create_session(mallory.pubkey(), Keypair::new().pubkey(), Asset::Sol, None, first),
        sdk::revoke_session(&reused),
        sdk::cleanup_vault(&reused, mallory.pubkey(), None),
        sdk::create_session(mallory.pubkey(), Keypair::new().pubkey(), Asset::Sol, None, second),
    ];
    d.send_ok(&mallory_ixs, &mallory, &[]).await?;
    d.expected.cleaned_in_scenario += 1;
    d.expected.left_active.push(reused.vault());
    d.step("carol's ephemeral wallet trades on: her session is untouched");
    d.trade(&busy, &venue.pubkey(), None, options.busy_trades + 1, SOL / 100, 0, None).await?;

    d.step("waiting for the short sessions to expire (chain clock)");
    d.chain.wait_until(expires_at + 1).await?;
    d.step("bob's ephemeral wallet trades after expiry: refused (an expired_session alert)");
    d.trade(&bob_session, &venue.pubkey(), Some(venue_tokens), 3, 10 * TOKEN, 0, Some(VaultError::SessionExpired))
        .await?;
    d.expected.to_clean.push(bob_session.session.vault());
    d.expected.to_clean.push(carol_short.session.vault());
    d.expected.alerts = vec!["expired_session", "high_frequency", "unusual_spending"];
    Ok(d.expected)
}

/// Session terms with no allow-list and no creation top-up.
fn terms(approved: u64, per_trade_cap: u64, deposit: u64, duration_secs: i64) -> CreateSessionArgs {
    CreateSessionArgs {
        session_id: *uuid::Uuid::new_v4().as_bytes(),
        approved_amount: approved,
        per_trade_cap,
        duration_secs,
        destinations: vec![],
        initial_deposit: deposit,
        fee_top_up: 0,
    }
}

/// A session the scenario opened, with its current ephemeral wallet.
struct OpenSession {
    session: SessionRef,
    delegate: Keypair,
}

impl Clone for OpenSession {
    fn clone(&self) -> Self {
        Self { session: self.session, delegate: self.delegate.insecure_clone() }
    }
}

struct Driver<'a> {
    chain: &'a dyn ScenarioChain,
    expected: Expected,
    progress: &'a (dyn Fn(&str) + Sync),
}

impl Driver<'_> {
    fn step(&self, line: &str) {
        (self.progress)(line);
    }

    /// Signs and executes; the program's error code when it landed failed.
    async fn send(
        &mut self,
        ixs: &[Instruction],
        payer: &Keypair,
        signers: &[&Keypair],
    ) -> anyhow::Result<Option<TransactionError>> {
        let blockhash = self.chain.latest_blockhash().await?;
        let mut all: Vec<&Keypair> = vec![payer];
        all.extend(signers.iter().copied().filter(|s| s.pubkey() != payer.pubkey()));
        let tx = Transaction::new(&all, Message::new_with_blockhash(ixs, Some(&payer.pubkey()), &blockhash), blockhash);
        let outcome = self.chain.execute(&tx).await?;
        if ixs.iter().any(|ix| ix.program_id == ephemeral_vault::ID) {
            self.expected.record(ixs, outcome.is_none());
        }
        Ok(outcome)
    }

    async fn send_ok(&mut self, ixs: &[Instruction], payer: &Keypair, signers: &[&Keypair]) -> anyhow::Result<()> {
        match self.send(ixs, payer, signers).await? {
            None => Ok(()),
            Some(e) => bail!("transaction failed on chain: {}", refused(&e).1),
        }
    }

    async fn open(
        &mut self,
        parent: &Keypair,
        asset: Asset,
        parent_tokens: Option<Pubkey>,
        args: CreateSessionArgs,
    ) -> anyhow::Result<OpenSession> {
        let delegate = Keypair::new();
        let session = SessionRef { parent: parent.pubkey(), session_id: args.session_id, asset };
        let ix = sdk::create_session(parent.pubkey(), delegate.pubkey(), asset, parent_tokens, args);
        self.send_ok(&[ix], parent, &[]).await?;
        self.fund_fees(parent, &delegate.pubkey()).await?;
        Ok(OpenSession { session, delegate })
    }

    /// The ephemeral wallet pays its own transaction fees: the parent gives it a little SOL.
    async fn fund_fees(&mut self, parent: &Keypair, delegate: &Pubkey) -> anyhow::Result<()> {
        let fees = system_instruction::transfer(&parent.pubkey(), delegate, SOL / 100);
        self.send_ok(&[fees], parent, &[]).await
    }

    /// A trade by the session's current ephemeral wallet; `refusal` is the error the program must
    /// answer with, or None when the trade must go through.
    #[allow(clippy::too_many_arguments)]
    async fn trade(
        &mut self,
        s: &OpenSession,
        destination: &Pubkey,
        destination_tokens: Option<Pubkey>,
        trade_id: u64,
        amount: u64,
        fee: u64,
        refusal: Option<VaultError>,
    ) -> anyhow::Result<()> {
        let args = ExecuteTradeArgs { trade_id, amount, fee };
        let ix = sdk::execute_trade(&s.session, s.delegate.pubkey(), *destination, destination_tokens, args);
        let outcome = self.send(&[ix], &s.delegate, &[]).await?;
        match (outcome, refusal) {
            (None, None) => Ok(()),
            (Some(e), Some(expected))
                if refused(&e).0 == Some(anchor_lang::error::ERROR_CODE_OFFSET + expected as u32) =>
            {
                Ok(())
            }
            (Some(e), _) => bail!("trade {trade_id}: {}", refused(&e).1),
            (None, Some(expected)) => {
                bail!("trade {trade_id} went through; the program should have refused it with {expected:?}")
            }
        }
    }
}

/// The program's error code and a readable name, as the relay and the bot report refusals.
fn refused(e: &TransactionError) -> (Option<u32>, String) {
    match ChainError::from_transaction_error(e) {
        ChainError::Refused { message, custom_code } => (custom_code, message),
        other => (None, other.to_string()),
    }
}
