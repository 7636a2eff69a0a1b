/**
 * Writes ready-to-use model directories (model.onnx + descriptor.json):
 * the churn logistic regression trained on generated customers, and the two
 * benchmark models over the 32-column numeric dataset.
 *
 *   tsx scripts/train-model.ts --out models/churn [--rows 60000] [--seed 7]
 *   tsx scripts/train-model.ts --kind numeric|mlp --out models/bench [--seed 7]
 */

import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { describeError, InvalidArgumentError } from "../src/core/errors.ts";
import { buildLogisticModel, buildMlpModel } from "../src/model/build-models.ts";
import {
  CUSTOMER_FEATURES,
  customerRecords,
  type FeatureSpec,
  featureWidth,
  featurize,
  NUMERIC_FEATURES,
  NUMERIC_WIDTH,
  numericRecords,
} from "../src/model/datasets.ts";
import {
  auc,
  type LogisticModel,
  predictLogistic,
  trainLogistic,
} from "../src/model/train-logistic.ts";

// The fraction of generated rows kept out of training to measure AUC.
const HELD_OUT = 0.2;

interface Descriptor {
  name: string;
  version: string;
  onnx: string;
  input: { name: string };
  keyColumns: string[];
  features: FeatureSpec[];
  outputs: { name: string; column: string; index: number }[];
  label?: { from: string; threshold: number; column: string; labels: [string, string] };
  metrics?: { heldOutAuc: number; trainedRows: number; seed: number };
}

/** What a training run produced. */
export interface TrainResult {
  /** AUC on the held-out rows. */
  auc: number;
  descriptorPath: string;
  modelPath: string;
  trainedRows: number;
  heldOutRows: number;
}

async function writeModelDir(
  outDir: string,
  onnx: Uint8Array,
  descriptor: Descriptor,
): Promise<{ descriptorPath: string; modelPath: string }> {
  await mkdir(outDir, { recursive: true });
  const modelPath = join(outDir, descriptor.onnx);
  const descriptorPath = join(outDir, "descriptor.json");
  await writeFile(modelPath, onnx);
  await writeFile(descriptorPath, `${JSON.stringify(descriptor, null, 2)}\n`);
  return { descriptorPath, modelPath };
}

function checkCount(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got ${value}`);
  }
}

/** Splits rows, trains on the first part, and scores the held-out tail. */
function fitAndEvaluate(
  x: Float64Array,
  labels: Uint8Array,
  width: number,
): { model: LogisticModel; auc: number; trainedRows: number; heldOutRows: number } {
  const rows = labels.length;
  const heldOutRows = Math.max(1, Math.round(rows * HELD_OUT));
  const trainedRows = rows - heldOutRows;
  // Rows are i.i.d. draws, so a tail split is as good as a shuffled one.
  const model = trainLogistic(
    x.subarray(0, trainedRows * width),
    labels.subarray(0, trainedRows),
    width,
  );
  const scores = predictLogistic(model, x.subarray(trainedRows * width), width);
  return { model, auc: auc(scores, labels.subarray(trainedRows)), trainedRows, heldOutRows };
}

const round4 = (x: number): number => Math.round(x * 1e4) / 1e4;

/**
 * Trains the churn logistic regression on `rows` generated customers (seeded),
 * imputing missing numbers with their training means, and writes
 * `<outDir>/model.onnx` and `<outDir>/descriptor.json`.
 */
export async function trainChurnModel(options: {
  outDir: string;
  rows?: number;
  seed?: number;
}): Promise<TrainResult> {
  const rows = options.rows ?? 60_000;
  const seed = options.seed ?? 7;
  checkCount("rows", rows, 100);
  const width = featureWidth(CUSTOMER_FEATURES);
  // Featurize with NaN for missing numbers, then fill them with the training means:
  // the descriptor's `missing` values must be exactly what training imputed.
  const raw: FeatureSpec[] = CUSTOMER_FEATURES.map((f) =>
    f.type === "number" ? { ...f, missing: Number.NaN } : f,
  );
  const x = new Float64Array(rows * width);
  const labels = new Uint8Array(rows);
  let r = 0;
  for (const record of customerRecords(seed, rows)) {
    featurize(raw, record, x, r * width);
    labels[r++] = record.churned;
  }
  const trainedRows = rows - Math.max(1, Math.round(rows * HELD_OUT));
  const features: FeatureSpec[] = [];
  let slot = 0;
  for (const f of CUSTOMER_FEATURES) {
    if (f.type !== "number") {
      features.push(f.type === "category" ? { ...f, categories: [...f.categories] } : { ...f });
      slot += f.type === "category" ? f.categories.length : 1;
      continue;
    }
    let sum = 0;
    let count = 0;
    for (let i = 0; i < trainedRows; i++) {
      const v = x[i * width + slot] ?? Number.NaN;
      if (!Number.isNaN(v)) {
        sum += v;
        count++;
      }
    }
    const missing = round4(count > 0 ? sum / count : f.missing);
    for (let i = 0; i < rows; i++)
      if (Number.isNaN(x[i * width + slot])) x[i * width + slot] = missing;
    features.push({ column: f.column, type: "number", missing });
    slot++;
  }

  const fit = fitAndEvaluate(x, labels, width);
  const heldOutAuc = round4(fit.auc);
  const onnx = buildLogisticModel({
    ...fit.model,
    name: "churn-logreg",
    metadata: {
      name: "churn-logreg",
      version: "1",
      heldOutAuc: String(heldOutAuc),
      seed: String(seed),
    },
  });
  const paths = await writeModelDir(options.outDir, onnx, {
    name: "churn-logreg",
    version: "1",
    onnx: "model.onnx",
    input: { name: "features" },
    keyColumns: ["customer_id"],
    features,
    outputs: [{ name: "probability", column: "churn_probability", index: 0 }],
    label: {
      from: "churn_probability",
      threshold: 0.5,
      column: "churn_label",
      labels: ["stay", "churn"],
    },
    metrics: { heldOutAuc, trainedRows: fit.trainedRows, seed },
  });
  return { auc: fit.auc, ...paths, trainedRows: fit.trainedRows, heldOutRows: fit.heldOutRows };
}

/**
 * Trains a logistic regression over f0..f31 of the numeric dataset (labels from its
 * hidden rule) and writes a benchmark model directory; output column "score".
 */
export async function writeNumericLogisticModel(options: {
  outDir: string;
  seed?: number;
  rows?: number;
}): Promise<TrainResult> {
  const rows = options.rows ?? 50_000;
  const seed = options.seed ?? 7;
  checkCount("rows", rows, 100);
  const x = new Float64Array(rows * NUMERIC_WIDTH);
  const labels = new Uint8Array(rows);
  let r = 0;
  for (const record of numericRecords(seed, rows)) {
    x.set(record.values, r * NUMERIC_WIDTH);
    labels[r++] = record.label;
  }
  const fit = fitAndEvaluate(x, labels, NUMERIC_WIDTH);
  const heldOutAuc = round4(fit.auc);
  const onnx = buildLogisticModel({
    ...fit.model,
    name: "numeric-logreg",
    metadata: {
      name: "numeric-logreg",
      version: "1",
      heldOutAuc: String(heldOutAuc),
      seed: String(seed),
    },
  });
  const paths = await writeModelDir(options.outDir, onnx, {
    name: "numeric-logreg",
    version: "1",
    onnx: "model.onnx",
    input: { name: "features" },
    keyColumns: ["id"],
    features: NUMERIC_FEATURES.map((f) => ({ ...f })),
    outputs: [{ name: "probability", column: "score", index: 0 }],
    metrics: { heldOutAuc, trainedRows: fit.trainedRows, seed },
  });
  return { auc: fit.auc, ...paths, trainedRows: fit.trainedRows, heldOutRows: fit.heldOutRows };
}

/**
 * Writes the compute-bound benchmark model (untrained 32-256-256-1 MLP, weights
 * from `seed`) over f0..f31; output column "score". Its descriptor has no metrics.
 */
export async function writeMlpModel(options: {
  outDir: string;
  seed?: number;
  /** Hidden layer widths (default [256, 256]). */
  hidden?: number[];
}): Promise<{ descriptorPath: string; modelPath: string }> {
  const seed = options.seed ?? 7;
  const onnx = buildMlpModel({ inputs: NUMERIC_WIDTH, hidden: options.hidden ?? [256, 256], seed });
  return writeModelDir(options.outDir, onnx, {
    name: "bench-mlp",
    version: "1",
    onnx: "model.onnx",
    input: { name: "features" },
    keyColumns: ["id"],
    features: NUMERIC_FEATURES.map((f) => ({ ...f })),
    outputs: [{ name: "probability", column: "score", index: 0 }],
  });
}

function intFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`--${name} must be an integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

// parseArgs throws TypeErrors coded ERR_PARSE_ARGS_*; those are usage errors too.
function isUsageError(err: unknown): boolean {
  if (err instanceof InvalidArgumentError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS");
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: "string" },
      rows: { type: "string" },
      seed: { type: "string" },
      kind: { type: "string", default: "churn" },
    },
    strict: true,
  });
  if (values.out === undefined) throw new InvalidArgumentError("--out DIR is required");
  const outDir = values.out;
  const rows = intFlag("rows", values.rows);
  const seed = intFlag("seed", values.seed);
  if (values.kind === "churn") {
    const res = await trainChurnModel({ outDir, rows, seed });
    console.log(
      `trained churn-logreg: held-out AUC ${res.auc.toFixed(4)} (${res.heldOutRows} rows) → ${res.descriptorPath}`,
    );
  } else if (values.kind === "numeric") {
    const res = await writeNumericLogisticModel({ outDir, rows, seed });
    console.log(
      `trained numeric-logreg: held-out AUC ${res.auc.toFixed(4)} (${res.heldOutRows} rows) → ${res.descriptorPath}`,
    );
  } else if (values.kind === "mlp") {
    const res = await writeMlpModel({ outDir, seed });
    console.log(`wrote bench-mlp → ${res.descriptorPath}`);
  } else {
    throw new InvalidArgumentError(`--kind must be churn, numeric or mlp, got ${values.kind}`);
  }
}

if (
  process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(resolve(process.argv[1])).href
) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(describeError(err));
    process.exitCode = isUsageError(err) ? 2 : 1;
  });
}
