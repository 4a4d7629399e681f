//! Readable refusals: a failed transaction's custom error code turned into the program's name
//! and message for that error (what `vault_transactions.error_message` stores, and what the
//! relay and the bot report).

use ephemeral_vault::errors::VaultError;

/// The program's error for a custom code, if the code is one of the program's (6000 and up).
pub fn vault_error(custom_code: Option<u32>) -> Option<VaultError> {
    custom_code.and_then(ephemeral_vault::sdk::vault_error)
}

/// `Name (code): message` for one of the program's errors, else `fallback` (the chain's own
/// wording of the failure).
pub fn describe(custom_code: Option<u32>, fallback: &str) -> String {
    match vault_error(custom_code) {
        Some(error) => format!("{error:?} ({}): {error}", custom_code.unwrap_or_default()),
        None => fallback.to_string(),
    }
}

/// True when the refusal was the program saying the session had expired.
pub fn is_session_expired(custom_code: Option<u32>) -> bool {
    matches!(vault_error(custom_code), Some(VaultError::SessionExpired))
}
