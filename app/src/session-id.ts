import { SESSION_ID_LENGTH } from "./constants.js";
import { fromHex, toHex } from "./internal/bytes.js";

/** A session's id: 16 bytes, a UUID as the backend's `session_id` column stores it. */
export type SessionId = Uint8Array;

/** A fresh random session id (a version-4 UUID), from WebCrypto's random source. */
export function newSessionId(): SessionId {
  const id = globalThis.crypto.getRandomValues(new Uint8Array(SESSION_ID_LENGTH));
  id[6] = (id[6]! & 0x0f) | 0x40; // version 4
  id[8] = (id[8]! & 0x3f) | 0x80; // RFC 4122 variant
  return id;
}

/** Parses a UUID string ("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", dashes optional). */
export function sessionIdFromUuid(uuid: string): SessionId {
  const hex = uuid.replace(/-/g, "");
  if (hex.length !== 2 * SESSION_ID_LENGTH) throw new TypeError(`not a UUID: ${uuid}`);
  return fromHex(hex);
}

/** Formats a session id as a lowercase UUID string. */
export function sessionIdToUuid(id: SessionId): string {
  const hex = toHex(asSessionId(id));
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Accepts 16 bytes, a byte array or a UUID string; returns a fresh 16-byte copy. */
export function asSessionId(id: SessionId | ArrayLike<number> | string): SessionId {
  const bytes = typeof id === "string" ? sessionIdFromUuid(id) : Uint8Array.from(id);
  if (bytes.length !== SESSION_ID_LENGTH) {
    throw new TypeError(`a session id is ${SESSION_ID_LENGTH} bytes (got ${bytes.length})`);
  }
  return bytes;
}
