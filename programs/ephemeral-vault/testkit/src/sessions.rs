//! Opening sessions in tests with sensible defaults, so each test states only what it is about.

use anchor_lang::prelude::Pubkey;
use ephemeral_vault::instructions::CreateSessionArgs;
use ephemeral_vault::sdk::{self, Asset, SessionRef};
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::tokens::TestMint;
use crate::world::{Landed, Outcome, VaultWorld, LAMPORTS_PER_SOL};

/// A session opened in a test, with the keys that act on it.
pub struct TestSession {
    pub parent: Keypair,
    pub delegate: Keypair,
    pub session: SessionRef,
    /// The parent's token account, for token sessions.
    pub parent_token_account: Option<Pubkey>,
    pub mint: Option<TestMint>,
}

impl TestSession {
    pub fn vault(&self) -> Pubkey {
        self.session.vault()
    }
}

/// Defaults for `create_session`: 10 SOL (or 10 tokens at 6 decimals) approved, 1 per trade,
/// one hour, no allow-list, no deposit, no fee top-up.
pub fn session_args(session_id: [u8; 16]) -> CreateSessionArgs {
    CreateSessionArgs {
        session_id,
        approved_amount: 10 * LAMPORTS_PER_SOL,
        per_trade_cap: LAMPORTS_PER_SOL,
        duration_secs: 3_600,
        destinations: vec![],
        initial_deposit: 0,
        fee_top_up: 0,
    }
}

pub fn random_session_id() -> [u8; 16] {
    Keypair::new().pubkey().to_bytes()[..16].try_into().expect("16 bytes")
}

impl VaultWorld {
    /// A funded parent and a fresh delegate for a SOL session, not yet created.
    pub fn sol_session(&mut self) -> TestSession {
        let parent = self.new_wallet(100 * LAMPORTS_PER_SOL);
        let delegate = self.new_wallet(LAMPORTS_PER_SOL / 10);
        TestSession {
            session: SessionRef { parent: parent.pubkey(), session_id: random_session_id(), asset: Asset::Sol },
            parent,
            delegate,
            parent_token_account: None,
            mint: None,
        }
    }

    /// A funded parent holding `balance` tokens of `mint`, and a fresh delegate.
    pub fn token_session(&mut self, mint: &TestMint, balance: u64) -> TestSession {
        let mut s = self.sol_session();
        let account = self.create_token_account(mint, &s.parent.pubkey());
        if balance > 0 {
            self.mint_to(mint, &account, balance);
        }
        s.session.asset = mint.asset();
        s.parent_token_account = Some(account);
        s.mint = Some(*mint);
        s
    }

    /// Sends `create_session` for `s` with `args` (its session id is taken from `s`).
    pub fn create(&mut self, s: &TestSession, mut args: CreateSessionArgs) -> Outcome {
        args.session_id = s.session.session_id;
        let ix =
            sdk::create_session(s.parent.pubkey(), s.delegate.pubkey(), s.session.asset, s.parent_token_account, args);
        self.send(&[ix], &s.parent, &[])
    }

    /// A SOL session created with the defaults and `deposit` lamports in the vault.
    pub fn open_sol_session(&mut self, deposit: u64) -> TestSession {
        let s = self.sol_session();
        let mut args = session_args(s.session.session_id);
        args.initial_deposit = deposit;
        self.create(&s, args).expect("create SOL session");
        s
    }

    /// A token session created with the defaults and `deposit` tokens sent to the vault.
    pub fn open_token_session(&mut self, mint: &TestMint, deposit: u64) -> TestSession {
        let s = self.token_session(mint, deposit.max(1) * 2);
        let mut args = session_args(s.session.session_id);
        args.initial_deposit = deposit;
        self.create(&s, args).expect("create token session");
        s
    }

    /// `execute_trade` by `delegate` to `destination` (a wallet; for token sessions its token
    /// account is `destination_token_account`).
    #[allow(clippy::too_many_arguments)] // the instruction's own arguments, spelled out per test
    pub fn trade(
        &mut self,
        s: &TestSession,
        delegate: &Keypair,
        destination: Pubkey,
        destination_token_account: Option<Pubkey>,
        trade_id: u64,
        amount: u64,
        fee: u64,
    ) -> Outcome {
        let ix = sdk::execute_trade(
            &s.session,
            delegate.pubkey(),
            destination,
            destination_token_account,
            ephemeral_vault::instructions::ExecuteTradeArgs { trade_id, amount, fee },
        );
        self.send(&[ix], delegate, &[])
    }
}

/// The single event of a landed transaction, for tests that expect exactly one.
pub fn only_event(landed: &Landed) -> &ephemeral_vault::sdk::VaultEvent {
    assert_eq!(landed.events.len(), 1, "events: {:?}", landed.events);
    &landed.events[0]
}
