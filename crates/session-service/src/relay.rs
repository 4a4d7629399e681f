//! The trade relay: for frontends that do not keep the ephemeral key, the service opens the
//! session's envelope, signs `execute_trade` or `top_up_fees` as the delegate, and sends it
//! through a [`Chain`].
//!
//! Relays of one session are serialized by a transaction-scoped advisory lock, held from the
//! spending checks to the commit of the pending row, so two concurrent requests cannot both
//! pass a check that only one of them fits. The `pending` vault_transactions row (signature,
//! instruction 0) is written in that same transaction (through service_record_relay, see
//! migrations/0010); the indexer confirms it later through its own upsert on the same key. A
//! transaction the chain refused outright is marked `failed` (service_fail_relay), since it
//! never lands and the indexer would never settle it. The request's audit row is written in that
//! same transaction. (The chain is not part of it: when the audit row cannot be written after the
//! transaction was sent, the row for the indexer is still committed and the request fails.)
//!
//! The rules (the request's shape, the session's state and expiry, the approved amount, the
//! per-trade cap, the blocking alert rules) are here and fail with a [`RelayError`]; the API
//! turns it into an HTTP error at its edge. A [`RelayError`]'s text is for the server log and
//! the audit: what reached the chain's RPC endpoint stays in `detail` fields that the edge never
//! shows to a client.

use std::sync::Arc;

use anchor_lang::prelude::Pubkey;
use ephemeral_vault::instructions::ExecuteTradeArgs;
use ephemeral_vault::sdk::{self, Asset, SessionRef};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use solana_keypair::Keypair;
use solana_message::Message;
use solana_signer::Signer;
use solana_transaction::Transaction;
use zeroize::Zeroize;

use super::alerts;
use super::audit::Audit;
use super::crypto::KeyKind;
use super::error::ApiError;
use super::store::SessionRow;
use super::validate::{self, U64};
use super::App;
use vault_chain::{ChainError, Sent};
use vault_db::amount::{from_db, to_db};

/// Why a relay request was not carried out (or not completely).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("this deployment does not relay")]
    Disabled,
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("the session is used from a new IP; relaying is refused")]
    MovedSession,
    #[error("unusually large spend for this session; refused")]
    UnusualSpend,
    #[error("the session has expired")]
    Expired,
    #[error("the session is {0}")]
    NotActive(String),
    #[error("this would spend {would_spend} of an approved {approved}")]
    ApprovedAmountExceeded { would_spend: u128, approved: u128 },
    #[error("amount + fee {spend} exceeds the per-trade cap {cap}")]
    PerTradeCapExceeded { spend: u128, cap: u128 },
    #[error("no key is registered for this session")]
    NoKey,
    #[error("the registered key is sealed by the client; the service cannot sign with it")]
    KeyNotRelayable,
    #[error("the registered key is not the session's current delegate")]
    KeyNotCurrent,
    #[error("the session's mint does not exist")]
    MintMissing,
    #[error("a token session's trade needs destination_token_account")]
    MissingDestinationTokenAccount,
    /// The program refused the transaction (its logs name the program error).
    #[error("the chain refused transaction {signature}: {message}")]
    ChainRefused { signature: String, message: String, custom_code: Option<u32> },
    /// The RPC endpoint did not answer; `signature` is set when the transaction was sent (it may
    /// still land). `detail` is the transport's error: server log only.
    #[error("the chain did not answer")]
    ChainUnavailable { signature: Option<String>, detail: String },
    /// Data the service itself stored is not what it wrote, or its key does not open.
    #[error("internal: {0}")]
    Internal(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl RelayError {
    fn invalid(e: ApiError) -> Self {
        Self::Invalid { code: e.code, message: e.message }
    }
}

/// The body of `POST /v1/sessions/{id}/relay`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum RelayRequest {
    Trade {
        trade_id: U64,
        amount: U64,
        fee: U64,
        destination: String,
        #[serde(default)]
        destination_token_account: Option<String>,
    },
    TopUp {
        amount: U64,
    },
}

impl RelayRequest {
    /// What the request takes out of the vault (amount + fee).
    pub fn spend(&self) -> u128 {
        match self {
            Self::Trade { amount, fee, .. } => u128::from(amount.0) + u128::from(fee.0),
            Self::TopUp { amount } => u128::from(amount.0),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Trade { .. } => "trade",
            Self::TopUp { .. } => "top_up",
        }
    }

    pub fn validate(&self) -> Result<(), RelayError> {
        let zero = || RelayError::Invalid { code: "invalid_amount", message: "amount must be positive".into() };
        match self {
            Self::Trade { amount, destination, destination_token_account, .. } => {
                if amount.0 == 0 {
                    return Err(zero());
                }
                validate::pubkey("destination", destination).map_err(RelayError::invalid)?;
                if let Some(d) = destination_token_account {
                    validate::pubkey("destination_token_account", d).map_err(RelayError::invalid)?;
                }
            }
            Self::TopUp { amount } => {
                if amount.0 == 0 {
                    return Err(zero());
                }
            }
        }
        Ok(())
    }
}

/// The checks before anything is signed, in order: the request's shape, the session's expiry
/// (raising `expired_session`) and status, and the unusual-spending rule (raising its alert, and
/// refusing when configured). `request_ref` names the request in alerts.
pub async fn preflight(
    app: &App,
    session: &SessionRow,
    req: &RelayRequest,
    now: i64,
    ip: &str,
    request_ref: &str,
) -> Result<(), RelayError> {
    req.validate()?;
    if now >= session.expires_at {
        if app.config.alerts.expired_session {
            alerts::expired_session(&app.pool, session, session.expires_at, now, ip).await?;
        }
        return Err(RelayError::Expired);
    }
    if session.status != "active" {
        return Err(RelayError::NotActive(session.status.clone()));
    }
    let approved = from_db(session.approved_amount).unwrap_or(0);
    let spend = req.spend();
    if app.config.alerts.unusual_spending_bps.is_unusual(spend, approved) {
        alerts::unusual_spending(&app.pool, session, spend, approved, request_ref).await?;
        if app.config.alerts.unusual_spending_blocks {
            return Err(RelayError::UnusualSpend);
        }
    }
    Ok(())
}

/// Refuses a session used from an IP other than its registered one, when so configured.
pub fn refuse_moved(app: &App, ip_changed: bool) -> Result<(), RelayError> {
    if ip_changed && app.config.alerts.ip_change_blocks_relay {
        return Err(RelayError::MovedSession);
    }
    Ok(())
}

/// After a relayed trade: the high-frequency rule.
pub async fn after_trade(app: &App, session: &SessionRow, now: i64) -> Result<(), RelayError> {
    let a = &app.config.alerts;
    alerts::high_frequency(&app.pool, session, a.high_frequency_trades, a.high_frequency_window_secs, now).await?;
    Ok(())
}

/// What the relay reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RelayOutcome {
    pub signature: String,
    /// `landed` (executed), `submitted` (accepted after preflight; the indexer confirms it).
    pub result: &'static str,
    pub action: &'static str,
}

fn chain_error(signature: &str, err: ChainError) -> RelayError {
    match err {
        ChainError::Refused { message, custom_code } => {
            RelayError::ChainRefused { signature: signature.to_string(), message, custom_code }
        }
        ChainError::Unavailable(detail) => {
            RelayError::ChainUnavailable { signature: Some(signature.to_string()), detail }
        }
    }
}

fn unavailable(e: ChainError) -> RelayError {
    RelayError::ChainUnavailable { signature: None, detail: e.to_string() }
}

/// How the API answers a relay outcome: for the audit row written with the relayed transaction.
pub type Edge = fn(&Result<RelayOutcome, RelayError>) -> (axum::http::StatusCode, Option<String>);

/// Signs and sends; to be run in its own task (it completes even if the client goes away).
/// Whenever the transaction was signed, the request's audit row (`edge` says how the API answers
/// the outcome) is written in the transaction that records it.
pub async fn execute(
    app: Arc<App>,
    session: SessionRow,
    req: RelayRequest,
    request_ref: String,
    audit: Audit,
    edge: Edge,
) -> Result<RelayOutcome, RelayError> {
    let chain = app.chain.clone().ok_or(RelayError::Disabled)?;
    let envelope = session.encrypted_keypair.as_ref().ok_or(RelayError::NoKey)?;
    let corrupt = |e: ApiError| RelayError::Internal(e.audit_text());
    let parent = validate::pubkey("parent_wallet", &session.parent_wallet).map_err(corrupt)?;
    let (_, sid_bytes) = validate::session_id(&session.session_id).map_err(corrupt)?;

    let mut tx = app.pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('service.relay:' || $1, 0))")
        .bind(session.id.to_string())
        .execute(&mut *tx)
        .await?;

    // Spending so far: the chain's total, plus what the relay sent that the indexer has not
    // settled yet (a settled row is in total_spent and no longer pending).
    let (total_spent, pending): (Decimal, Decimal) = sqlx::query_as(
        "SELECT s.total_spent,
                COALESCE((SELECT sum(t.amount + COALESCE(t.fee_amount, 0)) FROM vault_transactions t
                          WHERE t.session_ref = s.id AND t.status = 'pending'
                            AND t.transaction_type IN ('trade', 'top_up')), 0)
         FROM ephemeral_sessions s WHERE s.id = $1",
    )
    .bind(session.id)
    .fetch_one(&mut *tx)
    .await?;
    let spend = req.spend();
    let already = from_db(total_spent).unwrap_or(u64::MAX) as u128 + from_db(pending).unwrap_or(u64::MAX) as u128;
    let approved = from_db(session.approved_amount).unwrap_or(0) as u128;
    if already + spend > approved {
        return Err(RelayError::ApprovedAmountExceeded { would_spend: already + spend, approved });
    }
    if let (RelayRequest::Trade { .. }, Some(cap)) = (&req, session.per_trade_cap) {
        let cap = from_db(cap).unwrap_or(0) as u128;
        if spend > cap {
            return Err(RelayError::PerTradeCapExceeded { spend, cap });
        }
    }

    // The key: opened only here, wiped when `delegate` and `payload` drop.
    let (kind, payload) = app
        .keyring
        .open(envelope, &session.session_id, &session.ephemeral_wallet)
        .map_err(|e| RelayError::Internal(format!("opening the envelope of {}: {e}", session.session_id)))?;
    if kind != KeyKind::Seed || payload.len() != 32 {
        return Err(RelayError::KeyNotRelayable);
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&payload);
    drop(payload);
    let delegate = Keypair::new_from_array(seed);
    seed.zeroize();
    if delegate.pubkey().to_string() != session.ephemeral_wallet {
        return Err(RelayError::KeyNotCurrent);
    }

    let asset = match &session.mint {
        None => Asset::Sol,
        Some(m) => {
            let mint = validate::pubkey("mint", m).map_err(corrupt)?;
            let owner = chain.account_owner(&mint).await.map_err(unavailable)?.ok_or(RelayError::MintMissing)?;
            Asset::Token { mint, token_program: owner }
        }
    };
    let session_ref = SessionRef { parent, session_id: sid_bytes, asset };
    let (ix, amount, fee, trade_id, metadata): (_, u64, Option<u64>, Option<u64>, Value) = match &req {
        RelayRequest::Trade { trade_id, amount, fee, destination, destination_token_account } => {
            let destination = validate::pubkey("destination", destination).map_err(RelayError::invalid)?;
            let dest_ta = destination_token_account
                .as_deref()
                .map(|d| validate::pubkey("destination_token_account", d))
                .transpose()
                .map_err(RelayError::invalid)?;
            if matches!(asset, Asset::Token { .. }) && dest_ta.is_none() {
                return Err(RelayError::MissingDestinationTokenAccount);
            }
            let ix = sdk::execute_trade(
                &session_ref,
                delegate.pubkey(),
                destination,
                if matches!(asset, Asset::Token { .. }) { dest_ta } else { None },
                ExecuteTradeArgs { trade_id: trade_id.0, amount: amount.0, fee: fee.0 },
            );
            (
                ix,
                amount.0,
                Some(fee.0),
                Some(trade_id.0),
                json!({"destination": destination.to_string(), "request": request_ref}),
            )
        }
        RelayRequest::TopUp { amount } => (
            sdk::top_up_fees(&session_ref, delegate.pubkey(), amount.0),
            amount.0,
            None,
            None,
            json!({"request": request_ref}),
        ),
    };

    let blockhash = chain.latest_blockhash().await.map_err(unavailable)?;
    let payer: Pubkey = delegate.pubkey();
    let message = Message::new(&[ix], Some(&payer));
    let transaction = Transaction::new(&[&delegate], message, blockhash);
    drop(delegate);
    let signature = transaction.signatures[0].to_string();

    sqlx::query("SELECT service_record_relay($1, $2, $3, $4, $5, $6, $7)")
        .bind(session.id)
        .bind(&signature)
        .bind(req.kind())
        .bind(to_db(amount))
        .bind(fee.map(to_db))
        .bind(trade_id.map(to_db))
        .bind(metadata)
        .execute(&mut *tx)
        .await?;

    let outcome = match chain.send(&transaction).await {
        Ok(sent) => Ok(RelayOutcome {
            signature: signature.clone(),
            result: match sent {
                Sent::Landed => "landed",
                Sent::Submitted => "submitted",
            },
            action: req.kind(),
        }),
        Err(err @ ChainError::Refused { .. }) => {
            sqlx::query("SELECT service_fail_relay($1, $2)")
                .bind(&signature)
                .bind(err.to_string())
                .execute(&mut *tx)
                .await?;
            Err(chain_error(&signature, err))
        }
        // May still land: the pending row stays for the indexer.
        Err(err) => Err(chain_error(&signature, err)),
    };
    audit.meta("signature", json!(signature));
    let (status, error) = edge(&outcome);
    // The audit row under a savepoint: the transaction has been sent and may land whatever
    // happens here, so its pending (or failed) row is committed even if the audit row cannot
    // be, and then the request fails.
    let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
    let audited = match audit.write_in(&mut savepoint, status, error).await {
        Ok(()) => {
            savepoint.commit().await?;
            Ok(())
        }
        Err(e) => {
            savepoint.rollback().await?;
            Err(RelayError::Internal(format!("audit append failed after sending {signature}: {e}")))
        }
    };
    tx.commit().await?;
    audited?;
    audit.mark_written();
    outcome
}
