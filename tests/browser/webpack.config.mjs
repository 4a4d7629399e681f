// The same page bundled by webpack 5 with its defaults for the web: no resolve.fallback, no
// ProvidePlugin for Buffer or process. Its input is src/main.ts compiled by tsc into build-js/
// (scripts/test-browser.sh does both).
import { resolve } from "node:path";

export default {
  mode: "production",
  target: "web",
  entry: resolve(import.meta.dirname, "build-js/main.js"),
  output: { path: resolve(import.meta.dirname, "dist-webpack"), filename: "main.js", clean: true },
  performance: { hints: false },
};
