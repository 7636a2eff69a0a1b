/**
 * A synthetic finished job for the job report: kills, hand-backs, errors, an
 * attempt left open, a failed partition, and hostile strings (markup in worker
 * names, reasons and records) that must come out escaped. Shared by
 * test/report.test.ts and `scripts/check-report.ts --synthetic`.
 */
import type { Attempt } from "../../src/core/records.ts";
import type { Manifest } from "../../src/pipeline/manifest.ts";
import type { JobReportInput } from "../../src/pipeline/report.ts";

const T0 = Date.parse("2026-03-01T12:00:00.000Z");
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

/** A worker id with markup in it: it must be escaped wherever it appears. */
export const HOSTILE_WORKER = 'w-<img src=x onerror="alert(2)">';
/** A record with a script in it. */
export const HOSTILE_RECORD = "C0000042,<script>alert(1)</script>,yes";

function attempt(
  epoch: number,
  worker: string,
  start: number,
  end: number | undefined,
  outcome: Attempt["outcome"],
  fromOffset: number,
  detail?: string,
): Attempt {
  return {
    epoch,
    worker,
    startedAt: at(start),
    ...(end !== undefined ? { endedAt: at(end) } : {}),
    ...(outcome ? { outcome } : {}),
    ...(detail ? { detail } : {}),
    fromOffset,
  };
}

const KILLED = "worker stopped without handing back (killed or stalled)";
const PREEMPTED = "worker stopping (preemption or scale-down)";

/** Parts committed evenly between `from` and `to` seconds, `records` each. */
function parts(n: number, from: number, to: number, records: number, worker: string, epoch = 1) {
  return Array.from({ length: n }, (_, i) => ({
    seq: i,
    epoch,
    records,
    bytes: records * 60,
    sha256: "ab".repeat(32),
    committedAt: at(from + ((to - from) * (i + 1)) / n),
    worker,
  }));
}

/** The synthetic manifest: 6 partitions, 4 workers, 60 s, every attempt outcome. */
export function syntheticManifest(): Manifest {
  const P = 1_000_000;
  const partitions: Manifest["partitions"] = [
    {
      index: 0,
      start: 0,
      end: P,
      state: "done",
      records: 10_000,
      errors: 3,
      lines: 10_003,
      attempts: [attempt(1, "w-a", 0.2, 20, "done", 0)],
      parts: parts(5, 0.2, 20, 2000, "w-a"),
    },
    {
      index: 1,
      start: P,
      end: 2 * P,
      state: "done",
      records: 10_000,
      errors: 2,
      lines: 10_002,
      attempts: [
        attempt(1, "w-b", 0.3, 12, "lost", P, KILLED),
        attempt(2, "w-c", 14, 30, "done", P + 400_000),
      ],
      // The killed attempt's commits stay (they are checkpointed); one part predates commit times.
      parts: [
        { seq: 0, epoch: 1, records: 2000, bytes: 120_000, sha256: "cd".repeat(32) },
        ...parts(1, 0.3, 8, 2000, "w-b").map((r) => ({ ...r, seq: 1 })),
        ...parts(3, 14, 30, 2000, "w-c", 2).map((r, i) => ({ ...r, seq: 2 + i })),
      ],
    },
    {
      index: 2,
      start: 2 * P,
      end: 3 * P,
      state: "done",
      records: 10_000,
      errors: 0,
      lines: 10_000,
      attempts: [
        attempt(1, "w-a", 20.5, 25, "handed_back", 2 * P, PREEMPTED),
        attempt(2, "w-c", 30.2, 42, "done", 2 * P + 300_000),
      ],
      parts: [...parts(1, 20.5, 25, 3000, "w-a"), ...parts(3, 30.2, 42, 2333, "w-c", 2)],
    },
    {
      index: 3,
      start: 3 * P,
      end: 4 * P,
      state: "failed",
      records: 2000,
      errors: 0,
      lines: 2000,
      attempts: [
        attempt(1, HOSTILE_WORKER, 13, 20, "error", 3 * P, "onnxruntime: <b>out of memory</b>"),
        attempt(2, HOSTILE_WORKER, 22, 28, "error", 3 * P, "onnxruntime: <b>out of memory</b>"),
        attempt(3, "w-a", 28, 40, "lost", 3 * P + 100_000, KILLED),
      ],
      lastError:
        "gave up after 3 failed attempts (maxAttempts 3); last error: <script>alert('x')</script>",
      parts: parts(1, 28, 33, 2000, "w-a", 3),
    },
    {
      index: 4,
      start: 4 * P,
      end: 5 * P,
      state: "done",
      records: 10_000,
      errors: 5,
      lines: 10_005,
      attempts: [attempt(1, "w-a", 42, 58, "done", 4 * P)],
      parts: parts(4, 42, 58, 2500, "w-a"),
    },
    {
      index: 5,
      start: 5 * P,
      end: 6 * P,
      state: "failed",
      records: 0,
      errors: 0,
      lines: 0,
      // Its worker vanished and nobody claimed it again before the merge: drawn to the finish.
      attempts: [attempt(1, HOSTILE_WORKER, 45, undefined, undefined, 5 * P)],
      lastError: "the worker died while processing it",
      parts: [],
    },
  ];
  return {
    jobId: "job-0123456789abcdef01234567",
    status: "completed_with_errors",
    message:
      "partitions 3 (3 attempts), 5 (1 attempt) failed; their records are in neither output. Fix the cause and run `rerun job-0123456789abcdef01234567 --failed`",
    runAttempt: 1,
    input: {
      bucket: "input",
      object: "customers <2026>.csv",
      etag: "etag-1234",
      size: 6 * P,
      format: "csv",
      columns: ["customer_id", "age", "plan"],
      dataStart: 30,
    },
    model: {
      name: "churn-logreg",
      version: "1",
      descriptor: "models/churn/descriptor.json",
      sha256: "f".repeat(64),
    },
    spec: {
      input: { bucket: "input", object: "customers <2026>.csv", format: "csv" },
      output: { bucket: "output", prefix: "jobs", format: "jsonl" },
      model: { descriptor: "models/churn/descriptor.json" },
      partitionBytes: P,
      checkpointEvery: 2000,
      batchSize: 512,
      errorThreshold: {},
      maxAttempts: 3,
      visibilitySeconds: 60,
    },
    columns: ["customer_id", "churn_probability", "churn_label"],
    counts: {
      records: 42_000,
      errors: 10,
      lines: 42_010,
      partitions: 6,
      failedPartitions: [3, 5],
    },
    output: {
      object: "jobs/job-0123456789abcdef01234567/predictions.jsonl",
      bytes: 2_520_000,
      sha256: "1".repeat(64),
    },
    errorsOutput: {
      object: "jobs/job-0123456789abcdef01234567/errors.jsonl",
      bytes: 2400,
      sha256: "2".repeat(64),
    },
    timings: { createdAt: at(0), finishedAt: at(60), durationMs: 60_000 },
    partitions,
  };
}

/** Report input for the synthetic manifest: 10 bad records of 3 kinds, one hostile. */
export function syntheticReportInput(): JobReportInput {
  return {
    manifest: syntheticManifest(),
    errorReasons: new Map([
      ['column age: "x" is not a number', 3],
      ['column age: "y" is not a number', 2],
      ["expected 20 fields, got 3", 4],
      ["weird <script>alert(3)</script> reason", 1],
    ]),
    errorSamples: [
      { line: 12, reason: 'column age: "x" is not a number', record: "C0000011,x,basic" },
      { line: 40, reason: "expected 20 fields, got 3", record: "C0000039,,," },
      { line: 43, reason: 'column age: "y" is not a number', record: HOSTILE_RECORD },
      { line: 77, reason: "weird <script>alert(3)</script> reason", record: null },
    ],
  };
}

/**
 * A job rerun after an hour: run 1 (0–10 s) failed partition 1 twice, `rerun
 * --failed` an hour later (3610–3615 s) completed it. The report must cut the
 * idle hour and still list partition 1's failure.
 */
export function syntheticRerunManifest(): Manifest {
  const base = syntheticManifest();
  const iso = at;
  const part = (seq: number, epoch: number, records: number, when: number) => ({
    seq,
    epoch,
    records,
    bytes: records * 60,
    sha256: "ab".repeat(32),
    committedAt: iso(when),
    worker: "w-a",
  });
  const rerun: Manifest = {
    ...base,
    status: "completed",
    runAttempt: 2,
    counts: { ...base.counts, records: 20_000, errors: 0, partitions: 2, failedPartitions: [] },
    // Run 1: 0–10 s. The fix took an hour. Run 2: 3610–3615 s.
    timings: { createdAt: iso(0), finishedAt: iso(3615.5), durationMs: 3_615_500 },
    partitions: [
      {
        index: 0,
        start: 0,
        end: 1000,
        state: "done",
        records: 10_000,
        errors: 0,
        lines: 10_000,
        attempts: [
          {
            epoch: 1,
            worker: "w-a",
            startedAt: iso(0.2),
            endedAt: iso(10),
            outcome: "done",
            fromOffset: 0,
          },
        ],
        parts: [part(0, 1, 5000, 5), part(1, 1, 5000, 10)],
      },
      {
        index: 1,
        start: 1000,
        end: 2000,
        state: "done",
        records: 10_000,
        errors: 0,
        lines: 10_000,
        retryFromEpoch: 2,
        attempts: [
          {
            epoch: 1,
            worker: "w-b",
            startedAt: iso(0.2),
            endedAt: iso(4),
            outcome: "error",
            detail: "STORE_UNAVAILABLE: disk on fire",
            fromOffset: 1000,
          },
          {
            epoch: 2,
            worker: "w-b",
            startedAt: iso(4.5),
            endedAt: iso(9),
            outcome: "error",
            detail: "STORE_UNAVAILABLE: disk on fire",
            fromOffset: 1000,
          },
          {
            epoch: 3,
            worker: "w-c",
            startedAt: iso(3610),
            endedAt: iso(3615),
            outcome: "done",
            fromOffset: 1000,
          },
        ],
        parts: [part(0, 3, 10_000, 3615)],
      },
    ],
  };
  delete rerun.message;
  return rerun;
}
