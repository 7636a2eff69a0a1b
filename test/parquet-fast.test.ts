/**
 * The fast paths for flat Parquet columns on files DuckDB writes (every codec, both
 * page versions, nullable and required, plain and dictionary-encoded), read from any
 * row: numbers against hyparquet's general decoder on the same file (as float32,
 * what a feature is; null as NaN), text (as strings, and as the UTF-8 bytes keys
 * are read as) against DuckDB's own values. Plus the
 * RLE/bit-packed hybrid decoder on runs written by hand.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { LocalObjectStore } from "../src/adapters/local/fs-object-store.ts";
import { decodeThreadStats } from "../src/sources/parquet/decode-thread.ts";
import { decodeHybrid } from "../src/sources/parquet/pages.ts";
import { ParquetSource } from "../src/sources/parquet/parquet-source.ts";
import { utf8At } from "../src/sources/record-source.ts";

const ROWS = 9000;
// Nullable doubles, a low-cardinality double (dictionary), float, int, bigint, and a
// required double (no definition levels).
const SELECT = `SELECT
  CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 0.25 - 100)::DOUBLE END AS d,
  ((i % 5) * 1.5)::DOUBLE AS dict,
  CASE WHEN i % 11 = 0 THEN NULL ELSE (i / 3.0)::FLOAT END AS f,
  (i % 1000 - 500)::INTEGER AS n32,
  CASE WHEN i % 13 = 0 THEN NULL ELSE (i::BIGINT * 3000000 - 7) END AS n64,
  CASE WHEN i % 17 = 0 THEN NULL ELSE 'id-' || i || '-é' END AS label,
  CASE i % 3 WHEN 0 THEN 'red' WHEN 1 THEN NULL ELSE 'blue' END AS colour
  FROM range(${ROWS}) t(i)`;
const COLUMNS = ["d", "dict", "f", "n32", "n64"];

describe("flat Parquet columns on the fast paths", () => {
  let root: string;
  let store: LocalObjectStore;
  let db: DuckDBInstance;
  let duck: DuckDBConnection;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "parquet-numeric-"));
    store = new LocalObjectStore({ root: join(root, "store") });
    db = await DuckDBInstance.create(":memory:");
    duck = await db.connect();
  });
  after(async () => {
    duck.closeSync();
    db.closeSync();
    await rm(root, { recursive: true, force: true });
  });

  /** Every value of the columns from row `from`, as float32 (null as NaN). */
  async function columns(name: string, from: number, numeric: string[]) {
    const source = new ParquetSource({
      store,
      bucket: "lake",
      name,
      columns: COLUMNS,
      numeric,
      start: 0,
      end: ROWS,
      blockRows: 1000,
    });
    const out: Record<string, number[]> = Object.fromEntries(COLUMNS.map((c) => [c, []]));
    for await (const block of source.read(from)) {
      for (const c of COLUMNS) {
        for (const v of Array.from(block.columns[c] as ArrayLike<unknown>)) {
          (out[c] as number[]).push(
            v === null || v === undefined ? Number.NaN : Math.fround(Number(v)),
          );
        }
      }
    }
    return out;
  }

  /**
   * The text columns' values from row `from`, as [label, colour] pairs: as strings,
   * or (`asBytes`) read as UTF-8 bytes — the way key columns are — and decoded here.
   */
  async function texts(name: string, from: number, asBytes = false): Promise<unknown[][]> {
    const source = new ParquetSource({
      store,
      bucket: "lake",
      name,
      columns: ["label", "colour"],
      ...(asBytes ? { text: ["label", "colour"] } : {}),
      start: 0,
      end: ROWS,
    });
    const rows: unknown[][] = [];
    for await (const block of source.read(from)) {
      if (asBytes) {
        // An encoding off the fast path (DELTA_BYTE_ARRAY in v2 pages) still comes as strings.
        assert.ok(block.text?.colour, "a dictionary text column comes as bytes");
        assert.equal(!block.text?.label, name.includes("v2"), `label as bytes in ${name}`);
      } else assert.equal(block.text, undefined);
      const value = (c: string, i: number) => {
        const bytes = block.text?.[c];
        return bytes ? utf8At(bytes, i) : block.columns[c]?.[i];
      };
      for (let i = 0; i < block.count; i++) rows.push([value("label", i), value("colour", i)]);
    }
    return rows;
  }

  it("gives the numbers hyparquet gives and the text DuckDB gives, for every codec and page version", async () => {
    for (const options of [
      "COMPRESSION snappy",
      "COMPRESSION zstd",
      "COMPRESSION gzip",
      "COMPRESSION uncompressed",
      "COMPRESSION zstd, PARQUET_VERSION v2",
    ]) {
      const name = `n/${options.replace(/\W+/g, "_")}.parquet`;
      const file = join(root, name.replaceAll("/", "_"));
      await duck.run(
        `COPY (${SELECT}) TO '${file}' (FORMAT parquet, ${options}, ROW_GROUP_SIZE 2048)`,
      );
      await store.put("lake", name, await readFile(file));
      for (const from of [0, 4321]) {
        const fast = await columns(name, from, COLUMNS);
        const general = await columns(name, from, []);
        for (const c of COLUMNS) {
          assert.equal(fast[c]?.length, ROWS - from, `${options} ${c}`);
          assert.deepEqual(fast[c], general[c], `${options}: column ${c} from row ${from}`);
        }
        const want = (
          await duck.runAndReadAll(
            `SELECT label, colour FROM read_parquet('${file}') OFFSET ${from}`,
          )
        ).getRowObjects();
        for (const asBytes of [false, true]) {
          assert.deepEqual(
            await texts(name, from, asBytes),
            want.map((r) => [r.label, r.colour]),
            `${options}: text columns from row ${from}${asBytes ? " (as bytes)" : ""}`,
          );
        }
        const nulls = Array.from({ length: ROWS - from }, (_, k) => from + k).filter(
          (r) => r % 7 === 0,
        );
        assert.equal(fast.d?.filter(Number.isNaN).length, nulls.length, `${options}: nulls of d`);
      }
    }
  });

  it("decodes numbers on the decode thread where there are two cores", () => {
    if (availableParallelism() < 2) return;
    assert.ok(decodeThreadStats.decoded > 0, "the numeric chunks above went to the thread");
  });

  it("decodes RLE and bit-packed runs of any width, dropping a group's padding", () => {
    // RLE: 5 × value 3 (width 2, one byte); bit-packed: one group of 8 values, width 3.
    const values = [1, 2, 3, 4, 5, 6, 7, 0];
    let bits = 0n;
    values.forEach((v, i) => {
      bits |= BigInt(v) << BigInt(3 * i);
    });
    const packed = [
      Number(bits & 0xffn),
      Number((bits >> 8n) & 0xffn),
      Number((bits >> 16n) & 0xffn),
    ];
    const buf = Uint8Array.from([5 << 1, 3, (1 << 1) | 1, ...packed]);
    const out = new Uint32Array(11);
    decodeHybrid(buf, 0, buf.length, 3, out, 11);
    assert.deepEqual(Array.from(out), [3, 3, 3, 3, 3, 1, 2, 3, 4, 5, 6]);
    const ones = new Uint8Array(10);
    decodeHybrid(Uint8Array.from([(2 << 1) | 1, 0b10110101, 0b00000010]), 0, 3, 1, ones, 10);
    assert.deepEqual(Array.from(ones), [1, 0, 1, 0, 1, 1, 0, 1, 0, 1]);
    assert.throws(
      () => decodeHybrid(Uint8Array.from([4 << 1, 1]), 0, 2, 1, ones, 10),
      /ends early/,
    );
  });
});
