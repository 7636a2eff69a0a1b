/**
 * The least CPU a checkpoint's part can cost here: the barest durable atomic write of
 * a file of the part's size (temp file, write, fsync, rename, directory fsync, nothing
 * else), measured in this process. Every checkpoint has to make its part durable
 * before the checkpoint names it, so the extra checkpoints of a run times this is a
 * floor under the checkpoint overhead, whatever the store does besides.
 */
import { closeSync, fsync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { RUNS_DIR } from "./data.ts";

const fsyncAsync = promisify(fsync);

/** The barest durable atomic write of `body` as `file` (temp, write, fsync, rename, folder fsync). */
export async function durableWrite(file: string, body: Buffer): Promise<void> {
  const fd = openSync(`${file}.tmp`, "wx");
  writeSync(fd, body);
  await fsyncAsync(fd);
  closeSync(fd);
  renameSync(`${file}.tmp`, file);
  const d = openSync(path.dirname(file), "r");
  await fsyncAsync(d);
  closeSync(d);
}

/** Median CPU (user + kernel) per durable write of `bytes`, in ms, over `count` writes. */
export async function durableWriteCpuMs(bytes: number, count = 200): Promise<number> {
  const dir = path.join(RUNS_DIR, `durable-write-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const body = Buffer.alloc(Math.max(1, Math.round(bytes)), 65);
  const samples: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const cpu0 = process.cpuUsage();
      await durableWrite(path.join(dir, `p${i}`), body);
      const cpu = process.cpuUsage(cpu0);
      samples.push((cpu.user + cpu.system) / 1000);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1] ?? 0;
}
