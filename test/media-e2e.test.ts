/**
 * Images and Parquet end to end on the embedded default: a media library directory
 * scored by the shapes classifier through the real worker processes (JSONL and
 * Parquet outputs), a Parquet input scored by the churn model (Parquet output,
 * checked against the same rows from CSV), `verify` on each, and the refusals that
 * say which input a task reads.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { silentLogger } from "../src/core/log.ts";
import type { JobRecord } from "../src/core/records.ts";
import { splitJob } from "../src/pipeline/splitter.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import { BAD_OBJECTS, labelFromName } from "../src/tasks/image-classification/shape-dataset.ts";
import { shapeLibrary, shapesModelDir } from "./helpers/media-fixture.ts";
import {
  churnModel,
  customerCsv,
  objectFile,
  readOutputs,
  runJob,
  tempDir,
} from "./helpers/pipeline-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
let shapes: string;
let library: string;
let written: { name: string; label: string }[];
const IMAGES = 90;

before(async () => {
  root = await tempDir("bi-media-");
  shapes = path.join(await shapesModelDir(), "shapes.json");
  library = path.join(root.dir, "library");
  written = await shapeLibrary(library, { count: IMAGES, seed: 21, bad: true });
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

/** Rows of a Parquet file as plain values, in file order (DuckDB: an independent reader). */
async function duckRows(file: string, columns: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(":memory:");
  const duck = await db.connect();
  try {
    const reader = await duck.runAndReadAll(`SELECT ${columns} FROM read_parquet('${file}')`);
    return reader.getRowObjectsJson() as Record<string, unknown>[];
  } finally {
    duck.closeSync();
  }
}

describe("a media library on the embedded default", () => {
  let dataDir: string;
  let job: JobRecord;
  let rows: Record<string, unknown>[];

  it("classifies every image once, in order, with an accuracy a person can check; bad objects are errors with reasons", async () => {
    dataDir = path.join(root.dir, "images");
    const run = await runJob({
      dataDir,
      inputFile: library,
      descriptor: shapes,
      spec: { checkpointEvery: 16, partitionRecords: 40 },
    });
    job = run.job;
    assert.equal(job.state, "completed", job.error);
    assert.equal(run.split.partitions, Math.ceil((IMAGES + 5) / 40));
    assert.equal(job.spec.batchSize, 32, "the image task's batch size when the job sets none");
    assert.deepEqual(job.outputColumns, ["object", "label", "score", "top_labels", "top_scores"]);
    const out = await readOutputs(dataDir, job);
    rows = out.rows.map((l) => JSON.parse(l) as Record<string, unknown>);
    const prefix = job.input.objects?.prefix ?? "";
    assert.match(prefix, /^dirs\/[0-9a-f]{16}\/$/);
    assert.deepEqual(
      rows.map((r) => String(r.object).slice(prefix.length)),
      written.map((w) => w.name).sort(),
      "one row per good image, in listing order",
    );
    const right = rows.filter((r) => r.label === labelFromName(String(r.object))).length;
    assert.ok(right / IMAGES >= 0.85, `accuracy ${right}/${IMAGES}`);
    for (const r of rows) {
      assert.equal((r.top_labels as string[])[0], r.label);
      assert.equal((r.top_scores as number[])[0], r.score);
    }
    // Errors: one per bad object, keyed by its name, at its line of the listing.
    const listing = [...written.map((w) => w.name), ...Object.values(BAD_OBJECTS)].sort();
    const reasons = new Map(
      out.errorRows.map((e) => [String(e.key?.object).slice(prefix.length), e]),
    );
    assert.equal(out.errorRows.length, 5);
    for (const [kind, pattern] of [
      ["empty", /empty object/],
      ["truncated", /truncated jpeg|corrupt jpeg/],
      ["corrupt", /corrupt png|truncated png/],
      ["text", /not an image/],
      ["bomb", /more than 25000000 pixels/],
    ] as const) {
      const e = reasons.get(BAD_OBJECTS[kind]);
      assert.ok(e, `${kind} is in the errors`);
      assert.match(e.reason, pattern);
      assert.equal(e.line, listing.indexOf(BAD_OBJECTS[kind]) + 1, `${kind}: its listing line`);
      assert.equal(e.record, `${prefix}${BAD_OBJECTS[kind]}`);
    }
    const report = await verified(dataDir, job);
    assert.deepEqual([report.inputRecords, report.scored, report.errors], [IMAGES + 5, IMAGES, 5]);
  });

  it("the same library again is the same job", async () => {
    const again = await runJob({
      dataDir,
      inputFile: library,
      descriptor: shapes,
      spec: { checkpointEvery: 16, partitionRecords: 40 },
    });
    assert.equal(again.split.created, false);
    assert.equal(again.job.jobId, job.jobId);
  });

  it("writes the same rows as Parquet, read back by DuckDB", async () => {
    const parquetDir = path.join(root.dir, "images-parquet");
    const run = await runJob({
      dataDir: parquetDir,
      inputFile: library,
      descriptor: shapes,
      spec: {
        checkpointEvery: 16,
        partitionRecords: 40,
        output: { bucket: "output", format: "parquet" },
      },
    });
    assert.equal(run.job.state, "completed", run.job.error);
    const r = run.job.result;
    assert.ok(r);
    assert.match(r.output.object, /predictions\.parquet$/);
    const got = await duckRows(
      objectFile(parquetDir, r.output.bucket, r.output.object),
      "object, label, score, top_labels, top_scores",
    );
    assert.equal(got.length, rows.length);
    got.forEach((g, i) => {
      const want = rows[i] as Record<string, unknown>;
      assert.equal(g.object, want.object);
      assert.equal(g.label, want.label);
      assert.deepEqual(g.top_labels, want.top_labels);
      assert.equal(Math.fround(Number(g.score)), Math.fround(Number(want.score)));
    });
    await verified(parquetDir, run.job);
  });
});

describe("Parquet input on the embedded default", () => {
  it("scores the same rows as the CSV they came from, written by DuckDB with ZSTD and several row groups", async () => {
    const csv = await customerCsv(root.dir, 3000, 61);
    const pq = path.join(root.dir, "customers.parquet");
    const db = await DuckDBInstance.create(":memory:");
    const duck = await db.connect();
    await duck.run(
      `COPY (SELECT * FROM read_csv('${csv}')) TO '${pq}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 500)`,
    );
    duck.closeSync();
    const descriptor = await churnModel();
    const fromCsv = await runJob({
      dataDir: path.join(root.dir, "csv"),
      inputFile: csv,
      descriptor,
    });
    const dataDir = path.join(root.dir, "pq");
    const fromPq = await runJob({
      dataDir,
      inputFile: pq,
      descriptor,
      spec: {
        partitionRecords: 1000,
        checkpointEvery: 700,
        output: { bucket: "output", format: "parquet" },
      },
    });
    assert.equal(fromPq.job.state, "completed", fromPq.job.error);
    assert.equal(fromPq.job.input.format, "parquet");
    // DuckDB cuts row groups of whole vectors (2,048 rows): a partition per row group here.
    assert.equal(fromPq.split.partitions, 2, "whole row groups, at most 1000 rows unless bigger");
    assert.equal(fromPq.job.result?.records, fromCsv.job.result?.records);
    assert.equal(fromPq.job.result?.errors, fromCsv.job.result?.errors);
    const want = (await readOutputs(path.join(root.dir, "csv"), fromCsv.job)).rows.map(
      (l) => JSON.parse(l) as Record<string, unknown>,
    );
    const r = fromPq.job.result;
    assert.ok(r);
    const columns = fromPq.job.outputColumns;
    const got = await duckRows(
      objectFile(dataDir, r.output.bucket, r.output.object),
      columns.map((c) => `"${c}"`).join(", "),
    );
    assert.equal(got.length, want.length);
    got.forEach((g, i) => {
      const w = want[i] as Record<string, unknown>;
      for (const c of columns) {
        if (typeof w[c] === "number") {
          assert.equal(Math.fround(Number(g[c])), Math.fround(w[c] as number), `row ${i} ${c}`);
        } else assert.equal(String(g[c]), String(w[c]), `row ${i} ${c}`);
      }
    });
    await verified(dataDir, fromPq.job);
    const manifest = JSON.parse(
      await readFile(objectFile(dataDir, r.manifest.bucket, r.manifest.object), "utf8"),
    ) as { input: { format: string; parquet: { rows: number } } };
    assert.equal(manifest.input.parquet.rows, 3000);
  });
});

describe("each task reads its kind of input", () => {
  it("an image model refuses a CSV object and a tabular model a prefix, saying what to give", async () => {
    const p = openLocalPipeline(path.join(root.dir, "refusals"), { log: silentLogger });
    try {
      await p.store.put("input", "c.csv", "a,b\n1,2\n");
      await p.store.put("input", "photos/x.png", "not really");
      await assert.rejects(
        splitJob(p, {
          input: { bucket: "input", object: "c.csv" },
          output: { bucket: "output" },
          model: { descriptor: shapes },
        }),
        /image-classification model and can't read a csv object: .*input\.prefix/,
      );
      await assert.rejects(
        splitJob(p, {
          input: { bucket: "input", prefix: "photos/" },
          output: { bucket: "output" },
          model: { descriptor: await churnModel() },
        }),
        /tabular model and can't read the objects under a prefix: .*input\.object/,
      );
      await assert.rejects(
        splitJob(p, {
          input: { bucket: "input", prefix: "nothing-here/" },
          output: { bucket: "output" },
          model: { descriptor: shapes },
        }),
        /no objects under input\/nothing-here\//,
      );
      const listings = await p.store.list("output", { prefix: "jobs/_listings/" });
      assert.equal(listings.objects.length, 0, "a refused listing leaves no manifest behind");
    } finally {
      p.close();
    }
  });
});
