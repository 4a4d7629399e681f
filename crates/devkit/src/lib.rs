//! The dev kit: everything that exercises the deployable crates without being one of them. The
//! main job's [`scenario`] and its [`summary`] (driven by `vault-demo`), the Geyser replay server
//! that stands in for a Yellowstone endpoint ([`geyser_replay`]) and the JSON-RPC server beside it
//! that misbehaves on command ([`rpc_server`]), transactions the testkit
//! executed in the shapes a node delivers ([`recorded`]), the real program in litesvm behind the
//! relay's and the bot's chain traits ([`litesvm_chain`]), a signed client for the session
//! service ([`service_client`]), fresh PostgreSQL databases and fixtures for tests
//! ([`test_db`]), and the benchmarks under `src/bin`.
//!
//! Depends on every crate of the workspace; none of them depends on it except as a
//! dev-dependency of their tests.

pub mod geyser_replay;
pub mod litesvm_chain;
pub mod recorded;
pub mod rpc_server;
pub mod scenario;
pub mod service_client;
pub mod summary;
pub mod test_db;
