/**
 * A worker process (one "pod"): started by the local pool, or as the OKE
 * Deployment's container. It receives tasks until SIGTERM, then checkpoints and
 * hands back its partition. Configuration comes from the environment; the
 * backend (embedded or OCI) from BATCH_INFER_BACKEND.
 */
import { createLogger, type LogLevel } from "../core/log.ts";
import { startWorkerMetrics } from "../metrics/worker-endpoint.ts";
import { loadModel } from "../model/descriptor.ts";
import { PartitionWorker } from "../pipeline/partition-worker.ts";
import { type EarlyModel, openModelEarly } from "../pipeline/task-runtimes.ts";
import type { TaskSessionOptions } from "../tasks/registry.ts";
import { backendFromEnv, openPipelineFromEnv } from "./backend.ts";
import { type WorkerConfig, workerConfigFromEnv } from "./worker-config.ts";

// Stop requests are wired before anything slow (opening stores, loading a model), so
// none is missed: a worker whose pool died while it was starting must not run on as
// an orphan.
let stopRequested = false;
let stop = () => {
  stopRequested = true;
};
let signals = 0;
const onStop = () => {
  signals++;
  if (signals > 1) process.exit(143);
  stop();
};
process.on("SIGTERM", onStop);
process.on("SIGINT", onStop);
// The pool going away (parent killed) is a stop too.
const hasPool = typeof process.send === "function";
process.on("disconnect", onStop);

/**
 * Tell the pool something, if it is still there: a message to a pool that died
 * (its IPC channel closed) is dropped, never an ERR_IPC_CHANNEL_CLOSED crash.
 */
function tellPool(message: Record<string, unknown>): void {
  if (!hasPool || !process.connected) return;
  try {
    process.send?.(message, (err: Error | null) => {
      if (err) stop();
    });
  } catch {
    stop();
  }
}

/**
 * Started held (BATCH_INFER_HOLD=1: a local run checking its input and model first):
 * booted, but no store is opened until the pool says "start", or a stop comes.
 */
function waitForStart(): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (m: unknown) => {
      if ((m as { type?: unknown } | null)?.type !== "start") return;
      process.off("message", onMessage);
      resolve();
    };
    process.on("message", onMessage);
    stop = () => {
      stopRequested = true;
      process.off("message", onMessage);
      resolve();
    };
    tellPool({ type: "held" });
  });
}

/**
 * A held worker told which model the run uses (BATCH_INFER_PRELOAD_MODEL, a local
 * descriptor path) opens it while it waits: reading the model's files writes nothing,
 * and the first claim then finds the session open (~50 ms off each worker's start).
 */
function openEarly(descriptor: string | undefined): Promise<EarlyModel | undefined> | undefined {
  if (!descriptor) return undefined;
  let early: WorkerConfig;
  try {
    if (backendFromEnv(process.env) !== "local") return undefined;
    early = workerConfigFromEnv(process.env);
  } catch {
    return undefined; // the same check fails once started, with the error shown
  }
  // The run's batch size, when it set one: "auto" decides the inference thread by it.
  const batchSize = Number(process.env.BATCH_INFER_PRELOAD_BATCH);
  return openModelEarly(loadModel, descriptor, {
    ...scorerOptions(early),
    ...(Number.isInteger(batchSize) && batchSize > 0 ? { batchSize } : {}),
  });
}

function scorerOptions(c: WorkerConfig): TaskSessionOptions {
  return {
    intraOpThreads: c.intraOpThreads,
    thread: c.inferenceThread,
    executionProviders: c.executionProviders,
  };
}

let earlyModel: Promise<EarlyModel | undefined> | undefined;
if (hasPool && process.env.BATCH_INFER_HOLD === "1" && !stopRequested) {
  earlyModel = openEarly(process.env.BATCH_INFER_PRELOAD_MODEL);
  await waitForStart();
}
if (stopRequested) process.exit(0);

const config = workerConfigFromEnv(process.env);
const log = createLogger({ level: (process.env.LOG_LEVEL as LogLevel | undefined) ?? "warn" });
const deps = await openPipelineFromEnv(process.env, { log });
// METRICS_PORT serves /metrics; BATCH_INFER_METRICS_IPC=1 answers the local pool. Neither: a no-op observer.
const metrics = await startWorkerMetrics(
  process.env,
  {
    workerId: config.workerId,
    backend: config.backend,
    providers: config.executionProviders.join(","),
  },
  log,
);
if (metrics.port !== undefined) tellPool({ type: "metrics-listening", port: metrics.port });
const worker = new PartitionWorker(deps, {
  workerId: config.workerId,
  scorer: scorerOptions(config),
  ...(earlyModel ? { earlyModel } : {}),
  receiveWaitSeconds: 1,
  receiveVisibilitySeconds: config.receiveVisibilitySeconds,
  observer: metrics.observer,
  onClaim: (claim) => tellPool({ type: "claim", claim: claim ?? null }),
  onCommit: (p) => {
    tellPool({
      type: "commit",
      partition: p.index,
      offset: p.offset,
      end: p.end,
      done: p.state === "done",
    });
  },
});
stop = () => worker.stop();
process.on("message", (m: unknown) => {
  if ((m as { type?: unknown } | null)?.type === "nudge") worker.nudge();
});
// Started by a pool that is already gone (its 'disconnect' came before we listened).
if (stopRequested || (hasPool && !process.connected)) worker.stop();

worker
  .run()
  .then(async () => {
    deps.close();
    // The pool keeps a leaving worker's last figures in its sum.
    await metrics.close().catch(() => undefined);
    process.exit(0);
  })
  .catch(async (err: unknown) => {
    log.error("worker crashed", { error: String(err) });
    await metrics.close().catch(() => undefined);
    process.exit(1);
  });
