//! Fixed limits of the program. Anything a deployment may want to tune lives in `state::Config`
//! instead, so it can change without a redeploy.

/// Most destinations a session's trade allow-list can hold. Fixed so the vault's size is fixed.
pub const MAX_DESTINATIONS: usize = 4;

/// Basis-point denominator for the cleanup reward share.
pub const BPS_DENOMINATOR: u64 = 10_000;

/// Hard ceiling for `Config::max_session_duration` (30 days): a "short-lived" session that could
/// be configured to last years would defeat the point of an ephemeral key.
pub const MAX_SESSION_DURATION_CEILING: i64 = 30 * 24 * 60 * 60;
