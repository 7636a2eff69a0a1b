/**
 * The bench's generated inputs and models, under .bench/ (gitignored) and
 * reused across runs: numeric CSVs (`id,f0..f31`) and the three models.
 */
import { createReadStream, existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { NUMERIC_WIDTH, writeDataset } from "../../src/model/datasets.ts";
import { writeMlpModel, writeNumericLogisticModel } from "../train-model.ts";
import { fmtInt, fmtMB, secs } from "./format.ts";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const BENCH_DIR = path.join(ROOT, ".bench");
export const DATA_DIR = path.join(BENCH_DIR, "bench-data");
export const MODELS_DIR = path.join(BENCH_DIR, "bench-models");
export const RUNS_DIR = path.join(BENCH_DIR, "bench-runs");

/**
 * Returns the path of a numeric CSV with `rows` rows for `seed`, generating it if no
 * complete copy exists. A sidecar records rows and bytes, and the file is written under a
 * temporary name first, so an interrupted generation is never mistaken for a finished one.
 */
export async function ensureDataset(rows: number, seed: number): Promise<string> {
  await mkdir(DATA_DIR, { recursive: true });
  const file = path.join(DATA_DIR, `numeric-${rows}-s${seed}.csv`);
  const meta = `${file}.meta.json`;
  if (existsSync(file) && existsSync(meta)) {
    const want = JSON.parse(await readFile(meta, "utf8")) as { rows: number; bytes: number };
    if (want.rows === rows && want.bytes === (await stat(file)).size) return file;
  }
  const t0 = performance.now();
  const tmp = `${file}.tmp-${process.pid}`;
  let bytes: number;
  try {
    ({ bytes } = await writeDataset({ kind: "numeric", rows, seed, format: "csv", out: tmp }));
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await writeFile(meta, JSON.stringify({ rows, bytes }));
  console.log(
    `generated ${fmtInt(rows)} rows (${fmtMB(bytes)}) in ${secs(performance.now() - t0)} → ${path.relative(ROOT, file)}`,
  );
  return file;
}

/** Remove a generated dataset and its sidecar. */
export async function removeDataset(file: string): Promise<void> {
  await rm(file, { force: true });
  await rm(`${file}.meta.json`, { force: true });
}

/** A model the bench scores with. */
export interface BenchModel {
  name: string;
  /** How the tables name it. */
  label: string;
  descriptorPath: string;
  modelPath: string;
}

/** The logistic model and the two MLPs, written once under .bench/bench-models/. */
export async function ensureModels(): Promise<
  Record<"logistic" | "mlp-256x2" | "mlp-1024x2", BenchModel>
> {
  const dir = (name: string) => path.join(MODELS_DIR, name);
  const files = (d: string) => ({
    descriptorPath: path.join(d, "descriptor.json"),
    modelPath: path.join(d, "model.onnx"),
  });
  const has = (d: string) =>
    existsSync(path.join(d, "descriptor.json")) && existsSync(path.join(d, "model.onnx"));
  const logistic = dir("logistic-s7");
  const mlp = dir("mlp-256x2-s7");
  const heavy = dir("mlp-1024x2-s7");
  if (!has(logistic)) await writeNumericLogisticModel({ outDir: logistic, seed: 7 });
  if (!has(mlp)) await writeMlpModel({ outDir: mlp, seed: 7 });
  if (!has(heavy)) await writeMlpModel({ outDir: heavy, seed: 7, hidden: [1024, 1024] });
  return {
    logistic: { name: "logistic", label: "logistic", ...files(logistic) },
    "mlp-256x2": { name: "mlp-256x2", label: "MLP 32→256→256→1", ...files(mlp) },
    "mlp-1024x2": { name: "mlp-1024x2", label: "MLP 32→1024→1024→1", ...files(heavy) },
  };
}

/** The first `rows` data rows of the CSV as row-major float32 features (ids dropped). */
export async function readFeatures(file: string, rows: number): Promise<Float32Array> {
  const out = new Float32Array(rows * NUMERIC_WIDTH);
  const rl = createInterface({
    input: createReadStream(file),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let r = -1; // -1: the header line
  for await (const line of rl) {
    if (r >= 0) {
      const parts = line.split(",");
      for (let k = 0; k < NUMERIC_WIDTH; k++) {
        out[r * NUMERIC_WIDTH + k] = Number.parseFloat(parts[k + 1] ?? "0");
      }
    }
    if (++r === rows) break;
  }
  rl.close();
  return out;
}
