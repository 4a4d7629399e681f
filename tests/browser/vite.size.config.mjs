// Builds src/size.ts (the whole client) minified, with web3.js external, and the `buffer`
// package too (web3.js depends on the same buffer@6, which npm dedupes; spl-token, which the
// client no longer uses, likewise): the bytes the client adds to a frontend's bundle.
// scripts/test-browser.sh prints its size.
import { resolve } from "node:path";
import { defineConfig } from "vite";

export default defineConfig({
  build: {
    outDir: "dist-size",
    emptyOutDir: true,
    rollupOptions: {
      input: { size: resolve(import.meta.dirname, "size.html") },
      external: [/^@solana\/web3\.js(\/|$)/, /^@solana\/spl-token(\/|$)/, /^buffer(\/|$)/],
    },
  },
});
