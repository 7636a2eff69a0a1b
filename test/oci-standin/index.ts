/**
 * The whole OCI stand-in for end-to-end tests: one signed-request server with
 * Object Storage, Queue, NoSQL, Streaming and Data Science mounted, the
 * resources a deployment creates (buckets with object events, the partition
 * queue with its DLQ and the parking queue, the two tables, the stream), and
 * the environment a function or worker needs to reach them.
 */
import http from "node:http";
import path from "node:path";
import { registerDataScience } from "./datascience.ts";
import { registerNosql } from "./nosql.ts";
import { registerObjectStorage } from "./object-storage.ts";
import { registerQueue } from "./queue.ts";
import { type OciStandIn, startStandIn, testCredentials } from "./server.ts";
import { registerStreaming } from "./streaming.ts";

export const NAMESPACE = "standin-ns";
export const COMPARTMENT = "ocid1.compartment.oc1..standin";
export const QUEUE_ID = "ocid1.queue.oc1.iad.partitions";
export const PARKING_QUEUE_ID = "ocid1.queue.oc1.iad.parking";
export const STREAM_ID = "ocid1.stream.oc1.iad.completions";

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
  /** Environment for a function or worker process (writes the OCI config file under `dir`). */
  env(dir: string, extra?: Record<string, string>): Record<string, string>;
  close(): Promise<void>;
}

/** Start the stand-in with the deployment's resources created. */
export async function startFullStandIn(
  options: { maxDeliveries?: number; buckets?: { name: string; events?: boolean }[] } = {},
): Promise<FullStandIn> {
  const credentials = testCredentials();
  const server = await startStandIn(credentials);
  const emitted: object[] = [];
  let delivery: EventDelivery | undefined;
  const objectStorage = registerObjectStorage(server, {
    namespace: NAMESPACE,
    onObjectEvent: async (event) => {
      emitted.push(event);
      await delivery?.(event);
    },
  });
  for (const b of options.buckets ?? [
    { name: "input", events: true },
    { name: "scores" },
    { name: "models" },
    { name: "state" },
  ]) {
    objectStorage.createBucket(b.name, {
      objectEventsEnabled: b.events ?? false,
      compartmentId: COMPARTMENT,
    });
  }
  const queue = registerQueue(server);
  queue.createQueue(QUEUE_ID, { deadLetterQueueDeliveryCount: options.maxDeliveries ?? 25 });
  queue.createQueue(PARKING_QUEUE_ID, { deadLetterQueueDeliveryCount: 0 });
  const nosql = registerNosql(server);
  nosql.createTable("batch_infer_jobs", ["jobId"]);
  nosql.createTable("batch_infer_partitions", ["jobId", "idx"]);
  const streaming = registerStreaming(server);
  streaming.createStream(STREAM_ID, 3);
  const datascience = registerDataScience(server);
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
    env(dir, extra = {}) {
      const configFile = credentials.writeConfigFile(path.join(dir, ".oci"));
      return {
        BATCH_INFER_BACKEND: "oci",
        OCI_AUTH: "config_file",
        OCI_CONFIG_FILE: configFile,
        OCI_REGION: credentials.region,
        OCI_NAMESPACE: NAMESPACE,
        OCI_COMPARTMENT_ID: COMPARTMENT,
        BATCH_INFER_QUEUE_ID: QUEUE_ID,
        BATCH_INFER_QUEUE_ENDPOINT: server.url,
        BATCH_INFER_PARKING_QUEUE_ID: PARKING_QUEUE_ID,
        BATCH_INFER_STREAM_ID: STREAM_ID,
        BATCH_INFER_STREAM_ENDPOINT: server.url,
        BATCH_INFER_STATE_BUCKET: "state",
        BATCH_INFER_MODEL_CACHE: path.join(dir, "model-cache"),
        OCI_OBJECTSTORAGE_ENDPOINT: server.url,
        OCI_NOSQL_ENDPOINT: server.url,
        OCI_DATASCIENCE_ENDPOINT: server.url,
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
