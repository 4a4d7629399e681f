// Loads the page as Vite (tests/browser/dist) and webpack (tests/browser/dist-webpack) bundled it
// in headless Chromium through playwright-core and checks what it did: offline (builders, decoding, transactions) always, and with
// VAULT_RPC_URL / VAULT_WS_URL / VAULT_ADMIN_KEYPAIR a whole session against that validator
// (openSession -> trade -> subscribe -> closeEarly), its results read back from the chain here.
// Run by scripts/test-browser.sh:  node --test tests/browser/run.mjs
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";

import { createAssociatedTokenAccountIdempotent, createMint, getAccount, mintTo, TOKEN_2022_PROGRAM_ID } from "@solana/spl-token";
import { Connection, Keypair, PublicKey } from "@solana/web3.js";
import { chromium } from "playwright-core";
import {
  buildTransaction,
  fetchConfig,
  fetchTransactionEvents,
  initializeConfigInstruction,
  sendAndConfirm,
  setPausedInstruction,
  updateConfigInstruction,
} from "@ephemeral-vault/client";

const here = import.meta.dirname;
const BUNDLES = [
  ["Vite", resolve(here, "dist")],
  ["webpack", resolve(here, "dist-webpack")],
];
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const rpcUrl = process.env.VAULT_RPC_URL;
const wsUrl = process.env.VAULT_WS_URL;
const adminPath = process.env.VAULT_ADMIN_KEYPAIR;
const onChain = Boolean(rpcUrl && wsUrl && adminPath);

// The flags Debian's Chromium needs here: no sandbox (root), no GPU, and no background
// networking (it keeps trying hosts this machine cannot reach otherwise).
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json" };

/** Serves the built page on 127.0.0.1 (a random port). */
function serve(root) {
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/favicon.ico") {
      res.statusCode = 204;
      return res.end();
    }
    const file = join(root, path === "/" ? "index.html" : path);
    if (!file.startsWith(root) || !existsSync(file)) {
      res.statusCode = 404;
      return res.end("not found");
    }
    res.setHeader("content-type", TYPES[extname(file)] ?? "application/octet-stream");
    res.end(readFileSync(file));
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

const servers = [];
const bases = new Map();
let browser;

before(async () => {
  for (const [bundler, dir] of BUNDLES) {
    assert.ok(existsSync(join(dir, "index.html")), `build the ${bundler} page first (scripts/test-browser.sh)`);
    const server = await serve(dir);
    servers.push(server);
    bases.set(bundler, `http://127.0.0.1:${server.address().port}/`);
  }
  browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  for (const server of servers) server.close();
});

/** Opens a bundle's page with `query`, waits for its result; returns it with what the console said. */
async function runPage(bundler, query, timeoutMs) {
  const base = bases.get(bundler);
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console.error: ${m.text()}`);
  });
  try {
    await page.goto(base + query);
    await page.waitForFunction(() => window.__vaultResult !== undefined, null, { timeout: timeoutMs });
    const outcome = await page.evaluate(() => window.__vaultResult);
    const status = await page.textContent("#status");
    return { outcome, problems, status };
  } finally {
    await page.close();
  }
}

function assertNoNodeGlobals(result) {
  const none = { Buffer: "undefined", process: "undefined", global: "undefined" };
  assert.deepEqual(result.globalsBefore, none, "the page starts with no Node globals");
  assert.deepEqual(result.globalsAfter, none, "nothing defined a Node global on the way");
}

for (const [bundler] of BUNDLES) describe(`the client bundled by ${bundler}, in headless Chromium, offline`, () => {
  let run;
  before(async () => {
    run = await runPage(bundler, "?offline=1", 30_000);
  });

  it("runs with no Buffer, process or global, and without a page error", () => {
    assert.equal(run.outcome.ok, true, run.outcome.error);
    assert.deepEqual(run.problems, []);
    assert.equal(run.status, "done");
    assertNoNodeGlobals(run.outcome.result);
  });

  it("builds every instruction (u64, i64 and public-key arguments) and decodes accounts", () => {
    const r = run.outcome.result;
    assert.deepEqual(Object.keys(r.instructions).sort(), [
      "approveDelegate", "cleanupVault", "createSession", "createTokenSession", "deposit", "executeTrade",
      "initializeConfig", "setPaused", "topUpFees", "updateConfig", "withdraw",
    ]);
    // Discriminator + arguments: e.g. create_session's args with one destination.
    assert.equal(r.instructions.createSession.dataLength, 8 + 16 + 8 + 8 + 8 + 4 + 32 + 8 + 8);
    assert.equal(r.instructions.deposit.dataLength, 16);
    assert.equal(r.instructions.updateConfig.dataLength, 8 + 8 + 8 + 8 + 2 + 8 + 1 + 32);
    assert.equal(r.closeInstructions, 2);
    assert.deepEqual(r.vault, {
      approvedAmount: String(10n ** 18n),
      lastTradeId: String(2n ** 63n),
      destinations: [r.vault.venue],
      venue: r.vault.venue,
      expiresAt: 1_700_003_600,
      status: "active",
      delegateRotations: 3,
    });
    assert.deepEqual(r.config, { feeTopUpCap: "50000000", maxSessionDuration: 86400 });
  });

  it("signs and serialises a transaction, and parses a program error", () => {
    const r = run.outcome.result;
    assert.equal(r.transaction.signatures, 2);
    assert.equal(r.transaction.verified, true);
    assert.equal(r.transaction.instructions, 3);
    assert.deepEqual(r.error, { name: "VaultProgramError", errorName: "PerTradeCapExceeded" });
  });
});

const OPEN_FEE = 5000;
let admin;
let connection;

describe("against the local validator", { skip: onChain ? false : "no VAULT_RPC_URL, VAULT_WS_URL and VAULT_ADMIN_KEYPAIR" }, () => {
  before(async () => {
    connection = new Connection(rpcUrl, { commitment: "confirmed", wsEndpoint: wsUrl });
    admin = Keypair.fromSecretKey(Uint8Array.from(JSON.parse(readFileSync(adminPath, "utf8"))));
    // The config as a deployment would have it (the admin is the program's upgrade authority).
    if ((await connection.getBalance(admin.publicKey)) < 1e9) {
      const sig = await connection.requestAirdrop(admin.publicKey, 10e9);
      await connection.confirmTransaction({ signature: sig, ...(await connection.getLatestBlockhash()) }, "confirmed");
    }
    const params = { maxSessionDuration: 86_400, minSessionDuration: 60, feeTopUpCap: 50_000_000n, cleanupRewardBps: 5000, cleanupRewardCap: 2_000_000n };
    const existing = await fetchConfig(connection, { commitment: "confirmed" });
    const instructions = existing === null
      ? [initializeConfigInstruction({ admin: admin.publicKey, params })]
      : [updateConfigInstruction({ admin: admin.publicKey, params }), ...(existing.paused ? [setPausedInstruction({ admin: admin.publicKey, paused: false })] : [])];
    const tx = await buildTransaction(connection, { feePayer: admin.publicKey, instructions });
    tx.sign(admin);
    await sendAndConfirm(connection, tx);
  });

  for (const [bundler] of BUNDLES) describe(`the client bundled by ${bundler}, in headless Chromium`, () => {
    let run;
    let parent;
    let mint;
    let parentAta;

    before(async () => {
      // The parent's tokens: a Token-2022 mint and 5 tokens (6 decimals) in its associated account.
      parent = Keypair.generate();
      mint = await createMint(connection, admin, admin.publicKey, null, 6, undefined, { commitment: "confirmed" }, TOKEN_2022_PROGRAM_ID);
      parentAta = await createAssociatedTokenAccountIdempotent(connection, admin, mint, parent.publicKey, { commitment: "confirmed" }, TOKEN_2022_PROGRAM_ID);
      await mintTo(connection, admin, mint, parentAta, admin, 5_000_000n, [], { commitment: "confirmed" }, TOKEN_2022_PROGRAM_ID);

      const query = `?rpc=${encodeURIComponent(rpcUrl)}&ws=${encodeURIComponent(wsUrl)}` +
        `&parent=${encodeURIComponent(Buffer.from(parent.secretKey).toString("base64"))}&mint=${mint.toBase58()}`;
      run = await runPage(bundler, query, 180_000);
    });

    it("opens a session, trades with the session key, watches and closes it, with no Node global", () => {
      assert.equal(run.outcome.ok, true, run.outcome.error);
      assert.deepEqual(run.problems.filter((p) => !p.includes("the server responded with a status of 400") && !p.includes("simulation failed")), []);
      assert.equal(run.status, "done");
      assertNoNodeGlobals(run.outcome.result);
      const r = run.outcome.result;
      assert.equal(r.created.delegate, r.ephemeral);
      assert.deepEqual(r.traded, { amount: "100000000", fee: "1000000", remainingAllowance: "399000000", tradeId: r.traded.tradeId });
      assert.deepEqual(r.refusal, { name: "PerTradeCapExceeded", message: "Trade amount exceeds the per-trade cap", typed: true });
      assert.deepEqual(
        { ...r.decoded, expiresInSecs: undefined },
        { delegate: r.ephemeral, totalDeposited: "500000000", totalSpent: "101000000", tradeCount: "1", status: "active", expiresInSecs: undefined, balance: "399000000" },
      );
      assert.ok(r.decoded.expiresInSecs > 500 && r.decoded.expiresInSecs <= 600, `${r.decoded.expiresInSecs}s left`);
      assert.deepEqual(r.cleaned, { reason: "manualRevoke", returnedAmount: "399000000", reward: r.cleaned.reward });
    });

    it("saw the trade and the closing through the subscription", () => {
      const updates = run.outcome.result.updates;
      const trade = updates.find((u) => u.tradeCount === "1");
      assert.ok(trade, JSON.stringify(updates));
      assert.equal(trade.status, "active");
      assert.equal(trade.remainingAllowance, "399000000");
      assert.ok(trade.changed.includes("totalSpent") && trade.changed.includes("tradeCount"), trade.changed.join(","));
      const last = updates.at(-1);
      assert.equal(last.status, "closed");
      assert.equal(updates.filter((u) => u.status === "closed").length, 1);
    });

    it("left the chain as the session implies", async () => {
      const r = run.outcome.result;
      const key = (s) => new PublicKey(s);
      assert.equal(await connection.getAccountInfo(key(r.vault), "confirmed"), null, "the vault is closed");
      assert.equal(await connection.getBalance(key(r.venue), "confirmed"), 101_000_000, "the venue got the trade and its fee");
      // The session key got 0.01 SOL at opening and paid one signature fee (its refused trade
      // failed in preflight and never landed).
      assert.equal(await connection.getBalance(key(r.ephemeral), "confirmed"), 10_000_000 - 5000);
      // The parent: 2 SOL, less the SOL trade (0.101 SOL), the session keys' 0.01 and 0.005 SOL and
      // four fees (two sessions opened and closed); the vaults' rent and the cleanup rewards came
      // back to it as the caller.
      assert.equal(await connection.getBalance(key(r.parent), "confirmed"), 2_000_000_000 - 101_000_000 - 10_000_000 - 5_000_000 - 4 * OPEN_FEE);

      // Only the session key signed the trade.
      const trade = await connection.getTransaction(r.signatures.trade, { commitment: "confirmed", maxSupportedTransactionVersion: 0 });
      const keys = trade.transaction.message.getAccountKeys();
      assert.equal(trade.transaction.message.header.numRequiredSignatures, 1);
      assert.equal(keys.get(0).toBase58(), r.ephemeral);
      // The close transaction's events, read here from the chain.
      const events = await fetchTransactionEvents(connection, r.signatures.close);
      assert.deepEqual(events.map((e) => e.name), ["SessionRevoked", "VaultCleaned"]);
      const cleaned = events[1].data;
      assert.equal(cleaned.returnedAmount, 399_000_000n);
      assert.equal(cleaned.caller.toBase58(), r.parent);
      assert.equal(String(cleaned.reward), r.cleaned.reward);
    });

    it("ran a Token-2022 session whose trade created the venue's token account", async () => {
      const t = run.outcome.result.token;
      assert.ok(t, "the page ran the token session");
      assert.equal(t.deposited, "3000000");
      assert.equal(t.tradeDestination, t.venueTokenAccount);
      assert.equal(t.returned, "2500000");
      const venueAccount = await getAccount(connection, new PublicKey(t.venueTokenAccount), "confirmed", TOKEN_2022_PROGRAM_ID);
      assert.equal(venueAccount.amount, 500_000n);
      assert.ok(venueAccount.owner.equals(new PublicKey(run.outcome.result.venue)));
      assert.equal((await getAccount(connection, parentAta, "confirmed", TOKEN_2022_PROGRAM_ID)).amount, 4_500_000n);
      assert.equal(await connection.getAccountInfo(new PublicKey(t.vault), "confirmed"), null);
      // The session key paid its trade's fee and the venue's account rent from its 0.005 SOL.
      const rent = await connection.getMinimumBalanceForRentExemption((await connection.getAccountInfo(new PublicKey(t.venueTokenAccount))).data.length);
      assert.equal(await connection.getBalance(new PublicKey(t.ephemeral), "confirmed"), 5_000_000 - OPEN_FEE - rent);
    });
  });
});
