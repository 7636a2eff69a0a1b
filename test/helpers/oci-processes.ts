/**
 * Processes of an OCI deployment against the stand-in: the bundled functions on Fn
 * unix sockets, worker "pods", the bundled CLI — and a poll helper. The OCI e2e and
 * media e2e tests share them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync } from "node:fs";
import path from "node:path";

/** Children started here, to kill at the end. */
export class OciProcesses {
  readonly children: ChildProcess[] = [];

  constructor(private readonly dir: string) {}

  /** Start `script` with `env` (on top of this process's). */
  node(script: string, env: Record<string, string>, label: string): ChildProcess {
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, LOG_LEVEL: process.env.OCI_TEST_LOGS ?? "warn", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (d) => {
      stderr += d;
      if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
    });
    child.on("exit", (code, signal) => {
      if (code !== 0 && signal === null) console.error(`${label} exited ${code}: ${stderr}`);
    });
    if (process.env.OCI_TEST_LOGS) {
      child.stderr?.pipe(
        createWriteStream(path.join(this.dir, `${label.replace(/\W+/g, "-")}.log`)),
      );
    }
    this.children.push(child);
    return child;
  }

  /** The bundled function `name` listening on a fresh Fn socket; returns the socket path. */
  async fn(name: string, env: Record<string, string>): Promise<string> {
    const sock = path.join(this.dir, `fn-${name}-${this.children.length}`, "lsnr.sock");
    mkdirSync(path.dirname(sock), { recursive: true });
    const child = this.node(
      "dist/functions.cjs",
      { FN_FORMAT: "http-stream", FN_LISTENER: `unix:${sock}`, BATCH_INFER_FUNCTION: name, ...env },
      `function ${name}`,
    );
    for (let i = 0; i < 400 && !existsSync(sock); i++) {
      if (child.exitCode !== null) throw new Error(`function ${name} exited`);
      await new Promise((r) => setTimeout(r, 25));
    }
    if (!existsSync(sock)) throw new Error(`function ${name} never opened its socket`);
    return sock;
  }

  /** The bundled CLI, without blocking this process (the stand-in serves from it). */
  cli(
    args: string[],
    env: Record<string, string>,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ["dist/cli.js", ...args], {
        env: { ...process.env, ...env, LOG_LEVEL: "error" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout?.on("data", (d) => {
        stdout += d;
      });
      child.stderr?.on("data", (d) => {
        stderr += d;
      });
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  }

  killAll(): void {
    for (const c of this.children) c.kill("SIGKILL");
  }
}

/** Poll `check` until it returns a value (state changes in other processes), at most `ms`. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  ms = 120_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
