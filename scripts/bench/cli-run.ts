/**
 * Our figure: `batch-infer run` as a user runs it, the built CLI
 * (`node dist/cli.js run …`) from process start to exit, in a fresh data dir,
 * with its worker processes' peak RSS polled from /proc.
 */
import { spawn } from "node:child_process";
import { readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { silentLogger } from "../../src/core/log.ts";
import { openLocalPipeline } from "../../src/runner/local-stores.ts";
import { type BenchModel, ROOT, RUNS_DIR } from "./data.ts";

const RSS_POLL_MS = 200;

/** One run of the CLI. */
export interface CliRunResult {
  label: string;
  rows: number;
  partitions: number;
  checkpointEvery: number;
  /** Process start to exit: what the user waits for. */
  wallMs: number;
  wallRowsPerSec: number;
  /** The job's own durationMs (split → merge → completion event). */
  durationMs: number;
  rowsPerSec: number;
  /** First claim → last partition done, from the attempts: the streaming part alone. */
  windowMs: number;
  windowRowsPerSec: number;
  /** Checkpoints committed with a part (the parts the merge read). */
  commits: number;
  /** Bytes of those parts. */
  partBytes: number;
  /** Largest VmHWM of any worker process (bytes). */
  peakRssPerWorker: number;
  workerPeaks: number[];
  /** VmHWM of the CLI process itself. */
  cliPeakRss: number;
  /** What the CLI and its workers wrote to stderr (worker logs). */
  stderr: string;
}

export async function vmHwm(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return m?.[1] ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined; // exited
  }
}

/** Child pids of `pid` (its worker processes), from /proc. */
export async function childrenOf(pid: number): Promise<number[]> {
  try {
    const text = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8");
    return text.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // No children file (kernel without CONFIG_PROC_CHILDREN): scan every process's parent.
    const out: number[] = [];
    for (const name of await readdir("/proc").catch(() => [] as string[])) {
      if (!/^\d+$/.test(name)) continue;
      const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
      // pid (comm) state ppid …: comm may hold spaces, so split after its ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(name));
    }
    return out;
  }
}

/** First claim → last partition done, and the parts committed, from the partition rows. */
async function partitionFacts(
  dataDir: string,
  jobId: string,
): Promise<{ windowMs: number; commits: number; partBytes: number }> {
  const p = openLocalPipeline(dataDir, { log: silentLogger });
  try {
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    let commits = 0;
    let partBytes = 0;
    for (const { value } of await p.checkpoints.listPartitions(jobId)) {
      for (const a of value.attempts) {
        first = Math.min(first, Date.parse(a.startedAt));
        if (a.endedAt) last = Math.max(last, Date.parse(a.endedAt));
      }
      for (const ref of value.parts) {
        commits++;
        partBytes += ref.bytes;
      }
    }
    return { windowMs: Math.max(1, last - first), commits, partBytes };
  } finally {
    p.close();
  }
}

/** A run that didn't complete as expected; carries the CLI's stderr (worker logs) to inspect. */
export class CliRunError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

let seq = 0;

/**
 * `node dist/cli.js run` over `inputFile` with `workers` workers of 1 intra-op
 * thread each, in a fresh data dir (removed afterwards). Throws unless the job
 * completed with exactly `rows` records.
 */
export async function runCli(options: {
  label: string;
  model: BenchModel;
  inputFile: string;
  rows: number;
  workers: number;
  partitionBytes: number;
  checkpointEvery?: number;
  /** Extra environment for the CLI and its workers (e.g. ORT_EXECUTION_PROVIDERS). */
  env?: NodeJS.ProcessEnv;
}): Promise<CliRunResult> {
  const dataDir = path.join(RUNS_DIR, `${options.label}-${process.pid}-${++seq}`);
  await rm(dataDir, { recursive: true, force: true });
  const args = [
    path.join(ROOT, "dist", "cli.js"),
    "run",
    "--input",
    options.inputFile,
    "--model",
    options.model.descriptorPath,
    "--workers",
    String(options.workers),
    "--threads",
    "1",
    "--data-dir",
    dataDir,
    "--partition-size",
    String(options.partitionBytes),
    ...(options.checkpointEvery !== undefined
      ? ["--checkpoint-every", String(options.checkpointEvery)]
      : []),
    "--json",
  ];
  const peaks = new Map<number, number>();
  let cliPeak = 0;
  const t0 = performance.now();
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...options.env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (code) => resolve(code));
  });
  const cliPid = child.pid as number;
  let polling = false;
  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      cliPeak = Math.max(cliPeak, (await vmHwm(cliPid)) ?? 0);
      for (const pid of await childrenOf(cliPid)) {
        // VmHWM only grows: the last value seen is the process's peak so far.
        const hwm = await vmHwm(pid);
        if (hwm !== undefined) peaks.set(pid, hwm);
      }
    } finally {
      polling = false;
    }
  };
  const timer = setInterval(() => void poll(), RSS_POLL_MS);
  try {
    const code = await exited;
    const wallMs = performance.now() - t0;
    clearInterval(timer);
    if (code !== 0) {
      throw new CliRunError(
        `${options.label}: batch-infer run exited ${code}:\n${stderr.slice(-4000)}\n${stdout.slice(-2000)}`,
        stderr,
      );
    }
    const out = JSON.parse(stdout) as {
      jobId: string;
      state: string;
      result?: { records: number; durationMs: number };
    };
    const r = out.result;
    if (out.state !== "completed" || !r) {
      throw new CliRunError(`${options.label}: job ${out.jobId} ended ${out.state}`, stderr);
    }
    if (r.records !== options.rows) {
      throw new CliRunError(
        `${options.label}: scored ${r.records} records, expected ${options.rows}`,
        stderr,
      );
    }
    const p = openLocalPipeline(dataDir, { log: silentLogger });
    const job = (await p.checkpoints.getJob(out.jobId))?.value;
    p.close();
    const { windowMs, commits, partBytes } = await partitionFacts(dataDir, out.jobId);
    const workerPeaks = [...peaks.values()];
    return {
      label: options.label,
      rows: r.records,
      partitions: job?.partitionCount ?? 0,
      checkpointEvery: job?.spec.checkpointEvery ?? 0,
      wallMs,
      wallRowsPerSec: (r.records * 1000) / wallMs,
      durationMs: r.durationMs,
      rowsPerSec: (r.records * 1000) / r.durationMs,
      windowMs,
      windowRowsPerSec: (r.records * 1000) / windowMs,
      commits,
      partBytes,
      peakRssPerWorker: Math.max(0, ...workerPeaks),
      workerPeaks,
      cliPeakRss: cliPeak,
      stderr,
    };
  } finally {
    clearInterval(timer);
    if (child.exitCode === null) child.kill("SIGKILL");
    await rm(dataDir, { recursive: true, force: true });
  }
}
