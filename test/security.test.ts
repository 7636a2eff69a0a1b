/**
 * Security of the embedded default: names and paths can't leave their bucket
 * (`..`, absolute names, NUL bytes, backslashes, symbolic links; "encoded"
 * traversal stays a literal name), everything it creates is owner-only whatever
 * the umask, credentials don't reach logs, events, rows or outputs, and every
 * entry point bounds what it accepts (job specs, upload events, queue messages,
 * emitted events).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  lstat,
  mkdir,
  readdir,
  readFile,
  realpath,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { withFileLock } from "../src/adapters/local/file-lock.ts";
import { LocalObjectStore } from "../src/adapters/local/fs-object-store.ts";
import { MAX_MESSAGE_BYTES, SqliteTaskQueue } from "../src/adapters/local/sqlite-task-queue.ts";
import {
  PipelineError,
  redactSecrets,
  StoreUnavailableError,
  UnsafePathError,
  ValidationError,
} from "../src/core/errors.ts";
import { type JobSpecInput, resolveJobSpec } from "../src/core/job-spec.ts";
import { createLogger, silentLogger } from "../src/core/log.ts";
import {
  EVENT_TYPES,
  jobEvent,
  objectCreatedEvent,
  parseObjectEvent,
} from "../src/pipeline/events.ts";
import { PartitionWorker } from "../src/pipeline/partition-worker.ts";
import { splitFromEvent, splitJob } from "../src/pipeline/splitter.ts";
import type { ObjectStore } from "../src/ports/object-store.ts";
import { uploadFile } from "../src/runner/local-runner.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import { churnModel, customerCsv, tempDir } from "./helpers/pipeline-fixture.ts";
import { assertNothingWritten } from "./helpers/poison.ts";

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;

before(async () => {
  root = await tempDir("bi-security-");
  descriptor = await churnModel();
});
after(() => root.cleanup());

async function rejectsWithCode(
  promise: Promise<unknown>,
  code: string,
  what: string,
): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof PipelineError, `${what}: ${String(err)}`);
    assert.equal(err.code, code, `${what}: ${err.message}`);
    return true;
  });
}

/** Every path under `dir`, with its lstat. */
async function walk(dir: string): Promise<{ path: string; mode: number; kind: string }[]> {
  const out: { path: string; mode: number; kind: string }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    const st = await lstat(p);
    const kind = st.isDirectory() ? "dir" : st.isSymbolicLink() ? "link" : "file";
    out.push({ path: p, mode: st.mode & 0o777, kind });
    if (kind === "dir") out.push(...(await walk(p)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------

describe("names and paths stay inside their bucket", () => {
  it("object and bucket names that would escape are UNSAFE_PATH; encoded traversal is a literal name", async () => {
    const base = path.join(root.dir, "names");
    const storeRoot = path.join(base, "store");
    const outside = path.join(base, "outside");
    await mkdir(outside, { recursive: true });
    await writeFile(path.join(outside, "secret.txt"), "top secret");
    const store = new LocalObjectStore({ root: storeRoot });
    await store.put("b", "ok.txt", "fine");
    const unsafe = [
      "..",
      "../outside/secret.txt",
      "a/../../outside/secret.txt",
      "/etc/passwd",
      `${outside}/secret.txt`,
      "a\0b",
      "ok.txt\0.png",
      "..\\outside\\secret.txt",
      "a/./b",
      "a//b",
      "./ok.txt",
    ];
    for (const name of unsafe) {
      const what = JSON.stringify(name);
      await rejectsWithCode(store.head("b", name), "UNSAFE_PATH", `head ${what}`);
      await rejectsWithCode(store.read("b", name), "UNSAFE_PATH", `read ${what}`);
      await rejectsWithCode(store.put("b", name, "x"), "UNSAFE_PATH", `put ${what}`);
      await rejectsWithCode(store.delete("b", name), "UNSAFE_PATH", `delete ${what}`);
    }
    for (const bucket of ["..", "../outside", "b/../..", "", ".", "/tmp", "b\0"]) {
      await rejectsWithCode(store.put(bucket, "x", "x"), "UNSAFE_PATH", `bucket ${bucket}`);
      await rejectsWithCode(store.list(bucket), "UNSAFE_PATH", `list bucket ${bucket}`);
    }
    // Percent-encoding, look-alike dots and overlong UTF-8 are names, not traversal.
    const literal = [
      "%2e%2e/x",
      "..%2f..%2foutside%2fsecret.txt",
      "%252e%252e%252f",
      "．．/x",
      "\u2024\u2024/x",
      "..%c0%af..%c0%afx",
      "...",
      "..x/y..",
    ];
    for (const name of literal) {
      await store.put("b", name, name);
      const file = path.join(storeRoot, "b", ...name.split("/"));
      assert.ok((await realpath(file)).startsWith(`${await realpath(path.join(storeRoot, "b"))}/`));
      let text = "";
      for await (const c of await store.read("b", name)) text += (c as Buffer).toString();
      assert.equal(text, name);
    }
    assert.deepEqual(
      (await store.list("b")).objects.map((o) => o.name).sort(),
      [...literal, "ok.txt"].sort(),
    );
    assert.deepEqual(await readdir(outside), ["secret.txt"]);
    assert.deepEqual(await readdir(base), ["outside", "store"]);
  });

  it("job spec paths that would escape are UnsafePathError with the schema path; nothing is written", async () => {
    const good: JobSpecInput = {
      input: { bucket: "input", object: "c.csv" },
      output: { bucket: "output" },
      model: { descriptor },
    };
    const cases: [JobSpecInput, string][] = [
      [{ ...good, input: { bucket: "input", object: "../c.csv" } }, "/input/object"],
      [{ ...good, input: { bucket: "input", object: "a/../../c.csv" } }, "/input/object"],
      [{ ...good, input: { bucket: "input", object: "/etc/passwd.csv" } }, "/input/object"],
      [{ ...good, input: { bucket: "input", object: "c.csv\0.png" } }, "/input/object"],
      [{ ...good, input: { bucket: "input", object: "..\\c.csv" } }, "/input/object"],
      [{ ...good, output: { bucket: "output", prefix: "../elsewhere" } }, "/output/prefix"],
      [{ ...good, output: { bucket: "output", prefix: "/abs" } }, "/output/prefix"],
      [{ ...good, output: { bucket: "output", prefix: "jobs/../../x" } }, "/output/prefix"],
      [{ ...good, output: { bucket: "output", prefix: "a//b" } }, "/output/prefix"],
      [{ ...good, output: { bucket: "output", prefix: "./jobs" } }, "/output/prefix"],
      [{ ...good, output: { bucket: "output", prefix: "jobs/." } }, "/output/prefix"],
      [{ ...good, output: { bucket: "../output" } }, "/output/bucket"],
      [{ ...good, input: { bucket: "..", object: "c.csv" } }, "/input/bucket"],
      [{ ...good, model: { descriptor: `${descriptor}\0.txt` } }, "/model/descriptor"],
    ];
    const p = openLocalPipeline(path.join(root.dir, "spec-paths"), { log: silentLogger });
    try {
      await uploadFile(p, "input", "c.csv", await customerCsv(root.dir, 100, 97));
      for (const [spec, instancePath] of cases) {
        const what = JSON.stringify(spec).slice(0, 160);
        for (const attempt of [() => resolveJobSpec(spec), () => splitJob(p, spec)]) {
          await assert.rejects(
            async () => attempt(),
            (err: unknown) => {
              assert.ok(err instanceof UnsafePathError, `${what}: ${String(err)}`);
              assert.equal(err.details.instancePath, instancePath, what);
              assert.match(String(err.details.schemaPath), /^#\//, what);
              assert.match(err.message, new RegExp(`^job spec invalid at ${instancePath}: `), what);
              return true;
            },
          );
        }
      }
      // The same through an upload event naming a traversing object.
      const event = objectCreatedEvent({
        bucket: "input",
        object: "../../etc/passwd.csv",
        etag: "e",
        eventId: "ev",
      });
      await assert.rejects(
        splitFromEvent(p, event, { output: { bucket: "output" }, model: { descriptor } }),
        UnsafePathError,
      );
      // Trailing slashes on a prefix are fine: they are dropped.
      assert.equal(
        resolveJobSpec({ ...good, output: { bucket: "o", prefix: "runs//" } }).output.prefix,
        "runs",
      );
      await assertNothingWritten(p, "unsafe spec paths");
    } finally {
      p.close();
    }
  });

  it("symbolic links in the local store are never followed", async () => {
    const base = path.join(root.dir, "links");
    const storeRoot = path.join(base, "store");
    const outside = path.join(base, "outside");
    await mkdir(outside, { recursive: true });
    await writeFile(path.join(outside, "secret.txt"), "top secret");
    const store = new LocalObjectStore({ root: storeRoot });
    await store.put("b", "real/ok.txt", "fine");
    await symlink(path.join(outside, "secret.txt"), path.join(storeRoot, "b", "leak"));
    await symlink(outside, path.join(storeRoot, "b", "dir"));
    await symlink(outside, path.join(storeRoot, "evil"));
    await symlink("../../../outside", path.join(storeRoot, "b", "real", "up"));
    await symlink(path.join(outside, "not-yet"), path.join(storeRoot, "b", "dangling"));

    const through: [string, string][] = [
      ["b", "leak"],
      ["b", "dir/secret.txt"],
      ["b", "dir/new.txt"],
      ["b", "dir/deeper/new.txt"],
      ["b", "real/up/secret.txt"],
      ["b", "dangling/new.txt"],
      ["evil", "secret.txt"],
      ["evil", "new.txt"],
    ];
    for (const [bucket, name] of through) {
      const what = `${bucket}/${name}`;
      await rejectsWithCode(store.head(bucket, name), "UNSAFE_PATH", `head ${what}`);
      await rejectsWithCode(store.read(bucket, name), "UNSAFE_PATH", `read ${what}`);
      if (name !== "leak") {
        await rejectsWithCode(store.put(bucket, name, "pwned"), "UNSAFE_PATH", `put ${what}`);
        await rejectsWithCode(store.delete(bucket, name), "UNSAFE_PATH", `delete ${what}`);
      }
    }
    await rejectsWithCode(
      store.list("b", { prefix: "dir/" }),
      "UNSAFE_PATH",
      "list through a link",
    );
    await rejectsWithCode(store.list("evil"), "UNSAFE_PATH", "list a linked bucket");
    await rejectsWithCode(
      store.put("b", "leak", "pwned", { ifMatch: "x" }),
      "UNSAFE_PATH",
      "conditional put on a link",
    );
    // A listing never shows a link, and replacing or deleting one touches only the link.
    assert.deepEqual(
      (await store.list("b")).objects.map((o) => o.name),
      ["real/ok.txt"],
    );
    await store.put("b", "leak", "replaced");
    assert.ok((await lstat(path.join(storeRoot, "b", "leak"))).isFile());
    await store.delete("b", "leak");
    assert.equal(await readFile(path.join(outside, "secret.txt"), "utf8"), "top secret");
    assert.deepEqual(await readdir(outside), ["secret.txt"]);
    await store.delete("b", "dangling");
  });
});

// ---------------------------------------------------------------------------------------

describe("owner-only files and folders", () => {
  it("under umask 000, every file the stores create is 0600 and every folder 0700", async () => {
    const dataDir = path.join(root.dir, "perms", "state");
    const previous = process.umask(0);
    let entries: Awaited<ReturnType<typeof walk>> = [];
    try {
      const p = openLocalPipeline(dataDir, { log: silentLogger });
      try {
        // A streamed put: look at its temp file while the body is still coming.
        let tempMode: number | undefined;
        async function* body() {
          yield Buffer.from("first,");
          const dir = path.join(dataDir, "buckets", "b", "x", "y");
          const temp = (await readdir(dir)).find((f) => f.includes(".tmp-"));
          assert.ok(temp, "no temp file while writing");
          tempMode = (await stat(path.join(dir, temp))).mode & 0o777;
          yield Buffer.from("second");
        }
        await p.store.put("b", "x/y/z.txt", Readable.from(body()));
        assert.equal(tempMode, 0o600, "temp file");
        await p.queue.send([{ body: "{}" }]);
        await p.checkpoints.listJobs();
        await p.events.publish([jobEvent(EVENT_TYPES.jobCreated, { jobId: "job-x" }, "1", {})]);
        const lockPath = path.join(dataDir, "some.lock");
        const lockMode = await withFileLock(
          lockPath,
          async () => (await stat(lockPath)).mode & 0o777,
        );
        assert.equal(lockMode, 0o600, "lock file");
        // While the databases are open their -wal and -shm files exist too.
        entries = await walk(path.join(root.dir, "perms"));
      } finally {
        p.close();
      }
      const names = entries.map((e) => path.relative(path.join(root.dir, "perms"), e.path));
      for (const f of ["queue.db", "queue.db-wal", "queue.db-shm", "checkpoints.db-wal"]) {
        assert.ok(
          names.includes(path.join("state", "state", f)),
          `${f} not created: ${names.join(", ")}`,
        );
      }
      assert.ok(names.includes(path.join("state", "events.jsonl")));
      for (const e of entries) {
        assert.equal(
          e.mode,
          e.kind === "dir" ? 0o700 : 0o600,
          `${e.kind} ${path.relative(root.dir, e.path)}`,
        );
      }
    } finally {
      process.umask(previous);
    }
  });
});

// ---------------------------------------------------------------------------------------

const FAKE_KEY = [
  "-----BEGIN RSA PRIVATE KEY-----",
  "MIIEowIBAAKCAQEAfakefakefakeFAKEFAKEkeyMaterialThatMustNeverLeak0123",
  "c2VjcmV0LWtleS1tYXRlcmlhbC1ub3QtcmVhbA==",
  "-----END RSA PRIVATE KEY-----",
].join("\n");
const FAKE_TOKEN = "tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const FAKE_SIGNATURE =
  'Signature version="1",keyId="ocid1.tenancy.oc1..aaaafake/ocid1.user.oc1..aaaafake/12:34:56:78",algorithm="rsa-sha256",headers="date (request-target) host",signature="U2lnbmF0dXJlVGhhdE11c3ROZXZlckxlYWs="';
/** Fragments that identify each fake secret wherever it lands, whole or in part. */
const LEAK_MARKERS = [
  "keyMaterialThatMustNeverLeak",
  "c2VjcmV0LWtleS1tYXRlcmlhbC1ub3QtcmVhbA",
  FAKE_TOKEN,
  "U2lnbmF0dXJlVGhhdE11c3ROZXZlckxlYWs",
  "ocid1.user.oc1..aaaafake",
];

function assertNoLeak(text: string, where: string): void {
  for (const m of LEAK_MARKERS) assert.ok(!text.includes(m), `${where} contains a secret (${m})`);
}

describe("credentials never reach logs, events, rows or outputs", () => {
  it("redactSecrets removes private keys, OCI request signatures and tokens, and nothing else", () => {
    const messages = [
      `load failed: ${FAKE_KEY}`,
      `PUT /n/ns/b/x/o/y failed; request headers: authorization: ${FAKE_SIGNATURE}`,
      `request: ${JSON.stringify({ headers: { authorization: FAKE_SIGNATURE, "x-auth-token": FAKE_TOKEN } })}`,
      `Authorization: Bearer ${FAKE_TOKEN}`,
      `OCI_AUTH_TOKEN=${FAKE_TOKEN} security_token: ${FAKE_TOKEN}`,
      `truncated key -----BEGIN PRIVATE KEY-----\nMIIEkeyMaterialThatMustNeverLeak`,
    ];
    for (const m of messages) {
      const redacted = redactSecrets(m);
      assertNoLeak(redacted, JSON.stringify(m).slice(0, 60));
      assert.match(redacted, /\[redacted/);
    }
    for (const harmless of [
      'column age: "forty" is not a number',
      "expected 35 fields, got 34",
      "token bucket refill: 3 tokens",
      "input input/c.csv changed since job job-1 was created",
    ]) {
      assert.equal(redactSecrets(harmless), harmless);
    }
  });

  it("the logger redacts credential-named fields", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "debug", write: (l) => lines.push(l) });
    log.error("auth", {
      authorization: FAKE_SIGNATURE,
      privateKey: FAKE_KEY,
      private_key: FAKE_KEY,
      token: FAKE_TOKEN,
      password: FAKE_TOKEN,
      credentials: FAKE_TOKEN,
    });
    assertNoLeak(lines.join(""), "log line");
    assert.match(lines.join(""), /\[redacted\]/);
  });

  it("the logger redacts credentials nested in fields and inside messages", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "debug", write: (l) => lines.push(l) });
    log.error(`failed with ${FAKE_SIGNATURE}`, {
      request: { headers: { authorization: FAKE_SIGNATURE } },
      error: `bad key ${FAKE_KEY}`,
    });
    assertNoLeak(lines.join(""), "log line");
  });

  it("a job spec carrying credentials is rejected without echoing them", () => {
    const spec = {
      input: { bucket: "input", object: "c.csv" },
      output: { bucket: "output" },
      model: { descriptor },
      auth: { privateKey: FAKE_KEY, token: FAKE_TOKEN, authorization: FAKE_SIGNATURE },
    };
    assert.throws(
      () => resolveJobSpec(spec),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError);
        assert.match(err.message, /has unknown field "auth"/);
        assertNoLeak(JSON.stringify({ message: err.message, ...err.toJSON() }), "the rejection");
        return true;
      },
    );
  });

  it("a failure whose message quotes credentials leaves no trace of them in rows, events, dead letters, outputs or logs", async () => {
    const dataDir = path.join(root.dir, "leaky");
    const lines: string[] = [];
    const log = createLogger({ level: "debug", write: (l) => lines.push(l) });
    // The queue on a clock of our own, so retry backoffs pass without sleeping.
    const clock = { now: Date.now() };
    const base = openLocalPipeline(dataDir, { log, now: () => clock.now });
    base.tasks.close();
    const tasks = new SqliteTaskQueue({
      path: base.paths.queueDb,
      queue: "partitions",
      maxDeliveries: 25,
      now: () => clock.now,
    });
    const p = { ...base, tasks, queue: tasks };
    try {
      await uploadFile(p, "input", "c.csv", await customerCsv(root.dir, 300, 98));
      const { jobId } = await splitJob(p, {
        input: { bucket: "input", object: "c.csv" },
        output: { bucket: "output" },
        model: { descriptor },
        partitionBytes: 16 * 1024,
        maxAttempts: 2,
      });
      // An SDK-style error that quotes the signed request and the key it was signed with.
      const leaky: ObjectStore = {
        head: (b, o) => p.store.head(b, o),
        put: (b, o, body, options) => p.store.put(b, o, body, options),
        list: (b, options) => p.store.list(b, options),
        delete: (b, o) => p.store.delete(b, o),
        read: (b, o, range) =>
          b === "input" && (range?.start ?? 0) > 20_000
            ? Promise.reject(
                new StoreUnavailableError(
                  `GET /n/ns/b/${b}/o/${o} failed: 401 NotAuthenticated; request headers {"authorization":"${FAKE_SIGNATURE.replaceAll('"', '\\"')}","x-auth-token":"${FAKE_TOKEN}"}; key file ${FAKE_KEY}`,
                ),
              )
            : p.store.read(b, o, range),
      };
      const deps = { ...p, store: leaky };
      for (let round = 0; round < 4; round++) {
        await new PartitionWorker(deps, {
          workerId: `w${round}`,
          receiveWaitSeconds: 0,
          scorer: { thread: false },
        }).run({ untilIdle: true });
        const state = (await p.checkpoints.getJob(jobId))?.value.state;
        if (state === "completed_with_errors") break;
        clock.now += 60_000; // the retryable failure backed off: let it come due
      }
      const job = (await p.checkpoints.getJob(jobId))?.value;
      assert.equal(job?.state, "completed_with_errors", job?.error);
      const partitions = await p.checkpoints.listPartitions(jobId);
      const failed = partitions.filter((r) => r.value.state === "failed");
      assert.ok(failed.length > 0);
      assert.match(failed[0]?.value.lastError ?? "", /\[redacted/);
      assertNoLeak(JSON.stringify(job), "job row");
      assertNoLeak(JSON.stringify(partitions), "partition rows");
      assertNoLeak(JSON.stringify(await p.eventLog.read()), "events");
      assertNoLeak(JSON.stringify(await p.tasks.listDeadLetters()), "dead letters");
      assertNoLeak(lines.join(""), "logs");
      for (const o of (await p.store.list("output")).objects) {
        let text = "";
        for await (const c of await p.store.read("output", o.name))
          text += (c as Buffer).toString();
        assertNoLeak(text, `output ${o.name}`);
      }
    } finally {
      base.close();
      tasks.close();
    }
  });

  it("end to end: the CLI with credentials in its environment, debug logs and umask 000 leaks nothing and creates nothing readable by others", async () => {
    const dataDir = path.join(root.dir, "cli-state");
    const input = await customerCsv(root.dir, 2000, 99);
    // A few bad records, so error paths run too.
    const text = await readFile(input, "utf8");
    const spoiled = text
      .replace(/\nC00000100,\d+,/, "\nC00000100,forty,")
      .replace(/\nC00000200,/, "\nC00000200;");
    const file = path.join(root.dir, "cli-input.csv");
    await writeFile(file, spoiled);
    const r = spawnSync(
      "sh",
      [
        "-c",
        'umask 000 && exec "$0" "$@"',
        process.execPath,
        "--import",
        "tsx",
        "src/cli/main.ts",
        "run",
        "--input",
        file,
        "--model",
        descriptor,
        "--data-dir",
        dataDir,
        "--partition-size",
        "64KiB",
        "--log-level",
        "debug",
      ],
      {
        encoding: "utf8",
        env: {
          ...process.env,
          FORCE_COLOR: "0",
          LOG_LEVEL: "debug",
          OCI_CLI_KEY_CONTENT: FAKE_KEY,
          OCI_PRIVATE_KEY: FAKE_KEY,
          OCI_AUTH_TOKEN: FAKE_TOKEN,
          OCI_REQUEST_SIGNATURE: FAKE_SIGNATURE,
          BATCH_INFER_AUTHORIZATION: `Authorization: ${FAKE_SIGNATURE}`,
        },
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /1,998 scored, 2 bad/);
    // The workers' debug logs are in stderr too: what is scanned below is what they said.
    assert.match(r.stderr, /"msg":"claimed partition"/);
    assertNoLeak(r.stdout, "stdout");
    assertNoLeak(r.stderr, "stderr (the CLI's and its workers' logs)");
    // The input object is the user's own file, hard-linked in (never copied): its
    // mode is theirs. Everything the pipeline created is 0600/0700, and the 0700
    // directories keep the linked input out of other users' reach too.
    const inputIno = (await stat(file)).ino;
    for (const e of await walk(dataDir)) {
      const where = path.relative(dataDir, e.path);
      if (e.kind === "file") assertNoLeak((await readFile(e.path)).toString("latin1"), where);
      if (e.kind === "file" && (await stat(e.path)).ino === inputIno) continue;
      assert.equal(e.mode, e.kind === "dir" ? 0o700 : 0o600, `${e.kind} ${where}`);
    }
    assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
  });
});

// ---------------------------------------------------------------------------------------

describe("size limits at every entry", () => {
  const spec: JobSpecInput = {
    input: { bucket: "input", object: "c.csv" },
    output: { bucket: "output" },
    model: { descriptor: "/models/d.json" },
  };

  function nested(depth: number): unknown {
    let v: unknown = 1;
    for (let i = 0; i < depth; i++) v = { a: v };
    return v;
  }

  it("a job spec over 64 KiB or nested too deep is a ValidationError, never a stack overflow", () => {
    const cases: [unknown, RegExp, string][] = [
      [{ ...spec, runTag: "x".repeat(70 * 1024) }, /larger than 65536 bytes as JSON/, ""],
      [
        { ...spec, keyColumns: Array.from({ length: 20_000 }, (_, i) => `c${i}`) },
        /larger than 65536 bytes/,
        "",
      ],
      [
        { ...spec, errorThreshold: nested(200_000) },
        /nests deeper than 8 levels/,
        "/errorThreshold/a/a/a/a/a/a/a",
      ],
      [
        { ...spec, model: { descriptor: () => "x" } },
        /is a function, which is not JSON data/,
        "/model/descriptor",
      ],
    ];
    for (const [bad, message, instancePath] of cases) {
      assert.throws(
        () => resolveJobSpec(bad),
        (err: unknown) => {
          assert.ok(err instanceof ValidationError, String(err));
          assert.equal(err.code, "INVALID_SPEC");
          assert.equal(err.schemaPath, "#");
          assert.equal(err.instancePath, instancePath);
          assert.match(err.message, message);
          assert.ok(err.message.length < 300);
          return true;
        },
      );
    }
  });

  it("an upload event over 1 MiB or nested too deep is a ValidationError; nothing is written", async () => {
    const event = objectCreatedEvent({
      bucket: "input",
      object: "c.csv",
      etag: "e",
      eventId: "ev",
    });
    const big = { ...event, extensions: { compartmentId: "x", padding: "y".repeat(1024 * 1024) } };
    const deep = { ...event, extensions: nested(100_000) };
    for (const bad of [big, deep]) {
      assert.throws(
        () => parseObjectEvent(bad),
        (err: unknown) => {
          assert.ok(err instanceof ValidationError, String(err));
          assert.equal(err.code, "INVALID_EVENT");
          assert.equal(err.schemaPath, "#");
          return true;
        },
      );
    }
    const p = openLocalPipeline(path.join(root.dir, "limits"), { log: silentLogger });
    try {
      await assert.rejects(
        splitFromEvent(p, big, { output: { bucket: "output" }, model: { descriptor } }),
        ValidationError,
      );
      await assertNothingWritten(p, "oversized event");
      // The ports' own limits: a queue message over 128 KiB, an emitted event over 1 MiB.
      await rejectsWithCode(
        p.queue.send([{ body: "x".repeat(MAX_MESSAGE_BYTES + 1) }]),
        "INVALID_ARGUMENT",
        "queue",
      );
      await rejectsWithCode(
        p.events.publish([
          jobEvent(EVENT_TYPES.jobCreated, { jobId: "job-x" }, "1", {
            pad: "z".repeat(1024 * 1024),
          }),
        ]),
        "INVALID_ARGUMENT",
        "event sink",
      );
      assert.deepEqual(await p.eventLog.read(), []);
    } finally {
      p.close();
    }
  });
});
