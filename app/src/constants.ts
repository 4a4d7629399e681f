import { PublicKey } from "@solana/web3.js";

import { IDL_PROGRAM_ID } from "./coder.js";

/** The Ephemeral Vault program's address (from the IDL). Every helper takes another as an option. */
export const PROGRAM_ID: PublicKey = IDL_PROGRAM_ID;

/** The upgradeable BPF loader, owner of the program's ProgramData account. */
export const BPF_LOADER_UPGRADEABLE_ID = new PublicKey("BPFLoaderUpgradeab1e11111111111111111111111");

/** The SPL Token program. */
export const TOKEN_PROGRAM_ID = new PublicKey("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");

/** The Token-2022 program. */
export const TOKEN_2022_PROGRAM_ID = new PublicKey("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");

/** The associated token account program. */
export const ASSOCIATED_TOKEN_PROGRAM_ID = new PublicKey("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL");

/** PDA seeds, as the program's `state/seeds.rs` defines them. */
export const CONFIG_SEED = new TextEncoder().encode("config");
export const VAULT_SEED = new TextEncoder().encode("vault");
export const VAULT_TOKEN_SEED = new TextEncoder().encode("vault_token");
export const EVENT_AUTHORITY_SEED = new TextEncoder().encode("__event_authority");

/** Length of a session id (a UUID's 16 bytes). */
export const SESSION_ID_LENGTH = 16;

/** Most trade destinations a session's allow-list can hold (`constants.rs`). */
export const MAX_DESTINATIONS = 4;

/** Basis-point denominator of the cleanup reward share. */
export const BPS_DENOMINATOR = 10_000n;

/** Anchor's `EVENT_IX_TAG` (0x1d9acb512ea545e4), little-endian: the first 8 bytes of an `emit_cpi!` inner instruction. */
export const EVENT_IX_TAG_LE = Uint8Array.from([0xe4, 0x45, 0xa5, 0x2e, 0x51, 0xcb, 0x9a, 0x1d]);

/** Anchor's first custom error code; the program's own errors start here. */
export const ERROR_CODE_OFFSET = 6000;

/** Size of the vault account (8-byte discriminator + fields), as `state/vault.rs` documents. */
export const VAULT_ACCOUNT_SIZE = 384;

/** Size of the config account. */
export const CONFIG_ACCOUNT_SIZE = 140;

export const LAMPORTS_PER_SOL = 1_000_000_000n;

/**
 * The newest transaction version this package reads: @solana/web3.js 1.x parses "legacy" and
 * version 0 only. Asked for as `maxSupportedTransactionVersion`, so a node answers a newer
 * transaction with an error (an UnsupportedTransactionVersionError here) instead of a response
 * web3.js would fail to parse.
 */
export const MAX_SUPPORTED_TRANSACTION_VERSION = 0;
