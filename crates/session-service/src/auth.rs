//! Request authentication: every request that reads or changes a wallet's data is signed by that
//! wallet (ed25519, the wallet's own key) over a canonical message:
//!
//! ```text
//! ephemeral-vault-service/v1\n
//! <METHOD>\n
//! <path and query, exactly as sent>\n
//! <lowercase hex SHA-256 of the body (of the empty string when there is none)>\n
//! <unix timestamp, seconds>\n
//! <nonce>\n
//! <wallet, base58>
//! ```
//!
//! sent in the headers `X-Vault-Wallet`, `X-Vault-Timestamp`, `X-Vault-Nonce` and
//! `X-Vault-Signature` (base58 of the 64-byte signature). A timestamp further than the configured
//! skew from the service's clock is refused, and so is a nonce the wallet has used before: nonces
//! are kept in `service_request_nonces` until their timestamp could no longer pass. The admin
//! endpoints use the same scheme with the configured admin wallet's key.

use axum::http::HeaderMap;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::error::ApiError;

pub const WALLET_HEADER: &str = "x-vault-wallet";
pub const TIMESTAMP_HEADER: &str = "x-vault-timestamp";
pub const NONCE_HEADER: &str = "x-vault-nonce";
pub const SIGNATURE_HEADER: &str = "x-vault-signature";
pub const DOMAIN: &str = "ephemeral-vault-service/v1";

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The bytes the wallet signs.
pub fn canonical_message(
    method: &str,
    path_and_query: &str,
    body: &[u8],
    timestamp: i64,
    nonce: &str,
    wallet: &str,
) -> Vec<u8> {
    let body_hash = hex(&Sha256::digest(body));
    format!("{DOMAIN}\n{method}\n{path_and_query}\n{body_hash}\n{timestamp}\n{nonce}\n{wallet}").into_bytes()
}

/// The four headers of a signed request (client side: tests, benchmarks, other Rust callers).
#[derive(Clone, Debug)]
pub struct SignedHeaders {
    pub wallet: String,
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
}

impl SignedHeaders {
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            (WALLET_HEADER, &self.wallet),
            (TIMESTAMP_HEADER, &self.timestamp),
            (NONCE_HEADER, &self.nonce),
            (SIGNATURE_HEADER, &self.signature),
        ]
    }
}

/// Signs a request as `key`'s wallet.
pub fn sign_request(
    key: &SigningKey,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    timestamp: i64,
    nonce: &str,
) -> SignedHeaders {
    let wallet = bs58::encode(key.verifying_key().as_bytes()).into_string();
    let msg = canonical_message(method, path_and_query, body, timestamp, nonce, &wallet);
    let sig = key.sign(&msg);
    SignedHeaders {
        wallet,
        timestamp: timestamp.to_string(),
        nonce: nonce.to_string(),
        signature: bs58::encode(sig.to_bytes()).into_string(),
    }
}

/// A random nonce of 32 URL-safe characters.
pub fn random_nonce() -> String {
    use aes_gcm::aead::rand_core::RngCore;
    let mut b = [0u8; 24];
    aes_gcm::aead::OsRng.fill_bytes(&mut b);
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The wallet a request claims to be from, if the header is a well-formed public key; for the
/// audit of refused requests.
pub fn claimed_wallet(headers: &HeaderMap) -> Option<String> {
    let w = headers.get(WALLET_HEADER)?.to_str().ok()?;
    super::validate::pubkey("wallet", w).ok().map(|k| k.to_string())
}

/// The verified signer of a request.
#[derive(Clone, Debug)]
pub struct Verified {
    pub wallet: String,
    pub timestamp: i64,
    pub nonce: String,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    let v = headers
        .get(name)
        .ok_or_else(|| ApiError::unauthorized("missing_auth", format!("the {name} header is required")))?;
    v.to_str().map_err(|_| ApiError::unauthorized("malformed_auth", format!("the {name} header is not ASCII")))
}

fn nonce_ok(n: &str) -> bool {
    (16..=64).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks the headers, the clock and the signature (not the nonce's novelty: see
/// [`consume_nonce`], which must follow, so an unsigned request cannot burn a wallet's nonces).
pub fn verify(
    headers: &HeaderMap,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: i64,
    max_skew: i64,
) -> Result<Verified, ApiError> {
    let wallet = header(headers, WALLET_HEADER)?;
    let ts = header(headers, TIMESTAMP_HEADER)?;
    let nonce = header(headers, NONCE_HEADER)?;
    let sig = header(headers, SIGNATURE_HEADER)?;
    let key = super::validate::pubkey("X-Vault-Wallet", wallet)
        .map_err(|_| ApiError::unauthorized("malformed_auth", "X-Vault-Wallet must be a base58 public key"))?;
    let timestamp: i64 = if !ts.is_empty() && ts.len() <= 12 && ts.bytes().all(|b| b.is_ascii_digit()) {
        ts.parse().map_err(|_| ApiError::unauthorized("malformed_auth", "X-Vault-Timestamp must be unix seconds"))?
    } else {
        return Err(ApiError::unauthorized("malformed_auth", "X-Vault-Timestamp must be unix seconds"));
    };
    if !nonce_ok(nonce) {
        return Err(ApiError::unauthorized(
            "malformed_auth",
            "X-Vault-Nonce must be 16..=64 characters of [A-Za-z0-9_-]",
        ));
    }
    let mut sig_bytes = [0u8; 64];
    match bs58::decode(sig).onto(&mut sig_bytes) {
        Ok(64) if sig.len() <= 90 => {}
        _ => return Err(ApiError::unauthorized("malformed_auth", "X-Vault-Signature must be base58 of 64 bytes")),
    }
    if (now - timestamp).abs() > max_skew {
        return Err(ApiError::unauthorized(
            "stale_timestamp",
            format!("X-Vault-Timestamp is more than {max_skew} s from the service's clock"),
        ));
    }
    let vk = VerifyingKey::from_bytes(&key.to_bytes())
        .map_err(|_| ApiError::unauthorized("bad_signature", "the wallet is not a valid ed25519 key"))?;
    let msg = canonical_message(method, path_and_query, body, timestamp, nonce, wallet);
    vk.verify_strict(&msg, &Signature::from_bytes(&sig_bytes))
        .map_err(|_| ApiError::unauthorized("bad_signature", "the signature does not verify"))?;
    Ok(Verified { wallet: wallet.to_string(), timestamp, nonce: nonce.to_string() })
}

/// Records the nonce; false when the wallet has used it before (a replay). Atomic: of two
/// concurrent requests with one nonce, exactly one records it.
pub async fn consume_nonce(pool: &PgPool, v: &Verified, max_skew: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO service_request_nonces (wallet, nonce, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (wallet, nonce) DO NOTHING",
    )
    .bind(&v.wallet)
    .bind(&v.nonce)
    .bind(v.timestamp + max_skew + 1)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes nonces whose timestamps can no longer pass; returns how many.
pub async fn purge_nonces(pool: &PgPool, now: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM service_request_nonces WHERE expires_at < $1")
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(h: &SignedHeaders) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in h.pairs() {
            m.insert(k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn sign_then_verify() {
        let key = SigningKey::from_bytes(&[9u8; 32]);
        let h = sign_request(&key, "GET", "/v1/x?a=1", b"", 1000, "abcdefghijklmnop");
        let m = headers(&h);
        assert!(verify(&m, "GET", "/v1/x?a=1", b"", 1000, 60).is_ok());
        assert_eq!(verify(&m, "GET", "/v1/x?a=2", b"", 1000, 60).unwrap_err().code, "bad_signature");
        assert_eq!(verify(&m, "POST", "/v1/x?a=1", b"", 1000, 60).unwrap_err().code, "bad_signature");
        assert_eq!(verify(&m, "GET", "/v1/x?a=1", b"x", 1000, 60).unwrap_err().code, "bad_signature");
        assert_eq!(verify(&m, "GET", "/v1/x?a=1", b"", 1100, 60).unwrap_err().code, "stale_timestamp");
    }
}
