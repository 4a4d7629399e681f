// The program's IDL at run time, without Anchor's TypeScript client: instruction data, account
// and event decoding through this package's own Borsh codec (internal/borsh.ts), which needs no
// Buffer. Anchor's `Program` and `BorshCoder` stay available from `@ephemeral-vault/client/anchor`.
import { PublicKey } from "@solana/web3.js";

import rawIdl from "./idl/ephemeral_vault.json" with { type: "json" };
import type { EphemeralVault } from "./idl/ephemeral_vault.js";
import { bytesEqual, toHex } from "./internal/bytes.js";
import { BorshDecodeError, camelCase, IdlCodec, type IdlField, type IdlTypeDefinition, type IdlTypeSpec } from "./internal/borsh.js";

export type { EphemeralVault } from "./idl/ephemeral_vault.js";
export { BorshDecodeError } from "./internal/borsh.js";

/**
 * The program's IDL exactly as the program's build wrote it (snake_case names). Pass it to
 * Anchor's `new Program(IDL, provider)` when you want Anchor's own API (or use
 * `vaultProgram` from `@ephemeral-vault/client/anchor`).
 */
export const IDL = rawIdl as unknown as EphemeralVault;

/** The program id the IDL was built for. */
export const IDL_PROGRAM_ID = new PublicKey(rawIdl.address);

/** The raw IDL's error table: `{ code, name, msg }` for every program error, from 6000 on. */
export const IDL_ERRORS: ReadonlyArray<{ code: number; name: string; msg: string }> = (
  (rawIdl as { errors?: { code: number; name: string; msg?: string }[] }).errors ?? []
).map((e) => ({ code: e.code, name: e.name, msg: e.msg ?? e.name }));

interface RawAccountItem {
  name: string;
  writable?: boolean;
  signer?: boolean;
  optional?: boolean;
  accounts?: RawAccountItem[];
}

interface RawIdl {
  instructions: { name: string; discriminator: number[]; accounts: RawAccountItem[]; args: IdlField[] }[];
  accounts?: { name: string; discriminator: number[] }[];
  events?: { name: string; discriminator: number[] }[];
  types?: { name: string; type: IdlTypeDefinition }[];
}

const RAW = rawIdl as unknown as RawIdl;

/** An instruction account as the builders use it: camelCase name and the IDL's flags. */
export interface InstructionAccountSpec {
  name: string;
  signer: boolean;
  writable: boolean;
  optional: boolean;
}

/** One instruction of the IDL, with camelCase names and its accounts flattened in order. */
export interface InstructionSpec {
  /** camelCase, as the builders and Anchor's client name it. */
  name: string;
  /** As in the IDL (snake_case). */
  idlName: string;
  discriminator: Uint8Array;
  accounts: InstructionAccountSpec[];
  args: ReadonlyArray<IdlField>;
}

function flatten(items: RawAccountItem[]): InstructionAccountSpec[] {
  return items.flatMap((a) =>
    a.accounts
      ? flatten(a.accounts)
      : [{ name: camelCase(a.name), signer: a.signer === true, writable: a.writable === true, optional: a.optional === true }],
  );
}

/** The IDL's instructions by camelCase name. */
export const INSTRUCTIONS: ReadonlyMap<string, InstructionSpec> = new Map(
  RAW.instructions.map((ix) => [
    camelCase(ix.name),
    {
      name: camelCase(ix.name),
      idlName: ix.name,
      discriminator: Uint8Array.from(ix.discriminator),
      accounts: flatten(ix.accounts),
      args: ix.args,
    },
  ]),
);

const codec = new IdlCodec(RAW.types ?? []);
const ACCOUNTS = new Map((RAW.accounts ?? []).map((a) => [a.name, Uint8Array.from(a.discriminator)]));
const EVENTS = (RAW.events ?? []).map((e) => ({ name: e.name, discriminator: Uint8Array.from(e.discriminator) }));

/** The account names of the IDL (`"Vault"`, `"Config"`). */
export type VaultAccountName = "Vault" | "Config";

/**
 * The program's Borsh encoding, from its IDL, on plain Uint8Arrays. Values use camelCase field
 * names; u64 and wider are bigints (numbers accepted when safe), i64 decodes as number, byte
 * arrays as Uint8Array, unit enum variants as camelCase strings.
 */
export const vaultCoder = Object.freeze({
  /** Instruction data: the discriminator then the arguments (`args` keyed by camelCase name). */
  encodeInstruction(name: string, args: Record<string, unknown>): Uint8Array<ArrayBuffer> {
    const ix = INSTRUCTIONS.get(name);
    if (ix === undefined) throw new Error(`the IDL has no instruction ${name}`);
    return codec.encodeFields(ix.args, args, ix.discriminator);
  },

  /** An account's data: checks the 8-byte discriminator, then decodes the struct. */
  decodeAccount<T = Record<string, unknown>>(name: VaultAccountName, data: Uint8Array): T {
    const disc = ACCOUNTS.get(name);
    if (disc === undefined) throw new Error(`the IDL has no account ${name}`);
    if (data.length < 8 || !bytesEqual(data.subarray(0, 8), disc)) {
      throw new BorshDecodeError(`not a ${name} account (discriminator ${toHex(data.subarray(0, 8))})`);
    }
    return codec.decode({ defined: { name } }, data.subarray(8)).value as T;
  },

  /**
   * An event's bytes (discriminator and body, after the emit_cpi tag). Returns null for an
   * unknown discriminator; `length` is how many body bytes the event took.
   */
  decodeEvent(data: Uint8Array): { name: string; data: Record<string, unknown>; length: number } | null {
    if (data.length < 8) return null;
    const event = EVENTS.find((e) => bytesEqual(data.subarray(0, 8), e.discriminator));
    if (event === undefined) return null;
    const { value, length } = codec.decode({ defined: { name: event.name } }, data.subarray(8));
    return { name: event.name, data: value as Record<string, unknown>, length };
  },

  /** Encodes a value of one of the IDL's types (by its IDL name, e.g. `"PauseSet"`), or of any IDL type spec. */
  encodeType(type: string | IdlTypeSpec, value: unknown): Uint8Array<ArrayBuffer> {
    const spec: IdlTypeSpec = typeof type === "string" && codec.has(type) ? { defined: { name: type } } : type;
    return codec.encode(spec, value);
  },

  /** Decodes a value of one of the IDL's types; throws when bytes are left over. */
  decodeType(type: string | IdlTypeSpec, data: Uint8Array): unknown {
    const spec: IdlTypeSpec = typeof type === "string" && codec.has(type) ? { defined: { name: type } } : type;
    const { value, length } = codec.decode(spec, data);
    if (length !== data.length) throw new BorshDecodeError(`${data.length - length} trailing bytes`);
    return value;
  },
});
