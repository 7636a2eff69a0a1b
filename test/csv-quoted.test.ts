/**
 * CSV with quoted newlines (RFC 4180), the formats side: csv-spectrum cases and real
 * exporters' bytes (spreadsheet, pandas, DuckDB, scikit-learn style) through the header
 * reader, the CSV record reader and the featurizer, with exact line numbers; field
 * splitting of multi-line records. The boundary rule is tested in csv-boundary.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createCsvFeaturizer } from "../src/model/csv-featurizer.ts";
import type { ModelDescriptor } from "../src/model/descriptor.ts";
import { KeyBatch } from "../src/model/key-batch.ts";
import {
  createFieldSpans,
  decodeField,
  parseCsvHeader,
  splitCsvLine,
} from "../src/records/csv-fields.ts";
import { readFirstLine } from "../src/records/header.ts";
import { readOwnedLines } from "../src/records/line-reader.ts";
import { chunkedSource, lineNumberAt, readCsvText } from "./helpers/csv-reference.ts";

// ---------------------------------------------------------------------------------------
// Helpers

const CSV = "csv" as const;

/** Fields of a record's text (latin1 bytes), decoded as the pipeline decodes them. */
function fieldsOf(text: string): string[] {
  const buf = Buffer.from(text, "latin1");
  const spans = createFieldSpans(4);
  const status = splitCsvLine(buf, 0, buf.length, spans);
  assert.equal(status, "ok", `split ${JSON.stringify(text)}`);
  return Array.from({ length: spans.count }, (_, f) =>
    decodeField(buf, spans.starts[f] as number, spans.ends[f] as number, spans.kinds[f] as number),
  );
}

/** A whole CSV as rows of decoded fields (header included), read in `chunk`-byte chunks. */
async function table(text: string, chunk: number): Promise<string[][]> {
  const records = await readCsvText(text, { chunk });
  return records.filter((r) => r.text !== "").map((r) => fieldsOf(r.text as string));
}

// ---------------------------------------------------------------------------------------
// csv-spectrum (github.com/max-mapper/csv-spectrum), written inline

const SPECTRUM: Record<string, { csv: string; rows: string[][] }> = {
  comma_in_quotes: {
    csv: 'first,last,address,city,zip\r\nJohn,Doe,120 any st.,"Anytown, WW",08123\r\n',
    rows: [
      ["first", "last", "address", "city", "zip"],
      ["John", "Doe", "120 any st.", "Anytown, WW", "08123"],
    ],
  },
  empty: {
    csv: 'a,b,c\n1,"",""\n2,3,4\n',
    rows: [
      ["a", "b", "c"],
      ["1", "", ""],
      ["2", "3", "4"],
    ],
  },
  empty_crlf: {
    csv: 'a,b,c\r\n1,"",""\r\n2,3,4\r\n',
    rows: [
      ["a", "b", "c"],
      ["1", "", ""],
      ["2", "3", "4"],
    ],
  },
  escaped_quotes: {
    csv: 'a,b\r\n1,"ha ""ha"" ha"\r\n3,4\r\n',
    rows: [
      ["a", "b"],
      ["1", 'ha "ha" ha'],
      ["3", "4"],
    ],
  },
  json: {
    csv: 'key,val\n1,"{""type"": ""Point"", ""coordinates"": [102.0, 0.5]}"\n',
    rows: [
      ["key", "val"],
      ["1", '{"type": "Point", "coordinates": [102.0, 0.5]}'],
    ],
  },
  newlines: {
    csv: 'a,b,c\n1,2,3\n"Once upon \na time",5,6\n7,8,9\n',
    rows: [
      ["a", "b", "c"],
      ["1", "2", "3"],
      ["Once upon \na time", "5", "6"],
      ["7", "8", "9"],
    ],
  },
  newlines_crlf: {
    csv: 'a,b,c\r\n1,2,3\r\n"Once upon \r\na time",5,6\r\n7,8,9\r\n',
    rows: [
      ["a", "b", "c"],
      ["1", "2", "3"],
      ["Once upon \r\na time", "5", "6"],
      ["7", "8", "9"],
    ],
  },
  quotes_and_newlines: {
    csv: 'a,b\n1,"ha \n""ha"" \nha"\n3,4\n',
    rows: [
      ["a", "b"],
      ["1", 'ha \n"ha" \nha'],
      ["3", "4"],
    ],
  },
  simple: {
    csv: "a,b,c\n1,2,3\n",
    rows: [
      ["a", "b", "c"],
      ["1", "2", "3"],
    ],
  },
  simple_crlf: {
    csv: "a,b,c\r\n1,2,3\r\n",
    rows: [
      ["a", "b", "c"],
      ["1", "2", "3"],
    ],
  },
  utf8: {
    csv: "a,b,c\n1,2,3\n4,5,ʤ\n",
    rows: [
      ["a", "b", "c"],
      ["1", "2", "3"],
      ["4", "5", "ʤ"],
    ],
  },
  location_coordinates: {
    csv: 'Location,Coordinates\nRegency Park,"36.0828, -97.7483"\nOak Hill,"36.0828, -97.7483"\n',
    rows: [
      ["Location", "Coordinates"],
      ["Regency Park", "36.0828, -97.7483"],
      ["Oak Hill", "36.0828, -97.7483"],
    ],
  },
};

describe("csv-spectrum cases", () => {
  for (const [name, { csv, rows }] of Object.entries(SPECTRUM)) {
    test(name, async () => {
      for (const chunk of [1, 2, 3, 7, 1 << 16]) {
        const got = await table(csv, chunk);
        assert.deepEqual(got, rows, `${name} in ${chunk}-byte chunks`);
      }
    });
  }

  test("record offsets, line counts and the final line without a newline", async () => {
    const text = 'a,b\n"x\ny",1\r\n\n"p\r\n\r\nq",2';
    const got = await readCsvText(text, { chunk: 3 });
    assert.deepEqual(
      got.map((r) => [r.offset, r.text, r.lines, r.next]),
      [
        [0, "a,b", 1, 4],
        [4, '"x\ny",1', 2, 13],
        [13, "", 1, 14],
        [14, '"p\r\n\r\nq",2', 3, 24],
      ],
    );
  });
});

// ---------------------------------------------------------------------------------------
// What exporters write

/** A model over numeric columns x1..x3, keyed by the text column `id`. */
function exportModel(columns: string[]) {
  const descriptor: ModelDescriptor = {
    name: "exp",
    version: "1",
    onnx: "m.onnx",
    input: { name: "x" },
    features: ["x1", "x2", "x3"].map((column) => ({ column, type: "number" as const })),
    outputs: [{ name: "y", column: "y" }],
  };
  return createCsvFeaturizer(descriptor, ["id"], columns);
}

/** Read `bytes` (header + data) as the worker would and featurize every record. */
async function featurizeAll(bytes: Buffer, chunk: number) {
  const first = await readFirstLine(
    chunkedSource(bytes, 0, () => chunk),
    1 << 20,
    {
      records: CSV,
    },
  );
  assert.ok(first);
  const columns = parseCsvHeader(first.line, 0, first.line.length);
  const featurizer = exportModel(columns);
  const rows: { line: number; values: number[]; key: string }[] = [];
  const bad: { line: number; reason: string }[] = [];
  let line = first.lines;
  const out = new Float32Array(3);
  for await (const block of readOwnedLines(
    chunkedSource(bytes, first.dataStart, () => chunk),
    {
      from: first.dataStart,
      fromIsRecordStart: true,
      end: bytes.length,
      maxLineBytes: 1 << 20,
      records: CSV,
    },
  )) {
    for (let i = 0; i < block.count; i++) {
      const at = line + 1;
      line += block.lines[i] as number;
      const s = block.starts[i] as number;
      const e = block.ends[i] as number;
      if (e === s) continue;
      const keys = new KeyBatch();
      const reason = block.unterminated[i]
        ? "unterminated quoted field"
        : featurizer.featurize(block.buf, s, e, out, 0, keys);
      if (reason !== undefined) bad.push({ line: at, reason });
      else rows.push({ line: at, values: [...out], key: keys.get(0) });
    }
  }
  return { columns, rows, bad, lines: line };
}

const EXPORTS: Record<
  string,
  { bytes: Buffer; rows: { line: number; key: string; values: number[] }[]; columns: string[] }
> = {
  // Excel "CSV UTF-8": BOM, CRLF records, a bare LF inside a quoted cell (Alt+Enter).
  spreadsheet: {
    bytes: Buffer.from(
      '\ufeff"id",x1,x2,x3,notes\r\nA-1,1,2,3,"first line\nsecond line"\r\n"B,2",4.5,-1,0,plain\r\nC-3,7,8,9,"says ""hi""\n\nbye"\r\n',
    ),
    columns: ["id", "x1", "x2", "x3", "notes"],
    rows: [
      { line: 2, key: "A-1", values: [1, 2, 3] },
      { line: 4, key: "B,2", values: [4.5, -1, 0] },
      { line: 5, key: "C-3", values: [7, 8, 9] },
    ],
  },
  // pandas DataFrame.to_csv(): unnamed index column, QUOTE_MINIMAL, '\n' line ends.
  pandas: {
    bytes: Buffer.from(
      ',id,x1,x2,x3,comment\n0,r0,0.1,0.2,0.30000000000000004,"multi\nline, with comma"\n1,r1,1e-05,2.5,-3.0,\n2,"r""2",7.0,8.0,9.0,"ends with newline\n"\n',
    ),
    columns: ["", "id", "x1", "x2", "x3", "comment"],
    rows: [
      { line: 2, key: "r0", values: [0.1, 0.2, 0.30000000000000004].map(Math.fround) },
      { line: 4, key: "r1", values: [1e-5, 2.5, -3].map(Math.fround) },
      { line: 5, key: 'r"2', values: [7, 8, 9] },
    ],
  },
  // DuckDB COPY ... TO 'f.csv' (HEADER): quotes only where needed, '\n' line ends,
  // CRLF inside a value kept verbatim.
  duckdb: {
    bytes: Buffer.from(
      'id,x1,x2,x3,body\nd1,1.5,2.25,3.125,"line one\r\nline two"\nd2,4,5,6,"a ""quoted"" word"\nd3,7,8,9,\n',
    ),
    columns: ["id", "x1", "x2", "x3", "body"],
    rows: [
      { line: 2, key: "d1", values: [1.5, 2.25, 3.125] },
      { line: 4, key: "d2", values: [4, 5, 6] },
      { line: 5, key: "d3", values: [7, 8, 9] },
    ],
  },
  // numpy.savetxt / scikit-learn style: numbers only, no quotes at all.
  sklearn: {
    bytes: Buffer.from("id,x1,x2,x3\n0,5.1,3.5,1.4\n1,4.9,3.0,1.4\n2,6.2,3.4,5.4\n"),
    columns: ["id", "x1", "x2", "x3"],
    rows: [
      { line: 2, key: "0", values: [5.1, 3.5, 1.4].map(Math.fround) },
      { line: 3, key: "1", values: [4.9, 3.0, 1.4].map(Math.fround) },
      { line: 4, key: "2", values: [6.2, 3.4, 5.4].map(Math.fround) },
    ],
  },
};

describe("exporters' CSVs through the header reader, the record reader and the featurizer", () => {
  for (const [name, { bytes, rows, columns }] of Object.entries(EXPORTS)) {
    test(name, async () => {
      for (const chunk of [1, 5, 64, 1 << 16]) {
        const got = await featurizeAll(bytes, chunk);
        assert.deepEqual(got.columns, columns, `${name}: header`);
        assert.deepEqual(got.bad, [], `${name}: no bad records`);
        assert.deepEqual(
          got.rows.map((r) => ({ line: r.line, key: r.key, values: r.values.map(Math.fround) })),
          rows,
          `${name} in ${chunk}-byte chunks`,
        );
        assert.equal(
          got.lines,
          lineNumberAt(bytes, bytes.length) - 1,
          "every physical line counted",
        );
      }
    });
  }

  test("a multi-line record with a bad value and an unterminated one get the right line numbers", async () => {
    const bytes = Buffer.from(
      'id,x1,x2,x3,t\na,1,2,3,"x\ny"\nb,1,oops,3,"p\nq"\nc,1,2,3,"never closed\nd,4,5,6,z\n',
    );
    const got = await featurizeAll(bytes, 4);
    assert.deepEqual(
      got.rows.map((r) => [r.line, r.key]),
      [
        [2, "a"],
        [7, "d"],
      ],
    );
    assert.deepEqual(got.bad, [
      { line: 4, reason: 'column x2: "oops" is not a number' },
      { line: 6, reason: "unterminated quoted field" },
    ]);
  });
});

describe("splitCsvLine and the featurizer on multi-line records", () => {
  test("newlines and CR inside quoted fields are field content, verbatim", () => {
    const buf = Buffer.from('"a\nb","c\r\nd",e,"\r","""\n"""');
    const spans = createFieldSpans(2);
    assert.equal(splitCsvLine(buf, 0, buf.length, spans), "ok");
    const fields = Array.from({ length: spans.count }, (_, f) =>
      decodeField(
        buf,
        spans.starts[f] as number,
        spans.ends[f] as number,
        spans.kinds[f] as number,
      ),
    );
    assert.deepEqual(fields, ["a\nb", "c\r\nd", "e", "\r", '"\n"']);
    const open = Buffer.from('1,"a\nb');
    assert.equal(splitCsvLine(open, 0, open.length, spans), "unterminated_quote");
  });

  test("keysOf and featurize agree on a record whose key holds a newline", () => {
    const featurizer = exportModel(["id", "x1", "x2", "x3"]);
    const buf = Buffer.from('"k\r\n1",1,2,"3"');
    const keys = new KeyBatch();
    const out = new Float32Array(3);
    assert.equal(featurizer.featurize(buf, 0, buf.length, out, 0, keys), undefined);
    assert.deepEqual([...out], [1, 2, 3]);
    assert.equal(keys.get(0), "k\r\n1");
    assert.deepEqual(featurizer.keysOf(buf, 0, buf.length), ["k\r\n1"]);
  });
});

describe("readFirstLine in CSV mode", () => {
  test("a quoted column name may span lines; dataStart and the header's line count follow", async () => {
    const text = '\ufeff"id","multi\r\nline",v\r\n1,2,3\n';
    for (const chunk of [1, 2, 5, 100]) {
      const first = await readFirstLine(
        chunkedSource(Buffer.from(text), 0, () => chunk),
        100,
        {
          records: CSV,
        },
      );
      assert.ok(first);
      assert.deepEqual(parseCsvHeader(first.line, 0, first.line.length), [
        "id",
        "multi\r\nline",
        "v",
      ]);
      assert.equal(first.dataStart, Buffer.byteLength(text) - 6);
      assert.equal(first.lines, 2);
    }
    const plain = await readFirstLine(
      chunkedSource(Buffer.from("a,b\n1,2\n"), 0, () => 3),
      100,
      {
        records: CSV,
      },
    );
    assert.deepEqual(plain && { ...plain, line: plain.line.toString() }, {
      line: "a,b",
      dataStart: 4,
      lines: 1,
    });
  });

  test("a header over the limit throws without reading on; an unterminated one fails to parse", async () => {
    const src = chunkedSource(Buffer.from(`${"x".repeat(5000)}\n1\n`), 0, () => 64);
    await assert.rejects(readFirstLine(src, 100, { records: CSV }), /too long/);
    assert.ok(src.destroyed);
    assert.ok(src.yielded < 1000, `read ${src.yielded} bytes`);
    // A quoted name still open at the limit: the header is its first line, which won't parse.
    const quoted = chunkedSource(Buffer.from(`a,"${"x\n".repeat(5000)}"\n1\n`), 0, () => 64);
    const cut = await readFirstLine(quoted, 100, { records: CSV });
    assert.equal(cut?.line.toString(), 'a,"x');
    assert.ok(quoted.yielded < 1000, `read ${quoted.yielded} bytes`);
    const open = await readFirstLine(
      chunkedSource(Buffer.from('a,"b\n1,2\n'), 0, () => 2),
      100,
      {
        records: CSV,
      },
    );
    assert.ok(open);
    assert.throws(() => parseCsvHeader(open.line, 0, open.line.length), /unterminated quote/);
    assert.equal(
      await readFirstLine(
        chunkedSource(Buffer.alloc(0), 0, () => 1),
        100,
        { records: CSV },
      ),
      undefined,
    );
  });
});
