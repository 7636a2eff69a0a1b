import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { parquetReadObjects } from "hyparquet";
import { LocalObjectStore } from "../src/adapters/local/fs-object-store.ts";
import { ModelError, PreconditionFailedError } from "../src/core/errors.ts";
import { parseDescriptor } from "../src/model/descriptor.ts";
import { KeyBatch } from "../src/model/key-batch.ts";
import { mergeParquetParts } from "../src/outputs/parquet/merge.ts";
import { ParquetRowSink } from "../src/outputs/parquet/row-sink.ts";
import { openParquetObject, PARQUET_COMPRESSORS } from "../src/sources/parquet/object-file.ts";
import { ParquetSource } from "../src/sources/parquet/parquet-source.ts";
import { partitionRowGroups, planParquet } from "../src/sources/parquet/plan.ts";
import { createRowFeaturizer } from "../src/sources/parquet/row-featurizer.ts";
import { readBytes } from "../src/sources/read-bytes.ts";
import type { RowBlock } from "../src/sources/record-source.ts";
import type { OutputColumn } from "../src/tasks/task.ts";

const ROWS = 10_000;
// Columns DuckDB writes for the input tests: ids, a nullable double, a category with
// few values (dictionary-encoded), a boolean, a big payload nobody needs, and nested ones.
const SELECT = `SELECT i AS id,
  CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 0.5)::DOUBLE END AS x,
  CASE i % 3 WHEN 0 THEN 'red' WHEN 1 THEN 'green' ELSE 'blue' END AS colour,
  i % 2 = 0 AS flag,
  md5(i::VARCHAR) || md5((i * 3)::VARCHAR) || md5((i * 7)::VARCHAR) || md5((i * 11)::VARCHAR) AS payload,
  [i, i + 1] AS tags,
  {'a': i} AS point
  FROM range(${ROWS}) t(i)`;

describe("Parquet in and out (checked against DuckDB)", () => {
  let root: string;
  let store: LocalObjectStore;
  let db: DuckDBInstance;
  let duck: DuckDBConnection;

  /** DuckDB writes `select` as Parquet with `options`; we upload it to the store. */
  async function duckWrite(name: string, options: string, select = SELECT): Promise<string> {
    const file = join(root, name.replaceAll("/", "_"));
    await duck.run(`COPY (${select}) TO '${file}' (FORMAT parquet, ${options})`);
    await store.put("lake", name, await readFile(file));
    return file;
  }

  async function readAll(source: ParquetSource, from: number): Promise<RowBlock[]> {
    const blocks: RowBlock[] = [];
    for await (const b of source.read(from)) blocks.push(b);
    return blocks;
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "parquet-"));
    store = new LocalObjectStore({ root: join(root, "store") });
    db = await DuckDBInstance.create(":memory:");
    duck = await db.connect();
  });
  after(async () => {
    duck.closeSync();
    db.closeSync();
    await rm(root, { recursive: true, force: true });
  });

  it("plans partitions from the footer alone, as whole row groups", async () => {
    await duckWrite("t/zstd.parquet", "COMPRESSION zstd, ROW_GROUP_SIZE 2048");
    const plan = await planParquet(store, "lake", "t/zstd.parquet", {
      columns: ["id", "x"],
      partitionRows: 4096,
    });
    assert.equal(plan.rows, ROWS);
    assert.ok(plan.rowGroups >= 4);
    let next = 0;
    for (const p of plan.partitions) {
      assert.equal(p.start, next);
      assert.ok(p.end - p.start <= 4096 || p.endGroup - p.firstGroup === 1);
      next = p.end;
    }
    assert.equal(next, ROWS);
    assert.deepEqual(
      partitionRowGroups(
        [
          { firstRow: 0, rows: 10, bytes: 100 },
          { firstRow: 10, rows: 10, bytes: 100 },
          { firstRow: 20, rows: 10, bytes: 900 },
        ],
        { partitionBytes: 250 },
      ).map((p) => [p.start, p.end]),
      [
        [0, 20],
        [20, 30],
      ],
    );
    const { file } = await openParquetObject(store, "lake", "t/zstd.parquet");
    await planParquet(store, "lake", "t/zstd.parquet");
    assert.equal(file.stats.requests, 0, "opening reads nothing");
  });

  it("reads only the needed columns of ZSTD/dictionary row groups, nulls kept, same values as DuckDB", async () => {
    await duckWrite("t/zstd.parquet", "COMPRESSION zstd, ROW_GROUP_SIZE 2048");
    const size = (await store.head("lake", "t/zstd.parquet"))?.size ?? 0;
    const plan = await planParquet(store, "lake", "t/zstd.parquet", {
      columns: ["id", "x", "colour"],
      partitionRows: 4096,
    });
    const ids: bigint[] = [];
    const xs: (number | null)[] = [];
    const colours: string[] = [];
    let bytes = 0;
    for (const p of plan.partitions) {
      const source = new ParquetSource({
        store,
        bucket: "lake",
        name: "t/zstd.parquet",
        etag: plan.etag,
        columns: ["id", "x", "colour"],
        start: p.start,
        end: p.end,
        blockRows: 1000,
      });
      for (const b of await readAll(source, p.start)) {
        assert.equal(b.firstRow, ids.length, "blocks follow each other");
        assert.ok(b.count <= 1000);
        for (let i = 0; i < b.count; i++) {
          ids.push(b.columns.id?.[i] as bigint);
          xs.push(b.columns.x?.[i] as number | null);
          colours.push(b.columns.colour?.[i] as string);
        }
      }
      bytes += source.lastStats?.bytes ?? 0;
    }
    const expected = (
      await duck.runAndReadAll(
        `SELECT id, x, colour FROM read_parquet('${join(root, "t_zstd.parquet")}')`,
      )
    ).getRowObjects();
    assert.equal(ids.length, ROWS);
    assert.deepEqual(
      ids,
      expected.map((r) => r.id),
    );
    assert.deepEqual(
      xs,
      expected.map((r) => r.x),
    );
    assert.deepEqual(
      colours,
      expected.map((r) => r.colour),
    );
    assert.equal(xs.filter((v) => v === null).length, Math.ceil(ROWS / 7));
    assert.ok(bytes < size / 2, `read ${bytes} of ${size} bytes: the payload column was skipped`);
  });

  it("resumes at any row and reads every codec and page version DuckDB writes", async () => {
    for (const options of [
      "COMPRESSION snappy",
      "COMPRESSION gzip",
      "COMPRESSION brotli",
      "COMPRESSION lz4",
      "COMPRESSION uncompressed",
      "COMPRESSION zstd, PARQUET_VERSION v2", // data page v2, delta encodings (as pyarrow can write)
    ]) {
      const name = `codec/${options.replace(/\W+/g, "_")}.parquet`;
      await duckWrite(name, `${options}, ROW_GROUP_SIZE 2048`);
      const source = new ParquetSource({
        store,
        bucket: "lake",
        name,
        columns: ["id", "flag"],
        start: 0,
        end: ROWS,
      });
      const from = 3001;
      const blocks = await readAll(source, from);
      assert.equal(blocks[0]?.firstRow, from, options);
      const ids = blocks.flatMap((b) => Array.from(b.columns.id as ArrayLike<bigint>));
      assert.equal(ids.length, ROWS - from, options);
      assert.equal(ids[0], BigInt(from));
      assert.equal(ids.at(-1), BigInt(ROWS - 1));
      const flags = blocks.flatMap((b) => Array.from(b.columns.flag as ArrayLike<boolean>));
      assert.equal(flags[0], from % 2 === 0, options);
    }
  });

  it("warms a read (footer, first row group) that read then carries on, once; a read elsewhere starts afresh", async () => {
    await duckWrite("t/warm.parquet", "COMPRESSION snappy, ROW_GROUP_SIZE 2048");
    const open = () =>
      new ParquetSource({
        store,
        bucket: "lake",
        name: "t/warm.parquet",
        columns: ["id", "x"],
        numeric: ["x"],
        start: 0,
        end: ROWS,
      });
    const rows = (blocks: RowBlock[]) =>
      blocks.flatMap((b) => Array.from(b.columns.id as ArrayLike<bigint>, Number));
    const cold = open();
    const want = rows(await readAll(cold, 2500));
    const coldGets = cold.lastStats?.requests;
    const warm = open();
    warm.warm(2500);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(rows(await readAll(warm, 2500)), want);
    assert.equal(
      warm.lastStats?.requests,
      coldGets,
      "the warmed reads are the read's, not extra ones",
    );
    const elsewhere = open();
    elsewhere.warm(0);
    assert.deepEqual(
      rows(await readAll(elsewhere, 2500)),
      want,
      "a read from elsewhere starts afresh",
    );
    const broken = new ParquetSource({
      store,
      bucket: "lake",
      name: "t/missing.parquet",
      columns: ["id"],
      start: 0,
      end: 10,
    });
    broken.warm(0); // its failure is the read's, not an unhandled rejection
    await assert.rejects(readAll(broken, 0), /does not exist/);
  });

  it("refuses nested and missing columns clearly, and a replaced file", async () => {
    await duckWrite("t/nested.parquet", "COMPRESSION zstd");
    await assert.rejects(
      planParquet(store, "lake", "t/nested.parquet", { columns: ["id", "tags"] }),
      (e: unknown) =>
        e instanceof ModelError && /column "tags" .* is nested \(LIST\)/.test(e.message),
    );
    await assert.rejects(
      planParquet(store, "lake", "t/nested.parquet", { columns: ["point"] }),
      /column "point" .* is nested/,
    );
    await assert.rejects(
      planParquet(store, "lake", "t/nested.parquet", { columns: ["nope"] }),
      /column "nope" is not in .*columns are: id, x, colour/,
    );
    const all = await planParquet(store, "lake", "t/nested.parquet");
    assert.deepEqual(
      all.columns.map((c) => c.name),
      ["id", "x", "colour", "flag", "payload"],
    );
    await store.put(
      "lake",
      "t/nested.parquet",
      await readFile(await duckWrite("t/other.parquet", "COMPRESSION snappy")),
    );
    const stale = new ParquetSource({
      store,
      bucket: "lake",
      name: "t/nested.parquet",
      etag: all.etag,
      columns: ["id"],
      start: 0,
      end: 10,
    });
    await assert.rejects(readAll(stale, 0), PreconditionFailedError);
    await store.put("lake", "t/not.parquet", "id,x\n1,2\n");
    await assert.rejects(
      planParquet(store, "lake", "t/not.parquet"),
      /not a readable Parquet file/,
    );
  });

  it("featurizes typed rows with the descriptor's missing-value rules", async () => {
    await duckWrite("t/features.parquet", "COMPRESSION zstd");
    const plan = await planParquet(store, "lake", "t/features.parquet", {
      columns: ["id", "x", "colour", "flag"],
    });
    const descriptor = parseDescriptor({
      name: "m",
      version: "1",
      onnx: "m.onnx",
      input: { name: "features" },
      features: [
        { column: "x", type: "number" },
        { column: "flag", type: "boolean" },
        { column: "colour", type: "category", categories: ["red", "green"] },
      ],
      outputs: [{ name: "p", column: "p" }],
    });
    const strict = createRowFeaturizer(descriptor, ["id"], plan.columns);
    const source = new ParquetSource({
      store,
      bucket: "lake",
      name: "t/features.parquet",
      columns: ["id", "x", "colour", "flag"],
      start: 0,
      end: 20,
    });
    const [block] = await readAll(source, 0);
    assert.ok(block);
    const out = new Float32Array(strict.width * 20);
    assert.equal(strict.featurize(block, 0, out, 0), "column x: missing value");
    assert.equal(strict.featurize(block, 1, out, 4), undefined);
    assert.deepEqual([...out.subarray(4, 8)], [0.5, 0, 0, 1], "x=0.5, flag false, colour green");
    assert.equal(strict.featurize(block, 2, out, 8), undefined);
    assert.deepEqual([...out.subarray(8, 12)], [1, 1, 0, 0], "blue is unknown: zeros");
    assert.deepEqual(strict.keys(block, 2), ["2"]);
    const imputing = createRowFeaturizer(
      { ...descriptor, features: [{ column: "x", type: "number", missing: -1 }] },
      [],
      plan.columns,
    );
    const one = new Float32Array(1);
    assert.equal(imputing.featurize(block, 7, one, 0), undefined);
    assert.equal(one[0], -1);
    assert.throws(
      () =>
        createRowFeaturizer(
          { ...descriptor, features: [{ column: "x", type: "boolean" }] },
          [],
          plan.columns,
        ),
      /feature column "x" is DOUBLE; a boolean feature needs/,
    );
  });

  it("names a row's first bad feature in descriptor order, typed columns or not, block after block", () => {
    const columns = [
      { name: "a", type: "DOUBLE", nullable: true, nested: false },
      { name: "flag", type: "BYTE_ARRAY", logical: "STRING", nullable: true, nested: false },
      { name: "b", type: "DOUBLE", nullable: true, nested: false },
    ];
    const descriptor = parseDescriptor({
      name: "m",
      version: "1",
      onnx: "m.onnx",
      input: { name: "features" },
      features: [
        { column: "a", type: "number" },
        { column: "flag", type: "boolean" },
        { column: "b", type: "number", missing: 7 },
      ],
      outputs: [{ name: "p", column: "p" }],
    });
    const fz = createRowFeaturizer(descriptor, [], columns);
    const block = (a: number[], flag: (string | null)[], b: number[]): RowBlock => ({
      kind: "rows",
      count: a.length,
      firstRow: 0,
      columns: { a: Float32Array.from(a), flag, b: Float32Array.from(b) },
    });
    const out = new Float32Array(3);
    const first = block([Number.NaN, 1, 2, 3], ["yes", "maybe", null, "no"], [1, 2, 3, Number.NaN]);
    assert.equal(fz.featurize(first, 0, out, 0), "column a: missing value", "a before flag");
    assert.match(fz.featurize(first, 1, out, 0) ?? "", /^column flag: "maybe" is not a boolean/);
    assert.equal(fz.featurize(first, 2, out, 0), "column flag: missing value");
    assert.equal(fz.featurize(first, 3, out, 0), undefined);
    assert.deepEqual([...out], [3, 0, 7], "b's missing value imputed");
    // A new block: nothing of the last one's bad rows is left.
    const second = block([5, 6], ["t", "f"], [8, 9]);
    assert.equal(fz.featurize(second, 0, out, 0), undefined);
    assert.deepEqual([...out], [5, 1, 8]);
    assert.equal(fz.featurize(second, 1, out, 0), undefined);
    assert.deepEqual([...out], [6, 0, 9]);
  });

  it("adds keys read as UTF-8 bytes as the string path would: ASCII copied, the rest decoded, null empty", () => {
    const values = ["a-1", "x,y", "é✓", null, 'q"', "", "id 42"];
    const data = Buffer.from(values.map((v) => v ?? "").join(""));
    const starts = new Int32Array(values.length);
    const ends = new Int32Array(values.length);
    let at = 0;
    values.forEach((v, i) => {
      starts[i] = at;
      at += Buffer.byteLength(v ?? "");
      ends[i] = at;
    });
    const nulls = Uint8Array.from(values, (v) => (v === null ? 1 : 0));
    const descriptor = parseDescriptor({
      name: "m",
      version: "1",
      onnx: "m.onnx",
      input: { name: "features" },
      features: [{ column: "x", type: "number" }],
      outputs: [{ name: "p", column: "p" }],
    });
    const columns = [
      { name: "id", type: "BYTE_ARRAY", logical: "STRING", nullable: true, nested: false },
      { name: "x", type: "DOUBLE", nullable: false, nested: false },
    ];
    const fz = createRowFeaturizer(descriptor, ["id"], columns);
    const x = new Float32Array(values.length);
    const asBytes: RowBlock = {
      kind: "rows",
      count: values.length,
      firstRow: 0,
      columns: { x },
      text: { id: { data: new Uint8Array(data), starts, ends, nulls } },
    };
    const asStrings: RowBlock = { ...asBytes, columns: { x, id: values }, text: {} };
    const viaBytes = new KeyBatch();
    const viaStrings = new KeyBatch();
    for (let i = 0; i < values.length; i++) {
      fz.addKeys(asBytes, i, viaBytes);
      fz.addKeys(asStrings, i, viaStrings);
      assert.deepEqual(fz.keys(asBytes, i), [values[i]]);
    }
    const keys = (b: KeyBatch) => values.map((_, i) => b.get(i));
    assert.deepEqual(keys(viaBytes), ["a-1", "x,y", "é✓", "", 'q"', "", "id 42"]);
    assert.deepEqual(keys(viaBytes), keys(viaStrings));
    // Only what needs no escaping in any output stays bytes; the rest are strings.
    assert.deepEqual(
      values.map((_, i) => viaBytes.stringAt(i) === undefined),
      [true, false, false, false, false, true, true],
    );
  });

  const COLUMNS: OutputColumn[] = [
    { name: "object", type: "string" },
    { name: "score", type: "float32" },
    { name: "n", type: "int" },
    { name: "top_labels", type: "string[]" },
    { name: "embedding", type: "float32[]" },
  ];

  function part(from: number, count: number): Uint8Array {
    const sink = new ParquetRowSink(COLUMNS, { model: "shapes@1" });
    for (let r = from; r < from + count; r++) {
      sink.startRow();
      sink.string(r % 5 === 0 ? null : `img-${r}.jpg`);
      sink.float32(r / 8);
      sink.int(r * 1000);
      sink.strings(r % 2 ? ["circle", "star"] : ["square"]);
      sink.float32s(Float32Array.of(r, -r, 0.25));
      sink.endRow();
    }
    return sink.finish();
  }

  async function duckRows(bytes: Uint8Array, name: string) {
    const file = join(root, name);
    await writeFile(file, bytes);
    return (await duck.runAndReadAll(`SELECT * FROM read_parquet('${file}')`)).getRowObjectsJson();
  }

  it("writes parts DuckDB reads: strings with nulls, float, int64, list<string>, list<float>", async () => {
    const rows = await duckRows(part(0, 6), "part.parquet");
    assert.equal(rows.length, 6);
    assert.deepEqual(rows[1], {
      object: "img-1.jpg",
      score: 0.125,
      n: "1000",
      top_labels: ["circle", "star"],
      embedding: [1, -1, 0.25],
    });
    assert.equal(rows[0]?.object, null);
    const types = (
      await duck.runAndReadAll(
        `DESCRIBE SELECT * FROM read_parquet('${join(root, "part.parquet")}')`,
      )
    ).getRowObjectsJson();
    assert.deepEqual(
      types.map((t) => t.column_type),
      ["VARCHAR", "FLOAT", "BIGINT", "VARCHAR[]", "FLOAT[]"],
    );
  });

  it("merges parts into one valid file by copying column chunks (DuckDB and hyparquet agree)", async () => {
    const parts = [part(0, 50), part(50, 0), part(50, 120), part(170, 30)];
    async function* source() {
      for (const [k, bytes] of parts.entries()) yield { name: `part-${k}`, bytes };
    }
    await store.put(
      "out",
      "job/output.parquet",
      Readable.from(mergeParquetParts(source(), COLUMNS)),
    );
    const merged = await readBytes(store, "out", "job/output.parquet");
    const rows = await duckRows(merged, "merged.parquet");
    assert.equal(rows.length, 200);
    rows.forEach((row, r) => {
      assert.equal(row.n, String(r * 1000));
      assert.deepEqual(row.embedding, [r, -r, 0.25]);
      assert.equal(row.object, r % 5 === 0 ? null : `img-${r}.jpg`);
    });
    const groups = (
      await duck.runAndReadAll(
        `SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata('${join(root, "merged.parquet")}') ORDER BY 1`,
      )
    ).getRowObjectsJson();
    assert.deepEqual(
      groups.map((g) => g.row_group_num_rows),
      ["50", "120", "30"],
    );
    const kv = (
      await duck.runAndReadAll(
        `SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata('${join(root, "merged.parquet")}')`,
      )
    ).getRowObjectsJson();
    assert.deepEqual(kv, [{ k: "model", v: "shapes@1" }]);
    // Statistics were carried over: DuckDB can still prune by them.
    const pruned = (
      await duck.runAndReadAll(
        `SELECT count(*) AS c FROM read_parquet('${join(root, "merged.parquet")}') WHERE n >= 170000`,
      )
    ).getRowObjectsJson();
    assert.equal(pruned[0]?.c, "30");
    const ab = merged.buffer.slice(
      merged.byteOffset,
      merged.byteOffset + merged.length,
    ) as ArrayBuffer;
    const ours = await parquetReadObjects({ file: ab, compressors: PARQUET_COMPRESSORS });
    assert.equal(ours.length, 200);
    assert.deepEqual(ours[199]?.top_labels, ["circle", "star"]);
  });

  it("merges no parts into an empty file with the output schema", async () => {
    async function* none() {}
    const chunks: Buffer[] = [];
    for await (const c of mergeParquetParts(none(), COLUMNS)) chunks.push(c);
    const file = join(root, "empty.parquet");
    await writeFile(file, Buffer.concat(chunks));
    const r = await duck.runAndReadAll(`SELECT count(*) AS c FROM read_parquet('${file}')`);
    assert.equal(r.getRowObjectsJson()[0]?.c, "0");
    const d = (
      await duck.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${file}')`)
    ).getRowObjectsJson();
    assert.deepEqual(
      d.map((x) => x.column_name),
      COLUMNS.map((c) => c.name),
    );
  });
});
