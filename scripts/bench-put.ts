/**
 * What one checkpoint's part write costs here: the local store's put of a 200 KB part
 * against the least a durable atomic write can do (temp file, write, fsync, rename,
 * directory fsync, nothing else). CPU per put (user and kernel) and the worker
 * thread's event-loop time; the kernel time is mostly the two fsyncs.
 * Usage: npx tsx scripts/bench-put.ts [puts=300]
 */
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { LocalObjectStore } from "../src/adapters/local/fs-object-store.ts";
import { durableWrite } from "./bench/durable-write.ts";

const PUTS = Number(process.argv[2] ?? 300);
const body = Buffer.alloc(200_000, 65);
const root = path.join(tmpdir(), `bench-put-${process.pid}`);

async function measure(label: string, put: (i: number) => Promise<unknown>): Promise<void> {
  const loop0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < PUTS; i++) await put(i);
  const wall = (performance.now() - t0) / PUTS;
  const cpu = process.cpuUsage(cpu0);
  const loop = performance.eventLoopUtilization(loop0);
  console.log(
    `${label.padEnd(34)} wall ${wall.toFixed(2)} ms  user ${(cpu.user / 1000 / PUTS).toFixed(2)} ms  kernel ${(cpu.system / 1000 / PUTS).toFixed(2)} ms  event loop ${(loop.active / PUTS).toFixed(2)} ms`,
  );
}

try {
  const store = new LocalObjectStore({ root });
  const dir = path.join(root, "floor");
  mkdirSync(dir, { recursive: true });
  await store.put("b", "warm", body);
  console.log(`${PUTS} puts of ${body.length.toLocaleString("en-US")} bytes, per put:`);
  for (let round = 0; round < 2; round++) {
    await measure("minimal durable write", (i) =>
      durableWrite(path.join(dir, `p${round}-${i}`), body),
    );
    await measure("LocalObjectStore.put (a part)", (i) =>
      store.put("b", `jobs/j/parts/p00001/c${round}-${i}.jsonl`, body),
    );
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
