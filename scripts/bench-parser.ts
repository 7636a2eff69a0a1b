/**
 * Parser throughput: split records + split CSV fields + parse 32 float fields, on
 * in-memory CSVs fed through readOwnedLines in 64 KiB chunks (the real read path minus
 * I/O). Prints rows/s for the worker's one-pass featurizer path and the general path
 * (splitCsvLine + parseNumber per field), for three number styles:
 *  - fixed:  fixed 6-decimal values in (-1, 1), e.g. "-0.123456" (scaled features)
 *  - mixed:  magnitudes 1e0..1e5 with 1..6 decimals and integer columns
 *  - repr:   full-precision doubles as String() writes them (pandas float64 default);
 *            17-digit mantissas exceed 2^53 and take the exact Number() fallback
 * each read in line mode (`records: "lines"`) and in CSV mode (`records: "csv"`, quoted
 * newlines), and the reader alone (no parsing) in both modes: on these quote-free
 * files the difference is the whole cost of quote awareness. Then a "quoted" file (the
 * same 32 columns plus a quoted free-text column, a third of its values spanning 2-3
 * lines, with commas and "" escapes) in CSV mode, and how often a partition start
 * speculated at a random offset of it is wrong (each wrong guess costs one re-read).
 * Rates are per CPU second of this process (one core), best of the rounds.
 * Usage: npx tsx scripts/bench-parser.ts [rows=1000000] [rounds=3]
 */
import { createCsvFeaturizer } from "../src/model/csv-featurizer.ts";
import { KeyBatch } from "../src/model/key-batch.ts";
import { createFieldSpans, splitCsvLine } from "../src/records/csv-fields.ts";
import { parseNumber } from "../src/records/decimal-number.ts";
import { createReadStats, readOwnedLines } from "../src/records/line-reader.ts";

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

const NOTES = [
  "ok",
  '"late delivery, refund asked"',
  '"called twice:\nfirst about billing\nthen about the ""premium"" plan"',
  '"multi-line\r\naddress, 12 Main St"',
  "no issues reported",
];

/** `rows` rows of 32 number columns; with `notes`, a free-text column after them. */
function generate(style: string, rows: number, notes = false): Buffer {
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
      if (notes) fields.push(NOTES[Math.floor(rand() * NOTES.length)] as string);
      lines.push(fields.join(","));
    }
    parts.push(Buffer.from(`${lines.join("\n")}\n`));
  }
  return Buffer.concat(parts);
}

async function* chunks(buf: Buffer): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += CHUNK) yield buf.subarray(i, i + CHUNK);
}

type Mode = "lines" | "csv";

// The worker's real path: the featurizer's one-pass parse into a float32 batch row.
function makeFeaturizer(notes: boolean) {
  const columns = Array.from({ length: COLUMNS }, (_, i) => `f${i}`);
  if (notes) columns.push("notes");
  return createCsvFeaturizer(
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
    columns,
  );
}
const featurizers = { plain: makeFeaturizer(false), notes: makeFeaturizer(true) };

function readOptions(data: Buffer, records: Mode) {
  return { from: 0, fromIsRecordStart: true, end: data.length, maxLineBytes: 1 << 20, records };
}

/** The reader alone: records found per second, nothing parsed. */
async function runReader(data: Buffer, records: Mode): Promise<number> {
  let rows = 0;
  for await (const block of readOwnedLines(chunks(data), readOptions(data, records))) {
    rows += block.count;
  }
  return rows;
}

async function runFused(data: Buffer, records: Mode, notes = false): Promise<number> {
  const featurizer = notes ? featurizers.notes : featurizers.plain;
  const out = new Float32Array(COLUMNS);
  const keys = new KeyBatch();
  let rows = 0;
  for await (const block of readOwnedLines(chunks(data), readOptions(data, records))) {
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

async function runGeneral(data: Buffer, records: Mode): Promise<number> {
  const spans = createFieldSpans(COLUMNS);
  const values = new Float64Array(COLUMNS);
  let rows = 0;
  for await (const block of readOwnedLines(chunks(data), readOptions(data, records))) {
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

/** Best rows per CPU second: CPU time, not wall time, so a busy machine skews it less. */
async function best(run: () => Promise<number>, rounds: number) {
  let rate = 0;
  for (let round = 0; round < rounds; round++) {
    const t0 = process.cpuUsage();
    const rows = await run();
    const used = process.cpuUsage(t0);
    rate = Math.max(rate, rows / ((used.user + used.system) / 1e6));
  }
  return rate;
}

/**
 * Share of `samples` random offsets where a speculative partition start (outside
 * quotes just before it) picks a different first record than the true one.
 */
async function wrongGuesses(data: Buffer, samples: number): Promise<number> {
  const starts: number[] = [];
  for await (const block of readOwnedLines(chunks(data), readOptions(data, "csv"))) {
    for (let i = 0; i < block.count; i++) starts.push(block.offsets[i] as number);
  }
  const rand = rng(7);
  let wrong = 0;
  for (let n = 0; n < samples; n++) {
    const at = 1 + Math.floor(rand() * (data.length - 1));
    // The true first record start at or after `at`: binary search in the record starts.
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((starts[mid] as number) < at) lo = mid + 1;
      else hi = mid;
    }
    const truth = starts[lo] ?? data.length;
    const stats = createReadStats();
    const options = {
      ...readOptions(data, "csv"),
      from: at,
      fromIsRecordStart: false,
      end: at + 1,
      stats,
    };
    for await (const _ of readOwnedLines(chunks(data.subarray(at - 1)), options)) {
      // Only the first record start matters.
    }
    if (stats.firstRecordStart !== truth) wrong++;
  }
  return wrong / samples;
}

const rowCount = Number(process.argv[2] ?? 1_000_000);
const rounds = Number(process.argv[3] ?? 3);
const mrows = (rate: number) => `${(rate / 1e6).toFixed(2)} M rows/s`;
const mib = (rate: number, bytesPerRow: number) =>
  `${((rate * bytesPerRow) / 2 ** 20).toFixed(0)} MiB/s`;
console.log(`${COLUMNS} float columns, ${rowCount} rows per style, best of ${rounds} rounds`);
for (const style of Object.keys(STYLES)) {
  const data = generate(style, rowCount);
  const bytesPerRow = data.length / rowCount;
  const readLines = await best(() => runReader(data, "lines"), rounds);
  const readCsv = await best(() => runReader(data, "csv"), rounds);
  const fusedLines = await best(() => runFused(data, "lines"), rounds);
  const fusedCsv = await best(() => runFused(data, "csv"), rounds);
  const general = await best(() => runGeneral(data, "csv"), rounds);
  console.log(
    `${style.padEnd(6)} ${bytesPerRow.toFixed(0).padStart(4)} B/row  ` +
      `featurizer (one pass) lines ${mrows(fusedLines)} (${mib(fusedLines, bytesPerRow)}), csv ${mrows(fusedCsv)}  ` +
      `splitCsvLine+parseNumber (csv) ${mrows(general)}  ` +
      `reader alone: lines ${mib(readLines, bytesPerRow)}, csv ${mib(readCsv, bytesPerRow)}`,
  );
}
{
  const data = generate("fixed", rowCount, true);
  const bytesPerRow = data.length / rowCount;
  const records = await runReader(data, "csv");
  if (records !== rowCount) throw new Error(`quoted file: ${records} records, want ${rowCount}`);
  const readCsv = await best(() => runReader(data, "csv"), rounds);
  const fusedCsv = await best(() => runFused(data, "csv", true), rounds);
  const wrong = await wrongGuesses(data, 2000);
  console.log(
    `quoted ${bytesPerRow.toFixed(0).padStart(4)} B/row  ` +
      `featurizer (one pass) csv ${mrows(fusedCsv)} (${mib(fusedCsv, bytesPerRow)})  ` +
      `reader alone: csv ${mib(readCsv, bytesPerRow)}  ` +
      `speculation wrong at ${(wrong * 100).toFixed(1)}% of random offsets`,
  );
}
