// Decoding the program's events. They are emitted with `emit_cpi!`: an inner instruction the
// program sends to itself, signed by its event authority PDA, whose data is Anchor's EVENT_IX_TAG,
// the event's discriminator and its Borsh body. Only inner instructions whose program is ours
// and whose single account is our event authority are read: anyone can put the same bytes in an
// instruction of their own, or in a log line.
import type {
  CompiledInstruction,
  ParsedTransactionWithMeta,
  PublicKey,
  TransactionResponse,
  VersionedTransactionResponse,
  Finality,
} from "@solana/web3.js";
import { PublicKey as PublicKeyClass } from "@solana/web3.js";

import { EVENT_IX_TAG_LE, PROGRAM_ID } from "./constants.js";
import type { TransactionReader } from "./connection.js";
import { BorshDecodeError, vaultCoder } from "./coder.js";
import { fromBase58, startsWith, toHex } from "./internal/bytes.js";
import { eventAuthorityAddress } from "./pda.js";
import { fetchTransaction } from "./transaction.js";
import type { SessionId } from "./session-id.js";

export type CleanupReason = "expired" | "manualRevoke" | "emergency";

/** A vault's running totals after the change an event reports. */
export interface SessionTotals {
  totalDeposited: bigint;
  totalSpent: bigint;
  totalWithdrawn: bigint;
  totalFeeTopUps: bigint;
  tradeCount: bigint;
}

export interface ConfigParamsValue {
  maxSessionDuration: number;
  minSessionDuration: number;
  feeTopUpCap: bigint;
  cleanupRewardBps: number;
  cleanupRewardCap: bigint;
}

export interface ConfigInitialized { admin: PublicKey; params: ConfigParamsValue; timestamp: number }
export interface ConfigUpdated { admin: PublicKey; newAdmin: PublicKey; params: ConfigParamsValue; timestamp: number }
export interface PauseSet { admin: PublicKey; paused: boolean; timestamp: number }
export interface SessionCreated {
  sessionId: SessionId; parent: PublicKey; vault: PublicKey; delegate: PublicKey;
  /** `PublicKey.default` for SOL. */
  mint: PublicKey;
  approvedAmount: bigint; perTradeCap: bigint; destinations: PublicKey[];
  /** Lamports the parent paid straight to the delegate. */
  feeTopUp: bigint;
  createdAt: number; expiresAt: number;
}
export interface DelegateApproved {
  sessionId: SessionId; parent: PublicKey; vault: PublicKey; previousDelegate: PublicKey; delegate: PublicKey;
  rotations: number; timestamp: number;
}
export interface Deposited {
  sessionId: SessionId; parent: PublicKey; vault: PublicKey; mint: PublicKey;
  /** What the parent sent. */
  amount: bigint;
  /** What the vault received (less than `amount` for a transfer-fee mint). */
  received: bigint;
  totals: SessionTotals; timestamp: number;
}
export interface Withdrawn {
  sessionId: SessionId; parent: PublicKey; vault: PublicKey; mint: PublicKey; amount: bigint;
  totals: SessionTotals; timestamp: number;
}
export interface TradeExecuted {
  sessionId: SessionId; parent: PublicKey; vault: PublicKey; delegate: PublicKey; mint: PublicKey;
  tradeId: bigint;
  /** The destination wallet (SOL) or token account (tokens). */
  destination: PublicKey;
  amount: bigint; fee: bigint; remainingAllowance: bigint; totals: SessionTotals; timestamp: number;
}
export interface FeesToppedUp {
  sessionId: SessionId; parent: PublicKey; vault: PublicKey; delegate: PublicKey; amount: bigint;
  remainingAllowance: bigint; totals: SessionTotals; timestamp: number;
}
export interface SessionRevoked {
  sessionId: SessionId; parent: PublicKey; vault: PublicKey; delegate: PublicKey; totals: SessionTotals;
  revokedAt: number;
}
export interface VaultCleaned {
  sessionId: SessionId; parent: PublicKey; vault: PublicKey; delegate: PublicKey; mint: PublicKey;
  caller: PublicKey; reason: CleanupReason;
  /** Balance returned to the parent, in the vault's unit. */
  returnedAmount: bigint;
  /** Rent lamports returned to the parent (after the reward). */
  rentReturned: bigint;
  /** Lamports paid to the caller. */
  reward: bigint;
  totals: SessionTotals; timestamp: number;
}

/** Every event the program emits, named as in the program. */
export type VaultEvent =
  | { name: "ConfigInitialized"; data: ConfigInitialized }
  | { name: "ConfigUpdated"; data: ConfigUpdated }
  | { name: "PauseSet"; data: PauseSet }
  | { name: "SessionCreated"; data: SessionCreated }
  | { name: "DelegateApproved"; data: DelegateApproved }
  | { name: "Deposited"; data: Deposited }
  | { name: "Withdrawn"; data: Withdrawn }
  | { name: "TradeExecuted"; data: TradeExecuted }
  | { name: "FeesToppedUp"; data: FeesToppedUp }
  | { name: "SessionRevoked"; data: SessionRevoked }
  | { name: "VaultCleaned"; data: VaultCleaned };

export type VaultEventName = VaultEvent["name"];
export type VaultEventOf<N extends VaultEventName> = Extract<VaultEvent, { name: N }>["data"];

/** An event with where it came from in its transaction. */
export type LocatedVaultEvent = VaultEvent & {
  /** The top-level instruction that emitted it. */
  instructionIndex: number;
  /** Its position among that instruction's inner instructions. */
  innerIndex: number;
};

/** Bytes that carry the event tag but are not an event this client knows. */
export class EventDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EventDecodeError";
  }
}

/**
 * Decodes an event from its 8-byte discriminator and Borsh body. Throws EventDecodeError for an
 * unknown discriminator or a body of the wrong length.
 */
export function decodeEvent(data: Uint8Array): VaultEvent {
  if (data.length < 8) throw new EventDecodeError("shorter than an event discriminator");
  let decoded: ReturnType<typeof vaultCoder.decodeEvent>;
  try {
    decoded = vaultCoder.decodeEvent(data);
  } catch (e) {
    if (e instanceof BorshDecodeError) throw new EventDecodeError(`malformed event: ${e.message}`);
    throw e;
  }
  if (decoded === null) throw new EventDecodeError(`unknown event discriminator ${toHex(data.subarray(0, 8))}`);
  if (decoded.length !== data.length - 8) {
    throw new EventDecodeError(`malformed ${decoded.name}: ${data.length - 8 - decoded.length} trailing bytes`);
  }
  return { name: decoded.name, data: decoded.data } as unknown as VaultEvent;
}

/**
 * Decodes the data of an `emit_cpi!` inner instruction. Returns null when the data is not an
 * event CPI at all. The caller must have checked the instruction's program and account; prefer
 * `eventsFromInstructions` / `eventsFromTransaction`, which do.
 */
export function decodeEventCpiData(data: Uint8Array): VaultEvent | null {
  if (!startsWith(data, EVENT_IX_TAG_LE)) return null;
  return decodeEvent(data.subarray(EVENT_IX_TAG_LE.length));
}

/** An instruction with its accounts resolved, as `eventsFromInstructions` reads it. */
export interface ResolvedInstruction {
  programId: PublicKey;
  accounts: PublicKey[];
  data: Uint8Array;
  instructionIndex: number;
  innerIndex: number;
}

export interface EventOptions {
  programId?: PublicKey;
  /** Throw on an event CPI of ours that does not decode (default: skip it). */
  strict?: boolean;
}

/** Whether an inner instruction is one of our program's genuine event CPIs. */
export function isEventCpi(ix: Pick<ResolvedInstruction, "programId" | "accounts" | "data">, programId: PublicKey = PROGRAM_ID): boolean {
  return (
    ix.programId.equals(programId) &&
    ix.accounts.length === 1 &&
    ix.accounts[0]!.equals(eventAuthorityAddress(programId)) &&
    startsWith(ix.data, EVENT_IX_TAG_LE)
  );
}

/** The program's events among resolved inner instructions, in order. */
export function eventsFromInstructions(instructions: ResolvedInstruction[], options: EventOptions = {}): LocatedVaultEvent[] {
  const programId = options.programId ?? PROGRAM_ID;
  const events: LocatedVaultEvent[] = [];
  for (const ix of instructions) {
    if (!isEventCpi(ix, programId)) continue;
    let event: VaultEvent | null;
    try {
      event = decodeEventCpiData(ix.data);
    } catch (e) {
      if (options.strict) throw e;
      continue;
    }
    if (event !== null) events.push({ ...event, instructionIndex: ix.instructionIndex, innerIndex: ix.innerIndex });
  }
  return events;
}

type AnyTransaction = VersionedTransactionResponse | TransactionResponse | ParsedTransactionWithMeta;

function decodeData(data: string | Uint8Array): Uint8Array {
  return typeof data === "string" ? fromBase58(data) : data;
}

/** Resolves a fetched transaction's inner instructions (any of web3.js's response shapes). */
export function resolveInnerInstructions(tx: AnyTransaction): ResolvedInstruction[] {
  const meta = tx.meta;
  if (!meta || !meta.innerInstructions) return [];
  const message = tx.transaction.message;
  let keyAt: (i: number) => PublicKey | undefined;
  if ("getAccountKeys" in message && typeof message.getAccountKeys === "function") {
    const keys = message.getAccountKeys(
      meta.loadedAddresses ? { accountKeysFromLookups: meta.loadedAddresses } : undefined,
    );
    keyAt = (i) => keys.get(i);
  } else {
    const keys = (message as { accountKeys: ({ pubkey: PublicKey } | PublicKey)[] }).accountKeys.map((k) =>
      k instanceof PublicKeyClass ? k : (k as { pubkey: PublicKey }).pubkey,
    );
    keyAt = (i) => keys[i];
  }
  const out: ResolvedInstruction[] = [];
  for (const group of meta.innerInstructions) {
    group.instructions.forEach((ix, innerIndex) => {
      if ("programIdIndex" in ix) {
        const compiled = ix as CompiledInstruction;
        const programId = keyAt(compiled.programIdIndex);
        const accounts = compiled.accounts.map(keyAt);
        if (programId === undefined || accounts.some((a) => a === undefined)) return;
        out.push({
          programId,
          accounts: accounts as PublicKey[],
          data: decodeData(compiled.data),
          instructionIndex: group.index,
          innerIndex,
        });
      } else if ("data" in ix && "accounts" in ix) {
        // A parsed response's PartiallyDecodedInstruction.
        out.push({ programId: ix.programId, accounts: ix.accounts, data: decodeData(ix.data), instructionIndex: group.index, innerIndex });
      }
    });
  }
  return out;
}

/** The program's events in a fetched transaction; none for a failed transaction. */
export function eventsFromTransaction(tx: AnyTransaction, options: EventOptions = {}): LocatedVaultEvent[] {
  if (!tx.meta || tx.meta.err !== null) return [];
  return eventsFromInstructions(resolveInnerInstructions(tx), options);
}

/**
 * Fetches a transaction and decodes its events. Throws UnsupportedTransactionVersionError for a
 * transaction newer than this package reads.
 */
export async function fetchTransactionEvents(
  connection: TransactionReader,
  signature: string,
  options: EventOptions & { commitment?: Finality } = {},
): Promise<LocatedVaultEvent[]> {
  const tx = await fetchTransaction(connection, signature, options.commitment ?? "confirmed");
  if (tx === null) throw new Error(`transaction ${signature} not found`);
  return eventsFromTransaction(tx, options);
}
