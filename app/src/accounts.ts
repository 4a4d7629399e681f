// Decoding the program's accounts and deriving what a frontend shows: a session's status
// (with the derived "expired"), what the delegate may still spend, and how long is left.
import { PublicKey, SYSVAR_CLOCK_PUBKEY, type AccountInfo, type Commitment } from "@solana/web3.js";

import { assetFromVault, sessionRef, type Asset, type SessionRef } from "./asset.js";
import { PROGRAM_ID, VAULT_ACCOUNT_SIZE } from "./constants.js";
import type { AccountReader } from "./connection.js";
import { vaultCoder } from "./coder.js";
import { configAddress, vaultAddress } from "./pda.js";
import type { SessionId } from "./session-id.js";

/** The stored lifecycle of a vault; "expired" is derived from the clock, "closed" from absence. */
export type StoredVaultStatus = "active" | "revoked";
export type SessionStatus = "active" | "expired" | "revoked" | "closed";

/** The program's `Vault` account. Amounts are bigints in the asset's base units; times are unix seconds. */
export interface VaultAccount {
  parent: PublicKey;
  delegate: PublicKey;
  sessionId: SessionId;
  /** `PublicKey.default` for a SOL session. */
  mint: PublicKey;
  /** `PublicKey.default` for a SOL session. */
  tokenProgram: PublicKey;
  approvedAmount: bigint;
  perTradeCap: bigint;
  totalDeposited: bigint;
  totalSpent: bigint;
  totalWithdrawn: bigint;
  totalFeeTopUps: bigint;
  tradeCount: bigint;
  lastTradeId: bigint;
  /** The allow-list in use (empty: any destination). */
  destinations: PublicKey[];
  createdAt: number;
  expiresAt: number;
  lastActivity: number;
  /** 0 while active. */
  revokedAt: number;
  delegateRotations: number;
  status: StoredVaultStatus;
  bump: number;
  tokenAccountBump: number;
}

/** The program's `Config` account. */
export interface ConfigAccount {
  admin: PublicKey;
  paused: boolean;
  maxSessionDuration: number;
  minSessionDuration: number;
  feeTopUpCap: bigint;
  cleanupRewardBps: number;
  cleanupRewardCap: bigint;
  bump: number;
}

/** Byte offsets of the vault's fields, for `getProgramAccounts` filters. */
export const VAULT_OFFSETS = Object.freeze({ parent: 8, delegate: 40, sessionId: 72, mint: 88, status: 381 });

type Decoded = Record<string, unknown>;

const n = (v: unknown): number => v as number;
const big = (v: unknown): bigint => v as bigint;

/** Decodes a vault account's data (checks the discriminator). */
export function decodeVault(data: Uint8Array): VaultAccount {
  const d = vaultCoder.decodeAccount<Decoded>("Vault", data);
  const count = Math.min(d.destinationCount as number, (d.destinations as PublicKey[]).length);
  return {
    parent: d.parent as PublicKey,
    delegate: d.delegate as PublicKey,
    sessionId: d.sessionId as Uint8Array,
    mint: d.mint as PublicKey,
    tokenProgram: d.tokenProgram as PublicKey,
    approvedAmount: big(d.approvedAmount),
    perTradeCap: big(d.perTradeCap),
    totalDeposited: big(d.totalDeposited),
    totalSpent: big(d.totalSpent),
    totalWithdrawn: big(d.totalWithdrawn),
    totalFeeTopUps: big(d.totalFeeTopUps),
    tradeCount: big(d.tradeCount),
    lastTradeId: big(d.lastTradeId),
    destinations: (d.destinations as PublicKey[]).slice(0, count),
    createdAt: n(d.createdAt),
    expiresAt: n(d.expiresAt),
    lastActivity: n(d.lastActivity),
    revokedAt: n(d.revokedAt),
    delegateRotations: d.delegateRotations as number,
    status: d.status as StoredVaultStatus,
    bump: d.bump as number,
    tokenAccountBump: d.tokenAccountBump as number,
  };
}

/** Decodes the config account's data (checks the discriminator). */
export function decodeConfig(data: Uint8Array): ConfigAccount {
  const d = vaultCoder.decodeAccount<Decoded>("Config", data);
  return {
    admin: d.admin as PublicKey,
    paused: d.paused as boolean,
    maxSessionDuration: n(d.maxSessionDuration),
    minSessionDuration: n(d.minSessionDuration),
    feeTopUpCap: big(d.feeTopUpCap),
    cleanupRewardBps: d.cleanupRewardBps as number,
    cleanupRewardCap: big(d.cleanupRewardCap),
    bump: d.bump as number,
  };
}

/** A session as a frontend shows it. */
export interface SessionState {
  address: PublicKey;
  ref: SessionRef;
  asset: Asset;
  account: VaultAccount;
  /** The vault account's lamports (rent, plus the balance for a SOL session). */
  lamports: number;
  status: Exclude<SessionStatus, "closed">;
  /** The time this state was judged at (unix seconds). */
  now: number;
  /** What the delegate may still spend: approved amount less what it spent. */
  remainingAllowance: bigint;
  /** What the vault holds by its books: deposits less spending and withdrawals. */
  balance: bigint;
  /** The most one trade (amount plus fee) may spend right now; 0 unless active. */
  maxTradeNow: bigint;
  /** Seconds until expiry (0 once expired). */
  timeLeftSecs: number;
  expiresAt: Date;
}

/** "expired" is derived: a vault stays `Active` on chain after its expiry. */
export function sessionStatus(vault: Pick<VaultAccount, "status" | "expiresAt">, now: number): Exclude<SessionStatus, "closed"> {
  if (vault.status === "revoked") return "revoked";
  return now >= vault.expiresAt ? "expired" : "active";
}

const min = (...xs: bigint[]): bigint => xs.reduce((a, b) => (b < a ? b : a));

/** Derives a session's state from its decoded vault account at time `now` (unix seconds). */
export function deriveSessionState(
  address: PublicKey,
  account: VaultAccount,
  now: number,
  lamports = 0,
  programId: PublicKey = PROGRAM_ID,
): SessionState {
  const status = sessionStatus(account, now);
  const remainingAllowance = account.approvedAmount - account.totalSpent;
  const balance = account.totalDeposited - account.totalSpent - account.totalWithdrawn;
  const asset = assetFromVault(account.mint, account.tokenProgram);
  return {
    address,
    ref: sessionRef(account.parent, account.sessionId, asset, programId),
    asset,
    account,
    lamports,
    status,
    now,
    remainingAllowance,
    balance,
    maxTradeNow: status === "active" ? min(account.perTradeCap, remainingAllowance, balance) : 0n,
    timeLeftSecs: Math.max(0, account.expiresAt - now),
    expiresAt: new Date(account.expiresAt * 1000),
  };
}

/** The cluster's clock (unix seconds) from the Clock sysvar's data. */
export function decodeClockUnixTimestamp(data: Uint8Array): number {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return Number(view.getBigInt64(32, true));
}

export async function fetchChainTime(connection: AccountReader, commitment?: Commitment): Promise<number> {
  const info = await connection.getAccountInfo(SYSVAR_CLOCK_PUBKEY, commitment);
  if (info === null) throw new Error("the Clock sysvar is unavailable");
  return decodeClockUnixTimestamp(info.data);
}

function isVaultAccountInfo(info: AccountInfo<Uint8Array> | null, programId: PublicKey): info is AccountInfo<Uint8Array> {
  return info !== null && info.lamports > 0 && info.owner.equals(programId) && info.data.length > 0;
}

export interface FetchSessionOptions {
  /** Judge the status at this unix time; by default the cluster's clock, read in the same request. */
  now?: number;
  commitment?: Commitment;
  programId?: PublicKey;
}

/**
 * Reads a session by its vault address (or a `SessionRef`). Returns null once the vault is
 * closed (cleaned up) or never existed.
 */
export async function fetchSession(
  connection: AccountReader,
  session: PublicKey | SessionRef,
  options: FetchSessionOptions = {},
): Promise<SessionState | null> {
  const programId = options.programId ?? (session instanceof PublicKey ? PROGRAM_ID : session.programId ?? PROGRAM_ID);
  const address = session instanceof PublicKey ? session : vaultAddress(session.parent, session.sessionId, programId);
  let info: AccountInfo<Uint8Array> | null;
  let now = options.now;
  if (now === undefined) {
    const [vault, clock] = await connection.getMultipleAccountsInfo([address, SYSVAR_CLOCK_PUBKEY], options.commitment);
    info = vault ?? null;
    now = clock ? decodeClockUnixTimestamp(clock.data) : Math.floor(Date.now() / 1000);
  } else {
    info = await connection.getAccountInfo(address, options.commitment);
  }
  if (!isVaultAccountInfo(info, programId)) return null;
  return deriveSessionState(address, decodeVault(info.data), now, info.lamports, programId);
}

/** Reads the deployment's config; null before `initialize_config`. */
export async function fetchConfig(
  connection: AccountReader,
  options: { commitment?: Commitment; programId?: PublicKey } = {},
): Promise<ConfigAccount | null> {
  const programId = options.programId ?? PROGRAM_ID;
  const info = await connection.getAccountInfo(configAddress(programId), options.commitment);
  if (!isVaultAccountInfo(info, programId)) return null;
  return decodeConfig(info.data);
}

/** `getProgramAccounts`, as web3.js's `Connection` offers it. */
export interface ProgramAccountsReader {
  getProgramAccounts(
    programId: PublicKey,
    config?: { commitment?: Commitment; filters?: ({ memcmp: { offset: number; bytes: string } } | { dataSize: number })[] },
  ): Promise<ReadonlyArray<{ pubkey: PublicKey; account: AccountInfo<Uint8Array> }> | { context: unknown; value: ReadonlyArray<{ pubkey: PublicKey; account: AccountInfo<Uint8Array> }> }>;
}

/** Every open session of a parent (or, with `by: "delegate"`, of a delegate), judged at `now`. */
export async function fetchSessionsOf(
  connection: ProgramAccountsReader,
  wallet: PublicKey,
  options: { by?: "parent" | "delegate"; now?: number; commitment?: Commitment; programId?: PublicKey } = {},
): Promise<SessionState[]> {
  const programId = options.programId ?? PROGRAM_ID;
  const offset = options.by === "delegate" ? VAULT_OFFSETS.delegate : VAULT_OFFSETS.parent;
  const result = await connection.getProgramAccounts(programId, {
    ...(options.commitment ? { commitment: options.commitment } : {}),
    filters: [{ dataSize: VAULT_ACCOUNT_SIZE }, { memcmp: { offset, bytes: wallet.toBase58() } }],
  });
  const rows = Array.isArray(result) ? result : (result as { value: typeof result }).value;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  return (rows as ReadonlyArray<{ pubkey: PublicKey; account: AccountInfo<Uint8Array> }>)
    .filter((r) => isVaultAccountInfo(r.account, programId))
    .map((r) => deriveSessionState(r.pubkey, decodeVault(r.account.data), now, r.account.lamports, programId));
}
