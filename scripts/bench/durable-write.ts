/**
 * The least CPU a checkpoint's part can cost here: the barest durable atomic write of
 * a file of the part's size (temp file, write, fsync, rename, directory fsync, nothing
 * else), measured in this process. Every checkpoint has to make its part durable
 * before the checkpoint names it, so the extra checkpoints of a run times this is a
 * floor under the checkpoint overhead, whatever the store does besides.
 */
import {
  closeSync,
  fsync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
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

/** Busy CPU time of the whole machine so far, in ms (/proc/stat: every CPU, every process and kernel thread). */
function machineBusyMs(): number | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: busy = all but idle, iowait and steal.
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0);
    return (busy * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/** CPU per durable write of a part's size, in ms: this process's, and the machine's. */
export interface DurableWriteCpu {
  /** Median user + kernel CPU of this process per write. */
  processMs: number;
  /**
   * Mean busy CPU of the whole machine per write (this process, plus the kernel's
   * journal threads and interrupts an fsync sets to work), or the process figure where
   * /proc/stat can't be read. Only meaningful on an otherwise idle machine, as the
   * bench runs it.
   */
  machineMs: number;
}

/** CPU per durable write of `bytes`, over `count` writes (see {@link DurableWriteCpu}). */
export async function durableWriteCpuMs(bytes: number, count = 400): Promise<DurableWriteCpu> {
  const dir = path.join(RUNS_DIR, `durable-write-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const body = Buffer.alloc(Math.max(1, Math.round(bytes)), 65);
  const samples: number[] = [];
  const busy0 = machineBusyMs();
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
  const busy1 = machineBusyMs();
  samples.sort((a, b) => a - b);
  const processMs = samples[samples.length >> 1] ?? 0;
  const machineMs =
    busy0 !== undefined && busy1 !== undefined
      ? Math.max(processMs, (busy1 - busy0) / count)
      : processMs;
  return { processMs, machineMs };
}
