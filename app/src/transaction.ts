// Ready transactions: a recent blockhash, the fee payer, an optional priority fee, and sending
// with typed errors.
import {
  ComputeBudgetProgram,
  Transaction,
  type Commitment,
  type PublicKey,
  type TransactionInstruction,
} from "@solana/web3.js";

import type { TransactionReader, TransactionSender } from "./connection.js";
import { PROGRAM_ID } from "./constants.js";
import { parseTransactionError, TransactionFailedError, toTypedError } from "./errors.js";
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
      const landed = await connection
        .getTransaction(signature, { commitment: commitment === "processed" ? "confirmed" : (commitment as "confirmed"), maxSupportedTransactionVersion: 0 })
        .catch(() => null);
      logs = landed?.meta?.logMessages ?? [];
    }
    throw (
      parseTransactionError(result.value.err, { logs, programId }) ??
      new TransactionFailedError(JSON.stringify(result.value.err), { logs, programId: null, code: null, instructionIndex: null })
    );
  }
  return signature;
}
