//! A litesvm world with the real `ephemeral_vault.so` deployed: the program's tests, its
//! compute-unit benchmark and the indexer's fixtures all run the program through this. The
//! test-only router ([`router`]) and v0 transactions with lookup tables ([`lookup`]) give the
//! indexer's fixtures the shapes other programs and wallets give vault instructions.

// A refused transaction carries the runtime's whole metadata (logs, compute units) so tests can
// show it; its size does not matter here.
#![allow(clippy::result_large_err)]

pub mod lookup;
pub mod router;
pub mod sessions;
pub mod tokens;
pub mod world;

pub use sessions::*;
pub use tokens::*;
pub use world::*;

/// `12345` as `12,345`: figures as the README prints them (the compute-unit benchmark, and the
/// test that checks the README's rent table).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
