import { describeError, InvalidArgumentError, PipelineError } from "../src/core/errors.ts";
import { createLogger, type Logger, type LogLevel } from "../src/core/log.ts";
import { DEFAULT_POLICY, type ScalingPolicy } from "../src/pipeline/scaler.ts";
import { objectStoreScalerState } from "../src/pipeline/scaler-state.ts";
import type { EventJobDefaults } from "../src/pipeline/splitter.ts";
import { parseRefreshSettings } from "../src/refresh/settings.ts";
import { openPipelineFromEnv } from "../src/runner/backend.ts";
import { createMergerHandler } from "./merger/handler.ts";
import { createRefreshHandler } from "./refresh/handler.ts";
import { createScalerHandler } from "./scaler/handler.ts";
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
 * at import, to keep cold start short; a failed build is retried on the next call.
 */
export function guardHandler<T>(
  make: () => ((input: unknown) => Promise<T>) | Promise<(input: unknown) => Promise<T>>,
) {
  let handler: Promise<(input: unknown) => Promise<T>> | undefined;
  return async (input: unknown): Promise<T | Rejection> => {
    try {
      handler ??= Promise.resolve().then(make);
      const h = await handler.catch((err: unknown) => {
        handler = undefined;
        throw err;
      });
      return await h(input);
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

function jsonConfig<T>(env: NodeJS.ProcessEnv, key: string, example: string): T | undefined {
  const raw = env[key];
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch (err) {
    throw new InvalidArgumentError(
      `config ${key} is not valid JSON (${(err as Error).message}); e.g. ${example}`,
    );
  }
}

function jobDefaults(env: NodeJS.ProcessEnv): EventJobDefaults {
  const example = '{"model":{"descriptor":"..."},"output":{"bucket":"scores"}}';
  const defaults = jsonConfig<EventJobDefaults>(env, "BATCH_INFER_JOB_DEFAULTS", example);
  if (!defaults) {
    throw new InvalidArgumentError(
      `config BATCH_INFER_JOB_DEFAULTS is required: a job spec without "input", e.g. ${example}`,
    );
  }
  return defaults;
}

function scalingPolicy(env: NodeJS.ProcessEnv): ScalingPolicy {
  const overrides = jsonConfig<Partial<ScalingPolicy>>(
    env,
    "BATCH_INFER_SCALING",
    '{"maxReplicas":8,"cooldownSeconds":120}',
  );
  return { ...DEFAULT_POLICY, ...overrides };
}

const FUNCTIONS = ["splitter", "merger", "scaler", "refresh"] as const;

/**
 * The handler named by BATCH_INFER_FUNCTION (one image serves every
 * function), over the backend named by BATCH_INFER_BACKEND ("local" or "oci").
 */
export function createFunctionHandler(env: NodeJS.ProcessEnv) {
  const name = env.BATCH_INFER_FUNCTION;
  if (!(FUNCTIONS as readonly string[]).includes(name ?? "")) {
    throw new InvalidArgumentError(
      `config BATCH_INFER_FUNCTION must be one of ${FUNCTIONS.join(", ")}, got "${name ?? ""}"`,
    );
  }
  const log: Logger = createLogger({
    level: (env.LOG_LEVEL as LogLevel) ?? "info",
    bindings: { function: name },
  });
  const deps = () => openPipelineFromEnv(env, { log });
  if (name === "splitter") {
    const defaults = jobDefaults(env);
    const inputBuckets = env.BATCH_INFER_INPUT_BUCKETS?.split(",")
      .map((b) => b.trim())
      .filter(Boolean);
    return guardHandler(async () =>
      createSplitterHandler(await deps(), {
        defaults,
        ...(inputBuckets?.length ? { inputBuckets } : {}),
      }),
    );
  }
  if (name === "merger") return guardHandler(async () => createMergerHandler(await deps()));
  if (name === "refresh") {
    const example =
      '{"corpus":{"bucket":"docs","prefix":"kb/"},"output":{"bucket":"scores"},"model":"oci://models@ns/embedder/descriptor.json"}';
    const raw = jsonConfig<unknown>(env, "BATCH_INFER_REFRESH", example);
    if (raw === undefined) {
      throw new InvalidArgumentError(
        `config BATCH_INFER_REFRESH is required by the refresh function, e.g. ${example}`,
      );
    }
    const settings = parseRefreshSettings(raw);
    return guardHandler(async () => createRefreshHandler(await deps(), settings));
  }
  const policy = scalingPolicy(env);
  return guardHandler(async () => {
    const pipeline = await deps();
    if (pipeline.backend !== "oci") {
      throw new InvalidArgumentError(
        "the scaler function sizes the OKE worker Deployment (BATCH_INFER_BACKEND=oci); the embedded default's pool scales itself",
      );
    }
    const stateBucket = env.BATCH_INFER_STATE_BUCKET;
    if (!stateBucket) {
      throw new InvalidArgumentError("config BATCH_INFER_STATE_BUCKET is required by the scaler");
    }
    const [{ createOkeScalerTarget }, { ociAuthFromEnv, ociIdentity }] = await Promise.all([
      import("../src/adapters/oci/oke-scaler-target.ts"),
      import("../src/adapters/oci/auth.ts"),
    ]);
    const auth = await ociAuthFromEnv(env);
    const target = await createOkeScalerTarget(env, auth);
    const identity = ociIdentity(auth, env);
    return createScalerHandler(
      {
        queue: pipeline.queue,
        target,
        log,
        now: pipeline.now,
        state: objectStoreScalerState(pipeline.store, stateBucket),
        identity: { principal: identity.principal, kubernetesUser: identity.kubernetesUser },
      },
      policy,
    );
  });
}
