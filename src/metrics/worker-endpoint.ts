/**
 * What a worker process starts for metrics, from its environment:
 * METRICS_PORT serves `/metrics` over HTTP (a pod, scraped by Prometheus);
 * BATCH_INFER_METRICS_IPC=1 answers the embedded pool's metrics requests over
 * the fork IPC channel (the CLI's pool endpoint). With neither, nothing is
 * loaded: prom-client costs ~30 ms of start-up, which every `run` would pay twice.
 */
import type { Logger } from "../core/log.ts";
import { metricsPortFromEnv } from "./server.ts";
import type { WorkerIdentity } from "./worker-metrics.ts";
import { noopObserver, type WorkerObserver } from "./worker-observer.ts";

/** The env var that asks a worker to answer the pool's metrics requests over IPC. */
export const METRICS_IPC_ENV = "BATCH_INFER_METRICS_IPC";

/** A worker's metrics as started: the observer to feed, and the port when serving. */
export interface WorkerMetricsEndpoint {
  observer: WorkerObserver;
  /** The HTTP port `/metrics` is served on, when METRICS_PORT was set. */
  port?: number;
  /** Stop serving; over IPC, first send the pool this worker's last figures. */
  close(): Promise<void>;
}

/**
 * Start the worker's metrics as `env` asks (fails fast on a bad METRICS_PORT,
 * before any work is taken); `noopObserver` when it asks for none.
 */
export async function startWorkerMetrics(
  env: NodeJS.ProcessEnv,
  identity: WorkerIdentity,
  log: Logger,
): Promise<WorkerMetricsEndpoint> {
  const port = metricsPortFromEnv(env);
  const ipc = env[METRICS_IPC_ENV] === "1";
  if (port === undefined && !ipc) return { observer: noopObserver, close: async () => {} };
  const [{ WorkerMetrics }, { answerMetricsRequests, sendFinalMetrics }, { startMetricsServer }] =
    await Promise.all([
      import("./worker-metrics.ts"),
      import("./pool-metrics.ts"),
      import("./server.ts"),
    ]);
  const metrics = new WorkerMetrics(identity);
  // Answering costs nothing until asked, and a no-op without an IPC channel (a pod).
  const stopAnswering = answerMetricsRequests(metrics.registry);
  // Like answering, a no-op without an IPC channel.
  const leave = async () => {
    await sendFinalMetrics(metrics.registry);
    stopAnswering();
  };
  if (port === undefined) return { observer: metrics, close: leave };
  const server = await startMetricsServer({ port, render: () => metrics.metrics() });
  log.info("serving metrics", { port: server.port, path: "/metrics" });
  return {
    observer: metrics,
    port: server.port,
    close: async () => {
      await leave();
      await server.close();
    },
  };
}
