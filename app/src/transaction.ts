// Ready transactions: a recent blockhash, the fee payer, an optional priority fee, and sending
// with typed errors.
import {
  ComputeBudgetProgram,
  Transaction,
  type Commitment,
  type Finality,
  type PublicKey,
  type TransactionInstruction,
  type VersionedTransactionResponse,
} from "@solana/web3.js";

import type { TransactionReader, TransactionSender } from "./connection.js";
import { MAX_SUPPORTED_TRANSACTION_VERSION, PROGRAM_ID } from "./constants.js";
import {
  parseTransactionError,
  TransactionFailedError,
  toTypedError,
  unsupportedTransactionVersion,
  UnsupportedTransactionVersionError,
} from "./errors.js";
import { toU64, type Amount } from "./internal/bytes.js";

export interface ComputeBudgetOptions {
  /** Compute unit limit for the whole transaction (the runtime's default when absent). */
  computeUnitLimit?: number;
  /** Priority fee in micro-lamports per compute unit. */
  computeUnitPrice?: Amount;
}

/** Prepends compute-budget instructions when asked for. */
export function withComputeBudget(instructions: TransactionInstruction[], options: ComputeBudgetOptions = {}): TransactionInstruction[] {
  const out: TransactionInstruction[] = [];
  if (options.computeUnitLimit !== undefined) {
    out.push(ComputeBudgetProgram.setComputeUnitLimit({ units: options.computeUnitLimit }));
  }
  if (options.computeUnitPrice !== undefined && toU64(options.computeUnitPrice, "computeUnitPrice") > 0n) {
    out.push(ComputeBudgetProgram.setComputeUnitPrice({ microLamports: toU64(options.computeUnitPrice) }));
  }
  return [...out, ...instructions];
}

export interface BuildTransactionParams extends ComputeBudgetOptions {
  feePayer: PublicKey;
  instructions: TransactionInstruction[];
  commitment?: Commitment;
}

/** A legacy Transaction with a fresh blockhash (and its last valid block height), ready to sign. */
export async function buildTransaction(
  connection: Pick<TransactionSender, "getLatestBlockhash">,
  params: BuildTransactionParams,
): Promise<Transaction> {
  const { blockhash, lastValidBlockHeight } = await connection.getLatestBlockhash(params.commitment ?? "confirmed");
  return new Transaction({ feePayer: params.feePayer, blockhash, lastValidBlockHeight }).add(
    ...withComputeBudget(params.instructions, params),
  );
}

/**
 * `getTransaction` for the newest version this package reads (MAX_SUPPORTED_TRANSACTION_VERSION).
 * A transaction of a newer version throws UnsupportedTransactionVersionError, whether the node
 * refuses it (JSON-RPC -32015) or returns it anyway. null when the node does not have it.
 */
export async function fetchTransaction(
  connection: TransactionReader,
  signature: string,
  commitment: Finality = "confirmed",
): Promise<VersionedTransactionResponse | null> {
  let tx: VersionedTransactionResponse | null;
  try {
    tx = await connection.getTransaction(signature, { commitment, maxSupportedTransactionVersion: MAX_SUPPORTED_TRANSACTION_VERSION });
  } catch (e) {
    const version = unsupportedTransactionVersion(e);
    if (version !== undefined) throw new UnsupportedTransactionVersionError(signature, version, MAX_SUPPORTED_TRANSACTION_VERSION, e);
    throw e;
  }
  const version: unknown = tx?.version;
  if (typeof version === "number" && version > MAX_SUPPORTED_TRANSACTION_VERSION) {
    throw new UnsupportedTransactionVersionError(signature, version, MAX_SUPPORTED_TRANSACTION_VERSION);
  }
  return tx;
}

export interface SendOptions {
  commitment?: Commitment;
  skipPreflight?: boolean;
  programId?: PublicKey;
}

/**
 * Sends a fully signed transaction built by `buildTransaction` and waits for confirmation.
 * Failures are thrown as typed errors (VaultProgramError, AnchorFrameworkError,
 * TransactionFailedError).
 */
export async function sendAndConfirm(
  connection: TransactionSender & Partial<TransactionReader>,
  tx: Transaction,
  options: SendOptions = {},
): Promise<string> {
  const commitment = options.commitment ?? "confirmed";
  const programId = options.programId ?? PROGRAM_ID;
  if (tx.recentBlockhash === undefined || tx.lastValidBlockHeight === undefined) {
    throw new TypeError("the transaction needs a blockhash and its last valid block height (use buildTransaction)");
  }
  let signature: string;
  try {
    signature = await connection.sendRawTransaction(tx.serialize(), {
      skipPreflight: options.skipPreflight ?? false,
      preflightCommitment: commitment,
    });
  } catch (e) {
    throw toTypedError(e, { programId });
  }
  const result = await connection.confirmTransaction(
    { signature, blockhash: tx.recentBlockhash, lastValidBlockHeight: tx.lastValidBlockHeight },
    commitment,
  );
  if (result.value.err !== null) {
    let logs: string[] = [];
    if (connection.getTransaction) {
      const landedCommitment: Finality = commitment === "finalized" ? "finalized" : "confirmed";
      try {
        const landed = await fetchTransaction(connection as TransactionReader, signature, landedCommitment);
        logs = landed?.meta?.logMessages ?? [];
      } catch (e) {
        // A version this client cannot read is said so; a failed read only costs the logs.
        if (e instanceof UnsupportedTransactionVersionError) throw e;
      }
    }
    throw (
      parseTransactionError(result.value.err, { logs, programId }) ??
      new TransactionFailedError(JSON.stringify(result.value.err), { logs, programId: null, code: null, instructionIndex: null })
    );
  }
  return signature;
}
