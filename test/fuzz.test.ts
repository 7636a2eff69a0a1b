/**
 * Seeded fuzzing, bounded in time (about 14 s in all):
 *
 * - the record readers at partition boundaries, the way workers use them: random
 *   CSV/JSONL-ish bytes (quotes, CRLF, multi-byte and invalid UTF-8, empty lines,
 *   a BOM, overlong lines) in the local object store, the splitter's own ranges,
 *   ranged reads cut into random chunks, workers "killed" after a random number of
 *   lines and resumed from that checkpoint: every line is owned by exactly one
 *   partition and the owned lines put back together are the input, byte for byte;
 *   the parsers return a reason or a value for every line, never throw otherwise;
 * - CSV records with quoted newlines (multi-line fields, CRLF, escaped quotes next to
 *   newlines, unterminated quotes, fields near the record limit) read the same way, each
 *   partition speculating at its start, then the chaining check re-reading the partitions
 *   it names: every record exactly once, byte for byte, with exact line numbers;
 * - the same through the pipeline: random files of good rows and garbage, random
 *   partition, checkpoint and batch sizes, scored in process, must pass verify;
 * - the validators (job spec, upload event, task message) on random mutations of
 *   valid payloads (type changes, missing and extra fields, huge strings, deep
 *   nesting, __proto__/constructor keys): accepted and well-formed, or rejected with
 *   a ValidationError (UnsafePathError for paths) carrying a schema path — never a
 *   crash, another exception, or a polluted Object.prototype.
 *
 * The seed is printed; FUZZ_SEED=<n> replays a run.
 */
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import path from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { LocalObjectStore } from "../src/adapters/local/fs-object-store.ts";
import { UnsafePathError, ValidationError } from "../src/core/errors.ts";
import { resolveJobSpec } from "../src/core/job-spec.ts";
import { silentLogger } from "../src/core/log.ts";
import { createCsvFeaturizer } from "../src/model/csv-featurizer.ts";
import { Rng } from "../src/model/datasets.ts";
import type { ModelDescriptor } from "../src/model/descriptor.ts";
import { createJsonlFeaturizer } from "../src/model/featurizer.ts";
import { KeyBatch } from "../src/model/key-batch.ts";
import { objectCreatedEvent, parseObjectEvent } from "../src/pipeline/events.ts";
import { parseTask } from "../src/pipeline/messages.ts";
import { PartitionWorker } from "../src/pipeline/partition-worker.ts";
import { planPartitions, splitJob } from "../src/pipeline/splitter.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import { BadRecordError } from "../src/records/bad-record.ts";
import {
  createFieldSpans,
  csvFieldCountProblem,
  describeInvalidUtf8,
} from "../src/records/csv-fields.ts";
import { readFirstLine } from "../src/records/header.ts";
import { parseJsonLine } from "../src/records/jsonl.ts";
import {
  createReadStats,
  type OwnedLines,
  openOffset,
  type ReadOwnedOptions,
  readOwnedLines,
} from "../src/records/line-reader.ts";
import { type ChainLink, resolveChain } from "../src/records/partition-chain.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import {
  lineNumberAt,
  type RefRecord,
  recordsOf,
  referenceRecords,
} from "./helpers/csv-reference.ts";
import { churnModel, customerCsv, tempDir } from "./helpers/pipeline-fixture.ts";
import { lineSpans } from "./helpers/poison.ts";

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : randomInt(1, 2 ** 31);
const REPLAY = `FUZZ_SEED=${SEED}`;
console.log(`fuzz seed ${SEED} (replay with ${REPLAY})`);

/** An independent stream per property, so changing one property doesn't shift the others. */
function rngFor(stream: number): Rng {
  return new Rng((SEED * 31 + stream) % Number.MAX_SAFE_INTEGER);
}

/** Run `body` for each iteration until `iterations` or `budgetMs`, naming the seed on failure. */
async function fuzz(
  label: string,
  stream: number,
  budget: { iterations: number; ms: number },
  body: (rng: Rng, i: number) => Promise<void> | void,
): Promise<number> {
  const rng = rngFor(stream);
  const deadline = performance.now() + budget.ms;
  let i = 0;
  for (; i < budget.iterations && performance.now() < deadline; i++) {
    try {
      await body(rng, i);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`${label}, iteration ${i} (${REPLAY}): ${message}`, { cause: err });
    }
  }
  return i;
}

let root: { dir: string; cleanup(): Promise<void> };
before(async () => {
  root = await tempDir("bi-fuzz-");
});
after(() => root.cleanup());

// ---------------------------------------------------------------------------------------
// Random line-oriented bytes

const WORDS = [
  "a",
  "Zoë",
  "東京",
  "🙂",
  "naïve",
  "x y",
  "",
  "42",
  "-1.5e3",
  "ß",
  "\u00a0",
  "tab\there",
];

function csvField(rng: Rng): string {
  switch (rng.int(6)) {
    case 0:
      return String(rng.int(2000) - 1000);
    case 1:
      return (rng.next() * 100).toFixed(rng.int(5));
    case 2:
      return rng.pick(WORDS);
    case 3:
      return `"${rng.pick(WORDS)}${rng.pick([",", '""', ", ", "\r"])}${rng.pick(WORDS)}"`;
    case 4:
      return rng.pick(['"unterminated', 'x"y', '"a"b', '""']);
    default:
      return "";
  }
}

function randomBytes(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  // Anything but '\n': invalid UTF-8, NUL, lone CR, half of a multi-byte character.
  for (let i = 0; i < n; i++) {
    let v = rng.int(256);
    if (v === 0x0a) v = 0x0d;
    b[i] = v;
  }
  return b;
}

/** One line's content (no '\n'). */
function randomLine(rng: Rng, format: "csv" | "jsonl"): Buffer {
  const r = rng.next();
  if (r < 0.08) return Buffer.alloc(0);
  if (r < 0.1) return Buffer.from("\r");
  if (r < 0.16) return randomBytes(rng, 1 + rng.int(40));
  if (r < 0.2) return Buffer.from("y".repeat(50 + rng.int(400)));
  if (format === "jsonl") {
    const obj: Record<string, unknown> = {};
    for (let k = rng.int(5); k > 0; k--) {
      obj[rng.pick(["a", "b", "c", "é", "__proto__", "k"])] = rng.bernoulli(0.5)
        ? rng.pick(WORDS)
        : rng.bernoulli(0.5)
          ? rng.next() * 10
          : rng.pick([null, true, [1, "\n"], { n: "\r\n" }]);
    }
    const text = rng.bernoulli(0.9) ? JSON.stringify(obj) : JSON.stringify(obj).slice(0, -1);
    return Buffer.from(text);
  }
  const n = 1 + rng.int(5);
  return Buffer.from(Array.from({ length: n }, () => csvField(rng)).join(","));
}

/** A random input: for CSV a header (maybe after a BOM), then lines with '\n' or '\r\n'. */
function randomInput(rng: Rng, format: "csv" | "jsonl"): { bytes: Buffer; dataStart: number } {
  const parts: Buffer[] = [];
  if (rng.bernoulli(0.3)) parts.push(Buffer.from([0xef, 0xbb, 0xbf]));
  let dataStart = 0;
  if (format === "csv") {
    parts.push(Buffer.from(`a,b,c${rng.bernoulli(0.5) ? "\r\n" : "\n"}`));
    dataStart = Buffer.concat(parts).length;
  }
  const lines = 1 + rng.int(120);
  for (let i = 0; i < lines; i++) {
    parts.push(randomLine(rng, format));
    const last = i === lines - 1;
    if (!last || rng.bernoulli(0.6)) parts.push(Buffer.from(rng.bernoulli(0.3) ? "\r\n" : "\n"));
  }
  return { bytes: Buffer.concat(parts), dataStart };
}

/** The chunks of `source` cut into random pieces (1 byte up to 97, sometimes whole). */
function rechunk(source: Readable, rng: Rng): Readable {
  async function* pieces(): AsyncGenerator<Buffer> {
    for await (const raw of source) {
      const chunk = raw as Buffer;
      let s = 0;
      while (s < chunk.length) {
        const n = rng.bernoulli(0.1) ? chunk.length : 1 + rng.int(97);
        yield chunk.subarray(s, s + n);
        s += n;
      }
    }
  }
  return Readable.from(pieces(), { objectMode: false });
}

interface Got {
  partition: number;
  offset: number;
  next: number;
  oversize: boolean;
  content: Buffer | undefined;
}

/**
 * Read one partition as a worker does (open at openOffset, read to the end of the
 * object, keep what readOwnedLines yields), stopping after a random number of lines
 * now and then and resuming from that line's next offset as a new worker would from
 * the checkpoint.
 */
async function readPartition(
  store: LocalObjectStore,
  name: string,
  size: number,
  range: { start: number; end: number },
  index: number,
  dataStart: number,
  maxLineBytes: number,
  rng: Rng,
): Promise<Got[]> {
  const got: Got[] = [];
  let from = range.start;
  let fromIsRecordStart = from === dataStart;
  for (;;) {
    if (from >= range.end) return got;
    const options: ReadOwnedOptions = { from, fromIsRecordStart, end: range.end, maxLineBytes };
    const source = rechunk(
      await store.read("in", name, { start: openOffset(options), end: size }),
      rng,
    );
    const stopAfter = rng.bernoulli(0.4) ? 1 + rng.int(6) : Number.POSITIVE_INFINITY;
    let taken = 0;
    let resumeAt: number | undefined;
    outer: for await (const block of readOwnedLines(source, options)) {
      for (let i = 0; i < block.count; i++) {
        const oversize = block.oversize[i] === 1;
        got.push({
          partition: index,
          offset: block.offsets[i] as number,
          next: block.nextOffsets[i] as number,
          oversize,
          content: oversize
            ? undefined
            : Buffer.from(block.buf.subarray(block.starts[i] as number, block.ends[i] as number)),
        });
        if (++taken >= stopAfter) {
          resumeAt = block.nextOffsets[i] as number;
          break outer;
        }
      }
    }
    if (resumeAt === undefined) return got;
    from = resumeAt;
    fromIsRecordStart = true;
  }
}

/** A tiny model descriptor over the random CSV's header a,b,c. */
const TINY: ModelDescriptor = {
  name: "tiny",
  version: "1",
  onnx: "none.onnx",
  input: { name: "x" },
  features: [
    { column: "a", type: "number" },
    { column: "b", type: "category", categories: ["Zoë", "東京", "a"], unknown: "error" },
    { column: "c", type: "boolean", missing: false },
  ],
  outputs: [{ name: "p", column: "p" }],
};

describe("record readers at partition boundaries (fuzz)", () => {
  it("every line is owned by exactly one partition and the owned lines are the input, byte for byte", async (t) => {
    t.diagnostic(`seed ${SEED} (${REPLAY})`);
    const store = new LocalObjectStore({ root: path.join(root.dir, "readers") });
    const csv = createCsvFeaturizer(TINY, ["a"], ["a", "b", "c"]);
    const jsonl = createJsonlFeaturizer(TINY, ["a"]);
    const spans = createFieldSpans(4);
    const out = new Float32Array(64);
    const ran = await fuzz("readers", 1, { iterations: 400, ms: 3500 }, async (rng, i) => {
      const format = rng.bernoulli(0.6) ? "csv" : "jsonl";
      const { bytes, dataStart } = randomInput(rng, format);
      const name = `f${i}.${format}`;
      await store.put("in", name, bytes);
      const maxLineBytes = rng.bernoulli(0.3) ? rng.int(60) : 1 << 20;
      const partitionBytes = 1 + rng.int(Math.max(1, bytes.length - dataStart));
      const ranges = planPartitions(dataStart, bytes.length, partitionBytes);
      const got: Got[] = [];
      for (const [k, range] of ranges.entries()) {
        got.push(
          ...(await readPartition(
            store,
            name,
            bytes.length,
            range,
            k,
            dataStart,
            maxLineBytes,
            rng,
          )),
        );
      }
      // Ownership: each line lies in the partition that read it, and the lines chain.
      const reference = lineSpans(bytes, dataStart);
      assert.equal(got.length, reference.length, "line count");
      got.forEach((g, k) => {
        const ref = reference[k] as (typeof reference)[number];
        const range = ranges[g.partition] as { start: number; end: number };
        assert.ok(
          g.offset >= range.start && g.offset < range.end,
          `line at ${g.offset} is not in its partition`,
        );
        assert.deepEqual([g.offset, g.next], [ref.start, ref.next], `line ${k}`);
        assert.equal(g.oversize, ref.end - ref.start > maxLineBytes, `line ${k} oversize`);
        if (g.content)
          assert.ok(g.content.equals(bytes.subarray(ref.start, ref.end)), `line ${k} content`);
      });
      // Reassembled, the owned lines are the data, byte for byte.
      const whole = Buffer.concat(got.map((g) => bytes.subarray(g.offset, g.next)));
      assert.ok(whole.equals(bytes.subarray(dataStart)), "reassembled lines differ from the input");
      // Whatever the line, the parsers give a value or a reason.
      const keys = new KeyBatch();
      for (const g of got) {
        if (!g.content) continue;
        const line = g.content;
        if (format === "csv") {
          const reason = csv.featurize(line, 0, line.length, out, 0, keys);
          check(
            reason === undefined || typeof reason === "string",
            'reason === undefined || typeof reason === "string"',
          );
          csv.keysOf(line, 0, line.length);
          const utf8 = describeInvalidUtf8(line, 0, line.length, ["a", "b", "c"], spans);
          assert.equal(utf8 === undefined, Buffer.from(line.toString("utf8")).equals(line));
          csvFieldCountProblem(line, 0, line.length, 3, spans);
        } else {
          const reason = jsonl.featurize(line, 0, line.length, out, 0, keys);
          check(
            reason === undefined || typeof reason === "string",
            'reason === undefined || typeof reason === "string"',
          );
          jsonl.keysOf(line, 0, line.length);
          try {
            parseJsonLine(line, 0, line.length);
          } catch (err) {
            assert.ok(err instanceof BadRecordError, `parseJsonLine threw ${String(err)}`);
          }
        }
      }
    });
    t.diagnostic(`${ran} random inputs`);
  });
});

// ---------------------------------------------------------------------------------------
// CSV records with quoted newlines

/** A field that may hold newlines, CRs and quotes inside quotes, or never close. */
function multiLineField(rng: Rng): string {
  const inner = (): string =>
    Array.from({ length: 1 + rng.int(4) }, () =>
      rng.pick(["\n", "\r\n", "\r", '""', ",", "x", "Zoë", "東京", " ", "\n\n"]),
    ).join("");
  switch (rng.int(5)) {
    case 0:
      return `"${inner()}"`;
    case 1:
      return `"${inner()}""\n"`; // an escaped quote next to a newline
    case 2:
      return rng.pick(['"never closed', '"open\nline', '"', '"a"b\n']);
    case 3:
      return `"${"q".repeat(20 + rng.int(60))}\n${"r".repeat(rng.int(40))}"`; // near the limit
    default:
      return csvField(rng);
  }
}

/** A random CSV with quoted newlines: header (maybe multi-line), then records. */
function randomQuotedCsv(rng: Rng): Buffer {
  const parts: Buffer[] = [];
  if (rng.bernoulli(0.2)) parts.push(Buffer.from([0xef, 0xbb, 0xbf]));
  const eol = () => (rng.bernoulli(0.4) ? "\r\n" : "\n");
  parts.push(Buffer.from(`${rng.pick(["a,b,c", '"a","b\nb",c', 'a,"b",c'])}${eol()}`));
  const records = 1 + rng.int(60);
  for (let i = 0; i < records; i++) {
    const r = rng.next();
    if (r < 0.05) parts.push(Buffer.alloc(0));
    else if (r < 0.1) parts.push(randomBytes(rng, 1 + rng.int(30)));
    else {
      const n = 1 + rng.int(4);
      parts.push(Buffer.from(Array.from({ length: n }, () => multiLineField(rng)).join(",")));
    }
    if (i < records - 1 || rng.bernoulli(0.6)) parts.push(Buffer.from(eol()));
  }
  return Buffer.concat(parts);
}

/**
 * Read one partition in CSV mode as a worker does: speculate at a non-record start,
 * stop after a random number of records now and then and resume from that checkpoint
 * (a known record start). Returns the records and the chain link of the whole read.
 */
async function readCsvPartitionLikeAWorker(
  store: LocalObjectStore,
  name: string,
  size: number,
  start: number,
  fromIsRecordStart: boolean,
  end: number,
  maxLineBytes: number,
  rng: Rng,
): Promise<{ records: RefRecord[]; link: ChainLink }> {
  const records: RefRecord[] = [];
  let from = start;
  let known = fromIsRecordStart;
  let firstRecordStart = -1;
  for (;;) {
    const stats = createReadStats();
    const options: ReadOwnedOptions = {
      from,
      fromIsRecordStart: known,
      end,
      maxLineBytes,
      records: "csv",
      stats,
    };
    const source = rechunk(
      await store.read("in", name, { start: openOffset(options), end: size }),
      rng,
    );
    const stopAfter = rng.bernoulli(0.4) ? 1 + rng.int(5) : Number.POSITIVE_INFINITY;
    const blocks: OwnedLines[] = [];
    let taken = 0;
    let resumeAt: number | undefined;
    outer: for await (const block of readOwnedLines(source, options)) {
      for (let i = 0; i < block.count; i++) {
        if (++taken >= stopAfter) {
          // Keep records up to and including i (the checkpoint is after it).
          const kept = { ...block, count: i + 1 };
          for (const key of [
            "starts",
            "ends",
            "nexts",
            "oversize",
            "offsets",
            "nextOffsets",
            "lines",
            "unterminated",
          ] as const) {
            (kept as Record<string, unknown>)[key] = block[key].subarray(0, i + 1);
          }
          blocks.push(kept);
          resumeAt = block.nextOffsets[i] as number;
          break outer;
        }
      }
      blocks.push(block);
    }
    if (firstRecordStart < 0) {
      // Known once the first record is: a worker stores it with its first checkpoint.
      firstRecordStart = stats.firstRecordStart;
      if (resumeAt !== undefined) assert.equal(firstRecordStart, blocks[0]?.offsets[0]);
    }
    records.push(...recordsOf(blocks));
    if (resumeAt === undefined) {
      assert.ok(stats.complete, "stats complete after a full read");
      return { records, link: { firstRecordStart, nextRecordStart: stats.nextRecordStart } };
    }
    from = resumeAt;
    known = true;
  }
}

describe("CSV records with quoted newlines across partition boundaries (fuzz)", () => {
  it("speculation + chaining check: every record once, byte for byte, with exact line numbers", async (t) => {
    t.diagnostic(`seed ${SEED} (${REPLAY})`);
    const store = new LocalObjectStore({ root: path.join(root.dir, "csv-quoted") });
    const csv = createCsvFeaturizer(TINY, ["a"], ["a", "b", "c"]);
    const out = new Float32Array(64);
    let rereads = 0;
    const ran = await fuzz("csv records", 6, { iterations: 300, ms: 3500 }, async (rng, i) => {
      const bytes = randomQuotedCsv(rng);
      const name = `q${i}.csv`;
      await store.put("in", name, bytes);
      const maxLineBytes = rng.bernoulli(0.4) ? 8 + rng.int(80) : 1 << 20;
      const header = await readFirstLine(
        rechunk(await store.read("in", name, { start: 0, end: bytes.length }), rng),
        1 << 20,
        { records: "csv" },
      );
      assert.ok(header);
      const dataStart = header.dataStart;
      assert.equal(dataStart, referenceRecords(bytes, 0, 1 << 20)[0]?.next, "header end");
      const expected = referenceRecords(bytes, dataStart, maxLineBytes);
      const partitionBytes = 1 + rng.int(Math.max(1, bytes.length - dataStart));
      const ranges = planPartitions(dataStart, bytes.length, partitionBytes);
      const reads: { records: RefRecord[]; link: ChainLink }[] = [];
      for (const r of ranges) {
        reads.push(
          await readCsvPartitionLikeAWorker(
            store,
            name,
            bytes.length,
            r.start,
            r.start === dataStart,
            r.end,
            maxLineBytes,
            rng,
          ),
        );
      }
      const links = reads.map((r) => r.link);
      const fixed = await resolveChain(links, dataStart, async (index, from) => {
        const range = ranges[index] as { start: number; end: number };
        const read = await readCsvPartitionLikeAWorker(
          store,
          name,
          bytes.length,
          from,
          true,
          range.end,
          maxLineBytes,
          rng,
        );
        reads[index] = read;
        return read.link;
      });
      rereads += fixed.length;
      const got = reads.flatMap((r) => r.records);
      reads.forEach((r, k) => {
        const range = ranges[k] as { start: number; end: number };
        for (const rec of r.records)
          assert.ok(
            rec.offset >= range.start && rec.offset < range.end,
            `record at ${rec.offset} outside partition ${k}`,
          );
      });
      assert.deepEqual(got, expected, "records after the chaining check");
      const whole = Buffer.concat(got.map((g) => bytes.subarray(g.offset, g.next)));
      assert.ok(
        whole.equals(bytes.subarray(dataStart)),
        "reassembled records differ from the input",
      );
      let line = header.lines;
      for (const rec of got) {
        assert.equal(
          line + 1,
          lineNumberAt(bytes, rec.offset),
          `line number of record at ${rec.offset}`,
        );
        line += rec.lines;
      }
      // Whatever the record, the featurizer gives a value or a reason.
      const keys = new KeyBatch();
      for (const rec of got) {
        if (rec.text === null) continue;
        const b = Buffer.from(rec.text, "latin1");
        const reason = csv.featurize(b, 0, b.length, out, 0, keys);
        check(reason === undefined || typeof reason === "string", "featurize verdict");
        // A record cut at an open quote never scores (the reason may be an earlier fault).
        if (rec.unterminated) assert.notEqual(reason, undefined, "an unterminated record scored");
        csv.keysOf(b, 0, b.length);
      }
    });
    t.diagnostic(`${ran} random CSVs, ${rereads} partitions re-read by the chaining check`);
  });
});

describe("the pipeline on random files (fuzz)", () => {
  it("random good rows and garbage, random partition/checkpoint/batch sizes: verify passes", async (t) => {
    t.diagnostic(`seed ${SEED} (${REPLAY})`);
    const descriptor = await churnModel();
    const source = await customerCsv(root.dir, 300, 96);
    const { readFile } = await import("node:fs/promises");
    const text = await readFile(source);
    const [header, ...good] = lineSpans(text).map((s) => text.subarray(s.start, s.end));
    const ran = await fuzz("pipeline", 2, { iterations: 12, ms: 4000 }, async (rng, i) => {
      const lines: Buffer[] = [];
      let goodRows = 0;
      for (let n = 20 + rng.int(100); n > 0; n--) {
        if (rng.bernoulli(0.7)) {
          lines.push(rng.pick(good));
          goodRows++;
        } else {
          // Garbage never has the 35 fields a customer row needs, so it is never scored.
          lines.push(randomLine(rng, "csv"));
        }
      }
      const maxLineBytes = 300;
      const parts: Buffer[] = [header as Buffer, Buffer.from("\n")];
      lines.forEach((l, k) => {
        parts.push(l);
        if (k < lines.length - 1 || rng.bernoulli(0.5))
          parts.push(Buffer.from(rng.bernoulli(0.3) ? "\r\n" : "\n"));
      });
      const bytes = Buffer.concat(parts);
      const dataStart = (header as Buffer).length + 1;
      // CSV records (quoted newlines, the job's 1 MiB limit): a garbage line with an open
      // quote takes the lines after it up to the next quote, good rows included.
      const csvRecords = referenceRecords(bytes, dataStart, 1024 * 1024).filter(
        (r) => r.text !== "" && r.text !== "\r",
      );
      const records = csvRecords.length;
      const goodTexts = new Set(good.map((g) => (g as Buffer).toString("latin1")));
      const scoredRows = csvRecords.filter(
        (r) => r.text !== null && goodTexts.has(r.text.replace(/\r$/, "")),
      ).length;
      const p = openLocalPipeline(path.join(root.dir, `pipeline-${i}`), { log: silentLogger });
      try {
        await p.store.put("input", "f.csv", bytes);
        const { jobId } = await splitJob(p, {
          input: { bucket: "input", object: "f.csv" },
          output: { bucket: "output", format: rng.bernoulli(0.5) ? "csv" : "jsonl" },
          model: { descriptor },
          partitionBytes: 1024 + rng.int(8 * 1024),
          checkpointEvery: 1 + rng.int(40),
          batchSize: 1 + rng.int(64),
        });
        await new PartitionWorker(p, {
          workerId: "fuzz",
          receiveWaitSeconds: 0,
          maxLineBytes,
          scorer: { thread: false },
        }).run({ untilIdle: true });
        const job = (await p.checkpoints.getJob(jobId))?.value;
        assert.equal(job?.state, "completed", job?.error);
        const verified = await verifyJob(p, job as NonNullable<typeof job>);
        assert.ok(verified.ok, JSON.stringify(verified.checks));
        assert.equal(verified.inputRecords, records);
        assert.equal(verified.scored, scoredRows, "every good row that is a record scored");
        assert.equal(verified.errors, records - scoredRows, "every other record in the errors");
        assert.ok(scoredRows <= goodRows);
      } finally {
        p.close();
      }
    });
    t.diagnostic(`${ran} random jobs`);
  });
});

// ---------------------------------------------------------------------------------------
// Validators

type Json = unknown;

function deep(depth: number, leaf: Json, asArray: boolean): Json {
  let v = leaf;
  for (let k = 0; k < depth; k++) v = asArray ? [v] : { a: v };
  return v;
}

function randomValue(rng: Rng): Json {
  const r = rng.int(24);
  switch (r) {
    case 0:
      return null;
    case 1:
      return rng.bernoulli(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, -0, 2 ** 53 + 2, 1e308, -1e308, 1e-320]);
    case 3:
      return rng.pick([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    case 4:
      return "";
    case 5:
      return rng.pick(["x", "0", "true", "null", "csv", "jsonl", "job-000000000000000000000000"]);
    case 6:
      return rng.pick([
        "../../etc/passwd",
        "/abs/x.csv",
        "a/../b.csv",
        "%2e%2e/x.csv",
        "a\u0000b",
        "a\\b",
        "a//b",
        ".",
      ]);
    case 7:
      return "é🙂東".repeat(1 + rng.int(50));
    case 8:
      return "z".repeat(rng.bernoulli(0.2) ? 2 * 1024 * 1024 : 70 * 1024);
    case 9:
      return [];
    case 10:
      return Array.from({ length: 1 + rng.int(40) }, () =>
        rng.pick(["id", 1, null, "", "x".repeat(300)]),
      );
    case 11:
      return {};
    case 12:
      return deep(
        1 + rng.int(rng.bernoulli(0.3) ? 200_000 : 40),
        rng.pick([1, "x", null]),
        rng.bernoulli(0.5),
      );
    case 13:
      return undefined;
    case 14:
      return { bucket: "b", object: "x.csv" };
    case 15:
      return Object.create(null) as Json;
    case 16:
      return rng.pick([() => 1, Symbol("s"), 10n]);
    case 17:
      return new Date(0);
    default:
      return rng.pick([1, 2, 1024, 65536, 4096, 0.5, "input", "output", "a.csv"]);
  }
}

const NASTY_KEYS = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "extra",
  "",
  "0",
];

/** Containers along a random path from the root (the root's parent is a holder). */
function randomSlot(
  rng: Rng,
  holder: { v: Json },
): { parent: Record<string, Json> | Json[]; key: string | number } {
  let parent: Record<string, Json> | Json[] = holder as unknown as Record<string, Json>;
  let key: string | number = "v";
  for (;;) {
    const value: Json = (parent as Record<string | number, Json>)[key];
    if (value === null || typeof value !== "object" || rng.bernoulli(0.35)) return { parent, key };
    const keys: (string | number)[] = Array.isArray(value)
      ? value.map((_, i) => i)
      : Object.keys(value);
    if (keys.length === 0) return { parent, key };
    parent = value as Record<string, Json> | Json[];
    key = rng.pick(keys as (string | number)[]);
  }
}

/** Apply 1-3 random mutations; returns a description for failure messages. */
function mutate(rng: Rng, holder: { v: Json }): string[] {
  const done: string[] = [];
  for (let n = 1 + rng.int(3); n > 0; n--) {
    const { parent, key } = randomSlot(rng, holder);
    const op = rng.int(6);
    const target = (parent as Record<string | number, Json>)[key];
    if (op === 0 && parent !== (holder as unknown)) {
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete (parent as Record<string, Json>)[key as string];
      done.push(`delete ${String(key)}`);
    } else if (
      op === 1 &&
      target !== null &&
      typeof target === "object" &&
      !Array.isArray(target)
    ) {
      const k = rng.pick(NASTY_KEYS);
      const v = randomValue(rng);
      if (rng.bernoulli(0.5)) {
        // An own property named k, as JSON.parse would create it (even for "__proto__").
        Object.defineProperty(target, k, {
          value: v,
          enumerable: true,
          writable: true,
          configurable: true,
        });
        done.push(`define own ${k}`);
      } else {
        (target as Record<string, Json>)[k] = v; // for "__proto__" this swaps the prototype
        done.push(`assign ${k}`);
      }
    } else if (op === 2) {
      // Wire form: what a JSON body would parse to, "__proto__" keys included.
      try {
        holder.v = JSON.parse(JSON.stringify(holder.v).replace('"extra"', '"__proto__"')) as Json;
        done.push("json round trip");
      } catch {
        done.push("json round trip skipped");
      }
    } else {
      (parent as Record<string | number, Json>)[key] = randomValue(rng);
      done.push(`set ${String(key)} (${typeof (parent as Record<string | number, Json>)[key]})`);
    }
  }
  return done;
}

/** The thrown value must be a schema rejection carrying a schema path. */
function assertRejectedCleanly(err: unknown, what: string, allowUnsafePath: boolean): void {
  const ok = err instanceof ValidationError || (allowUnsafePath && err instanceof UnsafePathError);
  assert.ok(
    ok,
    `${what}: threw ${err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err)}`,
  );
  const schemaPath = (err as ValidationError | UnsafePathError).details.schemaPath;
  assert.equal(typeof schemaPath, "string", `${what}: no schemaPath`);
  assert.match(schemaPath as string, /^#/, what);
  assert.ok(
    (err as Error).message.length < 2000,
    `${what}: message of ${(err as Error).message.length} chars`,
  );
}

const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype).sort().join(",");
function assertNoPollution(what: string): void {
  assert.equal(Object.getOwnPropertyNames(Object.prototype).sort().join(","), PROTOTYPE_KEYS, what);
  assert.equal(({} as Record<string, unknown>).a, undefined, what);
}

const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const SPEC_KEYS = new Set([
  "input",
  "output",
  "model",
  "partitionBytes",
  "checkpointEvery",
  "batchSize",
  "partitionRecords",
  "errorThreshold",
  "keyColumns",
  "maxAttempts",
  "visibilitySeconds",
  "runTag",
]);

function intIn(v: unknown, lo: number, hi: number): boolean {
  return Number.isSafeInteger(v) && (v as number) >= lo && (v as number) <= hi;
}

function assertSafeName(name: unknown, what: string): void {
  assert.equal(typeof name, "string", what);
  const s = name as string;
  assert.ok(
    !s.includes("\0") && !s.includes("\\") && !s.startsWith("/"),
    `${what}: ${JSON.stringify(s)}`,
  );
  assert.ok(!s.split("/").includes(".."), `${what}: ${JSON.stringify(s)}`);
}

/** Like assert.ok, with the condition's text as the message (cheap even when it fails). */
function check(ok: boolean, what: string): void {
  if (!ok) throw new assert.AssertionError({ message: `not true: ${what}` });
}

/** An accepted spec is fully resolved: every field present, typed and in range; nothing else. */
function assertWellFormedSpec(spec: ReturnType<typeof resolveJobSpec>): void {
  const json = JSON.parse(JSON.stringify(spec)) as Record<string, unknown>;
  for (const k of Object.keys(json)) assert.ok(SPEC_KEYS.has(k), `unknown key ${k}`);
  assert.match(spec.input.bucket, BUCKET);
  check(
    (spec.input.object === undefined) !== (spec.input.prefix === undefined),
    "exactly one of input.object and input.prefix",
  );
  if (spec.input.object !== undefined) {
    assertSafeName(spec.input.object, "input.object");
    check(spec.input.object.length > 0, "spec.input.object.length > 0");
    check(
      ["csv", "jsonl", "parquet"].includes(spec.input.format),
      'spec.input.format is "csv", "jsonl" or "parquet"',
    );
  } else {
    assertSafeName(spec.input.prefix, "input.prefix");
    check(spec.input.format === "objects", 'a prefix is read as "objects"');
  }
  assert.match(spec.output.bucket, BUCKET);
  assertSafeName(spec.output.prefix, "output.prefix");
  check(!spec.output.prefix.endsWith("/"), '!spec.output.prefix.endsWith("/")');
  check(
    ["csv", "jsonl", "parquet"].includes(spec.output.format),
    'spec.output.format is "csv", "jsonl" or "parquet"',
  );
  assert.equal(typeof spec.model.descriptor, "string");
  check(
    spec.model.descriptor.length > 0 && !spec.model.descriptor.includes("\0"),
    'spec.model.descriptor.length > 0 && !spec.model.descriptor.includes("\\0")',
  );
  check(intIn(spec.partitionBytes, 1024, 2 ** 34), "intIn(spec.partitionBytes, 1024, 2 ** 34)");
  check(intIn(spec.checkpointEvery, 1, 1e7), "intIn(spec.checkpointEvery, 1, 1e7)");
  check(intIn(spec.batchSize, 1, 1048576), "intIn(spec.batchSize, 1, 1048576)");
  check(intIn(spec.maxAttempts, 1, 100), "intIn(spec.maxAttempts, 1, 100)");
  check(intIn(spec.visibilitySeconds, 2, 43200), "intIn(spec.visibilitySeconds, 2, 43200)");
  const t = spec.errorThreshold;
  check(
    t !== null && typeof t === "object" && !Array.isArray(t),
    't !== null && typeof t === "object" && !Array.isArray(t)',
  );
  check(
    t.maxCount === undefined || intIn(t.maxCount, 0, Number.MAX_SAFE_INTEGER),
    "t.maxCount === undefined || intIn(t.maxCount, 0, Number.MAX_SAFE_INTEGER)",
  );
  check(
    t.maxFraction === undefined ||
      (Number.isFinite(t.maxFraction) && t.maxFraction >= 0 && t.maxFraction <= 1),
    "maxFraction in [0, 1]",
  );
  if (spec.keyColumns !== undefined) {
    check(
      Array.isArray(spec.keyColumns) && spec.keyColumns.length <= 32,
      "Array.isArray(spec.keyColumns) && spec.keyColumns.length <= 32",
    );
    for (const k of spec.keyColumns)
      check(typeof k === "string" && k.length > 0, 'typeof k === "string" && k.length > 0');
  }
  check(
    spec.runTag === undefined || typeof spec.runTag === "string",
    'spec.runTag === undefined || typeof spec.runTag === "string"',
  );
  check(JSON.stringify(spec).length < 64 * 1024, "JSON.stringify(spec).length < 64 * 1024");
}

describe("validators on mutated payloads (fuzz)", () => {
  const validSpec = {
    input: { bucket: "input", object: "data/x.csv" },
    output: { bucket: "out", prefix: "jobs/a", format: "csv" },
    model: { descriptor: "/models/churn/descriptor.json" },
    partitionBytes: 1048576,
    checkpointEvery: 1000,
    batchSize: 256,
    errorThreshold: { maxCount: 10, maxFraction: 0.1 },
    keyColumns: ["customer_id"],
    maxAttempts: 3,
    visibilitySeconds: 60,
    runTag: "r1",
  };
  const validEvent = objectCreatedEvent({
    bucket: "input",
    object: "data/x.csv",
    etag: "e1",
    eventId: "ev-1",
    time: new Date(0),
  });
  const validTask = { kind: "partition", jobId: `job-${"a1".repeat(12)}`, partition: 3 };

  it("job specs: accepted and well-formed, or a ValidationError/UnsafePathError with a schema path", async (t) => {
    t.diagnostic(`seed ${SEED} (${REPLAY})`);
    let accepted = 0;
    const ran = await fuzz("job spec", 3, { iterations: 4000, ms: 1500 }, (rng) => {
      const holder = { v: structuredClone(validSpec) as Json };
      const what = mutate(rng, holder).join(", ");
      try {
        const spec = resolveJobSpec(holder.v);
        assertWellFormedSpec(spec);
        accepted++;
      } catch (err) {
        if (err instanceof assert.AssertionError) throw new Error(`${what}: ${err.message}`);
        assertRejectedCleanly(err, what, true);
      }
      assertNoPollution(what);
    });
    t.diagnostic(`${ran} mutated specs, ${accepted} accepted`);
    assert.ok(accepted > 0 && accepted < ran, "the mutations should both pass and fail");
  });

  it("upload events: accepted and well-formed, or a ValidationError with a schema path", async (t) => {
    t.diagnostic(`seed ${SEED} (${REPLAY})`);
    let accepted = 0;
    const ran = await fuzz("object event", 4, { iterations: 4000, ms: 1200 }, (rng) => {
      const holder = { v: structuredClone(validEvent) as Json };
      const what = mutate(rng, holder).join(", ");
      try {
        const event = parseObjectEvent(holder.v);
        assert.ok(
          event.eventType === "com.oraclecloud.objectstorage.createobject" ||
            event.eventType === "com.oraclecloud.objectstorage.updateobject",
          what,
        );
        assert.equal(typeof event.data.resourceName, "string", what);
        assert.ok(
          event.data.resourceName.length > 0 && event.data.resourceName.length <= 1024,
          what,
        );
        assert.match(event.data.additionalDetails.bucketName, BUCKET, what);
        accepted++;
      } catch (err) {
        if (err instanceof assert.AssertionError) throw err;
        assertRejectedCleanly(err, what, false);
      }
      assertNoPollution(what);
    });
    t.diagnostic(`${ran} mutated events, ${accepted} accepted`);
    check(accepted > 0 && accepted < ran, "accepted > 0 && accepted < ran");
  });

  it("task messages (JSON text off the queue): a valid task, or a ValidationError with a schema path", async (t) => {
    t.diagnostic(`seed ${SEED} (${REPLAY})`);
    let accepted = 0;
    const ran = await fuzz("task message", 5, { iterations: 4000, ms: 1000 }, (rng) => {
      const holder = { v: structuredClone(validTask) as Json };
      const what = mutate(rng, holder);
      let body: string;
      try {
        body = JSON.stringify(holder.v) ?? "undefined";
      } catch {
        body = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
      }
      // Text-level damage too: truncation, a flipped byte, trailing garbage.
      const r = rng.int(4);
      if (r === 0) body = body.slice(0, rng.int(body.length + 1));
      else if (r === 1 && body.length > 0) {
        const at = rng.int(body.length);
        body = `${body.slice(0, at)}${String.fromCharCode(rng.int(128))}${body.slice(at + 1)}`;
      } else if (r === 2) body += rng.pick(["}", "\u0000", " ", "\n{}"]);
      try {
        const task = parseTask(body);
        check(
          task.kind === "partition" || task.kind === "merge",
          'task.kind === "partition" || task.kind === "merge"',
        );
        assert.match(task.jobId, /^job-[0-9a-f]{24}$/);
        if (task.kind === "partition")
          check(
            intIn(task.partition, 0, Number.MAX_SAFE_INTEGER),
            "intIn(task.partition, 0, Number.MAX_SAFE_INTEGER)",
          );
        accepted++;
      } catch (err) {
        if (err instanceof assert.AssertionError) throw err;
        assertRejectedCleanly(
          err,
          `${what.join(", ")}; body ${JSON.stringify(body.slice(0, 80))}`,
          false,
        );
      }
      assertNoPollution(what.join(", "));
    });
    t.diagnostic(`${ran} mutated task messages, ${accepted} accepted`);
    check(accepted > 0 && accepted < ran, "accepted > 0 && accepted < ran");
  });
});
