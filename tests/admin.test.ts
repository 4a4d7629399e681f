// The admin instructions: initialize_config (upgrade authority only, once), update_config,
// set_paused, and what a pause stops and what it does not.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Keypair, PublicKey } from "@solana/web3.js";

import {
  cleanupVaultInstruction,
  configAddress,
  depositInstruction,
  executeTradeInstruction,
  fetchConfig,
  fetchSession,
  initializeConfigInstruction,
  revokeSessionInstruction,
  setPausedInstruction,
  TransactionFailedError,
  updateConfigInstruction,
  withdrawInstruction,
} from "../app/dist/index.js";
import { eventOf, expectVaultError } from "./harness/assert.js";
import { send, SOL, startChain, startConfiguredChain, testParams } from "./harness/chain.js";
import { openSession } from "./harness/sessions.js";

describe("initialize_config", () => {
  it("lets the upgrade authority create the config once, with its event", async (t) => {
    const chain = startChain();
    if (chain.kind !== "litesvm") return t.skip("needs a fresh deployment");
    await chain.fund(chain.admin.publicKey, 10 * SOL);
    const params = testParams(chain);
    const landed = await send(chain, [initializeConfigInstruction({ admin: chain.admin.publicKey, params })], [chain.admin]);
    const event = eventOf(landed.events, "ConfigInitialized");
    assert.ok(event.admin.equals(chain.admin.publicKey));
    assert.deepEqual(event.params, {
      maxSessionDuration: params.maxSessionDuration,
      minSessionDuration: params.minSessionDuration,
      feeTopUpCap: params.feeTopUpCap,
      cleanupRewardBps: params.cleanupRewardBps,
      cleanupRewardCap: params.cleanupRewardCap,
    });
    assert.equal(event.timestamp, await chain.now());

    const config = await fetchConfig(chain.connection);
    assert.ok(config);
    assert.ok(config.admin.equals(chain.admin.publicKey));
    assert.equal(config.paused, false);
    assert.equal(config.maxSessionDuration, params.maxSessionDuration);
    assert.equal(config.feeTopUpCap, params.feeTopUpCap);
    assert.equal((await chain.getAccount(configAddress()))?.data.length, 140);

    // A second initialisation is refused by the system program (the config PDA exists).
    await assert.rejects(
      send(chain, [initializeConfigInstruction({ admin: chain.admin.publicKey, params })], [chain.admin]),
      (e: unknown) => e instanceof TransactionFailedError && e.logs.some((l) => l.includes("already in use")),
    );
  });

  it("refuses anyone but the upgrade authority", async (t) => {
    const chain = startChain();
    if (chain.kind !== "litesvm") return t.skip("needs a fresh deployment");
    const intruder = await chain.newWallet();
    await expectVaultError(
      send(chain, [initializeConfigInstruction({ admin: intruder.publicKey, params: testParams(chain) })], [intruder]),
      "NotUpgradeAuthority",
    );
    assert.equal(await fetchConfig(chain.connection), null);
  });

  it("refuses out-of-range parameters", async (t) => {
    const chain = startChain();
    if (chain.kind !== "litesvm") return t.skip("needs a fresh deployment");
    await chain.fund(chain.admin.publicKey, 10 * SOL);
    const bad = { ...testParams(chain), minSessionDuration: 7200, maxSessionDuration: 3600 };
    await expectVaultError(
      send(chain, [initializeConfigInstruction({ admin: chain.admin.publicKey, params: bad })], [chain.admin]),
      "InvalidConfig",
    );
    const tooLong = { ...testParams(chain), maxSessionDuration: 31 * 24 * 3600 };
    await expectVaultError(
      send(chain, [initializeConfigInstruction({ admin: chain.admin.publicKey, params: tooLong })], [chain.admin]),
      "InvalidConfig",
    );
    const bps = { ...testParams(chain), cleanupRewardBps: 10_001 };
    await expectVaultError(
      send(chain, [initializeConfigInstruction({ admin: chain.admin.publicKey, params: bps })], [chain.admin]),
      "InvalidConfig",
    );
  });
});

describe("update_config", () => {
  it("changes the settings and hands the admin role over and back", async () => {
    const chain = await startConfiguredChain();
    const admin = chain.admin;
    const params = { ...testParams(chain), feeTopUpCap: 1_234_567n, cleanupRewardBps: 100 };
    const landed = await send(chain, [updateConfigInstruction({ admin: admin.publicKey, params })], [admin]);
    const event = eventOf(landed.events, "ConfigUpdated");
    assert.ok(event.newAdmin.equals(admin.publicKey));
    assert.equal(event.params.feeTopUpCap, 1_234_567n);
    assert.equal((await fetchConfig(chain.connection))?.cleanupRewardBps, 100);

    const next = await chain.newWallet(SOL);
    await send(chain, [updateConfigInstruction({ admin: admin.publicKey, params, newAdmin: next.publicKey })], [admin]);
    assert.ok((await fetchConfig(chain.connection))?.admin.equals(next.publicKey));
    // The old admin has lost the role.
    await expectVaultError(send(chain, [setPausedInstruction({ admin: admin.publicKey, paused: true })], [admin]), "Unauthorized");
    await send(
      chain,
      [updateConfigInstruction({ admin: next.publicKey, params: testParams(chain), newAdmin: admin.publicKey })],
      [admin, next],
    );
    assert.ok((await fetchConfig(chain.connection))?.admin.equals(admin.publicKey));
  });

  it("refuses a non-admin, bad parameters and the default key as admin", async () => {
    const chain = await startConfiguredChain();
    const intruder = await chain.newWallet(SOL);
    await expectVaultError(
      send(chain, [updateConfigInstruction({ admin: intruder.publicKey, params: testParams(chain) })], [intruder]),
      "Unauthorized",
    );
    await expectVaultError(
      send(
        chain,
        [updateConfigInstruction({ admin: chain.admin.publicKey, params: { ...testParams(chain), minSessionDuration: 0 } })],
        [chain.admin],
      ),
      "InvalidConfig",
    );
    await expectVaultError(
      send(
        chain,
        [updateConfigInstruction({ admin: chain.admin.publicKey, params: testParams(chain), newAdmin: PublicKey.default })],
        [chain.admin],
      ),
      "InvalidConfig",
    );
  });
});

describe("set_paused", () => {
  it("stops new sessions, deposits and trades; withdrawals, revocations and cleanups go on", async () => {
    const chain = await startConfiguredChain();
    const admin = chain.admin;
    const a = await openSession(chain);
    const b = await openSession(chain);
    const landed = await send(chain, [setPausedInstruction({ admin: admin.publicKey, paused: true })], [admin]);
    assert.equal(eventOf(landed.events, "PauseSet").paused, true);
    try {
      assert.equal((await fetchConfig(chain.connection))?.paused, true);
      await expectVaultError(openSession(chain), "Paused");
      await expectVaultError(send(chain, [depositInstruction({ session: a.ref, amount: 1000 })], [a.parent]), "Paused");
      const destination = Keypair.generate().publicKey;
      await expectVaultError(
        send(
          chain,
          [executeTradeInstruction({ session: a.ref, delegate: a.delegate.publicKey, destination, tradeId: 1, amount: 1000 })],
          [a.parent, a.delegate],
        ),
        "Paused",
      );
      await send(chain, [withdrawInstruction({ session: a.ref, amount: 1000 })], [a.parent]);
      await send(chain, [revokeSessionInstruction({ session: a.ref })], [a.parent]);

      // While paused anyone may clean any vault up: reason "emergency" for a live one.
      const caller = await chain.newWallet(SOL);
      const cleaned = await send(chain, [cleanupVaultInstruction({ session: b.ref, caller: caller.publicKey })], [caller]);
      assert.equal(eventOf(cleaned.events, "VaultCleaned").reason, "emergency");
      assert.equal(await fetchSession(chain.connection, b.vault), null);
    } finally {
      await send(chain, [setPausedInstruction({ admin: admin.publicKey, paused: false })], [admin]);
    }
    assert.equal((await fetchConfig(chain.connection))?.paused, false);
    await openSession(chain);
  });

  it("refuses anyone but the admin", async () => {
    const chain = await startConfiguredChain();
    const intruder = await chain.newWallet(SOL);
    await expectVaultError(send(chain, [setPausedInstruction({ admin: intruder.publicKey, paused: true })], [intruder]), "Unauthorized");
  });
});
