/**
 * The bundled functions on the OCI backend, started exactly as Fn starts them
 * (FN_FORMAT=http-stream, FN_LISTENER=unix:...) and called over the socket with
 * POST /call, Fn-Call-Id and Fn-Deadline: the splitter with real upload
 * envelopes from the stand-in (valid, malformed, wrong bucket, missing object,
 * empty object, duplicate delivery, a manual spec), the merger, and the scaler
 * patching the OKE Deployment's scale subresource with an OKE token.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type OciPipeline, openOciPipeline } from "../src/adapters/oci/pipeline.ts";
import { silentLogger } from "../src/core/log.ts";
import { churnModel, customerCsv, tempDir } from "./helpers/pipeline-fixture.ts";
import { buildZip } from "./helpers/zip-writer.ts";
import { type FullStandIn, fnCall, NAMESPACE, startFullStandIn } from "./oci-standin/index.ts";
import { type KubernetesStandIn, startKubernetesStandIn } from "./oci-standin/kubernetes.ts";
import { testCredentials } from "./oci-standin/server.ts";

const CLUSTER = "ocid1.cluster.oc1.iad.standin";
let root: { dir: string; cleanup(): Promise<void> };
let stand: FullStandIn;
let kube: KubernetesStandIn;
let oci: OciPipeline;
const children: ChildProcess[] = [];

before(async () => {
  root = await tempDir("oci-fn-");
  const built = spawnSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], {
    encoding: "utf8",
  });
  assert.equal(built.status, 0, built.stderr);
  stand = await startFullStandIn();
  const creds = testCredentials();
  kube = await startKubernetesStandIn({
    trustedKeys: new Map([[creds.keyId, creds.publicKeyPem]]),
    clusterId: CLUSTER,
    region: creds.region,
    deployments: [{ namespace: "batch-infer", name: "batch-infer-worker", replicas: 0 }],
  });
  oci = await openOciPipeline(stand.env(root.dir), { log: silentLogger });
});
after(async () => {
  for (const c of children) c.kill("SIGKILL");
  await kube?.close();
  await stand?.close();
  await root?.cleanup();
});

/** Start dist/functions.cjs as Fn would, on the OCI backend; resolves once its socket is up. */
async function startFunction(name: string, extra: Record<string, string> = {}) {
  const sock = path.join(root.dir, `${name}-${children.length}`, "lsnr.sock");
  mkdirSync(path.dirname(sock), { recursive: true });
  const child = spawn(process.execPath, ["dist/functions.cjs"], {
    env: {
      ...process.env,
      ...stand.env(root.dir),
      LOG_LEVEL: "error",
      FN_FORMAT: "http-stream",
      FN_LISTENER: `unix:${sock}`,
      BATCH_INFER_FUNCTION: name,
      ...extra,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  for (let i = 0; i < 400 && !existsSync(sock); i++) {
    if (child.exitCode !== null) throw new Error(`function exited: ${stderr}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(existsSync(sock), `socket never appeared: ${stderr}`);
  return sock;
}

function rejection(json: Record<string, unknown>): {
  code: string;
  message: string;
  schemaPath?: string;
} {
  assert.equal(json.ok, false, `expected a rejection, got ${JSON.stringify(json)}`);
  return json.error as { code: string; message: string; schemaPath?: string };
}

describe("functions on the OCI backend over the Fn contract", () => {
  it("splitter: upload envelopes from the stand-in — valid, duplicate, malformed, wrong bucket, missing and empty objects, a manual spec", async () => {
    const descriptor = await churnModel();
    const d = JSON.parse(await readFile(descriptor, "utf8")) as { onnx: string };
    await oci.store.put("models", "churn/descriptor.json", await readFile(descriptor));
    await oci.store.put(
      "models",
      `churn/${d.onnx}`,
      await readFile(path.join(path.dirname(descriptor), d.onnx)),
    );
    const sock = await startFunction("splitter", {
      BATCH_INFER_INPUT_BUCKETS: "input",
      BATCH_INFER_JOB_DEFAULTS: JSON.stringify({
        model: { descriptor: `oci://models@${NAMESPACE}/churn/descriptor.json` },
        output: { bucket: "scores" },
        partitionBytes: 64 * 1024,
      }),
    });
    const emitted: object[] = [];
    stand.onEvent(async (e) => {
      emitted.push(e);
    });
    const waitEvents = async (n: number) => {
      for (let i = 0; i < 400 && emitted.length < n; i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.ok(emitted.length >= n, "the stand-in emitted the upload event");
    };

    // Valid, then the same envelope again (at-least-once delivery): one job.
    await oci.store.put(
      "input",
      "batch/c.csv",
      await readFile(await customerCsv(root.dir, 3000, 5)),
    );
    await waitEvents(1);
    const upload = emitted[0] as { data: { resourceName: string } };
    assert.equal(upload.data.resourceName, "batch/c.csv");
    const first = await fnCall(sock, upload);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.equal(first.json.action, "split");
    assert.equal(first.json.created, true);
    const jobId = String(first.json.jobId);
    const again = await fnCall(sock, upload);
    assert.equal(again.json.jobId, jobId);
    assert.equal(again.json.created, false);
    const stats = await oci.queue.stats();
    assert.equal(stats.visible, Number(first.json.partitions), "each partition enqueued once");

    // Malformed: the schema path that failed is named, nothing written.
    const jobsBefore = (await oci.checkpoints.listJobs()).length;
    const malformed = rejection(
      (await fnCall(sock, { ...upload, data: { resourceName: 42 } })).json,
    );
    assert.equal(malformed.code, "INVALID_EVENT");
    assert.ok(malformed.schemaPath, "names the failing schema path");

    // Wrong bucket (the models bucket, and the output bucket which would loop).
    await oci.store.put("models", "notes.csv", "a,b\n1,2\n");
    const wrong = structuredClone(upload) as {
      data: { resourceName: string; additionalDetails: { bucketName: string } };
    };
    wrong.data.additionalDetails.bucketName = "models";
    wrong.data.resourceName = "notes.csv";
    const wrongBucket = rejection((await fnCall(sock, wrong)).json);
    assert.equal(wrongBucket.code, "INVALID_EVENT");
    assert.match(wrongBucket.message, /not an input bucket/);
    wrong.data.additionalDetails.bucketName = "scores";
    assert.match(rejection((await fnCall(sock, wrong)).json).message, /output bucket/);

    // Missing object (deleted after the upload event) and an empty object.
    await oci.store.put("input", "gone.csv", "x\n1\n");
    await waitEvents(2);
    const goneEvent = emitted[1];
    await oci.store.delete("input", "gone.csv");
    const missing = rejection((await fnCall(sock, goneEvent)).json);
    assert.equal(missing.code, "NOT_FOUND");
    await oci.store.put("input", "empty.csv", "");
    await waitEvents(3);
    const empty = rejection((await fnCall(sock, emitted[2])).json);
    assert.equal(empty.code, "INVALID_ARGUMENT");
    assert.match(empty.message, /no records/);
    assert.equal(
      (await oci.checkpoints.listJobs()).length,
      jobsBefore,
      "no job for rejected inputs",
    );

    // A manual rerun request (fn invoke) for the job: no failed partitions yet, nothing to do.
    const manual = await fnCall(sock, {
      spec: { input: { bucket: "input", object: "batch/c.csv" } },
    });
    assert.equal(manual.json.jobId, jobId, "a manual spec for the same input is the same job");

    // A rerun of the whole job: same spec, a new runTag → a new job; the same runTag twice → one job.
    const rerun = await fnCall(sock, { rerun: jobId, runTag: "nightly-2" });
    assert.equal(rerun.json.rerunOf, jobId, JSON.stringify(rerun.json));
    assert.equal(rerun.json.created, true);
    assert.notEqual(rerun.json.jobId, jobId);
    const rerunAgain = await fnCall(sock, { rerun: jobId, runTag: "nightly-2" });
    assert.equal(rerunAgain.json.jobId, rerun.json.jobId);
    assert.equal(rerunAgain.json.created, false);
    const rerunJob = (await oci.checkpoints.getJob(String(rerun.json.jobId)))?.value;
    assert.equal(rerunJob?.spec.runTag, "nightly-2");
    assert.equal(
      rejection((await fnCall(sock, { rerun: "job-0123456789abcdef01234567" })).json).code,
      "NOT_FOUND",
    );

    // A manual spec naming a Data Science model OCID: the artifact zip is fetched and cached.
    const modelId = "ocid1.datasciencemodel.oc1.iad.churnv1";
    stand.datascience.putModelArtifact(
      modelId,
      buildZip([
        { name: "descriptor.json", data: await readFile(descriptor) },
        { name: d.onnx, data: await readFile(path.join(path.dirname(descriptor), d.onnx)) },
      ]),
    );
    const byOcid = await fnCall(sock, {
      spec: { input: { bucket: "input", object: "batch/c.csv" }, model: { descriptor: modelId } },
    });
    assert.equal(byOcid.json.action, "split", JSON.stringify(byOcid.json));
    assert.equal(byOcid.json.created, true, "same input, another model: a new job");
    const ocidJob = (await oci.checkpoints.getJob(String(byOcid.json.jobId)))?.value;
    assert.equal(ocidJob?.model.descriptor, modelId, "the job records the OCID, not a cache path");
    stand.onEvent(undefined);
  });

  it("merger: rejects bad input, NOT_FOUND for an unknown job", async () => {
    const sock = await startFunction("merger");
    const bad = rejection((await fnCall(sock, { jobId: "nope" })).json);
    assert.equal(bad.code, "INVALID_EVENT");
    assert.equal(bad.schemaPath, "#/$defs/jobId/pattern");
    assert.equal(
      rejection((await fnCall(sock, { jobId: "job-0123456789abcdef01234567" })).json).code,
      "NOT_FOUND",
    );
  });

  it("scaler: dry run reports and changes nothing; a real run patches the Deployment's scale with an OKE token", async () => {
    await oci.queue.send(
      Array.from({ length: 3 }, (_, i) => ({ body: `{"x":${i}}`, channel: "c" })),
    );
    const sock = await startFunction("scaler", {
      BATCH_INFER_OKE_CLUSTER_ID: CLUSTER,
      BATCH_INFER_K8S_API: kube.url,
      BATCH_INFER_SCALING: JSON.stringify({ maxReplicas: 5 }),
    });
    const stats = await oci.queue.stats();
    const badFlag = rejection((await fnCall(sock, { dryRun: "yes" })).json);
    assert.equal(badFlag.schemaPath, "#/$defs/scale/properties/dryRun/type");
    assert.equal(kube.history.length, 0, "a rejected request changes nothing");
    const dry = await fnCall(sock, { dryRun: true });
    assert.equal(dry.status, 200, JSON.stringify(dry.json));
    assert.equal(dry.json.dryRun, true);
    assert.equal(dry.json.applied, false);
    assert.equal(dry.json.visible, stats.visible);
    assert.ok(typeof dry.json.reason === "string" && dry.json.reason.length > 0, "says why");
    assert.equal(kube.replicas("batch-infer", "batch-infer-worker"), 0);
    const real = await fnCall(sock, {});
    assert.equal(real.json.applied, true, JSON.stringify(real.json));
    const want = Math.min(5, stats.visible + stats.inFlight);
    assert.equal(real.json.replicas, want);
    assert.equal(kube.replicas("batch-infer", "batch-infer-worker"), want);
    assert.equal(kube.history.at(-1)?.keyId, testCredentials().keyId, "authenticated by OKE token");
  });
});
