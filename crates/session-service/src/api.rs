//! Routes and handlers. Every route runs behind the [`guard`] layer, which authenticates the
//! request, checks its inputs and audits the outcome; handlers take the [`Caller`] and the
//! request's [`Audit`] as extractors, do the work and answer with a typed body or an
//! [`ApiError`]. Errors are `{"error": {"code", "message"}}` with a 4xx/5xx status. Handlers that
//! change data write their audit row in the same transaction as the change.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use solana_keypair::Keypair;
use solana_signer::Signer;
use tower_http::limit::RequestBodyLimitLayer;
use zeroize::Zeroize;

use super::audit::Audit;
use super::config::RateAction;
use super::crypto::KeyKind;
use super::error::{redact, ApiError};
use super::guard::{guard, Caller, Endpoint, Who};
use super::relay::{self, RelayError, RelayOutcome, RelayRequest};
use super::store::{self, Registered, Resolved};
use super::validate::{self, U64};
use super::views::{
    AlertList, AlertView, AnalyticsView, CandidateList, Health, SealedKey, SessionList, SessionView, TransactionList,
};
use super::App;

pub const OPENAPI_JSON: &str = include_str!("../openapi/session-service.json");

/// The browser's envelope (app/src/ephemeral-key.ts): version, salt, iv, public key, sealed seed.
pub const CLIENT_ENVELOPE_LEN: usize = 1 + 32 + 12 + 32 + 32 + 16;
const CLIENT_ENVELOPE_PUBKEY: std::ops::Range<usize> = 45..77;

/// A handler's answer: a status and a typed JSON body, or an error.
type Answer<T> = Result<(StatusCode, Json<T>), ApiError>;

fn ok<T>(body: T) -> Answer<T> {
    Ok((StatusCode::OK, Json(body)))
}

pub fn router(app: Arc<App>) -> Router {
    let limit = app.config.max_body_bytes;
    let guarded = |action: &'static str, who: Who, route: MethodRouter<Arc<App>>| {
        route.route_layer(from_fn_with_state((app.clone(), Endpoint { action, who }), guard))
    };
    use Who::{Admin, Parent};
    Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi))
        .route("/v1/sessions", guarded("service.session.register", Parent, post(register)))
        .route("/v1/sessions/{session_id}", guarded("service.session.read", Parent, get(get_session)))
        .route(
            "/v1/sessions/{session_id}/transactions",
            guarded("service.session.transactions", Parent, get(session_transactions)),
        )
        .route(
            "/v1/sessions/{session_id}/analytics",
            guarded("service.session.analytics", Parent, get(session_analytics)),
        )
        .route("/v1/sessions/{session_id}/alerts", guarded("service.session.alerts", Parent, get(session_alerts)))
        .route("/v1/sessions/{session_id}/sealed-key", guarded("service.session.sealed_key", Parent, get(sealed_key)))
        .route("/v1/sessions/{session_id}/relay", guarded("service.relay", Parent, post(relay_handler)))
        .route("/v1/parents/{wallet}/sessions", guarded("service.sessions.list", Parent, get(list_sessions)))
        .route("/v1/cleanup-candidates", guarded("service.cleanup_candidates", Parent, get(cleanup_candidates)))
        .route("/v1/alerts", guarded("service.alerts.list", Parent, get(list_alerts)))
        .route("/v1/admin/alerts", guarded("service.admin.alerts.list", Admin, get(admin_alerts)))
        .route(
            "/v1/admin/alerts/{alert_id}/resolve",
            guarded("service.admin.alert.resolve", Admin, post(resolve_alert)),
        )
        .route(
            "/v1/admin/cleanup-candidates",
            guarded("service.admin.cleanup_candidates", Admin, get(admin_cleanup_candidates)),
        )
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
        })
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(axum::middleware::map_response(json_payload_too_large))
        .with_state(app)
}

/// tower-http answers an over-long Content-Length with a plain-text 413 before any handler
/// runs; this gives it the API's JSON error body.
async fn json_payload_too_large(resp: Response) -> Response {
    let is_json =
        resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the request body is too large")
            .into_response();
    }
    resp
}

async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

// ----- extractors with the API's errors -----

/// The query string as `T`; 400 `invalid_query` otherwise.
struct ApiQuery<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::bad_request("invalid_query", validate::clip(&e.body_text(), 300)))
    }
}

/// One path parameter; 400 `invalid_path` when it is not UTF-8.
struct ApiPath(String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_| ApiError::bad_request("invalid_path", "the path parameter must be UTF-8"))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<u32>,
    offset: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SessionListQuery {
    status: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    unresolved: Option<bool>,
    session_id: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

// ----- sessions -----

/// The ephemeral key as sent: a secret (or the client's sealed envelope). Debug never shows it,
/// and the text is wiped on drop.
#[derive(Deserialize)]
#[serde(transparent)]
struct SecretText(String);

impl Drop for SecretText {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
enum EphemeralKeyBody {
    /// The browser's envelope, base64 (only the parent wallet can open it).
    ClientSealedV1 { data: SecretText },
    /// The ed25519 seed (32 bytes) or keypair (64 bytes), base64; relay deployments only, over
    /// TLS.
    Seed { data: SecretText },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    session_id: String,
    parent_wallet: String,
    ephemeral_wallet: String,
    vault_pda: String,
    #[serde(default)]
    mint: Option<String>,
    approved_amount: U64,
    #[serde(default)]
    per_trade_cap: Option<U64>,
    created_at: i64,
    expires_at: i64,
    #[serde(default)]
    device_fingerprint: Option<String>,
    ephemeral_key: EphemeralKeyBody,
}

/// The longest session the service registers (the program's own maximum is configurable on
/// chain; this only bounds nonsense).
const MAX_SESSION_SECS: i64 = 30 * 24 * 3600;

/// The system program's address (all zero bytes): never a mint.
const SYSTEM_PROGRAM: anchor_lang::prelude::Pubkey = anchor_lang::prelude::Pubkey::new_from_array([0; 32]);

async fn register(State(app): State<Arc<App>>, caller: Caller, audit: Audit, body: Bytes) -> Answer<SessionView> {
    app.rate_limit(&caller, &audit, RateAction::SessionCreate).await?;
    let body: RegisterBody = validate::json_body(&body)?;
    let (session_id, sid_bytes) = validate::session_id(&body.session_id)?;
    audit.session(&session_id);
    // The signer's own wallet (verified, canonical) is the only one accepted: any other string,
    // well-formed or not, is refused alike.
    if body.parent_wallet != caller.wallet {
        return Err(ApiError::forbidden("a wallet registers only its own sessions"));
    }
    let parent = validate::pubkey("parent_wallet", &body.parent_wallet)?;
    audit.update(|e| e.parent_wallet = Some(caller.wallet.clone()));
    let ephemeral = validate::pubkey("ephemeral_wallet", &body.ephemeral_wallet)?;
    if ephemeral == parent {
        return Err(ApiError::bad_request("invalid_ephemeral_wallet", "the ephemeral wallet must not be the parent"));
    }
    let vault = validate::pubkey("vault_pda", &body.vault_pda)?;
    if vault != ephemeral_vault::sdk::vault_address(&parent, &sid_bytes) {
        return Err(ApiError::bad_request(
            "vault_mismatch",
            "vault_pda is not the program's vault address for this parent and session id",
        ));
    }
    let mint = body.mint.as_deref().map(|m| validate::pubkey("mint", m)).transpose()?;
    if mint.is_some_and(|m| m == SYSTEM_PROGRAM) {
        return Err(ApiError::bad_request("invalid_mint", "the system program is not a mint; omit mint for SOL"));
    }
    if body.approved_amount.0 == 0 {
        return Err(ApiError::bad_request("invalid_amount", "approved_amount must be positive"));
    }
    if let Some(cap) = body.per_trade_cap {
        if cap.0 == 0 || cap.0 > body.approved_amount.0 {
            return Err(ApiError::bad_request("invalid_amount", "per_trade_cap must be in 1..=approved_amount"));
        }
    }
    if body.created_at <= 0
        || body.expires_at <= body.created_at
        || body.expires_at - body.created_at > MAX_SESSION_SECS
    {
        return Err(ApiError::bad_request(
            "invalid_times",
            format!("need 0 < created_at < expires_at <= created_at + {MAX_SESSION_SECS}"),
        ));
    }
    if body.created_at > caller.now + i64::from(app.config.max_clock_skew_secs) {
        return Err(ApiError::bad_request("invalid_times", "created_at is in the future"));
    }
    if body.expires_at <= caller.now {
        return Err(ApiError::conflict("session_expired", "the session has already expired"));
    }
    if let Some(fp) = &body.device_fingerprint {
        validate::printable("device_fingerprint", fp, 64)?;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let (kind, payload) = match &body.ephemeral_key {
        EphemeralKeyBody::ClientSealedV1 { data } => {
            let raw = zeroize::Zeroizing::new(
                b64.decode(data.0.as_bytes())
                    .map_err(|_| ApiError::bad_request("invalid_key", "ephemeral_key.data must be base64"))?,
            );
            if raw.len() != CLIENT_ENVELOPE_LEN || raw[0] != 1 {
                return Err(ApiError::bad_request(
                    "invalid_key",
                    format!("a client_sealed_v1 envelope is {CLIENT_ENVELOPE_LEN} bytes starting with version 1"),
                ));
            }
            if raw[CLIENT_ENVELOPE_PUBKEY] != ephemeral.to_bytes() {
                return Err(ApiError::bad_request("key_mismatch", "the envelope is for another ephemeral wallet"));
            }
            (KeyKind::ClientSealed, raw)
        }
        EphemeralKeyBody::Seed { data } => {
            if !app.config.relay_enabled {
                return Err(ApiError::bad_request(
                    "clear_key_not_accepted",
                    "this deployment does not relay; send the client_sealed_v1 envelope",
                ));
            }
            let raw = zeroize::Zeroizing::new(
                b64.decode(data.0.as_bytes())
                    .map_err(|_| ApiError::bad_request("invalid_key", "ephemeral_key.data must be base64"))?,
            );
            if raw.len() != 32 && raw.len() != 64 {
                return Err(ApiError::bad_request("invalid_key", "a seed is 32 bytes (or a keypair 64)"));
            }
            let mut seed = [0u8; 32];
            seed.copy_from_slice(&raw[..32]);
            let kp = Keypair::new_from_array(seed);
            seed.zeroize();
            let public = kp.pubkey().to_bytes();
            drop(kp);
            if public != ephemeral.to_bytes() || (raw.len() == 64 && raw[32..] != public) {
                return Err(ApiError::bad_request("key_mismatch", "the key is not the ephemeral wallet's"));
            }
            (KeyKind::Seed, zeroize::Zeroizing::new(raw[..32].to_vec()))
        }
    };
    let envelope = app.keyring.seal(&session_id, &ephemeral.to_string(), kind, &payload).map_err(ApiError::internal)?;
    drop(payload);
    let ua = audit.user_agent();
    let mint_s = mint.map(|m| m.to_string());
    // The row and its audit commit together.
    let mut tx = app.pool.begin().await?;
    let registered = store::register(
        &mut tx,
        store::Registration {
            session_id: &session_id,
            parent_wallet: &caller.wallet,
            ephemeral_wallet: &ephemeral.to_string(),
            vault_pda: &vault.to_string(),
            mint: mint_s.as_deref(),
            created_at: body.created_at,
            expires_at: body.expires_at,
            approved_amount: body.approved_amount.0,
            per_trade_cap: body.per_trade_cap.map(|c| c.0),
            envelope,
            user_ip: &caller.ip,
            user_agent: ua.as_deref(),
            device_fingerprint: body.device_fingerprint.as_deref(),
        },
    )
    .await?;
    let (chain_row, session_ref) =
        match registered {
            Registered::Inserted(id) => ("awaiting_chain", id),
            Registered::Completed(id) => ("present", id),
            Registered::Refused => return Err(ApiError::conflict(
                "already_registered",
                "this session id is registered already, or its chain record names another parent, vault or delegate",
            )),
        };
    audit.meta("key_kind", json!(kind.as_str()));
    audit.meta("chain_row", json!(chain_row));
    audit.meta("session_ref", json!(session_ref));
    let row = store::session_by_ref(&mut *tx, session_ref)
        .await?
        .ok_or_else(|| ApiError::internal("registered session vanished"))?;
    audit.write_in(&mut tx, StatusCode::CREATED, None).await?;
    tx.commit().await?;
    audit.mark_written();
    Ok((StatusCode::CREATED, Json(SessionView::of(&row, caller.now))))
}

async fn get_session(
    State(app): State<Arc<App>>,
    caller: Caller,
    audit: Audit,
    ApiPath(id): ApiPath,
) -> Answer<SessionView> {
    let (s, _) = app.owned_session(&caller, &audit, &id).await?;
    ok(SessionView::of(&s, caller.now))
}

async fn sealed_key(
    State(app): State<Arc<App>>,
    caller: Caller,
    audit: Audit,
    ApiPath(id): ApiPath,
) -> Answer<SealedKey> {
    let (s, _) = app.owned_session(&caller, &audit, &id).await?;
    let env = s.encrypted_keypair.as_ref().ok_or_else(|| ApiError::not_found("no key registered"))?;
    let (kind, payload) = app
        .keyring
        .open(env, &s.session_id, &s.ephemeral_wallet)
        .map_err(|e| ApiError::internal(format!("opening envelope: {e}")))?;
    if kind != KeyKind::ClientSealed {
        // A key the service can use is never handed out.
        return Err(ApiError::conflict("not_client_sealed", "only a client-sealed key is returned"));
    }
    let data = base64::engine::general_purpose::STANDARD.encode(payload.as_slice());
    ok(SealedKey { session_id: s.session_id, format: "client_sealed_v1", data })
}

async fn session_transactions(
    State(app): State<Arc<App>>,
    caller: Caller,
    audit: Audit,
    ApiPath(id): ApiPath,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Answer<TransactionList> {
    let (limit, offset) = validate::page(q.limit, q.offset, app.config.max_page)?;
    let (s, _) = app.owned_session(&caller, &audit, &id).await?;
    let txs = store::transactions(&app.pool, s.id, limit, offset).await?;
    ok(TransactionList { session_id: s.session_id, transactions: txs.into_iter().map(Into::into).collect() })
}

async fn session_analytics(
    State(app): State<Arc<App>>,
    caller: Caller,
    audit: Audit,
    ApiPath(id): ApiPath,
) -> Answer<AnalyticsView> {
    let (s, _) = app.owned_session(&caller, &audit, &id).await?;
    let row = store::analytics(&app.pool, s.id).await?;
    ok(AnalyticsView::of(&s.session_id, row))
}

async fn session_alerts(
    State(app): State<Arc<App>>,
    caller: Caller,
    audit: Audit,
    ApiPath(id): ApiPath,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Answer<AlertList> {
    let (limit, offset) = validate::page(q.limit, q.offset, app.config.max_page)?;
    let (s, _) = app.owned_session(&caller, &audit, &id).await?;
    let list = store::alerts(&app.pool, Some(&caller.wallet), None, Some(s.id), false, limit, offset).await?;
    ok(AlertList { alerts: list.into_iter().map(Into::into).collect() })
}

async fn list_sessions(
    State(app): State<Arc<App>>,
    caller: Caller,
    audit: Audit,
    ApiPath(wallet): ApiPath,
    ApiQuery(q): ApiQuery<SessionListQuery>,
) -> Answer<SessionList> {
    let (limit, offset) = validate::page(q.limit, q.offset, app.config.max_page)?;
    // The caller's own wallet is the only one listed: any other string, well-formed or not, is
    // refused alike.
    audit.update(|e| {
        e.target = Some(wallet.chars().take(44).collect());
        e.parent_wallet = Some(wallet.chars().take(44).collect());
    });
    if wallet != caller.wallet {
        return Err(ApiError::forbidden("a wallet lists only its own sessions"));
    }
    if let Some(s) = &q.status {
        if !["active", "revoked", "expired", "cleaned"].contains(&s.as_str()) {
            return Err(ApiError::bad_request("invalid_status", "status is active, revoked, expired or cleaned"));
        }
    }
    let rows = store::sessions_of(&app.pool, &wallet, q.status.as_deref(), limit, offset).await?;
    let sessions = rows.iter().map(|s| SessionView::of(s, caller.now)).collect();
    ok(SessionList { parent_wallet: wallet, sessions })
}

async fn cleanup_candidates(
    State(app): State<Arc<App>>,
    caller: Caller,
    audit: Audit,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Answer<CandidateList> {
    let (limit, offset) = validate::page(q.limit, q.offset, app.config.max_page)?;
    audit.update(|e| e.parent_wallet = Some(caller.wallet.clone()));
    let list = store::cleanup_candidates(&app.pool, Some(&caller.wallet), limit, offset).await?;
    ok(CandidateList { candidates: list.into_iter().map(Into::into).collect() })
}

async fn list_alerts(
    State(app): State<Arc<App>>,
    caller: Caller,
    audit: Audit,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> Answer<AlertList> {
    let (limit, offset) = validate::page(q.limit, q.offset, app.config.max_page)?;
    let session = q.session_id.as_deref().map(validate::session_id).transpose()?.map(|s| s.0);
    audit.update(|e| e.parent_wallet = Some(caller.wallet.clone()));
    // The caller's session with that id (its newest incarnation); an id the caller has no session
    // under lists nothing.
    let session_ref = match &session {
        Some(id) => Some(store::session(&app.pool, &caller.wallet, id).await?.map(|s| s.id).unwrap_or(0)),
        None => None,
    };
    let list =
        store::alerts(&app.pool, Some(&caller.wallet), None, session_ref, q.unresolved.unwrap_or(false), limit, offset)
            .await?;
    ok(AlertList { alerts: list.into_iter().map(Into::into).collect() })
}

// ----- admin -----

async fn admin_alerts(State(app): State<Arc<App>>, ApiQuery(q): ApiQuery<AlertQuery>) -> Answer<AlertList> {
    let (limit, offset) = validate::page(q.limit, q.offset, app.config.max_page)?;
    let session = q.session_id.as_deref().map(validate::session_id).transpose()?.map(|s| s.0);
    // Every incarnation of every parent's session with that id.
    let list =
        store::alerts(&app.pool, None, session.as_deref(), None, q.unresolved.unwrap_or(false), limit, offset).await?;
    ok(AlertList { alerts: list.into_iter().map(Into::into).collect() })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    #[serde(default)]
    note: Option<String>,
}

/// An alert id: a positive 32-bit integer in its plain decimal spelling (no sign, no leading
/// zeros).
fn alert_id(raw: &str) -> Result<i32, ApiError> {
    let bad = || ApiError::bad_request("invalid_alert_id", "alert id is a positive integer");
    if raw.is_empty() || raw.len() > 10 || raw.starts_with('0') || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    raw.parse::<i32>().map_err(|_| bad())
}

async fn resolve_alert(
    State(app): State<Arc<App>>,
    caller: Caller,
    audit: Audit,
    ApiPath(raw_id): ApiPath,
    body: Bytes,
) -> Answer<AlertView> {
    let id = alert_id(&raw_id)?;
    audit.update(|e| e.target = Some(format!("alert:{id}")));
    let body: ResolveBody = if body.is_empty() { ResolveBody::default() } else { validate::json_body(&body)? };
    if let Some(n) = &body.note {
        validate::printable("note", n, 500)?;
        audit.meta("note", json!(n));
    }
    // The resolution and its audit commit together.
    let mut tx = app.pool.begin().await?;
    match store::resolve_alert(&mut tx, id, &caller.wallet).await? {
        Resolved::Done(alert) => {
            audit.update(|e| e.session_id = alert.session_id.clone());
            audit.write_in(&mut tx, StatusCode::OK, None).await?;
            tx.commit().await?;
            audit.mark_written();
            ok(alert.into())
        }
        Resolved::AlreadyResolved => Err(ApiError::conflict("already_resolved", "the alert is resolved already")),
        Resolved::NotFound => Err(ApiError::not_found("no such alert")),
    }
}

async fn admin_cleanup_candidates(
    State(app): State<Arc<App>>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Answer<CandidateList> {
    let (limit, offset) = validate::page(q.limit, q.offset, app.config.max_page)?;
    let list = store::cleanup_candidates(&app.pool, None, limit, offset).await?;
    ok(CandidateList { candidates: list.into_iter().map(Into::into).collect() })
}

// ----- relay -----

/// The relay's errors as the API answers them. Nothing from the chain's transport (its URL, its
/// error text) reaches the client: that goes to the server log, redacted.
fn relay_error(e: &RelayError) -> ApiError {
    use RelayError as E;
    match e {
        E::Disabled => ApiError::not_found("this deployment does not relay").with_note("relay disabled"),
        E::Invalid { code, message } => ApiError::bad_request(code, message.clone()),
        E::MovedSession | E::UnusualSpend => ApiError::forbidden(e.to_string()),
        E::Expired => ApiError::conflict("session_expired", e.to_string()),
        E::NotActive(_) => ApiError::conflict("session_not_active", e.to_string()),
        E::ApprovedAmountExceeded { .. } => ApiError::unprocessable("approved_amount_exceeded", e.to_string()),
        E::PerTradeCapExceeded { .. } => ApiError::unprocessable("per_trade_cap_exceeded", e.to_string()),
        E::NoKey => ApiError::conflict("no_key", e.to_string()),
        E::KeyNotRelayable => ApiError::conflict("key_not_relayable", e.to_string()),
        E::KeyNotCurrent => ApiError::conflict("key_not_current", e.to_string()),
        E::MintMissing => ApiError::conflict("mint_missing", e.to_string()),
        E::MissingDestinationTokenAccount => ApiError::bad_request("missing_destination_token_account", e.to_string()),
        E::ChainRefused { custom_code, .. } => {
            ApiError::unprocessable("chain_refused", e.to_string()).with_note(format!("custom_code={custom_code:?}"))
        }
        E::ChainUnavailable { signature, detail } => {
            tracing::warn!(signature = ?signature, detail = %redact(detail), "the chain's RPC endpoint did not answer");
            match signature {
                Some(sig) => ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "chain_unavailable",
                    format!("transaction {sig} was sent but the chain did not answer; it may still land"),
                ),
                None => ApiError::unavailable("chain_unavailable", "the chain is unavailable; nothing was sent"),
            }
        }
        E::Internal(detail) => ApiError::internal(detail),
        E::Database(err) => ApiError::internal(format!("database: {err}")),
    }
}

impl From<RelayError> for ApiError {
    fn from(e: RelayError) -> Self {
        relay_error(&e)
    }
}

/// How the outcome of a signed transaction is answered, for the audit row written with it.
fn relay_edge(outcome: &Result<RelayOutcome, RelayError>) -> (StatusCode, Option<String>) {
    match outcome {
        Ok(_) => (StatusCode::OK, None),
        Err(e) => {
            let api = relay_error(e);
            (api.status, Some(api.audit_text()))
        }
    }
}

async fn relay_handler(
    State(app): State<Arc<App>>,
    caller: Caller,
    audit: Audit,
    ApiPath(id): ApiPath,
    body: Bytes,
) -> Answer<RelayOutcome> {
    if !app.config.relay_enabled || app.chain.is_none() {
        return Err(RelayError::Disabled.into());
    }
    let body: RelayRequest = validate::json_body(&body)?;
    audit.update(|e| {
        e.action = match body {
            RelayRequest::Trade { .. } => "service.relay.trade",
            RelayRequest::TopUp { .. } => "service.relay.top_up",
        }
    });
    let (session, ip_changed) = app.owned_session(&caller, &audit, &id).await?;
    relay::refuse_moved(&app, ip_changed)?;
    let action = match body {
        RelayRequest::Trade { .. } => RateAction::Trade,
        RelayRequest::TopUp { .. } => RateAction::Deposit,
    };
    app.rate_limit(&caller, &audit, action).await?;
    let request_ref = format!("{}:{}", caller.wallet, caller.nonce);
    relay::preflight(&app, &session, &body, caller.now, &caller.ip, &request_ref).await?;
    audit.meta("spend", json!(body.spend().to_string()));
    let after = session.clone();
    let is_trade = matches!(body, RelayRequest::Trade { .. });
    let task =
        tokio::spawn(relay::execute(app.clone(), session, body, caller.nonce.clone(), audit.clone(), relay_edge));
    let outcome = task.await.map_err(|e| ApiError::internal(format!("relay task: {e}")))?;
    if outcome.is_ok() && is_trade {
        relay::after_trade(&app, &after, caller.now).await?;
    }
    ok(outcome?)
}
