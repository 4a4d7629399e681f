import { PublicKey } from "@solana/web3.js";

import {
  BPF_LOADER_UPGRADEABLE_ID,
  CONFIG_SEED,
  EVENT_AUTHORITY_SEED,
  PROGRAM_ID,
  VAULT_SEED,
  VAULT_TOKEN_SEED,
} from "./constants.js";
import { asSessionId, type SessionId } from "./session-id.js";

/** An address with the bump that derived it. */
export interface Pda {
  address: PublicKey;
  bump: number;
}

function find(seeds: Uint8Array[], programId: PublicKey): Pda {
  const [address, bump] = PublicKey.findProgramAddressSync(seeds, programId);
  return { address, bump };
}

// The fixed addresses (config, event authority, program data) are derived once per program id.
const fixed = new Map<string, Pda>();
function findFixed(kind: string, seeds: Uint8Array[], programId: PublicKey, owner = programId): Pda {
  const key = `${kind}:${programId.toBase58()}`;
  let pda = fixed.get(key);
  if (pda === undefined) {
    pda = find(seeds, owner);
    fixed.set(key, pda);
  }
  return { address: pda.address, bump: pda.bump };
}

/** `["config"]`: the deployment's single config account. */
export function findConfigAddress(programId: PublicKey = PROGRAM_ID): Pda {
  return findFixed("config", [CONFIG_SEED], programId);
}

/** `["vault", parent, session_id]`: one vault per session. */
export function findVaultAddress(
  parent: PublicKey,
  sessionId: SessionId | string,
  programId: PublicKey = PROGRAM_ID,
): Pda {
  return find([VAULT_SEED, parent.toBytes(), asSessionId(sessionId)], programId);
}

/** `["vault_token", vault]`: the token account of a token session's vault. */
export function findVaultTokenAddress(vault: PublicKey, programId: PublicKey = PROGRAM_ID): Pda {
  return find([VAULT_TOKEN_SEED, vault.toBytes()], programId);
}

/** `["__event_authority"]`: the PDA that signs the program's `emit_cpi!` self-invocations. */
export function findEventAuthorityAddress(programId: PublicKey = PROGRAM_ID): Pda {
  return findFixed("event_authority", [EVENT_AUTHORITY_SEED], programId);
}

/** The program's ProgramData account (under the upgradeable loader), holding its upgrade authority. */
export function findProgramDataAddress(programId: PublicKey = PROGRAM_ID): Pda {
  return findFixed("program_data", [programId.toBytes()], programId, BPF_LOADER_UPGRADEABLE_ID);
}

export const configAddress = (programId: PublicKey = PROGRAM_ID): PublicKey =>
  findConfigAddress(programId).address;

export const vaultAddress = (
  parent: PublicKey,
  sessionId: SessionId | string,
  programId: PublicKey = PROGRAM_ID,
): PublicKey => findVaultAddress(parent, sessionId, programId).address;

export const vaultTokenAddress = (vault: PublicKey, programId: PublicKey = PROGRAM_ID): PublicKey =>
  findVaultTokenAddress(vault, programId).address;

export const eventAuthorityAddress = (programId: PublicKey = PROGRAM_ID): PublicKey =>
  findEventAuthorityAddress(programId).address;

export const programDataAddress = (programId: PublicKey = PROGRAM_ID): PublicKey =>
  findProgramDataAddress(programId).address;
