/**
 * One job with P tiny partitions, run in this process on the embedded
 * adapters (SQLite, files, JSONL) with every port wrapped in a counter: the
 * splitter, two partition workers and the merge they enqueue. What it returns
 * is the number of requests, per service and method, the job cost.
 */
import { existsSync } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../../src/core/log.ts";
import { TERMINAL_JOB_STATES } from "../../src/core/records.ts";
import { writeDataset } from "../../src/model/datasets.ts";
import { PartitionWorker } from "../../src/pipeline/partition-worker.ts";
import { splitJob } from "../../src/pipeline/splitter.ts";
import { uploadFile } from "../../src/runner/local-runner.ts";
import { openLocalPipeline } from "../../src/runner/local-stores.ts";
import { writeNumericLogisticModel } from "../train-model.ts";
import {
  countingStores,
  type RequestCounts,
  type Service,
  type ServiceTotals,
  totals,
} from "./counting-ports.ts";

/** Rows per partition of the generated input: a few, so P = 10,000 stays a small file. */
const ROWS_PER_PARTITION = 4;
/** The splitter's lower bound on partitionBytes (job spec schema). */
const MIN_PARTITION_BYTES = 1024;
const WORKERS = 2;

/** The header line of a small local file (without its newline). */
async function readFirstLine(file: string): Promise<string> {
  const fh = await open(file);
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(4096), 0, 4096, 0);
    const text = buffer.toString("utf8", 0, bytesRead);
    const nl = text.indexOf("\n");
    return nl < 0 ? text : text.slice(0, nl);
  } finally {
    await fh.close();
  }
}

/** What one simulated job cost. */
export interface SimResult {
  partitions: number;
  rows: number;
  state: string;
  counts: RequestCounts;
  totals: Record<Service, ServiceTotals>;
  ms: number;
}

/** A numeric logistic model, written once per machine under `cacheDir`. */
async function ensureModel(cacheDir: string): Promise<string> {
  const dir = path.join(cacheDir, "scale-logistic-s7");
  const descriptor = path.join(dir, "descriptor.json");
  if (!existsSync(descriptor)) {
    const tmp = `${dir}.tmp-${process.pid}`;
    await writeNumericLogisticModel({ outDir: tmp, seed: 7, rows: 2000 });
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir).catch(() => undefined);
  }
  return descriptor;
}

/**
 * A numeric CSV big enough for `partitions` partitions of at least 1 KiB and
 * the partitionBytes that cuts it into that many: exactly where a 1-byte step
 * of partitionBytes allows it, else the nearest count above (at P = 10,000 one
 * byte moves the count by ~8).
 */
async function ensureInput(
  cacheDir: string,
  partitions: number,
): Promise<{ file: string; rows: number; partitionBytes: number }> {
  // ~300 bytes a row: a few rows a partition keeps every partition over the 1 KiB floor.
  const rows = partitions * ROWS_PER_PARTITION;
  const file = path.join(cacheDir, `scale-${partitions}.csv`);
  if (!existsSync(file)) {
    const tmp = `${file}.tmp-${process.pid}`;
    await writeDataset({ kind: "numeric", rows, seed: 5, format: "csv", out: tmp });
    await rename(tmp, file);
  }
  const span = (await stat(file)).size - (await readFirstLine(file)).length - 1;
  // The splitter makes ceil(span / partitionBytes) partitions: the largest size giving at least P.
  let partitionBytes = Math.ceil(span / partitions);
  while (Math.ceil(span / partitionBytes) < partitions) partitionBytes--;
  if (partitionBytes < MIN_PARTITION_BYTES) {
    throw new Error(`scale input ${file} is too small for ${partitions} partitions`);
  }
  return { file, rows, partitionBytes };
}

/**
 * Run one job of `partitions` partitions and count its requests. `workDir` is
 * created and removed here; `cacheDir` keeps the model and inputs for reuse.
 */
export async function simulateJob(options: {
  partitions: number;
  workDir: string;
  cacheDir?: string;
  /** Records per checkpoint (default: more than a partition holds, so one commit each). */
  checkpointEvery?: number;
}): Promise<SimResult> {
  const cacheDir = options.cacheDir ?? path.join(os.tmpdir(), "bi-scale-cache");
  await mkdir(cacheDir, { recursive: true });
  const descriptor = await ensureModel(cacheDir);
  const input = await ensureInput(cacheDir, options.partitions);
  await rm(options.workDir, { recursive: true, force: true });
  const local = openLocalPipeline(options.workDir, { log: silentLogger });
  try {
    // The upload is the user's, not the job's: it happens before counting starts.
    await uploadFile(local, "input", "scale.csv", input.file);
    const { deps, counts } = countingStores(local);
    const t0 = performance.now();
    const split = await splitJob(deps, {
      input: { bucket: "input", object: "scale.csv" },
      output: { bucket: "output" },
      model: { descriptor },
      partitionBytes: input.partitionBytes,
      checkpointEvery: options.checkpointEvery ?? 1_000_000,
      batchSize: 64,
    });
    if (Math.abs(split.partitions - options.partitions) > options.partitions / 100) {
      throw new Error(`split made ${split.partitions} partitions, wanted ${options.partitions}`);
    }
    const workers = Array.from(
      { length: WORKERS },
      (_, i) =>
        new PartitionWorker(deps, {
          workerId: `sim-${i}`,
          receiveWaitSeconds: 0,
          // Inference on the main thread: no worker-thread start-up per simulated worker.
          scorer: { thread: false },
        }),
    );
    // Workers stop when the queue looks empty; the merge task is enqueued by whichever
    // finishes last, so go round until the job is terminal.
    for (let round = 0; round < 10; round++) {
      await Promise.all(workers.map((w) => w.run({ untilIdle: true })));
      const job = await local.checkpoints.getJob(split.jobId);
      if (job && TERMINAL_JOB_STATES.includes(job.value.state)) break;
    }
    const ms = performance.now() - t0;
    const job = await local.checkpoints.getJob(split.jobId);
    const state = job?.value.state ?? "missing";
    if (state !== "completed") throw new Error(`simulated job ended ${state}`);
    if (job?.value.result?.records !== input.rows) {
      throw new Error(`simulated job scored ${job?.value.result?.records}, wanted ${input.rows}`);
    }
    return {
      partitions: split.partitions,
      rows: input.rows,
      state,
      counts,
      totals: totals(counts),
      ms,
    };
  } finally {
    local.close();
    await rm(options.workDir, { recursive: true, force: true });
  }
}
