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
  /** performance.now() when it last became free to take a task (started, or released its claim). */
  idleSince: number;
}

/**
 * How long a worker must have been free before a scale-down stops it. A worker reports
 * a claim only after it received the message: one that looks idle may have just taken
 * a partition, and stopping it hands that partition back and throws away the model it
 * opened (seen on one-partition jobs, where the runner scales 2 -> 1 as the partition is
 * taken: ~150 ms lost). A worker free for this long is waiting on an empty queue.
 * Kubernetes' HPA waits far longer before it scales down (a 300 s stabilization window).
 */
const SCALE_DOWN_IDLE_MS = 1000;

/**
 * ReplicaTarget for the embedded default: a pool of worker child processes.
 * Scale-down stops only workers free for a second or more (SIGTERM: they
 * checkpoint and hand back); a busy one is stopped once it has been free that long.
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
  /** A reconcile due when a free worker has been free long enough to stop. */
  private recheck: NodeJS.Timeout | undefined;

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

  /** Tell every started worker to look at the queue now (a job was just enqueued). */
  nudge(): void {
    for (const m of this.members.values()) {
      if (m.held || m.stopping || !m.proc.connected) continue;
      try {
        m.proc.send({ type: "nudge" }, () => undefined);
      } catch {
        // Its channel closed: its exit is handled as any other.
      }
    }
  }

  private start(m: Member): void {
    m.held = false;
    m.idleSince = performance.now();
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
    clearTimeout(this.recheck);
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
      // Among those, only one free long enough not to be taking a task right now.
      const now = performance.now();
      const idle = live.filter((m) => !m.busy);
      const settled = idle.filter((m) => now - m.idleSince >= SCALE_DOWN_IDLE_MS);
      for (const m of settled.slice(0, live.length - this.desired)) {
        m.stopping = true;
        m.proc.kill("SIGTERM");
      }
      const young = idle.filter((m) => now - m.idleSince < SCALE_DOWN_IDLE_MS);
      if (settled.length < live.length - this.desired && young.length > 0) {
        const due = Math.min(...young.map((m) => m.idleSince + SCALE_DOWN_IDLE_MS)) - now;
        clearTimeout(this.recheck);
        this.recheck = setTimeout(() => this.reconcile(), Math.max(1, Math.ceil(due)));
        this.recheck.unref();
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
    const member: Member = {
      id,
      pid: proc.pid,
      busy: false,
      stopping: false,
      proc,
      exited,
      idleSince: performance.now(),
    };
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
            member.idleSince = performance.now();
            // Now free: a pending scale-down takes it once it has been free long enough.
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
