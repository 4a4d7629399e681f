//! The cleanup bot: finds vaults that may be cleaned up (expired, revoked, or any while the
//! program is paused), checks the reward is worth the fee, sends `cleanup_vault` signed by its
//! own key, retries what did not reach the chain with backoff, never has two cleanups of one
//! vault in flight, and reports what it earned.
//!
//! Where a round's vaults come from is its [`CandidateSource`]: a scan of the whole program
//! (getProgramAccounts filtered on the vault's size and discriminator), or the indexer's
//! `cleanup_candidates_view` loaded from the chain by address, with a full scan every few rounds
//! for what the indexer has not seen yet. Either way the bot decides from the vault accounts the
//! chain returns, never from a database row: the chain decides what may be cleaned.
//!
//! Depends on `vault-chain` (sending, confirming, token accounts) and, for database candidates,
//! `vault-db` (the pool; it reads `cleanup_candidates_view`); never on the indexer, the session
//! service or the dev kit.

mod candidates;
mod cluster;

pub use candidates::{parse_addresses, DbCandidates};
pub use cluster::{decode_program_vault, decode_vault, ClusterView, RpcClusterView, VaultAccount};

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use ephemeral_vault::sdk::{self, Asset, SessionRef};
use ephemeral_vault::state::{CleanupReason, Vault};
use solana_keypair::Keypair;
use solana_message::Message;
use solana_signer::Signer;
use solana_transaction::Transaction;

use vault_chain::token_accounts::{associated_token_address, create_associated_token_account_idempotent};
use vault_chain::{Backoff, Chain, ChainError, Sent};

#[derive(Clone, Debug)]
pub struct BotConfig {
    /// Lamports the network charges per signature (the bot's transaction has one).
    pub fee_per_signature: u64,
    /// Clean only when the reward exceeds the fee by at least this much.
    pub min_profit: u64,
    /// Attempts per cleanup when the chain cannot be reached.
    pub max_attempts: u32,
}

impl Default for BotConfig {
    fn default() -> Self {
        Self { fee_per_signature: 5_000, min_profit: 0, max_attempts: 5 }
    }
}

/// With database candidates, a full chain scan every this many rounds unless configured.
pub const DEFAULT_SCAN_EVERY: u32 = 10;

/// Where the vaults of a round come from.
pub enum CandidateSource {
    /// Every round scans the whole program. Complete, but each round reads every vault.
    ChainScan,
    /// Most rounds load only the vaults the database lists as candidates, which is cheap when
    /// most sessions are live. The database lags the chain (a vault created after the indexer's
    /// last write is not in it), so the first round and every `scan_every`-th after it scan the
    /// whole program instead. So does a round whose database read fails: the database is a
    /// shortcut, not a dependency. `scan_every` 0 or 1 means every round scans.
    Database { candidates: DbCandidates, scan_every: u32 },
}

/// What one round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Whether this round scanned the whole program (else its vaults came from the database).
    pub full_scan: bool,
    /// Addresses the database listed as candidates (0 on a scan round).
    pub from_db: usize,
    /// Vault accounts found on chain and considered: every vault on a scan round, the
    /// candidates that are still vaults otherwise.
    pub vaults_seen: usize,
    /// Vaults cleaned, with why and the reward expected for each.
    pub cleaned: Vec<(Pubkey, CleanupReason, u64)>,
    /// Vaults that may be cleaned but were not, with the reason.
    pub skipped: Vec<(Pubkey, String)>,
    pub rewards: u64,
    pub fees: u64,
}

pub struct CleanupBot<C: Chain, V: ClusterView> {
    chain: C,
    view: V,
    caller: Keypair,
    config: BotConfig,
    in_flight: Mutex<HashSet<Pubkey>>,
    source: CandidateSource,
    /// Database rounds left before the next full scan; 0 means the next round scans.
    rounds_to_scan: AtomicU32,
}

/// Releases a vault's in-flight mark when its attempt ends, whatever the outcome.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<Pubkey>>,
    vault: Pubkey,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.vault);
    }
}

impl<C: Chain, V: ClusterView> CleanupBot<C, V> {
    /// A bot that scans the chain every round; see [`Self::with_candidates`].
    pub fn new(chain: C, view: V, caller: Keypair, config: BotConfig) -> Self {
        Self {
            chain,
            view,
            caller,
            config,
            in_flight: Mutex::default(),
            source: CandidateSource::ChainScan,
            rounds_to_scan: AtomicU32::new(0),
        }
    }

    /// Takes each round's vaults from `source`. The next round scans the chain in full.
    pub fn with_candidates(mut self, source: CandidateSource) -> Self {
        self.source = source;
        self.rounds_to_scan = AtomicU32::new(0);
        self
    }

    /// Lets the first round take the database's candidates instead of scanning, for a caller
    /// that knows the indexer has caught up (the main job waits for it); from then on every
    /// `scan_every`-th round scans. No effect on a chain-scan bot.
    pub fn database_first(self) -> Self {
        if let CandidateSource::Database { scan_every, .. } = &self.source {
            self.rounds_to_scan.store(scan_every.saturating_sub(1), Ordering::Relaxed);
        }
        self
    }

    pub fn caller(&self) -> Pubkey {
        self.caller.pubkey()
    }

    /// One pass over the round's vaults (see [`CandidateSource`]).
    pub async fn run_once(&self) -> Result<RoundReport, ChainError> {
        let config = self.view.config().await?;
        let now = self.view.unix_time().await?;
        let mut report = RoundReport::default();
        let vaults = self.round_vaults(&mut report).await?;
        report.vaults_seen = vaults.len();
        for account in vaults {
            // The only decision: the vault as the chain holds it now, whatever source named it.
            let Ok(reason) = account.vault.cleanup_reason(&config, now) else { continue };
            let session = session_of(&account.vault);
            let token_account_rent = match session.vault_token_account() {
                Some(key) => self.view.lamports(&key).await?,
                None => 0,
            };
            let vault_rent = self.view.minimum_balance(Vault::SPACE).await?;
            let reward = config.cleanup_reward(vault_rent.saturating_add(token_account_rent)).unwrap_or(0);
            let fee = self.config.fee_per_signature;
            if reward < fee.saturating_add(self.config.min_profit) {
                report.skipped.push((account.address, format!("reward {reward} does not cover fee {fee}")));
                continue;
            }
            // Token vaults return their balance to the parent's associated token account; if the
            // parent has none (or closed it), the bot creates it in the same transaction - the
            // idempotent create is permissionless - paying its rent, so the profit check counts it.
            let mut instructions = vec![];
            let mut extra_cost = 0;
            let parent_token_account = match &session.asset {
                Asset::Sol => None,
                Asset::Token { mint, token_program } => {
                    let ata = associated_token_address(&session.parent, mint, token_program);
                    if self.view.lamports(&ata).await? == 0 {
                        instructions.push(create_associated_token_account_idempotent(
                            &self.caller.pubkey(),
                            &session.parent,
                            mint,
                            token_program,
                        ));
                        // Same mint, so about the vault token account's own rent.
                        extra_cost = self.view.lamports(&session.vault_token_account().unwrap_or_default()).await?;
                    }
                    Some(ata)
                }
            };
            if reward < fee.saturating_add(extra_cost).saturating_add(self.config.min_profit) {
                report
                    .skipped
                    .push((account.address, format!("reward {reward} does not cover the parent's token account rent")));
                continue;
            }
            let Some(_guard) = self.claim(account.address) else {
                report.skipped.push((account.address, "a cleanup is already in flight".into()));
                continue;
            };
            instructions.push(sdk::cleanup_vault(&session, self.caller.pubkey(), parent_token_account));
            match self.send_with_retry(&instructions).await {
                Ok(()) => {
                    report.cleaned.push((account.address, reason, reward));
                    report.rewards += reward;
                    report.fees += fee + extra_cost;
                }
                Err(e) => report.skipped.push((account.address, e.to_string())),
            }
        }
        Ok(report)
    }

    /// The vaults of this round, as found on chain; notes in `report` where they came from.
    async fn round_vaults(&self, report: &mut RoundReport) -> Result<Vec<VaultAccount>, ChainError> {
        let scan_every = match &self.source {
            CandidateSource::Database { candidates, scan_every } => {
                let left = self.rounds_to_scan.load(Ordering::Relaxed);
                if left > 0 {
                    match candidates.load().await {
                        Ok(addresses) => {
                            let vaults = self.view.vaults_at(&addresses).await?;
                            // From the value read above, so two rounds at once cannot wrap it
                            // below 0 (which would mean no scan for 4 billion rounds).
                            let _ = self.rounds_to_scan.compare_exchange(
                                left,
                                left - 1,
                                Ordering::Relaxed,
                                Ordering::Relaxed,
                            );
                            report.from_db = addresses.len();
                            return Ok(vaults);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cleanup candidates not read from the database; scanning the chain")
                        }
                    }
                }
                *scan_every
            }
            CandidateSource::ChainScan => 1,
        };
        let vaults = self.view.vaults().await?;
        // Counted from the last scan that worked: a failed one is retried next round.
        self.rounds_to_scan.store(scan_every.saturating_sub(1), Ordering::Relaxed);
        report.full_scan = true;
        Ok(vaults)
    }

    fn claim(&self, vault: Pubkey) -> Option<InFlight<'_>> {
        let mut set = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(vault).then_some(InFlight { set: &self.in_flight, vault })
    }

    /// Sends; retries with backoff only when the chain could not be reached (a refusal is final:
    /// another bot may have cleaned the vault first).
    async fn send_with_retry(
        &self,
        ixs: &[anchor_lang::solana_program::instruction::Instruction],
    ) -> Result<(), ChainError> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let blockhash = self.chain.latest_blockhash().await;
            let result = match blockhash {
                Ok(hash) => {
                    let message = Message::new_with_blockhash(ixs, Some(&self.caller.pubkey()), &hash);
                    let tx = Transaction::new(&[&self.caller], message, hash);
                    // Only a confirmed cleanup counts (and releases the vault's in-flight mark):
                    // a next round must not see the vault still open and send it again, and the
                    // report must not claim a reward a failed transaction never paid.
                    match self.chain.send(&tx).await {
                        Ok(Sent::Landed) => Ok(()),
                        Ok(Sent::Submitted) => self.chain.confirm(&tx.signatures[0]).await,
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match result {
                Err(ChainError::Unavailable(e)) if attempt < self.config.max_attempts => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, ?delay, attempt, "cleanup not sent; retrying");
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }
}

/// Everything a cleanup instruction needs, from the vault's own fields.
pub fn session_of(vault: &Vault) -> SessionRef {
    let asset = if vault.is_native() {
        Asset::Sol
    } else {
        Asset::Token { mint: vault.mint, token_program: vault.token_program }
    };
    SessionRef { parent: vault.parent, session_id: vault.session_id, asset }
}
