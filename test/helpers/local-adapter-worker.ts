/**
 * Child process for the multi-process tests in test/local-adapters.test.ts.
 *
 *   queue <dbPath> <queueName>        receive+delete until the queue is drained;
 *                                     prints {"id","deliveryCount"} per deleted message
 *   cas   <dbPath> <jobId> <times>    increment job.runAttempt `times` times by read+CAS
 *                                     retry; prints {"conflicts"} at the end
 *
 * Each prints "ready", then waits for a line on stdin before starting, so the
 * parent can release all children at once and they really contend.
 */
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { SqliteCheckpointStore } from "../../src/adapters/local/sqlite-checkpoint-store.ts";
import { SqliteTaskQueue } from "../../src/adapters/local/sqlite-task-queue.ts";
import { ConflictError } from "../../src/core/errors.ts";

const [mode, dbPath, name, count] = process.argv.slice(2);
if (!mode || !dbPath || !name)
  throw new Error("usage: local-adapter-worker <queue|cas> <db> <name> [times]");

const out = (line: unknown): void => {
  process.stdout.write(`${typeof line === "string" ? line : JSON.stringify(line)}\n`);
};

out("ready");
await once(process.stdin, "data");
process.stdin.pause();

if (mode === "queue") {
  const queue = new SqliteTaskQueue({ path: dbPath, queue: name, maxDeliveries: 0 });
  for (;;) {
    const messages = await queue.receive({ max: 5, visibilitySeconds: 120 });
    if (messages.length === 0) {
      // In-flight messages belong to the other workers (long visibility, no expiry).
      if ((await queue.stats()).visible === 0) break;
      await sleep(5);
      continue;
    }
    for (const m of messages) {
      await queue.delete(m.receipt);
      out({ id: m.id, deliveryCount: m.deliveryCount });
    }
  }
  queue.close();
} else if (mode === "cas") {
  const store = new SqliteCheckpointStore({ path: dbPath });
  const times = Number(count);
  let conflicts = 0;
  for (let i = 0; i < times; i++) {
    for (;;) {
      const row = await store.getJob(name);
      if (!row) throw new Error(`job ${name} missing`);
      try {
        await store.updateJob(
          name,
          { ...row.value, runAttempt: row.value.runAttempt + 1 },
          row.version,
        );
        break;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        conflicts++;
      }
    }
  }
  store.close();
  out({ conflicts });
} else {
  throw new Error(`unknown mode ${mode}`);
}
