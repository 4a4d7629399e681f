// A frontend's use of @ephemeral-vault/client, bundled by Vite with no polyfill configuration:
// a parent wallet opens a session, the session key trades alone, the page watches the vault and
// closes the session. Runs in a browser that has no Buffer, process or global; the result goes
// to window.__vaultResult for scripts/test-browser.sh (tests/browser/run.mjs) to check on chain.
import { Connection, Keypair, LAMPORTS_PER_SOL, PublicKey, Transaction, VersionedTransaction } from "@solana/web3.js";
import {
  approveDelegateInstruction,
  cleanupVaultInstruction,
  closeSessionInstructions,
  createSessionInstruction,
  decodeConfig,
  decodeVault,
  depositInstruction,
  executeTradeInstruction,
  initializeConfigInstruction,
  isVaultError,
  newSessionId,
  parseTransactionError,
  sessionRef,
  setPausedInstruction,
  token2022,
  associatedTokenAddress,
  topUpFeesInstruction,
  updateConfigInstruction,
  vaultCoder,
  withdrawInstruction,
  VaultClient,
  VaultProgramError,
  type LocatedVaultEvent,
  type ParentWallet,
  type SessionUpdate,
  type VaultEventName,
  type VaultEventOf,
} from "@ephemeral-vault/client";

type NodeGlobals = Record<"Buffer" | "process" | "global", string>;

const nodeGlobals = (): NodeGlobals => ({
  Buffer: typeof (globalThis as Record<string, unknown>).Buffer,
  process: typeof (globalThis as Record<string, unknown>).process,
  global: typeof (globalThis as Record<string, unknown>).global,
});

function eventData<N extends VaultEventName>(events: LocatedVaultEvent[], name: N): VaultEventOf<N> {
  const e = events.find((ev) => ev.name === name);
  if (e === undefined) throw new Error(`no ${name} event among ${events.map((ev) => ev.name).join(", ")}`);
  return e.data as VaultEventOf<N>;
}

function until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (check()) return resolve();
      if (Date.now() - started > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 50);
    };
    poll();
  });
}

/**
 * Without a chain: every instruction builder (u64, i64 and public-key arguments), account
 * decoding, a signed transaction's serialisation, error parsing. These threw
 * "ReferenceError: Buffer is not defined" in a browser when the client used Anchor's coders.
 */
function offline(): Record<string, unknown> {
  const globalsBefore = nodeGlobals();
  const parent = Keypair.generate();
  const delegate = Keypair.generate();
  const venue = Keypair.generate().publicKey;
  const mint = Keypair.generate().publicKey;
  const sol = sessionRef(parent.publicKey, newSessionId());
  const token = sessionRef(parent.publicKey, newSessionId(), token2022(mint));
  const params = { maxSessionDuration: 86_400, minSessionDuration: 60, feeTopUpCap: 50_000_000n, cleanupRewardBps: 5000, cleanupRewardCap: 2_000_000n };
  const instructions = {
    initializeConfig: initializeConfigInstruction({ admin: parent.publicKey, params }),
    updateConfig: updateConfigInstruction({ admin: parent.publicKey, params, newAdmin: venue }),
    setPaused: setPausedInstruction({ admin: parent.publicKey, paused: true }),
    createSession: createSessionInstruction({
      parent: parent.publicKey, delegate: delegate.publicKey, sessionId: sol.sessionId, approvedAmount: 10n ** 18n,
      perTradeCap: 5n, durationSecs: 3600, destinations: [venue], initialDeposit: 7n, feeTopUp: 9n,
    }),
    createTokenSession: createSessionInstruction({
      parent: parent.publicKey, delegate: delegate.publicKey, sessionId: token.sessionId, asset: token.asset,
      approvedAmount: 1000, durationSecs: 60, initialDeposit: 1000,
    }),
    approveDelegate: approveDelegateInstruction({ session: sol, newDelegate: venue }),
    deposit: depositInstruction({ session: token, amount: 2n ** 64n - 1n }),
    withdraw: withdrawInstruction({ session: sol, amount: 1 }),
    executeTrade: executeTradeInstruction({ session: token, delegate: delegate.publicKey, destination: venue, tradeId: 42n, amount: 3n, fee: 1n }),
    topUpFees: topUpFeesInstruction({ session: sol, delegate: delegate.publicKey, amount: 5n }),
    cleanupVault: cleanupVaultInstruction({ session: token, caller: venue }),
  };
  const close = closeSessionInstructions({ session: sol });

  // A vault account as the program stores it (discriminator + Borsh), decoded.
  const vaultFields = {
    parent: parent.publicKey, delegate: delegate.publicKey, sessionId: sol.sessionId, mint: PublicKey.default,
    tokenProgram: PublicKey.default, approvedAmount: 10n ** 18n, perTradeCap: 5n, totalDeposited: 7n, totalSpent: 2n,
    totalWithdrawn: 1n, totalFeeTopUps: 0n, tradeCount: 1n, lastTradeId: 2n ** 63n,
    destinations: [venue, PublicKey.default, PublicKey.default, PublicKey.default], destinationCount: 1,
    createdAt: 1_700_000_000, expiresAt: 1_700_003_600, lastActivity: 1_700_000_100, revokedAt: 0,
    delegateRotations: 3, status: "active", bump: 254, tokenAccountBump: 0,
  };
  const VAULT_DISCRIMINATOR = [211, 8, 232, 43, 2, 152, 117, 119];
  const vaultBytes = new Uint8Array([...VAULT_DISCRIMINATOR, ...vaultCoder.encodeType("Vault", vaultFields)]);
  const vault = decodeVault(vaultBytes);
  const CONFIG_DISCRIMINATOR = [155, 12, 170, 224, 30, 250, 204, 130];
  const configBytes = new Uint8Array([
    ...CONFIG_DISCRIMINATOR,
    ...vaultCoder.encodeType("Config", { admin: parent.publicKey, paused: false, ...params, bump: 255, reserved: new Uint8Array(64) }),
  ]);
  const config = decodeConfig(configBytes);

  // A transaction signed by the parent and the session key, serialised as it would be sent.
  const tx = new Transaction({ feePayer: parent.publicKey, blockhash: "11111111111111111111111111111111", lastValidBlockHeight: 100 });
  tx.add(instructions.executeTrade, ...close);
  tx.sign(parent, delegate);
  const wire = tx.serialize();
  const back = Transaction.from(wire);

  const parsed = parseTransactionError(new Error("x"), { logs: [`Program LcbuhnHozNqGewPGm62N4kqTirH9Enzkn6fMFJBLiwC failed: custom program error: 0x177f`] });

  return {
    globalsBefore,
    globalsAfter: nodeGlobals(),
    instructions: Object.fromEntries(Object.entries(instructions).map(([k, ix]) => [k, { keys: ix.keys.length, dataLength: ix.data.length }])),
    closeInstructions: close.length,
    vault: {
      approvedAmount: String(vault.approvedAmount),
      lastTradeId: String(vault.lastTradeId),
      destinations: vault.destinations.map((d) => d.toBase58()),
      venue: venue.toBase58(),
      expiresAt: vault.expiresAt,
      status: vault.status,
      delegateRotations: vault.delegateRotations,
    },
    config: { feeTopUpCap: String(config.feeTopUpCap), maxSessionDuration: config.maxSessionDuration },
    transaction: { bytes: wire.length, signatures: back.signatures.length, verified: back.verifySignatures(), instructions: back.instructions.length },
    error: parsed ? { name: parsed.name, errorName: (parsed as VaultProgramError).errorName } : null,
  };
}

async function run(): Promise<Record<string, unknown>> {
  const globalsBefore = nodeGlobals();
  const params = new URLSearchParams(location.search);
  if (params.has("offline")) return offline();
  const rpc = params.get("rpc");
  const ws = params.get("ws");
  if (!rpc || !ws) throw new Error("the page needs ?rpc=...&ws=...");
  const connection = new Connection(rpc, { commitment: "confirmed", wsEndpoint: ws });

  // The parent: a keypair standing in for a wallet adapter (the test made it and gave it tokens
  // of a Token-2022 mint), funded with SOL by the local faucet here.
  const secret = params.get("parent");
  const parent = secret ? Keypair.fromSecretKey(Uint8Array.from(atob(secret), (c) => c.charCodeAt(0))) : Keypair.generate();
  const mintParam = params.get("mint");
  const airdrop = await connection.requestAirdrop(parent.publicKey, 2 * LAMPORTS_PER_SOL);
  const blockhash = await connection.getLatestBlockhash("confirmed");
  await connection.confirmTransaction({ signature: airdrop, ...blockhash }, "confirmed");
  const wallet: ParentWallet = {
    publicKey: parent.publicKey,
    async signTransaction<T extends Transaction | VersionedTransaction>(tx: T): Promise<T> {
      if (tx instanceof VersionedTransaction) tx.sign([parent]);
      else tx.partialSign(parent);
      return tx;
    },
  };
  const client = new VaultClient({ connection, wallet, fetchEvents: true });
  const venue = Keypair.generate().publicKey;

  // Open: one transaction the wallet signs (create the vault, deposit 0.5 SOL, fund the session key).
  const opened = await client.openSession({
    deposit: 500_000_000n,
    perTradeCap: 200_000_000n,
    durationSecs: 600,
    feeTopUp: 10_000_000n,
  });
  const session = opened.session;
  const created = eventData(opened.events, "SessionCreated");

  // Watch the vault.
  const updates: SessionUpdate[] = [];
  const subscription = session.subscribe((u) => updates.push(u));
  await until(() => updates.some((u) => u.cause === "initial" || u.cause === "account"), "the first update");

  // Trade with the session key alone (it signs and pays).
  const trade = await session.trade({ destination: venue, amount: 100_000_000n, fee: 1_000_000n });
  const traded = eventData(trade.events, "TradeExecuted");
  await until(() => updates.some((u) => u.state?.account.tradeCount === 1n), "the trade's account update");

  // A trade over the per-trade cap: refused by the program, parsed into a typed error here.
  let refusal: { name: string; message: string; typed: boolean } | null = null;
  try {
    await session.trade({ destination: venue, amount: 250_000_000n });
  } catch (e) {
    refusal = {
      name: e instanceof VaultProgramError ? e.errorName : String(e),
      message: e instanceof VaultProgramError ? e.programMessage : String(e),
      typed: isVaultError(e, "PerTradeCapExceeded"),
    };
  }

  // The vault read and decoded in the page.
  const info = await connection.getAccountInfo(session.vault, "confirmed");
  if (info === null) throw new Error("the vault is missing before closing");
  const vault = decodeVault(info.data);
  const state = await session.state();

  // Close early: revoke + cleanup in one transaction the wallet signs; everything goes back.
  const ephemeral = session.ephemeral!.publicKey;
  const closed = await session.closeEarly();
  if (closed === null) throw new Error("closeEarly found no vault");
  const cleaned = eventData(closed.events, "VaultCleaned");
  await until(() => updates.some((u) => u.status === "closed"), "the closing update");
  await subscription.unsubscribe();

  // A Token-2022 session: the trade creates the venue's token account (the session key pays).
  let token: Record<string, unknown> | null = null;
  if (mintParam) {
    const mint = new PublicKey(mintParam);
    const t = await client.openSession({ asset: token2022(mint), deposit: 3_000_000n, perTradeCap: 1_000_000n, durationSecs: 600, feeTopUp: 5_000_000n });
    const tokenTrade = await t.session.trade({ destination: venue, amount: 400_000n, fee: 100_000n, createDestinationAccount: true });
    const tokenEphemeral = t.session.ephemeral!.publicKey;
    const tokenClosed = await t.session.closeEarly();
    if (tokenClosed === null) throw new Error("closeEarly found no token vault");
    token = {
      vault: t.session.vault.toBase58(),
      ephemeral: tokenEphemeral.toBase58(),
      venueTokenAccount: associatedTokenAddress(mint, venue, t.session.asset.kind === "token" ? t.session.asset.tokenProgram : undefined).toBase58(),
      deposited: String(eventData(t.events, "Deposited").received),
      tradeDestination: eventData(tokenTrade.events, "TradeExecuted").destination.toBase58(),
      returned: String(eventData(tokenClosed.events, "VaultCleaned").returnedAmount),
      signatures: { open: t.signature, trade: tokenTrade.signature, close: tokenClosed.signature },
    };
  }

  return {
    globalsBefore,
    globalsAfter: nodeGlobals(),
    parent: parent.publicKey.toBase58(),
    venue: venue.toBase58(),
    vault: session.vault.toBase58(),
    ephemeral: ephemeral.toBase58(),
    sessionId: session.uuid,
    signatures: { open: opened.signature, trade: trade.signature, close: closed.signature },
    created: { delegate: created.delegate.toBase58(), approvedAmount: String(created.approvedAmount), feeTopUp: String(created.feeTopUp) },
    traded: { amount: String(traded.amount), fee: String(traded.fee), remainingAllowance: String(traded.remainingAllowance), tradeId: String(traded.tradeId) },
    refusal,
    decoded: {
      delegate: vault.delegate.toBase58(),
      totalDeposited: String(vault.totalDeposited),
      totalSpent: String(vault.totalSpent),
      tradeCount: String(vault.tradeCount),
      status: vault.status,
      expiresInSecs: state ? state.timeLeftSecs : null,
      balance: state ? String(state.balance) : null,
    },
    cleaned: { reason: cleaned.reason, returnedAmount: String(cleaned.returnedAmount), reward: String(cleaned.reward) },
    token,
    updates: updates.map((u) => ({
      cause: u.cause,
      status: u.status,
      tradeCount: u.state ? String(u.state.account.tradeCount) : null,
      remainingAllowance: u.state ? String(u.state.remainingAllowance) : null,
      changed: u.changed,
    })),
  };
}

const out = document.getElementById("result")!;
const status = document.getElementById("status")!;
run().then(
  (result) => {
    (window as unknown as { __vaultResult: unknown }).__vaultResult = { ok: true, result };
    status.textContent = "done";
    out.textContent = JSON.stringify(result, null, 2);
  },
  (e: unknown) => {
    const error = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ""}` : String(e);
    (window as unknown as { __vaultResult: unknown }).__vaultResult = { ok: false, error };
    status.textContent = "failed";
    out.textContent = error;
  },
);
