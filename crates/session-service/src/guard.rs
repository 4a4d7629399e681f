//! The layer every API route runs behind: it authenticates the request, checks its inputs, and
//! audits it. In order:
//!
//! 1. an audit entry is started (claimed wallet, client IP, user agent, method, path);
//! 2. the body is read (at most `max_body_bytes`);
//! 3. the signature is verified ([`auth::verify`]), and for admin routes the signer is the
//!    configured admin wallet;
//! 4. the inputs are checked before anything reaches the database: no NUL anywhere in the path,
//!    the query or the JSON body (PostgreSQL cannot store it), a JSON body is sent as
//!    `application/json` and parses;
//! 5. the nonce is consumed ([`auth::consume_nonce`]);
//! 6. the handler runs with a [`Caller`] and the request's [`Audit`] in its extensions;
//! 7. unless the handler wrote the audit row in its own transaction, the row is written now,
//!    with the response's status and error; if it cannot be, the request fails with a 500.
//!
//! A refusal at any step is answered with the API's JSON error and audited like any outcome.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::audit::{self, Audit, AuditEntry};
use super::auth;
use super::error::{ApiError, AuditedError};
use super::{unix_now, App};

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// Any wallet, about its own data.
    Parent,
    /// The configured admin wallet only.
    Admin,
}

/// A route's audit action and who may call it.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint {
    pub action: &'static str,
    pub who: Who,
}

/// The authenticated caller of a request (an extractor for handlers behind [`guard`]).
#[derive(Clone, Debug)]
pub struct Caller {
    pub wallet: String,
    pub ip: String,
    pub nonce: String,
    /// The request's time, unix seconds.
    pub now: i64,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| ApiError::internal("route without the guard layer"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Audit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Audit>().cloned().ok_or_else(|| ApiError::internal("route without the guard layer"))
    }
}

fn user_agent(headers: &axum::http::HeaderMap) -> Option<String> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?;
    let clean: String = ua.chars().filter(|c| !c.is_control()).take(512).collect();
    (!clean.is_empty()).then_some(clean)
}

/// Whether a JSON value holds a NUL in any string or key.
fn holds_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(holds_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// The input checks of step 4.
fn check_inputs(
    method: &Method,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    // A URI cannot carry a raw NUL; percent-encoded is the only way in.
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    if pq.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0') {
        return Err(ApiError::bad_request("invalid_input", "the path and query must not contain NUL (%00)"));
    }
    if body.is_empty() {
        return Ok(());
    }
    if *method != Method::POST {
        return Err(ApiError::bad_request("invalid_body", "this method takes no body"));
    }
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be sent as Content-Type: application/json",
        ));
    }
    // Parsed here only to look for NUL; the handler parses it into its own type.
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if holds_nul(&v) {
            return Err(ApiError::bad_request("invalid_body", "strings in the body must not contain NUL (\\u0000)"));
        }
    }
    Ok(())
}

/// The layer (`axum::middleware::from_fn_with_state` with the route's [`Endpoint`]).
pub async fn guard(
    State((app, endpoint)): State<(Arc<App>, Endpoint)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let now = unix_now();
    let ip = app.client_ip(peer, &parts.headers).to_string();
    let path: String = parts.uri.path().chars().take(300).collect();
    let audit = Audit::new(AuditEntry {
        action: endpoint.action,
        actor: auth::claimed_wallet(&parts.headers).unwrap_or_else(|| "anonymous".into()),
        ip: Some(ip.clone()),
        user_agent: user_agent(&parts.headers),
        metadata: json!({"method": parts.method.as_str(), "path": path}),
        ..AuditEntry::default()
    });
    let admitted = admit(&app, endpoint, &parts, body, now, ip, &audit).await;
    let response = match admitted {
        Ok((caller, body)) => {
            parts.extensions.insert(caller);
            parts.extensions.insert(audit.clone());
            next.run(Request::from_parts(parts, Body::from(body))).await
        }
        Err(e) => e.into_response(),
    };
    if audit.is_written() {
        return response;
    }
    let error = response.extensions().get::<AuditedError>().map(|e| e.0.clone()).or_else(|| {
        // A response that is not one of ours (an extractor's rejection): audit its status.
        (!response.status().is_success()).then(|| format!("http {}", response.status().as_u16()))
    });
    if let Err(e) = audit::append(&app.pool, audit.finished(response.status(), error)).await {
        // An action that cannot be audited is not answered as a success.
        return ApiError::internal(format!("audit append failed: {e}")).into_response();
    }
    response
}

/// Steps 2 to 5: the caller and the body, or the refusal.
async fn admit(
    app: &App,
    endpoint: Endpoint,
    parts: &Parts,
    body: Body,
    now: i64,
    ip: String,
    audit: &Audit,
) -> Result<(Caller, Bytes), ApiError> {
    let max = app.config.max_body_bytes;
    let body: Bytes = axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the body exceeds {max} bytes"))
    })?;
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let skew = i64::from(app.config.max_clock_skew_secs);
    let verified = auth::verify(&parts.headers, parts.method.as_str(), path_and_query, &body, now, skew)?;
    audit.update(|e| e.actor = verified.wallet.clone());
    if endpoint.who == Who::Admin {
        match app.admin_wallet() {
            None => return Err(ApiError::not_found("admin endpoints are disabled")),
            Some(admin) if admin != verified.wallet => {
                return Err(ApiError::forbidden("admin endpoints need the admin key"))
            }
            Some(_) => {}
        }
    }
    check_inputs(&parts.method, &parts.uri, &parts.headers, &body)?;
    if !auth::consume_nonce(&app.pool, &verified, skew).await? {
        return Err(ApiError::unauthorized("replayed_nonce", "this nonce was used before"));
    }
    audit.meta("authenticated", json!(true));
    Ok((Caller { wallet: verified.wallet, ip, nonce: verified.nonce, now }, body))
}
