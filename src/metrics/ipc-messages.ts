/**
 * The messages between the embedded pool and its worker processes about metrics,
 * over the fork IPC channel. Apart from prom-client, so the pool can read them
 * without loading it (a run without --metrics-port never does).
 */

/** Parent → worker: `{ type, id }`. */
export const METRICS_REQUEST = "metrics-request";
/** Worker → parent: `{ type, id, metrics }` (prom-client's getMetricsAsJSON). */
export const METRICS_REPLY = "metrics-reply";
/**
 * Worker → parent, once it answers requests: `{ type }`. The pool asks only workers
 * that said so, so a scrape while workers boot (or wait, held) is answered at once
 * instead of waiting out the request timeout for each.
 */
export const METRICS_READY = "metrics-ready";
/**
 * Worker → parent as it leaves: `{ type, metrics }`, its last figures. The pool keeps
 * their counters and histograms in its sum, so the sum never goes down when a worker
 * exits (Prometheus would read that as a counter reset).
 */
export const METRICS_FINAL = "metrics-final";

/** One worker's metrics as prom-client's JSON (opaque here; only aggregated). */
export type MetricsJson = object[];

/** The figures in a worker's METRICS_FINAL message, or undefined for any other message. */
export function finalMetricsOf(message: unknown): MetricsJson | undefined {
  const m = message as { type?: unknown; metrics?: unknown } | null;
  return m?.type === METRICS_FINAL && Array.isArray(m.metrics) ? m.metrics : undefined;
}
