/**
 * Least privilege, proved against the stand-in's IAM: every component signs with
 * its own key (its principal: a function's resource principal in its dynamic
 * group, the workers' OKE workload identity, the Events service, the Resource
 * Scheduler) and runs the calls its code makes, through the real adapters, under
 * the deployment's own policies (scripts/oci/iam-policies.json). Then, statement
 * by statement: without it, or with its verb one step weaker, the component that
 * needs it is refused. So the policies are enough, and none can be dropped or narrowed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ContainerEngineClient, models as ceModels } from "oci-containerengine";
import { DataScienceClient } from "oci-datascience";
import { ObjectStorageClient } from "oci-objectstorage";
import { createScalerHandler } from "../functions/scaler/handler.ts";
import { createFunctionHandler } from "../functions/wiring.ts";
import { ociAuthFromEnv } from "../src/adapters/oci/auth.ts";
import { createClient } from "../src/adapters/oci/clients.ts";
import { isNotAuthorizedOrNotFound } from "../src/adapters/oci/errors.ts";
import { OciObjectStore } from "../src/adapters/oci/object-storage.ts";
import { OkeDeploymentTarget } from "../src/adapters/oci/oke-replica-target.ts";
import { generateOkeToken } from "../src/adapters/oci/oke-token.ts";
import { type OciPipeline, openOciPipeline } from "../src/adapters/oci/pipeline.ts";
import { createLogger, silentLogger } from "../src/core/log.ts";
import { jobEvent, objectCreatedEvent } from "../src/pipeline/events.ts";
import { DEFAULT_POLICY } from "../src/pipeline/scaler.ts";
import { objectStoreScalerState } from "../src/pipeline/scaler-state.ts";
import { sampleJob, samplePartition } from "./conformance/checkpoint-store.conformance.ts";
import { churnModel, customerCsv } from "./helpers/pipeline-fixture.ts";
import { ADMIN_STATEMENT, parseStatement, weakerVerb } from "./oci-standin/iam.ts";
import {
  CLUSTER_ID,
  COMPARTMENT,
  type Component,
  type FullStandIn,
  K8S_NAMESPACE,
  policyVars,
  SCHEDULE_ID,
  startFullStandIn,
} from "./oci-standin/index.ts";
import {
  type KubernetesStandIn,
  mountContainerEngine,
  startKubernetesStandIn,
} from "./oci-standin/kubernetes.ts";
import { deployPolicies } from "./oci-standin/policies.ts";

const DEPLOYMENT = "batch-infer-worker";
const MODEL_ID = "ocid1.datasciencemodel.oc1.iad.churn";
const REGION = "us-ashburn-1";

let stand: FullStandIn;
let k8s: KubernetesStandIn;
let dir: string;
let admin: OciPipeline;
const pipelines = new Map<Component, OciPipeline>();
const jobId = "job-0123456789abcdef01234567";

/** One of a component's calls, named for the failure message. */
type Probe = [name: string, run: () => Promise<unknown>];

async function as(component: Component): Promise<OciPipeline> {
  let p = pipelines.get(component);
  if (!p) {
    p = await openOciPipeline(stand.env(dir, {}, component), { log: silentLogger });
    pipelines.set(component, p);
  }
  return p;
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "oci-iam-"));
  stand = await startFullStandIn({ corpusBucket: "corpus" });
  mountContainerEngine(stand.server, [
    {
      id: CLUSTER_ID,
      compartmentId: COMPARTMENT,
      region: REGION,
      endpoints: { publicEndpoint: "127.0.0.1:6443" },
      caPem: "-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n",
    },
  ]);
  k8s = await startKubernetesStandIn({
    trustedKeys: stand.server.keys,
    clusterId: CLUSTER_ID,
    region: REGION,
    deployments: [{ namespace: K8S_NAMESPACE, name: DEPLOYMENT, replicas: 0 }],
    iam: { oci: stand.server, compartmentId: COMPARTMENT },
  });
  admin = await as("admin");
  for (const [bucket, name] of [
    ["input", "in.csv"],
    ["corpus", "docs/a.jsonl"],
    ["models", "churn/descriptor.json"],
  ] as const) {
    await admin.store.put(bucket, name, "id,x\n1,2\n");
  }
  await admin.checkpoints.createJob(sampleJob(jobId));
  await admin.checkpoints.createPartitions([samplePartition(jobId, 0)]);
  stand.datascience.putModelArtifact(MODEL_ID, Buffer.from("zip"), "model.zip", COMPARTMENT);
});

after(async () => {
  await k8s?.close();
  await stand?.close();
  rmSync(dir, { recursive: true, force: true });
});

// ---- what each component's code calls -----------------------------------------------

function readsObjects(p: OciPipeline, bucket: string, name: string): Probe {
  return [
    `read ${bucket}/${name}`,
    async () => {
      assert.ok(await p.store.head(bucket, name), `${bucket}/${name} is there`);
      for await (const _ of await p.store.read(bucket, name, { start: 0, end: 2 }));
    },
  ];
}

function managesOutput(p: OciPipeline, prefix: string): Probe {
  return [
    `write, overwrite, list, read and delete in scores/${prefix}`,
    async () => {
      const name = `${prefix}/${Math.random().toString(16).slice(2)}`;
      const { etag } = await p.store.put("scores", name, "a", { ifNoneMatch: "*" });
      await p.store.put("scores", name, "b", { ifMatch: etag });
      await p.store.list("scores", { prefix });
      for await (const _ of await p.store.read("scores", name));
      await p.store.delete("scores", name);
    },
  ];
}

function dataScience(component: Component): Probe {
  return [
    "read the model artifact from Data Science",
    async () => {
      const auth = await ociAuthFromEnv(stand.env(dir, {}, component));
      const ds = createClient(DataScienceClient, auth, { endpoint: stand.endpoints.dataScience });
      await ds.headModelArtifact({ modelId: MODEL_ID });
      const res = await ds.getModelArtifactContent({ modelId: MODEL_ID });
      for await (const _ of res.value as AsyncIterable<unknown>);
    },
  ];
}

function publishes(p: OciPipeline): Probe {
  return [
    "emit an event on the stream",
    () => p.events.publish([jobEvent("com.batchinfer.job.created", { jobId }, "iam", {})]),
  ];
}

async function splitterProbes(component: "splitter" | "embed-splitter"): Promise<Probe[]> {
  const p = await as(component);
  const input: [string, string] =
    component === "splitter" ? ["input", "in.csv"] : ["corpus", "docs/a.jsonl"];
  const fresh = `job-${Math.random().toString(16).slice(2).padEnd(24, "0").slice(0, 24)}`;
  return [
    readsObjects(p, ...input),
    readsObjects(p, "models", "churn/descriptor.json"),
    [
      "create, read and update a job row",
      async () => {
        const { row } = await p.checkpoints.createJob(sampleJob(fresh));
        assert.ok(await p.checkpoints.getJob(fresh));
        await p.checkpoints.updateJob(fresh, row.value, row.version);
      },
    ],
    [
      "create partition rows, list them and reset one (rerun of failed partitions)",
      async () => {
        await p.checkpoints.createPartitions([samplePartition(fresh, 0)]);
        const [row] = await p.checkpoints.listPartitions(fresh);
        assert.ok(row);
        await p.checkpoints.updatePartition(row.value, row.version);
      },
    ],
    ["enqueue partitions", () => p.queue.send([{ body: `{"probe":"${component}"}` }])],
    publishes(p),
    dataScience(component),
    // The refresh keeps its corpus head, plans and generations in the output bucket.
    ...(component === "embed-splitter" ? [managesOutput(p, "embeddings")] : []),
  ];
}

async function mergerProbes(): Promise<Probe[]> {
  const p = await as("merger");
  return [
    managesOutput(p, "merged"),
    [
      "read and update the job row",
      async () => {
        const row = await p.checkpoints.getJob(jobId);
        assert.ok(row);
        await p.checkpoints.updateJob(jobId, row.value, row.version);
      },
    ],
    ["read the partitions (query)", () => p.checkpoints.readPartitions(jobId)],
    publishes(p),
  ];
}

async function workerProbes(): Promise<Probe[]> {
  const p = await as("worker");
  return [
    readsObjects(p, "input", "in.csv"),
    readsObjects(p, "corpus", "docs/a.jsonl"),
    readsObjects(p, "models", "churn/descriptor.json"),
    managesOutput(p, "parts"),
    [
      "read and update the job row",
      async () => {
        const row = await p.checkpoints.getJob(jobId);
        assert.ok(row);
        await p.checkpoints.updateJob(jobId, row.value, row.version);
      },
    ],
    [
      "claim and checkpoint a partition, read all partitions",
      async () => {
        const row = await p.checkpoints.getPartition(jobId, 0);
        assert.ok(row);
        await p.checkpoints.updatePartition(row.value, row.version);
        await p.checkpoints.readPartitions(jobId);
      },
    ],
    [
      "receive, heartbeat and delete a partition message",
      async () => {
        await admin.queue.send([{ body: "work" }]);
        const [m] = await p.queue.receive({ max: 1, visibilitySeconds: 1 });
        assert.ok(m, "a message to receive");
        await p.queue.changeVisibility(m.receipt, 1);
        await p.queue.delete(m.receipt);
      },
    ],
    ["enqueue the merge task", () => p.queue.send([{ body: "merge" }])],
    [
      "park a poison message on the parking queue",
      async () => {
        await admin.queue.send([{ body: "poison" }]);
        const [m] = await p.queue.receive({ max: 1, visibilitySeconds: 1 });
        assert.ok(m, "a message to park");
        await p.queue.deadLetter(m.receipt, "probe");
      },
    ],
    publishes(p),
    dataScience("worker"),
  ];
}

async function scalerProbes(): Promise<Probe[]> {
  const p = await as("scaler");
  const auth = await ociAuthFromEnv(stand.env(dir, {}, "scaler"));
  return [
    ["read both queues' depth", () => p.queue.stats()],
    [
      "keep its last-active time in the state bucket (first write creates it)",
      async () => {
        await admin.store.delete("state", "scaler/state.json");
        const state = objectStoreScalerState(p.store, "state");
        await state.get();
        await state.set(Date.now());
        await state.get();
        await state.set(Date.now() + 1);
      },
    ],
    [
      "look the cluster up and get its kubeconfig",
      async () => {
        const ce = createClient(ContainerEngineClient, auth, {
          endpoint: stand.endpoints.containerEngine,
        });
        await ce.getCluster({ clusterId: CLUSTER_ID });
        await ce.createKubeconfig({
          clusterId: CLUSTER_ID,
          createClusterKubeconfigContentDetails: {
            endpoint: ceModels.CreateClusterKubeconfigContentDetails.Endpoint.PublicEndpoint,
          },
        });
      },
    ],
    [
      "read the Deployment's scale with its OKE token",
      () =>
        new OkeDeploymentTarget({
          apiServer: k8s.url,
          namespace: K8S_NAMESPACE,
          deployment: DEPLOYMENT,
          token: async () =>
            (await generateOkeToken({ auth, clusterId: CLUSTER_ID, region: REGION })).token,
        }).current(),
    ],
  ];
}

/** What OCI services acting for the tenancy do: invoke a function. */
function serviceProbes(who: "events" | "scheduler"): Probe[] {
  const principal =
    who === "events"
      ? ({ kind: "service", name: "cloudEvents" } as const)
      : ({ kind: "resourceschedule", id: SCHEDULE_ID, compartmentId: COMPARTMENT } as const);
  return [
    [
      `${who} invokes a function`,
      async () => {
        assert.ok(
          stand.server.allows({ keyId: who, principal }, "InvokeFunction", COMPARTMENT),
          "InvokeFunction refused",
        );
      },
    ],
  ];
}

/** The calls of the component a policy's statements are for. */
async function probesFor(component: string): Promise<Probe[]> {
  switch (component) {
    case "splitter":
      return splitterProbes("splitter");
    case "embedding splitter":
      return splitterProbes("embed-splitter");
    case "merger":
      return mergerProbes();
    case "scaler":
      return scalerProbes();
    case "workers (OKE workload identity)":
      return workerProbes();
    case "Events service":
      return serviceProbes("events");
    case "Resource Scheduler":
      return serviceProbes("scheduler");
    default:
      throw new Error(`no probes for component "${component}": add them here`);
  }
}

/** Run every probe; the names of those that failed, with why. */
async function failures(probes: Probe[]): Promise<string[]> {
  const failed: string[] = [];
  for (const [name, run] of probes) {
    try {
      await run();
    } catch (err) {
      failed.push(`${name}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  return failed;
}

const deployed = () => deployPolicies(policyVars({ corpusBucket: "corpus" })).statements;

function enforce(statements: string[]): void {
  stand.iam?.setStatements([ADMIN_STATEMENT, ...statements]);
}

describe("least-privilege IAM, enforced by the stand-in", () => {
  it("every component's calls succeed under the deployment's policies", async () => {
    enforce(stand.deployStatements);
    const components = [...new Set(deployed().map((s) => s.component))];
    assert.ok(components.length >= 7, components.join(", "));
    for (const component of components) {
      const denialsBefore = stand.server.denials.length;
      assert.deepEqual(await failures(await probesFor(component)), [], component);
      assert.deepEqual(stand.server.denials.slice(denialsBefore), [], `${component}: refused`);
    }
  });

  it("without any one statement, or with its verb one step weaker, the component that needs it is refused", async () => {
    const all = deployed();
    const weakened: string[] = [];
    for (const [i, s] of all.entries()) {
      const others = all.filter((_, j) => j !== i).map((x) => x.text);
      const variants: [string, string[]][] = [["without", others]];
      const weaker = weakerVerb(parseStatement(s.text).verb);
      if (weaker) {
        const narrowed = s.text.replace(/ to (inspect|read|use|manage) /, ` to ${weaker} `);
        variants.push([`with "${weaker}"`, [...others, narrowed]]);
      }
      for (const [how, statements] of variants) {
        enforce(statements);
        const denialsBefore = stand.server.denials.length;
        const failed = await failures(await probesFor(s.component));
        const refused = stand.server.denials.length > denialsBefore;
        assert.ok(
          failed.length > 0 && refused,
          `${s.component} still works ${how} "${s.text}": the statement is not needed (or broader than needed)`,
        );
        if (how !== "without") weakened.push(`${s.policy}: ${failed[0]}`);
      }
    }
    enforce(stand.deployStatements);
    assert.ok(weakened.length > 20, `${weakened.length} statements checked one verb weaker`);
  });

  it("the scaler function scales the workers under its policy: it reads both queues' depth (the parking queue included)", async () => {
    enforce(stand.deployStatements);
    const p = await as("scaler");
    const auth = await ociAuthFromEnv(stand.env(dir, {}, "scaler"));
    await admin.queue.send([{ body: "a" }, { body: "b" }]);
    const logged: string[] = [];
    const handler = createScalerHandler(
      {
        queue: p.queue,
        target: new OkeDeploymentTarget({
          apiServer: k8s.url,
          namespace: K8S_NAMESPACE,
          deployment: DEPLOYMENT,
          token: async () =>
            (await generateOkeToken({ auth, clusterId: CLUSTER_ID, region: REGION })).token,
        }),
        log: createLogger({ level: "info", write: (line) => logged.push(line) }),
        now: Date.now,
        state: objectStoreScalerState(p.store, "state"),
        identity: { principal: p.identity.principal },
      },
      { ...DEFAULT_POLICY, maxReplicas: 2 },
    );
    const answer = await handler({});
    assert.ok(answer.visible >= 2, JSON.stringify(answer));
    const decision = logged.map((l) => JSON.parse(l)).find((l) => l.msg === "scaler decision");
    assert.match(
      decision?.identity?.principal ?? "",
      /scaleruser/,
      "the decision log names the identity",
    );
    assert.equal(answer.applied, true);
    assert.equal(k8s.replicas(K8S_NAMESPACE, DEPLOYMENT), 2);
    // Drain what this test enqueued, so the worker probes find only their own messages.
    for (;;) {
      const got = await admin.queue.receive({ max: 20, visibilitySeconds: 1 });
      if (got.length === 0) break;
      for (const m of got) await admin.queue.delete(m.receipt);
    }
  });

  it("a refusal reads as a configuration error naming the principal and the resource", async () => {
    const withoutWorkerOutput = stand.deployStatements.filter(
      (s) => !(s.includes("any-user to manage objects") && s.includes("'scores'")),
    );
    enforce(withoutWorkerOutput);
    try {
      const p = await as("worker");
      await assert.rejects(p.store.head("scores", "anything"), (err: Error) => {
        assert.ok(isNotAuthorizedOrNotFound(err), String(err));
        assert.match(err.message, /object scores\/anything/);
        assert.match(err.message, /user ocid1\.user\.oc1\.\.workeruser/);
        return true;
      });
    } finally {
      enforce(stand.deployStatements);
    }
  });

  it("the splitter function answers an upload it may not read with a retryable failure (Fn 502), never a 200 rejection", async () => {
    const descriptor = await churnModel();
    const d = JSON.parse(await readFile(descriptor, "utf8")) as { onnx: string };
    await admin.store.put("models", "real/descriptor.json", await readFile(descriptor));
    await admin.store.put(
      "models",
      `real/${d.onnx}`,
      await readFile(path.join(path.dirname(descriptor), d.onnx)),
    );
    const csv = await customerCsv(dir, 200, 5);
    const { etag } = await admin.store.put("input", "upload.csv", await readFile(csv));
    const handler = createFunctionHandler({
      ...stand.env(dir, {}, "splitter"),
      BATCH_INFER_FUNCTION: "splitter",
      LOG_LEVEL: "silent",
      BATCH_INFER_JOB_DEFAULTS: JSON.stringify({
        model: { descriptor: "oci://models@standin-ns/real/descriptor.json" },
        output: { bucket: "scores" },
      }),
    });
    const event = objectCreatedEvent({
      bucket: "input",
      object: "upload.csv",
      etag,
      eventId: "e-1",
    });
    enforce(
      stand.deployStatements.filter(
        (s) => !(s.includes("splitter-fn to read objects") && s.includes("'input'")),
      ),
    );
    try {
      // Thrown: Fn answers 502 and the caller retries. A { ok: false } answer would drop the upload for good.
      await assert.rejects(
        handler(event),
        /STORE_UNAVAILABLE: .*object input\/upload\.csv .*not authorized/,
      );
    } finally {
      enforce(stand.deployStatements);
    }
    const answer = (await handler(event)) as { action?: string; created?: boolean };
    assert.equal(answer.action, "split", JSON.stringify(answer));
  });

  it("retries a refusal until a policy change reaches it, within the window", async () => {
    const withoutRead = stand.deployStatements.filter(
      (s) => !(s.includes("any-user to read objects") && s.includes("'input'")),
    );
    enforce(withoutRead);
    const auth = await ociAuthFromEnv(stand.env(dir, {}, "worker"));
    let waits = 0;
    const store = new OciObjectStore({
      client: createClient(ObjectStorageClient, auth, { endpoint: stand.endpoints.objectStorage }),
      namespace: "standin-ns",
      authzRetry: {
        windowMs: 15 * 60_000,
        // No real waiting: the "policy propagates" on the third wait.
        sleep: async () => {
          if (++waits === 3) enforce(stand.deployStatements);
        },
      },
    });
    try {
      const info = await store.head("input", "in.csv");
      assert.ok(info, "found once the grant arrived");
      assert.equal(waits, 3);
    } finally {
      enforce(stand.deployStatements);
    }
  });
});
