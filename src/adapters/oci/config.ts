import { InvalidArgumentError } from "../../core/errors.ts";

/** Where the OCI backend's resources are, from the environment (function config or the worker Deployment). */
export interface OciBackendConfig {
  namespace: string;
  compartmentId: string;
  queueId: string;
  /** The queue's messages endpoint (QueueAdminClient.getQueue → messagesEndpoint). */
  queueEndpoint: string;
  /** Second queue that holds messages dead-lettered on purpose (OCI Queue can't move one message to its DLQ). */
  parkingQueueId: string | undefined;
  /** The parking queue's messages endpoint, when it differs from the partition queue's. */
  parkingQueueEndpoint: string | undefined;
  jobsTable: string;
  partitionsTable: string;
  streamId: string;
  /** The stream's messages endpoint (StreamAdminClient.getStream → messagesEndpoint). */
  streamEndpoint: string;
  /** Bucket for small pipeline state (the scaler's last-active time). */
  stateBucket: string | undefined;
  /** Local directory where downloaded models are cached by content hash. */
  modelCacheDir: string;
  /** Endpoint overrides; unset means the region's public endpoint. The tests point these at the stand-in. */
  endpoints: {
    objectStorage: string | undefined;
    nosql: string | undefined;
    dataScience: string | undefined;
    containerEngine: string | undefined;
  };
}

/** Environment variables the OCI backend reads (documented in the README's configuration table). */
export const OCI_BACKEND_ENV = [
  "OCI_AUTH",
  "OCI_REGION",
  "OCI_CONFIG_FILE",
  "OCI_CONFIG_PROFILE",
  "OCI_NAMESPACE",
  "OCI_COMPARTMENT_ID",
  "BATCH_INFER_QUEUE_ID",
  "BATCH_INFER_QUEUE_ENDPOINT",
  "BATCH_INFER_PARKING_QUEUE_ID",
  "BATCH_INFER_PARKING_QUEUE_ENDPOINT",
  "BATCH_INFER_JOBS_TABLE",
  "BATCH_INFER_PARTITIONS_TABLE",
  "BATCH_INFER_STREAM_ID",
  "BATCH_INFER_STREAM_ENDPOINT",
  "BATCH_INFER_STATE_BUCKET",
  "BATCH_INFER_MODEL_CACHE",
  "OCI_OBJECTSTORAGE_ENDPOINT",
  "OCI_NOSQL_ENDPOINT",
  "OCI_DATASCIENCE_ENDPOINT",
  "OCI_CONTAINERENGINE_ENDPOINT",
  "BATCH_INFER_NOT_AUTHORIZED_RETRY_SECONDS",
] as const;

function required(env: NodeJS.ProcessEnv, name: string, hint: string): string {
  const v = env[name];
  if (!v) throw new InvalidArgumentError(`environment variable ${name} is required (${hint})`);
  return v;
}

/** Read the OCI backend's configuration; fails fast naming the first missing variable. */
export function ociConfigFromEnv(env: NodeJS.ProcessEnv = process.env): OciBackendConfig {
  return {
    namespace: required(env, "OCI_NAMESPACE", "the Object Storage namespace: oci os ns get"),
    compartmentId: required(env, "OCI_COMPARTMENT_ID", "the compartment holding the NoSQL tables"),
    queueId: required(env, "BATCH_INFER_QUEUE_ID", "the partition queue's OCID"),
    queueEndpoint: required(
      env,
      "BATCH_INFER_QUEUE_ENDPOINT",
      'the queue\'s messages endpoint: oci queue queue-admin queue get --queue-id ID --query data."messages-endpoint"',
    ),
    parkingQueueId: env.BATCH_INFER_PARKING_QUEUE_ID || undefined,
    parkingQueueEndpoint: env.BATCH_INFER_PARKING_QUEUE_ENDPOINT || undefined,
    jobsTable: env.BATCH_INFER_JOBS_TABLE || "batch_infer_jobs",
    partitionsTable: env.BATCH_INFER_PARTITIONS_TABLE || "batch_infer_partitions",
    streamId: required(env, "BATCH_INFER_STREAM_ID", "the completion stream's OCID"),
    streamEndpoint: required(
      env,
      "BATCH_INFER_STREAM_ENDPOINT",
      'the stream\'s messages endpoint: oci streaming admin stream get --stream-id ID --query data."messages-endpoint"',
    ),
    stateBucket: env.BATCH_INFER_STATE_BUCKET || undefined,
    modelCacheDir: env.BATCH_INFER_MODEL_CACHE || "/tmp/batch-infer-models",
    endpoints: {
      objectStorage: env.OCI_OBJECTSTORAGE_ENDPOINT || undefined,
      nosql: env.OCI_NOSQL_ENDPOINT || undefined,
      dataScience: env.OCI_DATASCIENCE_ENDPOINT || undefined,
      containerEngine: env.OCI_CONTAINERENGINE_ENDPOINT || undefined,
    },
  };
}
