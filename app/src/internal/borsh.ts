// The program's Borsh encoding, driven by its IDL, on Uint8Array and DataView alone: no Buffer
// (global or imported), no bn.js. Integers of 64 bits and more are bigints; the decoders return
// this package's shapes directly (u64 and wider as bigint, i64 as number, byte arrays as
// Uint8Array, unit enum variants as camelCase strings, field names in camelCase).
import { PublicKey } from "@solana/web3.js";

/** A type as the IDL spells it (Anchor's IDL spec 0.1.0, the subset this program uses and more). */
export type IdlTypeSpec =
  | string
  | { vec: IdlTypeSpec }
  | { option: IdlTypeSpec }
  | { array: [IdlTypeSpec, number] }
  | { defined: { name: string } };

export interface IdlField {
  name: string;
  type: IdlTypeSpec;
}

export type IdlTypeDefinition =
  | { kind: "struct"; fields?: IdlField[] }
  | { kind: "enum"; variants: { name: string; fields?: IdlField[] | IdlTypeSpec[] }[] };

/** `session_id` -> `sessionId`, `Active` -> `active` (what Anchor's client calls them). */
export function camelCase(name: string): string {
  const parts = name.split("_").filter((p) => p.length > 0);
  return parts
    .map((p, i) => (i === 0 ? p[0]!.toLowerCase() + p.slice(1) : p[0]!.toUpperCase() + p.slice(1)))
    .join("");
}

const INTS: Record<string, { size: number; signed: boolean }> = {
  u8: { size: 1, signed: false },
  i8: { size: 1, signed: true },
  u16: { size: 2, signed: false },
  i16: { size: 2, signed: true },
  u32: { size: 4, signed: false },
  i32: { size: 4, signed: true },
  u64: { size: 8, signed: false },
  i64: { size: 8, signed: true },
  u128: { size: 16, signed: false },
  i128: { size: 16, signed: true },
};

/** Thrown when bytes do not decode as the type asked for. */
export class BorshDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BorshDecodeError";
  }
}

class Writer {
  private buf = new Uint8Array(256);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  bytes(data: Uint8Array): void {
    this.room(data.length);
    this.buf.set(data, this.length);
    this.length += data.length;
  }

  int(value: bigint, size: number): void {
    this.room(size);
    let v = BigInt.asUintN(size * 8, value);
    for (let i = 0; i < size; i++) {
      this.buf[this.length + i] = Number(v & 0xffn);
      v >>= 8n;
    }
    this.length += size;
  }

  finish(): Uint8Array<ArrayBuffer> {
    return this.buf.slice(0, this.length);
  }
}

class Reader {
  offset = 0;
  constructor(private readonly data: Uint8Array) {}

  take(n: number, what: string): Uint8Array {
    if (this.offset + n > this.data.length) {
      throw new BorshDecodeError(`${what}: needs ${n} bytes at offset ${this.offset}, the data has ${this.data.length}`);
    }
    const out = this.data.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  int(size: number, signed: boolean, what: string): bigint {
    const b = this.take(size, what);
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    return signed ? BigInt.asIntN(size * 8, v) : v;
  }

  get remaining(): number {
    return this.data.length - this.offset;
  }
}

function toBigInt(value: unknown, what: string): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  // bn.js values (Anchor's client's integers), for code moving over from it.
  if (typeof value === "object" && value !== null && typeof (value as { toArrayLike?: unknown }).toArrayLike === "function") {
    return BigInt(String(value));
  }
  throw new TypeError(`${what}: expected an integer (bigint or safe number), got ${String(value)}`);
}

function toKeyBytes(value: unknown, what: string): Uint8Array {
  if (value instanceof PublicKey) return value.toBytes();
  if (value instanceof Uint8Array && value.length === 32) return value;
  if (typeof value === "string") return new PublicKey(value).toBytes();
  throw new TypeError(`${what}: expected a PublicKey`);
}

/** Encodes and decodes the types of one IDL. */
export class IdlCodec {
  private readonly types: Map<string, IdlTypeDefinition>;

  constructor(types: ReadonlyArray<{ name: string; type: IdlTypeDefinition }>) {
    this.types = new Map(types.map((t) => [t.name, t.type]));
  }

  has(name: string): boolean {
    return this.types.has(name);
  }

  /** Encodes `value` (camelCase fields) as the IDL type `type`. */
  encode(type: IdlTypeSpec, value: unknown): Uint8Array<ArrayBuffer> {
    const w = new Writer();
    this.write(w, type, value, typeof type === "string" ? type : "value");
    return w.finish();
  }

  /** Encodes fields in order (an instruction's arguments). */
  encodeFields(fields: ReadonlyArray<IdlField>, values: Record<string, unknown>, prefix?: Uint8Array): Uint8Array<ArrayBuffer> {
    const w = new Writer();
    if (prefix) w.bytes(prefix);
    for (const f of fields) this.write(w, f.type, values[camelCase(f.name)], camelCase(f.name));
    return w.finish();
  }

  /**
   * Decodes one value of `type` from the start of `data`; returns it with the number of bytes it
   * took. Throws BorshDecodeError when the data is too short or malformed.
   */
  decode(type: IdlTypeSpec, data: Uint8Array): { value: unknown; length: number } {
    const r = new Reader(data);
    const value = this.read(r, type, typeof type === "string" ? type : "value");
    return { value, length: r.offset };
  }

  private def(name: string): IdlTypeDefinition {
    const def = this.types.get(name);
    if (def === undefined) throw new TypeError(`the IDL has no type ${name}`);
    return def;
  }

  private write(w: Writer, type: IdlTypeSpec, value: unknown, what: string): void {
    if (typeof type === "string") {
      const int = INTS[type];
      if (int) {
        const v = toBigInt(value, what);
        const bits = BigInt(int.size * 8);
        const lo = int.signed ? -(1n << (bits - 1n)) : 0n;
        const hi = int.signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
        if (v < lo || v > hi) throw new RangeError(`${what}: ${v} does not fit in ${type}`);
        w.int(v, int.size);
        return;
      }
      switch (type) {
        case "bool":
          if (typeof value !== "boolean") throw new TypeError(`${what}: expected a boolean`);
          w.int(value ? 1n : 0n, 1);
          return;
        case "pubkey":
          w.bytes(toKeyBytes(value, what));
          return;
        case "string": {
          if (typeof value !== "string") throw new TypeError(`${what}: expected a string`);
          const bytes = new TextEncoder().encode(value);
          w.int(BigInt(bytes.length), 4);
          w.bytes(bytes);
          return;
        }
        case "bytes": {
          const bytes = Uint8Array.from(value as ArrayLike<number>);
          w.int(BigInt(bytes.length), 4);
          w.bytes(bytes);
          return;
        }
        default:
          throw new TypeError(`${what}: unsupported IDL type ${type}`);
      }
    }
    if ("option" in type) {
      if (value === null || value === undefined) {
        w.int(0n, 1);
      } else {
        w.int(1n, 1);
        this.write(w, type.option, value, what);
      }
      return;
    }
    if ("vec" in type) {
      const items = Array.from(value as ArrayLike<unknown>);
      w.int(BigInt(items.length), 4);
      items.forEach((v, i) => this.write(w, type.vec, v, `${what}[${i}]`));
      return;
    }
    if ("array" in type) {
      const [inner, len] = type.array;
      const items = Array.from(value as ArrayLike<unknown>);
      if (items.length !== len) throw new RangeError(`${what}: expected ${len} items, got ${items.length}`);
      items.forEach((v, i) => this.write(w, inner, v, `${what}[${i}]`));
      return;
    }
    const def = this.def(type.defined.name);
    if (def.kind === "struct") {
      const input = (value ?? {}) as Record<string, unknown>;
      for (const f of def.fields ?? []) {
        const key = camelCase(f.name);
        this.write(w, f.type, input[key], `${what}.${key}`);
      }
      return;
    }
    // An enum: a unit variant's name (either case), or { variantName: fields }.
    const name = typeof value === "string" ? value : Object.keys(value as object)[0];
    const index = def.variants.findIndex((v) => v.name === name || camelCase(v.name) === name);
    if (index < 0) throw new TypeError(`${what}: ${String(name)} is not a variant of ${type.defined.name}`);
    w.int(BigInt(index), 1);
    const variant = def.variants[index]!;
    if (variant.fields && variant.fields.length > 0) {
      const input = (value as Record<string, unknown>)[name!];
      variant.fields.forEach((f, i) => {
        if (typeof f === "object" && f !== null && "name" in f) {
          this.write(w, f.type, (input as Record<string, unknown>)[camelCase(f.name)], `${what}.${camelCase(f.name)}`);
        } else {
          this.write(w, f as IdlTypeSpec, (input as unknown[])[i], `${what}[${i}]`);
        }
      });
    }
  }

  private read(r: Reader, type: IdlTypeSpec, what: string): unknown {
    if (typeof type === "string") {
      const int = INTS[type];
      if (int) {
        const v = r.int(int.size, int.signed, what);
        if (int.size <= 4) return Number(v);
        if (type === "i64") {
          const n = Number(v);
          if (!Number.isSafeInteger(n)) throw new BorshDecodeError(`${what}: ${v} is beyond Number.MAX_SAFE_INTEGER`);
          return n;
        }
        return v;
      }
      switch (type) {
        case "bool": {
          const b = r.take(1, what)[0]!;
          if (b > 1) throw new BorshDecodeError(`${what}: ${b} is not a boolean`);
          return b === 1;
        }
        case "pubkey":
          return new PublicKey(r.take(32, what));
        case "string":
          return new TextDecoder("utf-8", { fatal: true }).decode(r.take(Number(r.int(4, false, what)), what));
        case "bytes":
          return Uint8Array.from(r.take(Number(r.int(4, false, what)), what));
        default:
          throw new TypeError(`${what}: unsupported IDL type ${type}`);
      }
    }
    if ("option" in type) {
      const tag = r.take(1, what)[0]!;
      if (tag === 0) return null;
      if (tag !== 1) throw new BorshDecodeError(`${what}: ${tag} is not an option tag`);
      return this.read(r, type.option, what);
    }
    if ("vec" in type) {
      const len = Number(r.int(4, false, what));
      if (type.vec === "u8") return Uint8Array.from(r.take(len, what));
      if (len > r.remaining) throw new BorshDecodeError(`${what}: ${len} items cannot fit in ${r.remaining} bytes`);
      return Array.from({ length: len }, (_, i) => this.read(r, type.vec, `${what}[${i}]`));
    }
    if ("array" in type) {
      const [inner, len] = type.array;
      if (inner === "u8") return Uint8Array.from(r.take(len, what));
      return Array.from({ length: len }, (_, i) => this.read(r, inner, `${what}[${i}]`));
    }
    const def = this.def(type.defined.name);
    if (def.kind === "struct") {
      const out: Record<string, unknown> = {};
      for (const f of def.fields ?? []) out[camelCase(f.name)] = this.read(r, f.type, `${what}.${camelCase(f.name)}`);
      return out;
    }
    const index = r.take(1, what)[0]!;
    const variant = def.variants[index];
    if (variant === undefined) throw new BorshDecodeError(`${what}: ${index} is not a variant of ${type.defined.name}`);
    const name = camelCase(variant.name);
    if (!variant.fields || variant.fields.length === 0) return name;
    const fields = variant.fields;
    if (typeof fields[0] === "object" && fields[0] !== null && "name" in fields[0]) {
      const inner: Record<string, unknown> = {};
      for (const f of fields as IdlField[]) inner[camelCase(f.name)] = this.read(r, f.type, `${what}.${camelCase(f.name)}`);
      return { [name]: inner };
    }
    return { [name]: (fields as IdlTypeSpec[]).map((t, i) => this.read(r, t, `${what}[${i}]`)) };
  }
}
