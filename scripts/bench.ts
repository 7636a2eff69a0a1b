/**
 * What a user waits for, against the tools they would otherwise use, on the
 * same generated CSV (`id,f0..f31`): the wall clock of `batch-infer run`
 * (the built CLI, process start to exit, 2 workers × 1 onnxruntime thread,
 * fresh data dir) against
 *   - DuckDB reading the CSV with every feature parsed (2 threads): parse only;
 *   - the pandas script a data scientist writes (read_csv + numpy + to_json);
 *   - the csv-parse + onnxruntime script, and bare onnxruntime (2 threads);
 * for the logistic model (parse-bound) and two MLPs (compute-bound); plus
 * checkpoint cost (every 5,000 vs every 1,000,000 records), peak RSS per
 * worker, the functions' cold start, and (without --quick) 10M rows against
 * DuckDB on the same 10M file. Each figure is printed with its anchor and the
 * issue's target; it never fails on a figure.
 *
 *   npx tsx scripts/bench.ts                # 1,000,000 rows + the 10M check (~3 GB file)
 *   npx tsx scripts/bench.ts --quick        # skip the 10M check
 *   options: --rows N (default 1,000,000), --seed S (2026), --repeat K (runs per
 *            measurement, median reported; 3), --keep-data (keep the 10M file),
 *            --skip-media (skip scripts/bench-media.ts: images and Parquet vs CSV)
 *
 * Generated data and models live under .bench/ (gitignored) and are reused;
 * results go to .bench/results.json.
 */
import { spawnSync } from "node:child_process";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { NUMERIC_WIDTH } from "../src/model/datasets.ts";
import { describeFloorCosts, measureFloorCosts } from "./bench/ceilings.ts";
import { measureCheckpoints } from "./bench/checkpoints.ts";
import { type CliRunResult, runCli } from "./bench/cli-run.ts";
import { measureColdStart } from "./bench/cold-start.ts";
import {
  BENCH_DIR,
  type BenchModel,
  ensureDataset,
  ensureModels,
  ROOT,
  readFeatures,
  removeDataset,
} from "./bench/data.ts";
import { type DuckdbResult, measureDuckdb } from "./bench/duckdb.ts";
import { issueFigures, type Measured, type ModelRuns, peakRss } from "./bench/figures.ts";
import { fmtInt, fmtMB, median, medianValue, secs } from "./bench/format.ts";
import {
  type BareResult,
  type HandResult,
  logisticCoefficients,
  measureBare,
  measureHandWritten,
  type Ort,
  scoreRows,
} from "./bench/onnx.ts";
import { findPandasPython, measurePandas, type PandasResult } from "./bench/pandas.ts";
import { printFigures } from "./bench/report.ts";

const WORKERS = 2;
/** Bare onnxruntime, the hand-written script and DuckDB get the pool's total threads. */
const THREADS = 2;
const BATCH = 4096;
const MIN_PARTITIONS = 8;
const HAND_ROWS = 300_000;
const SCALE_ROWS = 10_000_000;
const CKPT_SMALL = 5_000;
const CKPT_LARGE = 1_000_000;
const BARE_WINDOW_MS = 1500;

const { values: flags } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    seed: { type: "string", default: "2026" },
    quick: { type: "boolean", default: false },
    repeat: { type: "string", default: "3" },
    "keep-data": { type: "boolean", default: false },
    "skip-media": { type: "boolean", default: false },
  },
  strict: true,
});
const ROWS = Number(flags.rows);
const SEED = Number(flags.seed);
const REPEAT = Number(flags.repeat);
if (!Number.isSafeInteger(ROWS) || ROWS < BATCH) {
  throw new Error(`--rows must be an integer >= ${BATCH}, got ${flags.rows}`);
}
if (!Number.isSafeInteger(SEED)) throw new Error(`--seed must be an integer, got ${flags.seed}`);
if (!Number.isSafeInteger(REPEAT) || REPEAT < 1) {
  throw new Error(`--repeat must be a positive integer, got ${flags.repeat}`);
}

// The CLI and its workers run from the esbuild bundle, as `npm run build` makes them.
{
  const built = spawnSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], {
    encoding: "utf8",
    cwd: ROOT,
  });
  if (built.status !== 0) throw new Error(`npm run build failed:\n${built.stderr}`);
}

const benchStart = performance.now();
const loadStart = loadavg()[0]?.toFixed(2);
await mkdir(BENCH_DIR, { recursive: true });
const dataFile = await ensureDataset(ROWS, SEED);
const dataBytes = (await stat(dataFile)).size;
// ceil(span / partitionBytes) partitions: size / 8 rounded up gives 8, a multiple of the workers.
const partitionBytes = Math.max(1024, Math.ceil(dataBytes / MIN_PARTITIONS));
const models = await ensureModels();
const ort: Ort = await import("onnxruntime-node");
const featureRows = Math.min(16, Math.floor(ROWS / BATCH)) * BATCH;
const features = await readFeatures(dataFile, featureRows);

console.log(
  `data: ${fmtInt(ROWS)} rows × ${NUMERIC_WIDTH} floats, ${fmtMB(dataBytes)}, partitionBytes ${fmtInt(partitionBytes)} (${MIN_PARTITIONS} partitions); ` +
    `batch-infer run: ${WORKERS} workers × 1 onnxruntime thread, batch ${BATCH}; anchors: ${THREADS} threads; ${cpus().length} CPUs, load ${loadStart}`,
);

const cli = (label: string, model: BenchModel, extra: Partial<Parameters<typeof runCli>[0]> = {}) =>
  runCli({
    label,
    model,
    inputFile: dataFile,
    rows: ROWS,
    workers: WORKERS,
    partitionBytes,
    ...extra,
  }).then((r) => {
    console.log(describeRun(r));
    return r;
  });
const bare = (model: BenchModel, minRows: number) =>
  measureBare(ort, model, features, {
    threads: THREADS,
    batch: BATCH,
    minMs: BARE_WINDOW_MS,
    minRows,
  }).then((r) => {
    console.log(
      `  bare onnxruntime [${model.name}]: ${fmtInt(r.rowsPerSec)} rows/s (${fmtInt(r.rows)} rows in ${r.seconds.toFixed(1)}s, ${r.threads} threads, pre-built ${BATCH}-row tensors)`,
    );
    return r;
  });

function describeRun(p: CliRunResult): string {
  return (
    `  batch-infer run [${p.label}] ${fmtInt(p.rows)} rows, ${p.partitions} partitions, checkpointEvery ${fmtInt(p.checkpointEvery)}: ` +
    `wall ${secs(p.wallMs)} = ${fmtInt(p.wallRowsPerSec)} rows/s; job durationMs ${secs(p.durationMs)} = ${fmtInt(p.rowsPerSec)} rows/s; ` +
    `first claim → last done ${secs(p.windowMs)} = ${fmtInt(p.windowRowsPerSec)} rows/s; ` +
    `peak RSS/worker ${fmtMB(p.peakRssPerWorker)} [${p.workerPeaks.map(fmtMB).join(", ")}], CLI ${fmtMB(p.cliPeakRss)}`
  );
}

// ---------------------------------------------------------------------------------
// Anchors on the base file

console.log(`\n== anchors on the ${fmtInt(ROWS)}-row file`);
const duckRuns = await measureDuckdb(dataFile, { threads: THREADS, repeat: REPEAT + 1 });
// The first read warms the page cache (for DuckDB and for everything after it): not counted.
const duck = median(duckRuns.slice(1), (r) => r.seconds);
if (duck.rows !== ROWS) throw new Error(`DuckDB counted ${duck.rows} rows, expected ${ROWS}`);
console.log(
  `  DuckDB ${duck.version} read_csv, all 32 features parsed (FLOAT, summed), ${THREADS} threads: ${fmtInt(duck.rowsPerSec)} rows/s ` +
    `(median of ${REPEAT}: ${duckRuns
      .slice(1)
      .map((r) => secs(r.seconds * 1000))
      .join(", ")})`,
);

const logistic = models.logistic;
const floors = await measureFloorCosts({
  dataFile,
  dataBytes,
  descriptorPath: logistic.descriptorPath,
  cliPath: path.join(ROOT, "dist", "cli.js"),
});
console.log(describeFloorCosts(floors));
const pandasPython = findPandasPython();
let pandas: PandasResult | undefined;
const pandasRuns: PandasResult[] = [];
let pandasCheck = "";
if ("missing" in pandasPython) {
  console.log(`  pandas script: SKIPPED, no Python with pandas: ${pandasPython.missing}`);
} else {
  const coefficients = await logisticCoefficients(ort, logistic, features);
  for (let i = 0; i < REPEAT; i++) {
    pandasRuns.push(await measurePandas(pandasPython.python, dataFile, coefficients));
  }
  pandas = median(pandasRuns, (r) => r.wallMs);
  const ours = await scoreRows(ort, logistic, features, 3);
  const worst = Math.max(...ours.map((s, i) => Math.abs(s - (pandas?.first[i] ?? Number.NaN))));
  pandasCheck = `first 3 scores within ${worst.toExponential(1)} of onnxruntime's`;
  if (!(worst < 1e-4)) pandasCheck = `WARNING: scores differ from onnxruntime's by ${worst}`;
  console.log(
    `  pandas ${pandas.pandas} script (${pandasPython.python}): read_csv + numpy logistic + to_json: ${fmtInt(pandas.rowsPerSec)} rows/s ` +
      `(process ${secs(pandas.wallMs)}: import ${pandas.importSeconds.toFixed(1)}s, read ${pandas.readSeconds.toFixed(1)}s, score ${pandas.scoreSeconds.toFixed(2)}s, write ${pandas.writeSeconds.toFixed(1)}s; median of ${REPEAT}); ${pandasCheck}`,
  );
}

const handRows = Math.min(HAND_ROWS, ROWS);
const hands: HandResult[] = [];
for (let i = 0; i < REPEAT; i++) {
  hands.push(
    await measureHandWritten(ort, logistic, dataFile, {
      maxRows: handRows,
      threads: THREADS,
      batch: BATCH,
      parser: "csv-parse",
    }),
  );
}
const hand = median(hands, (r) => r.seconds);
console.log(
  `  hand-written ${hand.method} [logistic], first ${fmtInt(hand.rows)} rows: ${fmtInt(hand.rowsPerSec)} rows/s (median of ${REPEAT})`,
);

// ---------------------------------------------------------------------------------
// batch-infer run, with bare onnxruntime windows between runs (so a burst of load
// from other tenants lands on both sides)

async function modelRuns(model: BenchModel, repeat: number, bareMinRows: number) {
  console.log(`\n== ${model.label}`);
  const bares: BareResult[] = [];
  const runs: CliRunResult[] = [];
  for (let i = 0; i < repeat; i++) {
    bares.push(await bare(model, bareMinRows));
    runs.push(await cli(`${model.name}-default`, model));
  }
  // One more after the last run, so the bare windows bracket every run.
  bares.push(await bare(model, bareMinRows));
  return {
    // Median rate over the windows (mean of the middle two: there is one more window than runs).
    bare: {
      ...median(bares, (r) => r.seconds / r.rows),
      rowsPerSec: medianValue(bares.map((r) => r.rowsPerSec)),
    },
    run: median(runs, (r) => r.wallMs),
    bares,
    runs,
  } satisfies ModelRuns;
}
const logisticRuns = await modelRuns(logistic, REPEAT, Math.ceil(1_000_000 / REPEAT));
const mlpRuns = await modelRuns(models["mlp-256x2"], REPEAT, Math.ceil(1_000_000 / REPEAT));
// ~10 s a run at ~100k rows/s: once.
const heavyRuns = await modelRuns(models["mlp-1024x2"], 1, 50_000);

console.log(
  `\n== checkpoints (logistic): every ${fmtInt(CKPT_SMALL)} vs every ${fmtInt(CKPT_LARGE)} records, interleaved`,
);
const checkpoints = await measureCheckpoints(
  [CKPT_SMALL, CKPT_LARGE],
  Math.max(REPEAT, 5),
  (every) => cli(`ckpt${every}`, logistic, { checkpointEvery: every }),
);

// ---------------------------------------------------------------------------------
// Cold start of the functions

console.log("\n== cold start (scripts/cold-start.ts)");
const coldStart = measureColdStart(ROOT);

// ---------------------------------------------------------------------------------
// 10M rows: our wall clock against DuckDB on the same file

interface Scale {
  rows: number;
  bytes: number;
  run: CliRunResult;
  duck: DuckdbResult;
}
let scale: Scale | undefined;
if (!flags.quick && ROWS < SCALE_ROWS) {
  console.log(`\n== ${fmtInt(SCALE_ROWS)} rows (logistic), same partitionBytes`);
  const bigFile = await ensureDataset(SCALE_ROWS, SEED);
  try {
    const bytes = (await stat(bigFile)).size;
    // One warm-up read (page cache), then the measured one.
    const [, big] = await measureDuckdb(bigFile, { threads: THREADS, repeat: 2 });
    if (!big || big.rows !== SCALE_ROWS) throw new Error("DuckDB miscounted the 10M file");
    console.log(
      `  DuckDB read_csv, all features parsed, ${THREADS} threads: ${fmtInt(big.rowsPerSec)} rows/s (${secs(big.seconds * 1000)})`,
    );
    const run = await runCli({
      label: "logistic-10m",
      model: logistic,
      inputFile: bigFile,
      rows: SCALE_ROWS,
      workers: WORKERS,
      partitionBytes,
    });
    console.log(describeRun(run));
    scale = { rows: SCALE_ROWS, bytes, run, duck: big };
  } finally {
    if (!flags["keep-data"]) await removeDataset(bigFile);
  }
}

// ---------------------------------------------------------------------------------
// The figures, each with its anchor and target

const measured: Measured = {
  rows: ROWS,
  dataBytes,
  scaleRows: SCALE_ROWS,
  floors,
  duck,
  pandas,
  pandasMissing: "missing" in pandasPython ? pandasPython.missing : undefined,
  hand,
  logistic: logisticRuns,
  mlp: mlpRuns,
  heavy: heavyRuns,
  checkpoints,
  coldStart,
  scale,
  quick: flags.quick,
};
const figures = issueFigures(measured);
const table = printFigures(figures);
const wallSeconds = (performance.now() - benchStart) / 1000;
const notes = [
  `ours = wall clock of \`node dist/cli.js run\` (process start → exit, ${WORKERS} workers × 1 thread, fresh --data-dir, ${MIN_PARTITIONS} partitions at ${fmtInt(ROWS)} rows), median of ${REPEAT}; "by job" = the same with the job's durationMs`,
  `DuckDB: read_csv with explicit types, sum of all 32 features, ${THREADS} threads, median of ${REPEAT} after a warm-up read; pandas: process start → exit${pandasCheck ? `, ${pandasCheck}` : ""}`,
  `csv-parse script and bare onnxruntime: 1 session × ${THREADS} intra-op threads, batch ${BATCH}; csv-parse on the first ${fmtInt(handRows)} rows`,
  "ceiling here: the best the ratio can be on this machine, from the work every run does (CLI start, the input's sha256, reading and featurizing every row, and a heavy model's inference at bare onnxruntime's rate) spread over all cores with everything else free (scripts/bench/ceilings.ts)",
  `peak RSS/worker: max VmHWM of the CLI's child processes, polled every 200 ms; shared noisy 2-core machine (load ${loadStart} at start, ${loadavg()[0]?.toFixed(2)} at end); bench ${wallSeconds.toFixed(0)} s`,
];
for (const n of notes) console.log(`  ${n}`);

const results = {
  date: new Date().toISOString(),
  rows: ROWS,
  seed: SEED,
  dataBytes,
  partitionBytes,
  workers: WORKERS,
  anchorThreads: THREADS,
  batchSize: BATCH,
  repeat: REPEAT,
  figures,
  floors,
  anchors: {
    duckdb: { median: duck, runs: duckRuns },
    pandas: pandas ? { median: pandas, runs: pandasRuns, check: pandasCheck } : null,
    pandasMissing: "missing" in pandasPython ? pandasPython.missing : null,
    handWritten: { median: hand, runs: hands },
  },
  models: { logistic: logisticRuns, "mlp-256x2": mlpRuns, "mlp-1024x2": heavyRuns },
  checkpoints: {
    small: checkpoints.all.filter((r) => r.checkpointEvery === CKPT_SMALL),
    large: checkpoints.all.filter((r) => r.checkpointEvery === CKPT_LARGE),
    overheadPct: checkpoints.overheadPct,
    overheadJobPct: checkpoints.overheadJobPct,
    floor: checkpoints.floor,
  },
  coldStart,
  scale: scale ?? null,
  peakRssPerWorker: peakRss(measured).bytes,
  wallSeconds,
  table,
  notes,
};
const out = path.join(BENCH_DIR, "results.json");
await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
console.log(`results → ${path.relative(ROOT, out)}`);

// The media and Parquet parts (images/s vs the pre-decoded ceiling, Parquet vs CSV)
// in the same run, in a process of their own (~1-2 minutes; --skip-media skips them).
if (!flags["skip-media"]) {
  const mediaOut = path.join(BENCH_DIR, "media-results.json");
  console.log("\nmedia and Parquet (scripts/bench-media.ts):");
  const media = spawnSync(
    process.execPath,
    ["--import", "tsx", path.join(ROOT, "scripts", "bench-media.ts"), "--json", mediaOut],
    { stdio: "inherit", cwd: ROOT },
  );
  if (media.status !== 0)
    console.log(`  bench-media exited ${media.status}: its figures are missing`);
  else console.log(`media results → ${path.relative(ROOT, mediaOut)}`);
}
