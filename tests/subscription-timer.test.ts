// The subscription's expiry timer on a 30-day session, in a file of its own: its second half
// mocks setTimeout, and HTTP done meanwhile leaves undici's own timers (which web3.js's fetch uses)
// unusable for the rest of the process - a later test's request then failed with
// HeadersTimeoutError. node --test runs each file in its own process, so nothing runs after it.
import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";

import { Keypair } from "@solana/web3.js";

import { MAX_TIMER_DELAY_MS, updateConfigInstruction, VaultClient, type SessionUpdate } from "../app/dist/index.js";
import { send, SOL, startConfiguredChain, testParams, type TestChain } from "./harness/chain.js";
import { KeypairWallet } from "./harness/wallet.js";

async function parentWallet(chain: TestChain, lamports = 20 * SOL): Promise<KeypairWallet> {
  const wallet = new KeypairWallet(Keypair.generate());
  await chain.fund(wallet.publicKey, lamports);
  return wallet;
}

describe("VaultClient: a 30-day session's subscription", () => {
  it("arms a 30-day session's expiry timer in steps of at most 2^31-1 ms (no 1 ms re-arming spin)", async () => {
    const chain = await startConfiguredChain();
    const days30 = 30 * 24 * 60 * 60;
    await send(chain, [updateConfigInstruction({ admin: chain.admin.publicKey, params: { ...testParams(chain), maxSessionDuration: days30 } })], [chain.admin]);
    const wallet = await parentWallet(chain);
    const client = new VaultClient({ connection: chain.connection, wallet });
    const { session } = await client.openSession({ deposit: 10_000_000n, durationSecs: days30 });
    const { expiresAt } = (await session.state())!.account;

    // Real timers: every setTimeout longer than a minute is the subscription arming its expiry
    // timer. A delay over 2^31-1 ms fires after 1 ms and re-arms, thousands of times a second.
    const arms: number[] = [];
    const realSetTimeout = globalThis.setTimeout;
    globalThis.setTimeout = ((fn: () => void, ms?: number, ...rest: unknown[]) => {
      if ((ms ?? 0) > 60_000) arms.push(ms!);
      return realSetTimeout(fn, ms, ...rest);
    }) as typeof setTimeout;
    try {
      let first!: () => void;
      const initial = new Promise<void>((r) => (first = r));
      const sub = session.subscribe((u) => u.cause === "initial" && first());
      await initial;
      await new Promise((r) => realSetTimeout(r, 1000));
      await sub.unsubscribe();
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
    assert.ok(arms.length >= 1 && arms.length <= 2, `armed ${arms.length} times in a second`);
    assert.ok(arms.every((ms) => ms <= MAX_TIMER_DELAY_MS));

    // Mocked setTimeout and a simulated clock: the 30 days pass as one full step, then the rest,
    // and the expiry is reported once.
    let clock = expiresAt - days30;
    mock.timers.enable({ apis: ["setTimeout"] });
    const delays: number[] = [];
    const mockedSetTimeout = globalThis.setTimeout;
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      return mockedSetTimeout(fn, ms);
    }) as typeof setTimeout;
    try {
      const updates: SessionUpdate[] = [];
      let first!: () => void;
      const initial = new Promise<void>((r) => (first = r));
      const sub = session.subscribe((u) => {
        updates.push(u);
        if (u.cause === "initial") first();
      }, { now: () => clock });
      await initial;
      assert.deepEqual(delays, [MAX_TIMER_DELAY_MS]);
      clock += Math.floor(MAX_TIMER_DELAY_MS / 1000);
      mock.timers.tick(MAX_TIMER_DELAY_MS);
      assert.equal(delays.length, 2, "re-armed once for the rest");
      assert.ok(delays[1]! < MAX_TIMER_DELAY_MS);
      assert.ok(!updates.some((u) => u.cause === "expiry"));
      clock = expiresAt;
      mock.timers.tick(delays[1]!);
      const expired = updates.filter((u) => u.cause === "expiry");
      assert.equal(expired.length, 1);
      assert.equal(expired[0]!.status, "expired");
      assert.equal(delays.length, 2, "nothing armed after the expiry");
      await sub.unsubscribe();
    } finally {
      globalThis.setTimeout = mockedSetTimeout;
      mock.timers.reset();
    }
    await session.closeEarly();
  });
});
