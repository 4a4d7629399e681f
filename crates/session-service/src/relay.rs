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
//! never lands and the indexer would never settle it.

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

use vault_chain::{ChainError, Sent};
use super::crypto::KeyKind;
use super::error::ApiError;
use super::store::SessionRow;
use super::validate::{self, U64};
use super::App;
use vault_db::amount::{from_db, to_db};

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
    TopUp { amount: U64 },
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

    pub fn validate(&self) -> Result<(), ApiError> {
        match self {
            Self::Trade { amount, destination, destination_token_account, .. } => {
                if amount.0 == 0 {
                    return Err(ApiError::bad_request("invalid_amount", "amount must be positive"));
                }
                validate::pubkey("destination", destination)?;
                if let Some(d) = destination_token_account {
                    validate::pubkey("destination_token_account", d)?;
                }
            }
            Self::TopUp { amount } => {
                if amount.0 == 0 {
                    return Err(ApiError::bad_request("invalid_amount", "amount must be positive"));
                }
            }
        }
        Ok(())
    }
}

/// What the relay reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RelayOutcome {
    pub signature: String,
    /// `landed` (executed), `submitted` (accepted after preflight; the indexer confirms it).
    pub result: &'static str,
    pub action: &'static str,
}

fn refused_body(signature: &str, err: &ChainError) -> ApiError {
    match err {
        ChainError::Refused { message, custom_code } => ApiError::unprocessable(
            "chain_refused",
            format!("the chain refused transaction {signature}: {message}"),
        )
        .with_note(format!("custom_code={custom_code:?}")),
        ChainError::Unavailable(m) => ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "chain_unavailable",
            format!("transaction {signature} was sent but the chain did not answer; it may still land"),
        )
        .with_note(m.clone()),
    }
}

/// Signs and sends; to be run in its own task (it completes even if the client goes away).
pub async fn execute(
    app: Arc<App>,
    session: SessionRow,
    req: RelayRequest,
    request_ref: String,
) -> Result<RelayOutcome, ApiError> {
    let chain = app
        .chain
        .clone()
        .ok_or_else(|| ApiError::new(axum::http::StatusCode::NOT_FOUND, "relay_disabled", "this deployment does not relay"))?;
    let envelope = session
        .encrypted_keypair
        .as_ref()
        .ok_or_else(|| ApiError::conflict("no_key", "no key is registered for this session"))?;
    let parent = validate::pubkey("parent_wallet", &session.parent_wallet).map_err(ApiError::internal_from)?;
    let (_, sid_bytes) = validate::session_id(&session.session_id).map_err(ApiError::internal_from)?;

    let mut tx = app.pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('service.relay:' || $1, 0))")
        .bind(&session.session_id)
        .execute(&mut *tx)
        .await?;

    // Spending so far: the chain's total, plus what the relay sent that the indexer has not
    // settled yet (a settled row is in total_spent and no longer pending).
    let (total_spent, pending): (Decimal, Decimal) = sqlx::query_as(
        "SELECT s.total_spent,
                COALESCE((SELECT sum(t.amount + COALESCE(t.fee_amount, 0)) FROM vault_transactions t
                          WHERE t.session_id = s.session_id AND t.status = 'pending'
                            AND t.transaction_type IN ('trade', 'top_up')), 0)
         FROM ephemeral_sessions s WHERE s.session_id = $1",
    )
    .bind(&session.session_id)
    .fetch_one(&mut *tx)
    .await?;
    let spend = req.spend();
    let already = from_db(total_spent).unwrap_or(u64::MAX) as u128 + from_db(pending).unwrap_or(u64::MAX) as u128;
    let approved = from_db(session.approved_amount).unwrap_or(0) as u128;
    if already + spend > approved {
        return Err(ApiError::unprocessable(
            "approved_amount_exceeded",
            format!("this would spend {} of an approved {approved}", already + spend),
        ));
    }
    if let (RelayRequest::Trade { .. }, Some(cap)) = (&req, session.per_trade_cap) {
        let cap = from_db(cap).unwrap_or(0) as u128;
        if spend > cap {
            return Err(ApiError::unprocessable(
                "per_trade_cap_exceeded",
                format!("amount + fee {spend} exceeds the per-trade cap {cap}"),
            ));
        }
    }

    // The key: opened only here, wiped when `delegate` and `payload` drop.
    let (kind, payload) = app
        .keyring
        .open(envelope, &session.session_id, &session.ephemeral_wallet)
        .map_err(|e| ApiError::internal(format!("opening the envelope of {}: {e}", session.session_id)))?;
    if kind != KeyKind::Seed || payload.len() != 32 {
        return Err(ApiError::conflict(
            "key_not_relayable",
            "the registered key is sealed by the client; the service cannot sign with it",
        ));
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&payload);
    drop(payload);
    let delegate = Keypair::new_from_array(seed);
    seed.zeroize();
    if delegate.pubkey().to_string() != session.ephemeral_wallet {
        return Err(ApiError::conflict(
            "key_not_current",
            "the registered key is not the session's current delegate",
        ));
    }

    let asset = match &session.mint {
        None => Asset::Sol,
        Some(m) => {
            let mint = validate::pubkey("mint", m).map_err(ApiError::internal_from)?;
            let owner = chain
                .account_owner(&mint)
                .await
                .map_err(|e| ApiError::unavailable("chain_unavailable", e.to_string()))?
                .ok_or_else(|| ApiError::conflict("mint_missing", "the session's mint does not exist"))?;
            Asset::Token { mint, token_program: owner }
        }
    };
    let session_ref = SessionRef { parent, session_id: sid_bytes, asset };
    let (ix, amount, fee, trade_id, metadata): (_, u64, Option<u64>, Option<u64>, Value) = match &req {
        RelayRequest::Trade { trade_id, amount, fee, destination, destination_token_account } => {
            let destination = validate::pubkey("destination", destination)?;
            let dest_ta = destination_token_account
                .as_deref()
                .map(|d| validate::pubkey("destination_token_account", d))
                .transpose()?;
            if matches!(asset, Asset::Token { .. }) && dest_ta.is_none() {
                return Err(ApiError::bad_request(
                    "missing_destination_token_account",
                    "a token session's trade needs destination_token_account",
                ));
            }
            let ix = sdk::execute_trade(
                &session_ref,
                delegate.pubkey(),
                destination,
                if matches!(asset, Asset::Token { .. }) { dest_ta } else { None },
                ExecuteTradeArgs { trade_id: trade_id.0, amount: amount.0, fee: fee.0 },
            );
            (ix, amount.0, Some(fee.0), Some(trade_id.0), json!({"destination": destination.to_string(), "request": request_ref}))
        }
        RelayRequest::TopUp { amount } => (
            sdk::top_up_fees(&session_ref, delegate.pubkey(), amount.0),
            amount.0,
            None,
            None,
            json!({"request": request_ref}),
        ),
    };

    let blockhash = chain
        .latest_blockhash()
        .await
        .map_err(|e| ApiError::unavailable("chain_unavailable", e.to_string()))?;
    let payer: Pubkey = delegate.pubkey();
    let message = Message::new(&[ix], Some(&payer));
    let transaction = Transaction::new(&[&delegate], message, blockhash);
    drop(delegate);
    let signature = transaction.signatures[0].to_string();

    sqlx::query("SELECT service_record_relay($1, $2, $3, $4, $5, $6, $7)")
        .bind(&session.session_id)
        .bind(&signature)
        .bind(req.kind())
        .bind(to_db(amount))
        .bind(fee.map(to_db))
        .bind(trade_id.map(to_db))
        .bind(metadata)
        .execute(&mut *tx)
        .await?;

    match chain.send(&transaction).await {
        Ok(sent) => {
            tx.commit().await?;
            Ok(RelayOutcome {
                signature,
                result: match sent {
                    Sent::Landed => "landed",
                    Sent::Submitted => "submitted",
                },
                action: req.kind(),
            })
        }
        Err(err @ ChainError::Refused { .. }) => {
            sqlx::query("SELECT service_fail_relay($1, $2)")
                .bind(&signature)
                .bind(err.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Err(refused_body(&signature, &err))
        }
        Err(err) => {
            // May still land: keep the pending row for the indexer.
            tx.commit().await?;
            Err(refused_body(&signature, &err))
        }
    }
}
