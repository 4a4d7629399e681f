//! The one way this workspace builds a JSON-RPC client, so every caller states its timeout and
//! commitment and none inherits solana-rpc-client's defaults (30 s, `finalized`) by accident.

use std::time::Duration;

use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;

/// A nonblocking client for `url`: each request fails after `timeout` (the node is then treated
/// as unavailable for that call), and reads default to `commitment`.
pub fn client(url: &str, timeout: Duration, commitment: CommitmentConfig) -> RpcClient {
    RpcClient::new_with_timeout_and_commitment(url.to_string(), timeout, commitment)
}
