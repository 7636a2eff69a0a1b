/**
 * Bundle the CLI, the worker and the functions with esbuild into dist/.
 * Native modules (onnxruntime-node, better-sqlite3, sharp) and the FDK stay external:
 * they ship in node_modules next to the bundle. The OCI SDK is external to the CLI and
 * worker but bundled into the functions: a function's cold start is dominated by
 * loading it, and one file loads in about half the time of its hundreds of modules
 * (scripts/cold-start.ts: ~130 ms → ~70 ms for the five clients on Node 20).
 *
 * - dist/functions.cjs: every function in ONE file (the image's entrypoint;
 *   BATCH_INFER_FUNCTION picks the handler). CommonJS on purpose: esbuild keeps
 *   a lazily imported module's `require("oci-…")` inside it, so the SDK loads
 *   on the first call that needs it, not at start (an ESM bundle would hoist
 *   every external import to the top and load the whole SDK at cold start); bundled,
 *   the SDK's modules still initialize only when first required.
 * - dist/cli.js, dist/worker.js: ESM (the worker awaits at top level), with the
 *   backends, and the packages few jobs use (Parquet, the tokenizer), split into
 *   chunks loaded on demand.
 *
 *   tsx scripts/build.ts [--outdir DIR] [--metafile]
 *
 * --outdir: build there instead of dist/; --metafile: also write esbuild's metafiles
 * (meta-functions.json, meta-esm.json) there: what each output holds and imports
 * (test/lazy-deps.test.ts reads them).
 */
import { readdir, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { build, type Plugin } from "esbuild";
import { precompiledValidatorsSource } from "./build/validators.ts";

const native = ["onnxruntime-node", "better-sqlite3", "sharp", "@fnproject/fdk"];
const external = [...native, "oci-*"];
const { values: args } = parseArgs({
  options: { outdir: { type: "string", default: "dist" }, metafile: { type: "boolean" } },
});
const outdir = args.outdir;
const metafile = args.metafile === true;
const started = Date.now();
// Chunk names carry a content hash: without this, every build would leave the last one's behind.
await rm(path.join(outdir, "chunks"), { recursive: true, force: true });
// Every schema compiled now, not at each start (see src/core/precompiled-validators.ts).
const validators = await precompiledValidatorsSource(process.cwd());
const precompiled: Plugin = {
  name: "precompiled-validators",
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]core[\\/]precompiled-validators\.ts$/ }, () => ({
      contents: validators.source,
      loader: "js",
      // The standalone code requires Ajv's runtime helpers (bundled from node_modules).
      resolveDir: process.cwd(),
    }));
  },
};
const [functionsBuild, esmBuild] = await Promise.all([
  build({
    entryPoints: { functions: "functions/fn-entry.ts" },
    outdir,
    metafile,
    outExtension: { ".js": ".cjs" },
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    sourcemap: true,
    // Less to read and scan at every cold start; names stay (readable stack traces).
    minifyWhitespace: true,
    minifySyntax: true,
    external: native,
    // CommonJS has no import.meta: give modules that use it this file's URL.
    define: { "import.meta.url": "__bundle_url" },
    banner: { js: "const __bundle_url = require('node:url').pathToFileURL(__filename).href;" },
    logLevel: "warning",
    plugins: [precompiled],
  }),
  build({
    entryPoints: {
      cli: "src/cli/main.ts",
      worker: "src/runner/worker-main.ts",
      // The Parquet decode thread's entry (src/sources/parquet/decode-thread.ts finds it).
      "parquet-decode": "src/sources/parquet/decode-worker.ts",
      // The input hash thread's entry (src/adapters/local/file-hash-thread.ts finds it).
      "file-hash": "src/adapters/local/file-hash-worker.ts",
    },
    outdir,
    metafile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    // Backends load on demand (dynamic import): splitting puts each in its own
    // chunk, so the embedded default never loads the oci-sdk and vice versa.
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    sourcemap: true,
    external,
    // ESM bundles still meet CommonJS dependencies (ajv): give them a require.
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
    logLevel: "warning",
    plugins: [precompiled],
  }),
]);
if (metafile) {
  await writeFile(
    path.join(outdir, "meta-functions.json"),
    JSON.stringify(functionsBuild.metafile),
  );
  await writeFile(path.join(outdir, "meta-esm.json"), JSON.stringify(esmBuild.metafile));
}
for (const name of ["functions.cjs", "cli.js", "worker.js"]) {
  const { size } = await stat(path.join(outdir, name));
  console.log(`${outdir}/${name}  ${(size / 1024).toFixed(0)} KiB`);
}
const chunks = await readdir(path.join(outdir, "chunks")).catch(() => []);
console.log(
  `${outdir}/chunks/  ${chunks.filter((c) => c.endsWith(".js")).length} chunks (cli, worker)`,
);
console.log(`${validators.count} schema validators precompiled`);
console.log(`built in ${Date.now() - started} ms`);
