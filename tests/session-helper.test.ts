// The frontend's view: VaultClient and VaultSession over a connection, with a wallet-adapter-like
// parent wallet and an ephemeral key that trades alone. A full lifecycle, refusals as typed
// errors, the subscription (including expiry and closing), and a Token-2022 session.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Keypair } from "@solana/web3.js";

import {
  fetchSessionsOf,
  LAMPORTS_PER_SOL,
  newSessionId,
  subscribeToSession,
  vaultAddress,
  vaultTokenAddress,
  VaultClient,
  VaultProgramError,
  type SessionUpdate,
} from "../app/dist/index.js";
import { eventNames, eventOf, expectVaultError } from "./harness/assert.js";
import { SOL, startConfiguredChain, type TestChain } from "./harness/chain.js";
import { createMint, mintTo, tokenAccount, tokenBalance } from "./harness/tokens.js";
import { KeypairWallet } from "./harness/wallet.js";

async function parentWallet(chain: TestChain, lamports = 20 * SOL, reserialize = false): Promise<KeypairWallet> {
  const wallet = new KeypairWallet(Keypair.generate(), { reserialize });
  await chain.fund(wallet.publicKey, lamports);
  return wallet;
}

/** How many instructions a landed transaction had, and who signed it. */
async function landedShape(chain: TestChain, signature: string): Promise<{ instructions: number; signers: string[] }> {
  const tx = await chain.connection.getTransaction(signature, { commitment: "confirmed", maxSupportedTransactionVersion: 0 });
  assert.ok(tx);
  const message = tx.transaction.message;
  const keys = message.getAccountKeys();
  const signers = Array.from({ length: message.header.numRequiredSignatures }, (_, i) => keys.get(i)!.toBase58());
  return { instructions: message.compiledInstructions.length, signers };
}

function waitFor<T>(list: T[], predicate: (t: T) => boolean, ms = 10_000, label = "an update"): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      const found = list.find(predicate);
      if (found !== undefined) return resolve(found);
      if (Date.now() - started > ms) return reject(new Error(`timed out waiting for ${label}`));
      setTimeout(poll, 20);
    };
    poll();
  });
}

describe("VaultClient: a SOL session's life", () => {
  it("opens in one transaction, trades with the ephemeral key alone, tops up, resumes, rotates and closes early", async () => {
    const chain = await startConfiguredChain();
    const wallet = await parentWallet(chain);
    const client = new VaultClient({ connection: chain.connection, wallet, fetchEvents: true });
    const sessionId = newSessionId();
    const vault = vaultAddress(wallet.publicKey, sessionId);

    const updates: SessionUpdate[] = [];
    const sub = subscribeToSession(chain.connection, vault, (u) => updates.push(u));
    await waitFor(updates, (u) => u.cause === "initial" && u.status === "closed");

    // Open: create + deposit + fee top-up, one transaction, one signature from the wallet.
    const opened = await client.openSession({ sessionId, deposit: LAMPORTS_PER_SOL, perTradeCap: LAMPORTS_PER_SOL / 4n });
    const session = opened.session;
    assert.ok(session.vault.equals(vault));
    assert.deepEqual(eventNames(opened.events), ["SessionCreated", "Deposited"]);
    assert.equal(wallet.signedTransactions, 1);
    const shape = await landedShape(chain, opened.signature);
    assert.equal(shape.instructions, 1);
    assert.deepEqual(shape.signers, [wallet.publicKey.toBase58()]);
    const ephemeral = session.ephemeral!;
    assert.equal(await chain.balance(ephemeral.publicKey), 10_000_000, "0.01 SOL for fees by default");
    const created = eventOf(opened.events, "SessionCreated");
    assert.equal(created.expiresAt - created.createdAt, 3600, "one hour by default");
    assert.equal(created.approvedAmount, LAMPORTS_PER_SOL, "approved amount defaults to the deposit");
    await waitFor(updates, (u) => u.cause === "account" && u.status === "active");

    // Keep the key for a reload.
    const sealed = await session.seal();

    // Trade: the ephemeral wallet signs and pays; the parent is not asked.
    const destination = (await chain.newWallet(SOL)).publicKey;
    const t1 = await session.trade({ destination, amount: 100_000_000n, fee: 1_000_000n });
    assert.equal(wallet.signedTransactions, 1);
    assert.deepEqual((await landedShape(chain, t1.signature)).signers, [ephemeral.publicKey.toBase58()]);
    const traded = eventOf(t1.events, "TradeExecuted");
    assert.equal(traded.tradeId, t1.tradeId);
    assert.equal(traded.remainingAllowance, LAMPORTS_PER_SOL - 101_000_000n);
    const t2 = await session.trade({ destination, amount: 50_000_000n });
    assert.ok(t2.tradeId > t1.tradeId);
    const afterTrade = await waitFor(updates, (u) => u.state?.account.tradeCount === 2n);
    assert.ok(afterTrade.changed.includes("totalSpent"));
    assert.ok(afterTrade.changed.includes("lastTradeId"));
    assert.ok(!afterTrade.changed.includes("delegate"));

    // Top up the ephemeral wallet's fees from the vault, and the vault from the parent.
    const before = await chain.balance(ephemeral.publicKey);
    const topped = await session.topUpFees(5_000_000n);
    assert.equal(eventOf(topped.events, "FeesToppedUp").amount, 5_000_000n);
    assert.equal((await chain.balance(ephemeral.publicKey)) - before, 5_000_000 - 5000);
    await session.deposit(LAMPORTS_PER_SOL / 2n);
    let state = await session.state();
    assert.ok(state);
    assert.equal(state.status, "active");
    assert.equal(state.balance, LAMPORTS_PER_SOL + LAMPORTS_PER_SOL / 2n - 156_000_000n);
    assert.equal(state.remainingAllowance, LAMPORTS_PER_SOL - 156_000_000n);

    // A reload: a new client, the same wallet, the sealed key.
    const client2 = new VaultClient({ connection: chain.connection, wallet, fetchEvents: true });
    const resumed = await client2.resumeSession(session.uuid, sealed);
    assert.ok(resumed.ephemeral!.publicKey.equals(ephemeral.publicKey));
    const t3 = await resumed.trade({ destination, amount: 1_000_000n });
    assert.ok(t3.tradeId > t2.tradeId);

    // Rotate the key: the old one (still held by `resumed`) is refused at once.
    await session.rotateKey();
    assert.ok(!session.ephemeral!.publicKey.equals(ephemeral.publicKey));
    assert.ok(ephemeral.disposed);
    await expectVaultError(resumed.trade({ destination, amount: 1_000_000n }), "NotDelegate");
    await chain.fund(session.ephemeral!.publicKey, 10_000_000);
    await session.trade({ destination, amount: 1_000_000n });

    const listed = await fetchSessionsOf(chain.connection, wallet.publicKey, { now: await chain.now() });
    assert.deepEqual(listed.map((s) => s.address.toBase58()), [vault.toBase58()]);
    const byDelegate = await fetchSessionsOf(chain.connection, session.ephemeral!.publicKey, { by: "delegate" });
    assert.equal(byDelegate.length, 1);

    // Close early: revoke + cleanup in one transaction; everything goes back to the parent.
    const vaultLamports = await chain.balance(vault);
    const parentBefore = await chain.balance(wallet.publicKey);
    const closed = await session.closeEarly();
    assert.ok(closed);
    assert.deepEqual(eventNames(closed.events), ["SessionRevoked", "VaultCleaned"]);
    const cleaned = eventOf(closed.events, "VaultCleaned");
    assert.equal(cleaned.reason, "manualRevoke");
    assert.ok(cleaned.caller.equals(wallet.publicKey));
    assert.equal((await landedShape(chain, closed.signature)).instructions, 2);
    assert.equal((await chain.balance(wallet.publicKey)) - parentBefore, vaultLamports - 5000, "the parent is also the caller: reward included");
    assert.equal(await session.state(), null);
    assert.equal(await session.closeEarly(), null, "closing twice is a no-op");
    const last = await waitFor(updates, (u) => u.status === "closed" && u.cause === "account");
    assert.equal(last.state, null);
    assert.equal(last.previous?.status, "active", "revoke and cleanup landed together");
    await sub.unsubscribe();
    assert.equal((chain.connection as unknown as { subscriptionCount?: number }).subscriptionCount ?? 0, 0);
  });

  it("turns the program's refusals into VaultProgramError with its message", async () => {
    const chain = await startConfiguredChain();
    // This wallet hands back re-deserialised copies, as some wallets do.
    const wallet = await parentWallet(chain, 20 * SOL, true);
    const client = new VaultClient({ connection: chain.connection, wallet });
    const allowed = (await chain.newWallet(SOL)).publicKey;
    const { session } = await client.openSession({ deposit: 10_000_000n, approvedAmount: 5_000_000n, perTradeCap: 2_000_000n, destinations: [allowed] });
    const over = await expectVaultError(session.trade({ destination: allowed, amount: 2_000_001n }), "PerTradeCapExceeded");
    assert.equal(over.message, "PerTradeCapExceeded (6015): Trade amount exceeds the per-trade cap");
    assert.ok(over.logs.some((l) => l.includes("AnchorError")));
    await expectVaultError(session.trade({ destination: (await chain.newWallet(SOL)).publicKey, amount: 1_000_000n }), "DestinationNotAllowed");
    await session.trade({ destination: allowed, amount: 2_000_000n });
    await session.trade({ destination: allowed, amount: 2_000_000n });
    await expectVaultError(session.trade({ destination: allowed, amount: 1_000_001n }), "ApprovedAmountExceeded");
    await expectVaultError(session.trade({ destination: allowed, amount: 1n, tradeId: 5n }), "TradeIdNotIncreasing");
    await assert.rejects(client.openSession({ deposit: 1n, durationSecs: 1 }), (e: unknown) => e instanceof VaultProgramError && e.errorName === "InvalidDuration");
  });

  it("reports the expiry (which changes no account) and cleans an expired session up", async () => {
    const chain = await startConfiguredChain();
    const wallet = await parentWallet(chain);
    const client = new VaultClient({ connection: chain.connection, wallet, fetchEvents: true });
    const duration = chain.kind === "litesvm" ? 60 : chain.shortDuration;
    const { session } = await client.openSession({ deposit: 10_000_000n, durationSecs: duration });
    const created = (await session.state())!.account.createdAt;
    // litesvm's clock does not move by itself: judge expiry on a clock that starts one second before it.
    const t0 = Date.now();
    const now = chain.kind === "litesvm" ? () => created + duration - 1 + (Date.now() - t0) / 1000 : undefined;
    const updates: SessionUpdate[] = [];
    const sub = session.subscribe((u) => updates.push(u), now ? { now } : {});
    await waitFor(updates, (u) => u.cause === "initial");
    const expired = await waitFor(updates, (u) => u.cause === "expiry", 15_000);
    assert.equal(expired.status, "expired");
    assert.equal(expired.state?.timeLeftSecs, 0);
    assert.equal(expired.state?.maxTradeNow, 0n);
    await sub.unsubscribe();

    await chain.advance(duration);
    assert.equal((await session.state())?.status, "expired");
    await expectVaultError(session.trade({ destination: (await chain.newWallet(SOL)).publicKey, amount: 1_000_000n }), "SessionExpired");
    const closed = await session.closeEarly();
    assert.ok(closed);
    assert.equal(eventOf(closed.events, "VaultCleaned").returnedAmount, 10_000_000n);
    assert.equal(await session.state(), null);
  });

});

describe("VaultClient: a Token-2022 session", () => {
  it("opens with a token deposit, trades into a new token account, and closes early", async () => {
    const chain = await startConfiguredChain();
    const wallet = await parentWallet(chain);
    const payer = Keypair.fromSecretKey(wallet.keypair.secretKey);
    const mint = await createMint(chain, payer, { token2022: true, decimals: 6 });
    const parentAta = await tokenAccount(chain, payer, mint, wallet.publicKey);
    await mintTo(chain, payer, mint, parentAta, 5_000_000n);

    const client = new VaultClient({ connection: chain.connection, wallet, fetchEvents: true });
    const { session, events } = await client.openSession({ asset: mint.asset, deposit: 3_000_000n, perTradeCap: 1_000_000n });
    assert.equal(eventOf(events, "Deposited").received, 3_000_000n);
    assert.equal(await tokenBalance(chain, vaultTokenAddress(session.vault)), 3_000_000n);
    assert.equal(await chain.balance(session.ephemeral!.publicKey), 10_000_000, "fee top-up in lamports for a token session too");
    await expectVaultError(session.topUpFees(1000n), "TopUpRequiresSolVault");

    const destination = Keypair.generate().publicKey;
    const traded = await session.trade({ destination, amount: 400_000n, fee: 100_000n, createDestinationAccount: true });
    const ev = eventOf(traded.events, "TradeExecuted");
    assert.equal(await tokenBalance(chain, ev.destination), 500_000n);
    await session.withdraw(500_000n);
    assert.equal((await session.state())?.balance, 2_000_000n);

    await session.closeEarly();
    assert.equal(await tokenBalance(chain, parentAta), 4_500_000n);
    assert.equal(await chain.getAccount(vaultTokenAddress(session.vault)), null);
    assert.equal(await session.state(), null);
    assert.ok(session.ephemeral?.disposed);
  });
});
