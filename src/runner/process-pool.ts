import { type ChildProcess, fork } from "node:child_process";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import {
  describeError,
  InvalidArgumentError,
  LeaseLostError,
  PipelineError,
} from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { finalMetricsOf, METRICS_READY, type MetricsJson } from "../metrics/ipc-messages.ts";
import type { ReplicaTarget } from "../ports/replica-target.ts";
import type { TaskQueue } from "../ports/task-queue.ts";

/** How to start a worker process. */
export interface WorkerCommand {
  modulePath: string;
  execArgv: string[];
}

/** The worker entry next to this module: the .ts source under tsx, or the bundle's worker.js. */
export function defaultWorkerCommand(): WorkerCommand {
  const here = import.meta.url;
  if (here.endsWith(".ts")) {
    return {
      modulePath: fileURLToPath(new URL("./worker-main.ts", here)),
      execArgv: ["--import", "tsx"],
    };
  }
  return { modulePath: fileURLToPath(new URL("./worker.js", here)), execArgv: [] };
}

/** One worker process as the pool sees it. */
export interface PoolMember {
  id: string;
  pid: number | undefined;
  busy: boolean;
  stopping: boolean;
  claim?: { receipt: string; jobId: string; partition?: number };
  /** The last checkpoint this worker committed for the partition in hand. */
  committed?: { partition: number; offset: number; end: number; done: boolean };
  /** Booted held (the pool's `held` option): it waits for the release to open its stores. */
  held?: boolean;
}

interface Member extends PoolMember {
  proc: ChildProcess;
  exited: Promise<void>;
  /** It said it answers metrics requests (METRICS_READY). */
  answersMetrics?: boolean;
  /** Its figures at the last scrape, kept for the sum if it dies without its last ones. */
  lastMetrics?: MetricsJson;
}

/**
 * ReplicaTarget for the embedded default: a pool of worker child processes.
 * Scale-down stops idle workers first (SIGTERM: they checkpoint and hand back).
 * When a worker dies without handing back (SIGKILL, crash), the pool returns its
 * message to the queue at once instead of waiting out the visibility timeout.
 */
export class ProcessPool implements ReplicaTarget {
  private desired = 0;
  private seq = 0;
  private readonly members = new Map<string, Member>();
  /** The last figures of each worker that has left, by worker id. */
  private readonly departedMetrics = new Map<string, MetricsJson>();
  private closed = false;
  private wake: (() => void) | undefined;
  private nextChange: Promise<void> | undefined;
  private released: boolean;

  constructor(
    private readonly options: {
      env: NodeJS.ProcessEnv;
      queue: TaskQueue;
      log: Logger;
      command?: WorkerCommand;
      /** Called on every worker exit (for progress and the chaos tests). */
      onExit?: (m: PoolMember, code: number | null, signal: NodeJS.Signals | null) => void;
      /**
       * Each line a worker writes to stdout or stderr (without its newline). Unset, the
       * workers write straight to this process's stdout/stderr; set, the CLI prints them
       * above its progress bar instead of through it.
       */
      onOutput?: (line: string, from: { worker: string; stream: "stdout" | "stderr" }) => void;
      /**
       * Start workers held: each boots, says "held" and opens no store until
       * {@link ProcessPool.release}. A run's pre-flight runs meanwhile, and a refused run
       * writes nothing, not even the data directory.
       */
      held?: boolean;
    },
  ) {
    this.released = !options.held;
  }

  /** Let held workers open their stores and take tasks (those still booting, once they are up). */
  release(): void {
    this.released = true;
    for (const m of this.members.values()) if (m.held) this.start(m);
  }

  private start(m: Member): void {
    m.held = false;
    // A worker can exit between saying "held" and this (a run that ended as it booted):
    // the send then fails, at once or later (EPIPE), and without a callback a later
    // failure is an 'error' event that crashed the CLI. Its exit is handled as any other.
    try {
      m.proc.send({ type: "start" }, (err) => {
        if (err) this.options.log.debug("a held worker left before its start", { worker: m.id });
      });
    } catch {
      // Its channel closed already.
    }
  }

  async current(): Promise<number> {
    return this.desired;
  }

  async scaleTo(replicas: number): Promise<void> {
    if (!Number.isSafeInteger(replicas) || replicas < 0) {
      throw new InvalidArgumentError(`replicas must be an integer >= 0, got ${replicas}`);
    }
    this.desired = replicas;
    this.reconcile();
  }

  /**
   * Resolves at the next thing a worker reports (a claim, a release, a checkpoint, an
   * exit): the runner waits on it instead of polling, so it sees a job finish (the
   * merge task's release) the moment it happens.
   */
  changed(): Promise<void> {
    this.nextChange ??= new Promise<void>((resolve) => {
      this.wake = resolve;
    });
    return this.nextChange;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    this.nextChange = undefined;
    wake?.();
  }

  /**
   * Every worker's figures for one scrape: the live workers that answer metrics
   * requests are asked (`ask`, over IPC), and the workers that have left give the last
   * figures they sent (or, killed outright, those of their last scrape). Each worker
   * counts once: one that leaves while it is asked counts by its last figures, never
   * by both, so a sum over them never goes down.
   */
  async collectMetrics(
    ask: (proc: ChildProcess) => Promise<MetricsJson | undefined>,
  ): Promise<{ live: MetricsJson[]; departed: MetricsJson[] }> {
    const asked = [...this.members.values()].filter((m) => m.answersMetrics);
    const answers = await Promise.all(asked.map(async (m) => ({ m, got: await ask(m.proc) })));
    const live: MetricsJson[] = [];
    for (const { m, got } of answers) {
      if (!got || this.departedMetrics.has(m.id)) continue;
      m.lastMetrics = got;
      live.push(got);
    }
    return { live, departed: [...this.departedMetrics.values()] };
  }

  /** Live workers (not yet exited). */
  list(): PoolMember[] {
    return [...this.members.values()].map(
      ({ proc: _p, exited: _e, answersMetrics: _a, lastMetrics: _l, ...m }) => m,
    );
  }

  /** Send a signal to one worker (tests, chaos, `kill`). */
  signal(id: string, signal: NodeJS.Signals): boolean {
    const m = this.members.get(id);
    if (!m) return false;
    if (signal === "SIGTERM") m.stopping = true;
    return m.proc.kill(signal);
  }

  /** Stop every worker gracefully and wait for them to exit. */
  async close(): Promise<void> {
    this.closed = true;
    this.desired = 0;
    for (const m of this.members.values()) {
      // One SIGTERM per worker: a worker already told to stop (chaos, scale-down) may
      // still be checkpointing, and a second signal means "exit now" to it (no hand-back).
      if (m.stopping) continue;
      m.stopping = true;
      m.proc.kill("SIGTERM");
    }
    await Promise.all([...this.members.values()].map((m) => m.exited));
  }

  private reconcile(): void {
    if (this.closed) return;
    const live = [...this.members.values()].filter((m) => !m.stopping);
    for (let n = live.length; n < this.desired; n++) this.spawn();
    if (live.length > this.desired) {
      // Scale-down stops idle workers only; a busy one is stopped when it goes idle
      // (the claim message below calls reconcile again). Stopping a working worker
      // would be graceful (it hands back) but throws away the batch in hand.
      const idle = live.filter((m) => !m.busy).slice(0, live.length - this.desired);
      for (const m of idle) {
        m.stopping = true;
        m.proc.kill("SIGTERM");
      }
    }
  }

  /**
   * Make a dead worker's message visible now rather than when its lease runs out.
   * A transient store error (a busy SQLite file) is retried; a stale receipt means
   * the lease already lapsed and the message is back anyway; anything else is
   * logged, because the partition then waits out its lease.
   */
  private async handBack(worker: string, claim: NonNullable<PoolMember["claim"]>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.queue.changeVisibility(claim.receipt, 0);
        return;
      } catch (err) {
        if (err instanceof LeaseLostError) return;
        const retryable = err instanceof PipelineError && err.retryable;
        if (!retryable || attempt >= 6) {
          this.options.log.error(
            "could not hand a dead worker's partition back; it returns when its lease expires",
            { worker, claim, error: describeError(err) },
          );
          return;
        }
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  }

  private spawn(): void {
    const cmd = this.options.command ?? defaultWorkerCommand();
    const id = `w${++this.seq}`;
    const onOutput = this.options.onOutput;
    const proc = fork(cmd.modulePath, [], {
      execArgv: cmd.execArgv,
      env: {
        ...this.options.env,
        WORKER_ID: `${id}-${process.pid}`,
        ...(this.released ? {} : { BATCH_INFER_HOLD: "1" }),
      },
      stdio: onOutput ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "inherit", "inherit", "ipc"],
      // Its own process group: Ctrl-C in a terminal signals the whole foreground group, and a
      // worker that got the terminal's SIGINT and then the pool's SIGTERM took the second as
      // "force" and exited without handing back. The pool alone stops its workers (and a
      // worker whose pool vanished stops when the IPC channel closes).
      detached: true,
    });
    if (onOutput) {
      const forward = (from: Readable | null, stream: "stdout" | "stderr") => {
        if (!from) return;
        // crlfDelay/terminal off: plain line splitting; a last line without newline comes at close.
        createInterface({ input: from, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) =>
          onOutput(line, { worker: id, stream }),
        );
      };
      forward(proc.stdout, "stdout");
      forward(proc.stderr, "stderr");
    }
    let resolveExit = () => {};
    const exited = new Promise<void>((r) => {
      resolveExit = r;
    });
    const member: Member = { id, pid: proc.pid, busy: false, stopping: false, proc, exited };
    this.members.set(id, member);
    // A failed kill or send reported late: the 'exit' handler below does the cleanup,
    // and an unhandled 'error' event would take the whole run down.
    proc.on("error", (err) => {
      this.options.log.debug("worker process error", { worker: id, error: describeError(err) });
    });
    proc.on(
      "message",
      (
        msg: { type?: string; claim?: PoolMember["claim"] | null } & Partial<
          PoolMember["committed"]
        >,
      ) => {
        const final = finalMetricsOf(msg);
        if (final) {
          member.answersMetrics = false;
          this.departedMetrics.set(id, final);
          return;
        }
        if (msg?.type === METRICS_READY) {
          member.answersMetrics = true;
          return;
        }
        if (msg?.type === "held") {
          member.held = true;
          if (this.released) this.start(member);
        } else if (msg?.type === "claim") {
          member.busy = Boolean(msg.claim);
          delete member.committed;
          if (msg.claim) member.claim = msg.claim;
          else {
            delete member.claim;
            // Now idle: a pending scale-down may take it.
            this.reconcile();
          }
        } else if (msg?.type === "commit") {
          member.committed = {
            partition: msg.partition ?? -1,
            offset: msg.offset ?? 0,
            end: msg.end ?? 0,
            done: Boolean(msg.done),
          };
        }
        this.notify();
      },
    );
    proc.on("exit", (code, signal) => {
      this.members.delete(id);
      if (member.lastMetrics && !this.departedMetrics.has(id)) {
        this.departedMetrics.set(id, member.lastMetrics);
      }
      this.notify();
      const claim = member.claim;
      if (claim && (code !== 0 || signal)) {
        // Died holding a message: give it back now so another worker resumes from the checkpoint.
        void this.handBack(id, claim);
      }
      if (code !== 0 && !member.stopping) {
        this.options.log.warn("worker exited unexpectedly", { worker: id, code, signal, claim });
      }
      this.options.onExit?.(member, code, signal);
      // Piped output may still be in flight at exit: `close` comes once it has all been read.
      if (!onOutput) resolveExit();
      this.reconcile();
    });
    if (onOutput) proc.on("close", () => resolveExit());
  }
}
