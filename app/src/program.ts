import { Program, type Provider } from "@anchor-lang/core";
import { PublicKey } from "@solana/web3.js";

import { IDL, type EphemeralVault } from "./idl/index.js";

/**
 * Anchor's own typed client for the program (`program.methods.createSession(...)`,
 * `program.account.vault.fetch(...)`), for code that prefers Anchor's API or needs a provider.
 */
export function vaultProgram(provider: Provider, programId?: PublicKey): Program<EphemeralVault> {
  const idl = programId ? ({ ...IDL, address: programId.toBase58() } as EphemeralVault) : IDL;
  return new Program<EphemeralVault>(idl, provider);
}
