//! Every PDA seed in one place, so the program, the indexer and the TypeScript client derive the
//! same addresses from the same words.

/// `["config"]` - the single deployment-wide configuration account.
pub const CONFIG_SEED: &[u8] = b"config";

/// `["vault", parent, session_id(16 bytes)]` - one vault per session.
pub const VAULT_SEED: &[u8] = b"vault";

/// `["vault_token", vault]` - the vault's token account for SPL / Token-2022 sessions.
pub const VAULT_TOKEN_SEED: &[u8] = b"vault_token";
