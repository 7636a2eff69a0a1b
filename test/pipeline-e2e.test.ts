/**
 * End to end on the embedded default, with real worker processes, SQLite,
 * files and onnxruntime: scores equal an independent onnxruntime run, a
 * SIGKILLed or SIGTERMed worker changes nothing in the output.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as ort from "onnxruntime-node";
import {
  customerRecords,
  type FeatureSpec,
  featurize,
  writeDataset,
} from "../src/model/datasets.ts";
import { loadTabularModel } from "../src/model/descriptor.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import type { ProcessPool } from "../src/runner/process-pool.ts";
import {
  churnModel,
  customerCsv,
  readOutputs,
  runJob,
  tempDir,
} from "./helpers/pipeline-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;

before(async () => {
  root = await tempDir();
  descriptor = await churnModel();
});
after(() => root.cleanup());

/** Scores computed without the pipeline: generator records → featurize → one session.run. */
async function independentScores(
  rows: number,
  seed: number,
): Promise<{ ids: string[]; scores: Float32Array }> {
  const model = await loadTabularModel(descriptor);
  const width = model.width;
  const x = new Float32Array(rows * width);
  const ids: string[] = [];
  let r = 0;
  for (const rec of customerRecords(seed, rows)) {
    featurize(model.descriptor.features as FeatureSpec[], rec, x, r * width);
    ids.push(rec.customer_id);
    r++;
  }
  const session = await ort.InferenceSession.create(model.onnxBytes);
  const out = await session.run({
    [model.descriptor.input.name]: new ort.Tensor("float32", x, [rows, width]),
  });
  const first = model.descriptor.outputs[0];
  assert.ok(first);
  return { ids, scores: (out[first.name] as ort.Tensor).data as Float32Array };
}

describe("end to end on the embedded default", () => {
  it("scores every record exactly once, equal to an independent onnxruntime run (inference thread)", async () => {
    const rows = 6000;
    const input = await customerCsv(root.dir, rows, 21);
    const dataDir = path.join(root.dir, "e2e");
    // Workers inherit the environment: run this one with inference on its own thread.
    process.env.INFERENCE_THREAD = "1";
    const { job, split } = await runJob({
      dataDir,
      inputFile: input,
      descriptor,
      spec: { partitionBytes: 64 * 1024, checkpointEvery: 700, batchSize: 256 },
    }).finally(() => {
      delete process.env.INFERENCE_THREAD;
    });
    assert.equal(job.state, "completed", job.error);
    assert.ok(split.partitions >= 8, `expected many partitions, got ${split.partitions}`);
    const out = await readOutputs(dataDir, job);
    assert.equal(out.rows.length, rows);
    assert.equal(out.errorRows.length, 0);
    const expected = await independentScores(rows, 21);
    const model = await loadTabularModel(descriptor);
    const label = model.descriptor.label;
    assert.ok(label);
    out.rows.forEach((line, i) => {
      const row = JSON.parse(line) as Record<string, unknown>;
      assert.equal(row.customer_id, expected.ids[i], `row ${i} is out of order`);
      const want = expected.scores[i] as number;
      // Printed with 9 significant digits: it must parse back to the very same float32.
      assert.equal(
        Math.fround(row.churn_probability as number),
        want,
        `score of ${row.customer_id}`,
      );
      assert.equal(row.churn_label, label.labels[want >= label.threshold ? 1 : 0]);
    });
    // The manifest's checksum is the output's checksum.
    const manifest = JSON.parse(
      await readFile(
        path.join(dataDir, "buckets", "output", job.result?.manifest.object ?? ""),
        "utf8",
      ),
    ) as { output: { sha256: string }; counts: { records: number } };
    assert.equal(manifest.output.sha256, out.sha256);
    assert.equal(manifest.counts.records, rows);
  });

  it("JSONL input and CSV output give the same scores as CSV input", async () => {
    const rows = 1500;
    const jsonl = path.join(root.dir, "customers.jsonl");
    await writeDataset({ kind: "customers", rows, seed: 21, format: "jsonl", out: jsonl });
    const dataDir = path.join(root.dir, "jsonl");
    const { job } = await runJob({
      dataDir,
      inputFile: jsonl,
      descriptor,
      workers: 1,
      spec: {
        partitionBytes: 100 * 1024,
        checkpointEvery: 400,
        output: { bucket: "output", format: "csv" },
      },
    });
    assert.equal(job.state, "completed", job.error);
    const out = await readOutputs(dataDir, job);
    assert.equal(out.rows[0], "customer_id,churn_probability,churn_label");
    const expected = await independentScores(rows, 21);
    assert.equal(out.rows.length, rows + 1);
    out.rows.slice(1).forEach((line, i) => {
      const [id, score] = line.split(",");
      assert.equal(id, expected.ids[i]);
      assert.equal(Math.fround(Number(score)), expected.scores[i]);
    });
  });
});

/** Run a job and signal a busy worker once `fraction` of the records are committed. */
async function runAndSignal(
  dataDir: string,
  input: string,
  signal: NodeJS.Signals,
  fraction: number,
  total: number,
) {
  let pool: ProcessPool | undefined;
  const signalled: { worker: string; partition: number | undefined }[] = [];
  const result = await runJob({
    dataDir,
    inputFile: input,
    descriptor,
    spec: { partitionBytes: 8 * 1024 * 1024, checkpointEvery: 2000, batchSize: 512 },
    onPool: (p) => {
      pool = p;
    },
    onProgress: (p) => {
      if (!pool || signalled.length > 0 || p.records < total * fraction) return;
      // A worker mid-partition: it has committed a checkpoint of the partition in hand, not its last.
      const busy = pool.list().find(
        (m) =>
          m.busy &&
          m.committed &&
          !m.committed.done &&
          m.committed.partition === m.claim?.partition &&
          // Far enough from the end that the signal lands before the partition finishes:
          // past its last commit a worker may have scored up to 4 more intervals (a due
          // checkpoint is deferred while one is in flight: ~1.3 MB here), and it reads
          // a block (1 MiB) or two before it next turns to its event loop.
          m.committed.end - m.committed.offset > 4 * 1024 * 1024,
      );
      if (!busy) return;
      signalled.push({ worker: busy.id, partition: busy.claim?.partition });
      pool.signal(busy.id, signal);
    },
  });
  return { ...result, signalled };
}

describe("workers dying mid-partition", () => {
  const rows = 120_000;
  let input: string;
  let clean: Awaited<ReturnType<typeof readOutputs>>;

  before(async () => {
    input = await customerCsv(root.dir, rows, 5);
    const dataDir = path.join(root.dir, "clean");
    const { job } = await runJob({
      dataDir,
      inputFile: input,
      descriptor,
      spec: { partitionBytes: 8 * 1024 * 1024, checkpointEvery: 2000, batchSize: 512 },
    });
    assert.equal(job.state, "completed", job.error);
    clean = await readOutputs(dataDir, job);
    assert.equal(clean.rows.length, rows);
  });

  for (const sig of ["SIGKILL", "SIGTERM"] as const) {
    it(`${sig} of a busy worker: the job completes with output identical to a clean run`, async () => {
      const dataDir = path.join(root.dir, sig);
      const { job, signalled } = await runAndSignal(dataDir, input, sig, 0.2, rows);
      assert.equal(signalled.length, 1, "the test never caught a worker mid-partition");
      assert.equal(job.state, "completed", job.error);
      const out = await readOutputs(dataDir, job);
      assert.equal(out.sha256, clean.sha256, "output differs from the clean run");
      const ids = out.rows.map((l) => (JSON.parse(l) as { customer_id: string }).customer_id);
      assert.equal(new Set(ids).size, rows, "some id is duplicated or missing");

      // The partition in hand was resumed from its checkpoint by a later attempt.
      const p = openLocalPipeline(dataDir);
      try {
        const partition = await p.checkpoints.getPartition(
          job.jobId,
          signalled[0]?.partition ?? -1,
        );
        assert.ok(partition);
        const attempts = partition.value.attempts;
        const ended = sig === "SIGKILL" ? "lost" : "handed_back";
        assert.ok(
          attempts.some((a) => a.outcome === ended),
          `expected an attempt ${ended}: ${JSON.stringify(attempts)}`,
        );
        const last = attempts.at(-1);
        assert.equal(last?.outcome, "done");
        assert.ok(
          (last?.fromOffset ?? 0) > partition.value.start,
          "the last attempt should resume from a checkpoint, not from the partition start",
        );
      } finally {
        p.close();
      }
    });
  }
});
