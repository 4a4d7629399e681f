// The session helper a trading frontend uses: open a session in one transaction (create the
// vault, deposit, and fund the ephemeral wallet's fees), trade with the ephemeral key alone, top
// up, rotate the key, and close early (revoke + cleanup in one transaction).
import type { Commitment, PublicKey, Transaction, TransactionInstruction, VersionedTransaction } from "@solana/web3.js";

import { fetchConfig, fetchSession, type ConfigAccount, type SessionState } from "./accounts.js";
import {
  associatedTokenAccount,
  associatedTokenAccountIdempotentInstruction,
  sessionRef,
  sessionVault,
  SOL,
  type Asset,
  type SessionRef,
} from "./asset.js";
import type { VaultConnection } from "./connection.js";
import { LAMPORTS_PER_SOL, PROGRAM_ID } from "./constants.js";
import { EphemeralKey, sealEphemeralKey, unsealEphemeralKey, type MessageSigner } from "./ephemeral-key.js";
import { fetchTransactionEvents, type LocatedVaultEvent } from "./events.js";
import {
  approveDelegateInstruction,
  cleanupVaultInstruction,
  createSessionInstruction,
  depositInstruction,
  executeTradeInstruction,
  revokeSessionInstruction,
  topUpFeesInstruction,
  withdrawInstruction,
} from "./instructions.js";
import { toU64, type Amount } from "./internal/bytes.js";
import { asSessionId, newSessionId, sessionIdToUuid, type SessionId } from "./session-id.js";
import { subscribeToSession, type SessionSubscription, type SessionUpdate, type SubscribeOptions } from "./subscribe.js";
import { buildTransaction, sendAndConfirm } from "./transaction.js";

/** The parent's wallet, as wallet adapters and Anchor's `Wallet` provide it. */
export interface ParentWallet {
  publicKey: PublicKey;
  signTransaction<T extends Transaction | VersionedTransaction>(tx: T): Promise<T>;
  /** Needed only to seal / unseal ephemeral keys. */
  signMessage?(message: Uint8Array): Promise<Uint8Array | { signature: Uint8Array }>;
}

/** Defaults of `openSession`. */
export const SESSION_DEFAULTS = Object.freeze({
  /** One hour, clamped into the config's bounds. */
  durationSecs: 3600,
  /** 0.01 SOL for the ephemeral wallet's fees, capped by the config's fee top-up cap. */
  feeTopUp: LAMPORTS_PER_SOL / 100n,
});

export interface VaultClientOptions {
  connection: VaultConnection;
  wallet: ParentWallet;
  programId?: PublicKey;
  /** Commitment for reads and confirmations (default "confirmed"). */
  commitment?: Commitment;
  /** Priority fee, micro-lamports per compute unit, added to every transaction. */
  computeUnitPrice?: Amount;
  skipPreflight?: boolean;
  /** Fetch each landed transaction and decode its events into the result (one more request). */
  fetchEvents?: boolean;
}

export interface SendResult {
  signature: string;
  /** The program's events, when the client was made with `fetchEvents`. */
  events: LocatedVaultEvent[];
}

export interface OpenSessionParams {
  /** SOL by default. */
  asset?: Asset;
  /** Deposited into the vault when it is created, in the asset's base units. */
  deposit: Amount;
  /** Most the ephemeral wallet may ever spend; the deposit by default. */
  approvedAmount?: Amount;
  /** Most one trade (amount plus fee) may spend; the approved amount by default. */
  perTradeCap?: Amount;
  /** Session length; SESSION_DEFAULTS.durationSecs clamped to the config by default. */
  durationSecs?: number;
  /** Allowed trade destinations; any by default. */
  destinations?: PublicKey[];
  /** Lamports from the parent to the ephemeral wallet for its fees; see SESSION_DEFAULTS. */
  feeTopUp?: Amount;
  /** A new random UUID by default. */
  sessionId?: SessionId | string;
  /** A new key by default. */
  ephemeral?: EphemeralKey;
  /** Token sessions: the parent's token account (its ATA by default). */
  parentTokenAccount?: PublicKey;
}

export interface TradeParams {
  /** The receiving wallet (SOL) or token-account owner (tokens). */
  destination: PublicKey;
  amount: Amount;
  fee?: Amount;
  /** Must exceed the session's last; by default a fresh increasing id. */
  tradeId?: Amount;
  /** Token sessions: the receiving token account (the destination's ATA by default). */
  destinationTokenAccount?: PublicKey;
  /** Token sessions: create the destination's ATA first if missing (the ephemeral wallet pays its rent). */
  createDestinationAccount?: boolean;
}

/** Talks to the program for one parent wallet. */
export class VaultClient {
  readonly connection: VaultConnection;
  readonly wallet: ParentWallet;
  readonly programId: PublicKey;
  readonly commitment: Commitment;
  private readonly options: VaultClientOptions;
  private configCache: ConfigAccount | null = null;

  constructor(options: VaultClientOptions) {
    this.options = options;
    this.connection = options.connection;
    this.wallet = options.wallet;
    this.programId = options.programId ?? PROGRAM_ID;
    this.commitment = options.commitment ?? "confirmed";
  }

  get parent(): PublicKey {
    return this.wallet.publicKey;
  }

  /** The deployment's config (cached; `refresh` to read again). */
  async config(refresh = false): Promise<ConfigAccount> {
    if (this.configCache === null || refresh) {
      const config = await fetchConfig(this.connection, { commitment: this.commitment, programId: this.programId });
      if (config === null) throw new Error("the program's config is not initialised");
      this.configCache = config;
    }
    return this.configCache;
  }

  /**
   * Signs (the parent's wallet first, then the ephemeral key), sends and confirms `instructions`.
   * Program refusals are thrown as VaultProgramError with the program's message.
   */
  async send(
    instructions: TransactionInstruction[],
    signers: { parent?: boolean; ephemeral?: EphemeralKey; feePayer?: PublicKey } = { parent: true },
  ): Promise<SendResult> {
    const feePayer = signers.feePayer ?? (signers.parent ? this.parent : signers.ephemeral?.publicKey);
    if (feePayer === undefined) throw new TypeError("no signer to pay the fee");
    let tx = await buildTransaction(this.connection, {
      feePayer,
      instructions,
      commitment: this.commitment,
      ...(this.options.computeUnitPrice !== undefined ? { computeUnitPrice: this.options.computeUnitPrice } : {}),
    });
    const { lastValidBlockHeight } = tx;
    if (signers.parent) tx = await this.wallet.signTransaction(tx);
    // A wallet may hand back a re-deserialised copy, which forgets the block height.
    if (tx.lastValidBlockHeight === undefined) tx.lastValidBlockHeight = lastValidBlockHeight;
    if (signers.ephemeral) signers.ephemeral.signTransaction(tx);
    const signature = await sendAndConfirm(this.connection, tx, {
      commitment: this.commitment,
      programId: this.programId,
      ...(this.options.skipPreflight !== undefined ? { skipPreflight: this.options.skipPreflight } : {}),
    });
    const events = this.options.fetchEvents ? await this.events(signature) : [];
    return { signature, events };
  }

  /** The program's events in a landed transaction. */
  events(signature: string): Promise<LocatedVaultEvent[]> {
    return fetchTransactionEvents(this.connection, signature, {
      programId: this.programId,
      commitment: this.commitment === "processed" ? "confirmed" : (this.commitment as "confirmed" | "finalized"),
    });
  }

  /**
   * Opens a session in one transaction the parent signs: creates the vault (and its token
   * account), deposits, and pays the ephemeral wallet's fee top-up.
   */
  async openSession(params: OpenSessionParams): Promise<{ session: VaultSession } & SendResult> {
    const config = await this.config();
    const asset = params.asset ?? SOL;
    const deposit = toU64(params.deposit, "deposit");
    const approvedAmount = toU64(params.approvedAmount ?? deposit, "approvedAmount");
    const durationSecs =
      params.durationSecs ??
      Math.min(config.maxSessionDuration, Math.max(config.minSessionDuration, SESSION_DEFAULTS.durationSecs));
    const feeTopUp =
      params.feeTopUp !== undefined
        ? toU64(params.feeTopUp, "feeTopUp")
        : config.feeTopUpCap < SESSION_DEFAULTS.feeTopUp
          ? config.feeTopUpCap
          : SESSION_DEFAULTS.feeTopUp;
    const sessionId = params.sessionId === undefined ? newSessionId() : asSessionId(params.sessionId);
    const ephemeral = params.ephemeral ?? EphemeralKey.generate();
    const ref = sessionRef(this.parent, sessionId, asset, this.programId);
    const ix = createSessionInstruction({
      parent: this.parent,
      delegate: ephemeral.publicKey,
      sessionId,
      asset,
      approvedAmount,
      perTradeCap: params.perTradeCap ?? approvedAmount,
      durationSecs,
      destinations: params.destinations ?? [],
      initialDeposit: deposit,
      feeTopUp,
      ...(params.parentTokenAccount ? { parentTokenAccount: params.parentTokenAccount } : {}),
      programId: this.programId,
    });
    const result = await this.send([ix], { parent: true });
    const session = new VaultSession(this, ref, ephemeral, params.parentTokenAccount);
    return { session, ...result };
  }

  /**
   * A handle on an existing session of this parent, read from chain (for its asset). Pass the
   * ephemeral key to trade with it; without one only the parent's actions are available.
   */
  async session(sessionId: SessionId | string, ephemeral?: EphemeralKey): Promise<VaultSession> {
    const ref = sessionRef(this.parent, sessionId, SOL, this.programId);
    const state = await fetchSession(this.connection, ref, { commitment: this.commitment, programId: this.programId });
    if (state === null) throw new Error(`session ${sessionIdToUuid(ref.sessionId)} does not exist (or was closed)`);
    const session = new VaultSession(this, state.ref, ephemeral ?? null);
    session.noteTradeId(state.account.lastTradeId);
    return session;
  }

  /** Re-opens a session with its sealed ephemeral key (the wallet signs the key message). */
  async resumeSession(sessionId: SessionId | string, sealed: string | Uint8Array): Promise<VaultSession> {
    const ephemeral = await unsealEphemeralKey(sealed, this.messageSigner());
    return this.session(sessionId, ephemeral);
  }

  /** The wallet as a MessageSigner, for sealing keys. */
  messageSigner(): MessageSigner {
    const wallet = this.wallet;
    if (typeof wallet.signMessage !== "function") throw new Error("this wallet cannot sign messages");
    return { publicKey: wallet.publicKey, signMessage: (m) => wallet.signMessage!(m) };
  }
}

/** One open session. */
export class VaultSession {
  readonly vault: PublicKey;
  private lastTradeId = 0n;

  constructor(
    readonly client: VaultClient,
    readonly ref: SessionRef,
    private ephemeralKey: EphemeralKey | null,
    private readonly parentTokenAccount?: PublicKey,
  ) {
    this.vault = sessionVault(ref);
  }

  get sessionId(): SessionId {
    return Uint8Array.from(this.ref.sessionId);
  }

  get uuid(): string {
    return sessionIdToUuid(this.ref.sessionId);
  }

  get asset(): Asset {
    return this.ref.asset;
  }

  /** The current ephemeral key (its public key is the delegate), or null when not held here. */
  get ephemeral(): EphemeralKey | null {
    return this.ephemeralKey;
  }

  private requireEphemeral(): EphemeralKey {
    if (this.ephemeralKey === null || this.ephemeralKey.disposed) {
      throw new Error("this session's ephemeral key is not available here (resume it with its sealed key)");
    }
    return this.ephemeralKey;
  }

  /** Remembers a trade id seen elsewhere, so the default ids stay above it. */
  noteTradeId(id: bigint): void {
    if (id > this.lastTradeId) this.lastTradeId = id;
  }

  /** A trade id above every one used so far: time-based, so it keeps increasing across reloads. */
  nextTradeId(): bigint {
    const timeBased = BigInt(Date.now()) * 1000n;
    this.lastTradeId = timeBased > this.lastTradeId ? timeBased : this.lastTradeId + 1n;
    return this.lastTradeId;
  }

  /** The session as it is on chain now (null once cleaned up). */
  state(options: { now?: number } = {}): Promise<SessionState | null> {
    return fetchSession(this.client.connection, this.ref, {
      commitment: this.client.commitment,
      programId: this.client.programId,
      ...options,
    });
  }

  /** Reports every change of the session (and its expiry, and its closing). */
  subscribe(onUpdate: (update: SessionUpdate) => void, options: SubscribeOptions = {}): SessionSubscription {
    return subscribeToSession(this.client.connection, this.vault, onUpdate, {
      commitment: this.client.commitment,
      programId: this.client.programId,
      ...options,
    });
  }

  /** Pays a trade from the vault, signed and paid for by the ephemeral wallet alone. */
  async trade(params: TradeParams): Promise<SendResult & { tradeId: bigint }> {
    const ephemeral = this.requireEphemeral();
    let tradeId: bigint;
    if (params.tradeId !== undefined) {
      tradeId = toU64(params.tradeId, "tradeId");
      this.noteTradeId(tradeId);
    } else {
      tradeId = this.nextTradeId();
    }
    const instructions: TransactionInstruction[] = [];
    if (params.createDestinationAccount && this.asset.kind === "token") {
      const ata = associatedTokenAccount(this.asset, params.destination);
      if (params.destinationTokenAccount && !params.destinationTokenAccount.equals(ata)) {
        throw new TypeError("createDestinationAccount creates the destination's associated token account only");
      }
      instructions.push(
        associatedTokenAccountIdempotentInstruction({
          payer: ephemeral.publicKey,
          owner: params.destination,
          mint: this.asset.mint,
          tokenProgram: this.asset.tokenProgram,
        }),
      );
    }
    instructions.push(
      executeTradeInstruction({
        session: this.ref,
        delegate: ephemeral.publicKey,
        destination: params.destination,
        ...(params.destinationTokenAccount ? { destinationTokenAccount: params.destinationTokenAccount } : {}),
        tradeId,
        amount: params.amount,
        fee: params.fee ?? 0n,
      }),
    );
    const result = await this.client.send(instructions, { ephemeral });
    return { ...result, tradeId };
  }

  /** Moves lamports from a SOL vault to the ephemeral wallet for its fees (counts against the cap). */
  topUpFees(amount: Amount): Promise<SendResult> {
    const ephemeral = this.requireEphemeral();
    return this.client.send([topUpFeesInstruction({ session: this.ref, delegate: ephemeral.publicKey, amount })], { ephemeral });
  }

  private tokenAccountOption(): { parentTokenAccount?: PublicKey } {
    return this.parentTokenAccount ? { parentTokenAccount: this.parentTokenAccount } : {};
  }

  /** Adds funds (parent). */
  deposit(amount: Amount): Promise<SendResult> {
    return this.client.send([depositInstruction({ session: this.ref, amount, ...this.tokenAccountOption() })]);
  }

  /** Takes funds back (parent), at any time. */
  withdraw(amount: Amount): Promise<SendResult> {
    return this.client.send([withdrawInstruction({ session: this.ref, amount, ...this.tokenAccountOption() })]);
  }

  /** Replaces the ephemeral key (parent signs); the old key loses every power and is disposed. */
  async rotateKey(next: EphemeralKey = EphemeralKey.generate()): Promise<SendResult> {
    const result = await this.client.send([approveDelegateInstruction({ session: this.ref, newDelegate: next.publicKey })]);
    this.ephemeralKey?.dispose();
    this.ephemeralKey = next;
    return result;
  }

  /** Ends the session now (parent); funds stay until a cleanup. */
  revoke(): Promise<SendResult> {
    return this.client.send([revokeSessionInstruction({ session: this.ref })]);
  }

  /** Closes the vault after expiry or revocation, the parent as caller (so it keeps the reward). */
  cleanup(): Promise<SendResult> {
    return this.client.send([cleanupVaultInstruction({ session: this.ref, caller: this.client.parent, ...this.tokenAccountOption() })]);
  }

  /**
   * Ends the session and returns everything to the parent in one transaction: revoke (unless
   * already revoked) then cleanup. Returns null when the vault is already closed.
   */
  async closeEarly(): Promise<SendResult | null> {
    const state = await this.state();
    if (state === null) {
      this.dispose();
      return null;
    }
    const instructions: TransactionInstruction[] = [];
    if (state.account.status === "active") instructions.push(revokeSessionInstruction({ session: this.ref }));
    instructions.push(cleanupVaultInstruction({ session: this.ref, caller: this.client.parent, ...this.tokenAccountOption() }));
    const result = await this.client.send(instructions);
    this.dispose();
    return result;
  }

  /** Seals the ephemeral key for storage with the parent wallet's signature (base64). */
  seal(): Promise<string> {
    return sealEphemeralKey(this.requireEphemeral(), this.client.messageSigner());
  }

  /** Forgets the ephemeral key. */
  dispose(): void {
    this.ephemeralKey?.dispose();
  }

  toJSON(): { vault: string; sessionId: string; parent: string; delegate: string | null } {
    return {
      vault: this.vault.toBase58(),
      sessionId: this.uuid,
      parent: this.ref.parent.toBase58(),
      delegate: this.ephemeralKey?.publicKey.toBase58() ?? null,
    };
  }
}

