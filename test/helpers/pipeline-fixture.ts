import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { trainChurnModel } from "../../scripts/train-model.ts";
import { silentLogger } from "../../src/core/log.ts";
import type { JobRecord } from "../../src/core/records.ts";
import { writeDataset } from "../../src/model/datasets.ts";
import { type LocalRunOptions, runLocalJob } from "../../src/runner/local-runner.ts";
import { localPaths } from "../../src/runner/local-stores.ts";

/** A temp directory removed by `cleanup`. */
export async function tempDir(
  prefix = "bi-test-",
): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const FIXTURE_ROOT = path.join(os.tmpdir(), "bi-test-fixtures");

/** A trained churn model shared by the test files of one machine (trained once, ~1 s). */
export async function churnModel(): Promise<string> {
  const dir = path.join(FIXTURE_ROOT, "churn-model-v1");
  const descriptor = path.join(dir, "descriptor.json");
  if (!existsSync(descriptor)) {
    const tmp = `${dir}.tmp-${process.pid}`;
    await mkdir(tmp, { recursive: true });
    await trainChurnModel({ outDir: tmp, rows: 8000, seed: 3 });
    await rm(dir, { recursive: true, force: true });
    const { rename } = await import("node:fs/promises");
    await rename(tmp, dir).catch(() => undefined);
  }
  return descriptor;
}

/** A generated customer CSV (deterministic by rows and seed). */
export async function customerCsv(dir: string, rows: number, seed = 11): Promise<string> {
  const file = path.join(dir, `customers-${rows}-${seed}.csv`);
  if (!existsSync(file))
    await writeDataset({ kind: "customers", rows, seed, format: "csv", out: file });
  return file;
}

/** Run a local job quietly with test-friendly defaults. */
export async function runJob(
  options: Partial<LocalRunOptions> & Pick<LocalRunOptions, "dataDir" | "inputFile" | "descriptor">,
) {
  return runLocalJob({
    workers: 2,
    log: silentLogger,
    progressIntervalMs: 50,
    ...options,
  });
}

/** Local path of an object in the embedded store. */
export function objectFile(dataDir: string, bucket: string, object: string): string {
  return path.join(localPaths(dataDir).buckets, bucket, object);
}

/** The job's predictions, errors and their sha256. */
export async function readOutputs(dataDir: string, job: JobRecord) {
  const r = job.result;
  if (!r) throw new Error(`job ${job.jobId} has no result (state ${job.state})`);
  const predictions =
    job.state === "failed"
      ? ""
      : await readFile(objectFile(dataDir, r.output.bucket, r.output.object), "utf8");
  const errors = await readFile(
    objectFile(dataDir, r.errorsOutput.bucket, r.errorsOutput.object),
    "utf8",
  );
  return {
    predictions,
    errors,
    sha256: createHash("sha256").update(predictions).digest("hex"),
    rows: predictions.split("\n").filter(Boolean),
    errorRows: errors
      .split("\n")
      .filter(Boolean)
      .map(
        (l) =>
          JSON.parse(l) as {
            line: number;
            offset: number;
            partition: number;
            reason: string;
            key: Record<string, string> | null;
            record: string | null;
          },
      ),
  };
}
