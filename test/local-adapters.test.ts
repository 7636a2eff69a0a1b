import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { appendFile, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { sha256OfFile } from "../src/adapters/local/file-hash.ts";
import { LocalObjectStore } from "../src/adapters/local/fs-object-store.ts";
import { JsonlEventLog } from "../src/adapters/local/jsonl-event-sink.ts";
import { mapSqliteError } from "../src/adapters/local/sqlite.ts";
import { SqliteCheckpointStore } from "../src/adapters/local/sqlite-checkpoint-store.ts";
import { SqliteTaskQueue } from "../src/adapters/local/sqlite-task-queue.ts";
import { StoreUnavailableError } from "../src/core/errors.ts";
import { silentLogger } from "../src/core/log.ts";
import { ProcessPool } from "../src/runner/process-pool.ts";
import {
  checkpointStoreConformance,
  sampleJob,
} from "./conformance/checkpoint-store.conformance.ts";
import { eventSinkConformance, sampleEvent } from "./conformance/event-sink.conformance.ts";
import { objectStoreConformance, readAll } from "./conformance/object-store.conformance.ts";
import { replicaTargetConformance } from "./conformance/replica-target.conformance.ts";
import { taskQueueConformance } from "./conformance/task-queue.conformance.ts";

const here = dirname(fileURLToPath(import.meta.url));
const projectRoot = resolve(here, "..");
const workerScript = join(here, "helpers", "local-adapter-worker.ts");

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "local-adapters-"));
  tempDirs.push(dir);
  return dir;
}
after(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, code, `expected ${code}, got ${String(err)}`);
    return true;
  });
}

/** The queue a ProcessPool test hands back to (SQLite in `dir`). */
function poolQueue(dir: string): SqliteTaskQueue {
  return new SqliteTaskQueue({ path: join(dir, "queue.db"), queue: "pool", maxDeliveries: 5 });
}

// ---- The port contracts ---------------------------------------------------------

replicaTargetConformance("ProcessPool conformance (worker child processes)", async () => {
  const dir = await tempDir();
  const queue = poolQueue(dir);
  const pool = new ProcessPool({
    env: process.env,
    queue,
    log: silentLogger,
    command: { modulePath: join(here, "helpers", "idle-worker.ts"), execArgv: ["--import", "tsx"] },
  });
  return {
    target: pool,
    // Live worker processes that are not on their way out.
    observed: async () => pool.list().length,
    cleanup: async () => {
      await pool.close();
      queue.close();
    },
  };
});

objectStoreConformance("LocalObjectStore conformance", async () => {
  const root = await tempDir();
  return {
    store: new LocalObjectStore({ root }),
    bucket: "conformance",
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

taskQueueConformance("SqliteTaskQueue conformance (injected clock)", async ({ maxDeliveries }) => {
  const dir = await tempDir();
  let now = Date.now();
  const queue = new SqliteTaskQueue({
    path: join(dir, "queue.db"),
    queue: `q-${randomBytes(3).toString("hex")}`,
    maxDeliveries,
    now: () => now,
    pollIntervalMs: 10,
  });
  return {
    queue,
    advance: (ms) => {
      now += ms;
    },
    cleanup: async () => {
      queue.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

// Runs the suite's real-time path too (what a cloud queue gets), at ~1 s per expiry test.
taskQueueConformance("SqliteTaskQueue conformance (real clock)", async ({ maxDeliveries }) => {
  const dir = await tempDir();
  const queue = new SqliteTaskQueue({ path: join(dir, "queue.db"), queue: "q", maxDeliveries });
  return {
    queue,
    cleanup: async () => {
      queue.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

checkpointStoreConformance("SqliteCheckpointStore conformance", async () => {
  const dir = await tempDir();
  const store = new SqliteCheckpointStore({ path: join(dir, "state.db") });
  return {
    store,
    cleanup: async () => {
      store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

eventSinkConformance("JsonlEventLog conformance", async () => {
  const dir = await tempDir();
  const log = new JsonlEventLog({ path: join(dir, "events", "events.jsonl") });
  return { sink: log, log, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

// ---- Local-only behaviour -------------------------------------------------------

interface Worker {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  ready: Promise<void>;
  exited: Promise<number | null>;
}

function spawnWorker(args: string[]): Worker {
  const child = spawn(process.execPath, ["--import", "tsx", workerScript, ...args], {
    cwd: projectRoot,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => {
    onReady = r;
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (line === "ready") onReady();
    else lines.push(line);
  });
  const exited = new Promise<number | null>((resolveExit, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) reject(new Error(`worker ${args.join(" ")} exited ${code}: ${stderr}`));
      else resolveExit(code);
    });
  });
  // Surface a crash before "ready" instead of hanging on it.
  exited.catch(() => onReady());
  return { child, lines, ready, exited };
}

/** Start `count` workers, wait until all are ready, release them together, wait for exit. */
async function runWorkers(count: number, args: string[]): Promise<Worker[]> {
  const workers = Array.from({ length: count }, () => spawnWorker(args));
  await Promise.all(workers.map((w) => w.ready));
  for (const w of workers) w.child.stdin.end("go\n");
  await Promise.all(workers.map((w) => w.exited));
  return workers;
}

describe("local adapters across processes", () => {
  it("three processes drain one SQLite queue, each message exactly once", {
    timeout: 30_000,
  }, async () => {
    const dir = await tempDir();
    const path = join(dir, "queue.db");
    const queue = new SqliteTaskQueue({ path, queue: "work", maxDeliveries: 0 });
    const sent = await queue.send(Array.from({ length: 300 }, (_, i) => ({ body: `task ${i}` })));
    const workers = await runWorkers(3, ["queue", path, "work"]);
    const processed = workers.flatMap((w) =>
      w.lines.map((l) => JSON.parse(l) as { id: string; deliveryCount: number }),
    );
    const ids = processed.map((p) => p.id);
    assert.equal(ids.length, 300, "messages processed in total");
    assert.equal(new Set(ids).size, 300, "a message was processed twice");
    assert.deepEqual([...ids].sort(), [...sent].sort());
    assert.ok(processed.every((p) => p.deliveryCount === 1));
    assert.deepEqual(await queue.stats(), { visible: 0, inFlight: 0, deadLettered: 0 });
    queue.close();
  });

  it("four processes increment one job row by CAS without losing an update", {
    timeout: 30_000,
  }, async () => {
    const dir = await tempDir();
    const path = join(dir, "state.db");
    const store = new SqliteCheckpointStore({ path });
    const jobId = "job-cas-counter";
    await store.createJob(sampleJob(jobId, { runAttempt: 0 }));
    const processes = 4;
    const times = 25;
    await runWorkers(processes, ["cas", path, jobId, String(times)]);
    const row = await store.getJob(jobId);
    assert.equal(row?.value.runAttempt, processes * times);
    assert.equal(row?.version, String(1 + processes * times));
    store.close();
  });
});

describe("LocalObjectStore (local only)", () => {
  it("creates files 0o600 and folders 0o700", async () => {
    const root = join(await tempDir(), "objects");
    const store = new LocalObjectStore({ root });
    await store.put("b1", "deep/er/file.txt", "x");
    await store.put("b1", "streamed", Readable.from([Buffer.from("y")]));
    const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;
    assert.equal(await mode(join(root, "b1", "deep", "er", "file.txt")), 0o600);
    assert.equal(await mode(join(root, "b1", "streamed")), 0o600);
    for (const d of ["", "b1", "b1/deep", "b1/deep/er"]) {
      assert.equal(await mode(join(root, d)), 0o700, `folder ${d || "(root)"}`);
    }
  });

  it("names() gives exactly the names list() gives under a prefix, in order, placed objects included", async () => {
    const dir = await tempDir();
    const store = new LocalObjectStore({ root: join(dir, "objects") });
    const file = join(dir, "doc.txt");
    await writeFile(file, "placed by hard link");
    await store.placeFile("b", "p/placed.txt", file);
    for (const name of ["p/b/2", "p/a", "p/b/1", "p/a.b", "q/other", "p.txt"]) {
      await store.put("b", name, name);
    }
    const listed: string[] = [];
    let start: string | undefined;
    do {
      const page = await store.list("b", { prefix: "p/", limit: 2, ...(start ? { start } : {}) });
      listed.push(...page.objects.map((o) => o.name));
      start = page.nextStart;
    } while (start);
    const named: string[] = [];
    for await (const n of store.names("b", "p/")) named.push(n);
    assert.deepEqual(named, listed);
    assert.deepEqual(named, ["p/a", "p/a.b", "p/b/1", "p/b/2", "p/placed.txt"]);
  });

  it("rejects more unsafe names and bad bucket names", async () => {
    const store = new LocalObjectStore({ root: await tempDir() });
    for (const name of [
      "",
      "a\\b",
      "a\0b",
      "a//b",
      "a/./b",
      "a/",
      "./a",
      "..",
      "x/.y.tmp-0123456789abcdef",
    ]) {
      await rejectsWithCode(store.put("b", name, "x"), "UNSAFE_PATH");
    }
    for (const bucket of ["", "..", ".hidden", "a/b", "-x", "a".repeat(64)]) {
      await rejectsWithCode(store.put(bucket, "x", "x"), "UNSAFE_PATH");
      await rejectsWithCode(store.list(bucket), "UNSAFE_PATH");
    }
    // A prefix that walks upwards matches nothing rather than escaping.
    assert.deepEqual((await store.list("b", { prefix: "../" })).objects, []);
  });

  it("hides temp and lock files from list and removes emptied folders on delete", async () => {
    const root = await tempDir();
    const store = new LocalObjectStore({ root });
    await store.put("b", "keep/x", "x");
    await store.put("b", "gone/a/b/c", "c");
    await writeFile(join(root, "b", "keep", ".x.tmp-0123456789abcdef"), "partial");
    await writeFile(join(root, "b", "keep", ".x.lock"), "{}");
    assert.deepEqual(
      (await store.list("b")).objects.map((o) => o.name),
      ["gone/a/b/c", "keep/x"],
    );
    await store.delete("b", "gone/a/b/c");
    assert.deepEqual(await readdir(join(root, "b")), ["keep"]);
    assert.deepEqual((await store.list("missing-bucket")).objects, []);
  });

  it("hashes a file as sha256 of its bytes, at every size around its read buffers", async () => {
    const dir = await tempDir();
    const file = join(dir, "f");
    for (const n of [0, 1, 100, 4 << 20, (4 << 20) + 1, (8 << 20) + 7]) {
      const bytes = randomBytes(n);
      await writeFile(file, bytes);
      assert.equal(
        await sha256OfFile(file),
        createHash("sha256").update(bytes).digest("hex"),
        `${n} bytes`,
      );
    }
  });

  it("a put waits for the lock another process holds, then replaces the object and releases it", async () => {
    const root = await tempDir();
    const store = new LocalObjectStore({ root });
    await store.put("b", "dir/x", "old");
    // Another live process's lock (our own pid: alive, so not stale): the put may not
    // take the quick path, and must wait on it.
    const lockPath = join(root, "b", "dir", ".x.lock");
    await writeFile(
      lockPath,
      JSON.stringify({ pid: process.pid, host: hostname(), token: "other" }),
    );
    let settled = false;
    const putting = store.put("b", "dir/x", "new").finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(settled, false, "the put went ahead under another holder's lock");
    assert.equal((await readAll(await store.read("b", "dir/x"))).toString(), "old");
    await rm(lockPath);
    const { etag } = await putting;
    assert.equal((await store.head("b", "dir/x"))?.etag, etag);
    assert.equal((await readAll(await store.read("b", "dir/x"))).toString(), "new");
    // Its own lock and temp file are gone; the next put takes the quick path again.
    assert.deepEqual(await readdir(join(root, "b", "dir")), ["x"]);
    await store.put("b", "dir/x", "newer");
    assert.deepEqual(await readdir(join(root, "b", "dir")), ["x"]);
  });

  it("says clearly when a name is both an object and a folder", async () => {
    const store = new LocalObjectStore({ root: await tempDir() });
    await store.put("b", "a/b", "x");
    await rejectsWithCode(store.put("b", "a", "x"), "INVALID_ARGUMENT");
    await store.put("b", "f", "x");
    await rejectsWithCode(store.put("b", "f/g", "x"), "INVALID_ARGUMENT");
    assert.equal(await store.head("b", "a"), undefined);
    await store.delete("b", "a");
    assert.ok(await store.head("b", "a/b"));
  });

  it("cleans up its temp file when a streamed body fails", async () => {
    const root = await tempDir();
    const store = new LocalObjectStore({ root });
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.from("partial");
      throw new Error("source broke");
    }
    await assert.rejects(store.put("b", "dir/obj", Readable.from(failing())), /source broke/);
    assert.equal(await store.head("b", "dir/obj"), undefined);
    assert.deepEqual(await readdir(join(root, "b", "dir")), []);
  });
});

describe("SqliteTaskQueue (local only)", () => {
  it("lists and redrives dead letters", async () => {
    const dir = await tempDir();
    const queue = new SqliteTaskQueue({ path: join(dir, "q.db"), queue: "q", maxDeliveries: 1 });
    const [id] = await queue.send([{ body: "poison" }]);
    const [m] = await queue.receive({ max: 1, visibilitySeconds: 30 });
    assert.ok(m);
    await queue.changeVisibility(m.receipt, 0);
    assert.deepEqual(await queue.receive({ max: 1, visibilitySeconds: 30 }), []);
    const dead = await queue.listDeadLetters();
    assert.equal(dead.length, 1);
    assert.equal(dead[0]?.id, id);
    assert.equal(dead[0]?.deliveryCount, 1);
    assert.match(dead[0]?.reason ?? "", /maxDeliveries 1/);
    assert.equal(await queue.redrive([String(id)]), 1);
    const [again] = await queue.receive({ max: 1, visibilitySeconds: 30 });
    assert.equal(again?.deliveryCount, 1);
    assert.equal(again?.id, id);
    queue.close();
  });

  it("never returns a message twice in one receive, even with visibility 0", async () => {
    const dir = await tempDir();
    const queue = new SqliteTaskQueue({ path: join(dir, "q.db"), queue: "q", maxDeliveries: 1 });
    const ids = await queue.send(["1", "2", "3", "4"].map((body) => ({ body })));
    for (const m of await queue.receive({ max: 2, visibilitySeconds: 30 })) {
      await queue.changeVisibility(m.receipt, 0);
    }
    // The first two are now over the limit and get buried; the loop must not revisit 3 and 4.
    const got = await queue.receive({ max: 4, visibilitySeconds: 0 });
    assert.deepEqual(
      got.map((m) => m.id),
      ids.slice(2),
    );
    assert.equal((await queue.stats()).deadLettered, 2);
    queue.close();
  });

  it("keeps queues in one file apart and limits body size", async () => {
    const path = join(await tempDir(), "shared.db");
    const a = new SqliteTaskQueue({ path, queue: "a", maxDeliveries: 0 });
    const b = new SqliteTaskQueue({ path, queue: "b", maxDeliveries: 0 });
    await a.send([{ body: "for a" }]);
    assert.deepEqual(await b.receive({ max: 10, visibilitySeconds: 30 }), []);
    assert.deepEqual(await b.stats(), { visible: 0, inFlight: 0, deadLettered: 0 });
    await rejectsWithCode(a.send([{ body: "x".repeat(128 * 1024 + 1) }]), "INVALID_ARGUMENT");
    await rejectsWithCode(a.delete("not-a-receipt"), "LEASE_LOST");
    a.close();
    b.close();
  });

  it("maps SQLITE_BUSY and I/O errors to a retryable STORE_UNAVAILABLE", () => {
    const busy = Object.assign(new Error("database is locked"), { code: "SQLITE_BUSY" });
    const mapped = mapSqliteError(busy, "test");
    assert.ok(mapped instanceof StoreUnavailableError);
    assert.equal(mapped.retryable, true);
    assert.ok(mapSqliteError({ code: "SQLITE_IOERR_WRITE" }, "t") instanceof StoreUnavailableError);
    const constraint = Object.assign(new Error("x"), { code: "SQLITE_CONSTRAINT" });
    assert.equal(mapSqliteError(constraint, "t"), constraint);
  });
});

describe("ProcessPool (local only)", () => {
  it("closing does not signal a worker already stopping again (a second SIGTERM means exit without hand-back)", async () => {
    const dir = await tempDir();
    const queue = poolQueue(dir);
    const said = new Map<string, () => void>();
    const hears = (word: string) => new Promise<void>((r) => said.set(word, r));
    const started = hears("ready");
    const stopping = hears("stopping");
    const exits: (number | null)[] = [];
    const pool = new ProcessPool({
      env: process.env,
      queue,
      log: silentLogger,
      command: {
        modulePath: join(here, "helpers", "slow-stop-worker.ts"),
        execArgv: ["--import", "tsx"],
      },
      onOutput: (line) => said.get(line)?.(),
      onExit: (_m, code) => exits.push(code),
    });
    try {
      await pool.scaleTo(1);
      await started;
      const [member] = pool.list();
      assert.ok(member);
      // Preempted (chaos, scale-down) and, while it checkpoints, the whole run stops.
      assert.ok(pool.signal(member.id, "SIGTERM"));
      await stopping;
      await pool.close();
      assert.deepEqual(exits, [0], "the worker finished its graceful stop");
    } finally {
      await pool.close();
      queue.close();
    }
  });
});

describe("ProcessPool held until released (local only)", () => {
  it("a held worker boots but opens no store (a refused run writes nothing); released, it does", async () => {
    const dir = await tempDir();
    const queue = poolQueue(dir);
    const run = async (release: boolean) => {
      const dataDir = join(dir, release ? "released" : "refused");
      const exits: (number | null)[] = [];
      const pool = new ProcessPool({
        env: { ...process.env, BATCH_INFER_DATA_DIR: dataDir },
        queue,
        log: silentLogger,
        held: true,
        onExit: (_m, code) => exits.push(code),
      });
      try {
        await pool.scaleTo(1);
        const deadline = Date.now() + 30_000;
        while (!pool.list()[0]?.held && Date.now() < deadline) {
          await Promise.race([pool.changed(), new Promise((r) => setTimeout(r, 200))]);
        }
        assert.ok(pool.list()[0]?.held, "the worker booted and said it is held");
        // However long the pre-flight takes, a held worker writes nothing.
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(existsSync(dataDir), false, "a held worker opened no store");
        if (release) {
          pool.release();
          // Released, it opens its stores (the queue's file appears) and waits for tasks.
          for (let i = 0; i < 400 && !existsSync(join(dataDir, "state")); i++) {
            await new Promise((r) => setTimeout(r, 50));
          }
          assert.ok(existsSync(join(dataDir, "state")), "the released worker opened its stores");
        }
        await pool.close();
        assert.deepEqual(exits, [0], "it stopped cleanly");
        assert.equal(
          existsSync(dataDir),
          release,
          release ? "" : "closed while held: nothing written",
        );
      } finally {
        await pool.close();
      }
    };
    try {
      await run(false);
      await run(true);
    } finally {
      queue.close();
    }
  });
});

describe("ProcessPool scale-down (local only)", () => {
  it("stops only a worker free for a second, never one that may be taking a task right now", async () => {
    const dir = await tempDir();
    const queue = poolQueue(dir);
    const pool = new ProcessPool({
      env: { ...process.env, BATCH_INFER_DATA_DIR: join(dir, "data") },
      queue,
      log: silentLogger,
    });
    try {
      await pool.scaleTo(2);
      const startedAt = Date.now();
      // A worker reports its claim only after it received the message: the pool can't
      // tell a just-started (or just-freed) worker from one taking a partition.
      await pool.scaleTo(1);
      assert.deepEqual(
        pool.list().map((m) => m.stopping),
        [false, false],
        "no worker is stopped the moment it was started",
      );
      const deadline = Date.now() + 30_000;
      while (pool.list().length > 1 && Date.now() < deadline) {
        await Promise.race([pool.changed(), new Promise((r) => setTimeout(r, 200))]);
      }
      assert.equal(pool.list().length, 1, "one worker left once it had been free long enough");
      assert.ok(Date.now() - startedAt >= 1000, "not before it had been free for a second");
    } finally {
      await pool.close();
      queue.close();
    }
  });
});

describe("ProcessPool and workers that are gone (local only)", () => {
  it("answering a held worker that already exited does not crash the pool", async () => {
    const dir = await tempDir();
    const queue = poolQueue(dir);
    let exited = 0;
    const pool = new ProcessPool({
      env: process.env,
      queue,
      log: silentLogger,
      command: {
        modulePath: join(here, "helpers", "held-then-gone-worker.ts"),
        execArgv: ["--import", "tsx"],
      },
      onExit: () => {
        exited++;
      },
    });
    try {
      // Each says "held" and leaves; the pool (released) sends "start" into a closed
      // channel, and replaces it. An unhandled EPIPE 'error' would end this process.
      await pool.scaleTo(3);
      const deadline = Date.now() + 60_000;
      while (exited < 9 && Date.now() < deadline) {
        await Promise.race([pool.changed(), new Promise((r) => setTimeout(r, 200))]);
      }
      assert.ok(exited >= 9, `only ${exited} workers came and went`);
    } finally {
      await pool.scaleTo(0);
      await pool.close();
      queue.close();
    }
  });
});

describe("JsonlEventLog (local only)", () => {
  it("dedupes across two instances on one file", async () => {
    const path = join(await tempDir(), "events.jsonl");
    const a = new JsonlEventLog({ path });
    const b = new JsonlEventLog({ path });
    const e1 = sampleEvent("job-1");
    const e2 = sampleEvent("job-1");
    await a.publish([e1]);
    await b.publish([e1, e2]);
    await a.publish([e2, e1]);
    // Both at once: the append lock serializes them.
    const e3 = sampleEvent("job-1");
    await Promise.all([a.publish([e3]), b.publish([e3])]);
    assert.deepEqual(
      (await a.read()).map((e) => e.eventID),
      [e1.eventID, e2.eventID, e3.eventID],
    );
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  it("tolerates a torn last line and keeps appending parseable lines", async () => {
    const path = join(await tempDir(), "events.jsonl");
    const log = new JsonlEventLog({ path });
    const e1 = sampleEvent("job-t");
    await log.publish([e1]);
    await appendFile(path, '{"eventID":"torn","data":{"jobI');
    assert.deepEqual(await log.read(), [e1]);
    const e2 = sampleEvent("job-t");
    await new JsonlEventLog({ path }).publish([e2]);
    assert.deepEqual(await log.read({ jobId: "job-t" }), [e1, e2]);
  });

  it("rejects an oversized event", async () => {
    const log = new JsonlEventLog({ path: join(await tempDir(), "events.jsonl") });
    const big = sampleEvent("job-big", "t", { blob: "x".repeat(1024 * 1024) });
    await rejectsWithCode(log.publish([big]), "INVALID_ARGUMENT");
  });
});
