import { InvalidArgumentError } from "../core/errors.ts";
import { newWorkerId } from "../core/ids.ts";

/** Worker settings, from the environment (the pool locally, the Deployment on OKE). */
export interface WorkerConfig {
  dataDir: string;
  workerId: string;
  intraOpThreads: number;
  inferenceThread: boolean;
}

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
  const dataDir = env.BATCH_INFER_DATA_DIR;
  if (!dataDir)
    throw new InvalidArgumentError("environment variable BATCH_INFER_DATA_DIR is required");
  return {
    dataDir,
    workerId: env.WORKER_ID || newWorkerId(),
    intraOpThreads: intFrom(env, "ORT_INTRA_OP_THREADS", 1),
    inferenceThread: env.INFERENCE_THREAD !== "0",
  };
}
