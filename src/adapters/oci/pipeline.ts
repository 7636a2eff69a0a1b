import type { DataScienceClient } from "oci-datascience";
import { NosqlClient } from "oci-nosql";
import { ObjectStorageClient } from "oci-objectstorage";
import { QueueClient } from "oci-queue";
import { StreamClient } from "oci-streaming";
import { createLogger, type Logger } from "../../core/log.ts";
import type { PipelineDeps } from "../../pipeline/deps.ts";
import { type OciAuth, type OciIdentity, ociAuthFromEnv, ociIdentity } from "./auth.ts";
import { authzRetryFromEnv } from "./authz-retry.ts";
import { NosqlCheckpointStore } from "./checkpoint-store.ts";
import { createClient } from "./clients.ts";
import { type OciBackendConfig, ociConfigFromEnv } from "./config.ts";
import { createModelLoader } from "./model-source.ts";
import { OciObjectStore } from "./object-storage.ts";
import { routeSdkWarnings } from "./sdk-log.ts";
import { StreamEventLog } from "./stream-event-log.ts";
import { StreamEventSink } from "./stream-event-sink.ts";
import { OciTaskQueue } from "./task-queue.ts";

/** The OCI backend's dependencies, plus what the functions need beyond the ports. */
export interface OciPipeline extends PipelineDeps {
  config: OciBackendConfig;
  auth: OciAuth;
  /** Who this process is to OCI (named in configuration errors and the scaler's log). */
  identity: OciIdentity;
  objects: OciObjectStore;
  /** The completion stream's read side (`batch-infer events --backend oci`). */
  eventLog: StreamEventLog;
  close(): void;
}

/**
 * Build the pipeline over OCI services: Object Storage, Queue, NoSQL, Streaming,
 * and models from Object Storage or the Data Science catalog. Called on a
 * function's first request or a worker's start, never at import (cold start).
 */
export async function openOciPipeline(
  env: NodeJS.ProcessEnv = process.env,
  options: { log?: Logger; now?: () => number } = {},
): Promise<OciPipeline> {
  const config = ociConfigFromEnv(env);
  const log = options.log ?? createLogger({ level: "info" });
  routeSdkWarnings(log);
  const auth = await ociAuthFromEnv(env);
  const identity = ociIdentity(auth, env);
  // Who we are and how long a "not authorized or not found" is retried, for every adapter.
  const authz = { principal: identity.principal, authzRetry: authzRetryFromEnv(auth.mode, env) };
  const objects = new OciObjectStore({
    client: createClient(ObjectStorageClient, auth, { endpoint: config.endpoints.objectStorage }),
    namespace: config.namespace,
    ...authz,
  });
  const queueClient = createClient(QueueClient, auth, { endpoint: config.queueEndpoint });
  const queue = new OciTaskQueue({
    ...authz,
    client: queueClient,
    queueId: config.queueId,
    ...(config.parkingQueueId ? { deadLetterQueueId: config.parkingQueueId } : {}),
    // Queues live in cells with their own messages endpoints: the parking queue may be elsewhere.
    ...(config.parkingQueueEndpoint && config.parkingQueueEndpoint !== config.queueEndpoint
      ? {
          parkingClient: createClient(QueueClient, auth, { endpoint: config.parkingQueueEndpoint }),
        }
      : {}),
  });
  const checkpoints = new NosqlCheckpointStore({
    client: createClient(NosqlClient, auth, { endpoint: config.endpoints.nosql }),
    compartmentId: config.compartmentId,
    jobsTable: config.jobsTable,
    partitionsTable: config.partitionsTable,
    ...authz,
  });
  const streamClient = createClient(StreamClient, auth, { endpoint: config.streamEndpoint });
  const events = new StreamEventSink({ client: streamClient, streamId: config.streamId, ...authz });
  const eventLog = new StreamEventLog({ client: streamClient, streamId: config.streamId });
  // The Data Science package is the heaviest of the SDK (~50 ms to load): it is
  // imported, and its client built, only when a model OCID is first resolved.
  let datascience: Promise<DataScienceClient> | undefined;
  const ds = () =>
    (datascience ??= import("oci-datascience").then((m) =>
      createClient(m.DataScienceClient, auth, { endpoint: config.endpoints.dataScience }),
    ));
  const loadModel = createModelLoader({
    cacheDir: config.modelCacheDir,
    objectStore: objects,
    datascience: {
      headModelArtifact: async (req) => (await ds()).headModelArtifact(req),
      getModelArtifactContent: async (req) => (await ds()).getModelArtifactContent(req),
    },
  });
  return {
    config,
    auth,
    identity,
    objects,
    store: objects,
    queue,
    checkpoints,
    events,
    eventLog,
    log,
    now: options.now ?? Date.now,
    loadModel,
    close() {},
  };
}
