/**
 * The image demo on the embedded default: build the shapes classifier (a small CNN
 * whose head is trained here on generated images), generate a media library (JPEG,
 * PNG, WebP of different sizes, the true label in each file name, plus the bad
 * objects a real library has), classify the library through the whole pipeline
 * (directory → objects under a prefix → manifest → worker processes → checkpoints →
 * merge), then read the true labels off the names: accuracy, a confusion matrix,
 * a few rows, the bad objects with their reasons, and `verify`.
 *
 *   npm run demo:images                          # 600 images
 *   npm run demo:images -- --images 2000 --workers 2 --format parquet
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { createProgressReporter } from "../src/cli/progress.ts";
import { createLogger, silentLogger } from "../src/core/log.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import { runLocalJob } from "../src/runner/local-runner.ts";
import { localPaths, openLocalPipeline } from "../src/runner/local-stores.ts";
import {
  labelFromName,
  writeShapeDataset,
} from "../src/tasks/image-classification/shape-dataset.ts";
import { SHAPE_LABELS } from "../src/tasks/image-classification/shapes.ts";
import {
  trainShapesModel,
  writeShapesModel,
} from "../src/tasks/image-classification/shapes-model.ts";

const { values } = parseArgs({
  options: {
    images: { type: "string", default: "600" },
    workers: { type: "string", default: "2" },
    dir: { type: "string", default: ".demo/images" },
    format: { type: "string", default: "jsonl" },
  },
});
const count = Number(values.images);
const workers = Number(values.workers);
const format = values.format === "parquet" ? "parquet" : "jsonl";
const dir = path.resolve(values.dir);
await mkdir(dir, { recursive: true });

const modelDir = path.join(dir, "models", "shapes");
const descriptor = path.join(modelDir, "shapes.json");
if (!existsSync(descriptor)) {
  const t = Date.now();
  const model = await trainShapesModel({ seed: 7, trainImages: 1500, testImages: 500 });
  await writeShapesModel(modelDir, model);
  console.log(
    `built the shapes classifier (${SHAPE_LABELS.join(", ")}) in ${((Date.now() - t) / 1000).toFixed(1)}s: held-out accuracy ${(model.testAccuracy * 100).toFixed(1)}% → ${descriptor}`,
  );
}

const library = path.join(dir, `library-${count}`);
if (!existsSync(library)) {
  const t = Date.now();
  await mkdir(library, { recursive: true });
  const written = await writeShapeDataset(
    async (name, bytes) => {
      await writeFile(path.join(library, name), bytes);
    },
    { count, seed: 2026, bad: true, minSide: 160, maxSide: 640 },
  ).catch(async (err) => {
    await rm(library, { recursive: true, force: true });
    throw err;
  });
  console.log(
    `generated a library of ${written.length} images and 5 bad objects in ${((Date.now() - t) / 1000).toFixed(1)}s → ${library}`,
  );
}

const bundle = path.resolve("dist/worker.js");
const dataDir = path.join(dir, "state");
console.log(`classifying with ${workers} worker processes (state in ${dataDir})`);
const reporter = createProgressReporter(process.stderr, 1000);
const result = await runLocalJob({
  dataDir,
  inputFile: library,
  descriptor,
  workers,
  spec: { output: { bucket: "output", format }, partitionRecords: 200 },
  log: createLogger({ level: "warn" }),
  onProgress: (p) => reporter.update(p),
  ...(existsSync(bundle) ? { workerCommand: { modulePath: bundle, execArgv: [] } } : {}),
});
reporter.done(result.progress);
const job = result.job;
const r = job.result;
if (!r || job.state !== "completed") {
  console.error(`job ${job.jobId} ended ${job.state}: ${job.error ?? "see batch-infer status"}`);
  process.exit(1);
}
const buckets = localPaths(dataDir).buckets;
const output = path.join(buckets, r.output.bucket, r.output.object);
const errorsFile = path.join(buckets, r.errorsOutput.bucket, r.errorsOutput.object);

type Row = {
  object: string;
  label: string;
  score: number;
  top_labels: string[];
  top_scores: number[];
};
let rows: Row[];
if (format === "parquet") {
  const { parquetReadObjects } = await import("hyparquet");
  const bytes = await readFile(output);
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
  rows = (await parquetReadObjects({ file })) as Row[];
} else {
  rows = (await readFile(output, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Row);
}

// The true label is in each name; the model never saw these images.
const classes = [...SHAPE_LABELS] as string[];
const confusion = classes.map(() => classes.map(() => 0));
let right = 0;
for (const row of rows) {
  const truth = labelFromName(row.object) ?? "";
  const t = classes.indexOf(truth);
  const p = classes.indexOf(row.label);
  if (t >= 0 && p >= 0) (confusion[t] as number[])[p] = ((confusion[t] as number[])[p] ?? 0) + 1;
  if (truth === row.label) right++;
}
const pad = (s: string, n: number) => s.padStart(n);
const width = Math.max(...classes.map((c) => c.length)) + 2;
const matrix = [
  `${pad("true \\ predicted", 18)}${classes.map((c) => pad(c, width)).join("")}`,
  ...classes.map(
    (c, i) =>
      `${pad(c, 18)}${(confusion[i] as number[]).map((n) => pad(String(n), width)).join("")}`,
  ),
].join("\n    ");
const examples = rows
  .filter((_, i) => i % (Math.floor(rows.length / 6) + 1) === 0)
  .slice(0, 6)
  .map(
    (row) =>
      `${path.basename(row.object).padEnd(24)} ${row.top_labels.map((l, k) => `${l} ${((row.top_scores[k] ?? 0) * 100).toFixed(1)}%`).join(", ")}`,
  )
  .join("\n    ");
const bad = (await readFile(errorsFile, "utf8"))
  .split("\n")
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { record: string; reason: string })
  .map((e) => `${path.basename(e.record).padEnd(20)} ${e.reason}`)
  .join("\n    ");
const pipeline = openLocalPipeline(dataDir, { log: silentLogger });
const verified = await verifyJob(pipeline, job);
pipeline.close();
const secs = r.durationMs / 1000;
console.log(`
job ${job.jobId} ${job.state}
  ${r.records.toLocaleString("en-US")} images classified in ${secs.toFixed(1)}s (${(r.records / secs).toFixed(0)} images/s overall), ${r.errors} bad objects
  accuracy against the labels in the file names: ${right}/${rows.length} = ${((right / Math.max(1, rows.length)) * 100).toFixed(1)}%
    ${matrix}
  a few rows (top-3 labels):
    ${examples}
  bad objects (errors output):
    ${bad}
  verify: ${verified.ok ? `every one of the ${verified.inputRecords} objects is in the output or the errors exactly once` : `FAILED: ${verified.checks.find((c) => !c.ok)?.detail}`}
  output    ${output}
  errors    ${errorsFile}
  report    ${r.report ? path.join(buckets, r.report.bucket, r.report.object) : "(none)"}`);
