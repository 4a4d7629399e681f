// One builder per program instruction, returning a web3.js TransactionInstruction. Account order,
// signer and writable flags come from the IDL, so they cannot drift from the program; the
// builders only decide which address goes where (mirroring the program's Rust `sdk.rs`).
import { PublicKey, SystemProgram, TransactionInstruction, type AccountMeta } from "@solana/web3.js";

import {
  associatedTokenAccount,
  sessionProgramId,
  sessionVault,
  sessionVaultTokenAccount,
  type Asset,
  type SessionRef,
  SOL,
} from "./asset.js";
import { MAX_DESTINATIONS, PROGRAM_ID } from "./constants.js";
import { INSTRUCTIONS, vaultCoder } from "./coder.js";
import { toI64, toU64, type Amount } from "./internal/bytes.js";
import { toWeb3Buffer } from "./internal/web3-bytes.js";
import { configAddress, eventAuthorityAddress, programDataAddress, vaultAddress, vaultTokenAddress } from "./pda.js";
import { asSessionId, type SessionId } from "./session-id.js";

/** Deployment settings (`ConfigParams`): durations in seconds, amounts in lamports. */
export interface ConfigParams {
  maxSessionDuration: number;
  minSessionDuration: number;
  feeTopUpCap: Amount;
  cleanupRewardBps: number;
  cleanupRewardCap: Amount;
}

/** An account of an instruction: an address, or null to omit an optional account. */
type AccountsInput = Record<string, PublicKey | null>;

/**
 * Builds an instruction from the IDL: accounts in the IDL's order with its signer / writable
 * flags; an omitted optional account is passed as the program id (Anchor's convention).
 */
export function buildProgramInstruction(
  name: string,
  accounts: AccountsInput,
  args: Record<string, unknown>,
  programId: PublicKey = PROGRAM_ID,
): TransactionInstruction {
  const ix = INSTRUCTIONS.get(name);
  if (ix === undefined) throw new Error(`the IDL has no instruction ${name}`);
  const expected = ix.accounts;
  const unknown = Object.keys(accounts).filter((k) => !expected.some((a) => a.name === k));
  if (unknown.length > 0) throw new Error(`${name}: unknown accounts ${unknown.join(", ")}`);
  const keys: AccountMeta[] = expected.map((acc) => {
    const value = accounts[acc.name];
    if (value === undefined) throw new Error(`${name}: account ${acc.name} is missing`);
    if (value === null) {
      if (!acc.optional) throw new Error(`${name}: account ${acc.name} is required`);
      return { pubkey: programId, isSigner: false, isWritable: false };
    }
    return { pubkey: value, isSigner: acc.signer, isWritable: acc.writable };
  });
  return new TransactionInstruction({ programId, keys, data: toWeb3Buffer(vaultCoder.encodeInstruction(name, args)) });
}

function eventAccounts(programId: PublicKey): AccountsInput {
  return { eventAuthority: eventAuthorityAddress(programId), program: programId };
}

function tokenAccounts(session: SessionRef) {
  const asset = session.asset;
  return asset.kind === "token"
    ? { mint: asset.mint, vaultTokenAccount: sessionVaultTokenAccount(session), tokenProgram: asset.tokenProgram }
    : { mint: null, vaultTokenAccount: null, tokenProgram: null };
}

/** The owner's token account to use: the given one, the ATA by default, null for SOL. */
function ownerTokenAccount(asset: Asset, owner: PublicKey, given: PublicKey | null | undefined): PublicKey | null {
  if (asset.kind !== "token") {
    if (given) throw new TypeError("a SOL session takes no token accounts");
    return null;
  }
  return given === undefined ? associatedTokenAccount(asset, owner) : given;
}

function encodeParams(params: ConfigParams) {
  return {
    maxSessionDuration: toI64(params.maxSessionDuration, "maxSessionDuration"),
    minSessionDuration: toI64(params.minSessionDuration, "minSessionDuration"),
    feeTopUpCap: toU64(params.feeTopUpCap, "feeTopUpCap"),
    cleanupRewardBps: params.cleanupRewardBps,
    cleanupRewardCap: toU64(params.cleanupRewardCap, "cleanupRewardCap"),
  };
}

// ---------------------------------------------------------------------------------------------
// Admin

/** Creates the config; `admin` must be the program's upgrade authority. */
export function initializeConfigInstruction(p: {
  admin: PublicKey;
  params: ConfigParams;
  programId?: PublicKey;
}): TransactionInstruction {
  const programId = p.programId ?? PROGRAM_ID;
  return buildProgramInstruction(
    "initializeConfig",
    {
      admin: p.admin,
      config: configAddress(programId),
      thisProgram: programId,
      programData: programDataAddress(programId),
      systemProgram: SystemProgram.programId,
      ...eventAccounts(programId),
    },
    { params: encodeParams(p.params) },
    programId,
  );
}

/** Changes the settings (admin only); `newAdmin` hands the admin role over. */
export function updateConfigInstruction(p: {
  admin: PublicKey;
  params: ConfigParams;
  newAdmin?: PublicKey | null;
  programId?: PublicKey;
}): TransactionInstruction {
  const programId = p.programId ?? PROGRAM_ID;
  return buildProgramInstruction(
    "updateConfig",
    { admin: p.admin, config: configAddress(programId), ...eventAccounts(programId) },
    { args: { params: encodeParams(p.params), newAdmin: p.newAdmin ?? null } },
    programId,
  );
}

/** Pauses or resumes the program (admin only). */
export function setPausedInstruction(p: {
  admin: PublicKey;
  paused: boolean;
  programId?: PublicKey;
}): TransactionInstruction {
  const programId = p.programId ?? PROGRAM_ID;
  return buildProgramInstruction(
    "setPaused",
    { admin: p.admin, config: configAddress(programId), ...eventAccounts(programId) },
    { paused: p.paused },
    programId,
  );
}

// ---------------------------------------------------------------------------------------------
// Parent

export interface CreateSessionParams {
  parent: PublicKey;
  /** The ephemeral wallet approved as delegate (it does not sign here). */
  delegate: PublicKey;
  sessionId: SessionId | string;
  asset?: Asset;
  /** Most the delegate may ever spend (trades, their fees and fee top-ups). */
  approvedAmount: Amount;
  /** Most one trade (amount plus fee) may spend; the approved amount by default. */
  perTradeCap?: Amount;
  /** Seconds until expiry, within the config's bounds. */
  durationSecs: number;
  /** Allowed destinations (wallets, or token-account owners); empty allows any. */
  destinations?: PublicKey[];
  /** Deposited in the same instruction, in the asset's base units. */
  initialDeposit?: Amount;
  /** Lamports the parent pays straight to the delegate for its transaction fees. */
  feeTopUp?: Amount;
  /** Token sessions: where the deposit comes from (the parent's ATA by default; null to omit). */
  parentTokenAccount?: PublicKey | null;
  programId?: PublicKey;
}

/** Opens a session: creates the vault (and its token account), deposits, and funds the delegate. */
export function createSessionInstruction(p: CreateSessionParams): TransactionInstruction {
  const programId = p.programId ?? PROGRAM_ID;
  const asset = p.asset ?? SOL;
  const sessionId = asSessionId(p.sessionId);
  const vault = vaultAddress(p.parent, sessionId, programId);
  const destinations = p.destinations ?? [];
  if (destinations.length > MAX_DESTINATIONS) {
    throw new RangeError(`at most ${MAX_DESTINATIONS} destinations (got ${destinations.length})`);
  }
  const approvedAmount = toU64(p.approvedAmount, "approvedAmount");
  const initialDeposit = toU64(p.initialDeposit ?? 0n, "initialDeposit");
  const parentTokenAccount =
    asset.kind === "token" && initialDeposit === 0n && p.parentTokenAccount === undefined
      ? null
      : ownerTokenAccount(asset, p.parent, p.parentTokenAccount);
  return buildProgramInstruction(
    "createSession",
    {
      parent: p.parent,
      config: configAddress(programId),
      vault,
      delegate: p.delegate,
      mint: asset.kind === "token" ? asset.mint : null,
      vaultTokenAccount: asset.kind === "token" ? vaultTokenAddress(vault, programId) : null,
      parentTokenAccount,
      tokenProgram: asset.kind === "token" ? asset.tokenProgram : null,
      systemProgram: SystemProgram.programId,
      ...eventAccounts(programId),
    },
    {
      args: {
        sessionId: Array.from(sessionId),
        approvedAmount: approvedAmount,
        perTradeCap: toU64(p.perTradeCap ?? approvedAmount, "perTradeCap"),
        durationSecs: toI64(p.durationSecs, "durationSecs"),
        destinations,
        initialDeposit: initialDeposit,
        feeTopUp: toU64(p.feeTopUp ?? 0n, "feeTopUp"),
      },
    },
    programId,
  );
}

/** Makes `newDelegate` the session's delegate; the old one loses every power (parent signs). */
export function approveDelegateInstruction(p: { session: SessionRef; newDelegate: PublicKey }): TransactionInstruction {
  const programId = sessionProgramId(p.session);
  return buildProgramInstruction(
    "approveDelegate",
    { parent: p.session.parent, vault: sessionVault(p.session), ...eventAccounts(programId) },
    { newDelegate: p.newDelegate },
    programId,
  );
}

/** Adds funds to a live session (parent signs). */
export function depositInstruction(p: {
  session: SessionRef;
  amount: Amount;
  /** Token sessions: the parent's account to pay from (its ATA by default). */
  parentTokenAccount?: PublicKey;
}): TransactionInstruction {
  const programId = sessionProgramId(p.session);
  return buildProgramInstruction(
    "deposit",
    {
      parent: p.session.parent,
      config: configAddress(programId),
      vault: sessionVault(p.session),
      ...tokenAccounts(p.session),
      parentTokenAccount: ownerTokenAccount(p.session.asset, p.session.parent, p.parentTokenAccount),
      systemProgram: SystemProgram.programId,
      ...eventAccounts(programId),
    },
    { amount: toU64(p.amount) },
    programId,
  );
}

/** Takes funds back to the parent, at any time (parent signs). */
export function withdrawInstruction(p: {
  session: SessionRef;
  amount: Amount;
  /** Token sessions: the parent's account to receive (its ATA by default). */
  parentTokenAccount?: PublicKey;
}): TransactionInstruction {
  const programId = sessionProgramId(p.session);
  return buildProgramInstruction(
    "withdraw",
    {
      parent: p.session.parent,
      vault: sessionVault(p.session),
      ...tokenAccounts(p.session),
      parentTokenAccount: ownerTokenAccount(p.session.asset, p.session.parent, p.parentTokenAccount),
      ...eventAccounts(programId),
    },
    { amount: toU64(p.amount) },
    programId,
  );
}

/** Ends the session now; anyone may then clean it up (parent signs). */
export function revokeSessionInstruction(p: { session: SessionRef }): TransactionInstruction {
  const programId = sessionProgramId(p.session);
  return buildProgramInstruction(
    "revokeSession",
    { parent: p.session.parent, vault: sessionVault(p.session), ...eventAccounts(programId) },
    {},
    programId,
  );
}

// ---------------------------------------------------------------------------------------------
// Delegate (the ephemeral wallet signs)

export interface ExecuteTradeParams {
  session: SessionRef;
  /** The session's current delegate; signs the transaction. */
  delegate: PublicKey;
  /** The receiving wallet (SOL), or the owner of the receiving token account (tokens). */
  destination: PublicKey;
  /** Token sessions: the receiving token account (the destination's ATA by default). */
  destinationTokenAccount?: PublicKey;
  /** The order id; must exceed the session's last one. */
  tradeId: Amount;
  amount: Amount;
  /** The venue's fee, paid to the same destination and counted against the caps. */
  fee?: Amount;
}

/** Pays a trade from the vault (delegate signs). */
export function executeTradeInstruction(p: ExecuteTradeParams): TransactionInstruction {
  const programId = sessionProgramId(p.session);
  return buildProgramInstruction(
    "executeTrade",
    {
      delegate: p.delegate,
      config: configAddress(programId),
      vault: sessionVault(p.session),
      destination: p.destination,
      destinationTokenAccount: ownerTokenAccount(p.session.asset, p.destination, p.destinationTokenAccount),
      ...tokenAccounts(p.session),
      ...eventAccounts(programId),
    },
    {
      args: {
        tradeId: toU64(p.tradeId, "tradeId"),
        amount: toU64(p.amount),
        fee: toU64(p.fee ?? 0n, "fee"),
      },
    },
    programId,
  );
}

/** Moves lamports from a SOL vault to the delegate for its fees (delegate signs). */
export function topUpFeesInstruction(p: {
  session: SessionRef;
  delegate: PublicKey;
  amount: Amount;
}): TransactionInstruction {
  const programId = sessionProgramId(p.session);
  return buildProgramInstruction(
    "topUpFees",
    {
      delegate: p.delegate,
      config: configAddress(programId),
      vault: sessionVault(p.session),
      ...eventAccounts(programId),
    },
    { amount: toU64(p.amount) },
    programId,
  );
}

// ---------------------------------------------------------------------------------------------
// Anyone

/**
 * Closes an expired, revoked or (while paused) any vault: everything goes back to the parent but
 * a reward for `caller`, taken from the reclaimed rent.
 */
export function cleanupVaultInstruction(p: {
  session: SessionRef;
  /** Signs and receives the reward. */
  caller: PublicKey;
  /** Token sessions: receives the balance (the parent's ATA by default). */
  parentTokenAccount?: PublicKey;
}): TransactionInstruction {
  const programId = sessionProgramId(p.session);
  return buildProgramInstruction(
    "cleanupVault",
    {
      caller: p.caller,
      config: configAddress(programId),
      vault: sessionVault(p.session),
      parent: p.session.parent,
      ...tokenAccounts(p.session),
      parentTokenAccount: ownerTokenAccount(p.session.asset, p.session.parent, p.parentTokenAccount),
      ...eventAccounts(programId),
    },
    {},
    programId,
  );
}

/** Revoke then clean up, for one transaction the parent signs (it is also the caller). */
export function closeSessionInstructions(p: {
  session: SessionRef;
  parentTokenAccount?: PublicKey;
}): TransactionInstruction[] {
  return [
    revokeSessionInstruction({ session: p.session }),
    cleanupVaultInstruction({
      session: p.session,
      caller: p.session.parent,
      ...(p.parentTokenAccount ? { parentTokenAccount: p.parentTokenAccount } : {}),
    }),
  ];
}
