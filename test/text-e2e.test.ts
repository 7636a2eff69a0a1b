/**
 * Text embeddings end to end on the embedded default, through the worker processes
 * (`run` as the CLI runs it): a JSON Lines corpus with chunking and a bad record, a
 * CSV with a text template, a directory of documents (one object each, with the
 * sha256 of the bytes embedded), and the Parquet output (list<float>) read back by
 * DuckDB. Every vector is checked against the kit's in-process path, the manifest
 * names the model and its dimension, and `verify` accounts for every document and
 * each of its chunks.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { silentLogger } from "../src/core/log.ts";
import type { JobRecord } from "../src/core/records.ts";
import type { Manifest } from "../src/pipeline/manifest.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import { documentsBlock, EmbeddingRowCollector } from "../src/tasks/text-embedding/collect-rows.ts";
import { embedInProcess } from "../src/tasks/text-embedding/embed-in-process.ts";
import { createFeedsScorer } from "../src/tasks/text-embedding/feeds-scorer.ts";
import { loadTextModel } from "../src/tasks/text-embedding/model-dir.ts";
import { objectFile, readOutputs, runJob, tempDir } from "./helpers/pipeline-fixture.ts";
import { corpusTexts, cos, jsonRows, textModel } from "./helpers/text-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
let plain: string;
let chunked: string;
const docs = corpusTexts(80, 3);

before(async () => {
  root = await tempDir("bi-text-");
  plain = await textModel(path.join(root.dir, "plain"));
  chunked = await textModel(path.join(root.dir, "chunked"), {
    maxLength: 48,
    chunking: { overlap: 8 },
    text: { template: "{title}: {text}", missingFields: "empty" },
  });
});
after(() => root?.cleanup());

async function verified(dataDir: string, job: JobRecord) {
  const p = openLocalPipeline(dataDir, { log: silentLogger });
  try {
    const report = await verifyJob(p, job);
    assert.ok(report.ok, JSON.stringify(report.checks, null, 1));
    return report;
  } finally {
    p.close();
  }
}

/** The kit's in-process vectors for `records` (id → rows in chunk order). */
async function reference(descriptor: string, records: object[]) {
  const model = await loadTextModel({ descriptorPath: descriptor });
  const scorer = await createFeedsScorer(model.onnxBytes, { thread: false });
  try {
    const sink = new EmbeddingRowCollector();
    await embedInProcess(model, scorer, [documentsBlock(records)], sink);
    const byId = new Map<string, Float32Array[]>();
    for (const r of sink.rows) byId.set(r.id, [...(byId.get(r.id) ?? []), r.vector]);
    return byId;
  } finally {
    await scorer.close();
  }
}

async function manifestOf(dataDir: string, job: JobRecord): Promise<Manifest> {
  const m = job.result?.manifest;
  assert.ok(m);
  return JSON.parse(await readFile(objectFile(dataDir, m.bucket, m.object), "utf8")) as Manifest;
}

describe("text embeddings on the embedded default", () => {
  let jsonlRows: { id: string; embedding: number[] }[] = [];
  let corpusFile: string;

  it("embeds a JSON Lines corpus in chunks, in input order, with bad records reported; verify counts each chunk", async () => {
    corpusFile = path.join(root.dir, "corpus.jsonl");
    const records = [...docs].map(([id, text], i) =>
      i % 3 === 0 ? { id, title: `Title ${i}`, text } : { id, text },
    );
    const lines = records.map((r) => JSON.stringify(r));
    lines.splice(10, 0, JSON.stringify({ text: "a text without an id" }), "not json");
    await writeFile(corpusFile, `${lines.join("\n")}\n`);
    const dataDir = path.join(root.dir, "jsonl");
    const run = await runJob({
      dataDir,
      inputFile: corpusFile,
      descriptor: chunked,
      spec: { partitionBytes: 8192, checkpointEvery: 16 },
    });
    const job = run.job;
    assert.equal(job.state, "completed", job.error);
    assert.ok(run.split.partitions >= 3, `${run.split.partitions} partitions`);
    assert.equal(job.spec.checkpointEvery, 16);
    assert.deepEqual(job.outputColumns, ["id", "chunk", "embedding"]);
    const out = await readOutputs(dataDir, job);
    const rows = jsonRows<{ id: string; chunk: number; embedding: number[] }>(out.predictions);
    const ids = [...new Set(rows.map((r) => r.id))];
    assert.deepEqual(ids, [...docs.keys()], "documents in input order");
    assert.ok(rows.length > docs.size + 20, `long documents are chunked (${rows.length} rows)`);
    assert.deepEqual(
      out.errorRows.map((e) => e.line),
      [11, 12],
    );
    assert.match(out.errorRows[0]?.reason ?? "", /missing id field "id"/);
    assert.match(out.errorRows[1]?.reason ?? "", /JSON/);
    const ref = await reference(chunked, records);
    for (const r of rows) {
      const want = ref.get(r.id)?.[r.chunk];
      assert.ok(want && cos(r.embedding, want) >= 0.99999, `${r.id} chunk ${r.chunk}`);
    }
    const manifest = await manifestOf(dataDir, job);
    assert.equal(manifest.model.name, "demo-wordpiece-encoder");
    assert.equal(manifest.model.dimension, 128);
    const report = await verified(dataDir, job);
    assert.deepEqual([report.inputRecords, report.scored, report.errors], [82, 80, 2]);
    assert.match(
      report.checks.find((c) => c.name === "every input record exactly once")?.detail ?? "",
      new RegExp(`\\(${rows.length} chunk rows\\)`),
    );
  });

  it("writes list<float> vectors to Parquet, equal to the JSON Lines ones (read by DuckDB)", async () => {
    const jsonlDir = path.join(root.dir, "plain-jsonl");
    const a = await runJob({ dataDir: jsonlDir, inputFile: corpusFile, descriptor: plain });
    assert.equal(a.job.state, "completed", a.job.error);
    jsonlRows = jsonRows((await readOutputs(jsonlDir, a.job)).predictions);
    const dir = path.join(root.dir, "plain-parquet");
    const b = await runJob({
      dataDir: dir,
      inputFile: corpusFile,
      descriptor: plain,
      spec: { output: { bucket: "output", format: "parquet" } },
    });
    assert.equal(b.job.state, "completed", b.job.error);
    const r = b.job.result;
    assert.ok(r);
    const db = await DuckDBInstance.create(":memory:");
    const duck = await db.connect();
    try {
      const file = objectFile(dir, r.output.bucket, r.output.object);
      const types = (await duck.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${file}')`))
        .getRowObjectsJson()
        .map((c) => `${c.column_name}:${c.column_type}`);
      assert.deepEqual(types, ["id:VARCHAR", "embedding:FLOAT[]"]);
      const got = (
        await duck.runAndReadAll(`SELECT id, embedding FROM read_parquet('${file}')`)
      ).getRowObjectsJson() as { id: string; embedding: number[] }[];
      assert.equal(got.length, jsonlRows.length);
      got.forEach((g, i) => {
        const want = jsonlRows[i];
        assert.equal(g.id, want?.id);
        assert.deepEqual(
          g.embedding.map((x) => Math.fround(Number(x))),
          want?.embedding.map((x) => Math.fround(x)),
        );
      });
    } finally {
      duck.closeSync();
    }
    await verified(dir, b.job);
  });

  it("embeds a CSV by its header, and a directory of documents one object each (with the sha256 of the bytes embedded)", async () => {
    const csv = path.join(root.dir, "docs.csv");
    const picked = [...docs].slice(0, 20);
    await writeFile(
      csv,
      `id,title,text\n${picked.map(([id, t], i) => `${id},"T${i}, ""quoted""",${JSON.stringify(t)}`).join("\n")}\n`,
    );
    const csvDir = path.join(root.dir, "csv");
    const c = await runJob({ dataDir: csvDir, inputFile: csv, descriptor: chunked });
    assert.equal(c.job.state, "completed", c.job.error);
    const csvRows = jsonRows<{ id: string; chunk: number }>(
      (await readOutputs(csvDir, c.job)).predictions,
    );
    assert.deepEqual(
      [...new Set(csvRows.map((r) => r.id))],
      picked.map(([id]) => id),
    );
    await verified(csvDir, c.job);

    // The same documents tab-separated (.tsv): every reader splits at the job's delimiter.
    const tsv = path.join(root.dir, "docs.tsv");
    await writeFile(
      tsv,
      `id\ttitle\ttext\n${picked.map(([id, t], i) => `${id}\t"T${i}, ""quoted"""\t${JSON.stringify(t)}`).join("\n")}\n`,
    );
    const tsvDir = path.join(root.dir, "tsv");
    const tj = await runJob({ dataDir: tsvDir, inputFile: tsv, descriptor: chunked });
    assert.equal(tj.job.state, "completed", tj.job.error);
    assert.equal(tj.job.input.delimiter, "\t");
    assert.deepEqual(
      jsonRows((await readOutputs(tsvDir, tj.job)).predictions),
      csvRows,
      "a .tsv embeds exactly as the same .csv",
    );
    await verified(tsvDir, tj.job);

    const folder = path.join(root.dir, "folder");
    await mkdir(path.join(folder, "sub"), { recursive: true });
    for (const [id, t] of picked) await writeFile(path.join(folder, "sub", `${id}.txt`), t);
    await writeFile(path.join(folder, "empty.txt"), "");
    const dirData = path.join(root.dir, "dir");
    const d = await runJob({
      dataDir: dirData,
      inputFile: folder,
      descriptor: plain,
      spec: { partitionRecords: 8, checkpointEvery: 4 },
    });
    assert.equal(d.job.state, "completed", d.job.error);
    assert.deepEqual(d.job.outputColumns, ["id", "embedding", "sha256"]);
    const out = await readOutputs(dirData, d.job);
    const rows = jsonRows<{ id: string; embedding: number[]; sha256: string }>(out.predictions);
    const prefix = d.job.input.objects?.prefix ?? "";
    assert.deepEqual(
      rows.map((r) => r.id.slice(prefix.length)),
      picked.map(([id]) => `sub/${id}.txt`),
    );
    const byId = new Map(jsonlRows.map((r) => [r.id, r.embedding]));
    for (const r of rows) {
      const id = path.basename(r.id, ".txt");
      assert.equal(
        r.sha256,
        createHash("sha256")
          .update(docs.get(id) as string)
          .digest("hex"),
      );
      assert.ok(cos(r.embedding, byId.get(id) as number[]) >= 0.99999, id);
    }
    assert.deepEqual(
      out.errorRows.map((e) => [e.key, e.reason]),
      [[{ id: `${prefix}empty.txt` }, "empty text"]],
    );
    await verified(dirData, d.job);
  });
});
