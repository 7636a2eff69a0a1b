/**
 * A worker process (one "pod"): started by the local pool, or as the OKE
 * Deployment's container. It receives tasks until SIGTERM, then checkpoints and
 * hands back its partition. Configuration comes from the environment; the
 * backend (embedded or OCI) from BATCH_INFER_BACKEND.
 */
import { createLogger, type LogLevel } from "../core/log.ts";
import { observerCallbacks } from "../metrics/callback-bridge.ts";
import { startWorkerMetrics } from "../metrics/worker-endpoint.ts";
import { PartitionWorker } from "../pipeline/partition-worker.ts";
import { openPipelineFromEnv } from "./backend.ts";
import { workerConfigFromEnv } from "./worker-config.ts";

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
if (metrics.port !== undefined) process.send?.({ type: "metrics-listening", port: metrics.port });
const observe = observerCallbacks(metrics.observer);
const worker = new PartitionWorker(deps, {
  workerId: config.workerId,
  scorer: {
    intraOpThreads: config.intraOpThreads,
    thread: config.inferenceThread,
    executionProviders: config.executionProviders,
  },
  receiveWaitSeconds: 1,
  onClaim: (claim) => {
    observe.onClaim(claim);
    process.send?.({ type: "claim", claim: claim ?? null });
  },
  onCommit: (p) => {
    observe.onCommit(p);
    process.send?.({
      type: "commit",
      partition: p.index,
      offset: p.offset,
      end: p.end,
      done: p.state === "done",
    });
  },
});

let signals = 0;
const onStop = () => {
  signals++;
  if (signals > 1) process.exit(143);
  worker.stop();
};
process.on("SIGTERM", onStop);
process.on("SIGINT", onStop);
// The pool going away (parent killed) is a stop too.
process.on("disconnect", onStop);

worker
  .run()
  .then(() => {
    deps.close();
    process.exit(0);
  })
  .catch((err: unknown) => {
    log.error("worker crashed", { error: String(err) });
    process.exit(1);
  });
