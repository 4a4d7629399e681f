import { BorshCoder, convertIdlToCamelCase, type Idl } from "@anchor-lang/core";
import { PublicKey } from "@solana/web3.js";

import rawIdl from "./ephemeral_vault.json" with { type: "json" };
import type { EphemeralVault } from "./ephemeral_vault.js";

export type { EphemeralVault } from "./ephemeral_vault.js";

/**
 * The program's IDL exactly as the program's build wrote it (snake_case names). Pass it to
 * Anchor's `new Program(IDL, provider)` when you want Anchor's own API; the rest of this package
 * does not need a provider.
 */
export const IDL = rawIdl as unknown as EphemeralVault;

/** The IDL with the camelCase names Anchor's coders use, as `Program` converts it on load. */
export const CAMEL_IDL: Idl = convertIdlToCamelCase(structuredClone(rawIdl) as unknown as Idl);

/** The program id the IDL was built for. */
export const IDL_PROGRAM_ID = new PublicKey(rawIdl.address);

/** Anchor's Borsh coder for this program (instructions, accounts, events, types). */
export const coder = new BorshCoder(CAMEL_IDL);

/** The raw IDL's error table: `{ code, name, msg }` for every program error, from 6000 on. */
export const IDL_ERRORS: ReadonlyArray<{ code: number; name: string; msg: string }> =
  (rawIdl.errors ?? []).map((e) => ({ code: e.code, name: e.name, msg: e.msg ?? e.name }));
