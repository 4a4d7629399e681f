//! What every binary of the Ephemeral Vault System shares: [`logging`] to stderr, and
//! [`settings`], the one way a binary is configured (flags, then environment variables, then an
//! optional TOML file, then defaults).
//!
//! Depends on clap's conventions, serde and toml only; nothing of the chain or the database.

pub mod logging;
pub mod settings;
