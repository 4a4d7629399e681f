// Where the tests run: the real program in litesvm (default), or a local validator when
// ANCHOR_PROVIDER_URL or VAULT_RPC_URL is set (the program deployed as upgradeable at its id,
// with the wallet in ANCHOR_WALLET / VAULT_ADMIN_KEYPAIR, default ~/.config/solana/id.json, as
// its upgrade authority).
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import {
  Connection,
  Keypair,
  PublicKey,
  SystemProgram,
  type AccountInfo,
  type Signer,
  type TransactionInstruction,
} from "@solana/web3.js";
import { FailedTransactionMetadata, LiteSVM } from "litesvm";

import {
  buildTransaction,
  eventsFromTransaction,
  fetchChainTime,
  fetchConfig,
  initializeConfigInstruction,
  programDataAddress,
  PROGRAM_ID,
  sendAndConfirm,
  setPausedInstruction,
  updateConfigInstruction,
  type ConfigParams,
  type LocatedVaultEvent,
  type ProgramAccountsReader,
  type VaultConnection,
} from "../../app/dist/index.js";
import { LiteSvmConnection } from "./litesvm-connection.js";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, "../..");
export const PROGRAM_SO = process.env.EPHEMERAL_VAULT_SO ?? resolve(REPO_ROOT, "target/deploy/ephemeral_vault.so");

/** litesvm's clock starts at the real time, so the local clock a frontend judges expiry by agrees with it. */
export const startTime = (): number => Math.floor(Date.now() / 1000);
export const SOL = 1_000_000_000;

export type ChainConnection = VaultConnection &
  ProgramAccountsReader & {
    getBalance(publicKey: PublicKey): Promise<number>;
    getMinimumBalanceForRentExemption(dataLength: number): Promise<number>;
  };

export interface TestChain {
  kind: "litesvm" | "rpc";
  connection: ChainConnection;
  /** The program's upgrade authority, funded. */
  admin: Keypair;
  /** The shortest session the tests open when they mean to see it expire. */
  shortDuration: number;
  now(): Promise<number>;
  /** Moves the cluster clock forward (litesvm) or waits for it (validator). */
  advance(seconds: number): Promise<void>;
  fund(publicKey: PublicKey, lamports: number): Promise<void>;
  newWallet(lamports?: number): Promise<Keypair>;
  getAccount(publicKey: PublicKey): Promise<AccountInfo<Buffer> | null>;
  balance(publicKey: PublicKey): Promise<number>;
  /** litesvm only: the raw VM, for tests that set up states by hand. */
  svm?: LiteSVM;
}

export function rpcUrl(): string | undefined {
  return process.env.VAULT_RPC_URL || process.env.ANCHOR_PROVIDER_URL || undefined;
}

let cachedSo: Uint8Array | undefined;
function programBytes(): Uint8Array {
  if (cachedSo === undefined) {
    try {
      cachedSo = readFileSync(PROGRAM_SO);
    } catch (e) {
      throw new Error(`cannot read ${PROGRAM_SO}; build it with scripts/build-program.sh (${String(e)})`);
    }
  }
  return cachedSo;
}

/** Loads the program as an upgradeable program whose upgrade authority is `authority`. */
export function deployUpgradeable(svm: LiteSVM, programId: PublicKey, authority: PublicKey): void {
  svm.addProgram(programId.toBase58() as never, programBytes());
  const programData = programDataAddress(programId);
  const existing = svm.getAccount(programData.toBase58() as never);
  const program = svm.getAccount(programId.toBase58() as never);
  const ownedByUpgradeable = program.exists && program.programAddress === "BPFLoaderUpgradeab1e11111111111111111111111";
  if (existing.exists && ownedByUpgradeable) {
    // ProgramData: u32 tag (3), u64 slot, Option<Pubkey> upgrade authority, then the ELF.
    const data = Uint8Array.from(existing.data);
    data[12] = 1;
    data.set(authority.toBytes(), 13);
    svm.setAccount({ ...existing, data } as never);
    return;
  }
  // Older litesvm: write both accounts of an upgradeable deployment ourselves.
  const elf = programBytes();
  const dataAccount = new Uint8Array(45 + elf.length);
  const view = new DataView(dataAccount.buffer);
  view.setUint32(0, 3, true);
  view.setBigUint64(4, 0n, true);
  dataAccount[12] = 1;
  dataAccount.set(authority.toBytes(), 13);
  dataAccount.set(elf, 45);
  const programAccount = new Uint8Array(36);
  new DataView(programAccount.buffer).setUint32(0, 2, true);
  programAccount.set(programData.toBytes(), 4);
  const loader = "BPFLoaderUpgradeab1e11111111111111111111111";
  svm.setAccount({
    address: programData.toBase58(),
    lamports: svm.minimumBalanceForRentExemption(BigInt(dataAccount.length)),
    programAddress: loader,
    executable: false,
    data: dataAccount,
  } as never);
  svm.setAccount({
    address: programId.toBase58(),
    lamports: svm.minimumBalanceForRentExemption(36n),
    programAddress: loader,
    executable: true,
    data: programAccount,
  } as never);
}

function liteSvmChain(): TestChain {
  const svm = new LiteSVM();
  const admin = Keypair.generate();
  deployUpgradeable(svm, PROGRAM_ID, admin.publicKey);
  const clock = svm.getClock();
  clock.unixTimestamp = BigInt(startTime());
  svm.setClock(clock);
  const connection = new LiteSvmConnection(svm);
  const fund = async (publicKey: PublicKey, lamports: number) => {
    const result = svm.airdrop(publicKey.toBase58() as never, BigInt(lamports) as never);
    if (result === null || result instanceof FailedTransactionMetadata) throw new Error(`airdrop to ${publicKey.toBase58()} failed`);
    connection.notify();
  };
  const chain: TestChain = {
    kind: "litesvm",
    connection: connection as unknown as ChainConnection,
    admin,
    shortDuration: 120,
    svm,
    async now() {
      return Number(svm.getClock().unixTimestamp);
    },
    async advance(seconds: number) {
      const c = svm.getClock();
      c.unixTimestamp += BigInt(seconds);
      c.slot += BigInt(Math.max(0, Math.ceil(seconds * 2.5)));
      svm.setClock(c);
    },
    fund,
    async newWallet(lamports = 10 * SOL) {
      const kp = Keypair.generate();
      if (lamports > 0) await fund(kp.publicKey, lamports);
      return kp;
    },
    getAccount: (k) => connection.getAccountInfo(k),
    balance: (k) => connection.getBalance(k),
  };
  return chain;
}

function loadKeypair(path: string): Keypair {
  return Keypair.fromSecretKey(Uint8Array.from(JSON.parse(readFileSync(path, "utf8")) as number[]));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rpcChain(url: string): TestChain {
  const connection = new Connection(url, { commitment: "confirmed" });
  const adminPath =
    process.env.VAULT_ADMIN_KEYPAIR || process.env.ANCHOR_WALLET || resolve(homedir(), ".config/solana/id.json");
  const admin = loadKeypair(adminPath);
  const chain: TestChain = {
    kind: "rpc",
    connection: connection as unknown as ChainConnection,
    admin,
    shortDuration: 3,
    now: () => fetchChainTime(connection, "confirmed"),
    async advance(seconds: number) {
      const target = (await chain.now()) + seconds;
      while ((await chain.now()) < target) await sleep(400);
    },
    async fund(publicKey: PublicKey, lamports: number) {
      const tx = await buildTransaction(connection, {
        feePayer: admin.publicKey,
        instructions: [SystemProgram.transfer({ fromPubkey: admin.publicKey, toPubkey: publicKey, lamports })],
      });
      tx.sign(admin);
      await sendAndConfirm(connection, tx);
    },
    async newWallet(lamports = 2 * SOL) {
      const kp = Keypair.generate();
      if (lamports > 0) await chain.fund(kp.publicKey, lamports);
      return kp;
    },
    getAccount: (k) => connection.getAccountInfo(k, "confirmed"),
    balance: (k) => connection.getBalance(k, "confirmed"),
  };
  return chain;
}

/**
 * On a local validator the admin pays for every test wallet: top it up from the validator's
 * faucet (requestAirdrop) when it runs low, so any keypair can serve as the upgrade authority.
 */
async function fundAdminFromFaucet(chain: TestChain): Promise<void> {
  if ((await chain.balance(chain.admin.publicKey)) >= 50 * SOL) return;
  const connection = chain.connection as unknown as Connection;
  const signature = await connection.requestAirdrop(chain.admin.publicKey, 500 * SOL);
  const { blockhash, lastValidBlockHeight } = await connection.getLatestBlockhash("confirmed");
  await connection.confirmTransaction({ signature, blockhash, lastValidBlockHeight }, "confirmed");
}

/** A chain with the program deployed; its config is not touched. */
export function startChain(): TestChain {
  const url = rpcUrl();
  return url ? rpcChain(url) : liteSvmChain();
}

export interface Landed {
  signature: string;
  events: LocatedVaultEvent[];
  logs: string[];
}

/**
 * Sends `instructions` through the client's own transaction path (buildTransaction,
 * sendAndConfirm): the first signer pays. Decodes the landed transaction's events (strictly).
 */
export async function send(chain: TestChain, instructions: TransactionInstruction[], signers: Signer[]): Promise<Landed> {
  const tx = await buildTransaction(chain.connection, { feePayer: signers[0]!.publicKey, instructions });
  tx.sign(...signers);
  const signature = await sendAndConfirm(chain.connection, tx);
  const landed = await chain.connection.getTransaction(signature, { commitment: "confirmed", maxSupportedTransactionVersion: 0 });
  if (landed === null) throw new Error(`transaction ${signature} not found`);
  return { signature, events: eventsFromTransaction(landed, { strict: true }), logs: landed.meta?.logMessages ?? [] };
}

/** Times agree exactly in litesvm; a validator's clock moves between two reads. */
export function assertNear(chain: TestChain, actual: number, expected: number): void {
  const tolerance = chain.kind === "litesvm" ? 0 : 5;
  if (Math.abs(actual - expected) > tolerance) {
    throw new Error(`expected ${actual} within ${tolerance}s of ${expected}`);
  }
}

export function testParams(chain: TestChain): ConfigParams {
  return {
    maxSessionDuration: 24 * 60 * 60,
    minSessionDuration: Math.min(60, chain.shortDuration),
    feeTopUpCap: 50_000_000n,
    cleanupRewardBps: 5_000,
    cleanupRewardCap: 2_000_000n,
  };
}

/** A chain whose config holds `testParams`, unpaused, with the admin as its admin. */
export async function startConfiguredChain(): Promise<TestChain> {
  const chain = startChain();
  if (chain.kind === "litesvm") await chain.fund(chain.admin.publicKey, 100 * SOL);
  else await fundAdminFromFaucet(chain);
  const params = testParams(chain);
  const config = await fetchConfig(chain.connection);
  if (config === null) {
    await send(chain, [initializeConfigInstruction({ admin: chain.admin.publicKey, params })], [chain.admin]);
  } else {
    const ixs = [updateConfigInstruction({ admin: chain.admin.publicKey, params })];
    if (config.paused) ixs.push(setPausedInstruction({ admin: chain.admin.publicKey, paused: false }));
    await send(chain, ixs, [chain.admin]);
  }
  return chain;
}
