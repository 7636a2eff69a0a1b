export {
  aggregateMetrics,
  answerMetricsRequests,
  METRICS_REPLY,
  METRICS_REQUEST,
  type MetricsJson,
  requestWorkerMetrics,
} from "./pool-metrics.ts";
export {
  DEFAULT_METRICS_PORT,
  type MetricsServer,
  metricsPortFromEnv,
  PROMETHEUS_CONTENT_TYPE,
  startMetricsServer,
} from "./server.ts";
export {
  METRICS_IPC_ENV,
  startWorkerMetrics,
  type WorkerMetricsEndpoint,
} from "./worker-endpoint.ts";
export { METRIC_PREFIX, type WorkerIdentity, WorkerMetrics } from "./worker-metrics.ts";
export { type AttemptOutcome, noopObserver, type WorkerObserver } from "./worker-observer.ts";
