/**
 * The text bench's end-to-end figures: the built CLI as a user runs it —
 * `batch-infer run` over a JSONL corpus, and `batch-infer refresh` over a directory
 * of documents (a full first refresh, then one after 1% of the documents changed) —
 * timed from process start to exit, with the CPU time of the CLI and its workers and
 * each worker's peak RSS (VmHWM, polled from /proc).
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { generateCorpus } from "../../src/tasks/text-embedding/model-gen/corpus.ts";
import { childrenOf, vmHwm } from "./cli-run.ts";

const POLL_MS = 200;

/** One measured command. */
export interface Measured {
  seconds: number;
  /** CPU time of the command and every process it waited for (its workers). */
  cpuSeconds: number;
  /** Largest VmHWM of any worker process, MB. */
  peakWorkerRssMB: number;
  workers: number;
  stdout: string;
}

/** CPU time (s) of the processes this one has waited for: utime+stime of reaped children. */
function childrenCpuSeconds(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 16 and 17 (cutime, cstime) are at 13 and 14 after "state".
  const ticks = Number(fields[13]) + Number(fields[14]);
  return ticks / 100;
}

/** Run `node args…` to exit, measuring it. Throws with its stderr when it fails. */
export async function measure(args: string[], cwd: string): Promise<Measured> {
  const peaks = new Map<number, number>();
  const cpu0 = childrenCpuSeconds();
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    stderr = `${stderr}${d}`.slice(-20_000);
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  const pid = child.pid as number;
  let polling = false;
  const timer = setInterval(() => {
    if (polling) return;
    polling = true;
    void (async () => {
      for (const w of await childrenOf(pid)) {
        const hwm = await vmHwm(w);
        if (hwm !== undefined) peaks.set(w, hwm);
      }
    })().finally(() => {
      polling = false;
    });
  }, POLL_MS);
  const code = await exited;
  clearInterval(timer);
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0 && code !== 3) {
    throw new Error(`${args.slice(1, 3).join(" ")} exited ${code}:\n${stderr.slice(-3000)}`);
  }
  return {
    seconds,
    cpuSeconds: childrenCpuSeconds() - cpu0,
    peakWorkerRssMB: Math.round(Math.max(0, ...peaks.values()) / 1024 / 1024),
    workers: peaks.size,
    stdout,
  };
}

/** `batch-infer run` over a JSONL corpus with the built CLI, in a fresh data dir. */
export async function runEndToEnd(options: {
  root: string;
  corpus: string;
  descriptor: string;
  workers: number;
  threads: number;
  dataDir: string;
}): Promise<Measured & { records: number }> {
  await rm(options.dataDir, { recursive: true, force: true });
  const m = await measure(cliArgs(options, "run", "--input"), options.root);
  const out = JSON.parse(m.stdout) as { state: string; result?: { records: number } };
  if (out.state !== "completed") throw new Error(`run ended ${out.state}`);
  await rm(options.dataDir, { recursive: true, force: true });
  return { ...m, records: out.result?.records ?? 0 };
}

/** A directory of `count` documents (one file each), generated once and reused. */
export async function ensureCorpusDir(dir: string, count: number): Promise<void> {
  const marker = path.join(dir, ".complete");
  if (existsSync(marker)) return;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  let i = 0;
  const docs = generateCorpus(count, 4242);
  // A few at a time: 100,000 files.
  for (let k = 0; k < docs.length; k += 256) {
    await Promise.all(
      docs
        .slice(k, k + 256)
        .map((d) => writeFile(path.join(dir, `${d.id}.txt`), d.text).then(() => i++)),
    );
  }
  await writeFile(marker, String(i));
}

/** Rewrite every `every`-th document with new text (it names `round`); returns how many changed. */
export async function changeCorpus(dir: string, every: number, round: number): Promise<number> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(".txt")).sort();
  let changed = 0;
  for (let i = 0; i < names.length; i += every) {
    await writeFile(
      path.join(dir, names[i] as string),
      `Revised (${round}): the derby ended with a late goal, and the cup final is next.`,
    );
    changed++;
  }
  return changed;
}

/** The built CLI's argv for `command` over the corpus, with the bench's workers, threads and data dir. */
function cliArgs(
  options: {
    root: string;
    corpus: string;
    descriptor: string;
    workers: number;
    threads: number;
    dataDir: string;
  },
  command: "run" | "refresh",
  corpusFlag: "--input" | "--corpus",
): string[] {
  return [
    path.join(options.root, "dist", "cli.js"),
    command,
    corpusFlag,
    options.corpus,
    "--model",
    options.descriptor,
    "--workers",
    String(options.workers),
    "--threads",
    String(options.threads),
    "--data-dir",
    options.dataDir,
    "--json",
  ];
}

/** `batch-infer refresh --corpus DIR` with the built CLI. */
export async function refreshEndToEnd(options: {
  root: string;
  corpus: string;
  descriptor: string;
  workers: number;
  threads: number;
  dataDir: string;
}): Promise<Measured & { action: string; counts: Record<string, number>; documents: number }> {
  const m = await measure(cliArgs(options, "refresh", "--corpus"), options.root);
  const out = JSON.parse(m.stdout) as {
    requested?: { action: string };
    head?: { current?: { counts: Record<string, number>; documents: number } };
  };
  return {
    ...m,
    action: out.requested?.action ?? "?",
    counts: out.head?.current?.counts ?? {},
    documents: out.head?.current?.documents ?? 0,
  };
}
