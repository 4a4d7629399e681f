// web3.js 1.x types instruction data as the `buffer` package's Buffer (and its serialisers call
// Buffer methods on it). The one place this package makes one: imported from `buffer`
// explicitly, never the global, so bundlers need no polyfill.
import { Buffer } from "buffer";

/** A `buffer` Buffer viewing the same bytes (no copy). */
export function toWeb3Buffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
