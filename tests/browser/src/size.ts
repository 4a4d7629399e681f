// Everything @ephemeral-vault/client exports, kept alive, for measuring what the client adds to a
// frontend's bundle on top of @solana/web3.js (left external by vite.size.config.mjs, since a
// Solana frontend has it already).
import * as client from "@ephemeral-vault/client";

(globalThis as unknown as { vaultClient: typeof client }).vaultClient = client;
