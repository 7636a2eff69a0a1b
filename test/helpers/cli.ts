/**
 * The CLI as a user runs it: a child process from source (tsx), sync or async, with
 * its exit code, stdout and stderr — for the outside-in suites.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root (the CLI resolves relative paths from the caller's directory). */
export const REPO_ROOT = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));
const MAIN = path.join(REPO_ROOT, "src/cli/main.ts");

/** What a finished CLI process left. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI to completion. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = REPO_ROOT): CliResult {
  const r = spawnSync(process.execPath, ["--import", "tsx", MAIN, ...args], {
    encoding: "utf8",
    cwd,
    env: { ...process.env, FORCE_COLOR: "0", ...env },
    maxBuffer: 256 * 1024 * 1024,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** A CLI process running in the background. */
export interface RunningCli {
  proc: ChildProcess;
  /** Resolves when it exits. */
  done: Promise<CliResult>;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
}

/** Start the CLI without waiting for it. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  const proc = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, FORCE_COLOR: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  proc.stderr?.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  const done = new Promise<CliResult>((resolve) => {
    proc.on("close", (code, signal) => resolve({ code, signal, stdout: out, stderr: err }));
  });
  return { proc, done, stdout: () => out, stderr: () => err };
}

/** The job id a `run` summary names. */
export function jobIdOf(stdout: string): string {
  const id = /job (job-[0-9a-f]{24}) /.exec(stdout)?.[1];
  if (!id) throw new Error(`no job id in:\n${stdout}`);
  return id;
}
