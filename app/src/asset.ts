import { PublicKey, SystemProgram, TransactionInstruction } from "@solana/web3.js";

import { ASSOCIATED_TOKEN_PROGRAM_ID, PROGRAM_ID, TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID } from "./constants.js";
import { toWeb3Buffer } from "./internal/web3-bytes.js";
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

/**
 * The associated token account of `owner` for a token asset (owners off the curve allowed): the
 * associated token program's PDA of [owner, token program, mint]. Derived here rather than with
 * @solana/spl-token, parts of which need a global Buffer in browsers.
 */
export function associatedTokenAccount(asset: Asset, owner: PublicKey): PublicKey {
  if (asset.kind !== "token") throw new TypeError("a SOL session has no token accounts");
  return associatedTokenAddress(asset.mint, owner, asset.tokenProgram);
}

/** The associated token account of `owner` for `mint` under `tokenProgram`. */
export function associatedTokenAddress(mint: PublicKey, owner: PublicKey, tokenProgram: PublicKey = TOKEN_PROGRAM_ID): PublicKey {
  return PublicKey.findProgramAddressSync([owner.toBytes(), tokenProgram.toBytes(), mint.toBytes()], ASSOCIATED_TOKEN_PROGRAM_ID)[0];
}

/**
 * The associated token program's `CreateIdempotent` (instruction 1): creates `owner`'s associated
 * token account for `mint` unless it exists; `payer` signs and pays its rent.
 */
export function associatedTokenAccountIdempotentInstruction(p: {
  payer: PublicKey;
  owner: PublicKey;
  mint: PublicKey;
  tokenProgram?: PublicKey;
}): TransactionInstruction {
  const tokenProgram = p.tokenProgram ?? TOKEN_PROGRAM_ID;
  return new TransactionInstruction({
    programId: ASSOCIATED_TOKEN_PROGRAM_ID,
    keys: [
      { pubkey: p.payer, isSigner: true, isWritable: true },
      { pubkey: associatedTokenAddress(p.mint, p.owner, tokenProgram), isSigner: false, isWritable: true },
      { pubkey: p.owner, isSigner: false, isWritable: false },
      { pubkey: p.mint, isSigner: false, isWritable: false },
      { pubkey: SystemProgram.programId, isSigner: false, isWritable: false },
      { pubkey: tokenProgram, isSigner: false, isWritable: false },
    ],
    data: toWeb3Buffer(Uint8Array.of(1)),
  });
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
