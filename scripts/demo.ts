/**
 * The embedded-default demo: generate a customer dataset, train a churn model,
 * score the dataset through the whole pipeline (upload event → splitter →
 * queue → worker processes → checkpoints → merge → completion event), then
 * check the scores against the held-back labels.
 *
 *   npm run demo                       # 1,000,000 customers
 *   npm run demo -- --rows 200000 --workers 2
 */
import { createReadStream, existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { createProgressReporter } from "../src/cli/progress.ts";
import { createLogger } from "../src/core/log.ts";
import { writeDataset } from "../src/model/datasets.ts";
import { auc } from "../src/model/train-logistic.ts";
import { runLocalJob } from "../src/runner/local-runner.ts";
import { localPaths } from "../src/runner/local-stores.ts";
import { trainChurnModel } from "./train-model.ts";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    workers: { type: "string", default: "2" },
    dir: { type: "string", default: ".demo" },
  },
});
const rows = Number(values.rows);
const workers = Number(values.workers);
const dir = path.resolve(values.dir);
await mkdir(dir, { recursive: true });

const dataFile = path.join(dir, `customers-${rows}.csv`);
if (!existsSync(dataFile)) {
  const t = Date.now();
  const { bytes } = await writeDataset({
    kind: "customers",
    rows,
    seed: 2026,
    format: "csv",
    out: dataFile,
  });
  console.log(
    `generated ${rows.toLocaleString("en-US")} customers (${(bytes / 1e6).toFixed(0)} MB) in ${((Date.now() - t) / 1000).toFixed(1)}s → ${dataFile}`,
  );
}
const modelDir = path.join(dir, "models", "churn");
const descriptor = path.join(modelDir, "descriptor.json");
if (!existsSync(descriptor)) {
  const trained = await trainChurnModel({ outDir: modelDir, rows: 60000, seed: 7 });
  console.log(
    `trained a churn model on 60,000 other customers: held-out AUC ${trained.auc.toFixed(3)} → ${descriptor}`,
  );
}

// Workers run from the esbuild bundle (as in the worker image) when it is built: faster start.
const bundle = path.resolve("dist/worker.js");
const dataDir = path.join(dir, "state");
console.log(`scoring with ${workers} worker processes (state in ${dataDir})`);
const reporter = createProgressReporter(process.stderr, 2000);
const result = await runLocalJob({
  dataDir,
  inputFile: dataFile,
  descriptor,
  workers,
  spec: { output: { bucket: "output", format: "jsonl" }, partitionBytes: 16 * 1024 * 1024 },
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

// Join scores with the labels the model never saw, line by line (both are in input order).
const labels = createInterface({ input: createReadStream(dataFile) })[Symbol.asyncIterator]();
await labels.next(); // header
const scores: number[] = [];
const truth: number[] = [];
for await (const line of createInterface({ input: createReadStream(output) })) {
  const label = await labels.next();
  const text = label.value as string;
  truth.push(Number(text.slice(text.lastIndexOf(",") + 1)));
  scores.push((JSON.parse(line) as { churn_probability: number }).churn_probability);
}
const secs = r.durationMs / 1000;
console.log(`
job ${job.jobId} ${job.state}
  ${r.records.toLocaleString("en-US")} customers scored in ${secs.toFixed(1)}s (${Math.round(r.records / secs).toLocaleString("en-US")} records/s), ${r.errors} bad records
  AUC of the pipeline's scores against the true churn labels: ${auc(scores, truth).toFixed(3)}
  output    ${output}
  manifest  ${path.join(buckets, r.manifest.bucket, r.manifest.object)}

next: npm run cli -- status ${job.jobId} --data-dir ${path.relative(process.cwd(), dataDir)}
      npm run cli -- events --job ${job.jobId} --data-dir ${path.relative(process.cwd(), dataDir)}`);
