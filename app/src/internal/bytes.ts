// Small byte and number helpers that work the same in browsers and Node (no global Buffer).

/** An amount in base units: a bigint, or a safe non-negative integer number. */
export type Amount = bigint | number;

const U64_MAX = (1n << 64n) - 1n;

/** Checks an amount fits a u64 and returns it as a bigint. */
export function toU64(value: Amount, what = "amount"): bigint {
  let v: bigint;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new RangeError(`${what} must be an integer within Number.MAX_SAFE_INTEGER, or a bigint (got ${value})`);
    }
    v = BigInt(value);
  } else if (typeof value === "bigint") {
    v = value;
  } else {
    throw new TypeError(`${what} must be a bigint or a number`);
  }
  if (v < 0n || v > U64_MAX) throw new RangeError(`${what} must fit in a u64 (got ${v})`);
  return v;
}

/** Checks a value fits an i64 and returns it as a bigint. */
export function toI64(value: Amount, what = "value"): bigint {
  const v = typeof value === "number" ? BigInt(Math.trunc(value)) : value;
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw new RangeError(`${what} must be a safe integer (got ${value})`);
  }
  if (v < -(1n << 63n) || v >= 1n << 63n) throw new RangeError(`${what} must fit in an i64 (got ${v})`);
  return v;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function startsWith(data: Uint8Array, prefix: Uint8Array): boolean {
  if (data.length < prefix.length) return false;
  return bytesEqual(data.subarray(0, prefix.length), prefix);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

export function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) throw new TypeError("not a hex string");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A copy backed by a plain ArrayBuffer (what WebCrypto's BufferSource wants). */
export function fresh(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

const BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BASE58_INDEX = new Map(Array.from(BASE58_ALPHABET, (c, i) => [c, i]));

/** Decodes base58 (Bitcoin alphabet), as RPC nodes send instruction data. */
export function fromBase58(text: string): Uint8Array {
  // Little-endian base-256 digits, multiplied by 58 and added to for each character.
  const digits: number[] = [];
  for (const c of text) {
    let carry = BASE58_INDEX.get(c);
    if (carry === undefined) throw new TypeError(`not base58: ${JSON.stringify(c)}`);
    for (let i = 0; i < digits.length; i++) {
      carry += digits[i]! * 58;
      digits[i] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      digits.push(carry & 0xff);
      carry >>= 8;
    }
  }
  let zeros = 0;
  while (zeros < text.length && text[zeros] === "1") zeros++;
  const out = new Uint8Array(zeros + digits.length);
  for (let i = 0; i < digits.length; i++) out[out.length - 1 - i] = digits[i]!;
  return out;
}
