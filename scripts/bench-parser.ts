/**
 * Parser throughput: split lines + split CSV fields + parse 32 float fields, on an
 * in-memory CSV fed through readOwnedLines in 64 KiB chunks (the real read path minus I/O).
 * Usage: npx tsx scripts/bench-parser.ts [rows=1000000] [rounds=5]
 */
import { createFieldSpans, parseNumber, splitCsvLine } from "../src/records/csv-fields.ts";
import { readOwnedLines } from "../src/records/line-reader.ts";

const COLUMNS = 32;
const CHUNK = 64 * 1024;

function generate(rows: number): Buffer {
  // Deterministic mix of magnitudes and precisions, like exported feature tables.
  let seed = 0x9e3779b9;
  const rand = (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    const fields: string[] = [];
    for (let c = 0; c < COLUMNS; c++) {
      const v = (rand() - 0.5) * 10 ** Math.floor(rand() * 6);
      fields.push(c % 4 === 3 ? String(Math.round(v)) : v.toFixed(1 + (c % 6)));
    }
    lines.push(fields.join(","));
  }
  return Buffer.from(`${lines.join("\n")}\n`);
}

async function* chunks(buf: Buffer): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += CHUNK) yield buf.subarray(i, i + CHUNK);
}

async function run(data: Buffer): Promise<{ rows: number; checksum: number }> {
  const spans = createFieldSpans(COLUMNS);
  const values = new Float64Array(COLUMNS);
  let rows = 0;
  let checksum = 0;
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
      checksum += values[l % COLUMNS] as number;
      rows++;
    }
  }
  return { rows, checksum };
}

const rowCount = Number(process.argv[2] ?? 1_000_000);
const rounds = Number(process.argv[3] ?? 5);
const data = generate(rowCount);
console.log(
  `${rowCount} rows x ${COLUMNS} float columns, ${(data.length / 2 ** 20).toFixed(1)} MiB (${(data.length / rowCount).toFixed(0)} bytes/row)`,
);
let best = 0;
for (let round = 0; round < rounds; round++) {
  const t0 = process.hrtime.bigint();
  const { rows, checksum } = await run(data);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const rate = rows / seconds;
  best = Math.max(best, rate);
  console.log(
    `round ${round + 1}: ${(rate / 1e6).toFixed(2)} M rows/s, ${(data.length / seconds / 2 ** 20).toFixed(0)} MiB/s (checksum ${checksum.toFixed(3)})`,
  );
}
console.log(`best: ${(best / 1e6).toFixed(2)} M rows/s`);
