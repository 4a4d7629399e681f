// The ephemeral wallet (session key) a browser holds for one session, and its encryption at rest.
//
// The secret never leaves this module in clear: EphemeralKey exposes its public key and can sign
// transactions, but has no accessor for the secret, and prints / serialises as its public key
// only. At rest it is sealed in an envelope:
//
//   version (1 byte, = 1) | salt (32) | iv (12) | ephemeral public key (32) | AES-256-GCM(seed) + tag (48)
//
// under a key derived with HKDF-SHA256 from the parent wallet's ed25519 signature of
// EPHEMERAL_KEY_MESSAGE (deterministic, so the same wallet re-derives the same key later), the
// envelope's salt, and an info string naming the parent. The header and the parent's public key
// are authenticated as additional data, so a changed byte or another wallet fails to open it.
import { Keypair, PublicKey, Transaction, VersionedTransaction } from "@solana/web3.js";

import { concatBytes, fresh, fromBase64, toBase64 } from "./internal/bytes.js";

/** The message the parent wallet signs to derive the key-encryption key. Never change a version's text. */
export const EPHEMERAL_KEY_MESSAGE: Uint8Array = new TextEncoder().encode(
  "Ephemeral Vault: unlock your trading session keys on this device.\n\n" +
    "Signing this message decrypts session keys stored by this app. " +
    "It does not send a transaction or cost anything.\n\nVersion: 1",
);

export const ENVELOPE_VERSION = 1;
const SALT_LEN = 32;
const IV_LEN = 12; // 96-bit GCM nonce
const PUBKEY_LEN = 32;
const SEED_LEN = 32;
const TAG_LEN = 16;
const HEADER_LEN = 1 + SALT_LEN + IV_LEN + PUBKEY_LEN;
export const ENVELOPE_LENGTH = HEADER_LEN + SEED_LEN + TAG_LEN;
const HKDF_INFO = new TextEncoder().encode("ephemeral-vault/session-key/v1");

// The secrets live here, out of reach of anything outside this module: no property, method or
// serialisation of EphemeralKey returns them.
const secrets = new WeakMap<EphemeralKey, Keypair>();

const CONSTRUCT = Symbol("EphemeralKey");

function keypairOf(key: EphemeralKey): Keypair {
  const kp = secrets.get(key);
  if (kp === undefined) throw new Error("this ephemeral key was disposed");
  return kp;
}

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (s === undefined) throw new Error("WebCrypto (crypto.subtle) is unavailable: a secure context (https) is required");
  return s;
}

/** A session's ephemeral wallet. It signs as the session's delegate; its secret stays inside. */
export class EphemeralKey {
  readonly publicKey: PublicKey;

  private constructor(token: symbol, keypair: Keypair) {
    if (token !== CONSTRUCT) throw new TypeError("use EphemeralKey.generate() or decryptEphemeralKey()");
    this.publicKey = keypair.publicKey;
    secrets.set(this, keypair);
    Object.freeze(this);
  }

  /** A new random key (32 bytes from WebCrypto's random source). */
  static generate(): EphemeralKey {
    const seed = globalThis.crypto.getRandomValues(new Uint8Array(SEED_LEN));
    try {
      return new EphemeralKey(CONSTRUCT, Keypair.fromSeed(seed));
    } finally {
      seed.fill(0);
    }
  }

  /** Adds this key's signature to a transaction (other signatures are kept). Returns the same transaction. */
  signTransaction<T extends Transaction | VersionedTransaction>(tx: T): T {
    const kp = keypairOf(this);
    if (tx instanceof VersionedTransaction) tx.sign([kp]);
    else (tx as Transaction).partialSign(kp);
    return tx;
  }

  signAllTransactions<T extends Transaction | VersionedTransaction>(txs: T[]): T[] {
    return txs.map((tx) => this.signTransaction(tx));
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return !secrets.has(this);
  }

  /** Wipes the secret from memory (best effort) and makes this key unusable. */
  dispose(): void {
    const kp = secrets.get(this);
    if (kp === undefined) return;
    const inner = (kp as unknown as { _keypair?: { secretKey?: Uint8Array } })._keypair;
    inner?.secretKey?.fill(0);
    secrets.delete(this);
  }

  toString(): string {
    return `EphemeralKey(${this.publicKey.toBase58()})`;
  }

  toJSON(): { publicKey: string } {
    return { publicKey: this.publicKey.toBase58() };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

/** The envelope or the signature does not open: wrong wallet, changed bytes, or another format. */
export class EphemeralKeyDecryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EphemeralKeyDecryptionError";
  }
}

function checkSignature(signature: Uint8Array): void {
  if (!(signature instanceof Uint8Array) || signature.length !== 64) {
    throw new TypeError("expected the parent wallet's 64-byte ed25519 signature of EPHEMERAL_KEY_MESSAGE");
  }
}

async function deriveKey(signature: Uint8Array, salt: Uint8Array, parent: PublicKey): Promise<CryptoKey> {
  const s = subtle();
  const material = fresh(signature);
  let ikm: CryptoKey;
  try {
    ikm = await s.importKey("raw", material, "HKDF", false, ["deriveKey"]);
  } finally {
    material.fill(0);
  }
  return s.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: fresh(salt), info: concatBytes(HKDF_INFO, parent.toBytes()) },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/**
 * Seals `key` under the parent's signature of EPHEMERAL_KEY_MESSAGE. Returns the envelope bytes
 * (see the file header); store them, e.g. base64 in localStorage.
 */
export async function encryptEphemeralKey(
  key: EphemeralKey,
  parent: PublicKey,
  signature: Uint8Array,
): Promise<Uint8Array> {
  checkSignature(signature);
  const kp = keypairOf(key);
  const salt = globalThis.crypto.getRandomValues(new Uint8Array(SALT_LEN));
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_LEN));
  const header = concatBytes(Uint8Array.of(ENVELOPE_VERSION), salt, iv, key.publicKey.toBytes());
  const aesKey = await deriveKey(signature, salt, parent);
  const secret = kp.secretKey; // a copy: the seed is its first 32 bytes
  const seed = fresh(secret.subarray(0, SEED_LEN));
  try {
    const ciphertext = await subtle().encrypt(
      { name: "AES-GCM", iv, additionalData: concatBytes(header, parent.toBytes()), tagLength: TAG_LEN * 8 },
      aesKey,
      seed,
    );
    return concatBytes(header, new Uint8Array(ciphertext));
  } finally {
    secret.fill(0);
    seed.fill(0);
  }
}

/** The public key an envelope holds, read without decrypting it. */
export function envelopePublicKey(envelope: Uint8Array | string): PublicKey {
  const bytes = typeof envelope === "string" ? fromBase64(envelope) : envelope;
  if (bytes.length !== ENVELOPE_LENGTH || bytes[0] !== ENVELOPE_VERSION) {
    throw new EphemeralKeyDecryptionError("not an ephemeral key envelope of a known version");
  }
  return new PublicKey(bytes.subarray(1 + SALT_LEN + IV_LEN, HEADER_LEN));
}

/** Opens an envelope with the parent's signature of EPHEMERAL_KEY_MESSAGE. */
export async function decryptEphemeralKey(
  envelope: Uint8Array | string,
  parent: PublicKey,
  signature: Uint8Array,
): Promise<EphemeralKey> {
  checkSignature(signature);
  const bytes = typeof envelope === "string" ? fromBase64(envelope) : envelope;
  const expectedKey = envelopePublicKey(bytes);
  const salt = bytes.subarray(1, 1 + SALT_LEN);
  const iv = fresh(bytes.subarray(1 + SALT_LEN, 1 + SALT_LEN + IV_LEN));
  const header = bytes.subarray(0, HEADER_LEN);
  const aesKey = await deriveKey(signature, salt, parent);
  let plain: ArrayBuffer;
  try {
    plain = await subtle().decrypt(
      { name: "AES-GCM", iv, additionalData: concatBytes(header, parent.toBytes()), tagLength: TAG_LEN * 8 },
      aesKey,
      fresh(bytes.subarray(HEADER_LEN)),
    );
  } catch {
    throw new EphemeralKeyDecryptionError("cannot decrypt the ephemeral key: another wallet, or the envelope was changed");
  }
  const seed = new Uint8Array(plain);
  try {
    const kp = Keypair.fromSeed(seed);
    if (!kp.publicKey.equals(expectedKey)) {
      throw new EphemeralKeyDecryptionError("the decrypted key does not match the envelope's public key");
    }
    return new (EphemeralKey as unknown as new (token: symbol, kp: Keypair) => EphemeralKey)(CONSTRUCT, kp);
  } finally {
    seed.fill(0);
  }
}

/** A wallet that can sign messages (wallet-adapter's `signMessage`, or a provider's `{ signature }`). */
export interface MessageSigner {
  publicKey: PublicKey;
  signMessage(message: Uint8Array): Promise<Uint8Array | { signature: Uint8Array }>;
}

/** Asks the wallet to sign EPHEMERAL_KEY_MESSAGE; the signature is the key material, keep it in memory only. */
export async function signKeyMessage(wallet: MessageSigner): Promise<Uint8Array> {
  const out = await wallet.signMessage(EPHEMERAL_KEY_MESSAGE);
  const signature = out instanceof Uint8Array ? out : out.signature;
  checkSignature(Uint8Array.from(signature));
  return Uint8Array.from(signature);
}

/** Seals a key with the wallet's signature; returns base64 text for storage. */
export async function sealEphemeralKey(key: EphemeralKey, wallet: MessageSigner): Promise<string> {
  const signature = await signKeyMessage(wallet);
  try {
    return toBase64(await encryptEphemeralKey(key, wallet.publicKey, signature));
  } finally {
    signature.fill(0);
  }
}

/** Opens a sealed key with the wallet's signature. */
export async function unsealEphemeralKey(sealed: string | Uint8Array, wallet: MessageSigner): Promise<EphemeralKey> {
  const signature = await signKeyMessage(wallet);
  try {
    return await decryptEphemeralKey(sealed, wallet.publicKey, signature);
  } finally {
    signature.fill(0);
  }
}

/** Web Storage's shape (localStorage, sessionStorage), or anything like it. */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Sealed session keys in a key-value store, one entry per parent and session (base64 envelopes only). */
export class SealedKeyStore {
  constructor(
    private readonly storage: KeyValueStorage,
    private readonly prefix = "ephemeral-vault:key:",
  ) {}

  private key(parent: PublicKey, vault: PublicKey): string {
    return `${this.prefix}${parent.toBase58()}:${vault.toBase58()}`;
  }

  save(parent: PublicKey, vault: PublicKey, sealed: string): void {
    this.storage.setItem(this.key(parent, vault), sealed);
  }

  load(parent: PublicKey, vault: PublicKey): string | null {
    return this.storage.getItem(this.key(parent, vault));
  }

  remove(parent: PublicKey, vault: PublicKey): void {
    this.storage.removeItem(this.key(parent, vault));
  }
}
