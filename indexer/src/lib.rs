//! Off-chain side of the Ephemeral Vault System.

pub mod db;
pub mod alerts;
pub mod chain_tx;
pub mod decode;
pub mod geyser_replay;
pub mod ingest;
pub mod program_errors;
pub mod sources;
pub mod metrics;
pub mod pipeline;
pub mod service;
pub mod cleanup_bot;
pub mod keypair_file;
pub mod logging;
pub mod scenario;
pub mod summary;
