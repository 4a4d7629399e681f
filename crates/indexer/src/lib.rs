//! The indexer: the Ephemeral Vault program's transactions from a datasource (Yellowstone gRPC
//! or JSON-RPC, [`sources`]) through the decoder ([`decode`]) into PostgreSQL ([`ingest`]),
//! exactly once, with the chain's alert rules ([`alerts`]), Prometheus [`metrics`], and the
//! [`pipeline`] that ties them together and commits the cursor with the rows; [`reprocess`]
//! reads again what a source or the decoder could not read; [`writer_lock`] makes one of several
//! indexers the writer and the others standbys.
//!
//! Depends on `vault-chain` and `vault-db`; never on the session service, the cleanup bot or the
//! dev kit (those are dev-dependencies of its tests only).

pub mod alerts;
pub mod chain_tx;
pub mod decode;
pub mod ingest;
pub mod metrics;
pub mod pipeline;
pub mod reprocess;
pub mod sources;
pub mod writer_lock;
