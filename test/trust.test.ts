/**
 * Output you can trust, tested from outside as a user meets it (the CLI, files the
 * project did not make, commands racing each other), plus the in-process cases that
 * need a frozen clock. Each test is the adversarial case of a promise the README makes:
 * "exactly once", "resumes", "verify proves".
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { createLogger } from "../src/core/log.ts";
import { encodeOnnxModel } from "../src/model/onnx-writer.ts";
import { EVENT_TYPES } from "../src/pipeline/events.ts";
import { PartitionWorker } from "../src/pipeline/partition-worker.ts";
import { splitJob } from "../src/pipeline/splitter.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import { clockedPipeline, pollUntil } from "./helpers/chaos.ts";
import { cli, jobIdOf, startCli } from "./helpers/cli.ts";
import {
  churnModel,
  customerCsv,
  objectFile,
  runJob,
  tempDir,
} from "./helpers/pipeline-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;

before(async () => {
  root = await tempDir();
  descriptor = await churnModel();
});
after(() => root.cleanup());

let n = 0;
function dataDir(): string {
  return path.join(root.dir, `state-${++n}`);
}

/** The same bytes with one customer's age changed: same size, other scores for that row. */
async function sameSizeOtherBytes(file: string, out: string): Promise<void> {
  const text = await readFile(file, "latin1");
  const edited = text.replace(/\nC00000002,(\d)(\d),/, (_m, a: string, b: string) => {
    const other = b === "9" ? "0" : String(Number(b) + 1);
    return `\nC00000002,${a}${other},`;
  });
  assert.notEqual(edited, text);
  assert.equal(edited.length, text.length);
  await writeFile(out, edited, "latin1");
}

function rowOf(predictions: string, id: string): string | undefined {
  return predictions.split("\n").find((l) => l.includes(`"${id}"`));
}

async function predictionsOf(dir: string, jobId: string): Promise<string> {
  const r = cli(["status", jobId, "--json", "--data-dir", dir]);
  assert.equal(r.code, 0, r.stderr);
  const job = (JSON.parse(r.stdout) as { job: { result: { output: { object: string } } } }).job;
  return readFile(objectFile(dir, "output", job.result.output.object), "utf8");
}

describe("identity follows content", () => {
  it("a file with the same name and size but other bytes (older mtime) is a new job with its own scores", async () => {
    const dir = dataDir();
    const a = path.join(root.dir, "a");
    const b = path.join(root.dir, "b");
    await mkdir(a, { recursive: true });
    await mkdir(b, { recursive: true });
    await copyFile(await customerCsv(root.dir, 2000, 41), path.join(b, "in.csv"));
    await sameSizeOtherBytes(path.join(b, "in.csv"), path.join(a, "in.csv"));
    // What `cp -p`, `tar x` and `rsync -a` leave: a's mtime is older than b's.
    await utimes(path.join(a, "in.csv"), new Date("2020-01-01"), new Date("2020-01-01"));

    const first = cli([
      "run",
      "--input",
      path.join(b, "in.csv"),
      "--model",
      descriptor,
      "--data-dir",
      dir,
    ]);
    assert.equal(first.code, 0, first.stderr);
    const second = cli([
      "run",
      "--input",
      path.join(a, "in.csv"),
      "--model",
      descriptor,
      "--data-dir",
      dir,
    ]);
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stdout, /existing job/, "a's bytes were never scored");
    const [jobB, jobA] = [jobIdOf(first.stdout), jobIdOf(second.stdout)];
    assert.notEqual(jobA, jobB);
    const [predB, predA] = [await predictionsOf(dir, jobB), await predictionsOf(dir, jobA)];
    assert.notEqual(
      rowOf(predA, "C00000002"),
      rowOf(predB, "C00000002"),
      "the edited row was scored",
    );
    assert.equal(rowOf(predA, "C00000003"), rowOf(predB, "C00000003"));
    for (const id of [jobA, jobB]) {
      const v = cli(["verify", id, "--data-dir", dir]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
    }

    // The same bytes under another name and path are the same job (content, not name).
    const c = path.join(root.dir, "copy-of-b.csv");
    await copyFile(path.join(b, "in.csv"), c);
    const third = cli(["run", "--input", c, "--model", descriptor, "--data-dir", dir]);
    assert.equal(third.code, 0, third.stderr);
    assert.equal(jobIdOf(third.stdout), jobB);
    assert.match(third.stdout, /existing job/);
  });

  it("two identical `run`s at the same time make one job and one completion event", async () => {
    const dir = dataDir();
    // Big enough that the uploads overlap.
    const input = await customerCsv(root.dir, 40_000, 42);
    const args = ["run", "--input", input, "--model", descriptor, "--data-dir", dir];
    args.push("--partition-size", "1MiB");
    const runs = await Promise.all([startCli(args).done, startCli(args).done, startCli(args).done]);
    for (const r of runs) assert.equal(r.code, 0, r.stdout + r.stderr);
    const jobId = jobIdOf(runs[0]?.stdout ?? "");
    for (const r of runs) assert.equal(jobIdOf(r.stdout), jobId);
    const jobs = JSON.parse(cli(["jobs", "--json", "--data-dir", dir]).stdout) as unknown[];
    assert.equal(jobs.length, 1, "one job");
    const events = cli(["events", "--json", "--data-dir", dir]).stdout.trim().split("\n");
    const types = events.map((l) => (JSON.parse(l) as { eventType: string }).eventType);
    assert.equal(types.filter((t) => t === EVENT_TYPES.jobCreated).length, 1);
    assert.equal(types.filter((t) => t === EVENT_TYPES.jobCompleted).length, 1);
    const v = cli(["verify", jobId, "--data-dir", dir]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
});

describe("racing runs", () => {
  it("the same bytes touched while their job runs, then run again: one job, no new version, both complete", async () => {
    const dir = dataDir();
    const input = path.join(root.dir, "touched.csv");
    await copyFile(await customerCsv(root.dir, 20_000, 49), input);
    const args = ["run", "--input", input, "--model", descriptor, "--data-dir", dir];
    args.push("--partition-size", "256KiB", "--workers", "1", "--checkpoint-every", "500");
    const first = startCli(args);
    await pollUntil("the first run to be scoring", () =>
      /partitions \d+\/\d+/.test(first.stderr()) ? true : undefined,
    );
    // A newer mtime, the same bytes (what `touch`, a backup tool or a re-download leaves).
    await utimes(input, new Date(), new Date());
    const second = await startCli(args).done;
    const done = await first.done;
    assert.equal(done.code, 0, done.stdout + done.stderr);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.equal(jobIdOf(second.stdout), jobIdOf(done.stdout));
    const jobs = JSON.parse(cli(["jobs", "--json", "--data-dir", dir]).stdout) as unknown[];
    assert.equal(jobs.length, 1, "one job");
    const events = cli(["events", "--json", "--data-dir", dir]).stdout.trim().split("\n");
    const completed = events.filter((l) => l.includes(EVENT_TYPES.jobCompleted));
    assert.equal(completed.length, 1, "one completion event");
  });

  it("two runs of one file in one process at once (uploads interleaved): one job, both complete", async () => {
    const dir = dataDir();
    const input = await customerCsv(root.dir, 5000, 48);
    const spec = { partitionBytes: 64 * 1024 };
    const [x, y] = await Promise.all([
      runJob({ dataDir: dir, inputFile: input, descriptor, spec }),
      runJob({ dataDir: dir, inputFile: input, descriptor, spec }),
    ]);
    assert.equal(x.job.jobId, y.job.jobId);
    assert.equal(x.job.state, "completed", x.job.error);
    assert.equal(y.job.state, "completed", y.job.error);
    const jobs = JSON.parse(cli(["jobs", "--json", "--data-dir", dir]).stdout) as unknown[];
    assert.equal(jobs.length, 1);
  });
});

describe("the descriptor is checked against the model", () => {
  it("an output index past the output's width is refused before a job exists, naming the output and its width", async () => {
    const model = JSON.parse(await readFile(descriptor, "utf8")) as {
      onnx: string;
      outputs: { name: string; column: string; index?: number }[];
      label?: unknown;
    };
    const dir = path.join(root.dir, "wide-index");
    await mkdir(dir, { recursive: true });
    // A [N, 2] output, as skl2onnx writes `probabilities`.
    await writeFile(
      path.join(dir, "model.onnx"),
      encodeOnnxModel({
        name: "two-class",
        inputs: [{ name: "features", dims: ["batch", 3] }],
        outputs: [{ name: "probabilities", dims: ["batch", 2] }],
        initializers: [{ name: "w", dims: [3, 2], data: Float32Array.of(1, -1, 0.5, -0.5, 2, -2) }],
        nodes: [
          { opType: "MatMul", inputs: ["features", "w"], outputs: ["z"] },
          {
            opType: "Softmax",
            inputs: ["z"],
            outputs: ["probabilities"],
            attributes: { axis: { i: 1 } },
          },
        ],
      }),
    );
    const input = path.join(dir, "in.csv");
    await writeFile(input, "id,a,b,c\nr1,1,2,3\nr2,4,5,6\n");
    const write = async (index: number) => {
      const d = {
        name: "two-class",
        version: "1",
        onnx: "model.onnx",
        input: { name: "features" },
        keyColumns: ["id"],
        features: ["a", "b", "c"].map((column) => ({ column, type: "number" })),
        outputs: [{ name: "probabilities", column: "p", index }],
      };
      const file = path.join(dir, `descriptor-${index}.json`);
      await writeFile(file, JSON.stringify(d));
      return file;
    };
    const state = dataDir();
    const bad = cli(["run", "--input", input, "--model", await write(5), "--data-dir", state]);
    assert.equal(bad.code, 2, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /output "probabilities".*index 5.*width 2/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, "no stack trace");
    // Refused before anything was staged: not even the data directory was made.
    assert.equal(existsSync(state), false, "a refused run writes nothing");
    const good = cli(["run", "--input", input, "--model", await write(1), "--data-dir", state]);
    assert.equal(good.code, 0, good.stderr);
    void model;
  });
});

describe("verify proves the scores", () => {
  it("a changed score fails verify even when the manifest's checksum is re-signed", async () => {
    const dir = dataDir();
    const input = await customerCsv(root.dir, 3000, 43);
    const r = cli([
      "run",
      "--input",
      input,
      "--model",
      descriptor,
      "--data-dir",
      dir,
      "--partition-size",
      "128KiB",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = jobIdOf(r.stdout);
    const status = JSON.parse(cli(["status", jobId, "--json", "--data-dir", dir]).stdout) as {
      job: { result: { output: { object: string }; manifest: { object: string } } };
    };
    const outFile = objectFile(dir, "output", status.job.result.output.object);
    const manifestFile = objectFile(dir, "output", status.job.result.manifest.object);
    const text = await readFile(outFile, "utf8");
    // One digit of one score, as a buggy or malicious writer of the output might do.
    const tampered = text.replace(
      /("churn_probability":0\.\d\d)(\d)/,
      (_m, head: string, d: string) => `${head}${d === "9" ? "8" : String(Number(d) + 1)}`,
    );
    assert.notEqual(tampered, text);
    await writeFile(outFile, tampered);
    const { createHash } = await import("node:crypto");
    const manifest = JSON.parse(await readFile(manifestFile, "utf8")) as {
      output: { sha256: string; bytes: number };
    };
    manifest.output.sha256 = createHash("sha256").update(tampered).digest("hex");
    manifest.output.bytes = Buffer.byteLength(tampered);
    await writeFile(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
    const v = cli(["verify", jobId, "--data-dir", dir]);
    assert.equal(v.code, 1, v.stdout);
    assert.match(v.stdout, /FAIL/);
    assert.match(v.stdout, /partition \d+ part \d+/i, "names the part whose bytes changed");
  });
});

describe("a frozen worker", () => {
  it("a worker that wakes after its queue lease expired (no one took over) never deletes the message; the job completes", async () => {
    const clock = { now: Date.now() };
    const dir = dataDir();
    const p = clockedPipeline(dir, () => clock.now);
    const lines: string[] = [];
    const log = createLogger({ level: "info", write: (l) => lines.push(l) });
    try {
      const input = await customerCsv(root.dir, 4000, 44);
      await p.store.put("input", "frozen.csv", await readFile(input));
      const split = await splitJob(p, {
        input: { bucket: "input", object: "frozen.csv" },
        output: { bucket: "output" },
        model: { descriptor },
        partitionBytes: 10 * 1024 * 1024,
        checkpointEvery: 500,
        batchSize: 128,
        visibilitySeconds: 3,
      });
      let frozen = false;
      // Heartbeats that settled after the freeze began: the state the test waits for.
      let extendsAfterFreeze = 0;
      const queue = {
        ...p.queue,
        receive: p.queue.receive.bind(p.queue),
        send: p.queue.send.bind(p.queue),
        delete: p.queue.delete.bind(p.queue),
        deadLetter: p.queue.deadLetter.bind(p.queue),
        stats: p.queue.stats.bind(p.queue),
        changeVisibility: (receipt: string, seconds: number) =>
          p.queue.changeVisibility(receipt, seconds).finally(() => {
            if (frozen) extendsAfterFreeze++;
          }),
      };
      const w = new PartitionWorker(
        { ...p, queue, log },
        {
          workerId: "frozen",
          receiveWaitSeconds: 0,
          scorer: { thread: false },
          onCommit: async () => {
            if (frozen) return;
            frozen = true;
            // The worker is "frozen" here: its lease lapses and no one else receives the
            // message; its heartbeat fires meanwhile and finds the lease gone.
            clock.now += 10_000;
            // The heartbeat finds the lease gone: by asking the queue, or by its own clock.
            await pollUntil("a heartbeat after the freeze", () =>
              extendsAfterFreeze > 0 || lines.some((l) => l.includes("queue lease lost"))
                ? true
                : undefined,
            );
          },
        },
      );
      await w.run({ untilIdle: true });
      // Whatever happened, the message is still there for someone (or the job is done).
      const stats = await p.queue.stats();
      const job = (await p.checkpoints.getJob(split.jobId))?.value;
      assert.ok(
        job?.state === "completed" || stats.visible + stats.inFlight > 0,
        `job ${job?.state} with no message left: it would hang for ever`,
      );
      await new PartitionWorker(p, {
        workerId: "w2",
        receiveWaitSeconds: 0,
        scorer: { thread: false },
      }).run({
        untilIdle: true,
      });
      const done = (await p.checkpoints.getJob(split.jobId))?.value;
      assert.equal(done?.state, "completed");
      assert.ok(done && (await verifyJob(p, done)).ok);
    } finally {
      p.close();
    }
  });
});

describe("outputs on a pipe and in --output DIR", () => {
  it("--json output larger than a pipe buffer arrives whole", async () => {
    const dir = dataDir();
    const input = await customerCsv(root.dir, 3000, 45);
    const r = cli([
      "run",
      "--input",
      input,
      "--model",
      descriptor,
      "--data-dir",
      dir,
      "--partition-size",
      "1KiB",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = jobIdOf(r.stdout);
    // `status --json | wc -c`: a shell pipe to a reader that is not always ready.
    const bytes = execFileSync(
      "bash",
      [
        "-c",
        `node --import tsx src/cli/main.ts status ${jobId} --json --data-dir '${dir}' | (sleep 0.3; wc -c)`,
      ],
      { encoding: "utf8" },
    );
    const full = cli(["status", jobId, "--json", "--data-dir", dir]).stdout;
    assert.ok(Buffer.byteLength(full) > 128 * 1024, `status is ${Buffer.byteLength(full)} bytes`);
    JSON.parse(full);
    assert.equal(Number(bytes.trim()), Buffer.byteLength(full));
  });

  it("--output DIR is an independent copy: editing it leaves the job's output intact", async () => {
    const dir = dataDir();
    const out = path.join(root.dir, `results-${n}`);
    const input = await customerCsv(root.dir, 2000, 46);
    const r = cli([
      "run",
      "--input",
      input,
      "--model",
      descriptor,
      "--data-dir",
      dir,
      "--output",
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = jobIdOf(r.stdout);
    const placed = path.join(out, "predictions.jsonl");
    const before = await stat(placed);
    assert.equal(before.nlink, 1, "not a hard link into the job's bucket");
    await writeFile(placed, "edited\n");
    const v = cli(["verify", jobId, "--data-dir", dir]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
});

describe("execution providers", () => {
  it("cuda,cpu on a machine without CUDA falls back to cpu and says why; cuda alone fails fast with one error", async () => {
    const dir = dataDir();
    const input = await customerCsv(root.dir, 2000, 47);
    const args = [
      "run",
      "--input",
      input,
      "--model",
      descriptor,
      "--data-dir",
      dir,
      "--log-level",
      "info",
    ];
    const r = cli(args, { ORT_EXECUTION_PROVIDERS: "cuda,cpu" });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /2,000 scored/);
    assert.match(r.stderr, /execution provider cuda.*falling back to cpu/i);
    const only = cli([...args, "--partition-size", "64KiB"], { ORT_EXECUTION_PROVIDERS: "cuda" });
    assert.equal(only.code, 2, only.stdout + only.stderr);
    assert.match(only.stderr, /no execution provider .*cuda/i);
    assert.doesNotMatch(only.stdout, /completed/);
  });
});

describe("a worker that dies holding a partition", () => {
  it("the pool hands its message back at once, even when the queue first answers busy", async () => {
    const { SqliteTaskQueue } = await import("../src/adapters/local/sqlite-task-queue.ts");
    const { ProcessPool } = await import("../src/runner/process-pool.ts");
    const { StoreUnavailableError } = await import("../src/core/errors.ts");
    const { silentLogger } = await import("../src/core/log.ts");
    const dir = dataDir();
    await mkdir(dir, { recursive: true });
    const db = path.join(dir, "queue.db");
    const queue = new SqliteTaskQueue({ path: db, queue: "q", maxDeliveries: 0 });
    await queue.send([{ body: "{}" }]);
    let busy = 2;
    let died = false;
    const flaky = Object.assign(Object.create(queue) as typeof queue, {
      changeVisibility: async (receipt: string, seconds: number) => {
        if (busy-- > 0) throw new StoreUnavailableError("database is locked (SQLITE_BUSY)");
        return queue.changeVisibility(receipt, seconds);
      },
    });
    const pool: InstanceType<typeof ProcessPool> = new ProcessPool({
      env: { ...process.env, QUEUE_DB: db, QUEUE_NAME: "q" },
      queue: flaky,
      log: silentLogger,
      // One worker, never replaced: the message stays where the hand-back put it.
      onExit: () => {
        died = true;
        void pool.scaleTo(0);
      },
      command: {
        modulePath: path.join(import.meta.dirname, "helpers", "claim-and-die-worker.ts"),
        execArgv: ["--import", "tsx"],
      },
    });
    try {
      await pool.scaleTo(1);
      await pollUntil("the worker to take the message and die", () => (died ? true : undefined));
      // The lease is 60 s: the message is visible again long before it, or the test fails.
      await pollUntil(
        "the dead worker's message to be visible again",
        async () => ((await queue.stats()).visible === 1 ? true : undefined),
        { timeoutMs: 15_000 },
      );
    } finally {
      await pool.scaleTo(0);
      await pool.close();
      queue.close();
    }
  });
});

describe("an orphaned worker", () => {
  it("whose pool died while it was starting exits cleanly and leaves the message for others", async () => {
    const { fork } = await import("node:child_process");
    const { openLocalPipeline } = await import("../src/runner/local-stores.ts");
    const { silentLogger } = await import("../src/core/log.ts");
    const dir = dataDir();
    const p = openLocalPipeline(dir, { log: silentLogger });
    try {
      await p.store.put(
        "input",
        "orphan.csv",
        await readFile(await customerCsv(root.dir, 500, 50)),
      );
      await splitJob(p, {
        input: { bucket: "input", object: "orphan.csv" },
        output: { bucket: "output" },
        model: { descriptor },
        visibilitySeconds: 60,
      });
    } finally {
      p.close();
    }
    const child = fork(
      path.join(import.meta.dirname, "..", "src", "runner", "worker-main.ts"),
      [],
      {
        execArgv: ["--import", "tsx"],
        env: { ...process.env, BATCH_INFER_DATA_DIR: dir, LOG_LEVEL: "error" },
        stdio: ["ignore", "pipe", "pipe", "ipc"],
      },
    );
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    // The CLI dies while its worker is starting: the IPC channel closes under it.
    child.disconnect();
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /ERR_IPC_CHANNEL_CLOSED/);
    const q = openLocalPipeline(dir, { log: silentLogger });
    try {
      const stats = await q.queue.stats();
      assert.equal(stats.inFlight, 0, "no message left leased by a worker that is gone");
      assert.equal(stats.visible, 1);
    } finally {
      q.close();
    }
  });
});

describe("a job left without messages", () => {
  it("a partition running with no live lease and no message: running the same command again completes it", async () => {
    const { stageLocalInput } = await import("../src/runner/local-input.ts");
    const { openLocalPipeline } = await import("../src/runner/local-stores.ts");
    const { silentLogger } = await import("../src/core/log.ts");
    const dir = dataDir();
    const file = await customerCsv(root.dir, 3000, 51);
    const partitionBytes = 64 * 1024;
    const p = openLocalPipeline(dir, { log: silentLogger });
    let jobId: string;
    try {
      const staged = await stageLocalInput(p, "input", file);
      jobId = (
        await splitJob(p, {
          input: { bucket: "input", object: staged.object },
          output: { bucket: "output" },
          model: { descriptor: path.resolve(descriptor) },
          partitionBytes,
        })
      ).jobId;
      // What the stalled-worker bug left: partition 0 claimed ("running", a live-looking
      // owner) and its message deleted by a worker that no longer held it.
      const [msg] = await p.queue.receive({ max: 1, visibilitySeconds: 60 });
      assert.ok(msg);
      const { partition } = JSON.parse(msg.body) as { partition: number };
      const row = await p.checkpoints.getPartition(jobId, partition);
      assert.ok(row);
      await p.checkpoints.updatePartition(
        { ...row.value, state: "running", epoch: 1, owner: "ghost" },
        row.version,
      );
      await p.queue.delete(msg.receipt);
    } finally {
      p.close();
    }
    const again = await runJob({
      dataDir: dir,
      inputFile: file,
      descriptor,
      spec: { partitionBytes },
    });
    assert.equal(again.job.jobId, jobId);
    assert.equal(again.job.state, "completed", again.job.error);
    const q = openLocalPipeline(dir, { log: silentLogger });
    try {
      assert.ok((await verifyJob(q, again.job)).ok);
    } finally {
      q.close();
    }
  });
});

describe("line numbers in the errors output", () => {
  it("are the input's lines even when the job stopped before earlier partitions finished", async () => {
    const clock = { now: Date.now() };
    const dir = dataDir();
    const p = clockedPipeline(dir, () => clock.now);
    try {
      // Bad records only near the end, in the last partition.
      const text = await readFile(await customerCsv(root.dir, 4000, 52), "utf8");
      const lines = text.split("\n");
      for (const i of [3990, 3995, 3998]) {
        lines[i] = (lines[i] as string).replace(/^(C\d+),\d+,/, "$1,old,");
      }
      const bytes = Buffer.from(lines.join("\n"));
      await p.store.put("input", "late.csv", bytes);
      const { jobId, partitions } = await splitJob(p, {
        input: { bucket: "input", object: "late.csv" },
        output: { bucket: "output" },
        model: { descriptor },
        partitionBytes: 64 * 1024,
        checkpointEvery: 500,
        errorThreshold: { maxCount: 0 },
      });
      assert.ok(partitions >= 4);
      // Take every partition's message; score only the last partition: the job stops
      // on its threshold with the earlier ones never started.
      const messages = await p.queue.receive({ max: 100, visibilitySeconds: 600 });
      const last = messages.find(
        (m) => (JSON.parse(m.body) as { partition: number }).partition === partitions - 1,
      );
      assert.ok(last);
      const w = new PartitionWorker(p, {
        workerId: "w",
        receiveWaitSeconds: 0,
        scorer: { thread: false },
      });
      await w.handle(last);
      await w.run({ untilIdle: true }); // the merge
      const job = (await p.checkpoints.getJob(jobId))?.value;
      assert.equal(job?.state, "failed");
      const errors = (
        await readFile(objectFile(dir, "output", job?.result?.errorsOutput.object ?? ""), "utf8")
      )
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { line: number | null; offset: number });
      assert.equal(errors.length, 3);
      for (const e of errors) {
        const lineOfOffset = bytes.subarray(0, e.offset).toString("latin1").split("\n").length;
        assert.equal(e.line, lineOfOffset, `error at offset ${e.offset}`);
      }
    } finally {
      p.close();
    }
  });
});

describe("a job that completed_with_errors", () => {
  it("counts what its outputs hold; verify passes and names the unscored ranges", async () => {
    const { CRASH_MARKER, crashWorkerCommand } = await import("./helpers/poison.ts");
    const dir = dataDir();
    // A record deep inside one partition kills its worker every time it is scored, after
    // that partition has checkpointed rows before it.
    const lines = (await readFile(await customerCsv(root.dir, 6000, 53), "utf8")).split("\n");
    const victim = 3000;
    lines[victim] = (lines[victim] as string).replace(/,,(\d)$/, `,${CRASH_MARKER},$1`);
    assert.ok((lines[victim] as string).includes(CRASH_MARKER));
    const input = path.join(root.dir, "crashes.csv");
    await writeFile(input, lines.join("\n"));
    const { job } = await runJob({
      dataDir: dir,
      inputFile: input,
      descriptor,
      spec: { partitionBytes: 256 * 1024, checkpointEvery: 200, batchSize: 64, maxAttempts: 1 },
      workerCommand: crashWorkerCommand(),
    });
    assert.equal(job.state, "completed_with_errors", job.error);
    const r = job.result;
    assert.ok(r);
    const rows = (await readFile(objectFile(dir, r.output.bucket, r.output.object), "utf8"))
      .split("\n")
      .filter(Boolean).length;
    assert.equal(r.records, rows, "the job's count is the rows in its output");
    const manifest = JSON.parse(
      await readFile(objectFile(dir, r.manifest.bucket, r.manifest.object), "utf8"),
    ) as {
      counts: { records: number };
      unscored: { partition: number; start: number; end: number; checkpointedRecords: number }[];
    };
    assert.equal(manifest.counts.records, rows);
    assert.equal(manifest.unscored.length, 1);
    assert.ok((manifest.unscored[0]?.checkpointedRecords ?? 0) > 0, "it had checkpointed rows");
    const v = cli(["verify", job.jobId, "--data-dir", dir]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /unscored in failed partitions \d+ \[\d+, \d+\)/);
  });
});

describe("an input that changes while it is hashed", () => {
  it("is refused with what to do, and nothing is staged", async () => {
    const { identifyLocalInput } = await import("../src/runner/local-input.ts");
    const { openLocalPipeline } = await import("../src/runner/local-stores.ts");
    const { silentLogger } = await import("../src/core/log.ts");
    const { appendFile, truncate, readdir } = await import("node:fs/promises");
    const dir = dataDir();
    // A sparse 1 GiB file: no disk used, and its hash (on the hash thread) takes long
    // enough (~0.7 s, more on a loaded machine) for a write to land in the middle of it.
    const file = path.join(root.dir, "growing.csv");
    await writeFile(file, "");
    await truncate(file, 1 << 30);
    const p = openLocalPipeline(dir, { log: silentLogger });
    try {
      const identifying = identifyLocalInput(p, file);
      identifying.catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200));
      await appendFile(file, "id,x\n"); // another program still writing the file
      await assert.rejects(identifying, {
        code: "INVALID_ARGUMENT",
        message: new RegExp(
          `input file ${file} changed while it was being read: run again once it is complete`,
        ),
      });
      // Nothing was written: no object, and no remembered hash for the file.
      assert.deepEqual(await readdir(path.join(dir, "buckets")).catch(() => []), []);
      assert.equal(existsSync(path.join(dir, "state", "input-hashes")), false);
    } finally {
      p.close();
    }
  });
});
