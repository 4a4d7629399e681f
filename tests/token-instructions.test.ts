// Token sessions: classic SPL Token and Token-2022 (with a transfer fee), through the client's
// builders against the real program, and the mints and accounts a vault refuses.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Keypair } from "@solana/web3.js";

import {
  cleanupVaultInstruction,
  depositInstruction,
  executeTradeInstruction,
  fetchSession,
  revokeSessionInstruction,
  SOL as SOL_ASSET,
  splToken,
  topUpFeesInstruction,
  vaultTokenAddress,
  withdrawInstruction,
  type SessionRef,
} from "../app/dist/index.js";
import { eventNames, eventOf, expectVaultError } from "./harness/assert.js";
import { send, SOL, startConfiguredChain, type TestChain } from "./harness/chain.js";
import { openSession } from "./harness/sessions.js";
import { createMint, mintTo, tokenAccount, tokenBalance, withheldFees, type MintOptions, type TestMint } from "./harness/tokens.js";

async function fundedParent(chain: TestChain, options: MintOptions, amount: bigint) {
  const parent = await chain.newWallet(20 * SOL);
  const mint = await createMint(chain, parent, options);
  const parentAta = await tokenAccount(chain, parent, mint, parent.publicKey);
  await mintTo(chain, parent, mint, parentAta, amount);
  return { parent, mint, parentAta };
}

async function destinationAccount(chain: TestChain, payer: Keypair, mint: TestMint) {
  const owner = Keypair.generate().publicKey;
  return { owner, ata: await tokenAccount(chain, payer, mint, owner) };
}

describe("SPL Token session", () => {
  it("creates, deposits, trades, withdraws and cleans up", async () => {
    const chain = await startConfiguredChain();
    const { parent, mint, parentAta } = await fundedParent(chain, {}, 10_000_000n);
    const s = await openSession(chain, {
      parent,
      asset: mint.asset,
      approvedAmount: 3_000_000n,
      perTradeCap: 1_000_000n,
      initialDeposit: 5_000_000n,
      feeTopUp: 10_000_000n,
    });
    assert.deepEqual(eventNames(s.landed.events), ["SessionCreated", "Deposited"]);
    assert.ok(eventOf(s.landed.events, "SessionCreated").mint.equals(mint.mint));
    const vaultAta = vaultTokenAddress(s.vault);
    assert.equal(await tokenBalance(chain, vaultAta), 5_000_000n);
    assert.equal(await tokenBalance(chain, parentAta), 5_000_000n);
    assert.equal(await chain.balance(s.delegate.publicKey), 10_000_000, "the fee top-up is in lamports");

    const state = await fetchSession(chain.connection, s.vault);
    assert.equal(state?.asset.kind, "token");
    assert.ok(state?.account.tokenProgram.equals(mint.tokenProgram));
    assert.equal(state?.balance, 5_000_000n);

    const dest = await destinationAccount(chain, parent, mint);
    const traded = await send(
      chain,
      [executeTradeInstruction({ session: s.ref, delegate: s.delegate.publicKey, destination: dest.owner, tradeId: 1, amount: 900_000, fee: 100_000 })],
      [s.delegate],
    );
    const ev = eventOf(traded.events, "TradeExecuted");
    assert.ok(ev.destination.equals(dest.ata), "a token trade reports the receiving token account");
    assert.equal(ev.remainingAllowance, 2_000_000n);
    assert.equal(await tokenBalance(chain, dest.ata), 1_000_000n);
    await expectVaultError(
      send(chain, [executeTradeInstruction({ session: s.ref, delegate: s.delegate.publicKey, destination: dest.owner, tradeId: 2, amount: 1_000_001 })], [s.delegate]),
      "PerTradeCapExceeded",
    );

    await send(chain, [depositInstruction({ session: s.ref, amount: 1_000_000 })], [parent]);
    await send(chain, [withdrawInstruction({ session: s.ref, amount: 2_000_000 })], [parent]);
    assert.equal(await tokenBalance(chain, parentAta), 6_000_000n);
    assert.equal(await tokenBalance(chain, vaultAta), 3_000_000n);

    await send(chain, [revokeSessionInstruction({ session: s.ref })], [parent]);
    const caller = await chain.newWallet(SOL);
    const vaultRent = await chain.balance(s.vault);
    const tokenRent = await chain.balance(vaultAta);
    const cleaned = await send(chain, [cleanupVaultInstruction({ session: s.ref, caller: caller.publicKey })], [caller]);
    const vc = eventOf(cleaned.events, "VaultCleaned");
    assert.equal(vc.reason, "manualRevoke");
    assert.equal(vc.returnedAmount, 3_000_000n);
    const reward = Math.min(Math.floor(((vaultRent + tokenRent) * 5000) / 10_000), 2_000_000);
    assert.equal(vc.reward, BigInt(reward));
    assert.equal(vc.rentReturned, BigInt(vaultRent + tokenRent - reward));
    assert.equal(await tokenBalance(chain, parentAta), 9_000_000n);
    assert.equal(await chain.getAccount(vaultAta), null, "the vault's token account is closed");
    assert.equal(await chain.getAccount(s.vault), null);
  });

  it("refuses fee top-ups from a token vault, a wrong mint and missing token accounts", async () => {
    const chain = await startConfiguredChain();
    const { parent, mint } = await fundedParent(chain, {}, 10_000_000n);
    const s = await openSession(chain, { parent, asset: mint.asset, approvedAmount: 1_000_000n, perTradeCap: 1_000_000n, initialDeposit: 1_000_000n });
    await expectVaultError(
      send(chain, [topUpFeesInstruction({ session: s.ref, delegate: s.delegate.publicKey, amount: 1000 })], [s.delegate]),
      "TopUpRequiresSolVault",
    );
    // The same vault addressed with another mint of the same program.
    const other = await createMint(chain, parent, {});
    await tokenAccount(chain, parent, other, parent.publicKey);
    const wrongMint: SessionRef = { ...s.ref, asset: splToken(other.mint, other.tokenProgram) };
    await expectVaultError(send(chain, [depositInstruction({ session: wrongMint, amount: 1 })], [parent]), "WrongMint");
    // As if it were a SOL vault: no token accounts at all.
    const asSol: SessionRef = { ...s.ref, asset: SOL_ASSET };
    await expectVaultError(send(chain, [withdrawInstruction({ session: asSol, amount: 1 })], [parent]), "TokenAccountsMismatch");
  });
});

describe("Token-2022 session", () => {
  it("credits what arrives after a transfer fee, trades, and cleanup harvests withheld fees before closing", async () => {
    const chain = await startConfiguredChain();
    const { parent, mint, parentAta } = await fundedParent(
      chain,
      { transferFee: { basisPoints: 100, maximumFee: 1_000_000_000n } },
      10_000_000n,
    );
    const s = await openSession(chain, {
      parent,
      asset: mint.asset,
      approvedAmount: 5_000_000n,
      perTradeCap: 2_000_000n,
      initialDeposit: 4_000_000n,
      durationSecs: chain.shortDuration,
    });
    const dep = eventOf(s.landed.events, "Deposited");
    assert.equal(dep.amount, 4_000_000n);
    assert.equal(dep.received, 3_960_000n, "1% transfer fee withheld");
    const vaultAta = vaultTokenAddress(s.vault);
    assert.equal(await tokenBalance(chain, vaultAta), 3_960_000n);
    assert.equal(await withheldFees(chain, vaultAta), 40_000n);
    assert.equal((await fetchSession(chain.connection, s.vault))?.balance, 3_960_000n);

    const dest = await destinationAccount(chain, parent, mint);
    await send(
      chain,
      [executeTradeInstruction({ session: s.ref, delegate: s.delegate.publicKey, destination: dest.owner, tradeId: 1, amount: 1_000_000 })],
      [s.delegate],
    );
    assert.equal(await tokenBalance(chain, dest.ata), 990_000n);

    await chain.advance(chain.shortDuration);
    const cleaned = await send(chain, [cleanupVaultInstruction({ session: s.ref, caller: parent.publicKey })], [parent]);
    const vc = eventOf(cleaned.events, "VaultCleaned");
    assert.equal(vc.reason, "expired");
    assert.equal(vc.returnedAmount, 2_960_000n);
    assert.equal(await tokenBalance(chain, parentAta), 6_000_000n + 2_930_400n, "the way back pays the fee too");
    assert.equal(await chain.getAccount(vaultAta), null);
  });

  it("refuses a mint with a permanent delegate", async () => {
    const chain = await startConfiguredChain();
    const { parent, mint } = await fundedParent(chain, { permanentDelegate: Keypair.generate().publicKey }, 1_000_000n);
    await expectVaultError(
      openSession(chain, { parent, asset: mint.asset, approvedAmount: 1_000n, perTradeCap: 1_000n, initialDeposit: 1_000n }),
      "UnsupportedMintExtension",
    );
  });
});
