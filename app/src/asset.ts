import { TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID, getAssociatedTokenAddressSync } from "@solana/spl-token";
import { PublicKey } from "@solana/web3.js";

import { PROGRAM_ID } from "./constants.js";
import { vaultAddress, vaultTokenAddress } from "./pda.js";
import { asSessionId, type SessionId } from "./session-id.js";

/** What a session holds: native SOL, or one mint of the SPL Token or Token-2022 program. */
export type Asset =
  | { readonly kind: "sol" }
  | { readonly kind: "token"; readonly mint: PublicKey; readonly tokenProgram: PublicKey };

/** A native SOL session. */
export const SOL: Asset = Object.freeze({ kind: "sol" });

/** A session in `mint`, a mint of the classic SPL Token program unless told otherwise. */
export function splToken(mint: PublicKey, tokenProgram: PublicKey = TOKEN_PROGRAM_ID): Asset {
  return Object.freeze({ kind: "token", mint, tokenProgram });
}

/** A session in a Token-2022 mint. */
export function token2022(mint: PublicKey): Asset {
  return splToken(mint, TOKEN_2022_PROGRAM_ID);
}

export function isSol(asset: Asset): asset is { kind: "sol" } {
  return asset.kind === "sol";
}

/** The asset a vault records: `mint == Pubkey::default()` means SOL. */
export function assetFromVault(mint: PublicKey, tokenProgram: PublicKey): Asset {
  return mint.equals(PublicKey.default) ? SOL : splToken(mint, tokenProgram);
}

/** The associated token account of `owner` for a token asset (owners off the curve allowed). */
export function associatedTokenAccount(asset: Asset, owner: PublicKey): PublicKey {
  if (asset.kind !== "token") throw new TypeError("a SOL session has no token accounts");
  return getAssociatedTokenAddressSync(asset.mint, owner, true, asset.tokenProgram);
}

/** Names one session: enough to derive every account its instructions need. */
export interface SessionRef {
  readonly parent: PublicKey;
  readonly sessionId: SessionId;
  readonly asset: Asset;
  /** The program the session lives in; this package's PROGRAM_ID when absent. */
  readonly programId?: PublicKey;
}

export function sessionRef(
  parent: PublicKey,
  sessionId: SessionId | string,
  asset: Asset = SOL,
  programId: PublicKey = PROGRAM_ID,
): SessionRef {
  return Object.freeze({ parent, sessionId: asSessionId(sessionId), asset, programId });
}

export function sessionProgramId(session: SessionRef): PublicKey {
  return session.programId ?? PROGRAM_ID;
}

export function sessionVault(session: SessionRef): PublicKey {
  return vaultAddress(session.parent, session.sessionId, sessionProgramId(session));
}

/** The vault's token account, or null for a SOL session. */
export function sessionVaultTokenAccount(session: SessionRef): PublicKey | null {
  return session.asset.kind === "token"
    ? vaultTokenAddress(sessionVault(session), sessionProgramId(session))
    : null;
}

export { TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID };
