/**
 * Images and Parquet on OCI, end to end against the loopback stand-in: a job over
 * the images under a prefix submitted to the bundled splitter function (listing →
 * manifest in Object Storage), a Parquet upload whose object event starts a job,
 * worker processes on the OCI adapters, NoSQL checkpoints, merge, one completion
 * message each on Streaming, `verify --backend oci` — and the same rows as the
 * embedded default scores from the same images and file.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { NosqlClient } from "oci-nosql";
import { ObjectStorageClient } from "oci-objectstorage";
import { NosqlCheckpointStore } from "../src/adapters/oci/checkpoint-store.ts";
import { createClient } from "../src/adapters/oci/clients.ts";
import { OciObjectStore } from "../src/adapters/oci/object-storage.ts";
import type { JobRecord } from "../src/core/records.ts";
import { readAll } from "./conformance/object-store.conformance.ts";
import { shapeLibrary, shapesModelDir } from "./helpers/media-fixture.ts";
import { OciProcesses, until } from "./helpers/oci-processes.ts";
import {
  churnModel,
  customerCsv,
  objectFile,
  readOutputs,
  runJob,
  tempDir,
} from "./helpers/pipeline-fixture.ts";
import {
  COMPARTMENT,
  type FullStandIn,
  fnCall,
  NAMESPACE,
  STREAM_ID,
  startFullStandIn,
} from "./oci-standin/index.ts";
import { standInAuth } from "./oci-standin/server.ts";

const IMAGES = 60;
let root: { dir: string; cleanup(): Promise<void> };
let stand: FullStandIn;
let procs: OciProcesses;
let objects: OciObjectStore;
let checkpoints: NosqlCheckpointStore;
let env: Record<string, string>;

before(async () => {
  root = await tempDir("oci-media-");
  if (process.env.OCI_TEST_LOGS) console.error(`logs in ${root.dir}`);
  const built = spawnSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], {
    encoding: "utf8",
  });
  assert.equal(built.status, 0, built.stderr);
  stand = await startFullStandIn({
    buckets: [
      { name: "input", events: true },
      { name: "media" },
      { name: "scores" },
      { name: "models" },
      { name: "state" },
    ],
  });
  procs = new OciProcesses(root.dir);
  const auth = standInAuth();
  objects = new OciObjectStore({
    client: createClient(ObjectStorageClient, auth, { endpoint: stand.server.url }),
    namespace: NAMESPACE,
  });
  checkpoints = new NosqlCheckpointStore({
    client: createClient(NosqlClient, auth, { endpoint: stand.server.url }),
    compartmentId: COMPARTMENT,
  });
  env = stand.env(root.dir);
  // Two worker "pods" serve every job below.
  for (const id of ["w-a", "w-b"])
    procs.node("dist/worker.js", ownCache({ ...env, WORKER_ID: id }), id);
});
after(async () => {
  procs?.killAll();
  await stand?.close();
  if (!process.env.OCI_TEST_LOGS) await root?.cleanup();
});

/**
 * The environment with a model cache of its own: the OCI model source's warm path
 * (re-hashing a cached model) stalls on model files over ~100 KB, so every process
 * here resolves its model cold, once (reported to the lead; src/adapters/oci is not
 * this branch's to change).
 */
function ownCache(e: Record<string, string>): Record<string, string> {
  return { ...e, BATCH_INFER_MODEL_CACHE: path.join(root.dir, `model-cache-${++caches}`) };
}
let caches = 0;

/** The completion message of `jobId` on Streaming. */
function completion(jobId: string) {
  return until(
    `the completion message of ${jobId}`,
    async () =>
      stand.streaming
        .messages(STREAM_ID)
        .map(
          (m) =>
            JSON.parse(m.value.toString("utf8")) as { eventType: string; data: { jobId: string } },
        )
        .find((e) => e.data.jobId === jobId && /job\.(completed|failed)/.test(e.eventType)),
    180_000,
  );
}

async function verifyOnOci(jobId: string, records: number): Promise<void> {
  const verified = await procs.cli(["verify", jobId, "--backend", "oci"], env);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  assert.match(
    verified.stdout,
    new RegExp(`^verified: each of the ${records.toLocaleString("en-US")} input records`, "m"),
  );
}

describe("media and Parquet on the OCI stand-in", () => {
  it("the images under a prefix: splitter fn lists them into a manifest, workers classify, Parquet output equals the embedded default's rows", async () => {
    // The model in Object Storage; its labels inline (the model source fetches the descriptor and its ONNX file).
    const dir = await shapesModelDir();
    const d = JSON.parse(await readFile(path.join(dir, "shapes.json"), "utf8"));
    const labels = (await readFile(path.join(dir, "labels.txt"), "utf8")).trim().split("\n");
    d.task.labels = labels;
    await objects.put("models", "shapes/descriptor.json", JSON.stringify(d));
    await objects.put("models", `shapes/${d.onnx}`, await readFile(path.join(dir, d.onnx)));
    const library = path.join(root.dir, "library");
    const written = await shapeLibrary(library, { count: IMAGES, seed: 44, bad: true });
    for (const name of [
      ...written.map((w) => w.name),
      "bad-empty.jpg",
      "bad-truncated.jpg",
      "bad-corrupt.png",
      "bad-text.jpg",
      "bad-bomb.png",
    ]) {
      await objects.put("media", `photos/${name}`, await readFile(path.join(library, name)));
    }
    const spec = { partitionRecords: 30, checkpointEvery: 16 };
    // Two instances of the splitter function (Fn scales them out): the same request to each.
    const [splitter, other] = await Promise.all(
      [1, 2].map(() =>
        procs.fn(
          "splitter",
          ownCache({
            ...env,
            BATCH_INFER_JOB_DEFAULTS: JSON.stringify({
              model: { descriptor: `oci://models@${NAMESPACE}/shapes/descriptor.json` },
              output: { bucket: "scores", format: "parquet" },
              ...spec,
            }),
          }),
        ),
      ),
    );
    const request = { spec: { input: { bucket: "media", prefix: "photos/" } } };
    const first = await fnCall(splitter as string, request);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.equal(first.json.created, true, JSON.stringify(first.json));
    assert.equal(first.json.partitions, Math.ceil((IMAGES + 5) / 30));
    const again = await fnCall(other as string, request);
    assert.equal(again.json.jobId, first.json.jobId, "the same listing is the same job");
    assert.equal(again.json.created, false);
    const listings = await objects.list("scores", { prefix: "jobs/_listings/" });
    assert.equal(listings.objects.length, 1, "the repeated listing was discarded");
    const jobId = String(first.json.jobId);

    const done = await completion(jobId);
    assert.match(done.eventType, /completed$/);
    const job = (await checkpoints.getJob(jobId))?.value as JobRecord;
    assert.equal(job.state, "completed", job.error);
    assert.deepEqual([job.result?.records, job.result?.errors], [IMAGES, 5]);
    await verifyOnOci(jobId, IMAGES + 5);

    // The same images on the embedded default (labels from labels.txt there).
    const local = await runJob({
      dataDir: path.join(root.dir, "embedded-images"),
      inputFile: library,
      descriptor: path.join(dir, "shapes.json"),
      spec,
    });
    const want = (await readOutputs(path.join(root.dir, "embedded-images"), local.job)).rows.map(
      (l) => JSON.parse(l) as { object: string; label: string; score: number },
    );
    const file = path.join(root.dir, "oci-predictions.parquet");
    const r = job.result;
    assert.ok(r);
    await writeFile(file, await readAll(await objects.read(r.output.bucket, r.output.object)));
    const db = await DuckDBInstance.create(":memory:");
    const duck = await db.connect();
    const got = (
      await duck.runAndReadAll(`SELECT object, label, score FROM read_parquet('${file}')`)
    ).getRowObjectsJson() as { object: string; label: string; score: number }[];
    duck.closeSync();
    assert.equal(got.length, want.length);
    got.forEach((g, i) => {
      const w = want[i];
      assert.ok(w);
      assert.equal(g.object.slice("photos/".length), w.object.replace(/^dirs\/[0-9a-f]+\//, ""));
      assert.equal(g.label, w.label);
      assert.equal(Math.fround(Number(g.score)), Math.fround(w.score));
    });
  });

  it("a Parquet upload: its object event starts the job, workers read row groups by ranged GETs, output equals the embedded default's bytes", async () => {
    const descriptor = await churnModel();
    const descriptorJson = JSON.parse(await readFile(descriptor, "utf8")) as { onnx: string };
    await objects.put("models", "churn/descriptor.json", await readFile(descriptor));
    await objects.put(
      "models",
      `churn/${descriptorJson.onnx}`,
      await readFile(path.join(path.dirname(descriptor), descriptorJson.onnx)),
    );
    const csv = await customerCsv(root.dir, 5000, 71);
    const pq = path.join(root.dir, "customers.parquet");
    const db = await DuckDBInstance.create(":memory:");
    const duck = await db.connect();
    await duck.run(
      `COPY (SELECT * FROM read_csv('${csv}')) TO '${pq}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 2048)`,
    );
    duck.closeSync();
    const spec = { partitionRecords: 2048, checkpointEvery: 1000 };
    const splitter = await procs.fn(
      "splitter",
      ownCache({
        ...env,
        BATCH_INFER_JOB_DEFAULTS: JSON.stringify({
          model: { descriptor: `oci://models@${NAMESPACE}/churn/descriptor.json` },
          output: { bucket: "scores" },
          ...spec,
        }),
      }),
    );
    const answers: Record<string, unknown>[] = [];
    stand.onEvent(async (event) => {
      const reply = await fnCall(splitter, event);
      answers.push(reply.json);
    });
    await objects.put("input", "daily/customers.parquet", await readFile(pq));
    const answer = await until("the upload event answered", async () => answers[0]);
    stand.onEvent(undefined);
    assert.equal(answer.action, "split", JSON.stringify(answer));
    const jobId = String(answer.jobId);
    assert.ok(Number(answer.partitions) >= 2, JSON.stringify(answer));
    const done = await completion(jobId);
    assert.match(done.eventType, /completed$/);
    const job = (await checkpoints.getJob(jobId))?.value as JobRecord;
    assert.equal(job.input.format, "parquet");
    assert.equal(job.result?.records, 5000);
    await verifyOnOci(jobId, 5000);
    const r = job.result;
    assert.ok(r);
    const onOci = await readAll(await objects.read(r.output.bucket, r.output.object));
    const local = await runJob({
      dataDir: path.join(root.dir, "embedded-pq"),
      inputFile: pq,
      descriptor,
      spec,
    });
    const embedded = await readFile(
      objectFile(
        path.join(root.dir, "embedded-pq"),
        local.job.result?.output.bucket ?? "",
        local.job.result?.output.object ?? "",
      ),
    );
    assert.ok(onOci.equals(embedded), "OCI output differs from the embedded default's");
  });
});
