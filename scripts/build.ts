/**
 * Bundle the CLI, the worker and the function handlers with esbuild into dist/.
 * Native modules (onnxruntime-node, better-sqlite3) and the OCI SDK stay
 * external: they ship in node_modules next to the bundle.
 */
import { stat } from "node:fs/promises";
import { build } from "esbuild";

const entries: Record<string, string> = {
  cli: "src/cli/main.ts",
  worker: "src/runner/worker-main.ts",
  functions: "functions/fn-entry.ts",
};

const started = Date.now();
await build({
  entryPoints: entries,
  outdir: "dist",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  // Backends load on demand (dynamic import): splitting puts each in its own
  // chunk, so the embedded default never loads the oci-sdk and vice versa.
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  sourcemap: true,
  external: ["onnxruntime-node", "better-sqlite3", "@fnproject/fdk", "oci-*"],
  // ESM bundles still meet CommonJS dependencies (ajv): give them a require.
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  logLevel: "warning",
});
for (const name of Object.keys(entries)) {
  const { size } = await stat(`dist/${name}.js`);
  console.log(`dist/${name}.js  ${(size / 1024).toFixed(0)} KiB`);
}
console.log(`built in ${Date.now() - started} ms`);
