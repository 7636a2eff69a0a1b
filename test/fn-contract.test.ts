/**
 * The bundled function started exactly as Fn starts it (FN_FORMAT=http-stream,
 * FN_LISTENER=unix:...), called over its unix socket with POST /call.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { silentLogger } from "../src/core/log.ts";
import { objectCreatedEvent } from "../src/pipeline/events.ts";
import { PartitionWorker } from "../src/pipeline/partition-worker.ts";
import { uploadFile } from "../src/runner/local-runner.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import { churnModel, customerCsv, tempDir } from "./helpers/pipeline-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;
const children: ChildProcess[] = [];

before(async () => {
  root = await tempDir();
  descriptor = await churnModel();
  const built = spawnSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], {
    encoding: "utf8",
  });
  assert.equal(built.status, 0, built.stderr);
});
after(async () => {
  for (const c of children) c.kill("SIGKILL");
  await root.cleanup();
});

/** Start dist/functions.cjs as Fn would; resolves once its socket is up. */
async function startFunction(name: string, env: Record<string, string>) {
  const sock = path.join(root.dir, `${name}-${children.length}`, "lsnr.sock");
  mkdirSync(path.dirname(sock), { recursive: true });
  const started = performance.now();
  const child = spawn(process.execPath, ["dist/functions.cjs"], {
    env: {
      ...process.env,
      FN_FORMAT: "http-stream",
      FN_LISTENER: `unix:${sock}`,
      BATCH_INFER_FUNCTION: name,
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  // The FDK listens on <sock>.tmp and symlinks <sock> when ready: wait for that (bounded).
  for (let i = 0; i < 200 && !existsSync(sock); i++) {
    if (child.exitCode !== null) throw new Error(`function exited: ${stderr}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(existsSync(sock), `socket never appeared: ${stderr}`);
  return { sock, readyMs: performance.now() - started };
}

function call(sock: string, body: unknown, method = "POST", urlPath = "/call") {
  return new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
    const req = http.request(
      {
        socketPath: sock,
        path: urlPath,
        method,
        headers: {
          "Content-Type": "application/json",
          "Fn-Call-Id": `call-${Math.random().toString(16).slice(2)}`,
          "Fn-Deadline": new Date(Date.now() + 60_000).toISOString(),
        },
      },
      (res) => {
        let text = "";
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text || "{}") }),
        );
      },
    );
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe("functions over the Fn http-stream contract", () => {
  it("splitter: real upload events, duplicates, malformed and missing objects; merger completes the job", async (t) => {
    const dataDir = path.join(root.dir, "state");
    const p = openLocalPipeline(dataDir, { log: silentLogger });
    try {
      const { etag } = await uploadFile(
        p,
        "input",
        "c.csv",
        await customerCsv(root.dir, 2000, 101),
      );
      const defaults = {
        model: { descriptor },
        output: { bucket: "output" },
        partitionBytes: 64 * 1024,
      };
      const { sock, readyMs } = await startFunction("splitter", {
        BATCH_INFER_DATA_DIR: dataDir,
        BATCH_INFER_JOB_DEFAULTS: JSON.stringify(defaults),
      });
      const event = objectCreatedEvent({ bucket: "input", object: "c.csv", etag, eventId: "ev-1" });
      const t0 = performance.now();
      const first = await call(sock, event);
      t.diagnostic(
        `splitter cold start: socket ready ${readyMs.toFixed(0)} ms, first answer ${(performance.now() - t0).toFixed(0)} ms later`,
      );
      assert.equal(first.status, 200, JSON.stringify(first.json));
      assert.equal(first.json.action, "split");
      assert.equal(first.json.created, true);
      const dup = await call(sock, event);
      assert.equal(dup.json.created, false);
      assert.equal(dup.json.jobId, first.json.jobId);

      const malformed = await call(sock, { ...event, data: { resourceName: "c.csv" } });
      assert.equal(malformed.status, 200);
      assert.equal(malformed.json.ok, false);
      assert.match(
        String((malformed.json.error as { message: string }).message),
        /object event invalid at \/data/,
      );
      assert.equal(
        (malformed.json.error as { schemaPath: string }).schemaPath,
        "#/properties/data/required",
      );

      const missing = await call(
        sock,
        objectCreatedEvent({ bucket: "input", object: "nope.csv", etag: "x", eventId: "ev-2" }),
      );
      assert.match(
        String((missing.json.error as { message: string }).message),
        /input object input\/nope.csv does not exist/,
      );
      const get = await call(sock, undefined, "GET");
      assert.equal(get.status, 400);

      await new PartitionWorker(p, { workerId: "w", receiveWaitSeconds: 0 }).run({
        untilIdle: true,
      });
      const merger = await startFunction("merger", { BATCH_INFER_DATA_DIR: dataDir });
      const merged = await call(merger.sock, { jobId: first.json.jobId });
      assert.equal(merged.status, 200, JSON.stringify(merged.json));
      assert.deepEqual(merged.json, {
        jobId: first.json.jobId,
        state: "completed",
        records: 2000,
        errors: 0,
      });
    } finally {
      p.close();
    }
  });
});
