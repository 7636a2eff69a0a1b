/**
 * Parser throughput: split lines + split CSV fields + parse 32 float fields, on
 * in-memory CSVs fed through readOwnedLines in 64 KiB chunks (the real read path minus
 * I/O). Prints rows/s for the worker's one-pass featurizer path and the general path
 * (splitCsvLine + parseNumber per field), for three number styles:
 *  - fixed:  fixed 6-decimal values in (-1, 1), e.g. "-0.123456" (scaled features)
 *  - mixed:  magnitudes 1e0..1e5 with 1..6 decimals and integer columns
 *  - repr:   full-precision doubles as String() writes them (pandas float64 default);
 *            17-digit mantissas exceed 2^53 and take the exact Number() fallback
 * Usage: npx tsx scripts/bench-parser.ts [rows=1000000] [rounds=3]
 */
import { createCsvFeaturizer } from "../src/model/featurizer.ts";
import { KeyBatch } from "../src/model/key-batch.ts";
import { createFieldSpans, parseNumber, splitCsvLine } from "../src/records/csv-fields.ts";
import { readOwnedLines } from "../src/records/line-reader.ts";

const COLUMNS = 32;
const CHUNK = 64 * 1024;

/** mulberry32, so every run parses the same bytes. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STYLES: Record<string, (rand: () => number, column: number) => string> = {
  fixed: (rand) => (rand() * 2 - 1).toFixed(6),
  mixed: (rand, c) => {
    const v = (rand() - 0.5) * 10 ** Math.floor(rand() * 6);
    return c % 4 === 3 ? String(Math.round(v)) : v.toFixed(1 + (c % 6));
  },
  repr: (rand) => String(rand() * 2 - 1),
};

function generate(style: string, rows: number): Buffer {
  const field = STYLES[style];
  if (field === undefined) throw new Error(`unknown style ${style}`);
  const rand = rng(0x9e3779b9);
  const parts: Buffer[] = [];
  // Build in slices: one giant string would pass V8's string length limit.
  for (let r = 0; r < rows; ) {
    const lines: string[] = [];
    for (const stop = Math.min(rows, r + 10_000); r < stop; r++) {
      const fields: string[] = [];
      for (let c = 0; c < COLUMNS; c++) fields.push(field(rand, c));
      lines.push(fields.join(","));
    }
    parts.push(Buffer.from(`${lines.join("\n")}\n`));
  }
  return Buffer.concat(parts);
}

async function* chunks(buf: Buffer): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += CHUNK) yield buf.subarray(i, i + CHUNK);
}

// The worker's real path: the featurizer's one-pass parse into a float32 batch row.
const featurizer = createCsvFeaturizer(
  {
    name: "bench",
    version: "1",
    onnx: "m.onnx",
    input: { name: "x" },
    features: Array.from({ length: COLUMNS }, (_, i) => ({
      column: `f${i}`,
      type: "number" as const,
    })),
    outputs: [{ name: "y", column: "y" }],
  },
  [],
  Array.from({ length: COLUMNS }, (_, i) => `f${i}`),
);

async function runFused(data: Buffer): Promise<number> {
  const out = new Float32Array(COLUMNS);
  const keys = new KeyBatch();
  let rows = 0;
  const options = { from: 0, fromIsRecordStart: true, end: data.length, maxLineBytes: 1 << 20 };
  for await (const block of readOwnedLines(chunks(data), options)) {
    const { buf, starts, ends, count } = block;
    for (let l = 0; l < count; l++) {
      const s = starts[l] as number;
      const e = ends[l] as number;
      if (s === e) continue;
      if (featurizer.featurize(buf, s, e, out, 0, keys) !== undefined)
        throw new Error(`bad row ${rows}`);
      rows++;
    }
  }
  return rows;
}

async function runGeneral(data: Buffer): Promise<number> {
  const spans = createFieldSpans(COLUMNS);
  const values = new Float64Array(COLUMNS);
  let rows = 0;
  const options = { from: 0, fromIsRecordStart: true, end: data.length, maxLineBytes: 1 << 20 };
  for await (const block of readOwnedLines(chunks(data), options)) {
    const { buf, starts, ends, count } = block;
    for (let l = 0; l < count; l++) {
      const s = starts[l] as number;
      const e = ends[l] as number;
      if (s === e) continue;
      if (splitCsvLine(buf, s, e, spans) !== "ok" || spans.count !== COLUMNS) {
        throw new Error(`bad row ${rows}`);
      }
      const fs = spans.starts;
      const fe = spans.ends;
      for (let f = 0; f < COLUMNS; f++) {
        values[f] = parseNumber(buf, fs[f] as number, fe[f] as number);
      }
      rows++;
    }
  }
  return rows;
}

async function best(run: (data: Buffer) => Promise<number>, data: Buffer, rounds: number) {
  let rate = 0;
  for (let round = 0; round < rounds; round++) {
    const t0 = process.hrtime.bigint();
    const rows = await run(data);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    rate = Math.max(rate, rows / seconds);
  }
  return rate;
}

const rowCount = Number(process.argv[2] ?? 1_000_000);
const rounds = Number(process.argv[3] ?? 3);
console.log(`${COLUMNS} float columns, ${rowCount} rows per style, best of ${rounds} rounds`);
for (const style of Object.keys(STYLES)) {
  const data = generate(style, rowCount);
  const fused = await best(runFused, data, rounds);
  const general = await best(runGeneral, data, rounds);
  const bytesPerRow = data.length / rowCount;
  console.log(
    `${style.padEnd(6)} ${bytesPerRow.toFixed(0).padStart(4)} B/row  ` +
      `featurizer (one pass) ${(fused / 1e6).toFixed(2)} M rows/s (${((fused * bytesPerRow) / 2 ** 20).toFixed(0)} MiB/s)  ` +
      `splitCsvLine+parseNumber ${(general / 1e6).toFixed(2)} M rows/s`,
  );
}
