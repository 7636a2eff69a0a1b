/**
 * Event-driven embedding refresh on the embedded default, with workers in this
 * process (real SQLite, files and onnxruntime): only new and changed documents are
 * embedded, unchanged vectors are carried over byte for byte, the delta turns one
 * generation's set into the next, bursts of requests coalesce into one more refresh,
 * the same corpus state never yields two jobs, failures are reported and retried,
 * and a model change embeds everything again.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { silentLogger } from "../src/core/log.ts";
import type { JobRecord } from "../src/core/records.ts";
import { mergeJob } from "../src/pipeline/merger.ts";
import { PartitionWorker } from "../src/pipeline/partition-worker.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import type { ObjectStore } from "../src/ports/object-store.ts";
import { REFRESH_COMPLETED } from "../src/refresh/events.ts";
import type { CorpusHead, RefreshSettings } from "../src/refresh/head.ts";
import { corpusLayout } from "../src/refresh/layout.ts";
import { corpusHead, finishRefreshOf, requestRefresh } from "../src/refresh/refresh.ts";
import { type LocalPipeline, openLocalPipeline } from "../src/runner/local-stores.ts";
import { readBytes } from "../src/sources/read-bytes.ts";
import { documentsBlock, EmbeddingRowCollector } from "../src/tasks/text-embedding/collect-rows.ts";
import { embedInProcess } from "../src/tasks/text-embedding/embed-in-process.ts";
import { createFeedsScorer, type FeedsScorer } from "../src/tasks/text-embedding/feeds-scorer.ts";
import { loadTextModel, type TextModel } from "../src/tasks/text-embedding/model-dir.ts";
import { tempDir } from "./helpers/pipeline-fixture.ts";
import {
  corpusTexts,
  cos,
  jsonRows,
  putCorpus,
  type Row,
  textModel,
} from "./helpers/text-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;
let model: TextModel;
let scorer: FeedsScorer;
let n = 0;
const PREFIX = "docs/";

before(async () => {
  root = await tempDir("bi-refresh-");
  descriptor = await textModel(path.join(root.dir, "model"));
  model = await loadTextModel({ descriptorPath: descriptor });
  scorer = await createFeedsScorer(model.onnxBytes, { thread: false });
});
after(async () => {
  await scorer?.close();
  await root?.cleanup();
});

function pipeline(): LocalPipeline {
  return openLocalPipeline(path.join(root.dir, `p${++n}`), { log: silentLogger });
}

function settingsFor(modelDescriptor = descriptor): RefreshSettings {
  return {
    corpus: { bucket: "corpus", prefix: PREFIX },
    output: { bucket: "out", prefix: "embeddings" },
    model: modelDescriptor,
    job: { partitionRecords: 40, checkpointEvery: 16 },
  };
}

/** Run every queued partition and merge with a worker in this process. */
async function drain(p: LocalPipeline): Promise<void> {
  await new PartitionWorker(p, {
    workerId: `w${n}`,
    receiveWaitSeconds: 0,
    scorer: { thread: false },
  }).run({ untilIdle: true });
}

async function text(store: ObjectStore, bucket: string, name: string): Promise<string> {
  return (await readBytes(store, bucket, name)).toString("utf8");
}

async function headOf(p: LocalPipeline): Promise<CorpusHead> {
  const h = await corpusHead(p, settingsFor());
  assert.ok(h, "the corpus has a head");
  return h;
}

/** The current generation's set, delta and state. */
async function generation(p: LocalPipeline) {
  const h = await headOf(p);
  const g = h.current;
  assert.ok(g, "a generation exists");
  const setText = await text(p.store, "out", g.embeddings);
  return {
    head: h,
    g,
    setText,
    set: jsonRows(setText),
    setLines: setText.split("\n").filter(Boolean),
    delta: jsonRows<{ op: string; id: string; chunk?: number; embedding?: number[] }>(
      await text(p.store, "out", g.delta),
    ),
    state: jsonRows<[string, string, number, string, number, number, number]>(
      await text(p.store, "out", g.state),
    ),
    failed: jsonRows<{ id: string; reason: string }>(await text(p.store, "out", g.failed)),
  };
}

/** Reference vectors: the kit's own in-process path over the raw texts. */
async function reference(docs: Map<string, string>): Promise<Map<string, Float32Array>> {
  const sink = new EmbeddingRowCollector();
  const block = documentsBlock([...docs].map(([id, t]) => ({ id: `${PREFIX}${id}.txt`, text: t })));
  await embedInProcess(model, scorer, [block], sink);
  return new Map(sink.rows.map((r) => [r.id, r.vector]));
}

function sha(textOrBytes: string | Buffer): string {
  return createHash("sha256").update(textOrBytes).digest("hex");
}

async function jobsOf(p: LocalPipeline): Promise<JobRecord[]> {
  return (await p.checkpoints.listJobs({ limit: 100 })).map((r) => r.value);
}

describe("embedding refresh", () => {
  it("embeds every document once, then only what changed; unchanged rows carry over; the delta turns one set into the next", async () => {
    const p = pipeline();
    try {
      const docs = corpusTexts(120);
      await putCorpus(p.store, "corpus", PREFIX, docs);
      const first = await requestRefresh(p, settingsFor());
      assert.equal(first.action, "started");
      assert.equal(first.active?.planned?.new, 120);
      await drain(p);
      const g1 = await generation(p);
      assert.equal(g1.g.generation, 1);
      assert.deepEqual(g1.g.counts, { new: 120, changed: 0, unchanged: 0, deleted: 0, failed: 0 });
      const ids = [...docs.keys()].map((d) => `${PREFIX}${d}.txt`).sort();
      assert.deepEqual(
        g1.set.map((r) => r.id),
        ids,
        "one row per document, in id order",
      );
      const ref1 = await reference(docs);
      for (const r of g1.set) {
        assert.ok(cos(r.embedding, ref1.get(r.id) as Float32Array) >= 0.99999, r.id);
        assert.equal(r.sha256, sha(docs.get(r.id.slice(PREFIX.length, -4)) as string));
      }
      // The state locates each document's rows in the set.
      const setBytes = Buffer.from(g1.setText);
      for (const [id, , , hash, rows, offset, length] of g1.state) {
        const slice = jsonRows(setBytes.subarray(offset, offset + length).toString("utf8"));
        assert.equal(slice.length, rows);
        assert.equal(slice[0]?.id, id);
        assert.equal(slice[0]?.sha256, hash);
      }
      const events = await p.eventLog.read({ eventType: REFRESH_COMPLETED });
      assert.equal(events.length, 1);
      assert.deepEqual((events[0]?.data as { counts?: unknown } | undefined)?.counts, g1.g.counts);

      // Change 6, add 3, delete 4, rewrite 2 with the same bytes (a new etag only).
      const changed = [
        "doc-000003",
        "doc-000010",
        "doc-000011",
        "doc-000050",
        "doc-000077",
        "doc-000119",
      ];
      const deleted = ["doc-000000", "doc-000020", "doc-000021", "doc-000099"];
      const touched = ["doc-000005", "doc-000060"];
      const next = new Map(docs);
      for (const id of changed) next.set(id, `${docs.get(id)} Goal midfielder derby cup.`);
      for (const id of ["new-1", "new-2", "zzz-new"])
        next.set(id, `A fresh note ${id} about garlic and olive oil.`);
      for (const id of deleted) next.delete(id);
      for (const id of changed)
        await p.store.put("corpus", `${PREFIX}${id}.txt`, next.get(id) as string);
      for (const id of ["new-1", "new-2", "zzz-new"]) {
        await p.store.put("corpus", `${PREFIX}${id}.txt`, next.get(id) as string);
      }
      for (const id of deleted) await p.store.delete("corpus", `${PREFIX}${id}.txt`);
      for (const id of touched) {
        const before = await p.store.head("corpus", `${PREFIX}${id}.txt`);
        const after = await p.store.put("corpus", `${PREFIX}${id}.txt`, docs.get(id) as string);
        assert.notEqual(after.etag, before?.etag, "a rewrite gives a new etag");
      }
      const second = await requestRefresh(p, settingsFor());
      assert.equal(second.action, "started");
      assert.deepEqual(second.active?.planned, {
        new: 3,
        changed: 6,
        unchanged: 110,
        deleted: 4,
        touched: 2,
      });
      await drain(p);
      const g2 = await generation(p);
      assert.deepEqual(g2.g.counts, { new: 3, changed: 6, unchanged: 110, deleted: 4, failed: 0 });
      const job = (await p.checkpoints.getJob(g2.g.jobId as string))?.value as JobRecord;
      assert.equal(job.input.objects?.count, 9, "only the new and changed documents were embedded");
      assert.equal(job.result?.records, 9);
      assert.ok((await verifyJob(p, job)).ok, "the refresh's job verifies");

      const name = (id: string) => `${PREFIX}${id}.txt`;
      const upserts = g2.delta.filter((d) => d.op === "upsert").map((d) => d.id);
      assert.deepEqual(upserts, [...changed, "new-1", "new-2", "zzz-new"].map(name).sort());
      assert.deepEqual(
        g2.delta.filter((d) => d.op === "delete").map((d) => d.id),
        deleted.map(name),
      );
      // Applying the delta to generation 1 gives generation 2.
      const applied = new Map(g1.set.map((r) => [r.id, JSON.stringify(r.embedding)]));
      for (const d of g2.delta) {
        if (d.op === "delete") applied.delete(d.id);
        else applied.set(d.id, JSON.stringify(d.embedding));
      }
      assert.deepEqual(
        new Map(g2.set.map((r) => [r.id, JSON.stringify(r.embedding)])),
        new Map([...applied].sort(([a], [b]) => (a < b ? -1 : 1))),
      );
      // Unchanged documents' rows are the same bytes; changed ones are the new text's vectors.
      const lines1 = new Map(g1.setLines.map((l) => [(JSON.parse(l) as Row).id, l]));
      const ref2 = await reference(next);
      for (const l of g2.setLines) {
        const r = JSON.parse(l) as Row;
        const id = r.id.slice(PREFIX.length, -4);
        if (!changed.includes(id) && !id.includes("new")) assert.equal(l, lines1.get(r.id), id);
        assert.ok(cos(r.embedding, ref2.get(r.id) as Float32Array) >= 0.99999, r.id);
      }

      // The same corpus again: nothing to do, no job.
      const jobs = (await jobsOf(p)).length;
      const third = await requestRefresh(p, settingsFor());
      assert.equal(third.action, "up-to-date");
      assert.equal(third.generation, 2);
      assert.equal((await jobsOf(p)).length, jobs, "an unchanged corpus yields no job");
    } finally {
      p.close();
    }
  });

  it("coalesces bursts and duplicates: one job per corpus state, one more refresh after a dirty one", async () => {
    const p = pipeline();
    try {
      const docs = corpusTexts(60, 11);
      await putCorpus(p.store, "corpus", PREFIX, docs);
      const layout = corpusLayout(settingsFor().corpus, settingsFor().output);
      let headWrites = 0;
      const counting: LocalPipeline = {
        ...p,
        store: {
          ...p.store,
          head: (b, o) => p.store.head(b, o),
          read: (b, o, r) => p.store.read(b, o, r),
          list: (b, o) => p.store.list(b, o),
          delete: (b, o) => p.store.delete(b, o),
          put: (b, o, body, opt) => {
            if (o === layout.head) headWrites++;
            return p.store.put(b, o, body, opt);
          },
        },
      };
      // Two requests race for an idle corpus: one plans, the other coalesces.
      const racing = await Promise.all([
        requestRefresh(counting, settingsFor()),
        requestRefresh(counting, settingsFor()),
      ]);
      assert.deepEqual(racing.map((r) => r.action).sort(), ["coalesced", "started"]);
      // A document changes after the listing; then a burst of (duplicate) events.
      await p.store.put(
        "corpus",
        `${PREFIX}doc-000007.txt`,
        "Changed after the listing: goal, cup.",
      );
      const writesBefore = headWrites;
      const burst = await Promise.all(
        Array.from({ length: 20 }, () => requestRefresh(counting, settingsFor())),
      );
      assert.ok(burst.every((r) => r.action === "coalesced"));
      assert.ok(
        headWrites - writesBefore <= 1,
        `a burst is one head write (${headWrites - writesBefore})`,
      );
      assert.equal((await headOf(p)).dirty, true);
      assert.equal((await jobsOf(p)).length, 1, "the burst made no job");

      // Generation 1's merge finishes it and, the corpus being dirty, starts exactly one
      // more refresh, which finds the change (its job runs in the same drain).
      await drain(p);
      const h = await headOf(p);
      assert.equal(h.dirty, false);
      assert.equal(h.active, undefined);
      const g2 = await generation(p);
      assert.equal(g2.g.generation, 2);
      // The document changed between listing and reading: generation 1 reports it as
      // failed (its bytes are not what was listed), and the follow-up embeds it.
      const events = await p.eventLog.read({ eventType: REFRESH_COMPLETED });
      assert.deepEqual(
        events.map((e) => (e.data as { generation: number; counts: unknown }).counts),
        [
          { new: 59, changed: 0, unchanged: 0, deleted: 0, failed: 1 },
          { new: 1, changed: 0, unchanged: 59, deleted: 0, failed: 0 },
        ],
      );
      assert.equal(g2.set.length, 60);
      assert.match(
        (await text(p.store, "out", g2.g.failed.replace("/v2/", "/v1/"))).trim(),
        /doc-000007\.txt.*changed after it was listed/,
      );
      assert.equal((await requestRefresh(p, settingsFor())).action, "up-to-date");
      assert.equal((await jobsOf(p)).length, 2, "each corpus state made one job");
    } finally {
      p.close();
    }
  });

  it("reports a document that fails and retries it in the next refresh; a changed one keeps its old vector until then", async () => {
    const p = pipeline();
    try {
      const docs = corpusTexts(30, 5);
      await putCorpus(p.store, "corpus", PREFIX, docs);
      await p.store.put("corpus", `${PREFIX}bad.txt`, Buffer.from([0x66, 0xff, 0xfe, 0x41]));
      await p.store.put("corpus", `${PREFIX}empty.txt`, "");
      await requestRefresh(p, settingsFor());
      await drain(p);
      let g = await generation(p);
      assert.deepEqual(g.g.counts, { new: 30, changed: 0, unchanged: 0, deleted: 0, failed: 2 });
      assert.deepEqual(
        g.failed.map((f) => [f.id, f.reason]),
        [
          [`${PREFIX}bad.txt`, "invalid UTF-8 in object"],
          [`${PREFIX}empty.txt`, "empty text"],
        ],
      );
      assert.equal(g.set.length, 30);
      assert.ok(!g.state.some(([id]) => id.endsWith("bad.txt") || id.endsWith("empty.txt")));

      // Nothing changed, yet the failures are tried again.
      const again = await requestRefresh(p, settingsFor());
      assert.equal(again.action, "started");
      assert.equal(again.active?.planned?.new, 2);
      await drain(p);
      g = await generation(p);
      assert.equal(g.g.counts.failed, 2);

      // Fixed, it is embedded; a document changed into something unreadable keeps its old vector.
      const keep = `${PREFIX}doc-000004.txt`;
      const oldLine = g.setLines.find((l) => l.includes(`"${keep}"`));
      await p.store.put("corpus", `${PREFIX}bad.txt`, "Fixed now: a recipe with garlic.");
      await p.store.put("corpus", keep, Buffer.from([0xc3, 0x28]));
      await requestRefresh(p, settingsFor());
      await drain(p);
      g = await generation(p);
      assert.deepEqual(g.g.counts, { new: 1, changed: 0, unchanged: 29, deleted: 0, failed: 2 });
      assert.deepEqual(
        g.failed.map((f) => f.id),
        [keep, `${PREFIX}empty.txt`],
      );
      assert.equal(
        g.setLines.find((l) => l.includes(`"${keep}"`)),
        oldLine,
        "old vector kept",
      );
      assert.ok(!g.delta.some((d) => d.id === keep), "no delta for it yet");
      await p.store.put("corpus", keep, "Readable again: football.");
      await requestRefresh(p, settingsFor());
      await drain(p);
      g = await generation(p);
      assert.equal(g.g.counts.changed, 1);
      assert.deepEqual(
        g.delta.filter((d) => d.op === "upsert").map((d) => d.id),
        [keep],
      );
    } finally {
      p.close();
    }
  });

  it("embeds everything again when the model changes; finishing twice changes nothing", async () => {
    const p = pipeline();
    try {
      const docs = corpusTexts(25, 9);
      await putCorpus(p.store, "corpus", PREFIX, docs);
      await requestRefresh(p, settingsFor());
      await drain(p);
      const g1 = await generation(p);
      const other = await textModel(path.join(root.dir, `model-${n}`), { normalize: false });
      const r = await requestRefresh(p, settingsFor(other));
      assert.equal(r.active?.planned?.changed, 25);
      await drain(p);
      const g2 = await generation(p);
      assert.deepEqual(g2.g.counts, { new: 0, changed: 25, unchanged: 0, deleted: 0, failed: 0 });
      assert.notEqual(g2.head.model?.identity, g1.head.model?.identity);
      const norm = Math.hypot(...(g2.set[0]?.embedding ?? []));
      assert.ok(Math.abs(norm - 1) > 1e-3, `not normalised now (norm ${norm})`);

      // A redelivered merge, or the hook called again: same head, one event per generation.
      const job = (await p.checkpoints.getJob(g2.g.jobId as string))?.value as JobRecord;
      const before = JSON.stringify(await headOf(p));
      await mergeJob(p, job.jobId);
      await finishRefreshOf(p, job);
      assert.equal(JSON.stringify(await headOf(p)), before);
      assert.equal((await p.eventLog.read({ eventType: REFRESH_COMPLETED })).length, 2);
    } finally {
      p.close();
    }
  });
});
