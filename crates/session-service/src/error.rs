//! The API's errors: an HTTP status and a JSON body `{"error": {"code", "message"}}`. Internal
//! failures are logged here and answered with a generic message, so no database detail (or
//! anything else) leaks to the client. A message never carries configuration, URLs, keys or an
//! underlying error's text: those go to the server log only, through [`redact`].

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
    /// Detail for the audit row only (e.g. why a session is "not found" to this caller).
    pub note: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None, note: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after: u64) -> Self {
        Self { retry_after: Some(retry_after), ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message) }
    }

    /// Logs `detail` (redacted) and answers 500 without it.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let detail = redact(&detail.to_string());
        tracing::error!(%detail, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    /// A validation failure on data the service itself stored: an internal error.
    pub fn internal_from(e: ApiError) -> Self {
        Self::internal(e.audit_text())
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// For the audit row: code, message and the note.
    pub fn audit_text(&self) -> String {
        match &self.note {
            Some(n) => format!("{}: {} ({n})", self.code, self.message),
            None => format!("{}: {}", self.code, self.message),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(format!("database: {e}"))
    }
}

/// The error a response carries, for its audit row (a response extension the guard reads).
#[derive(Clone, Debug)]
pub struct AuditedError(pub String);

/// `text` with every URL cut to its scheme, host and port: RPC providers put API keys in the
/// query or the path, and database URLs carry passwords before the host.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        let after = &rest[i + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>' | '<' | ','))
            .unwrap_or(after.len());
        let url = &after[..end];
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let authority = &url[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("<redacted>@");
                out.push_str(&authority[at + 1..]);
            }
            None => out.push_str(authority),
        }
        let tail = &url[authority_end..];
        if !tail.is_empty() && tail != "/" {
            out.push_str("/<redacted>");
        } else {
            out.push_str(tail);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let audited = AuditedError(self.audit_text());
        let mut resp =
            (self.status, Json(json!({"error": {"code": self.code, "message": self.message}}))).into_response();
        resp.extensions_mut().insert(audited);
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn urls_lose_their_secrets() {
        assert_eq!(
            redact("error sending request for url (http://127.0.0.1:18899/?api-key=abc123)"),
            "error sending request for url (http://127.0.0.1:18899/<redacted>)"
        );
        assert_eq!(redact("postgres://user:pw@db:5432/x failed"), "postgres://<redacted>@db:5432/<redacted> failed");
        assert_eq!(redact("see https://rpc.example/v2/KEY, then"), "see https://rpc.example/<redacted>, then");
        assert_eq!(redact("http://127.0.0.1:8899/"), "http://127.0.0.1:8899/");
        assert_eq!(redact("no url here"), "no url here");
    }
}
