/**
 * The bundles validate with Ajv code generated at build time (scripts/build/validators.ts):
 * it must cover every declared schema and decide exactly as a run-time compile does.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { Ajv, type ValidateFunction } from "ajv";
import { precompiledValidatorsSource, VALIDATOR_MODULES } from "../scripts/build/validators.ts";
import { AJV_OPTIONS, declaredSchemas, schemaKey } from "../src/core/schema.ts";

const ROOT = path.resolve(import.meta.dirname, "..");

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(full)));
    else if (e.name.endsWith(".ts")) out.push(full);
  }
  return out;
}

// Values that pass, fail at different places, and get defaults filled.
const SAMPLES: unknown[] = [
  null,
  {},
  [],
  "text",
  { bogus: 1 },
  {
    input: { bucket: "in", object: "a.csv" },
    output: { bucket: "out" },
    model: { descriptor: "/m/d.json" },
  },
  {
    input: { bucket: "in", object: "a.csv" },
    output: { bucket: "out", format: "xml" },
    model: { descriptor: "/m/d.json" },
  },
  {
    name: "m",
    version: "1",
    onnx: "model.onnx",
    input: { name: "x" },
    keyColumns: ["id"],
    features: [{ column: "f0", type: "number" }],
    outputs: [{ name: "y", column: "score" }],
  },
  { jobId: "job-1" },
  { jobId: 7 },
  { rerunFailed: "job-1" },
  { rerunFailed: "job-0123456789abcdef01234567" },
  { jobId: "job-0123456789abcdef01234567" },
  { refresh: true },
  { eventType: "com.oraclecloud.objectstorage.createobject", data: { resourceName: "a.csv" } },
];

describe("precompiled validators", () => {
  let dir: string;
  let precompiled: Map<string, ValidateFunction>;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "validators-"));
    const { source, count } = await precompiledValidatorsSource(ROOT);
    assert.ok(count >= VALIDATOR_MODULES.length, `only ${count} validators generated`);
    // The generated code requires Ajv's runtime helpers, as it does in the bundle.
    const file = path.join(dir, "validators.mjs");
    await writeFile(
      file,
      `import { createRequire } from "node:module";\nconst require = createRequire(${JSON.stringify(path.join(ROOT, "package.json"))});\n${source}`,
    );
    precompiled = (await import(pathToFileURL(file).href)).PRECOMPILED;
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("lists every module that declares a validator", async () => {
    const declaring: string[] = [];
    for (const file of await sourceFiles(path.join(ROOT, "src"))) {
      if (file.endsWith(path.join("core", "schema.ts"))) continue;
      if (/\bcompileValidator</.test(await readFile(file, "utf8"))) {
        declaring.push(path.relative(ROOT, file).split(path.sep).join("/"));
      }
    }
    assert.deepEqual(declaring.sort(), [...VALIDATOR_MODULES].sort());
  });

  it("covers every declared schema and decides as a run-time compile does", () => {
    assert.ok(declaredSchemas.length >= VALIDATOR_MODULES.length);
    const ajv = new Ajv(AJV_OPTIONS);
    let passed = 0;
    for (const schema of declaredSchemas) {
      const pre = precompiled.get(schemaKey(schema));
      assert.ok(pre, `no precompiled validator for ${String(schema.$id ?? schema.title)}`);
      const live = ajv.compile(schema);
      for (const sample of SAMPLES) {
        const a = structuredClone(sample);
        const b = structuredClone(sample);
        const what = `${String(schema.$id ?? schema.title)} on ${JSON.stringify(sample)}`;
        const ok: boolean = pre(a);
        assert.equal(ok, live(b), what);
        if (ok) passed++;
        // Same first error (the one users see) and the same defaults filled in.
        const first = (v: ValidateFunction) =>
          v.errors?.[0] && {
            keyword: v.errors[0].keyword,
            schemaPath: v.errors[0].schemaPath,
            instancePath: v.errors[0].instancePath,
            params: v.errors[0].params,
          };
        assert.deepEqual(first(pre), first(live), what);
        assert.deepEqual(a, b, what);
      }
    }
    // Some samples pass (the job spec's gets its defaults filled), so passing is compared too.
    assert.ok(passed >= 3, `only ${passed} samples passed any schema`);
  });
});
