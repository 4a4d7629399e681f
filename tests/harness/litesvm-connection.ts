// A web3.js-Connection look-alike over litesvm: the client under test talks to it exactly as it
// talks to an RPC node (raw transactions in, SendTransactionError with logs out, fetched
// transactions with inner instructions, account-change notifications).
import { getTransactionDecoder } from "@solana/kit";
import {
  PublicKey,
  SendTransactionError,
  VersionedTransaction,
  type AccountChangeCallback,
  type AccountInfo,
  type BlockhashWithExpiryBlockHeight,
  type Commitment,
  type RpcResponseAndContext,
  type SignatureResult,
  type TransactionError,
  type VersionedTransactionResponse,
} from "@solana/web3.js";
import { utils } from "@anchor-lang/core";
import { FailedTransactionMetadata, LiteSVM, type TransactionMetadata } from "litesvm";

const bs58 = utils.bytes.bs58;

const INSTRUCTION_ERRORS = [
  "GenericError", "InvalidArgument", "InvalidInstructionData", "InvalidAccountData", "AccountDataTooSmall",
  "InsufficientFunds", "IncorrectProgramId", "MissingRequiredSignature", "AccountAlreadyInitialized",
  "UninitializedAccount", "UnbalancedInstruction", "ModifiedProgramId", "ExternalAccountLamportSpend",
  "ExternalAccountDataModified", "ReadonlyLamportChange", "ReadonlyDataModified", "DuplicateAccountIndex",
  "ExecutableModified", "RentEpochModified", "NotEnoughAccountKeys", "AccountDataSizeChanged",
  "AccountNotExecutable", "AccountBorrowFailed", "AccountBorrowOutstanding", "DuplicateAccountOutOfSync",
  "InvalidError", "ExecutableDataModified", "ExecutableLamportChange", "ExecutableAccountNotRentExempt",
  "UnsupportedProgramId", "CallDepth", "MissingAccount", "ReentrancyNotAllowed", "MaxSeedLengthExceeded",
  "InvalidSeeds", "InvalidRealloc", "ComputationalBudgetExceeded", "PrivilegeEscalation",
  "ProgramEnvironmentSetupFailure", "ProgramFailedToComplete", "ProgramFailedToCompile", "Immutable",
  "IncorrectAuthority", "AccountNotRentExempt", "InvalidAccountOwner", "ArithmeticOverflow",
  "UnsupportedSysvar", "IllegalOwner", "MaxAccountsDataAllocationsExceeded", "MaxAccountsExceeded",
  "MaxInstructionTraceLengthExceeded", "BuiltinProgramsMustConsumeComputeUnits", "BorshIoError",
];

const TRANSACTION_ERRORS = [
  "AccountInUse", "AccountLoadedTwice", "AccountNotFound", "ProgramAccountNotFound", "InsufficientFundsForFee",
  "InvalidAccountForFee", "AlreadyProcessed", "BlockhashNotFound", "CallChainTooDeep", "MissingSignatureForFee",
  "InvalidAccountIndex", "SignatureFailure", "InvalidProgramForExecution", "SanitizeFailure", "ClusterMaintenance",
  "AccountBorrowOutstanding", "WouldExceedMaxBlockCostLimit", "UnsupportedVersion", "InvalidWritableAccount",
  "WouldExceedMaxAccountCostLimit", "WouldExceedAccountDataBlockLimit", "TooManyAccountLocks",
  "AddressLookupTableNotFound", "InvalidAddressLookupTableOwner", "InvalidAddressLookupTableData",
  "InvalidAddressLookupTableIndex", "InvalidRentPayingAccount", "WouldExceedMaxVoteCostLimit",
  "WouldExceedAccountDataTotalLimit", "MaxLoadedAccountsDataSizeExceeded", "ResanitizationNeeded",
  "InvalidLoadedAccountsDataSizeLimit", "UnbalancedTransaction", "ProgramCacheHitMaxLimit", "CommitCancelled",
];

/** litesvm's error as RPC reports it (`{ InstructionError: [i, { Custom: n }] }` and the like), with RPC's wording. */
function describeError(failed: FailedTransactionMetadata): { err: TransactionError; message: string } {
  const e = failed.err() as unknown;
  if (typeof e === "number") {
    const name = TRANSACTION_ERRORS[e] ?? `TransactionError${e}`;
    return { err: name, message: name };
  }
  const obj = e as { index?: number; err?: () => unknown; accountIndex?: number; toString(): string };
  if (typeof obj.index === "number" && typeof obj.err === "function") {
    const inner = obj.err() as unknown;
    if (typeof inner === "number") {
      const name = INSTRUCTION_ERRORS[inner] ?? `InstructionError${inner}`;
      return { err: { InstructionError: [obj.index, name] }, message: `Error processing Instruction ${obj.index}: ${name}` };
    }
    const custom = inner as { code?: number; msg?: string };
    if (typeof custom.code === "number") {
      return {
        err: { InstructionError: [obj.index, { Custom: custom.code }] },
        message: `Error processing Instruction ${obj.index}: custom program error: 0x${custom.code.toString(16)}`,
      };
    }
    return { err: { InstructionError: [obj.index, { BorshIoError: custom.msg ?? "" }] }, message: `Error processing Instruction ${obj.index}: ${String(inner)}` };
  }
  return { err: obj.toString(), message: obj.toString() };
}

type Subscription = { publicKey: PublicKey; callback: AccountChangeCallback; snapshot: string };

export class LiteSvmConnection {
  readonly rpcEndpoint = "litesvm://";
  private readonly landed = new Map<string, VersionedTransactionResponse>();
  private readonly subscriptions = new Map<number, Subscription>();
  private nextSubscription = 1;
  /** Every transaction sent (landed or refused), for tests that inspect them. */
  readonly sent: { signature: string; transaction: VersionedTransaction; ok: boolean; logs: string[] }[] = [];

  constructor(readonly svm: LiteSVM) {}

  private slot(): number {
    return Number(this.svm.getClock().slot);
  }

  private info(publicKey: PublicKey): AccountInfo<Buffer> | null {
    const account = this.svm.getAccount(publicKey.toBase58() as never);
    if (!account.exists) return null;
    return {
      lamports: Number(account.lamports),
      owner: new PublicKey(account.programAddress),
      data: Buffer.from(account.data),
      executable: account.executable,
      rentEpoch: 0,
    };
  }

  async getAccountInfo(publicKey: PublicKey, _commitment?: Commitment): Promise<AccountInfo<Buffer> | null> {
    return this.info(publicKey);
  }

  async getMultipleAccountsInfo(publicKeys: PublicKey[], _commitment?: Commitment): Promise<(AccountInfo<Buffer> | null)[]> {
    return publicKeys.map((k) => this.info(k));
  }

  async getBalance(publicKey: PublicKey): Promise<number> {
    return this.info(publicKey)?.lamports ?? 0;
  }

  async getMinimumBalanceForRentExemption(dataLength: number): Promise<number> {
    return Number(this.svm.minimumBalanceForRentExemption(BigInt(dataLength)));
  }

  async getProgramAccounts(
    programId: PublicKey,
    config: { filters?: ({ memcmp: { offset: number; bytes: string } } | { dataSize: number })[] } = {},
  ): Promise<{ pubkey: PublicKey; account: AccountInfo<Buffer> }[]> {
    return this.svm
      .getProgramAccounts(programId.toBase58() as never)
      .map((a) => ({
        pubkey: new PublicKey(a.address),
        account: {
          lamports: Number(a.lamports),
          owner: new PublicKey(a.programAddress),
          data: Buffer.from(a.data),
          executable: a.executable,
          rentEpoch: 0,
        },
      }))
      .filter(({ account }) =>
        (config.filters ?? []).every((f) => {
          if ("dataSize" in f) return account.data.length === f.dataSize;
          const want = bs58.decode(f.memcmp.bytes);
          return Buffer.from(want).equals(account.data.subarray(f.memcmp.offset, f.memcmp.offset + want.length));
        }),
      );
  }

  async getLatestBlockhash(_commitment?: Commitment): Promise<BlockhashWithExpiryBlockHeight> {
    return { blockhash: this.svm.latestBlockhash(), lastValidBlockHeight: this.slot() + 150 };
  }

  async sendRawTransaction(raw: Buffer | Uint8Array | number[]): Promise<string> {
    const bytes = Uint8Array.from(raw);
    const transaction = VersionedTransaction.deserialize(bytes);
    const signature = bs58.encode(transaction.signatures[0]!);
    const result = this.svm.sendTransaction(getTransactionDecoder().decode(bytes));
    if (result instanceof FailedTransactionMetadata) {
      const meta = result.meta();
      const logs = meta.logs();
      const { message } = describeError(result);
      this.sent.push({ signature, transaction, ok: false, logs });
      throw new SendTransactionError({
        action: "send",
        signature,
        transactionMessage: `Transaction simulation failed: ${message}`,
        logs,
      });
    }
    this.record(signature, transaction, result);
    this.sent.push({ signature, transaction, ok: true, logs: result.logs() });
    // A fresh blockhash, so an identical transaction later is a new one.
    this.svm.expireBlockhash();
    this.notify();
    return signature;
  }

  private record(signature: string, transaction: VersionedTransaction, meta: TransactionMetadata): void {
    const innerInstructions = meta
      .innerInstructions()
      .map((group, index) => ({
        index,
        instructions: group.map((inner) => {
          const ix = inner.instruction();
          return {
            programIdIndex: ix.programIdIndex(),
            accounts: Array.from(ix.accounts()),
            data: bs58.encode(ix.data()),
            stackHeight: inner.stackHeight(),
          };
        }),
      }))
      .filter((g) => g.instructions.length > 0);
    const response = {
      slot: this.slot(),
      blockTime: Number(this.svm.getClock().unixTimestamp),
      version: transaction.version,
      transaction: { message: transaction.message, signatures: transaction.signatures.map((s) => bs58.encode(s)) },
      meta: {
        err: null,
        fee: 5000 * transaction.message.header.numRequiredSignatures,
        preBalances: [],
        postBalances: [],
        innerInstructions,
        logMessages: meta.logs(),
        loadedAddresses: { writable: [], readonly: [] },
        computeUnitsConsumed: Number(meta.computeUnitsConsumed()),
      },
    } as unknown as VersionedTransactionResponse;
    this.landed.set(signature, response);
  }

  async confirmTransaction(strategy: { signature: string } | string): Promise<RpcResponseAndContext<SignatureResult>> {
    const signature = typeof strategy === "string" ? strategy : strategy.signature;
    if (!this.landed.has(signature)) throw new Error(`unknown transaction ${signature}`);
    return { context: { slot: this.slot() }, value: { err: null } };
  }

  async getTransaction(signature: string, _options?: unknown): Promise<VersionedTransactionResponse | null> {
    return this.landed.get(signature) ?? null;
  }

  private snapshot(publicKey: PublicKey): string {
    const info = this.info(publicKey);
    return info === null ? "none" : `${info.lamports}:${info.owner.toBase58()}:${info.data.toString("hex")}`;
  }

  onAccountChange(publicKey: PublicKey, callback: AccountChangeCallback, _config?: unknown): number {
    const id = this.nextSubscription++;
    this.subscriptions.set(id, { publicKey, callback, snapshot: this.snapshot(publicKey) });
    return id;
  }

  async removeAccountChangeListener(id: number): Promise<void> {
    this.subscriptions.delete(id);
  }

  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  /** Notifies subscribers of accounts that changed, as RPC does (a closed account: 0 lamports, system-owned). */
  notify(): void {
    for (const sub of this.subscriptions.values()) {
      const now = this.snapshot(sub.publicKey);
      if (now === sub.snapshot) continue;
      sub.snapshot = now;
      const info = this.info(sub.publicKey) ?? {
        lamports: 0,
        owner: PublicKey.default,
        data: Buffer.alloc(0),
        executable: false,
        rentEpoch: 0,
      };
      sub.callback(info, { slot: this.slot() });
    }
  }
}
