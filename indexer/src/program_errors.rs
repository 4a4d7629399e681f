//! Readable refusals: a failed transaction's custom error code turned into the program's name
//! and message for that error (what `vault_transactions.error_message` stores).

use crate::chain_tx::TxFailure;

pub fn describe(failure: &TxFailure) -> String {
    match failure.custom_code.and_then(ephemeral_vault::sdk::vault_error) {
        Some(error) => format!("{error:?} ({}): {error}", failure.custom_code.unwrap_or_default()),
        None => failure.message.clone(),
    }
}

/// True when the refusal was the program saying the session had expired.
pub fn is_session_expired(failure: &TxFailure) -> bool {
    failure
        .custom_code
        .and_then(ephemeral_vault::sdk::vault_error)
        .is_some_and(|e| matches!(e, ephemeral_vault::errors::VaultError::SessionExpired))
}
