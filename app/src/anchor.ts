// `@ephemeral-vault/client/anchor`: Anchor's own typed client for the program, for code that
// prefers Anchor's API (`program.methods.createSession(...)`, `program.account.vault.fetch(...)`)
// or needs a provider. It loads `@anchor-lang/core` (an optional peer dependency), which in a
// browser bundle relies on a global `Buffer`; the main entry needs neither.
import { Program, type Provider } from "@anchor-lang/core";
import type { PublicKey } from "@solana/web3.js";

import { IDL, type EphemeralVault } from "./idl/index.js";

export { IDL, CAMEL_IDL, coder, type EphemeralVault } from "./idl/index.js";

/** `new Program(IDL, provider)`, for another deployment's program id when given. */
export function vaultProgram(provider: Provider, programId?: PublicKey): Program<EphemeralVault> {
  const idl = programId ? ({ ...IDL, address: programId.toBase58() } as EphemeralVault) : IDL;
  return new Program<EphemeralVault>(idl, provider);
}
