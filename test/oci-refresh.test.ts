/**
 * Embedding refresh on the OCI stand-in, end to end under the deployment's IAM: uploads
 * to the corpus bucket → object events → the bundled refresh function over its Fn
 * socket (every event delivered twice) → one embedding job at a time on OCI Queue,
 * NoSQL rows → two worker processes on the OCI adapters → the job's merge finishes the
 * refresh (and runs the one more refresh the burst of events asked for) → generations
 * in Object Storage and refresh.completed messages on Streaming. Then a change and a
 * delete make a generation that embeds only what changed.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type OciPipeline, openOciPipeline } from "../src/adapters/oci/pipeline.ts";
import { silentLogger } from "../src/core/log.ts";
import { REFRESH_COMPLETED } from "../src/refresh/events.ts";
import type { CorpusHead, RefreshSettings } from "../src/refresh/head.ts";
import { corpusHead } from "../src/refresh/refresh.ts";
import { readBytes } from "../src/sources/read-bytes.ts";
import { tempDir } from "./helpers/pipeline-fixture.ts";
import { corpusTexts, jsonRows, textModel } from "./helpers/text-fixture.ts";
import {
  type FullStandIn,
  fnCall,
  NAMESPACE,
  STREAM_ID,
  startFullStandIn,
} from "./oci-standin/index.ts";

let root: { dir: string; cleanup(): Promise<void> };
let stand: FullStandIn;
let admin: OciPipeline;
const children: ChildProcess[] = [];

before(async () => {
  root = await tempDir("oci-refresh-");
  const built = spawnSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], {
    encoding: "utf8",
  });
  assert.equal(built.status, 0, built.stderr);
  stand = await startFullStandIn({ corpusBucket: "corpus" });
  admin = await openOciPipeline(stand.env(root.dir), { log: silentLogger });
});
after(async () => {
  for (const c of children) c.kill("SIGKILL");
  admin?.close();
  await stand?.close();
  await root?.cleanup();
});

function spawnNode(script: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr = `${stderr}${d}`.slice(-10_000);
  });
  child.on("exit", (code, signal) => {
    if (code !== 0 && signal === null) console.error(`${script} exited ${code}: ${stderr}`);
  });
  children.push(child);
  return child;
}

async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 180_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      const h = await corpusHead(admin, {
        corpus: { bucket: "corpus", prefix: "docs/" },
        output: { bucket: "scores", prefix: "embeddings" },
      });
      throw new Error(`timed out waiting for ${what}; head: ${JSON.stringify(h)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("embedding refresh on the OCI stand-in", () => {
  it("corpus events → refresh function → one job at a time on the workers → generations and completion messages; a change embeds only what changed", async () => {
    const descriptor = await textModel(path.join(root.dir, "model"));
    const settings: RefreshSettings = {
      corpus: { bucket: "corpus", prefix: "docs/" },
      output: { bucket: "scores", prefix: "embeddings" },
      // Workers and the function run on this machine: a local model directory.
      model: descriptor,
      job: { partitionRecords: 16, checkpointEvery: 8, visibilitySeconds: 5 },
    };
    const sock = path.join(root.dir, "fn-refresh", "lsnr.sock");
    mkdirSync(path.dirname(sock), { recursive: true });
    spawnNode("dist/functions.cjs", {
      ...stand.env(root.dir, {}, "embed-splitter"),
      FN_FORMAT: "http-stream",
      FN_LISTENER: `unix:${sock}`,
      BATCH_INFER_FUNCTION: "refresh",
      BATCH_INFER_REFRESH: JSON.stringify(settings),
    });
    await until("the function's socket", async () => (existsSync(sock) ? true : undefined), 30_000);
    // What the corpus rule's FAAS action does, at least once: every event twice.
    const answers: Record<string, unknown>[] = [];
    stand.onEvent(async (event) => {
      for (let i = 0; i < 2; i++) {
        const r = await fnCall(sock, event);
        assert.equal(r.status, 200, JSON.stringify(r.json));
        answers.push(r.json);
      }
    });
    for (const id of ["w-a", "w-b"]) {
      spawnNode("dist/worker.js", {
        ...stand.env(root.dir, {}, "worker"),
        WORKER_ID: id,
        INFERENCE_THREAD: "0",
      });
    }

    const docs = corpusTexts(40, 13);
    for (const [id, text] of docs) await admin.store.put("corpus", `docs/${id}.txt`, text);
    await until("every event delivered twice", async () =>
      answers.length >= 80 ? true : undefined,
    );
    // Events arrive together: one plans, the rest coalesce into one more refresh.
    const actions = answers.map((a) => String(a.action));
    assert.ok(actions.includes("started"), actions.join(","));
    assert.ok(
      actions.filter((a) => a === "coalesced").length >= actions.length / 2,
      actions.join(","),
    );

    const settled = async (want: number): Promise<CorpusHead | undefined> => {
      const h = await corpusHead(admin, settings);
      return h && !h.active && !h.dirty && (h.current?.documents ?? 0) === want ? h : undefined;
    };
    let head = await until("every document embedded", () => settled(40));
    const set = jsonRows(
      (await readBytes(admin.store, "scores", head.current?.embeddings ?? "")).toString("utf8"),
    );
    assert.deepEqual(
      set.map((r) => r.id),
      [...docs.keys()].map((id) => `docs/${id}.txt`).sort(),
      "every document exactly once",
    );
    const jobs = (await admin.checkpoints.listJobs()).map((r) => r.value);
    assert.ok(jobs.every((j) => j.refresh && j.state === "completed"));
    assert.ok(
      jobs.length <= head.generation,
      `at most one job per generation (${jobs.length} jobs, generation ${head.generation})`,
    );

    // An update and a delete (OCI Events delivers deletes too; the stand-in emits
    // creates and updates, so the delete envelope is made here as Events makes it).
    const generation = head.generation;
    await admin.store.put("corpus", "docs/doc-000001.txt", "Rewritten: goal, cup, derby.");
    await admin.store.delete("corpus", "docs/doc-000002.txt");
    const del = await fnCall(sock, {
      ...(stand.emitted.at(-1) as object),
      eventID: "delete-1",
      eventType: "com.oraclecloud.objectstorage.deleteobject",
      data: {
        resourceName: "docs/doc-000002.txt",
        additionalDetails: { bucketName: "corpus", namespace: NAMESPACE },
      },
    });
    assert.equal(del.status, 200, JSON.stringify(del.json));
    assert.equal(
      (del.json.event as { type: string }).type,
      "com.oraclecloud.objectstorage.deleteobject",
    );
    head = await until("the change refreshed", async () => {
      const h = await settled(39);
      return h && h.generation > generation && h.current?.counts.deleted === 1 ? h : undefined;
    });
    const counts = head.current?.counts;
    assert.equal(counts?.changed, 1);
    assert.equal(counts?.new, 0);
    assert.equal(counts?.unchanged, 38);
    const delta = jsonRows<{ op: string; id: string }>(
      (await readBytes(admin.store, "scores", head.current?.delta ?? "")).toString("utf8"),
    );
    assert.deepEqual(
      delta.map((d) => [d.op, d.id]),
      [
        ["upsert", "docs/doc-000001.txt"],
        ["delete", "docs/doc-000002.txt"],
      ],
    );

    // The completion messages on Streaming: one per generation, with counts and the delta.
    const completed = stand.streaming
      .messages(STREAM_ID)
      .map(
        (m) =>
          JSON.parse(m.value.toString("utf8")) as {
            eventType: string;
            data: Record<string, unknown>;
          },
      )
      .filter((e) => e.eventType === REFRESH_COMPLETED)
      // Streaming keeps order per partition only (the key is the event id).
      .sort((a, b) => Number(a.data.generation) - Number(b.data.generation));
    assert.deepEqual(
      completed.map((e) => e.data.generation),
      Array.from({ length: head.generation }, (_, i) => i + 1),
    );
    assert.equal(completed.at(-1)?.data.delta, `scores/${head.current?.delta}`);
    assert.deepEqual(completed.at(-1)?.data.counts, counts);

    // An event from outside the corpus (e.g. the refresh's own outputs) is refused.
    const outside = await fnCall(sock, {
      ...(stand.emitted.at(-1) as object),
      data: { resourceName: "embeddings/x", additionalDetails: { bucketName: "scores" } },
    });
    assert.equal((outside.json.error as { code?: string } | undefined)?.code, "INVALID_EVENT");
    assert.deepEqual(stand.server.denials, [], "no component was refused by IAM");
    stand.onEvent(undefined);
  });
});
