//! What the off-chain programs share to talk to the Solana chain about the Ephemeral Vault
//! program: one JSON-RPC client builder ([`rpc`]), sending and confirming transactions
//! ([`send`]), naming the program's refusals ([`program_errors`]), Solana CLI keypair files
//! ([`keypair_file`]), associated token accounts ([`token_accounts`]) and retry backoff
//! ([`retry`]).
//!
//! Depends on the program crate (for its ids and error codes) and Solana's client crates only:
//! no database, no HTTP server, no gRPC.

pub mod keypair_file;
pub mod program_errors;
pub mod retry;
pub mod rpc;
pub mod send;
pub mod token_accounts;

pub use retry::Backoff;
pub use send::{await_confirmed, Chain, ChainError, RpcChain, Sent};
