import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as ort from "onnxruntime-node";
import {
  trainChurnModel,
  writeMlpModel,
  writeNumericLogisticModel,
} from "../scripts/train-model.ts";
import { InvalidArgumentError } from "../src/core/errors.ts";
import {
  buildLogisticModel,
  buildMlpModel,
  createMlpParameters,
} from "../src/model/build-models.ts";
import {
  CUSTOMER_COLUMNS,
  CUSTOMER_FEATURES,
  customerRecords,
  datasetChunks,
  type FeatureSpec,
  featureWidth,
  featurize,
  NUMERIC_COLUMNS,
  NUMERIC_WIDTH,
  numericRecords,
  Rng,
  writeDataset,
} from "../src/model/datasets.ts";
import { loadTabularModel } from "../src/model/descriptor.ts";
import { encodeOnnxModel } from "../src/model/onnx-writer.ts";
import { auc } from "../src/model/train-logistic.ts";
import { openTabularSession } from "../src/tasks/tabular/tabular-task.ts";

async function run1(
  session: ort.InferenceSession,
  input: string,
  data: Float32Array,
  dims: number[],
): Promise<ort.Tensor> {
  const result = await session.run({ [input]: new ort.Tensor("float32", data, dims) });
  const out = result[session.outputNames[0] ?? ""];
  assert.ok(out, "session produced no output");
  return out;
}

/** RFC 4180 line splitter, independent of the writer under test. */
function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      fields.push(field);
      field = "";
    } else field += ch;
  }
  fields.push(field);
  return fields;
}

function firstRowsText(
  kind: "customers" | "numeric",
  seed: number,
  format: "csv" | "jsonl",
  rows: number,
): string {
  return [...datasetChunks({ kind, seed, format, rows })].join("");
}

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

describe("encodeOnnxModel", () => {
  it("writes a graph with every attribute kind that onnxruntime loads and runs", async () => {
    const bytes = encodeOnnxModel({
      name: "attrs",
      inputs: [{ name: "x", dims: ["batch", 3] }],
      outputs: [{ name: "mean", dims: ["batch", 1] }],
      initializers: [
        { name: "w", dims: [2, 3], data: Float32Array.of(1, 0, 0, 0, 1, -1) },
        { name: "b", dims: [2], data: Float32Array.of(0.5, -0.5) },
      ],
      nodes: [
        {
          opType: "Constant",
          inputs: [],
          outputs: ["c"],
          attributes: { value_floats: { floats: [1, 2, 3] } },
        },
        { opType: "Add", inputs: ["x", "c"], outputs: ["shifted"] },
        {
          opType: "Gemm",
          inputs: ["shifted", "w", "b"],
          outputs: ["g"],
          attributes: { alpha: { f: 2 }, transB: { i: 1 } },
        },
        {
          opType: "ReduceMean",
          inputs: ["g"],
          outputs: ["mean"],
          attributes: { axes: { ints: [-1] }, keepdims: { i: 1 } },
        },
      ],
      metadata: { purpose: "test" },
    });
    const session = await ort.InferenceSession.create(bytes);
    assert.deepEqual(session.inputNames, ["x"]);
    assert.deepEqual(session.outputNames, ["mean"]);
    const out = await run1(session, "x", Float32Array.of(1, 2, 3, 0, 0, 0), [2, 3]);
    assert.deepEqual(out.dims, [2, 1]);
    // Row [1,2,3] + c = [2,4,6]; g = 2*[2, 4-6] + [0.5,-0.5] = [4.5, -4.5]; mean 0.
    // Row [0,0,0] + c = [1,2,3]; g = 2*[1, -1] + b = [2.5, -2.5]; mean 0.
    const values = Array.from(out.data as Float32Array);
    assert.deepEqual(values, [0, 0]);
  });

  it("writes string attributes that onnxruntime reads (a bad mode is rejected)", async () => {
    const model = (mode: string): Uint8Array =>
      encodeOnnxModel({
        name: "d2s",
        inputs: [{ name: "x", dims: [1, 4, 1, 1] }],
        outputs: [{ name: "y", dims: [1, 1, 2, 2] }],
        initializers: [],
        nodes: [
          {
            opType: "DepthToSpace",
            inputs: ["x"],
            outputs: ["y"],
            attributes: { blocksize: { i: 2 }, mode: { s: mode } },
          },
        ],
      });
    const session = await ort.InferenceSession.create(model("CRD"));
    const out = await run1(session, "x", Float32Array.of(1, 2, 3, 4), [1, 4, 1, 1]);
    assert.deepEqual(out.dims, [1, 1, 2, 2]);
    assert.deepEqual(Array.from(out.data as Float32Array), [1, 2, 3, 4]);
    // Severity 4 (fatal only) keeps the expected load error out of the test output.
    await assert.rejects(ort.InferenceSession.create(model("NOPE"), { logSeverityLevel: 4 }));
  });

  it("writes typed inputs, initializers and tensor attributes (int64 ids → embedding lookup, uint8 pixels)", async () => {
    const bytes = encodeOnnxModel({
      name: "typed",
      inputs: [
        { name: "ids", dims: ["batch", "seq"], type: "int64" },
        { name: "pixels", dims: ["batch", 2], type: "uint8" },
      ],
      outputs: [
        { name: "emb", dims: ["batch", "seq", 2] },
        { name: "scaled", dims: ["batch", 2], type: "float64" },
      ],
      initializers: [
        { name: "table", dims: [3, 2], data: Float32Array.of(0, 1, 10, 11, 20, 21) },
        { name: "offset", dims: [1], data: BigInt64Array.of(1n) },
      ],
      nodes: [
        { opType: "Add", inputs: ["ids", "offset"], outputs: ["shifted"] },
        { opType: "Gather", inputs: ["table", "shifted"], outputs: ["emb"] },
        { opType: "Cast", inputs: ["pixels"], outputs: ["p64"], attributes: { to: { i: 11 } } },
        {
          opType: "Constant",
          inputs: [],
          outputs: ["half"],
          attributes: { value: { t: { dims: [], data: Float64Array.of(0.5) } } },
        },
        { opType: "Mul", inputs: ["p64", "half"], outputs: ["scaled"] },
      ],
    });
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({
      ids: new ort.Tensor("int64", BigInt64Array.of(0n, 1n), [1, 2]),
      pixels: new ort.Tensor("uint8", Uint8Array.of(255, 4), [1, 2]),
    });
    assert.deepEqual(Array.from(out.emb?.data as Float32Array), [10, 11, 20, 21]);
    assert.deepEqual(Array.from(out.scaled?.data as Float64Array), [127.5, 2]);
  });

  it("rejects an initializer whose data doesn't fill its dims", () => {
    assert.throws(
      () =>
        encodeOnnxModel({
          name: "bad",
          inputs: [],
          outputs: [],
          nodes: [],
          initializers: [{ name: "t", dims: [2, 2], data: new Float32Array(3) }],
        }),
      InvalidArgumentError,
    );
  });
});

describe("buildLogisticModel", () => {
  it("matches sigmoid(((x - mean) * scale) · w + b) computed in JS", async () => {
    const rng = new Rng(42);
    const width = 7;
    const rows = 50;
    const f32 = (n: number, f: () => number): Float32Array => Float32Array.from({ length: n }, f);
    const mean = f32(width, () => rng.uniform(-5, 5));
    const scale = f32(width, () => rng.uniform(0.1, 2));
    const weights = f32(width, () => rng.normal());
    const bias = Math.fround(-0.3);
    const session = await ort.InferenceSession.create(
      buildLogisticModel({ mean, scale, weights, bias }),
    );
    assert.deepEqual(session.inputNames, ["features"]);
    assert.deepEqual(session.outputNames, ["probability"]);
    const x = f32(rows * width, () => rng.uniform(-8, 8));
    const out = await run1(session, "features", x, [rows, width]);
    assert.deepEqual(out.dims, [rows, 1]);
    const got = out.data as Float32Array;
    for (let r = 0; r < rows; r++) {
      let m = bias;
      for (let j = 0; j < width; j++) {
        m += ((x[r * width + j] ?? 0) - (mean[j] ?? 0)) * (scale[j] ?? 0) * (weights[j] ?? 0);
      }
      const expected = 1 / (1 + Math.exp(-m));
      assert.ok(
        Math.abs((got[r] ?? Number.NaN) - expected) < 1e-5,
        `row ${r}: ${got[r]} vs ${expected}`,
      );
    }
  });

  it("honours custom input/output names", async () => {
    const one = Float32Array.of(1);
    const bytes = buildLogisticModel({
      mean: Float32Array.of(0),
      scale: one,
      weights: one,
      bias: 0,
      inputName: "x",
      outputName: "p",
    });
    const session = await ort.InferenceSession.create(bytes);
    assert.deepEqual([session.inputNames, session.outputNames], [["x"], ["p"]]);
  });
});

describe("buildMlpModel", () => {
  it("loads, gives [n,1] probabilities and matches a JS forward pass", async () => {
    const spec = { inputs: 32, hidden: [256, 256], seed: 3 };
    const session = await ort.InferenceSession.create(buildMlpModel(spec));
    assert.deepEqual([session.inputNames, session.outputNames], [["features"], ["probability"]]);
    const n = 64;
    const x = new Float32Array(n * NUMERIC_WIDTH);
    let r = 0;
    for (const rec of numericRecords(5, n)) x.set(rec.values, NUMERIC_WIDTH * r++);
    const out = await run1(session, "features", x, [n, NUMERIC_WIDTH]);
    assert.deepEqual(out.dims, [n, 1]);
    const got = out.data as Float32Array;
    for (const p of got) assert.ok(p > 0 && p < 1, `probability ${p} outside (0,1)`);
    assert.ok(new Set(got).size > n / 2, "outputs should vary across rows");

    const layers = createMlpParameters(spec);
    for (let row = 0; row < 5; row++) {
      let act = Array.from(x.subarray(row * NUMERIC_WIDTH, (row + 1) * NUMERIC_WIDTH));
      layers.forEach((layer, l) => {
        const next: number[] = [];
        for (let o = 0; o < layer.outputs; o++) {
          let s = layer.bias[o] ?? 0;
          for (let i = 0; i < layer.inputs; i++)
            s += (act[i] ?? 0) * (layer.weight[i * layer.outputs + o] ?? 0);
          next.push(l === layers.length - 1 ? 1 / (1 + Math.exp(-s)) : Math.max(0, s));
        }
        act = next;
      });
      const expected = act[0] ?? Number.NaN;
      assert.ok(
        Math.abs((got[row] ?? Number.NaN) - expected) < 1e-4,
        `row ${row}: ${got[row]} vs ${expected}`,
      );
    }
  });
});

describe("auc", () => {
  it("ranks, handles ties with average ranks, and rejects degenerate input", () => {
    assert.equal(auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
    assert.equal(auc([1, 2, 3], [0, 1, 1]), 1);
    assert.equal(auc([3, 2, 1], [0, 1, 1]), 0);
    assert.equal(auc([5, 5, 5, 5], [0, 1, 0, 1]), 0.5);
    // Pairs (pos,neg): (0.5,0.2)=1, (0.5,0.5)=0.5, (0.9,0.2)=1, (0.9,0.5)=1 → 3.5/4.
    assert.equal(auc(Float64Array.of(0.2, 0.5, 0.5, 0.9), Uint8Array.of(0, 0, 1, 1)), 0.875);
    assert.throws(() => auc([1, 2], [1, 1]), InvalidArgumentError);
    assert.throws(() => auc([1, 2], [1]), InvalidArgumentError);
  });
});

describe("datasets", () => {
  it("is deterministic per seed", () => {
    for (const kind of ["customers", "numeric"] as const) {
      const first = firstRowsText(kind, 11, "csv", 2000);
      const a = sha256(first);
      const b = sha256(firstRowsText(kind, 11, "csv", 2000));
      const c = sha256(firstRowsText(kind, 12, "csv", 2000));
      assert.equal(a, b, `${kind}: same seed, same bytes`);
      assert.notEqual(a, c, `${kind}: different seed, different bytes`);
      // A longer run starts with the same rows: row i never depends on the row count.
      assert.ok(firstRowsText(kind, 11, "csv", 2500).startsWith(first));
    }
  });

  it("writes customer CSV and JSONL that describe the same records", () => {
    const rows = 3000;
    const csv = firstRowsText("customers", 9, "csv", rows).split("\n");
    const jsonl = firstRowsText("customers", 9, "jsonl", rows).split("\n");
    assert.equal(csv.pop(), "");
    assert.equal(jsonl.pop(), "");
    assert.deepEqual(parseCsvLine(csv.shift() ?? ""), [...CUSTOMER_COLUMNS]);
    assert.equal(csv.length, rows);
    assert.equal(jsonl.length, rows);
    let quoted = 0;
    let missing = 0;
    let churned = 0;
    for (let r = 0; r < rows; r++) {
      const line = csv[r] ?? "";
      if (line.includes('"')) quoted++;
      const fields = parseCsvLine(line);
      const obj = JSON.parse(jsonl[r] ?? "") as Record<string, unknown>;
      assert.deepEqual(Object.keys(obj), [...CUSTOMER_COLUMNS]);
      CUSTOMER_COLUMNS.forEach((column, k) => {
        const v = obj[column];
        const expected = v === null ? "" : String(v);
        if (v === null) missing++;
        assert.equal(fields[k], expected, `row ${r} column ${column}`);
      });
      churned += obj.churned === 1 ? 1 : 0;
    }
    assert.ok(quoted > rows / 10, "some fields must need CSV quoting");
    assert.ok(missing > 0, "some numbers must be missing");
    const rate = churned / rows;
    assert.ok(rate > 0.15 && rate < 0.45, `churn rate ${rate}`);
  });

  it("writes numeric CSV and JSONL that describe the same records", () => {
    const csv = firstRowsText("numeric", 4, "csv", 500).trimEnd().split("\n");
    const jsonl = firstRowsText("numeric", 4, "jsonl", 500).trimEnd().split("\n");
    assert.equal(csv.shift(), NUMERIC_COLUMNS.join(","));
    assert.equal(csv.length, 500);
    let negatives = 0;
    for (let r = 0; r < 500; r++) {
      const obj = JSON.parse(jsonl[r] ?? "") as Record<string, unknown>;
      assert.deepEqual(Object.keys(obj), [...NUMERIC_COLUMNS]);
      assert.equal(csv[r], NUMERIC_COLUMNS.map((c) => String(obj[c])).join(","));
      for (let k = 0; k < NUMERIC_WIDTH; k++) if ((obj[`f${k}`] as number) < 0) negatives++;
    }
    assert.ok(negatives > 0);
  });

  it("streams a file identical to the in-memory chunks", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gen-data-"));
    try {
      const path = join(dir, "c.jsonl");
      const options = { kind: "customers", rows: 1234, seed: 2, format: "jsonl" } as const;
      const res = await writeDataset({ ...options, out: path });
      const text = await readFile(path, "utf8");
      assert.equal(text, firstRowsText("customers", 2, "jsonl", 1234));
      assert.equal(res.bytes, Buffer.byteLength(text));
      assert.equal(text.split("\n").length - 1, 1234);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("featurizes numbers, booleans and one-hot categories with imputation", () => {
    const features: FeatureSpec[] = [
      { column: "a", type: "number", missing: 2.5 },
      { column: "b", type: "boolean" },
      { column: "c", type: "category", categories: ["x", "y", "z"] },
    ];
    assert.equal(featureWidth(features), 5);
    const out = new Float32Array(10);
    featurize(features, { a: "", b: "true", c: "y" }, out, 0);
    featurize(features, { a: 4, b: false, c: "unknown" }, out, 5);
    assert.deepEqual(Array.from(out), [2.5, 1, 0, 1, 0, 4, 0, 0, 0, 0]);
    assert.throws(() => featurize(features, { a: "abc", b: true, c: "x" }, out), {
      code: "BAD_RECORD",
    });
    assert.equal(featureWidth(CUSTOMER_FEATURES), 49);
  });
});

describe("trained model directories", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "train-model-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("trains the churn model: descriptor as specified, AUC > 0.75 through onnxruntime", async () => {
    const outDir = join(dir, "churn");
    const res = await trainChurnModel({ outDir, rows: 20_000, seed: 7 });
    assert.ok(res.auc > 0.75, `held-out AUC ${res.auc}`);
    const descriptor = JSON.parse(await readFile(res.descriptorPath, "utf8"));
    assert.deepEqual(Object.keys(descriptor), [
      "name",
      "version",
      "onnx",
      "input",
      "keyColumns",
      "features",
      "outputs",
      "label",
      "metrics",
    ]);
    assert.equal(descriptor.name, "churn-logreg");
    assert.deepEqual(descriptor.input, { name: "features" });
    assert.deepEqual(descriptor.keyColumns, ["customer_id"]);
    assert.deepEqual(descriptor.outputs, [
      { name: "probability", column: "churn_probability", index: 0 },
    ]);
    assert.deepEqual(descriptor.label, {
      from: "churn_probability",
      threshold: 0.5,
      column: "churn_label",
      labels: ["stay", "churn"],
    });
    assert.deepEqual(descriptor.metrics, {
      heldOutAuc: Math.round(res.auc * 1e4) / 1e4,
      trainedRows: 16_000,
      seed: 7,
    });
    const features = descriptor.features as FeatureSpec[];
    assert.deepEqual(
      features.map((f) => [f.column, f.type]),
      CUSTOMER_FEATURES.map((f) => [f.column, f.type]),
    );
    const age = features.find((f) => f.column === "age");
    assert.ok(
      age?.type === "number" && age.missing > 40 && age.missing < 48,
      "age imputed with its mean",
    );

    // Score fresh rows the way the pipeline will: descriptor features → onnxruntime.
    const session = await ort.InferenceSession.create(join(outDir, descriptor.onnx));
    assert.deepEqual(session.inputNames, [descriptor.input.name]);
    const n = 4000;
    const width = featureWidth(features);
    const x = new Float32Array(n * width);
    const labels = new Uint8Array(n);
    let r = 0;
    for (const rec of customerRecords(99, n)) {
      featurize(features, rec, x, r * width);
      labels[r++] = rec.churned;
    }
    const out = await run1(session, "features", x, [n, width]);
    const fresh = auc(out.data as Float32Array, labels);
    assert.ok(fresh > 0.75, `fresh-data AUC ${fresh}`);
  });

  it("writes the numeric logistic and MLP benchmark models", async () => {
    const numeric = await writeNumericLogisticModel({
      outDir: join(dir, "numeric"),
      seed: 3,
      rows: 20_000,
    });
    assert.ok(numeric.auc > 0.8, `numeric AUC ${numeric.auc}`);
    const mlp = await writeMlpModel({ outDir: join(dir, "mlp"), seed: 3 });
    for (const path of [numeric.descriptorPath, mlp.descriptorPath]) {
      const descriptor = JSON.parse(await readFile(path, "utf8"));
      assert.deepEqual(descriptor.keyColumns, ["id"]);
      assert.deepEqual(descriptor.outputs, [{ name: "probability", column: "score", index: 0 }]);
      assert.equal(descriptor.label, undefined);
      assert.deepEqual(
        descriptor.features,
        Array.from({ length: 32 }, (_, k) => ({ column: `f${k}`, type: "number", missing: 0 })),
      );
      const session = await ort.InferenceSession.create(join(path, "..", descriptor.onnx));
      const out = await run1(session, "features", new Float32Array(3 * 32), [3, 32]);
      assert.deepEqual(out.dims, [3, 1]);
    }
  });
});

describe("scorer thread modes", () => {
  it("inline, thread and auto give identical scores", async () => {
    const dir = await mkdtemp(join(tmpdir(), "scorer-"));
    try {
      const { descriptorPath } = await writeMlpModel({ outDir: dir, seed: 3 });
      const model = await loadTabularModel(descriptorPath);
      const rows = 300;
      const x = Float32Array.from({ length: rows * model.width }, (_, i) => Math.sin(i));
      const results: Float32Array[] = [];
      for (const thread of [false, true, "auto"] as const) {
        const { session } = await openTabularSession(model, { thread });
        const result = await session.run({
          [model.descriptor.input.name]: {
            type: "float32",
            data: x.slice(),
            dims: [rows, model.width],
          },
        });
        await session.close();
        const out = result[model.descriptor.outputs[0]?.name ?? ""]?.data;
        assert.ok(out instanceof Float32Array);
        results.push(out);
      }
      assert.deepEqual(results[1], results[0]);
      assert.deepEqual(results[2], results[0]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
