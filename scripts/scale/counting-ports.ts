/**
 * Counting wrappers around the ports: every call a pipeline step makes through
 * the object store, task queue, checkpoint store or event sink is counted per
 * service and method, together with the billed units each call moves (NoSQL
 * row reads and writes, queue messages, events), because on OCI a single
 * `readPartitions` is one query that is billed per row it returns.
 */
import type { PipelineStores } from "../../src/pipeline/deps.ts";

/** The four services a job talks to, named as on OCI. */
export type Service = "objectStorage" | "queue" | "nosql" | "streaming";

/** Figures for one method of one service. */
export interface MethodCount {
  /** Port calls (one request each, except where a call pages on OCI). */
  calls: number;
  /** Rows returned (checkpoint store reads) or items returned (list, receive). */
  itemsRead: number;
  /** Rows or messages or events written. */
  itemsWritten: number;
}

/** Counts per service, per method. */
export type RequestCounts = Record<Service, Record<string, MethodCount>>;

/** Per-service totals. */
export interface ServiceTotals {
  calls: number;
  itemsRead: number;
  itemsWritten: number;
}

/** How many items a call moved, by method: what OCI would bill beyond the request itself. */
type Units = (args: unknown[], result: unknown) => { read?: number; written?: number };

const one = () => ({ read: 1 });
const lengthOf = (x: unknown) => (Array.isArray(x) ? x.length : 0);

const UNITS: Record<Service, Record<string, Units>> = {
  nosql: {
    createJob: () => ({ written: 1 }),
    getJob: (_a, r) => ({ read: r ? 1 : 0 }),
    updateJob: () => ({ written: 1 }),
    listJobs: (_a, r) => ({ read: lengthOf(r) }),
    createPartitions: (a) => ({ written: lengthOf(a[0]) }),
    getPartition: (_a, r) => ({ read: r ? 1 : 0 }),
    updatePartition: () => ({ written: 1 }),
    listPartitions: (_a, r) => ({ read: lengthOf(r) }),
    readPartitions: (_a, r) => ({ read: lengthOf(r) }),
  },
  queue: {
    send: (a) => ({ written: lengthOf(a[0]) }),
    receive: (_a, r) => ({ read: lengthOf(r) }),
    changeVisibility: () => ({}),
    delete: () => ({}),
    deadLetter: () => ({}),
    stats: one,
  },
  objectStorage: {
    head: (_a, r) => ({ read: r ? 1 : 0 }),
    read: one,
    put: () => ({ written: 1 }),
    list: (_a, r) => ({ read: (r as { objects?: unknown[] } | undefined)?.objects?.length ?? 0 }),
    delete: () => ({ written: 1 }),
  },
  streaming: {
    publish: (a) => ({ written: lengthOf(a[0]) }),
  },
};

/** A fresh, zeroed set of counts. */
export function emptyCounts(): RequestCounts {
  return { objectStorage: {}, queue: {}, nosql: {}, streaming: {} };
}

function bump(counts: RequestCounts, service: Service, method: string): MethodCount {
  const byMethod = counts[service];
  let c = byMethod[method];
  if (!c) {
    c = { calls: 0, itemsRead: 0, itemsWritten: 0 };
    byMethod[method] = c;
  }
  return c;
}

/**
 * Wrap a port so each method call is counted into `counts[service]`. Calls
 * that throw count as calls (a request was made) but move no items.
 */
export function countingPort<T extends object>(
  service: Service,
  target: T,
  counts: RequestCounts,
): T {
  const units = UNITS[service];
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value = Reflect.get(obj, prop, receiver) as unknown;
      if (typeof prop !== "string" || typeof value !== "function") return value;
      const rule = units[prop];
      if (!rule) return value;
      return async (...args: unknown[]) => {
        const c = bump(counts, service, prop);
        c.calls++;
        const result: unknown = await (value as (...a: unknown[]) => unknown).apply(obj, args);
        const u = rule(args, result);
        c.itemsRead += u.read ?? 0;
        c.itemsWritten += u.written ?? 0;
        return result;
      };
    },
  });
}

/** The pipeline's stores with every port wrapped in a counter, and the counts they fill. */
export function countingStores<D extends PipelineStores>(
  deps: D,
): { deps: D; counts: RequestCounts } {
  const counts = emptyCounts();
  return {
    counts,
    deps: {
      ...deps,
      store: countingPort("objectStorage", deps.store, counts),
      queue: countingPort("queue", deps.queue, counts),
      checkpoints: countingPort("nosql", deps.checkpoints, counts),
      events: countingPort("streaming", deps.events, counts),
    },
  };
}

/** Totals per service. */
export function totals(counts: RequestCounts): Record<Service, ServiceTotals> {
  const out = {} as Record<Service, ServiceTotals>;
  for (const service of Object.keys(counts) as Service[]) {
    const t = { calls: 0, itemsRead: 0, itemsWritten: 0 };
    for (const c of Object.values(counts[service])) {
      t.calls += c.calls;
      t.itemsRead += c.itemsRead;
      t.itemsWritten += c.itemsWritten;
    }
    out[service] = t;
  }
  return out;
}
