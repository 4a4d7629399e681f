// The ephemeral key at rest: AES-256-GCM under HKDF-SHA256 of the parent's signature, a
// versioned envelope with a random salt and 96-bit IV, and no way to read the secret in clear.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";

import { Keypair, PublicKey, SystemProgram, Transaction } from "@solana/web3.js";

import {
  decryptEphemeralKey,
  encryptEphemeralKey,
  ENVELOPE_LENGTH,
  envelopePublicKey,
  EPHEMERAL_KEY_MESSAGE,
  EphemeralKey,
  EphemeralKeyDecryptionError,
  SealedKeyStore,
  sealEphemeralKey,
  unsealEphemeralKey,
} from "../app/dist/index.js";
import { KeypairWallet } from "./harness/wallet.js";

const SINK = Keypair.generate().publicKey;

function signedTransfer(key: EphemeralKey): Transaction {
  const tx = new Transaction({ feePayer: key.publicKey, blockhash: "11111111111111111111111111111111", lastValidBlockHeight: 1 });
  tx.add(SystemProgram.transfer({ fromPubkey: key.publicKey, toPubkey: SINK, lamports: 1 }));
  return key.signTransaction(tx);
}

/** A key whose seed the test knows: WebCrypto's random source is stubbed while it is generated. */
function keyWithKnownSeed(): { key: EphemeralKey; seed: Uint8Array } {
  const seed = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
  const original = globalThis.crypto.getRandomValues.bind(globalThis.crypto);
  globalThis.crypto.getRandomValues = (<T extends ArrayBufferView | null>(array: T): T => {
    (array as unknown as Uint8Array).set(seed);
    return array;
  }) as typeof globalThis.crypto.getRandomValues;
  try {
    return { key: EphemeralKey.generate(), seed };
  } finally {
    globalThis.crypto.getRandomValues = original;
  }
}

/** Whether `text` shows the secret in any usual encoding. */
function leaks(text: string, secret: Uint8Array): boolean {
  const forms = [
    Buffer.from(secret).toString("base64"),
    Buffer.from(secret).toString("hex"),
    Array.from(secret.subarray(0, 6)).join(","),
    Array.from(secret.subarray(0, 6)).join(", "),
    Keypair.fromSeed(secret).secretKey.toString(),
  ];
  return forms.some((f) => text.includes(f));
}

describe("EphemeralKey", () => {
  it("signs transactions without exposing its secret", async () => {
    const key = EphemeralKey.generate();
    const tx = signedTransfer(key);
    assert.ok(tx.verifySignatures());
    assert.equal(String(key), `EphemeralKey(${key.publicKey.toBase58()})`);
    assert.deepEqual(JSON.parse(JSON.stringify(key)), { publicKey: key.publicKey.toBase58() });
    assert.equal(inspect(key, { showHidden: true, depth: 10 }), `EphemeralKey(${key.publicKey.toBase58()})`);
    assert.deepEqual(Object.keys(key), ["publicKey"]);
    assert.equal((key as unknown as Record<string, unknown>).secretKey, undefined);
    assert.equal((key as unknown as Record<string, unknown>).keypair, undefined);
    assert.deepEqual(Object.getOwnPropertyNames(Object.getPrototypeOf(key)).sort(), [
      "constructor", "dispose", "disposed", "signAllTransactions", "signTransaction", "toJSON", "toString",
    ]);
    assert.ok(Object.isFrozen(key));
  });

  it("can be disposed: it then refuses to sign", () => {
    const key = EphemeralKey.generate();
    key.dispose();
    assert.equal(key.disposed, true);
    assert.throws(() => signedTransfer(key), /disposed/);
    key.dispose();
  });
});

describe("envelope", () => {
  it("round-trips with the parent's signature; the layout is version | salt | iv | pubkey | ciphertext+tag", async () => {
    const wallet = new KeypairWallet();
    const key = EphemeralKey.generate();
    const signature = await wallet.signMessage(EPHEMERAL_KEY_MESSAGE);
    const a = await encryptEphemeralKey(key, wallet.publicKey, signature);
    const b = await encryptEphemeralKey(key, wallet.publicKey, signature);
    assert.equal(a.length, 1 + 32 + 12 + 32 + 32 + 16);
    assert.equal(a[0], 1, "version byte");
    assert.ok(new PublicKey(a.subarray(45, 77)).equals(key.publicKey));
    assert.ok(envelopePublicKey(a).equals(key.publicKey));
    assert.notDeepEqual(a.subarray(1, 33), b.subarray(1, 33), "a fresh salt each time");
    assert.notDeepEqual(a.subarray(33, 45), b.subarray(33, 45), "a fresh IV each time");
    assert.notDeepEqual(a.subarray(77), b.subarray(77));

    const opened = await decryptEphemeralKey(a, wallet.publicKey, signature);
    assert.ok(opened.publicKey.equals(key.publicKey));
    assert.ok(signedTransfer(opened).verifySignatures());
    // Same seed: signatures of the same message agree (ed25519 is deterministic).
    assert.deepEqual(signedTransfer(opened).signature, signedTransfer(key).signature);
  });

  it("never shows the secret: not in its text forms, its properties, nor the envelope", async () => {
    const { key, seed } = keyWithKnownSeed();
    assert.ok(key.publicKey.equals(Keypair.fromSeed(seed).publicKey), "the stub took effect");
    const outputs = [
      String(key),
      `${key}`,
      JSON.stringify(key),
      JSON.stringify({ nested: key }),
      inspect(key, { showHidden: true, depth: 10 }),
      inspect({ key }, { showHidden: true, depth: 10 }),
      JSON.stringify(Object.getOwnPropertyNames(key).map((n) => [n, String((key as unknown as Record<string, unknown>)[n])])),
      Object.getOwnPropertyNames(Object.getPrototypeOf(key)).join(","),
    ];
    for (const out of outputs) assert.ok(!leaks(out, seed), `leaked in: ${out}`);
    const wallet = new KeypairWallet();
    const envelope = await encryptEphemeralKey(key, wallet.publicKey, await wallet.signMessage(EPHEMERAL_KEY_MESSAGE));
    assert.ok(!leaks(Buffer.from(envelope).toString("hex"), seed));
    assert.ok(!Buffer.from(envelope).includes(Buffer.from(seed.subarray(0, 8))));
    // Only the module's own constructor path can make keys.
    assert.throws(() => new (EphemeralKey as unknown as new (...a: unknown[]) => EphemeralKey)(Symbol("x"), Keypair.generate()), TypeError);
  });

  it("refuses another wallet, another parent, a changed byte, and an unknown version", async () => {
    const wallet = new KeypairWallet();
    const key = EphemeralKey.generate();
    const signature = await wallet.signMessage(EPHEMERAL_KEY_MESSAGE);
    const envelope = await encryptEphemeralKey(key, wallet.publicKey, signature);

    const otherWallet = new KeypairWallet();
    const otherSig = await otherWallet.signMessage(EPHEMERAL_KEY_MESSAGE);
    await assert.rejects(decryptEphemeralKey(envelope, wallet.publicKey, otherSig), EphemeralKeyDecryptionError);
    await assert.rejects(decryptEphemeralKey(envelope, otherWallet.publicKey, signature), EphemeralKeyDecryptionError);
    // A signature of some other message does not open it either.
    const phishing = await wallet.signMessage(new TextEncoder().encode("hello"));
    await assert.rejects(decryptEphemeralKey(envelope, wallet.publicKey, phishing), EphemeralKeyDecryptionError);

    for (const index of [1, 20, 33, 44, 45, 60, 77, 100, ENVELOPE_LENGTH - 1]) {
      const changed = Uint8Array.from(envelope);
      changed[index]! ^= 0x01;
      await assert.rejects(decryptEphemeralKey(changed, wallet.publicKey, signature), EphemeralKeyDecryptionError, `byte ${index}`);
    }
    const v2 = Uint8Array.from(envelope);
    v2[0] = 2;
    await assert.rejects(decryptEphemeralKey(v2, wallet.publicKey, signature), EphemeralKeyDecryptionError);
    await assert.rejects(decryptEphemeralKey(envelope.subarray(0, 100), wallet.publicKey, signature), EphemeralKeyDecryptionError);
    await assert.rejects(decryptEphemeralKey(envelope, wallet.publicKey, signature.subarray(0, 63)), TypeError);
  });

  it("seals with the wallet's signMessage and stores base64 text only", async () => {
    const wallet = new KeypairWallet();
    const key = EphemeralKey.generate();
    const sealed = await sealEphemeralKey(key, wallet);
    assert.match(sealed, /^[A-Za-z0-9+/]+=*$/);
    assert.equal(wallet.signedMessages, 1);

    const memory = new Map<string, string>();
    const store = new SealedKeyStore({
      getItem: (k) => memory.get(k) ?? null,
      setItem: (k, v) => void memory.set(k, v),
      removeItem: (k) => void memory.delete(k),
    });
    const vault = Keypair.generate().publicKey;
    store.save(wallet.publicKey, vault, sealed);
    assert.equal(store.load(wallet.publicKey, vault), sealed);

    // Later, on a reload: the same wallet signs the same message again and opens it.
    const reopened = await unsealEphemeralKey(store.load(wallet.publicKey, vault)!, wallet);
    assert.ok(reopened.publicKey.equals(key.publicKey));
    assert.equal(wallet.signedMessages, 2);
    await assert.rejects(unsealEphemeralKey(sealed, new KeypairWallet()), EphemeralKeyDecryptionError);
    store.remove(wallet.publicKey, vault);
    assert.equal(store.load(wallet.publicKey, vault), null);

    // Wallets that answer { signature } (some providers' raw API) work too.
    const providerStyle = { publicKey: wallet.publicKey, signMessage: async (m: Uint8Array) => ({ signature: await wallet.signMessage(m) }) };
    assert.ok((await unsealEphemeralKey(sealed, providerStyle)).publicKey.equals(key.publicKey));
  });
});
