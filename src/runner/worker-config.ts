import { OCI_BACKEND_ENV } from "../adapters/oci/config.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import { newWorkerId } from "../core/ids.ts";
import { type Backend, backendFromEnv } from "./backend.ts";

/** Worker settings, from the environment (the pool locally, the Deployment on OKE). */
export interface WorkerConfig {
  backend: Backend;
  /** The embedded default's state directory (local backend only). */
  dataDir: string | undefined;
  workerId: string;
  intraOpThreads: number;
  /** INFERENCE_THREAD: 1 always, 0 never, unset = decided per model by timing a batch. */
  inferenceThread: boolean | "auto";
  /** onnxruntime execution providers in order, e.g. ["cuda", "cpu"] in the GPU image. */
  executionProviders: string[];
  /** Lease of a message received before its job is known (BATCH_INFER_RECEIVE_VISIBILITY, default 30 s). */
  receiveVisibilitySeconds: number;
}

/** Environment variables the worker reads (the image and manifests may set only these). */
export const WORKER_ENV = [
  "BATCH_INFER_BACKEND",
  "BATCH_INFER_DATA_DIR",
  ...OCI_BACKEND_ENV,
  "WORKER_ID",
  "BATCH_INFER_RECEIVE_VISIBILITY",
  "METRICS_PORT",
  "BATCH_INFER_METRICS_IPC",
  "ORT_INTRA_OP_THREADS",
  "ORT_EXECUTION_PROVIDERS",
  "INFERENCE_THREAD",
  "LOG_LEVEL",
  "NODE_ENV",
] as const;

const PROVIDERS = new Set(["cpu", "cuda", "tensorrt", "webgpu"]);

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(
      `environment variable ${name} must be a positive integer, got "${raw}"`,
    );
  }
  return n;
}

/** Read and check the worker's environment; fails fast naming the bad variable. */
export function workerConfigFromEnv(env: NodeJS.ProcessEnv): WorkerConfig {
  const backend = backendFromEnv(env);
  const dataDir = env.BATCH_INFER_DATA_DIR || undefined;
  if (backend === "local" && !dataDir) {
    throw new InvalidArgumentError("environment variable BATCH_INFER_DATA_DIR is required");
  }
  return {
    backend,
    dataDir,
    workerId: env.WORKER_ID || newWorkerId(),
    intraOpThreads: intFrom(env, "ORT_INTRA_OP_THREADS", 1),
    inferenceThread:
      env.INFERENCE_THREAD === "1" ? true : env.INFERENCE_THREAD === "0" ? false : "auto",
    executionProviders: providersFrom(env.ORT_EXECUTION_PROVIDERS),
    receiveVisibilitySeconds: intFrom(env, "BATCH_INFER_RECEIVE_VISIBILITY", 30),
  };
}

/** Parse ORT_EXECUTION_PROVIDERS (default cpu); throws naming the variable when it lists an unknown provider. */
export function providersFrom(raw: string | undefined): string[] {
  if (!raw) return ["cpu"];
  const list = raw
    .split(",")
    .map((p) => p.trim().toLowerCase())
    .filter(Boolean);
  const bad = list.filter((p) => !PROVIDERS.has(p));
  if (bad.length > 0 || list.length === 0) {
    throw new InvalidArgumentError(
      `environment variable ORT_EXECUTION_PROVIDERS must list providers from ${[...PROVIDERS].join(", ")}, got "${raw}"`,
    );
  }
  return list;
}
