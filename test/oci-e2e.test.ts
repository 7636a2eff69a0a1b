/**
 * The pipeline on OCI, end to end against the loopback stand-in: an upload to a
 * bucket with object events on → the Events delivery calls the bundled splitter
 * function over its Fn socket → partitions on OCI Queue → two worker processes
 * on the OCI adapters (one SIGKILLed mid-partition, a replacement started) →
 * NoSQL checkpoints → merge → one completion message on Streaming. The merged
 * output must be byte-identical to the embedded default's for the same input and model.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { NosqlClient } from "oci-nosql";
import { ObjectStorageClient } from "oci-objectstorage";
import completionSchema from "../events/schemas/completion-event.schema.json" with { type: "json" };
import { NosqlCheckpointStore } from "../src/adapters/oci/checkpoint-store.ts";
import { createClient } from "../src/adapters/oci/clients.ts";
import { OciObjectStore } from "../src/adapters/oci/object-storage.ts";
import type { JobRecord } from "../src/core/records.ts";
import { compileValidator } from "../src/core/schema.ts";
import { readAll } from "./conformance/object-store.conformance.ts";
import { OciProcesses, until } from "./helpers/oci-processes.ts";
import {
  churnModel,
  customerCsv,
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

const ROWS = 120_000;
const SPEC = { partitionBytes: 2 * 1024 * 1024, checkpointEvery: 2000, visibilitySeconds: 5 };

let root: { dir: string; cleanup(): Promise<void> };
let stand: FullStandIn;
let procs: OciProcesses;

before(async () => {
  root = await tempDir("oci-e2e-");
  const built = spawnSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], {
    encoding: "utf8",
  });
  assert.equal(built.status, 0, built.stderr);
  stand = await startFullStandIn();
  procs = new OciProcesses(root.dir);
});
after(async () => {
  procs?.killAll();
  await stand?.close();
  await root?.cleanup();
});

describe("the pipeline on the OCI stand-in", () => {
  it("upload → event → splitter fn → queue → workers (one killed) → NoSQL → merge → Streaming; output equals the embedded default's", async (t) => {
    const auth = standInAuth();
    const objects = new OciObjectStore({
      client: createClient(ObjectStorageClient, auth, { endpoint: stand.server.url }),
      namespace: NAMESPACE,
    });
    const checkpoints = new NosqlCheckpointStore({
      client: createClient(NosqlClient, auth, { endpoint: stand.server.url }),
      compartmentId: COMPARTMENT,
    });
    const descriptor = await churnModel();
    const csv = await customerCsv(root.dir, ROWS, 77);

    // The model lives in Object Storage, as a deployment would keep it.
    const descriptorJson = JSON.parse(await readFile(descriptor, "utf8")) as { onnx: string };
    await objects.put("models", "churn/descriptor.json", await readFile(descriptor));
    await objects.put(
      "models",
      `churn/${descriptorJson.onnx}`,
      await readFile(path.join(path.dirname(descriptor), descriptorJson.onnx)),
    );

    // The CLI signs as the operator (an administrator); each component with its own key,
    // under the deployment's least-privilege policies.
    const env = stand.env(root.dir);
    const splitter = await procs.fn("splitter", {
      ...stand.env(root.dir, {}, "splitter"),
      BATCH_INFER_JOB_DEFAULTS: JSON.stringify({
        model: { descriptor: `oci://models@${NAMESPACE}/churn/descriptor.json` },
        output: { bucket: "scores" },
        ...SPEC,
      }),
    });
    // What the Events rule's FAAS action does — at least once: every event is delivered twice.
    const answers: Record<string, unknown>[] = [];
    stand.onEvent(async (event) => {
      for (let i = 0; i < 2; i++) {
        const r = await fnCall(splitter, event);
        assert.equal(r.status, 200, JSON.stringify(r.json));
        answers.push(r.json);
      }
    });

    await objects.put("input", "daily/customers.csv", createReadStream(csv), {
      contentType: "text/csv",
    });
    await until("both event deliveries answered", async () =>
      answers.length >= 2 ? true : undefined,
    );
    const [first, second] = answers;
    assert.equal(first?.action, "split", JSON.stringify(first));
    assert.equal(first?.created, true);
    assert.equal(second?.jobId, first?.jobId, "a duplicate event must yield the same job");
    assert.equal(second?.created, false);
    const jobId = String(first?.jobId);
    const partitions = Number(first?.partitions);
    assert.ok(partitions >= 4, `expected several partitions, got ${partitions}`);

    // Two worker "pods"; kill the first one mid-partition, then start its replacement.
    const workerEnv = (id: string) => ({
      ...stand.env(root.dir, {}, "worker"),
      WORKER_ID: id,
      INFERENCE_THREAD: "0",
    });
    const victim = procs.node("dist/worker.js", workerEnv("w-a"), "worker w-a");
    procs.node("dist/worker.js", workerEnv("w-b"), "worker w-b");
    const caught = await until("w-a mid-partition", async () => {
      const rows = await checkpoints.listPartitions(jobId);
      return rows.find(
        (r) =>
          r.value.owner === "w-a" &&
          r.value.state === "running" &&
          r.value.offset > r.value.start &&
          r.value.offset < (r.value.start + r.value.end) / 2,
      )?.value;
    });
    victim.kill("SIGKILL");
    t.diagnostic(
      `killed w-a in partition ${caught.index} at byte ${caught.offset} of [${caught.start}, ${caught.end})`,
    );
    procs.node("dist/worker.js", workerEnv("w-c"), "worker w-c");

    // The CLI on OCI (~/.oci/config-style auth) while the job runs: per-partition state, rate, ETA.
    const running = await procs.cli(["status", jobId, "--backend", "oci", "--json"], env);
    assert.equal(running.code, 0, running.stderr);
    const status = JSON.parse(running.stdout) as {
      job: { state: string };
      progress: { rate: number; etaSeconds?: number; records: number };
      partitions: { index: number; attempts: unknown[] }[];
    };
    assert.equal(status.partitions.length, partitions);
    if (status.job.state === "running") {
      assert.ok(status.progress.rate > 0, "a running job shows its rate");
      assert.ok(
        status.progress.etaSeconds === undefined || status.progress.etaSeconds >= 0,
        "and an ETA",
      );
    }

    const completion = await until(
      "the completion message on Streaming",
      async () =>
        stand.streaming
          .messages(STREAM_ID)
          .map(
            (m) =>
              JSON.parse(m.value.toString("utf8")) as {
                eventType: string;
                data: { jobId: string };
              },
          )
          .find((e) => e.data.jobId === jobId && /job\.(completed|failed)/.test(e.eventType)),
      240_000,
    );
    assert.match(completion.eventType, /completed$/);
    assert.doesNotThrow(
      () => compileValidator("completion event", "INVALID_EVENT", completionSchema)(completion),
      "the message on Streaming is a valid completion event",
    );
    const job = (await checkpoints.getJob(jobId))?.value as JobRecord;
    assert.equal(job.state, "completed");
    const result = job.result;
    assert.ok(result);
    assert.equal(result.records, ROWS);
    const onOci = await readAll(await objects.read(result.output.bucket, result.output.object));

    // w-a's partition was lost with it and finished by another worker. (If w-a happened to finish
    // the partition between the poll and the kill, it died holding the next one: look for that.)
    const rows = (await checkpoints.listPartitions(jobId)).map((r) => r.value);
    const lostByVictim = rows.filter((p) =>
      p.attempts.some((a) => a.worker === "w-a" && a.outcome === "lost"),
    );
    assert.ok(lostByVictim.length >= 1, "a partition held by the killed worker was marked lost");
    for (const p of lostByVictim) {
      assert.equal(p.state, "done");
      assert.notEqual(p.attempts.at(-1)?.worker, "w-a", `partition ${p.index} taken over`);
    }

    // `verify --backend oci` proves the exactly-once property from the services.
    const verified = await procs.cli(["verify", jobId, "--backend", "oci"], env);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /^verified: each of the 120,000 input records/m);

    // `events --backend oci` reads the job's events back from the stream, deduplicated.
    const listed = await procs.cli(["events", "--job", jobId, "--backend", "oci", "--json"], env);
    assert.equal(listed.code, 0, listed.stderr);
    const types = listed.stdout
      .trim()
      .split("\n")
      .map((l) =>
        (JSON.parse(l) as { eventType: string }).eventType.replace("com.batchinfer.", ""),
      );
    assert.equal(types.filter((x) => x === "job.created").length, 1);
    assert.equal(types.filter((x) => x === "partition.done").length, partitions);
    assert.equal(types.filter((x) => x === "job.completed").length, 1);

    // The merger function on a finished job is idempotent: same answer, no second event.
    const merger = await procs.fn("merger", stand.env(root.dir, {}, "merger"));
    const again = await fnCall(merger, { jobId });
    assert.equal(again.status, 200, JSON.stringify(again.json));
    assert.equal(again.json.state, "completed");
    const completions = stand.streaming
      .messages(STREAM_ID)
      .filter((m) => m.key.toString("utf8") === jobId)
      .map((m) => JSON.parse(m.value.toString("utf8")) as { eventType: string })
      .filter((e) => /job\.(completed|failed)/.test(e.eventType));
    assert.equal(completions.length, 1, "exactly one completion message per job");

    // Every request the pipeline made was signed, and least privilege was enough for each component.
    assert.equal(stand.server.rejectedUnsigned, 0);
    assert.deepEqual(stand.server.denials, [], "no component was refused by IAM");

    // The embedded default on the same input and model gives the same bytes.
    const local = await runJob({
      dataDir: path.join(root.dir, "embedded"),
      inputFile: csv,
      descriptor,
      spec: SPEC,
    });
    const embedded = await readOutputs(path.join(root.dir, "embedded"), local.job);
    assert.equal(onOci.length, Buffer.byteLength(embedded.predictions));
    assert.ok(onOci.equals(Buffer.from(embedded.predictions)), "OCI output differs from embedded");
    t.diagnostic(
      `OCI stand-in: ${result.records} records, ${partitions} partitions, ${stand.server.requests.length} signed requests; output byte-identical to the embedded default`,
    );
  });
});
