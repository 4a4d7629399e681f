// Program errors as typed errors. A failed transaction reaches a frontend as a web3.js
// SendTransactionError (preflight), a confirmation's `err` object, or logs; all are mapped to a
// VaultProgramError carrying the program's own message from the IDL when our program raised one
// of its errors, an AnchorFrameworkError when our program refused in one of Anchor's account
// checks, and a TransactionFailedError for anything else.
import { PublicKey } from "@solana/web3.js";

import { IDL_ERRORS } from "./coder.js";
import { ERROR_CODE_OFFSET, PROGRAM_ID } from "./constants.js";
import { ANCHOR_ERRORS } from "./internal/anchor-errors.js";

/** The program's error codes (`errors.rs`), checked against the IDL by the tests. */
export const VaultErrorCode = Object.freeze({
  Paused: 6000,
  Unauthorized: 6001,
  NotUpgradeAuthority: 6002,
  InvalidConfig: 6003,
  InvalidDuration: 6004,
  InvalidApprovedAmount: 6005,
  InvalidPerTradeCap: 6006,
  TooManyDestinations: 6007,
  DuplicateDestination: 6008,
  InvalidDelegate: 6009,
  SameDelegate: 6010,
  ZeroAmount: 6011,
  SessionExpired: 6012,
  SessionRevoked: 6013,
  NotDelegate: 6014,
  PerTradeCapExceeded: 6015,
  ApprovedAmountExceeded: 6016,
  InsufficientVaultBalance: 6017,
  DestinationNotAllowed: 6018,
  InvalidDestination: 6019,
  TradeIdNotIncreasing: 6020,
  FeeTopUpCapExceeded: 6021,
  TopUpRequiresSolVault: 6022,
  CleanupNotAllowed: 6023,
  TokenAccountsMismatch: 6024,
  WrongMint: 6025,
  WrongTokenProgram: 6026,
  UnsupportedMintExtension: 6027,
  MathOverflow: 6028,
  InvariantViolated: 6029,
} as const);

export type VaultErrorName = keyof typeof VaultErrorCode;

const BY_CODE = new Map(IDL_ERRORS.map((e) => [e.code, e]));
const LANG_NAMES = new Map<number, string>(ANCHOR_ERRORS.map(([code, name]) => [code, name]));
const LANG_MESSAGES = new Map<number, string>(ANCHOR_ERRORS.map(([code, , msg]) => [code, msg]));

/** The program's message for an error code (from the IDL), if it is one of the program's. */
export function vaultErrorMessage(code: number): string | undefined {
  return BY_CODE.get(code)?.msg;
}

interface Context {
  logs: string[];
  instructionIndex: number | null;
  cause?: unknown;
}

/** The program refused with one of its own errors (codes 6000+). */
export class VaultProgramError extends Error {
  readonly code: number;
  readonly errorName: VaultErrorName;
  /** The program's message, from the IDL. */
  readonly programMessage: string;
  readonly logs: string[];
  /** The top-level instruction that failed, when known. */
  readonly instructionIndex: number | null;

  constructor(code: number, ctx: Context) {
    const entry = BY_CODE.get(code);
    const name = (entry?.name ?? `Unknown${code}`) as VaultErrorName;
    const msg = entry?.msg ?? `program error ${code}`;
    super(`${name} (${code}): ${msg}`, ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.name = "VaultProgramError";
    this.code = code;
    this.errorName = name;
    this.programMessage = msg;
    this.logs = ctx.logs;
    this.instructionIndex = ctx.instructionIndex;
  }
}

/** Our program refused in one of Anchor's own checks (signer, seeds, has_one, owner, ...). */
export class AnchorFrameworkError extends Error {
  readonly code: number;
  readonly errorName: string;
  readonly programMessage: string;
  readonly logs: string[];
  readonly instructionIndex: number | null;

  constructor(code: number, ctx: Context) {
    const name = LANG_NAMES.get(code) ?? `AnchorError${code}`;
    const msg = LANG_MESSAGES.get(code) ?? `Anchor error ${code}`;
    super(`${name} (${code}): ${msg}`, ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.name = "AnchorFrameworkError";
    this.code = code;
    this.errorName = name;
    this.programMessage = msg;
    this.logs = ctx.logs;
    this.instructionIndex = ctx.instructionIndex;
  }
}

/** A transaction failed for another reason: another program, the runtime, a missing signature. */
export class TransactionFailedError extends Error {
  /** The program that failed, when the logs tell. */
  readonly programId: PublicKey | null;
  /** Its custom error code, if it returned one. */
  readonly code: number | null;
  readonly detail: string;
  readonly logs: string[];
  readonly instructionIndex: number | null;

  constructor(detail: string, ctx: Context & { programId: PublicKey | null; code: number | null }) {
    super(
      ctx.programId ? `program ${ctx.programId.toBase58()} failed: ${detail}` : `transaction failed: ${detail}`,
      ctx.cause === undefined ? undefined : { cause: ctx.cause },
    );
    this.name = "TransactionFailedError";
    this.programId = ctx.programId;
    this.code = ctx.code;
    this.detail = detail;
    this.logs = ctx.logs;
    this.instructionIndex = ctx.instructionIndex;
  }
}

/**
 * A node returned (or refused to return) a transaction in a version newer than this package
 * reads (`MAX_SUPPORTED_TRANSACTION_VERSION`): its events and logs cannot be read here.
 */
export class UnsupportedTransactionVersionError extends Error {
  readonly signature: string;
  /** The transaction's version, when the node said. */
  readonly version: number | null;
  readonly maxSupportedVersion: number;

  constructor(signature: string, version: number | null, maxSupportedVersion: number, cause?: unknown) {
    super(
      `transaction ${signature} has version ${version ?? "unknown"}, newer than this client reads ` +
        `(versions up to ${maxSupportedVersion}, with @solana/web3.js 1.x)`,
      cause === undefined ? undefined : { cause },
    );
    this.name = "UnsupportedTransactionVersionError";
    this.signature = signature;
    this.version = version;
    this.maxSupportedVersion = maxSupportedVersion;
  }
}

/** JSON-RPC error code of a node asked for a transaction newer than `maxSupportedTransactionVersion`. */
export const RPC_UNSUPPORTED_TRANSACTION_VERSION = -32015;

/**
 * The version a node named when it refused a transaction as too new for the client (JSON-RPC
 * error -32015, "Transaction version (N) is not supported by the requesting client"), else
 * undefined. null when the error is that one but names no version.
 */
export function unsupportedTransactionVersion(err: unknown): number | null | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e.message === "string" ? e.message : "";
  const m = /Transaction version \((\d+)\) is not supported/i.exec(message);
  if (m) return Number(m[1]);
  return e.code === RPC_UNSUPPORTED_TRANSACTION_VERSION ? null : undefined;
}

export type ParsedTransactionError = VaultProgramError | AnchorFrameworkError | TransactionFailedError;

function logsOf(err: unknown): string[] {
  if (typeof err !== "object" || err === null) return [];
  const e = err as Record<string, unknown>;
  for (const candidate of [
    e.logs,
    e.transactionLogs,
    (e.simulationResponse as Record<string, unknown> | undefined)?.logs,
    (e.data as Record<string, unknown> | undefined)?.logs,
  ]) {
    if (Array.isArray(candidate) && candidate.every((l) => typeof l === "string")) return candidate as string[];
  }
  return [];
}

function customCodeFrom(text: string): number | null {
  const m = /custom program error: (0x[0-9a-fA-F]+|\d+)/.exec(text);
  return m ? Number(m[1]) : null;
}

function instructionIndexFrom(text: string): number | null {
  const m = /Error processing Instruction (\d+)/.exec(text);
  return m ? Number(m[1]) : null;
}

/** `{ InstructionError: [index, { Custom: code } | "Name"] }`, as RPC and confirmations report. */
function fromTransactionErrorObject(value: unknown): { index: number | null; code: number | null; detail: string } | null {
  if (typeof value !== "object" || value === null || !("InstructionError" in value)) return null;
  const pair = (value as { InstructionError: unknown }).InstructionError;
  if (!Array.isArray(pair) || pair.length !== 2) return null;
  const [index, inner] = pair as [number, unknown];
  if (typeof inner === "object" && inner !== null && "Custom" in inner) {
    const code = Number((inner as { Custom: unknown }).Custom);
    return { index, code, detail: `custom program error: 0x${code.toString(16)}` };
  }
  return { index, code: null, detail: typeof inner === "string" ? inner : JSON.stringify(inner) };
}

function classify(code: number, programIsOurs: boolean, ctx: Context): ParsedTransactionError | null {
  if (!programIsOurs) return null;
  if (code >= ERROR_CODE_OFFSET && BY_CODE.has(code)) return new VaultProgramError(code, ctx);
  if (code < ERROR_CODE_OFFSET && LANG_MESSAGES.has(code)) return new AnchorFrameworkError(code, ctx);
  return null;
}

/**
 * Maps anything a failed send or confirmation produced (a SendTransactionError, a confirmation's
 * `err` value, an Error whose message names a custom error, or logs alone) to a typed error.
 * Returns null when there is nothing that looks like a transaction failure.
 */
export function parseTransactionError(
  err: unknown,
  options: { logs?: string[]; programId?: PublicKey } = {},
): ParsedTransactionError | null {
  if (err instanceof VaultProgramError || err instanceof AnchorFrameworkError || err instanceof TransactionFailedError) {
    return err;
  }
  const programId = options.programId ?? PROGRAM_ID;
  const logs = options.logs ?? logsOf(err);
  const message =
    err instanceof Error
      ? err.message
      : typeof err === "string"
        ? err
        : "";
  const fromObject =
    fromTransactionErrorObject(err) ??
    fromTransactionErrorObject((err as { err?: unknown } | null)?.err) ??
    fromTransactionErrorObject((err as { value?: { err?: unknown } } | null)?.value?.err);
  const instructionIndex = fromObject?.index ?? instructionIndexFrom(message);
  const ctx: Context = { logs, instructionIndex, cause: err };

  // The first "Program X failed" line names the program that raised the error (a CPI's failure
  // is reported again by each caller up the stack).
  for (const line of logs) {
    const m = /^Program (\w+) failed: (.*)$/.exec(line);
    if (!m) continue;
    let failing: PublicKey | null = null;
    try {
      failing = new PublicKey(m[1]!);
    } catch {
      failing = null;
    }
    const detail = m[2]!;
    const code = customCodeFrom(detail);
    if (code !== null) {
      const typed = classify(code, failing !== null && failing.equals(programId), ctx);
      if (typed) return typed;
    }
    return new TransactionFailedError(detail, { ...ctx, programId: failing, code });
  }

  const code = fromObject?.code ?? customCodeFrom(message);
  if (code !== null) {
    // Without logs the failing program is unknown; a code in our range is taken as ours.
    const typed = classify(code, true, ctx);
    if (typed) return typed;
    return new TransactionFailedError(`custom program error: 0x${code.toString(16)}`, { ...ctx, programId: null, code });
  }
  if (fromObject) return new TransactionFailedError(fromObject.detail, { ...ctx, programId: null, code: null });
  if (typeof err === "object" && err !== null && !(err instanceof Error)) {
    return new TransactionFailedError(JSON.stringify(err), { ...ctx, programId: null, code: null });
  }
  if (/Transaction simulation failed|failed to send transaction|Error processing Instruction/.test(message)) {
    return new TransactionFailedError(message, { ...ctx, programId: null, code: null });
  }
  return null;
}

/** Our program's error behind `err` (a typed one, or a raw failure that maps to one), else null. */
export function asVaultError(err: unknown, options: { programId?: PublicKey } = {}): VaultProgramError | null {
  const parsed = parseTransactionError(err, options);
  return parsed instanceof VaultProgramError ? parsed : null;
}

/** Whether `err` is (or maps to) our program's error, optionally a given one. */
export function isVaultError(err: unknown, name?: VaultErrorName): boolean {
  const parsed = asVaultError(err);
  return parsed !== null && (name === undefined || parsed.errorName === name);
}

/** Rethrows a failure as its typed error (or as it was, when it is not a transaction failure). */
export function toTypedError(err: unknown, options: { logs?: string[]; programId?: PublicKey } = {}): unknown {
  return parseTransactionError(err, options) ?? err;
}
