/**
 * The whole OCI stand-in for end-to-end tests: one signed-request server with
 * Object Storage, Queue, NoSQL, Streaming and Data Science mounted, each service
 * on its own endpoint (the two queues in different cells, the stream on its
 * messages endpoint), the resources a deployment creates (buckets with object
 * events, the partition queue with its DLQ and the parking queue, the two
 * tables, the stream), and the environment a function or worker needs to reach them.
 *
 * IAM is enforced by default with the deployment's own policies
 * (scripts/oci/iam-policies.json): each component signs with its own key, mapped
 * to its principal (a resource principal in its dynamic group for a function,
 * OKE workload identity for the workers); the test harness and the CLI sign as
 * a tenancy administrator. Object events reach the splitter only if the policies
 * let the Events service invoke it.
 */
import http from "node:http";
import path from "node:path";
import { registerDataScience } from "./datascience.ts";
import { ADMIN_STATEMENT, IamPolicies, type Principal } from "./iam.ts";
import { registerNosql } from "./nosql.ts";
import { registerObjectStorage } from "./object-storage.ts";
import { deployPolicies } from "./policies.ts";
import { registerQueue } from "./queue.ts";
import { type OciStandIn, startStandIn, testCredentials } from "./server.ts";
import { registerStreaming } from "./streaming.ts";

export const NAMESPACE = "standin-ns";
export const COMPARTMENT = "ocid1.compartment.oc1..standin";
export const QUEUE_ID = "ocid1.queue.oc1.iad.partitions";
export const PARKING_QUEUE_ID = "ocid1.queue.oc1.iad.parking";
export const STREAM_ID = "ocid1.stream.oc1.iad.completions";
export const CLUSTER_ID = "ocid1.cluster.oc1.iad.standin";
export const K8S_NAMESPACE = "batch-infer";
export const K8S_SERVICE_ACCOUNT = "batch-infer-worker";
export const SCHEDULE_ID = "ocid1.resourceschedule.oc1.iad.backstop";
/** Function OCIDs, as the deploy script would capture them. */
export const FUNCTION_IDS = {
  splitter: "ocid1.fnfunc.oc1.iad.splitter",
  "embed-splitter": "ocid1.fnfunc.oc1.iad.embedsplitter",
  merger: "ocid1.fnfunc.oc1.iad.merger",
  scaler: "ocid1.fnfunc.oc1.iad.scaler",
} as const;

/** Who signs: the harness/CLI (`admin`), a function, or the workers. */
export type Component = "admin" | keyof typeof FUNCTION_IDS | "worker";

/** The principal each component's key signs as. */
export function componentPrincipal(component: Component): Principal {
  if (component === "admin") {
    return { kind: "user", id: testCredentials().user, groups: ["Administrators"] };
  }
  if (component === "worker") {
    return {
      kind: "workload",
      namespace: K8S_NAMESPACE,
      serviceAccount: K8S_SERVICE_ACCOUNT,
      clusterId: CLUSTER_ID,
      compartmentId: COMPARTMENT,
    };
  }
  return {
    kind: "resource",
    type: "fnfunc",
    id: FUNCTION_IDS[component],
    compartmentId: COMPARTMENT,
  };
}

/** The components that sign with keys of their own. */
export const COMPONENTS: Component[] = [
  "admin",
  "splitter",
  "embed-splitter",
  "merger",
  "scaler",
  "worker",
];

/** Placeholder values of scripts/oci/iam-policies.json for this stand-in. */
export function policyVars(options: { corpusBucket?: string } = {}): Record<string, string> {
  return {
    PREFIX: "batch-infer",
    DG_PREFIX: "",
    COMPARTMENT_OCID: COMPARTMENT,
    OKE_COMPARTMENT_OCID: COMPARTMENT,
    DATA_SCIENCE_COMPARTMENT_OCID: COMPARTMENT,
    OKE_CLUSTER_OCID: CLUSTER_ID,
    K8S_NAMESPACE,
    K8S_SERVICE_ACCOUNT,
    INPUT_BUCKET: "input",
    OUTPUT_BUCKET: "scores",
    MODELS_BUCKET: "models",
    STATE_BUCKET: "state",
    ...(options.corpusBucket ? { CORPUS_BUCKET: options.corpusBucket } : {}),
    JOBS_TABLE: "batch_infer_jobs",
    PARTITIONS_TABLE: "batch_infer_partitions",
    QUEUE_OCID: QUEUE_ID,
    PARKING_QUEUE_OCID: PARKING_QUEUE_ID,
    STREAM_OCID: STREAM_ID,
    SPLITTER_FUNCTION_OCID: FUNCTION_IDS.splitter,
    EMBED_SPLITTER_FUNCTION_OCID: FUNCTION_IDS["embed-splitter"],
    MERGER_FUNCTION_OCID: FUNCTION_IDS.merger,
    SCALER_FUNCTION_OCID: FUNCTION_IDS.scaler,
    SCALER_SCHEDULE_OCID: SCHEDULE_ID,
  };
}

/** Deliver one Events envelope to the function an Events rule targets (an Fn call). */
export type EventDelivery = (event: object) => Promise<void>;

/** A running stand-in with every service the pipeline uses. */
export interface FullStandIn {
  server: OciStandIn;
  objectStorage: ReturnType<typeof registerObjectStorage>;
  queue: ReturnType<typeof registerQueue>;
  nosql: ReturnType<typeof registerNosql>;
  streaming: ReturnType<typeof registerStreaming>;
  datascience: ReturnType<typeof registerDataScience>;
  /** Events the object store emitted, in order. */
  emitted: object[];
  /** Route object events to a function (what an Events rule's FAAS action does). */
  onEvent(delivery: EventDelivery | undefined): void;
  /**
   * Environment for a function, worker or CLI process signing as `as` (default the
   * administrator): writes that component's OCI config file under `dir`, and
   * points each service at its own endpoint.
   */
  env(dir: string, extra?: Record<string, string>, as?: Component): Record<string, string>;
  /** Each service's endpoint (what the `OCI_*_ENDPOINT` variables and messages endpoints name). */
  endpoints: {
    objectStorage: string;
    nosql: string;
    queue: string;
    parkingQueue: string;
    stream: string;
    dataScience: string;
    containerEngine: string;
  };
  /** The policies in force (undefined when started with `iam: false`). */
  iam: IamPolicies | undefined;
  /** The deployment's statements as loaded (to remove one and put it back). */
  deployStatements: string[];
  close(): Promise<void>;
}

/** Start the stand-in with the deployment's resources created. */
export async function startFullStandIn(
  options: {
    maxDeliveries?: number;
    buckets?: { name: string; events?: boolean }[];
    /** Enforce the deployment's IAM policies (default true). */
    iam?: boolean;
    /** The embedding corpus bucket, when the test deploys embedding refresh. */
    corpusBucket?: string;
  } = {},
): Promise<FullStandIn> {
  const credentials = testCredentials();
  const server = await startStandIn(credentials);
  for (const component of COMPONENTS) {
    const c = testCredentials(component === "admin" ? undefined : component);
    server.trust(c.keyId, c.publicKeyPem).principal(c.keyId, componentPrincipal(component));
  }
  let iam: IamPolicies | undefined;
  let deployStatements: string[] = [];
  if (options.iam !== false) {
    const loaded = deployPolicies(
      policyVars(options.corpusBucket ? { corpusBucket: options.corpusBucket } : {}),
    );
    deployStatements = loaded.statements.map((s) => s.text);
    iam = new IamPolicies()
      .setDynamicGroups(loaded.dynamicGroups)
      .setStatements([ADMIN_STATEMENT, ...deployStatements]);
    server.enforce(iam);
  }
  const emitted: object[] = [];
  let delivery: EventDelivery | undefined;
  const events: Principal = { kind: "service", name: "cloudEvents" };
  const objectStorage = registerObjectStorage(server, {
    namespace: NAMESPACE,
    onObjectEvent: async (event) => {
      emitted.push(event);
      // The rule's FAAS action: Events invokes the splitter, if IAM lets it.
      if (
        !server.allows(
          { keyId: "service:cloudEvents", principal: events },
          "InvokeFunction",
          COMPARTMENT,
        )
      ) {
        throw new Error("Events may not invoke the splitter function (IAM)");
      }
      await delivery?.(event);
    },
  });
  for (const b of options.buckets ?? [
    { name: "input", events: true },
    { name: "scores" },
    { name: "models" },
    { name: "state" },
    ...(options.corpusBucket ? [{ name: options.corpusBucket, events: true }] : []),
  ]) {
    objectStorage.createBucket(b.name, {
      objectEventsEnabled: b.events ?? false,
      compartmentId: COMPARTMENT,
    });
  }
  const queue = registerQueue(server);
  queue.createQueue(QUEUE_ID, {
    deadLetterQueueDeliveryCount: options.maxDeliveries ?? 25,
    compartmentId: COMPARTMENT,
    cell: "cell-1",
  });
  // Another cell: the parking queue's messages endpoint differs from the partition queue's.
  queue.createQueue(PARKING_QUEUE_ID, {
    deadLetterQueueDeliveryCount: 0,
    compartmentId: COMPARTMENT,
    cell: "cell-2",
  });
  const nosql = registerNosql(server);
  nosql.createTable("batch_infer_jobs", ["jobId"], COMPARTMENT);
  nosql.createTable("batch_infer_partitions", ["jobId", "idx"], COMPARTMENT);
  const streaming = registerStreaming(server);
  streaming.createStream(STREAM_ID, 3, COMPARTMENT);
  const datascience = registerDataScience(server);
  const endpoints = {
    objectStorage: await server.endpoint("objectstorage"),
    nosql: await server.endpoint("nosql"),
    queue: await queue.messagesEndpoint(QUEUE_ID),
    parkingQueue: await queue.messagesEndpoint(PARKING_QUEUE_ID),
    stream: await streaming.messagesEndpoint(STREAM_ID),
    dataScience: await server.endpoint("datascience"),
    containerEngine: await server.endpoint("containerengine"),
  };
  return {
    server,
    objectStorage,
    queue,
    nosql,
    streaming,
    datascience,
    emitted,
    onEvent(d) {
      delivery = d;
    },
    endpoints,
    iam,
    deployStatements,
    env(dir, extra = {}, as = "admin") {
      const creds = testCredentials(as === "admin" ? undefined : as);
      const configFile = creds.writeConfigFile(path.join(dir, `.oci-${as}`));
      return {
        BATCH_INFER_BACKEND: "oci",
        OCI_AUTH: "config_file",
        OCI_CONFIG_FILE: configFile,
        OCI_REGION: creds.region,
        OCI_NAMESPACE: NAMESPACE,
        OCI_COMPARTMENT_ID: COMPARTMENT,
        BATCH_INFER_QUEUE_ID: QUEUE_ID,
        BATCH_INFER_QUEUE_ENDPOINT: endpoints.queue,
        BATCH_INFER_PARKING_QUEUE_ID: PARKING_QUEUE_ID,
        BATCH_INFER_PARKING_QUEUE_ENDPOINT: endpoints.parkingQueue,
        BATCH_INFER_STREAM_ID: STREAM_ID,
        BATCH_INFER_STREAM_ENDPOINT: endpoints.stream,
        BATCH_INFER_STATE_BUCKET: "state",
        BATCH_INFER_MODEL_CACHE: path.join(dir, `model-cache-${as}`),
        OCI_OBJECTSTORAGE_ENDPOINT: endpoints.objectStorage,
        OCI_NOSQL_ENDPOINT: endpoints.nosql,
        OCI_DATASCIENCE_ENDPOINT: endpoints.dataScience,
        OCI_CONTAINERENGINE_ENDPOINT: endpoints.containerEngine,
        ...extra,
      };
    },
    close: () => server.close(),
  };
}

/** An Fn call over a function's unix socket, as the Fn server makes it. */
export function fnCall(
  sock: string,
  body: unknown,
  options: { callId?: string; deadlineMs?: number } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: sock,
        path: "/call",
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "Fn-Call-Id": options.callId ?? `call-${Math.random().toString(16).slice(2)}`,
          "Fn-Deadline": new Date(Date.now() + (options.deadlineMs ?? 60_000)).toISOString(),
        },
      },
      (res) => {
        let text = "";
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => {
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(text || "{}") as Record<string, unknown>;
          } catch {
            json = { raw: text };
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}
