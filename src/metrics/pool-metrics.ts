/**
 * The embedded default's pool metrics: the parent asks each worker child for
 * its metrics over the fork IPC channel and serves their sum on one port
 * (counters and histograms add up; labelled series such as the partition in
 * hand stay one per label set). Workers need no port of their own for this.
 */
import type { ChildProcess } from "node:child_process";
import { AggregatorRegistry, type Registry, type RegistryContentType } from "prom-client";
import {
  METRICS_FINAL,
  METRICS_READY,
  METRICS_REPLY,
  METRICS_REQUEST,
  type MetricsJson,
} from "./ipc-messages.ts";

export { METRICS_FINAL, METRICS_READY, METRICS_REPLY, METRICS_REQUEST, type MetricsJson };

interface RequestMessage {
  type: typeof METRICS_REQUEST;
  id: number;
}
interface ReplyMessage {
  type: typeof METRICS_REPLY;
  id: number;
  metrics: MetricsJson;
}

function isRequest(m: unknown): m is RequestMessage {
  return (m as RequestMessage | null)?.type === METRICS_REQUEST;
}
function isReply(m: unknown, id: number): m is ReplyMessage {
  const r = m as ReplyMessage | null;
  return r?.type === METRICS_REPLY && r.id === id && Array.isArray(r.metrics);
}

/**
 * A send's callback: a message to a pool that has just gone (its channel closing) is
 * dropped. Without a callback, the failure would be an 'error' event on the process,
 * and an unhandled one ends it.
 */
const ignoreSendError = () => undefined;

/**
 * In a worker process: answer the pool's metrics requests from `registry`.
 * Returns a function that stops answering. Does nothing without an IPC channel.
 */
export function answerMetricsRequests(
  registry: Registry<RegistryContentType>,
  proc: NodeJS.Process = process,
): () => void {
  if (!proc.send) return () => {};
  const onMessage = (m: unknown) => {
    if (!isRequest(m)) return;
    registry.getMetricsAsJSON().then(
      (metrics) => {
        const reply: ReplyMessage = { type: METRICS_REPLY, id: m.id, metrics };
        // The channel may be gone (the pool exiting): nothing to answer then.
        if (proc.connected) proc.send?.(reply, ignoreSendError);
      },
      () => undefined,
    );
  };
  proc.on("message", onMessage);
  if (proc.connected) proc.send({ type: METRICS_READY }, ignoreSendError);
  return () => proc.off("message", onMessage);
}

/**
 * In a worker process about to exit: send the pool its last figures. Resolves once
 * the message is written (or could not be: no channel, the pool gone).
 */
export async function sendFinalMetrics(
  registry: Registry<RegistryContentType>,
  proc: NodeJS.Process = process,
): Promise<void> {
  if (!proc.send || !proc.connected) return;
  const metrics = await registry.getMetricsAsJSON();
  await new Promise<void>((resolve) => {
    try {
      proc.send?.({ type: METRICS_FINAL, metrics }, () => resolve());
    } catch {
      resolve();
    }
  });
}

let nextId = 0;

/**
 * In the pool: ask one worker child for its metrics. Resolves undefined when it
 * doesn't answer within `timeoutMs` (busy in a long synchronous batch, exiting),
 * so one slow worker never fails a scrape of the others.
 */
export function requestWorkerMetrics(
  child: ChildProcess,
  timeoutMs = 2000,
): Promise<MetricsJson | undefined> {
  if (!child.connected) return Promise.resolve(undefined);
  const id = ++nextId;
  return new Promise((resolve) => {
    const done = (value: MetricsJson | undefined) => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      resolve(value);
    };
    const onMessage = (m: unknown) => {
      if (isReply(m, id)) done(m.metrics);
    };
    const onExit = () => done(undefined);
    const timer = setTimeout(() => done(undefined), timeoutMs);
    child.on("message", onMessage);
    child.on("exit", onExit);
    const request: RequestMessage = { type: METRICS_REQUEST, id };
    child.send(request, (err) => {
      if (err) done(undefined);
    });
  });
}

/**
 * The sum of several workers' metrics in the text exposition format, plus
 * `batch_infer_pool_workers_scraped`, how many answered. `departed` are the last
 * figures of workers that have exited: their counters and histograms stay in the
 * sum, their gauges (what a worker holds now) do not.
 */
export async function aggregateMetrics(
  perWorker: (MetricsJson | undefined)[],
  departed: readonly MetricsJson[] = [],
): Promise<string> {
  const answered = perWorker.filter((m): m is MetricsJson => m !== undefined);
  const kept = departed.map((m) =>
    m.filter((metric) => (metric as { type?: unknown }).type !== "gauge"),
  );
  const all = [...answered, ...kept];
  const text = all.length > 0 ? await AggregatorRegistry.aggregate(all).metrics() : "";
  return (
    `${text}# HELP batch_infer_pool_workers_scraped Worker processes that answered this scrape.\n` +
    `# TYPE batch_infer_pool_workers_scraped gauge\n` +
    `batch_infer_pool_workers_scraped ${answered.length}\n`
  );
}
