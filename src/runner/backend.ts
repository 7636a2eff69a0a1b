import { InvalidArgumentError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { PipelineDeps } from "../pipeline/deps.ts";
import type { EventLog } from "../ports/event-sink.ts";
import type { ObjectStore } from "../ports/object-store.ts";

/** Which adapters a process runs on. */
export type Backend = "local" | "oci";

/** A pipeline over one backend, with what it needs closed at exit. */
export interface OpenPipeline extends PipelineDeps {
  backend: Backend;
  /** Where the pipeline's events can be read back (the JSONL log; the completion stream on OCI). */
  eventLog: EventLog;
  close(): void;
}

/** BATCH_INFER_BACKEND: "local" (the embedded default) or "oci". */
export function backendFromEnv(env: NodeJS.ProcessEnv): Backend {
  const backend = env.BATCH_INFER_BACKEND || "local";
  if (backend !== "local" && backend !== "oci") {
    throw new InvalidArgumentError(
      `BATCH_INFER_BACKEND must be "local" or "oci", got "${backend}"`,
    );
  }
  return backend;
}

/**
 * Open the pipeline named by the environment. The OCI adapters are imported
 * only when asked for, so the embedded default never loads the oci-sdk.
 */
export async function openPipelineFromEnv(
  env: NodeJS.ProcessEnv,
  options: { log: Logger },
): Promise<OpenPipeline & { objects: ObjectStore }> {
  const backend = backendFromEnv(env);
  if (backend === "oci") {
    const { openOciPipeline } = await import("../adapters/oci/pipeline.ts");
    const p = await openOciPipeline(env, { log: options.log });
    return { ...p, backend };
  }
  const dataDir = env.BATCH_INFER_DATA_DIR;
  if (!dataDir) {
    throw new InvalidArgumentError(
      "environment variable BATCH_INFER_DATA_DIR is required for the local backend",
    );
  }
  const { openLocalPipeline } = await import("./local-stores.ts");
  const p = openLocalPipeline(dataDir, { log: options.log });
  return { ...p, backend };
}
