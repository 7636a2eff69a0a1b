/**
 * The packages only some jobs need load when a job needs them, not at every start:
 * Ajv's schema compiler (the bundles validate with precompiled code), the Parquet
 * reader and writer, and the tokenizer. Checked on the build itself: scripts/build.ts
 * bundles into a temporary directory (~2 s) and writes esbuild's metafiles, and no
 * output that the CLI or a worker imports at start (statically, transitively) may
 * hold those packages; nor may the functions bundle's start evaluate them.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Metafile } from "esbuild";

const ROOT = path.resolve(import.meta.dirname, "..");

/** What must not load at start, by the path of its files in node_modules. */
const DEFERRED: Record<string, RegExp> = {
  // Everything of Ajv but the small runtime helpers the precompiled validators require.
  "ajv (compiler)": /node_modules\/ajv\/(?!dist\/runtime\/)/,
  hyparquet: /node_modules\/hyparquet\//,
  "hyparquet-writer": /node_modules\/hyparquet-writer\//,
  "hyparquet-compressors": /node_modules\/hyparquet-compressors\//,
  "@huggingface/tokenizers": /node_modules\/@huggingface\/tokenizers\//,
};

/** The entries started with every process of their kind (the Parquet decode thread is not). */
const ESM_ENTRIES = ["cli.js", "worker.js", "file-hash.js"];

type Import = { path: string; kind: string; external?: boolean };

/** Everything `entry` reaches over the imports `follow` takes, itself included. */
function reachable(
  importsOf: (file: string) => readonly Import[] | undefined,
  entry: string,
  follow: (imp: Import) => boolean,
): string[] {
  const seen = new Set<string>();
  const stack = [entry];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    if (seen.has(next)) continue;
    seen.add(next);
    for (const imp of importsOf(next) ?? []) {
      if (!imp.external && follow(imp)) stack.push(imp.path);
    }
  }
  return [...seen];
}

/** The outputs `entry` imports statically, itself included, transitively. */
function staticOutputs(meta: Metafile, entry: string): string[] {
  return reachable(
    (f) => meta.outputs[f]?.imports,
    entry,
    (i) => i.kind === "import-statement",
  );
}

/**
 * The input modules a one-file (CommonJS) bundle evaluates when it starts: those the
 * entry reaches by import statements and require calls; a dynamic import is evaluated
 * when it runs. (A require inside a function counts too: an over-estimate.)
 */
function startInputs(meta: Metafile, entry: string): string[] {
  return reachable(
    (f) => meta.inputs[f]?.imports,
    entry,
    (i) => i.kind !== "dynamic-import",
  );
}

function offenders(inputs: Iterable<string>): string[] {
  const found = new Set<string>();
  for (const input of inputs) {
    for (const [name, pattern] of Object.entries(DEFERRED)) {
      if (pattern.test(input)) found.add(name);
    }
  }
  return [...found].sort();
}

describe("packages few jobs need load on demand", () => {
  let dir: string;
  let esm: Metafile;
  let functions: Metafile;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "lazy-deps-"));
    const built = spawnSync(
      process.execPath,
      ["--import", "tsx", "scripts/build.ts", "--outdir", dir, "--metafile"],
      { cwd: ROOT, encoding: "utf8" },
    );
    assert.equal(built.status, 0, built.stderr);
    esm = JSON.parse(await readFile(path.join(dir, "meta-esm.json"), "utf8"));
    functions = JSON.parse(await readFile(path.join(dir, "meta-functions.json"), "utf8"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("the patterns name files the build really holds (in chunks loaded on demand)", () => {
    // Else a renamed path would make the checks below pass vacuously. Ajv's compiler is
    // the exception: it is in no bundle (src/core/schema.ts requires it from node_modules
    // for a schema the build did not precompile), only its runtime helpers are.
    const all = Object.values(esm.outputs).flatMap((o) => Object.keys(o.inputs));
    const bundled = Object.keys(DEFERRED).filter((n) => n !== "ajv (compiler)");
    assert.deepEqual(offenders(all), bundled.sort());
    assert.ok(
      all.some((i) => /node_modules\/ajv\/dist\/runtime\//.test(i)),
      "no Ajv runtime helper in the bundles: are the validators still precompiled?",
    );
  });

  for (const entry of ESM_ENTRIES) {
    it(`dist/${entry} loads none of them at start`, () => {
      const key = Object.keys(esm.outputs).find((o) => path.basename(o) === entry);
      assert.ok(key, `no output ${entry}`);
      const outputs = staticOutputs(esm, key);
      const inputs = outputs.flatMap((o) => Object.keys(esm.outputs[o]?.inputs ?? {}));
      assert.deepEqual(offenders(inputs), [], `imported at start by ${entry}: ${outputs}`);
    });
  }

  it("dist/functions.cjs evaluates none of them at cold start", () => {
    const inputs = startInputs(functions, "functions/fn-entry.ts");
    assert.ok(inputs.length > 10, `only ${inputs.length} inputs reached`);
    assert.deepEqual(offenders(inputs), []);
  });
});
