/**
 * The onnxruntime anchors: bare onnxruntime over pre-built tensors, and the
 * script a user writes by hand (a CSV parser + parseFloat + session.run per
 * batch + JSON lines out). Also reads a logistic model's coefficients back
 * from its outputs, for the pandas script to compute the same thing.
 */
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { parse as parseCsv } from "csv-parse";
import type { InferenceSession, Tensor } from "onnxruntime-node";
import { NUMERIC_WIDTH } from "../../src/model/datasets.ts";
import { type BenchModel, RUNS_DIR } from "./data.ts";

/** The onnxruntime-node module. */
export type Ort = typeof import("onnxruntime-node");

function outputData(res: InferenceSession.OnnxValueMapType, name: string): Float32Array {
  const t = res[name];
  if (!t) throw new Error(`model produced no output named ${name}`);
  return t.data as Float32Array;
}

/** A CPU session with the pipeline scorer's options; only the thread count differs. */
export function openSession(ort: Ort, modelPath: string, threads: number) {
  return ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
  });
}

/** Bare onnxruntime throughput. */
export interface BareResult {
  rowsPerSec: number;
  rows: number;
  seconds: number;
  threads: number;
}

/**
 * Bare onnxruntime: one session, `batch`-row tensors built beforehand from
 * `features`, run back to back (no parsing, no I/O) after a warm-up, for at
 * least `minMs` and `minRows` (and at most 30 s).
 */
export async function measureBare(
  ort: Ort,
  model: BenchModel,
  features: Float32Array,
  options: { threads: number; batch: number; minMs: number; minRows: number },
): Promise<BareResult> {
  const { batch } = options;
  const session = await openSession(ort, model.modelPath, options.threads);
  const batches = features.length / NUMERIC_WIDTH / batch;
  const tensors: Tensor[] = [];
  for (let b = 0; b < batches; b++) {
    const slice = features.subarray(b * batch * NUMERIC_WIDTH, (b + 1) * batch * NUMERIC_WIDTH);
    tensors.push(new ort.Tensor("float32", slice, [batch, NUMERIC_WIDTH]));
  }
  const input = session.inputNames[0] ?? "features";
  const output = session.outputNames[0] ?? "probability";
  let sink = 0;
  const runBatch = async (b: number) => {
    const res = await session.run({ [input]: tensors[b % tensors.length] as Tensor });
    // Touch the output as a consumer would, so nothing can be skipped.
    sink += outputData(res, output)[0] ?? 0;
  };
  for (let b = 0; b < 3; b++) await runBatch(b);
  let rows = 0;
  const t0 = performance.now();
  let b = 0;
  while (performance.now() - t0 < options.minMs || rows < options.minRows) {
    await runBatch(b++);
    rows += batch;
    if (performance.now() - t0 > 30_000) break;
  }
  const seconds = (performance.now() - t0) / 1000;
  await session.release();
  if (Number.isNaN(sink)) console.log("(bare onnxruntime produced NaN scores)");
  return { rowsPerSec: rows / seconds, rows, seconds, threads: options.threads };
}

/** A hand-written script's throughput. */
export interface HandResult {
  rows: number;
  seconds: number;
  rowsPerSec: number;
  method: string;
}

/**
 * What a user writes without us: one process, a CSV parser (csv-parse, or
 * readline + split(",")) + parseFloat into a Float32Array, session.run per
 * batch, JSON lines to a file; the first `maxRows` rows.
 */
export async function measureHandWritten(
  ort: Ort,
  model: BenchModel,
  inputFile: string,
  options: { maxRows: number; threads: number; batch: number; parser: "csv-parse" | "readline" },
): Promise<HandResult> {
  const { batch } = options;
  const session = await openSession(ort, model.modelPath, options.threads);
  const input = session.inputNames[0] ?? "features";
  const output = session.outputNames[0] ?? "probability";
  await mkdir(RUNS_DIR, { recursive: true });
  const outFile = path.join(RUNS_DIR, `hand-${model.name}-${process.pid}.jsonl`);
  const t0 = performance.now();
  const out = createWriteStream(outFile);
  let feats = new Float32Array(batch * NUMERIC_WIDTH);
  let ids: string[] = [];
  let rows = 0;
  const flush = async () => {
    const n = ids.length;
    const tensor = new ort.Tensor("float32", feats.subarray(0, n * NUMERIC_WIDTH), [
      n,
      NUMERIC_WIDTH,
    ]);
    const res = await session.run({ [input]: tensor });
    const scores = outputData(res, output);
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(JSON.stringify({ id: ids[i], score: scores[i] }));
    if (!out.write(`${lines.join("\n")}\n`)) await once(out, "drain");
    feats = new Float32Array(batch * NUMERIC_WIDTH);
    ids = [];
  };
  const source =
    options.parser === "csv-parse"
      ? (createReadStream(inputFile).pipe(
          parseCsv({ from_line: 2, skip_empty_lines: true }),
        ) as AsyncIterable<string[]>)
      : (async function* () {
          const rl = createInterface({
            input: createReadStream(inputFile),
            crlfDelay: Number.POSITIVE_INFINITY,
          });
          let header = true;
          for await (const line of rl) {
            if (header) {
              header = false;
              continue;
            }
            if (line !== "") yield line.split(",");
          }
        })();
  for await (const parts of source) {
    const base = ids.length * NUMERIC_WIDTH;
    ids.push(parts[0] ?? "");
    for (let k = 0; k < NUMERIC_WIDTH; k++) {
      feats[base + k] = Number.parseFloat(parts[k + 1] ?? "");
    }
    rows++;
    if (ids.length === batch) await flush();
    if (rows === options.maxRows) break;
  }
  if (ids.length > 0) await flush();
  out.end();
  await once(out, "finish");
  const seconds = (performance.now() - t0) / 1000;
  await session.release();
  await rm(outFile, { force: true });
  return {
    rows,
    seconds,
    rowsPerSec: rows / seconds,
    method:
      options.parser === "csv-parse"
        ? "csv-parse + parseFloat + session.run"
        : "readline + split(',') + parseFloat + session.run",
  };
}

/** p = sigmoid(x · weights + bias): what a logistic model computes, in raw feature space. */
export interface LogisticCoefficients {
  weights: number[];
  bias: number;
}

const logit = (p: number) => Math.log(p / (1 - p));

/**
 * A logistic model's coefficients read back through onnxruntime: its logit is
 * affine in the features, so the logit at a data row `base` and at `base` plus
 * each unit vector give the weights, and then the bias (exact up to float32
 * rounding; a real row keeps the probabilities away from 0 and 1). Keeps the
 * pandas script's arithmetic the same as the model's without parsing the ONNX file.
 */
export async function logisticCoefficients(
  ort: Ort,
  model: BenchModel,
  base: Float32Array,
): Promise<LogisticCoefficients> {
  const session = await openSession(ort, model.modelPath, 1);
  try {
    const n = NUMERIC_WIDTH + 1;
    const x = new Float32Array(n * NUMERIC_WIDTH);
    for (let r = 0; r < n; r++) x.set(base.subarray(0, NUMERIC_WIDTH), r * NUMERIC_WIDTH);
    for (let k = 0; k < NUMERIC_WIDTH; k++) {
      const i = (k + 1) * NUMERIC_WIDTH + k;
      x[i] = (x[i] as number) + 1;
    }
    const input = session.inputNames[0] ?? "features";
    const output = session.outputNames[0] ?? "probability";
    const res = await session.run({
      [input]: new ort.Tensor("float32", x, [n, NUMERIC_WIDTH]),
    });
    const p = outputData(res, output);
    const at = logit(p[0] as number);
    const weights = Array.from({ length: NUMERIC_WIDTH }, (_, k) => logit(p[k + 1] as number) - at);
    let bias = at;
    for (let k = 0; k < NUMERIC_WIDTH; k++) bias -= (weights[k] as number) * (base[k] as number);
    return { weights, bias };
  } finally {
    await session.release();
  }
}

/** Model scores of the first rows of `features` (to check another implementation against). */
export async function scoreRows(
  ort: Ort,
  model: BenchModel,
  features: Float32Array,
  rows: number,
): Promise<number[]> {
  const session = await openSession(ort, model.modelPath, 1);
  try {
    const input = session.inputNames[0] ?? "features";
    const output = session.outputNames[0] ?? "probability";
    const res = await session.run({
      [input]: new ort.Tensor("float32", features.slice(0, rows * NUMERIC_WIDTH), [
        rows,
        NUMERIC_WIDTH,
      ]),
    });
    return Array.from(outputData(res, output).subarray(0, rows));
  } finally {
    await session.release();
  }
}
