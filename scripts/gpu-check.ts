/**
 * The GPU path, for a person with a CUDA machine (the GPU worker image, or
 * onnxruntime-node installed with ONNXRUNTIME_NODE_INSTALL=cuda12):
 *
 *   1. Does onnxruntime's CUDA execution provider load? (a session with
 *      ["cuda"] only, in a child process, so the native log's reason is kept)
 *   2. The compute-bound MLP through the pipeline on CUDA (`batch-infer run`,
 *      ORT_EXECUTION_PROVIDERS=cuda) against bare onnxruntime on CUDA over
 *      pre-built batches; target: pipeline ≥ 0.8 × bare CUDA.
 *   3. The embedding model (scripts/gen-text-model.ts) the same way
 *      (skipped, saying so, until then).
 *   4. The fallback rule: with ORT_EXECUTION_PROVIDERS=cuda,cpu on a machine
 *      where CUDA can't be used (here; on a GPU machine the GPU is hidden with
 *      CUDA_VISIBLE_DEVICES=""), a job still completes on cpu and a worker logs,
 *      at warn or above, that it fell back and onnxruntime's reason why.
 *
 *   npx tsx scripts/gpu-check.ts [--rows 1000000] [--workers 2] [--hidden 1024,1024]
 *
 * Exit 0 only when every part ran and passed; 1 when CUDA is unavailable or a
 * CUDA run failed (the fallback check still runs), 2 when the fallback check
 * failed, 3 both. Figures go to .bench/gpu-check.json.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { type CliRunResult, runCli } from "./bench/cli-run.ts";
import {
  BENCH_DIR,
  type BenchModel,
  ensureDataset,
  ensureModels,
  MODELS_DIR,
  ROOT,
  RUNS_DIR,
} from "./bench/data.ts";
import { fmtInt, secs, times } from "./bench/format.ts";
import { type BareCuda, bareCuda, type Ort, probeCuda } from "./gpu/cuda.ts";
import { type FallbackCheck, fallbackCheck } from "./gpu/fallback.ts";
import { writeMlpModel } from "./train-model.ts";

const TARGET = 0.8;
const BATCH = 4096;
/** Rows per batch for the embedding model's bare run (sequences are far heavier than rows of floats). */
const TEXT_BATCH = 64;

const { values: flags } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    workers: { type: "string", default: "2" },
    hidden: { type: "string", default: "1024,1024" },
    "min-ms": { type: "string", default: "3000" },
  },
  strict: true,
});
const ROWS = Number(flags.rows);
const WORKERS = Number(flags.workers);
const HIDDEN = flags.hidden.split(",").map(Number);
const MIN_MS = Number(flags["min-ms"]);
if (!Number.isSafeInteger(ROWS) || ROWS < BATCH) throw new Error(`--rows must be >= ${BATCH}`);
if (!Number.isSafeInteger(WORKERS) || WORKERS < 1) throw new Error("--workers must be >= 1");
if (HIDDEN.some((h) => !Number.isSafeInteger(h) || h < 1)) {
  throw new Error(`--hidden must be comma-separated layer widths, got ${flags.hidden}`);
}

// ---------------------------------------------------------------------------------
// 2, 3. Pipeline on CUDA vs bare onnxruntime on CUDA

interface CudaFigure {
  model: string;
  bare: BareCuda;
  pipeline: CliRunResult;
  ratio: number;
  ratioByJob: number;
}

function printFigure(f: CudaFigure): void {
  console.log(
    `  ${f.model}: pipeline on CUDA ${fmtInt(f.pipeline.wallRowsPerSec)} rows/s by wall clock (${secs(f.pipeline.wallMs)}; job ${fmtInt(f.pipeline.rowsPerSec)} rows/s), ` +
      `bare CUDA ${fmtInt(f.bare.rowsPerSec)} rows/s (batch ${f.bare.batch}): ratio ${times(f.ratio)} (by job ${times(f.ratioByJob)}); ` +
      `target ≥ ${TARGET}×: ${f.ratio >= TARGET ? "MET" : "NOT MET"}`,
  );
}

async function mlpOnCuda(ort: Ort): Promise<CudaFigure> {
  const name = `mlp-${HIDDEN.join("x")}-s7`;
  const dir = path.join(MODELS_DIR, name);
  if (!existsSync(path.join(dir, "descriptor.json"))) {
    await writeMlpModel({ outDir: dir, seed: 7, hidden: HIDDEN });
  }
  const model: BenchModel = {
    name: `mlp-${HIDDEN.join("x")}`,
    label: `MLP 32→${HIDDEN.join("→")}→1`,
    descriptorPath: path.join(dir, "descriptor.json"),
    modelPath: path.join(dir, "model.onnx"),
  };
  const input = await ensureDataset(ROWS, 2026);
  const bytes = (await stat(input)).size;
  const bare = await bareCuda(ort, model.modelPath, BATCH, MIN_MS);
  const pipeline = await runCli({
    label: "gpu-mlp",
    model,
    inputFile: input,
    rows: ROWS,
    workers: WORKERS,
    partitionBytes: Math.max(1024, Math.ceil(bytes / (4 * WORKERS))),
    env: { ORT_EXECUTION_PROVIDERS: "cuda" },
  });
  return {
    model: model.label,
    bare,
    pipeline,
    ratio: pipeline.wallRowsPerSec / bare.rowsPerSec,
    ratioByJob: pipeline.rowsPerSec / bare.rowsPerSec,
  };
}

/**
 * The embedding model, from scripts/gen-text-model.ts: with `--layout flat
 * --corpus N` it writes DIR/descriptor.json, DIR/model.onnx (beside the tokenizer
 * files) and DIR/corpus.jsonl, N topical documents of every length class.
 */
async function embeddingOnCuda(ort: Ort): Promise<CudaFigure | string> {
  const generator = path.join(ROOT, "scripts", "gen-text-model.ts");
  if (!existsSync(generator)) {
    return "SKIPPED: scripts/gen-text-model.ts is not in this tree yet (no embedding model to run)";
  }
  const dir = path.join(MODELS_DIR, "gpu-check-text");
  await rm(dir, { recursive: true, force: true });
  const made = spawnSync(
    process.execPath,
    ["--import", "tsx", generator, "--out", dir, "--layout", "flat", "--corpus", "4000"],
    {
      encoding: "utf8",
      cwd: ROOT,
    },
  );
  if (made.status !== 0) {
    throw new Error(`gen-text-model.ts --out ${dir} failed: ${made.stderr.trim().slice(-2000)}`);
  }
  const files = await readdir(dir);
  const sample = files.find((f) => /\.(jsonl|csv)$/.test(f));
  if (!files.includes("descriptor.json") || !files.includes("model.onnx") || !sample) {
    throw new Error(
      `gen-text-model.ts --out ${dir} wrote [${files.join(", ")}]: expected descriptor.json, model.onnx and a .jsonl/.csv sample (adapt embeddingOnCuda to the generator)`,
    );
  }
  const inputFile = path.join(dir, sample);
  const text = await readFile(inputFile, "utf8");
  const lines = text.split("\n").filter((l) => l.trim() !== "").length;
  const rows = sample.endsWith(".csv") ? lines - 1 : lines;
  const model: BenchModel = {
    name: "embedding",
    label: "embedding model",
    descriptorPath: path.join(dir, "descriptor.json"),
    modelPath: path.join(dir, "model.onnx"),
  };
  const bare = await bareCuda(ort, model.modelPath, TEXT_BATCH, MIN_MS);
  const pipeline = await runCli({
    label: "gpu-text",
    model,
    inputFile,
    rows,
    workers: WORKERS,
    partitionBytes: Math.max(1024, Math.ceil(Buffer.byteLength(text) / (4 * WORKERS))),
    env: { ORT_EXECUTION_PROVIDERS: "cuda" },
  });
  return {
    model: model.label,
    bare,
    pipeline,
    ratio: pipeline.wallRowsPerSec / bare.rowsPerSec,
    ratioByJob: pipeline.rowsPerSec / bare.rowsPerSec,
  };
}

// ---------------------------------------------------------------------------------
// Main

{
  const built = spawnSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], {
    encoding: "utf8",
    cwd: ROOT,
  });
  if (built.status !== 0) throw new Error(`npm run build failed:\n${built.stderr}`);
}
await mkdir(RUNS_DIR, { recursive: true });
const models = await ensureModels();
const ort: Ort = await import("onnxruntime-node");

console.log("== 1. CUDA execution provider");
const probe = probeCuda(models["mlp-256x2"].modelPath);
console.log(`  onnxruntime-node backends: ${JSON.stringify(probe.supportedBackends)}`);
let cudaFailed = false;
const figures: CudaFigure[] = [];
let embeddingNote: string | undefined;
if (probe.ok) {
  console.log("  CUDA available: a session with executionProviders [cuda] was created");
  console.log(`\n== 2. compute-bound MLP on CUDA (${fmtInt(ROWS)} rows, ${WORKERS} workers)`);
  try {
    const f = await mlpOnCuda(ort);
    figures.push(f);
    printFigure(f);
    if (f.bare.rowsPerSec > 4 * f.pipeline.windowRowsPerSec) {
      console.log(
        "  note: bare CUDA runs this model far faster than the pipeline parses rows; a heavier model (--hidden 4096,4096,4096) shows the GPU path rather than the parser",
      );
    }
  } catch (err) {
    cudaFailed = true;
    console.log(`  FAILED: ${String(err)}`);
  }
  console.log("\n== 3. embedding model on CUDA");
  try {
    const e = await embeddingOnCuda(ort);
    if (typeof e === "string") {
      embeddingNote = e;
      console.log(`  ${e}`);
    } else {
      figures.push(e);
      printFigure(e);
    }
  } catch (err) {
    cudaFailed = true;
    embeddingNote = `FAILED: ${String(err)}`;
    console.log(`  ${embeddingNote}`);
  }
} else {
  cudaFailed = true;
  console.log(
    `  CUDA unavailable: ${probe.error ?? "unknown error"}${probe.nativeReason ? ` (onnxruntime: ${probe.nativeReason})` : ""}`,
  );
  console.log(
    "  the CUDA runs (MLP and embedding model on CUDA vs bare CUDA) were not run: the GPU path is unverified on this machine",
  );
}

console.log("\n== 4. fallback rule: ORT_EXECUTION_PROVIDERS=cuda,cpu where CUDA can't be used");
const fallback: FallbackCheck = await fallbackCheck(models, {
  cudaUsable: probe.ok,
  workers: WORKERS,
});
console.log(`  ${fallback.ok ? "PASS" : "FAIL"}: ${fallback.detail}`);
if (fallback.ortReason) console.log(`  onnxruntime's reason: ${fallback.ortReason}`);
if (fallback.logLine) console.log(`  worker log: ${fallback.logLine.slice(0, 800)}`);

const out = path.join(BENCH_DIR, "gpu-check.json");
await writeFile(
  out,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      cuda: probe,
      figures: figures.map((f) => ({ ...f, pipeline: { ...f.pipeline, stderr: undefined } })),
      embedding: embeddingNote ?? null,
      fallback,
      target: TARGET,
    },
    null,
    2,
  )}\n`,
);
console.log(`\nresults → ${path.relative(ROOT, out)}`);
process.exitCode = (cudaFailed ? 1 : 0) + (fallback.ok ? 0 : 2);
