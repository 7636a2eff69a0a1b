/**
 * `init-model`: a descriptor drafted from an ONNX file and a sample. The model
 * is shaped as skl2onnx exports a LogisticRegression with zipmap=False (float
 * input [None, n], int64 label [None], float probabilities [None, 2]), built
 * with the project's ONNX writer; the drafted descriptor must score P(class 1).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type BinaryLogistic, sklearnLogisticOnnx } from "../scripts/example-model.ts";
import { guessKeyColumn, profileColumns } from "../src/cli/column-profile.ts";
import { buildSkeleton, type ModelSignature } from "../src/cli/descriptor-skeleton.ts";
import { readModelSignature } from "../src/cli/init-model.ts";
import { loadModel } from "../src/model/descriptor.ts";
import { tempDir } from "./helpers/pipeline-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
before(async () => {
  root = await tempDir();
});
after(() => root.cleanup());

// income, age, owns_home, purpose one-hot (car, education, home): 6 values.
const MODEL: BinaryLogistic = { weights: [0.00003, -0.04, 0.9, 0.6, -0.3, 0.2], bias: -0.5 };
const PURPOSES = ["home", "car", "education"];

/** A loans CSV: id, numbers (age sometimes empty), a yes/no, a category, free text, the label. */
function loansCsv(rows: number): string {
  let csv = "loan_id,income,age,owns_home,purpose,notes,defaulted\n";
  for (let i = 0; i < rows; i++) {
    const age = i % 23 === 0 ? "" : String(20 + ((i * 7) % 50));
    csv += `L${String(i).padStart(6, "0")},${25000 + ((i * 7919) % 90000)},${age},${i % 3 ? "yes" : "no"},${PURPOSES[i % 3]},"note ${i}, free text",${i % 5 === 0 ? 1 : 0}\n`;
  }
  return csv;
}

/** P(class 1) by hand, in float64, from a CSV row (the one-hot order is sorted). */
function expected(row: string[]): number {
  const [, income, age, owns, purpose] = row;
  const x = [
    Number(income),
    Number(age),
    owns === "yes" ? 1 : 0,
    ...["car", "education", "home"].map((c) => (c === purpose ? 1 : 0)),
  ];
  const z = x.reduce((s, v, i) => s + v * (MODEL.weights[i] ?? 0), MODEL.bias);
  return 1 / (1 + Math.exp(-z));
}

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    encoding: "utf8",
    env: { ...process.env, FORCE_COLOR: "0", npm_lifecycle_event: "" },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const sig = (inputs: ModelSignature["inputs"], outputs: ModelSignature["outputs"]) => ({
  inputs,
  outputs,
});
const floatIn = (n: number | string) => [
  { name: "x", isTensor: true, type: "float32", shape: ["", n] },
];

describe("descriptor skeleton", () => {
  const header = ["customer_id", "age", "vip", "plan", "comment"];
  const rows = Array.from({ length: 40 }, (_, i) => [
    `C${i}`,
    String(20 + i),
    i % 2 ? "true" : "false",
    ["gold", "basic"][i % 2] as string,
    `text ${i}`,
  ]);
  const profiles = profileColumns(header, rows);

  it("profiles columns: numbers, booleans, categories, text; an id-like unique column is the key", () => {
    assert.deepEqual(
      profiles.map((p) => p.kind),
      ["text", "number", "boolean", "category", "text"],
    );
    assert.equal(guessKeyColumn(profiles), "customer_id");
  });

  it("maps outputs by shape: [N,2] → index 1 with a label, [N,1] → index 0, [N,k] → k columns", () => {
    const two = buildSkeleton(
      sig(floatIn(4), [
        { name: "label", isTensor: true, type: "int64", shape: [""] },
        { name: "probabilities", isTensor: true, type: "float32", shape: ["", 2] },
      ]),
      profiles,
      { name: "m", onnx: "m.onnx" },
    );
    assert.deepEqual(
      two.descriptor.outputs.map(({ $comment: _c, ...o }) => o),
      [{ name: "probabilities", column: "class_1_probability", index: 1 }],
    );
    assert.match(two.descriptor.outputs[0]?.$comment ?? "", /P\(class 1\)/);
    assert.equal(two.descriptor.label?.from, "class_1_probability");
    assert.ok(two.notes.some((n) => /output label \(int64 \[N\]\) left out/.test(n)));
    assert.deepEqual(two.descriptor.features, [
      { column: "age", type: "number" },
      { column: "vip", type: "boolean" },
      { column: "plan", type: "category", categories: ["basic", "gold"] },
    ]);
    assert.equal(two.width, 4);

    const one = buildSkeleton(
      sig(floatIn(4), [{ name: "output", isTensor: true, type: "float32", shape: ["batch", 1] }]),
      profiles,
      { name: "m", onnx: "m.onnx" },
    );
    assert.deepEqual(one.descriptor.outputs, [{ name: "output", column: "output", index: 0 }]);
    assert.equal(one.descriptor.label, undefined);

    const three = buildSkeleton(
      sig(floatIn(4), [{ name: "probs", isTensor: true, type: "float32", shape: [-1, 3] }]),
      profiles,
      { name: "m", onnx: "m.onnx" },
    );
    assert.deepEqual(
      three.descriptor.outputs.map((o) => [o.column, o.index]),
      [
        ["probs_0", 0],
        ["probs_1", 1],
        ["probs_2", 2],
      ],
    );
  });

  it("refuses what the pipeline can't feed, and says how to export instead", () => {
    const out = [{ name: "y", isTensor: true, type: "float32", shape: ["", 1] }];
    assert.throws(
      () =>
        buildSkeleton(
          sig(
            [
              { name: "a", isTensor: true, type: "float32", shape: ["", 2] },
              { name: "b", isTensor: true, type: "float32", shape: ["", 2] },
            ],
            out,
          ),
          profiles,
          { name: "m", onnx: "m.onnx" },
        ),
      /the model has 2 inputs .*one float32 \[batch, features\] tensor/,
    );
    assert.throws(
      () =>
        buildSkeleton(
          sig([{ name: "ids", isTensor: true, type: "int64", shape: ["", 4] }], out),
          profiles,
          { name: "m", onnx: "m.onnx" },
        ),
      /input ids is int64 \[N, 4\]; the pipeline feeds a float32/,
    );
    assert.throws(
      () =>
        buildSkeleton(
          sig(floatIn(4), [
            { name: "label", isTensor: true, type: "int64", shape: [""] },
            { name: "output_probability", isTensor: false },
          ]),
          profiles,
          { name: "m", onnx: "m.onnx" },
        ),
      /no output of the model is a float32.*ZipMap.*zipmap/,
    );
  });

  it("a width that doesn't match says so; --features picks the columns and their order", () => {
    const model = sig(floatIn(3), [{ name: "p", isTensor: true, type: "float32", shape: ["", 2] }]);
    const wide = buildSkeleton(model, profiles, { name: "m", onnx: "m.onnx" });
    assert.ok(
      wide.notes.some((n) =>
        /WIDTH MISMATCH: the model takes 3 values per row; these 3 features make 4/.test(n),
      ),
    );
    const picked = buildSkeleton(model, profiles, {
      name: "m",
      onnx: "m.onnx",
      features: ["vip", "plan"],
      keyColumns: ["customer_id"],
    });
    assert.deepEqual(
      picked.descriptor.features.map((f) => f.column),
      ["vip", "plan"],
    );
    assert.ok(!picked.notes.some((n) => /WIDTH MISMATCH/.test(n)));
    assert.throws(
      () => buildSkeleton(model, profiles, { name: "m", onnx: "m.onnx", features: ["comment"] }),
      /column comment can't be a feature/,
    );
    assert.throws(
      () => buildSkeleton(model, profiles, { name: "m", onnx: "m.onnx", features: ["nope"] }),
      /column "nope" is not in the sample/,
    );
  });
});

describe("init-model on a scikit-learn-shaped export", () => {
  it("reads the signature, drafts a descriptor that scores P(class 1), and run uses it", async () => {
    const onnx = path.join(root.dir, "model.onnx");
    await writeFile(onnx, sklearnLogisticOnnx(MODEL));
    const signature = await readModelSignature(onnx);
    assert.deepEqual(signature.inputs, [
      { name: "float_input", isTensor: true, type: "float32", shape: ["", 6] },
    ]);
    assert.deepEqual(
      signature.outputs.map((o) => [o.name, o.type, o.shape?.length]),
      [
        ["label", "int64", 1],
        ["probabilities", "float32", 2],
      ],
    );

    const sample = path.join(root.dir, "loans.csv");
    await writeFile(sample, loansCsv(400));
    const out = path.join(root.dir, "models", "loans", "descriptor.json");
    const r = cli(["init-model", "--onnx", onnx, "--sample", sample, "--out", out]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /key +loan_id/);
    assert.match(r.stdout, /column defaulted left out: it looks like the label/);
    assert.match(r.stdout, /column notes left out: text/);
    assert.match(r.stdout, /column age: number; 18 of 400 sample rows are empty: add "missing"/);
    assert.match(
      r.stdout,
      /checked with onnxruntime on 400 sample rows: 382 scored, 18 would be bad/,
    );

    const descriptor = JSON.parse(await readFile(out, "utf8"));
    assert.equal(descriptor.onnx, "../../model.onnx");
    assert.deepEqual(descriptor.input, { name: "float_input" });
    assert.deepEqual(descriptor.keyColumns, ["loan_id"]);
    assert.deepEqual(
      descriptor.features.map((f: { column: string; type: string }) => `${f.column}:${f.type}`),
      ["income:number", "age:number", "owns_home:boolean", "purpose:category"],
    );
    assert.equal(descriptor.outputs[0].index, 1);
    // The drafted descriptor loads, and its $comment notes are not part of the model's identity.
    const loaded = await loadModel(out);
    const bare = JSON.parse(
      JSON.stringify(descriptor, (k, v) => (k === "$comment" ? undefined : v)),
    );
    const barePath = path.join(root.dir, "models", "loans", "bare.json");
    await writeFile(barePath, JSON.stringify(bare));
    assert.equal(
      (await loadModel(barePath)).identity.descriptorSha256,
      loaded.identity.descriptorSha256,
    );

    // An existing --out is not overwritten without --force.
    const again = cli(["init-model", "--onnx", onnx, "--sample", sample, "--out", out]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /--out .*descriptor.json exists; pass --force/);

    // With missing ages imputed, run scores every row with P(class 1) of the model.
    descriptor.features[1].missing = 40;
    await writeFile(out, JSON.stringify(descriptor));
    const dataDir = path.join(root.dir, "state");
    const results = path.join(root.dir, "results");
    const run = cli([
      "run",
      "--input",
      sample,
      "--model",
      out,
      "--data-dir",
      dataDir,
      "--output",
      results,
    ]);
    assert.equal(run.code, 0, run.stderr);
    const predictions = (await readFile(path.join(results, "predictions.jsonl"), "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, string | number>);
    const input = loansCsv(400)
      .split("\n")
      .slice(1)
      .filter(Boolean)
      .map((l) => l.split(","));
    assert.equal(predictions.length, 400);
    predictions.forEach((p, i) => {
      const row = input[i] as string[];
      if (row[2] === "") row[2] = "40";
      assert.equal(p.loan_id, row[0]);
      const want = expected(row);
      assert.ok(Math.abs((p.defaulted_probability as number) - want) < 1e-5, `${p.loan_id}`);
      assert.equal(p.defaulted_label, want > 0.5 ? "1" : "0");
    });
    // Not every score is the same side of 0.5: the check means something.
    assert.equal(new Set(predictions.map((p) => p.defaulted_label)).size, 2);
  });
});
