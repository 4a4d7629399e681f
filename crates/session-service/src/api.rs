//! Routes and handlers. Each handler runs the same frame: [`App::begin`] authenticates the
//! request (and audits a refusal), the handler's body does the work, [`App::finish`] audits the
//! outcome and answers. Errors are `{"error": {"code", "message"}}` with a 4xx/5xx status.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use solana_keypair::Keypair;
use solana_signer::Signer;
use tower_http::limit::RequestBodyLimitLayer;
use zeroize::Zeroize;

use super::audit::{self, AuditEntry};
use super::auth;
use super::config::RateAction;
use super::crypto::KeyKind;
use super::error::ApiError;
use super::relay::{self, RelayRequest};
use super::store::{self, Registered, Resolved, SessionRow};
use super::validate::{self, U64};
use super::{alerts, ratelimit, unix_now, App};

pub const OPENAPI_JSON: &str = include_str!("../openapi/session-service.json");

/// The browser's envelope (app/src/ephemeral-key.ts): version, salt, iv, public key, sealed seed.
pub const CLIENT_ENVELOPE_LEN: usize = 1 + 32 + 12 + 32 + 32 + 16;
const CLIENT_ENVELOPE_PUBKEY: std::ops::Range<usize> = 45..77;

pub fn router(app: Arc<App>) -> Router {
    let limit = app.config.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi))
        .route("/v1/sessions", post(register))
        .route("/v1/sessions/{session_id}", get(get_session))
        .route("/v1/sessions/{session_id}/transactions", get(session_transactions))
        .route("/v1/sessions/{session_id}/analytics", get(session_analytics))
        .route("/v1/sessions/{session_id}/alerts", get(session_alerts))
        .route("/v1/sessions/{session_id}/sealed-key", get(sealed_key))
        .route("/v1/sessions/{session_id}/relay", post(relay_handler))
        .route("/v1/parents/{wallet}/sessions", get(list_sessions))
        .route("/v1/cleanup-candidates", get(cleanup_candidates))
        .route("/v1/alerts", get(list_alerts))
        .route("/v1/admin/alerts", get(admin_alerts))
        .route("/v1/admin/alerts/{alert_id}/resolve", post(resolve_alert))
        .route("/v1/admin/cleanup-candidates", get(admin_cleanup_candidates))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(axum::middleware::map_response(json_payload_too_large))
        .with_state(app)
}

/// tower-http answers an over-long Content-Length with a plain-text 413 before any handler
/// runs; this gives it the API's JSON error body.
async fn json_payload_too_large(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the request body is too large")
            .into_response();
    }
    resp
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

// ----- the request frame -----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Parent,
    Admin,
}

/// An authenticated request in progress.
struct Call {
    wallet: String,
    ip: String,
    uri: Uri,
    body: Vec<u8>,
    nonce: String,
    now: i64,
    /// Set when the session is used from an IP other than its registered one.
    ip_changed: bool,
    audit: AuditEntry,
}

type Outcome = Result<(StatusCode, Value), ApiError>;

fn user_agent(headers: &axum::http::HeaderMap) -> Option<String> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?;
    let clean: String = ua.chars().filter(|c| !c.is_control()).take(512).collect();
    (!clean.is_empty()).then_some(clean)
}

impl App {
    async fn begin(&self, req: Request, peer: SocketAddr, action: &'static str, who: Who) -> Result<Call, Response> {
        let (parts, body) = req.into_parts();
        let now = unix_now();
        let ip = self.client_ip(peer, &parts.headers).to_string();
        let path: String = parts.uri.path().chars().take(300).collect();
        let mut entry = AuditEntry {
            action,
            actor: auth::claimed_wallet(&parts.headers).unwrap_or_else(|| "anonymous".into()),
            ip: Some(ip.clone()),
            user_agent: user_agent(&parts.headers),
            metadata: json!({"method": parts.method.as_str(), "path": path}),
            ..AuditEntry::default()
        };
        let refuse = |entry: AuditEntry, err: ApiError| async move {
            Err(self.finish_raw(entry, Err(err)).await)
        };
        let body: Bytes = match axum::body::to_bytes(body, self.config.max_body_bytes).await {
            Ok(b) => b,
            Err(_) => {
                return refuse(
                    entry,
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!(
                        "the body exceeds {} bytes",
                        self.config.max_body_bytes
                    )),
                )
                .await
            }
        };
        let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let verified = match auth::verify(
            &parts.headers,
            parts.method.as_str(),
            path_and_query,
            &body,
            now,
            i64::from(self.config.max_clock_skew_secs),
        ) {
            Ok(v) => v,
            Err(e) => return refuse(entry, e).await,
        };
        entry.actor = verified.wallet.clone();
        if who == Who::Admin {
            match self.admin_wallet() {
                None => return refuse(entry, ApiError::not_found("admin endpoints are disabled")).await,
                Some(admin) if admin != verified.wallet => {
                    return refuse(entry, ApiError::forbidden("admin endpoints need the admin key")).await
                }
                Some(_) => {}
            }
        }
        match auth::consume_nonce(&self.pool, &verified, i64::from(self.config.max_clock_skew_secs)).await {
            Ok(true) => {}
            Ok(false) => {
                return refuse(entry, ApiError::unauthorized("replayed_nonce", "this nonce was used before")).await
            }
            Err(e) => return refuse(entry, e.into()).await,
        }
        entry.metadata["authenticated"] = json!(true);
        Ok(Call {
            wallet: verified.wallet,
            ip,
            uri: parts.uri,
            body: Vec::from(body),
            nonce: verified.nonce,
            now,
            ip_changed: false,
            audit: entry,
        })
    }

    async fn finish(&self, mut call: Call, outcome: Outcome) -> Response {
        call.body.zeroize();
        self.finish_raw(call.audit, outcome).await
    }

    async fn finish_raw(&self, mut entry: AuditEntry, outcome: Outcome) -> Response {
        let status = match &outcome {
            Ok((s, _)) => *s,
            Err(e) => e.status,
        };
        entry.success = outcome.is_ok();
        entry.error = outcome.as_ref().err().map(ApiError::audit_text);
        entry.metadata["status"] = json!(status.as_u16());
        if let Err(e) = audit::append(&self.pool, entry).await {
            // An action that cannot be audited is not answered as a success.
            return ApiError::internal(format!("audit append failed: {e}")).into_response();
        }
        match outcome {
            Ok((status, body)) => (status, Json(body)).into_response(),
            Err(e) => e.into_response(),
        }
    }

    /// The session, if it exists and belongs to the caller; raises ip_change on a new IP.
    async fn owned_session(&self, call: &mut Call, raw_id: &str) -> Result<SessionRow, ApiError> {
        let (session_id, _) = validate::session_id(raw_id).inspect_err(|_| {
            call.audit.metadata["raw_session_id"] = json!(raw_id.chars().take(64).collect::<String>());
        })?;
        call.audit.session_id = Some(session_id.clone());
        call.audit.target = Some(session_id.clone());
        let session = store::session(&self.pool, &session_id)
            .await?
            .ok_or_else(|| ApiError::not_found("no such session").with_note("does not exist"))?;
        call.audit.parent_wallet = Some(session.parent_wallet.clone());
        if session.parent_wallet != call.wallet {
            return Err(ApiError::not_found("no such session").with_note("session belongs to another wallet"));
        }
        if let Some(registered) = &session.user_ip {
            if *registered != call.ip {
                call.ip_changed = true;
                if self.config.alerts.ip_change {
                    alerts::ip_change(&self.pool, &session.session_id, registered, &call.ip).await?;
                }
            }
        }
        Ok(session)
    }

    async fn rate_limit(&self, call: &mut Call, action: RateAction) -> Result<(), ApiError> {
        let d = ratelimit::check(&self.pool, &self.config.rate_limits, &call.wallet, action, call.now).await?;
        call.audit.metadata["rate"] = json!({"action": action.as_str(), "count": d.count, "limit": d.limit});
        if d.allowed {
            return Ok(());
        }
        let retry = d.retry_after(call.now);
        Err(match d.blocked_until {
            Some(_) => ApiError::too_many(
                "blocked",
                format!("too many {} requests: blocked for {retry} s", action.as_str()),
                retry,
            ),
            None => ApiError::too_many(
                "rate_limited",
                format!("at most {} {} requests per window; retry in {retry} s", d.limit, action.as_str()),
                retry,
            ),
        })
    }
}

/// The frame: begin, run `$body` (an async block over `call`), finish.
macro_rules! frame {
    ($app:expr, $req:expr, $peer:expr, $action:expr, $who:expr, |$call:ident| $body:expr) => {{
        #[allow(unused_mut)]
        let mut $call = match $app.begin($req, $peer, $action, $who).await {
            Ok(c) => c,
            Err(resp) => return resp,
        };
        let outcome: Outcome = $body.await;
        $app.finish($call, outcome).await
    }};
}

fn query<T: serde::de::DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
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

async fn register(State(app): State<Arc<App>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    frame!(app, req, peer, "service.session.register", Who::Parent, |call| async {
        app.rate_limit(&mut call, RateAction::SessionCreate).await?;
        let body: RegisterBody = validate::json_body(&call.body)?;
        call.body.zeroize();
        let (session_id, sid_bytes) = validate::session_id(&body.session_id)?;
        call.audit.session_id = Some(session_id.clone());
        call.audit.target = Some(session_id.clone());
        let parent = validate::pubkey("parent_wallet", &body.parent_wallet)?;
        if parent.to_string() != call.wallet {
            return Err(ApiError::forbidden("a wallet registers only its own sessions"));
        }
        call.audit.parent_wallet = Some(call.wallet.clone());
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
        if body.approved_amount.0 == 0 {
            return Err(ApiError::bad_request("invalid_amount", "approved_amount must be positive"));
        }
        if let Some(cap) = body.per_trade_cap {
            if cap.0 == 0 || cap.0 > body.approved_amount.0 {
                return Err(ApiError::bad_request("invalid_amount", "per_trade_cap must be in 1..=approved_amount"));
            }
        }
        if body.created_at <= 0 || body.expires_at <= body.created_at || body.expires_at - body.created_at > MAX_SESSION_SECS {
            return Err(ApiError::bad_request(
                "invalid_times",
                format!("need 0 < created_at < expires_at <= created_at + {MAX_SESSION_SECS}"),
            ));
        }
        if body.expires_at <= call.now {
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
        let envelope = app
            .keyring
            .seal(&session_id, &ephemeral.to_string(), kind, &payload)
            .map_err(ApiError::internal)?;
        drop(payload);
        let ua = call.audit.user_agent.clone();
        let mint_s = mint.map(|m| m.to_string());
        let registered = store::register(
            &app.pool,
            store::Registration {
                session_id: &session_id,
                parent_wallet: &call.wallet,
                ephemeral_wallet: &ephemeral.to_string(),
                vault_pda: &vault.to_string(),
                mint: mint_s.as_deref(),
                created_at: body.created_at,
                expires_at: body.expires_at,
                approved_amount: body.approved_amount.0,
                per_trade_cap: body.per_trade_cap.map(|c| c.0),
                envelope,
                user_ip: &call.ip,
                user_agent: ua.as_deref(),
                device_fingerprint: body.device_fingerprint.as_deref(),
            },
        )
        .await?;
        let chain_row = match registered {
            Registered::Inserted => "awaiting_chain",
            Registered::Completed => "present",
            Registered::Refused => {
                return Err(ApiError::conflict(
                    "already_registered",
                    "this session id is registered already, or its chain record names another parent, vault or delegate",
                ))
            }
        };
        call.audit.metadata["key_kind"] = json!(kind.as_str());
        call.audit.metadata["chain_row"] = json!(chain_row);
        let row = store::session(&app.pool, &session_id)
            .await?
            .ok_or_else(|| ApiError::internal("registered session vanished"))?;
        Ok((StatusCode::CREATED, store::session_json(&row, call.now)))
    })
}

async fn get_session(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    frame!(app, req, peer, "service.session.read", Who::Parent, |call| async {
        let s = app.owned_session(&mut call, &id).await?;
        Ok((StatusCode::OK, store::session_json(&s, call.now)))
    })
}

async fn sealed_key(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    frame!(app, req, peer, "service.session.sealed_key", Who::Parent, |call| async {
        let s = app.owned_session(&mut call, &id).await?;
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
        Ok((StatusCode::OK, json!({"session_id": s.session_id, "format": "client_sealed_v1", "data": data})))
    })
}

async fn session_transactions(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    frame!(app, req, peer, "service.session.transactions", Who::Parent, |call| async {
        let q: PageQuery = query(&call.uri)?;
        let (limit, offset) = validate::page(q.limit, q.offset, app.config.max_page)?;
        let s = app.owned_session(&mut call, &id).await?;
        let txs = store::transactions(&app.pool, &s.session_id, limit, offset).await?;
        Ok((StatusCode::OK, json!({"session_id": s.session_id, "transactions": txs})))
    })
}

async fn session_analytics(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    frame!(app, req, peer, "service.session.analytics", Who::Parent, |call| async {
        let s = app.owned_session(&mut call, &id).await?;
        Ok((StatusCode::OK, store::analytics(&app.pool, &s.session_id).await?))
    })
}

async fn session_alerts(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    frame!(app, req, peer, "service.session.alerts", Who::Parent, |call| async {
        let q: PageQuery = query(&call.uri)?;
        let (limit, offset) = validate::page(q.limit, q.offset, app.config.max_page)?;
        let s = app.owned_session(&mut call, &id).await?;
        let list = store::alerts(&app.pool, Some(&call.wallet), Some(&s.session_id), false, limit, offset).await?;
        Ok((StatusCode::OK, json!({"alerts": list})))
    })
}

async fn list_sessions(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(wallet): Path<String>,
    req: Request,
) -> Response {
    frame!(app, req, peer, "service.sessions.list", Who::Parent, |call| async {
        let q: SessionListQuery = query(&call.uri)?;
        let (limit, offset) = validate::page(q.limit, q.offset, app.config.max_page)?;
        let wallet = validate::pubkey("wallet", &wallet)?.to_string();
        call.audit.target = Some(wallet.clone());
        call.audit.parent_wallet = Some(wallet.clone());
        if wallet != call.wallet {
            return Err(ApiError::forbidden("a wallet lists only its own sessions"));
        }
        if let Some(s) = &q.status {
            if !["active", "revoked", "expired", "cleaned"].contains(&s.as_str()) {
                return Err(ApiError::bad_request("invalid_status", "status is active, revoked, expired or cleaned"));
            }
        }
        let rows = store::sessions_of(&app.pool, &wallet, q.status.as_deref(), limit, offset).await?;
        let list: Vec<Value> = rows.iter().map(|s| store::session_json(s, call.now)).collect();
        Ok((StatusCode::OK, json!({"parent_wallet": wallet, "sessions": list})))
    })
}

async fn cleanup_candidates(State(app): State<Arc<App>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    frame!(app, req, peer, "service.cleanup_candidates", Who::Parent, |call| async {
        let q: PageQuery = query(&call.uri)?;
        let (limit, offset) = validate::page(q.limit, q.offset, app.config.max_page)?;
        call.audit.parent_wallet = Some(call.wallet.clone());
        let list = store::cleanup_candidates(&app.pool, Some(&call.wallet), limit, offset).await?;
        Ok((StatusCode::OK, json!({"candidates": list})))
    })
}

async fn list_alerts(State(app): State<Arc<App>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    frame!(app, req, peer, "service.alerts.list", Who::Parent, |call| async {
        let q: AlertQuery = query(&call.uri)?;
        let (limit, offset) = validate::page(q.limit, q.offset, app.config.max_page)?;
        let session = q.session_id.as_deref().map(validate::session_id).transpose()?.map(|s| s.0);
        call.audit.parent_wallet = Some(call.wallet.clone());
        let list = store::alerts(
            &app.pool,
            Some(&call.wallet),
            session.as_deref(),
            q.unresolved.unwrap_or(false),
            limit,
            offset,
        )
        .await?;
        Ok((StatusCode::OK, json!({"alerts": list})))
    })
}

// ----- admin -----

async fn admin_alerts(State(app): State<Arc<App>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    frame!(app, req, peer, "service.admin.alerts.list", Who::Admin, |call| async {
        let q: AlertQuery = query(&call.uri)?;
        let (limit, offset) = validate::page(q.limit, q.offset, app.config.max_page)?;
        let session = q.session_id.as_deref().map(validate::session_id).transpose()?.map(|s| s.0);
        let list = store::alerts(&app.pool, None, session.as_deref(), q.unresolved.unwrap_or(false), limit, offset).await?;
        Ok((StatusCode::OK, json!({"alerts": list})))
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    #[serde(default)]
    note: Option<String>,
}

async fn resolve_alert(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(alert_id): Path<String>,
    req: Request,
) -> Response {
    frame!(app, req, peer, "service.admin.alert.resolve", Who::Admin, |call| async {
        let id: i32 = match alert_id.parse() {
            Ok(v) if v > 0 && alert_id.len() <= 10 => v,
            _ => return Err(ApiError::bad_request("invalid_alert_id", "alert id is a positive integer")),
        };
        call.audit.target = Some(format!("alert:{id}"));
        let body: ResolveBody = if call.body.is_empty() { ResolveBody::default() } else { validate::json_body(&call.body)? };
        if let Some(n) = &body.note {
            validate::printable("note", n, 500)?;
            call.audit.metadata["note"] = json!(n);
        }
        match store::resolve_alert(&app.pool, id, &call.wallet).await? {
            Resolved::Done(alert) => {
                call.audit.session_id = alert["session_id"].as_str().map(str::to_string);
                Ok((StatusCode::OK, alert))
            }
            Resolved::AlreadyResolved => Err(ApiError::conflict("already_resolved", "the alert is resolved already")),
            Resolved::NotFound => Err(ApiError::not_found("no such alert")),
        }
    })
}

async fn admin_cleanup_candidates(State(app): State<Arc<App>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    frame!(app, req, peer, "service.admin.cleanup_candidates", Who::Admin, |call| async {
        let q: PageQuery = query(&call.uri)?;
        let (limit, offset) = validate::page(q.limit, q.offset, app.config.max_page)?;
        let list = store::cleanup_candidates(&app.pool, None, limit, offset).await?;
        Ok((StatusCode::OK, json!({"candidates": list})))
    })
}

// ----- relay -----

async fn relay_handler(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    frame!(app, req, peer, "service.relay", Who::Parent, |call| async {
        if !app.config.relay_enabled || app.chain.is_none() {
            return Err(ApiError::not_found("this deployment does not relay").with_note("relay disabled"));
        }
        let body: RelayRequest = validate::json_body(&call.body)?;
        call.audit.action = match body {
            RelayRequest::Trade { .. } => "service.relay.trade",
            RelayRequest::TopUp { .. } => "service.relay.top_up",
        };
        let session = app.owned_session(&mut call, &id).await?;
        if call.ip_changed && app.config.alerts.ip_change_blocks_relay {
            return Err(ApiError::forbidden("the session is used from a new IP; relaying is refused"));
        }
        let action = match body {
            RelayRequest::Trade { .. } => RateAction::Trade,
            RelayRequest::TopUp { .. } => RateAction::Deposit,
        };
        app.rate_limit(&mut call, action).await?;
        body.validate()?;
        if call.now >= session.expires_at {
            if app.config.alerts.expired_session {
                alerts::expired_session(&app.pool, &session.session_id, session.expires_at, call.now, &call.ip).await?;
            }
            return Err(ApiError::conflict("session_expired", "the session has expired"));
        }
        if session.status != "active" {
            return Err(ApiError::conflict("session_not_active", format!("the session is {}", session.status)));
        }
        let approved = vault_db::amount::from_db(session.approved_amount).unwrap_or(0);
        let spend = body.spend();
        if app.config.alerts.unusual_spending_bps.is_unusual(spend, approved) {
            let request_ref = format!("{}:{}", call.wallet, call.nonce);
            alerts::unusual_spending(&app.pool, &session.session_id, spend, approved, &request_ref).await?;
            if app.config.alerts.unusual_spending_blocks {
                return Err(ApiError::forbidden("unusually large spend for this session; refused"));
            }
        }
        call.audit.metadata["spend"] = json!(spend.to_string());
        let session_id = session.session_id.clone();
        let is_trade = matches!(body, RelayRequest::Trade { .. });
        let task = tokio::spawn(relay::execute(app.clone(), session, body, call.nonce.clone()));
        let outcome = task.await.map_err(|e| ApiError::internal(format!("relay task: {e}")))?;
        if let Ok(o) = &outcome {
            call.audit.metadata["signature"] = json!(o.signature);
            if is_trade {
                let a = &app.config.alerts;
                alerts::high_frequency(&app.pool, &session_id, a.high_frequency_trades, a.high_frequency_window_secs, call.now)
                    .await?;
            }
        }
        let o = outcome?;
        Ok((StatusCode::OK, serde_json::to_value(&o).map_err(ApiError::internal)?))
    })
}
