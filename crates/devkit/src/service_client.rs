//! A minimal signed client for the API (tests, the benchmark, Rust callers).

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use reqwest::Method;
use serde_json::Value;

use vault_session_service::auth::{random_nonce, sign_request, SignedHeaders};

/// A response: status, Content-Type and JSON body (Null when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Value,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

/// Sees every exchange of a client: method, path and query, reply (the session service's tests
/// check each reply against the OpenAPI document).
pub type Observer = Arc<dyn Fn(&str, &str, &Reply) + Send + Sync>;

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub observer: Option<Observer>,
}

impl Client {
    pub fn new(base: impl Into<String>) -> Self {
        Self { http: reqwest::Client::new(), base: base.into(), observer: None }
    }

    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Sends `method path` with `body` signed by `key` at `timestamp` with `nonce`.
    pub async fn send_signed_with(
        &self,
        key: &SigningKey,
        method: &str,
        path_and_query: &str,
        body: Option<&Value>,
        timestamp: i64,
        nonce: &str,
    ) -> reqwest::Result<Reply> {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("json")).unwrap_or_default();
        let headers = sign_request(key, method, path_and_query, &bytes, timestamp, nonce);
        self.send_raw(method, path_and_query, bytes, Some(&headers), None).await
    }

    /// Signed now, with a fresh nonce.
    pub async fn send(
        &self,
        key: &SigningKey,
        method: &str,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> reqwest::Result<Reply> {
        self.send_signed_with(key, method, path_and_query, body, vault_session_service::unix_now(), &random_nonce())
            .await
    }

    pub async fn get(&self, key: &SigningKey, path_and_query: &str) -> reqwest::Result<Reply> {
        self.send(key, "GET", path_and_query, None).await
    }

    pub async fn post(&self, key: &SigningKey, path_and_query: &str, body: &Value) -> reqwest::Result<Reply> {
        self.send(key, "POST", path_and_query, Some(body)).await
    }

    /// Sends exactly these bytes and headers (for tampering tests).
    pub async fn send_raw(
        &self,
        method: &str,
        path_and_query: &str,
        body: Vec<u8>,
        headers: Option<&SignedHeaders>,
        extra: Option<(&str, &str)>,
    ) -> reqwest::Result<Reply> {
        let verb = Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.http.request(verb, format!("{}{}", self.base, path_and_query));
        if let Some(h) = headers {
            for (k, v) in h.pairs() {
                rb = rb.header(k, v);
            }
        }
        if let Some((k, v)) = extra {
            rb = rb.header(k, v);
        }
        if !body.is_empty() {
            rb = rb.header("content-type", "application/json").body(body);
        }
        let resp = rb.send().await?;
        let status = resp.status().as_u16();
        let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = resp.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let reply = Reply { status, content_type, body };
        if let Some(observe) = &self.observer {
            observe(method, path_and_query, &reply);
        }
        Ok(reply)
    }
}
