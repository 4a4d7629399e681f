// Every instruction of a SOL session through the client's builders against the real program:
// the success path (state, balances, events) and the refusals.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Keypair, PublicKey, SystemProgram } from "@solana/web3.js";
import BN from "bn.js";

import {
  AnchorFrameworkError,
  approveDelegateInstruction,
  buildProgramInstruction,
  cleanupVaultInstruction,
  configAddress,
  createSessionInstruction,
  depositInstruction,
  eventAuthorityAddress,
  executeTradeInstruction,
  fetchSession,
  newSessionId,
  PROGRAM_ID,
  revokeSessionInstruction,
  sessionIdToUuid,
  topUpFeesInstruction,
  TransactionFailedError,
  vaultAddress,
  withdrawInstruction,
  type SessionRef,
} from "../app/dist/index.js";
import { eventNames, eventOf, expectVaultError } from "./harness/assert.js";
import { assertNear, send, SOL, startConfiguredChain, testParams, type TestChain } from "./harness/chain.js";
import { openSession, type OpenedSession } from "./harness/sessions.js";

const RENT_384 = async (chain: TestChain) => chain.connection.getMinimumBalanceForRentExemption(384);

function trade(s: OpenedSession, destination: PublicKey, tradeId: number, amount: number, fee = 0, signer = s.delegate) {
  return executeTradeInstruction({ session: s.ref, delegate: signer.publicKey, destination, tradeId, amount, fee });
}

describe("create_session (SOL)", () => {
  it("creates the vault, deposits and pays the delegate's fee top-up in one instruction", async () => {
    const chain = await startConfiguredChain();
    const parent = await chain.newWallet(20 * SOL);
    const destinations = [Keypair.generate().publicKey, Keypair.generate().publicKey];
    const before = await chain.balance(parent.publicKey);
    const s = await openSession(chain, {
      parent,
      approvedAmount: 2n * BigInt(SOL),
      perTradeCap: BigInt(SOL / 4),
      initialDeposit: BigInt(SOL),
      feeTopUp: 20_000_000n,
      destinations,
      durationSecs: 1800,
    });
    const now = await chain.now();
    assert.deepEqual(eventNames(s.landed.events), ["SessionCreated", "Deposited"]);
    const created = eventOf(s.landed.events, "SessionCreated");
    assert.ok(created.vault.equals(s.vault));
    assert.ok(created.delegate.equals(s.delegate.publicKey));
    assert.ok(created.mint.equals(PublicKey.default));
    assert.equal(created.approvedAmount, 2n * BigInt(SOL));
    assert.equal(created.perTradeCap, BigInt(SOL / 4));
    assert.equal(created.feeTopUp, 20_000_000n);
    assert.deepEqual(created.destinations.map((d) => d.toBase58()), destinations.map((d) => d.toBase58()));
    assertNear(chain, created.createdAt, now);
    assert.equal(created.expiresAt, created.createdAt + 1800);
    assert.equal(sessionIdToUuid(created.sessionId), sessionIdToUuid(s.ref.sessionId));
    const deposited = eventOf(s.landed.events, "Deposited");
    assert.equal(deposited.amount, BigInt(SOL));
    assert.equal(deposited.received, BigInt(SOL));
    assert.equal(deposited.totals.totalDeposited, BigInt(SOL));

    const rent = await RENT_384(chain);
    assert.equal(await chain.balance(s.vault), rent + SOL);
    assert.equal(await chain.balance(s.delegate.publicKey), 20_000_000);
    assert.equal(before - (await chain.balance(parent.publicKey)), rent + SOL + 20_000_000 + 5000);

    const state = await fetchSession(chain.connection, s.vault);
    assert.ok(state);
    assert.equal(state.status, "active");
    assert.equal(state.balance, BigInt(SOL));
    assert.equal(state.remainingAllowance, 2n * BigInt(SOL));
    assert.equal(state.maxTradeNow, BigInt(SOL / 4));
    assert.equal(state.timeLeftSecs, 1800);
    assert.equal(state.asset.kind, "sol");
    assert.equal(state.account.destinations.length, 2);
    assert.ok(state.account.parent.equals(parent.publicKey));
    assert.equal(state.account.tradeCount, 0n);
  });

  it("with nothing to deposit emits SessionCreated alone", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain, { initialDeposit: 0n, feeTopUp: 0n });
    assert.deepEqual(eventNames(s.landed.events), ["SessionCreated"]);
    assert.equal((await fetchSession(chain.connection, s.vault))?.balance, 0n);
  });

  it("refuses bad arguments", async () => {
    const chain = await startConfiguredChain();
    const parent = await chain.newWallet(20 * SOL);
    await expectVaultError(openSession(chain, { parent, durationSecs: testParams(chain).minSessionDuration - 1 }), "InvalidDuration");
    await expectVaultError(openSession(chain, { parent, durationSecs: 2 * 24 * 3600 }), "InvalidDuration");
    await expectVaultError(openSession(chain, { parent, approvedAmount: 0n, perTradeCap: 0n }), "InvalidApprovedAmount");
    await expectVaultError(openSession(chain, { parent, approvedAmount: 100n, perTradeCap: 101n }), "InvalidPerTradeCap");
    await expectVaultError(openSession(chain, { parent, perTradeCap: 0n }), "InvalidPerTradeCap");
    await expectVaultError(openSession(chain, { parent, delegate: parent }), "InvalidDelegate");
    await expectVaultError(openSession(chain, { parent, feeTopUp: 50_000_001n }), "FeeTopUpCapExceeded");
    const d = (await chain.newWallet(SOL)).publicKey;
    await expectVaultError(openSession(chain, { parent, destinations: [d, d] }), "DuplicateDestination");
    // The client refuses more than MAX_DESTINATIONS before sending anything.
    assert.throws(
      () => createSessionInstruction({
        parent: parent.publicKey, delegate: Keypair.generate().publicKey, sessionId: newSessionId(),
        approvedAmount: 1, durationSecs: 3600, destinations: Array.from({ length: 5 }, () => d),
      }),
      RangeError,
    );

    // Five destinations, past the client's own check: the program refuses too.
    const sessionId = newSessionId();
    const five = Array.from({ length: 5 }, () => Keypair.generate().publicKey);
    const ix = buildProgramInstruction("createSession", {
      parent: parent.publicKey, config: configAddress(), vault: vaultAddress(parent.publicKey, sessionId),
      delegate: Keypair.generate().publicKey, mint: null, vaultTokenAccount: null, parentTokenAccount: null,
      tokenProgram: null, systemProgram: SystemProgram.programId, eventAuthority: eventAuthorityAddress(), program: PROGRAM_ID,
    }, {
      args: {
        sessionId: Array.from(sessionId), approvedAmount: new BN(10), perTradeCap: new BN(10),
        durationSecs: new BN(3600), destinations: five,
        initialDeposit: new BN(0), feeTopUp: new BN(0),
      },
    });
    await expectVaultError(send(chain, [ix], [parent]), "TooManyDestinations");
  });

  it("refuses a session id the parent already used", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain);
    await assert.rejects(
      openSession(chain, { parent: s.parent, sessionId: s.ref.sessionId }),
      (e: unknown) => e instanceof TransactionFailedError && e.logs.some((l) => l.includes("already in use")),
    );
  });
});

describe("deposit and withdraw (SOL)", () => {
  it("deposit credits the vault; withdraw pays the parent back", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain);
    const rent = await RENT_384(chain);
    const dep = await send(chain, [depositInstruction({ session: s.ref, amount: SOL / 2 })], [s.parent]);
    const deposited = eventOf(dep.events, "Deposited");
    assert.equal(deposited.received, BigInt(SOL / 2));
    assert.equal(deposited.totals.totalDeposited, BigInt(SOL + SOL / 2));
    assert.equal(await chain.balance(s.vault), rent + SOL + SOL / 2);

    const before = await chain.balance(s.parent.publicKey);
    const wd = await send(chain, [withdrawInstruction({ session: s.ref, amount: SOL / 4 })], [s.parent]);
    const withdrawn = eventOf(wd.events, "Withdrawn");
    assert.equal(withdrawn.amount, BigInt(SOL / 4));
    assert.equal(withdrawn.totals.totalWithdrawn, BigInt(SOL / 4));
    assert.equal((await chain.balance(s.parent.publicKey)) - before, SOL / 4 - 5000);
    const state = await fetchSession(chain.connection, s.vault);
    assert.equal(state?.balance, BigInt(SOL + SOL / 2 - SOL / 4));
  });

  it("refuses zero, other signers, overdrafts, and deposits into an expired or revoked session", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain, { durationSecs: chain.shortDuration });
    const other = await chain.newWallet(5 * SOL);
    await expectVaultError(send(chain, [depositInstruction({ session: s.ref, amount: 0 })], [s.parent]), "ZeroAmount");
    await expectVaultError(send(chain, [withdrawInstruction({ session: s.ref, amount: 0 })], [s.parent]), "ZeroAmount");
    await expectVaultError(send(chain, [withdrawInstruction({ session: s.ref, amount: SOL + 1 })], [s.parent]), "InsufficientVaultBalance");
    // Someone else claiming to be the parent: the vault's stored parent is another (has_one).
    const forged: SessionRef = { ...s.ref, parent: other.publicKey };
    const ix = withdrawInstruction({ session: forged, amount: 1 });
    ix.keys[1]!.pubkey = s.vault;
    await expectVaultError(send(chain, [ix], [other]), "Unauthorized");

    await chain.advance(chain.shortDuration);
    await expectVaultError(send(chain, [depositInstruction({ session: s.ref, amount: 1 })], [s.parent]), "SessionExpired");
    // Withdrawing stays possible after expiry.
    await send(chain, [withdrawInstruction({ session: s.ref, amount: 1000 })], [s.parent]);

    const r = await openSession(chain, { parent: s.parent });
    await send(chain, [revokeSessionInstruction({ session: r.ref })], [r.parent]);
    await expectVaultError(send(chain, [depositInstruction({ session: r.ref, amount: 1 })], [r.parent]), "SessionRevoked");
    await send(chain, [withdrawInstruction({ session: r.ref, amount: 1000 })], [r.parent]);
  });
});

describe("execute_trade (SOL)", () => {
  it("pays amount and fee to the destination, signed by the delegate alone", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain, { feeTopUp: 10_000_000n });
    const destination = Keypair.generate().publicKey;
    const parentBefore = await chain.balance(s.parent.publicKey);
    const landed = await send(chain, [trade(s, destination, 7, 100_000_000, 1_000_000)], [s.delegate]);
    const ev = eventOf(landed.events, "TradeExecuted");
    assert.equal(ev.tradeId, 7n);
    assert.equal(ev.amount, 100_000_000n);
    assert.equal(ev.fee, 1_000_000n);
    assert.ok(ev.destination.equals(destination));
    assert.ok(ev.delegate.equals(s.delegate.publicKey));
    assert.equal(ev.remainingAllowance, BigInt(SOL) - 101_000_000n);
    assert.equal(ev.totals.tradeCount, 1n);
    assert.equal(ev.totals.totalSpent, 101_000_000n);
    assert.equal(await chain.balance(destination), 101_000_000);
    assert.equal(await chain.balance(s.parent.publicKey), parentBefore, "the parent signs and pays nothing");
    assert.equal(await chain.balance(s.delegate.publicKey), 10_000_000 - 5000);
    const state = await fetchSession(chain.connection, s.vault);
    assert.equal(state?.account.lastTradeId, 7n);
    assert.equal(state?.remainingAllowance, BigInt(SOL) - 101_000_000n);
  });

  it("refuses a signer that is not the delegate", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain);
    const intruder = await chain.newWallet(SOL);
    await expectVaultError(send(chain, [trade(s, intruder.publicKey, 1, 1000, 0, intruder)], [intruder]), "NotDelegate");
    // Not even the parent may trade.
    await expectVaultError(send(chain, [trade(s, intruder.publicKey, 1, 1000, 0, s.parent)], [s.parent]), "NotDelegate");
  });

  it("refuses after expiry", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain, { durationSecs: chain.shortDuration });
    const d = (await chain.newWallet(SOL)).publicKey;
    await send(chain, [trade(s, d, 1, 1000)], [s.delegate]);
    await chain.advance(chain.shortDuration);
    const state = await fetchSession(chain.connection, s.vault);
    assert.equal(state?.status, "expired");
    assert.equal(state?.account.status, "active", "expiry is derived, not stored");
    assert.equal(state?.maxTradeNow, 0n);
    await expectVaultError(send(chain, [trade(s, d, 2, 1000)], [s.delegate]), "SessionExpired");
  });

  it("refuses after revocation", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain);
    await send(chain, [revokeSessionInstruction({ session: s.ref })], [s.parent]);
    await expectVaultError(send(chain, [trade(s, (await chain.newWallet(SOL)).publicKey, 1, 1000)], [s.delegate]), "SessionRevoked");
  });

  it("refuses above the per-trade cap (amount plus fee)", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain, { perTradeCap: 1_000_000n });
    const d = (await chain.newWallet(SOL)).publicKey;
    await expectVaultError(send(chain, [trade(s, d, 1, 1_000_001)], [s.delegate]), "PerTradeCapExceeded");
    await expectVaultError(send(chain, [trade(s, d, 1, 999_999, 2)], [s.delegate]), "PerTradeCapExceeded");
    await send(chain, [trade(s, d, 1, 999_999, 1)], [s.delegate]);
  });

  it("refuses above the approved amount", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain, { approvedAmount: 3_000_000n, perTradeCap: 2_000_000n });
    const d = (await chain.newWallet(SOL)).publicKey;
    await send(chain, [trade(s, d, 1, 2_000_000)], [s.delegate]);
    await expectVaultError(send(chain, [trade(s, d, 2, 1_000_000, 1)], [s.delegate]), "ApprovedAmountExceeded");
    await send(chain, [trade(s, d, 2, 1_000_000)], [s.delegate]);
    await expectVaultError(send(chain, [trade(s, d, 3, 1)], [s.delegate]), "ApprovedAmountExceeded");
    const state = await fetchSession(chain.connection, s.vault);
    assert.equal(state?.remainingAllowance, 0n);
    assert.equal(state?.maxTradeNow, 0n);
  });

  it("refuses destinations off the allow-list, and the vault itself", async () => {
    const chain = await startConfiguredChain();
    const allowed = (await chain.newWallet(SOL)).publicKey;
    const s = await openSession(chain, { destinations: [allowed] });
    await expectVaultError(send(chain, [trade(s, (await chain.newWallet(SOL)).publicKey, 1, 1000)], [s.delegate]), "DestinationNotAllowed");
    await send(chain, [trade(s, allowed, 1, 1000)], [s.delegate]);
    const open = await openSession(chain);
    await expectVaultError(send(chain, [trade(open, open.vault, 1, 1000)], [open.delegate]), "InvalidDestination");
  });

  it("refuses zero amounts, repeated trade ids and more than the vault holds", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain, { approvedAmount: 2n * BigInt(SOL), perTradeCap: 2n * BigInt(SOL), initialDeposit: 1_000_000n });
    const d = (await chain.newWallet(SOL)).publicKey;
    await expectVaultError(send(chain, [trade(s, d, 1, 0)], [s.delegate]), "ZeroAmount");
    await send(chain, [trade(s, d, 5, 1000)], [s.delegate]);
    await expectVaultError(send(chain, [trade(s, d, 5, 1000)], [s.delegate]), "TradeIdNotIncreasing");
    await expectVaultError(send(chain, [trade(s, d, 4, 1000)], [s.delegate]), "TradeIdNotIncreasing");
    await expectVaultError(send(chain, [trade(s, d, 6, 1_000_000)], [s.delegate]), "InsufficientVaultBalance");
  });
});

describe("top_up_fees (SOL)", () => {
  it("moves lamports to the delegate, counted against the allowance and the session's fee cap", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain);
    const before = await chain.balance(s.delegate.publicKey);
    const landed = await send(chain, [topUpFeesInstruction({ session: s.ref, delegate: s.delegate.publicKey, amount: 30_000_000 })], [s.delegate]);
    const ev = eventOf(landed.events, "FeesToppedUp");
    assert.equal(ev.amount, 30_000_000n);
    assert.equal(ev.totals.totalFeeTopUps, 30_000_000n);
    assert.equal(ev.remainingAllowance, BigInt(SOL) - 30_000_000n);
    assert.equal((await chain.balance(s.delegate.publicKey)) - before, 30_000_000 - 5000);
    // The config caps top-ups at 0.05 SOL per session.
    await expectVaultError(
      send(chain, [topUpFeesInstruction({ session: s.ref, delegate: s.delegate.publicKey, amount: 20_000_001 })], [s.delegate]),
      "FeeTopUpCapExceeded",
    );
    await send(chain, [topUpFeesInstruction({ session: s.ref, delegate: s.delegate.publicKey, amount: 20_000_000 })], [s.delegate]);
    await expectVaultError(
      send(chain, [topUpFeesInstruction({ session: s.ref, delegate: s.delegate.publicKey, amount: 0 })], [s.delegate]),
      "ZeroAmount",
    );
    const intruder = await chain.newWallet(SOL);
    await expectVaultError(
      send(chain, [topUpFeesInstruction({ session: s.ref, delegate: intruder.publicKey, amount: 1 })], [intruder]),
      "NotDelegate",
    );
  });
});

describe("approve_delegate", () => {
  it("rotates the session key: the old one loses every power at once", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain);
    const next = await chain.newWallet(SOL);
    const landed = await send(chain, [approveDelegateInstruction({ session: s.ref, newDelegate: next.publicKey })], [s.parent]);
    const ev = eventOf(landed.events, "DelegateApproved");
    assert.ok(ev.previousDelegate.equals(s.delegate.publicKey));
    assert.ok(ev.delegate.equals(next.publicKey));
    assert.equal(ev.rotations, 1);
    const d = (await chain.newWallet(SOL)).publicKey;
    await expectVaultError(send(chain, [trade(s, d, 1, 1000)], [s.delegate]), "NotDelegate");
    await send(chain, [trade(s, d, 1, 1000, 0, next)], [next]);
    assert.equal((await fetchSession(chain.connection, s.vault))?.account.delegateRotations, 1);
  });

  it("refuses the same key, the parent, a non-parent signer, and a revoked session", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain);
    await expectVaultError(
      send(chain, [approveDelegateInstruction({ session: s.ref, newDelegate: s.delegate.publicKey })], [s.parent]),
      "SameDelegate",
    );
    await expectVaultError(
      send(chain, [approveDelegateInstruction({ session: s.ref, newDelegate: s.parent.publicKey })], [s.parent]),
      "InvalidDelegate",
    );
    await expectVaultError(
      send(chain, [approveDelegateInstruction({ session: s.ref, newDelegate: s.vault })], [s.parent]),
      "InvalidDelegate",
    );
    const other = await chain.newWallet(SOL);
    const ix = approveDelegateInstruction({ session: { ...s.ref, parent: other.publicKey }, newDelegate: other.publicKey });
    ix.keys[1]!.pubkey = s.vault;
    await expectVaultError(send(chain, [ix], [other]), "Unauthorized");
    await send(chain, [revokeSessionInstruction({ session: s.ref })], [s.parent]);
    await expectVaultError(
      send(chain, [approveDelegateInstruction({ session: s.ref, newDelegate: Keypair.generate().publicKey })], [s.parent]),
      "SessionRevoked",
    );
  });
});

describe("revoke_session", () => {
  it("ends the session once; only the parent may", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain);
    const other = await chain.newWallet(SOL);
    const ix = revokeSessionInstruction({ session: { ...s.ref, parent: other.publicKey } });
    ix.keys[1]!.pubkey = s.vault;
    await expectVaultError(send(chain, [ix], [other]), "Unauthorized");

    const landed = await send(chain, [revokeSessionInstruction({ session: s.ref })], [s.parent]);
    const ev = eventOf(landed.events, "SessionRevoked");
    assertNear(chain, ev.revokedAt, await chain.now());
    assert.equal(ev.totals.totalDeposited, BigInt(SOL));
    const state = await fetchSession(chain.connection, s.vault);
    assert.equal(state?.status, "revoked");
    assert.equal(state?.account.revokedAt, ev.revokedAt);
    await expectVaultError(send(chain, [revokeSessionInstruction({ session: s.ref })], [s.parent]), "SessionRevoked");
  });
});

describe("cleanup_vault (SOL)", () => {
  it("is refused while the session is live", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain);
    const caller = await chain.newWallet(SOL);
    await expectVaultError(send(chain, [cleanupVaultInstruction({ session: s.ref, caller: caller.publicKey })], [caller]), "CleanupNotAllowed");
  });

  it("after expiry anyone may close the vault: funds and rent to the parent, a capped reward to the caller", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain, { durationSecs: chain.shortDuration });
    const d = (await chain.newWallet(SOL)).publicKey;
    await send(chain, [trade(s, d, 1, 100_000_000, 5_000)], [s.delegate]);
    await chain.advance(chain.shortDuration + 1);
    const caller = await chain.newWallet(SOL);
    const rent = await RENT_384(chain);
    const vaultLamports = await chain.balance(s.vault);
    const parentBefore = await chain.balance(s.parent.publicKey);
    const callerBefore = await chain.balance(caller.publicKey);
    const landed = await send(chain, [cleanupVaultInstruction({ session: s.ref, caller: caller.publicKey })], [caller]);
    const ev = eventOf(landed.events, "VaultCleaned");
    const reward = Math.min(Math.floor((rent * 5000) / 10_000), 2_000_000);
    assert.equal(ev.reason, "expired");
    assert.equal(ev.reward, BigInt(reward));
    assert.equal(ev.returnedAmount, BigInt(SOL - 100_005_000));
    assert.equal(ev.rentReturned, BigInt(rent - reward));
    assert.ok(ev.caller.equals(caller.publicKey));
    assert.equal(ev.totals.tradeCount, 1n);
    assert.equal((await chain.balance(caller.publicKey)) - callerBefore, reward - 5000);
    assert.equal((await chain.balance(s.parent.publicKey)) - parentBefore, vaultLamports - reward);
    assert.equal(await chain.getAccount(s.vault), null);
    assert.equal(await fetchSession(chain.connection, s.vault), null);
    // Cleaning twice fails: the vault is gone.
    const again = send(chain, [cleanupVaultInstruction({ session: s.ref, caller: caller.publicKey })], [caller]);
    await assert.rejects(again, (e: unknown) => e instanceof AnchorFrameworkError && e.errorName === "AccountNotInitialized");
  });

  it("after revocation the reason is manualRevoke", async () => {
    const chain = await startConfiguredChain();
    const s = await openSession(chain);
    await send(chain, [revokeSessionInstruction({ session: s.ref })], [s.parent]);
    const landed = await send(chain, [cleanupVaultInstruction({ session: s.ref, caller: s.parent.publicKey })], [s.parent]);
    assert.equal(eventOf(landed.events, "VaultCleaned").reason, "manualRevoke");
  });
});
