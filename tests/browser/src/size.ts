// Everything @ephemeral-vault/client exports, kept alive, for measuring what the client adds to a
// frontend's bundle on top of @solana/web3.js and @solana/spl-token (left external by
// vite.size.config.mjs, since a Solana frontend has them already).
import * as client from "@ephemeral-vault/client";

(globalThis as unknown as { vaultClient: typeof client }).vaultClient = client;
