// Turns Anchor's decoded values into this package's shapes, guided by the IDL: u64 and wider as
// bigint, i64 (times and durations) as number, byte arrays as Uint8Array, unit enums as strings.
import type { IdlType, IdlTypeDef } from "@anchor-lang/core";
import type BN from "bn.js";

import { CAMEL_IDL } from "../idl/index.js";

const TYPES = new Map<string, IdlTypeDef>((CAMEL_IDL.types ?? []).map((t) => [t.name, t]));

export function normalizeIdlValue(value: unknown, type: IdlType): unknown {
  if (typeof type === "string") {
    switch (type) {
      case "u64":
      case "u128":
      case "i128":
        return BigInt((value as BN).toString());
      case "i64":
        return (value as BN).toNumber();
      default:
        return value;
    }
  }
  if ("option" in type) return value === null || value === undefined ? null : normalizeIdlValue(value, type.option);
  if ("coption" in type) return value === null || value === undefined ? null : normalizeIdlValue(value, type.coption);
  if ("vec" in type) return (value as unknown[]).map((v) => normalizeIdlValue(v, type.vec));
  if ("array" in type) {
    const [inner] = type.array;
    if (inner === "u8") return Uint8Array.from(value as number[]);
    return (value as unknown[]).map((v) => normalizeIdlValue(v, inner));
  }
  if ("defined" in type) {
    const def = TYPES.get(type.defined.name);
    if (def === undefined) return value;
    if (def.type.kind === "struct") {
      const fields = def.type.fields ?? [];
      const input = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const f of fields) {
        if (typeof f === "object" && f !== null && "name" in f) out[f.name] = normalizeIdlValue(input[f.name], f.type);
      }
      return out;
    }
    if (def.type.kind === "enum") {
      const variant = Object.keys(value as object)[0]!;
      const spec = def.type.variants.find((v) => v.name === variant);
      return spec && spec.fields && spec.fields.length > 0 ? value : variant;
    }
  }
  return value;
}
