//! Envelope encryption of the ephemeral keypairs at rest.
//!
//! Each session's key material is encrypted with AES-256-GCM under a fresh random data key
//! (DEK); the DEK is wrapped with AES-256-GCM under a key-encryption key (KEK) that comes from
//! configuration (environment or a file), never from the database. The database only ever holds
//! the envelope:
//!
//! ```text
//! offset  size      field
//! 0       1         version (= 1)
//! 1       1         kind: 1 = ed25519 seed (the service can sign with it, for the relay)
//!                         2 = client-sealed: the browser's own envelope (app/src/ephemeral-key.ts),
//!                             opaque to the service, stored for the client to fetch back
//! 2       1         L = length of the key id (1..=64)
//! 3       L         key id (ASCII, [A-Za-z0-9._-])
//! 3+L     12        nonce of the DEK wrap
//! 15+L    48        wrapped DEK (32) + GCM tag (16)
//! 63+L    12        nonce of the payload
//! 75+L    n + 16    encrypted payload + GCM tag
//! ```
//!
//! Associated data binds each layer to its place: the wrap to the version, the key id and the
//! session id; the payload to the version, the kind, the session id and the ephemeral wallet. So
//! an envelope copied onto another session, or relabelled with another kind, does not open.
//! Rotation ([`rotate_kek`]) unwraps the DEK with the old KEK and wraps it with the new one;
//! the payload (and its ciphertext) is never touched, so keypairs are never decrypted for it.
//!
//! Secrets are held in [`Zeroizing`] buffers and wiped on drop; every type holding one has a
//! Debug impl that prints no secret.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use sqlx::PgPool;
use zeroize::{Zeroize, Zeroizing};

pub const ENVELOPE_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const DEK_LEN: usize = 32;
const MAX_KEY_ID_LEN: usize = 64;
/// The largest payload sealed (the browser envelope is 125 bytes; a seed 32).
pub const MAX_PAYLOAD_LEN: usize = 1024;

/// What the envelope carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// The 32-byte ed25519 seed of the ephemeral wallet: the relay can sign with it.
    Seed = 1,
    /// The browser's own encrypted envelope, which only the parent wallet can open.
    ClientSealed = 2,
}

impl KeyKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Seed),
            2 => Some(Self::ClientSealed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Seed => "seed",
            Self::ClientSealed => "client_sealed",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the envelope is malformed")]
    Malformed,
    #[error("unsupported envelope version {0}")]
    Version(u8),
    #[error("no key-encryption key with id {0:?} is configured")]
    UnknownKeyId(String),
    #[error("the envelope does not open (wrong key, wrong session, or changed bytes)")]
    Decrypt,
    #[error("invalid key-encryption key configuration: {0}")]
    Config(String),
    #[error("payload too large")]
    TooLarge,
}

/// One key-encryption key. Debug shows its id only.
pub struct Kek {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek").field("id", &self.id).field("key", &"<redacted>").finish()
    }
}

impl Kek {
    pub fn new(id: impl Into<String>, key: [u8; 32]) -> Result<Self, CryptoError> {
        let id = id.into();
        check_key_id(&id)?;
        Ok(Self { id, key: Zeroizing::new(key) })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.key.as_ref()))
    }
}

fn check_key_id(id: &str) -> Result<(), CryptoError> {
    if id.is_empty()
        || id.len() > MAX_KEY_ID_LEN
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(CryptoError::Config(format!(
            "key id {id:?} must be 1..={MAX_KEY_ID_LEN} characters of [A-Za-z0-9._-]"
        )));
    }
    Ok(())
}

/// The configured KEKs by id, and the one new envelopes are wrapped under.
pub struct Keyring {
    keys: BTreeMap<String, Kek>,
    active: String,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("active", &self.active)
            .finish()
    }
}

impl Keyring {
    pub fn new(keys: Vec<Kek>, active: &str) -> Result<Self, CryptoError> {
        let mut map = BTreeMap::new();
        for k in keys {
            if map.contains_key(&k.id) {
                return Err(CryptoError::Config(format!("key id {:?} given twice", k.id)));
            }
            map.insert(k.id.clone(), k);
        }
        if !map.contains_key(active) {
            return Err(CryptoError::Config(format!("the active key id {active:?} is not among the keys")));
        }
        Ok(Self { keys: map, active: active.to_string() })
    }

    /// Parses `id=base64key` entries separated by commas, semicolons or newlines (blank lines and
    /// lines starting with `#` are skipped). Each key is 32 bytes, standard base64.
    pub fn parse(spec: &str, active: &str) -> Result<Self, CryptoError> {
        let mut keys = Vec::new();
        for entry in spec.split([',', ';', '\n']) {
            let entry = entry.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let (id, b64) = entry.split_once('=').ok_or_else(|| CryptoError::Config("expected id=base64key".into()))?;
            let mut raw = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| CryptoError::Config(format!("key {:?} is not base64", id.trim())))?,
            );
            if raw.len() != 32 {
                return Err(CryptoError::Config(format!("key {:?} must be 32 bytes", id.trim())));
            }
            let mut key = [0u8; 32];
            key.copy_from_slice(&raw);
            raw.zeroize();
            let kek = Kek::new(id.trim(), key);
            key.zeroize();
            keys.push(kek?);
        }
        Self::new(keys, active)
    }

    /// A keyring with one fresh random key, for tests and first deployments.
    pub fn generate(id: &str) -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        let kek = Kek::new(id, key).expect("valid key id");
        key.zeroize();
        Self::new(vec![kek], id).expect("one key")
    }

    pub fn active_id(&self) -> &str {
        &self.active
    }

    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    fn kek(&self, id: &str) -> Result<&Kek, CryptoError> {
        self.keys.get(id).ok_or_else(|| CryptoError::UnknownKeyId(id.to_string()))
    }

    /// Seals `payload` for one session under the active KEK.
    pub fn seal(
        &self,
        session_id: &str,
        ephemeral_wallet: &str,
        kind: KeyKind,
        payload: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(CryptoError::TooLarge);
        }
        let kek = self.kek(&self.active)?;
        let mut dek = Zeroizing::new([0u8; DEK_LEN]);
        OsRng.fill_bytes(dek.as_mut());
        let mut out = header(kind, &kek.id);
        wrap_dek(kek, session_id, &dek, &mut out)?;
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(dek.as_ref()));
        let aad = payload_aad(kind, session_id, ephemeral_wallet);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: payload, aad: &aad })
            .map_err(|_| CryptoError::Decrypt)?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens an envelope: the kind and the payload (wiped when dropped).
    pub fn open(
        &self,
        envelope: &[u8],
        session_id: &str,
        ephemeral_wallet: &str,
    ) -> Result<(KeyKind, Zeroizing<Vec<u8>>), CryptoError> {
        let parsed = Parsed::parse(envelope)?;
        let kek = self.kek(parsed.key_id)?;
        let dek = unwrap_dek(kek, session_id, &parsed)?;
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(dek.as_ref()));
        let aad = payload_aad(parsed.kind, session_id, ephemeral_wallet);
        let pt = cipher
            .decrypt(Nonce::from_slice(parsed.payload_nonce), Payload { msg: parsed.payload_ct, aad: &aad })
            .map_err(|_| CryptoError::Decrypt)?;
        Ok((parsed.kind, Zeroizing::new(pt)))
    }

    /// The same envelope with its DEK re-wrapped under `new_id`. The payload's ciphertext is
    /// copied unchanged.
    pub fn rewrap(&self, envelope: &[u8], session_id: &str, new_id: &str) -> Result<Vec<u8>, CryptoError> {
        let parsed = Parsed::parse(envelope)?;
        let old = self.kek(parsed.key_id)?;
        let new = self.kek(new_id)?;
        let dek = unwrap_dek(old, session_id, &parsed)?;
        let mut out = header(parsed.kind, &new.id);
        wrap_dek(new, session_id, &dek, &mut out)?;
        out.extend_from_slice(parsed.payload_nonce);
        out.extend_from_slice(parsed.payload_ct);
        Ok(out)
    }
}

/// The key id an envelope's DEK is wrapped under, without opening anything.
pub fn envelope_key_id(envelope: &[u8]) -> Result<&str, CryptoError> {
    Ok(Parsed::parse(envelope)?.key_id)
}

/// The kind of an envelope, without opening anything.
pub fn envelope_kind(envelope: &[u8]) -> Result<KeyKind, CryptoError> {
    Ok(Parsed::parse(envelope)?.kind)
}

fn header(kind: KeyKind, key_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + key_id.len() + 2 * NONCE_LEN + DEK_LEN + 2 * TAG_LEN + 160);
    out.push(ENVELOPE_VERSION);
    out.push(kind as u8);
    out.push(key_id.len() as u8);
    out.extend_from_slice(key_id.as_bytes());
    out
}

fn wrap_aad(key_id: &str, session_id: &str) -> Vec<u8> {
    let mut aad = b"ephemeral-vault/service/dek/v1\0".to_vec();
    aad.push(ENVELOPE_VERSION);
    aad.push(key_id.len() as u8);
    aad.extend_from_slice(key_id.as_bytes());
    aad.extend_from_slice(session_id.as_bytes());
    aad
}

fn payload_aad(kind: KeyKind, session_id: &str, ephemeral_wallet: &str) -> Vec<u8> {
    let mut aad = b"ephemeral-vault/service/payload/v1\0".to_vec();
    aad.push(ENVELOPE_VERSION);
    aad.push(kind as u8);
    aad.push(session_id.len() as u8);
    aad.extend_from_slice(session_id.as_bytes());
    aad.push(ephemeral_wallet.len() as u8);
    aad.extend_from_slice(ephemeral_wallet.as_bytes());
    aad
}

fn wrap_dek(kek: &Kek, session_id: &str, dek: &[u8; DEK_LEN], out: &mut Vec<u8>) -> Result<(), CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let aad = wrap_aad(&kek.id, session_id);
    let wrapped = kek
        .cipher()
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: dek, aad: &aad })
        .map_err(|_| CryptoError::Decrypt)?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&wrapped);
    Ok(())
}

fn unwrap_dek(kek: &Kek, session_id: &str, parsed: &Parsed<'_>) -> Result<Zeroizing<[u8; DEK_LEN]>, CryptoError> {
    let aad = wrap_aad(parsed.key_id, session_id);
    let plain = Zeroizing::new(
        kek.cipher()
            .decrypt(Nonce::from_slice(parsed.wrap_nonce), Payload { msg: parsed.wrapped_dek, aad: &aad })
            .map_err(|_| CryptoError::Decrypt)?,
    );
    if plain.len() != DEK_LEN {
        return Err(CryptoError::Malformed);
    }
    let mut dek = Zeroizing::new([0u8; DEK_LEN]);
    dek.copy_from_slice(&plain);
    Ok(dek)
}

struct Parsed<'a> {
    kind: KeyKind,
    key_id: &'a str,
    wrap_nonce: &'a [u8],
    wrapped_dek: &'a [u8],
    payload_nonce: &'a [u8],
    payload_ct: &'a [u8],
}

impl<'a> Parsed<'a> {
    fn parse(b: &'a [u8]) -> Result<Self, CryptoError> {
        if b.len() < 3 {
            return Err(CryptoError::Malformed);
        }
        if b[0] != ENVELOPE_VERSION {
            return Err(CryptoError::Version(b[0]));
        }
        let kind = KeyKind::from_byte(b[1]).ok_or(CryptoError::Malformed)?;
        let l = usize::from(b[2]);
        if l == 0 || l > MAX_KEY_ID_LEN {
            return Err(CryptoError::Malformed);
        }
        let fixed = 3 + l + NONCE_LEN + DEK_LEN + TAG_LEN + NONCE_LEN + TAG_LEN;
        if b.len() < fixed {
            return Err(CryptoError::Malformed);
        }
        let key_id = std::str::from_utf8(&b[3..3 + l]).map_err(|_| CryptoError::Malformed)?;
        let mut at = 3 + l;
        let wrap_nonce = &b[at..at + NONCE_LEN];
        at += NONCE_LEN;
        let wrapped_dek = &b[at..at + DEK_LEN + TAG_LEN];
        at += DEK_LEN + TAG_LEN;
        let payload_nonce = &b[at..at + NONCE_LEN];
        at += NONCE_LEN;
        Ok(Self { kind, key_id, wrap_nonce, wrapped_dek, payload_nonce, payload_ct: &b[at..] })
    }
}

// ----- rotation -----

/// What a rotation run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RotationReport {
    /// Envelopes re-wrapped under the target key by this run.
    pub rewrapped: u64,
    /// Batches committed by this run.
    pub batches: u64,
    /// Whether every envelope is now under the target key (false when stopped early).
    pub complete: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("session {session_id}: {source}")]
    Envelope { session_id: String, source: CryptoError },
}

/// Re-wraps every data key that is not yet under the keyring's active KEK.
///
/// Rows are taken in `id` order, `batch_size` at a time, each batch in its own database
/// transaction with its rows locked (`FOR UPDATE`), so a run interrupted at any point leaves
/// every row either fully old or fully new, and the next run skips the rows already under the
/// target key. `max_batches` stops the run early (for operators who spread a rotation over
/// several windows, and for the tests of resumption). The keyring must hold both the old KEKs
/// and the target one. Concurrent registrations are sealed under the active key already.
pub async fn rotate_kek(
    pool: &PgPool,
    keyring: &Keyring,
    batch_size: u32,
    max_batches: Option<u64>,
) -> Result<RotationReport, RotationError> {
    let target = keyring.active_id().to_string();
    let target_bytes = target.as_bytes().to_vec();
    let mut report = RotationReport::default();
    let mut last_id: i32 = 0;
    loop {
        if max_batches.is_some_and(|m| report.batches >= m) {
            return Ok(report);
        }
        let mut tx = pool.begin().await?;
        // The key id sits at bytes 4..4+L (1-based) of the envelope, L being byte 2 (0-based).
        let rows: Vec<(i32, String, Vec<u8>)> = sqlx::query_as(
            "SELECT id, session_id, encrypted_keypair FROM ephemeral_sessions
             WHERE id > $1 AND encrypted_keypair IS NOT NULL
               AND (octet_length(encrypted_keypair) < 3
                    OR substring(encrypted_keypair FROM 4
                                 FOR CASE WHEN octet_length(encrypted_keypair) >= 3
                                          THEN get_byte(encrypted_keypair, 2) ELSE 0 END) <> $2)
             ORDER BY id
             LIMIT $3
             FOR UPDATE",
        )
        .bind(last_id)
        .bind(&target_bytes)
        .bind(i64::from(batch_size.max(1)))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            report.complete = true;
            return Ok(report);
        }
        for (id, session_id, envelope) in &rows {
            let new = keyring
                .rewrap(envelope, session_id, &target)
                .map_err(|source| RotationError::Envelope { session_id: session_id.clone(), source })?;
            sqlx::query("UPDATE ephemeral_sessions SET encrypted_keypair = $2 WHERE id = $1")
                .bind(id)
                .bind(new)
                .execute(&mut *tx)
                .await?;
            last_id = *id;
        }
        tx.commit().await?;
        report.rewrapped += rows.len() as u64;
        report.batches += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_rewrap() {
        let k1 = Keyring::generate("k1");
        let sid = "6f1c2a9e-0000-4000-8000-000000000001";
        let env = k1.seal(sid, "W", KeyKind::Seed, &[7u8; 32]).unwrap();
        assert_eq!(envelope_key_id(&env).unwrap(), "k1");
        let (kind, pt) = k1.open(&env, sid, "W").unwrap();
        assert_eq!((kind, pt.as_slice()), (KeyKind::Seed, &[7u8; 32][..]));
        assert_eq!(k1.open(&env, "other", "W").unwrap_err(), CryptoError::Decrypt);
        assert_eq!(k1.open(&env, sid, "X").unwrap_err(), CryptoError::Decrypt);
        let mut flipped = env.clone();
        flipped[1] = KeyKind::ClientSealed as u8;
        assert_eq!(k1.open(&flipped, sid, "W").unwrap_err(), CryptoError::Decrypt);

        let mut raw1 = [0u8; 32];
        raw1[0] = 1;
        let mut raw2 = [0u8; 32];
        raw2[0] = 2;
        let ring = Keyring::new(vec![Kek::new("a", raw1).unwrap(), Kek::new("b", raw2).unwrap()], "b").unwrap();
        let env_a =
            Keyring::new(vec![Kek::new("a", raw1).unwrap()], "a").unwrap().seal(sid, "W", KeyKind::Seed, b"x").unwrap();
        let env_b = ring.rewrap(&env_a, sid, "b").unwrap();
        assert_eq!(envelope_key_id(&env_b).unwrap(), "b");
        assert_eq!(env_a[env_a.len() - 17..], env_b[env_b.len() - 17..], "payload untouched");
        assert_eq!(ring.open(&env_b, sid, "W").unwrap().1.as_slice(), b"x");
        assert!(format!("{ring:?}").contains("key_ids"));
        assert!(!format!("{:?}", Kek::new("a", raw1).unwrap()).contains("1, 0"));
    }

    #[test]
    fn parse_keyring_spec() {
        let spec = "# comment\nold=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n new = AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        let ring = Keyring::parse(spec, "new").unwrap();
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), vec!["new", "old"]);
        assert!(Keyring::parse("a=AAAA", "a").is_err());
        assert!(Keyring::parse(spec, "missing").is_err());
    }
}
