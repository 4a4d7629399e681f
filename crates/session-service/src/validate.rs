//! Input validation: every value from a request passes through one of these before use.

use anchor_lang::prelude::Pubkey;
use serde::{Deserialize, Deserializer};

use super::error::ApiError;

/// A base58 public key of exactly 32 bytes, in its canonical spelling.
pub fn pubkey(field: &str, s: &str) -> Result<Pubkey, ApiError> {
    let bad = || ApiError::bad_request("invalid_pubkey", format!("{field} must be a base58 public key of 32 bytes"));
    if !(32..=44).contains(&s.len()) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    let n = bs58::decode(s).onto(&mut out).map_err(|_| bad())?;
    if n != 32 {
        return Err(bad());
    }
    let key = Pubkey::new_from_array(out);
    if key.to_string() != s {
        return Err(bad());
    }
    Ok(key)
}

/// A session id: a UUID, returned in the database's canonical lowercase hyphenated form with
/// its 16 bytes (the on-chain id).
pub fn session_id(s: &str) -> Result<(String, [u8; 16]), ApiError> {
    if s.len() > 36 {
        return Err(ApiError::bad_request("invalid_session_id", "session_id must be a UUID"));
    }
    let id = uuid::Uuid::parse_str(s)
        .map_err(|_| ApiError::bad_request("invalid_session_id", "session_id must be a UUID"))?;
    Ok((id.hyphenated().to_string(), *id.as_bytes()))
}

/// A transaction signature: base58 of 64 bytes.
pub fn signature(s: &str) -> Result<(), ApiError> {
    let bad = || ApiError::bad_request("invalid_signature", "a signature is base58 of 64 bytes");
    if !(64..=88).contains(&s.len()) {
        return Err(bad());
    }
    let mut out = [0u8; 64];
    match bs58::decode(s).onto(&mut out) {
        Ok(64) => Ok(()),
        _ => Err(bad()),
    }
}

/// Printable ASCII of 1..=max characters (device fingerprints, resolver notes).
pub fn printable(field: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > max || !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("{field} must be 1..={max} printable ASCII characters"),
        ));
    }
    Ok(())
}

/// A u64 amount from JSON: a string of decimal digits (what JavaScript clients must send above
/// 2^53) or a non-negative integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct U64(#[serde(serialize_with = "as_string")] pub u64);

fn as_string<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d).map_err(|_| serde::de::Error::custom("expected a u64 (number or decimal string)"))? {
            Raw::N(n) => Ok(U64(n)),
            Raw::S(s) => {
                if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(serde::de::Error::custom("expected a u64 as a decimal string"));
                }
                s.parse().map(U64).map_err(|_| serde::de::Error::custom("amount exceeds u64"))
            }
        }
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn clip(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Parses a JSON body into `T`, answering 400 with serde's reason on failure.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("invalid_body", clip(&e.to_string(), 300)))
}

/// `limit` and `offset` of a list endpoint.
pub fn page(limit: Option<u32>, offset: Option<u32>, max: u32) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(50);
    if limit == 0 || limit > max {
        return Err(ApiError::bad_request("invalid_limit", format!("limit must be 1..={max}")));
    }
    let offset = offset.unwrap_or(0);
    if offset > 1_000_000 {
        return Err(ApiError::bad_request("invalid_offset", "offset must be at most 1000000"));
    }
    Ok((i64::from(limit), i64::from(offset)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pubkeys() {
        let k = Pubkey::new_unique();
        assert_eq!(pubkey("k", &k.to_string()).unwrap(), k);
        assert!(pubkey("k", "111").is_err());
        assert!(pubkey("k", &format!("{}0", &k.to_string()[..40])).is_err());
        assert!(pubkey("k", &bs58::encode([1u8; 31]).into_string()).is_err());
    }

    #[test]
    fn amounts() {
        assert_eq!(serde_json::from_str::<U64>("\"18446744073709551615\"").unwrap(), U64(u64::MAX));
        assert_eq!(serde_json::from_str::<U64>("12").unwrap(), U64(12));
        assert!(serde_json::from_str::<U64>("\"18446744073709551616\"").is_err());
        assert!(serde_json::from_str::<U64>("-1").is_err());
        assert!(serde_json::from_str::<U64>("1.5").is_err());
        assert!(serde_json::from_str::<U64>("\"0x10\"").is_err());
    }

    #[test]
    fn session_ids() {
        let (s, b) = session_id("6F1C2A9E-0000-4000-8000-000000000001").unwrap();
        assert_eq!(s, "6f1c2a9e-0000-4000-8000-000000000001");
        assert_eq!(b[0], 0x6f);
        assert!(session_id("not-a-uuid").is_err());
    }
}
