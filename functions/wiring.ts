import { describeError, InvalidArgumentError, PipelineError } from "../src/core/errors.ts";
import type { JobSpecInput } from "../src/core/job-spec.ts";
import { createLogger, type LogLevel } from "../src/core/log.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import { createMergerHandler } from "./merger/handler.ts";
import { createSplitterHandler } from "./splitter/handler.ts";

/** What every function answers when it rejects its input (a value, never undefined: the FDK crashes on it). */
export interface Rejection {
  ok: false;
  error: { code: string; message: string; schemaPath?: string; retryable: false };
}

/**
 * Wrap a handler for Fn: a bad event or spec is answered with a Rejection (so
 * OCI Events does not redeliver an input that can never succeed), while a
 * retryable failure (a store timing out) is thrown, which Fn turns into a 502
 * that the caller retries. Clients and stores are built on the first call, not
 * at import, to keep cold start short.
 */
export function guardHandler<T>(make: () => (input: unknown) => Promise<T>) {
  let handler: ((input: unknown) => Promise<T>) | undefined;
  return async (input: unknown): Promise<T | Rejection> => {
    handler ??= make();
    try {
      return await handler(input);
    } catch (err) {
      if (err instanceof PipelineError && !err.retryable) {
        return {
          ok: false,
          error: {
            code: err.code,
            message: err.message,
            ...(typeof err.details.schemaPath === "string"
              ? { schemaPath: err.details.schemaPath }
              : {}),
            retryable: false,
          },
        };
      }
      throw new Error(describeError(err));
    }
  };
}

function jobDefaults(env: NodeJS.ProcessEnv): Omit<JobSpecInput, "input"> {
  const raw = env.BATCH_INFER_JOB_DEFAULTS;
  if (!raw) {
    throw new InvalidArgumentError(
      'config BATCH_INFER_JOB_DEFAULTS is required: a job spec without "input", e.g. {"model":{"descriptor":"..."},"output":{"bucket":"scores"}}',
    );
  }
  try {
    return JSON.parse(raw) as Omit<JobSpecInput, "input">;
  } catch (err) {
    throw new InvalidArgumentError(
      `config BATCH_INFER_JOB_DEFAULTS is not valid JSON: ${(err as Error).message}`,
    );
  }
}

/**
 * The handler named by BATCH_INFER_FUNCTION, over the backend named by
 * BATCH_INFER_BACKEND. Only the embedded (local) backend exists so far; the OCI
 * backend comes with the oci-sdk adapters.
 */
export function createFunctionHandler(env: NodeJS.ProcessEnv) {
  const name = env.BATCH_INFER_FUNCTION;
  if (name !== "splitter" && name !== "merger") {
    throw new InvalidArgumentError(
      `config BATCH_INFER_FUNCTION must be "splitter" or "merger", got "${name ?? ""}"`,
    );
  }
  const deps = () => {
    const backend = env.BATCH_INFER_BACKEND ?? "local";
    if (backend !== "local") {
      throw new InvalidArgumentError(
        `BATCH_INFER_BACKEND "${backend}" is not available in this build; use "local"`,
      );
    }
    const dataDir = env.BATCH_INFER_DATA_DIR;
    if (!dataDir)
      throw new InvalidArgumentError(
        "config BATCH_INFER_DATA_DIR is required for the local backend",
      );
    return openLocalPipeline(dataDir, {
      log: createLogger({ level: (env.LOG_LEVEL as LogLevel) ?? "info" }),
    });
  };
  if (name === "splitter") {
    const defaults = jobDefaults(env);
    return guardHandler(() => createSplitterHandler(deps(), { defaults }));
  }
  return guardHandler(() => createMergerHandler(deps()));
}
