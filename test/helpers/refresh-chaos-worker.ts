/**
 * A worker process for test/refresh-chaos.test.ts: the real PartitionWorker over the
 * embedded stores, started by the real ProcessPool, that kills itself at chosen
 * states of the refresh it is told about — never at times, so the run is the same
 * under any load. REFRESH_CHAOS is JSON:
 * - `generation`: the refresh (its job) the plan applies to;
 * - `partitions`: partition index → "kill-at-commit" (SIGKILL right after its first
 *   checkpoint), "kill-after-commit" (SIGKILL a turn later: mid-chunk, batches on the
 *   inference thread) or "term" (SIGTERM: checkpoint and hand back), first attempt only;
 * - `killInFinish`: SIGKILL while the job's merge writes the generation's embedding
 *   set (once: a marker file in the data dir says it happened).
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { Transform } from "node:stream";
import { createLogger } from "../../src/core/log.ts";
import { PartitionWorker } from "../../src/pipeline/partition-worker.ts";
import { openLocalPipeline } from "../../src/runner/local-stores.ts";

const dataDir = process.env.BATCH_INFER_DATA_DIR;
if (!dataDir) throw new Error("BATCH_INFER_DATA_DIR is required");
const plan = JSON.parse(process.env.REFRESH_CHAOS ?? "{}") as {
  generation?: number;
  partitions?: Record<string, string>;
  killInFinish?: boolean;
};

/** True the first time it is called across every worker of the data dir. */
function once(name: string): boolean {
  try {
    writeFileSync(path.join(dataDir as string, name), "", { flag: "wx" });
    return true;
  } catch {
    return false;
  }
}

const base = openLocalPipeline(dataDir, { log: createLogger({ level: "error" }) });
const store = base.store;
const deps = {
  ...base,
  store: {
    head: store.head.bind(store),
    read: store.read.bind(store),
    list: store.list.bind(store),
    delete: store.delete.bind(store),
    put(...args: Parameters<typeof store.put>) {
      const [bucket, name, body, options] = args;
      const target = `/v${plan.generation}/embeddings.jsonl`;
      if (
        plan.killInFinish &&
        name.endsWith(target) &&
        typeof body === "object" &&
        "pipe" in body
      ) {
        // Die once the first bytes of the set are on their way: the merge is redelivered.
        const tripwire = new Transform({
          transform(chunk, _enc, done) {
            if (once("killed-in-finish")) process.kill(process.pid, "SIGKILL");
            done(null, chunk);
          },
        });
        return store.put(bucket, name, body.pipe(tripwire), options);
      }
      return store.put(bucket, name, body, options);
    },
  },
};
const refreshOf = new Map<string, number | undefined>();
const worker = new PartitionWorker(deps, {
  workerId: process.env.WORKER_ID ?? `refresh-chaos-${process.pid}`,
  receiveWaitSeconds: 1,
  onClaim: (claim) => process.send?.({ type: "claim", claim: claim ?? null }),
  onCommit: async (p) => {
    process.send?.({
      type: "commit",
      partition: p.index,
      offset: p.offset,
      end: p.end,
      done: p.state === "done",
    });
    if (!refreshOf.has(p.jobId)) {
      refreshOf.set(p.jobId, (await base.checkpoints.getJob(p.jobId))?.value.refresh?.generation);
    }
    if (refreshOf.get(p.jobId) !== plan.generation) return;
    const action = plan.partitions?.[String(p.index)];
    if (!action || p.state === "done" || p.attempts.length !== 1 || p.parts.length !== 1) return;
    if (action === "kill-at-commit") process.kill(process.pid, "SIGKILL");
    else if (action === "kill-after-commit")
      setImmediate(() => process.kill(process.pid, "SIGKILL"));
    else if (action === "term") process.kill(process.pid, "SIGTERM");
  },
});
const stop = () => worker.stop();
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.on("disconnect", stop);
await worker.run();
base.close();
process.exit(0);
