/**
 * CSV with quoted newlines (RFC 4180), the reader side: the CSV record reader against a
 * byte-at-a-time reference (test/helpers/csv-reference.ts) for random CSVs, limits and
 * chunkings, and the boundary rule: for every byte offset around record boundaries and
 * inside multi-line records, partitions read with speculation and the chaining check own
 * every record exactly once, with exact line numbers, unterminated quotes and over-limit
 * quoted fields included.
 *
 * Seeds: a failing property names its seed; rerun with
 * CSV_SEED=<seed> node --import tsx --test test/csv-boundary.test.ts
 */
import assert from "node:assert/strict";
import { describe, mock, test } from "node:test";
import { PipelineError } from "../src/core/errors.ts";
import {
  createReadStats,
  type OwnedLines,
  type ReadOwnedOptions,
  readerFault,
  readOwnedLines,
} from "../src/records/line-reader.ts";
import { findChainBreak, resolveChain } from "../src/records/partition-chain.ts";
import {
  chunkedSource,
  lineNumberAt,
  type RefRecord,
  readCsvText as readAll,
  readAllPartitions,
  readCsvPartition,
  recordsOf,
  referenceRecords,
  referenceSpeculatedStart,
} from "./helpers/csv-reference.ts";

// ---------------------------------------------------------------------------------------
// Seeds

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Rng {
  int(lo: number, hi: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

function makeRng(seed: number): Rng {
  const next = mulberry32(seed);
  return {
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (items) => items[Math.floor(next() * items.length)] as (typeof items)[number],
    chance: (p) => next() < p,
  };
}

const BASE_SEED = process.env.CSV_SEED
  ? Number(process.env.CSV_SEED)
  : (Date.now() ^ (process.pid << 16)) >>> 0;

async function withSeed(label: string, offset: number, body: (rng: Rng) => Promise<void> | void) {
  const seed = (BASE_SEED + offset * 0x9e3779b1) >>> 0;
  try {
    await body(makeRng(seed));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`${label} [CSV_SEED=${BASE_SEED}, derived seed ${seed}]: ${message}`, {
      cause: err,
    });
  }
}

const CSV = "csv" as const;

// ---------------------------------------------------------------------------------------
// The reader against the reference

const FIELDS = [
  "1",
  "-2.5",
  "",
  "plain text",
  "Zoë",
  "東京",
  '"quoted"',
  '"a,b"',
  '"two\nlines"',
  '"crlf\r\ninside"',
  '"esc ""q"" \n"',
  '"\n"',
  '""""',
  '"""\n"""',
  '"\r"',
  '"ends in cr\r"',
  'x"y', // a quote inside an unquoted field is literal
  '"a"b', // text after a closing quote: a bad record, but one record
  '"many\n\n\nnewlines"',
];

/** A random CSV: a header (maybe quoted with a newline), records of random fields. */
function randomCsv(
  rng: Rng,
  options: { unterminated?: boolean; long?: number } = {},
): { bytes: Buffer; dataStart: number } {
  const nl = () => (rng.chance(0.4) ? "\r\n" : "\n");
  const bom = rng.chance(0.2) ? "\ufeff" : "";
  const header = `${bom}${rng.pick(['id,"multi\nline name",v', "id,name,v", '"id",name,v'])}${nl()}`;
  const parts = [header];
  const n = rng.int(1, 14);
  for (let r = 0; r < n; r++) {
    if (rng.chance(0.06)) {
      parts.push(nl()); // blank line
      continue;
    }
    const fields = Array.from({ length: rng.int(1, 4) }, () => rng.pick(FIELDS));
    if (options.unterminated && rng.chance(0.15))
      fields.push(rng.pick(['"never closed', '"open\nstill open', '"']));
    if (options.long && rng.chance(0.1)) {
      const body = "w".repeat(rng.int(options.long, options.long * 3));
      fields.push(rng.chance(0.5) ? `"${body}\n${body}"` : body);
    }
    const last = r === n - 1 && rng.chance(0.3);
    parts.push(`${fields.join(",")}${last ? rng.pick(["", "\r"]) : nl()}`);
  }
  return { bytes: Buffer.from(parts.join("")), dataStart: 0 };
}

/** The header's end by the reference (the first record from 0). */
function withHeader(bytes: Buffer, limit: number): { bytes: Buffer; dataStart: number } {
  const header = referenceRecords(bytes, 0, Math.max(limit, 1 << 16))[0];
  return { bytes, dataStart: header ? header.next : 0 };
}

describe("readOwnedLines in CSV mode", () => {
  test("matches the reference from a record start, for random CSVs, limits and chunkings", async () => {
    for (let round = 0; round < 300; round++) {
      await withSeed("reference property", round, async (rng) => {
        const limit = rng.pick([0, 3, 8, 20, 40, 1 << 20]);
        const { bytes, dataStart } = withHeader(
          randomCsv(rng, { unterminated: true, long: rng.chance(0.3) ? 30 : 0 }).bytes,
          limit,
        );
        const expected = referenceRecords(bytes, dataStart, limit);
        const got = await readAll(bytes, {
          from: dataStart,
          end: bytes.length,
          maxLineBytes: limit,
          chunk: rng.pick([1, 2, 3, 5, 8, 13, 64, 1 << 16]),
        });
        assert.deepEqual(got, expected);
      });
    }
  });

  test("speculative reads start where the reference speculation does, from every offset", async () => {
    for (let round = 0; round < 40; round++) {
      await withSeed("speculation property", 1000 + round, async (rng) => {
        const limit = rng.pick([5, 20, 1 << 20]);
        const { bytes } = randomCsv(rng, { unterminated: true, long: rng.chance(0.3) ? 10 : 0 });
        for (let from = 1; from <= bytes.length; from++) {
          const start = referenceSpeculatedStart(bytes, from, limit);
          const read = await readCsvPartition(
            bytes,
            { from, fromIsRecordStart: false, end: bytes.length + 1, maxLineBytes: limit },
            () => rng.pick([1, 2, 7, 1 << 16]),
          );
          assert.equal(read.link.firstRecordStart, start, `first record start from ${from}`);
          assert.deepEqual(
            read.records,
            start < bytes.length ? referenceRecords(bytes, start, limit) : [],
          );
        }
      });
    }
  });

  test("a CSV without quotes reads exactly as line mode", async () => {
    for (let round = 0; round < 100; round++) {
      await withSeed("no-quote equivalence", 2000 + round, async (rng) => {
        const lines = Array.from({ length: rng.int(0, 30) }, () =>
          rng.chance(0.1)
            ? ""
            : Array.from({ length: rng.int(1, 5) }, () =>
                rng.pick(["1", "2.5", "abc", "", "x y"]),
              ).join(","),
        );
        const text =
          lines.map((l) => l + rng.pick(["\n", "\r\n"])).join("") +
          rng.pick(["", "tail", "tail\r"]);
        const bytes = Buffer.from(text);
        const limit = rng.pick([0, 4, 10, 1 << 20]);
        const start = rng.int(0, bytes.length);
        const end = rng.int(start, bytes.length + 2);
        const chunk = rng.pick([1, 3, 16, 1 << 16]);
        const base = {
          from: start,
          fromIsRecordStart: start === 0,
          end,
          maxLineBytes: limit,
          chunk,
        };
        const asLines = await readAll(bytes, { ...base, records: "lines" });
        const asCsv = await readAll(bytes, base);
        assert.deepEqual(asCsv, asLines);
      });
    }
  });

  test("edge layouts", async () => {
    const cases: Array<[string, number, Array<[number, string | null, number, number, boolean]>]> =
      [
        ["", 100, []],
        ['"', 100, [[0, '"', 1, 1, true]]],
        ['""', 100, [[0, '""', 2, 1, false]]],
        ['"a\n', 100, [[0, '"a', 3, 1, true]]],
        [
          '"a\nb\n',
          100,
          [
            [0, '"a', 3, 1, true],
            [3, "b", 5, 1, false],
          ],
        ],
        ['"a\r\nb",c\r\n', 100, [[0, '"a\r\nb",c', 10, 2, false]]],
        ['a\r"b\n', 100, [[0, 'a\r"b', 5, 1, false]]], // not at a field start: literal
        [
          'x,"\n"\n\n',
          100,
          [
            [0, 'x,"\n"', 6, 2, false],
            [6, "", 7, 1, false],
          ],
        ],
        ['"ab""\n', 100, [[0, '"ab""', 6, 1, true]]],
        // Limit 4: the quoted field is still open at the limit point (offset 6): cut.
        [
          '"a\nbcdefg"\nz\n',
          4,
          [
            [0, '"a', 3, 1, true],
            [3, null, 11, 1, false],
            [11, "z", 13, 1, false],
          ],
        ],
        // Limit 4, closed before the limit point but the record goes on: oversize, ends at the next '\n'.
        [
          '"a\nb",cdefgh\nz\n',
          4,
          [
            [0, null, 13, 2, false],
            [13, "z", 15, 1, false],
          ],
        ],
        // The first line alone is over the limit with a quote open: skipped as one oversize line.
        [
          '"abcdefgh\nz"\n',
          4,
          [
            [0, null, 10, 1, false],
            [10, 'z"', 13, 1, false],
          ],
        ],
      ];
    for (const [text, limit, want] of cases) {
      for (const chunk of [1, 2, 3, 64]) {
        const got = await readAll(text, { chunk, maxLineBytes: limit, end: text.length + 1 });
        assert.deepEqual(
          got.map((r) => [r.offset, r.text, r.next, r.lines, r.unterminated]),
          want,
          `${JSON.stringify(text)} limit ${limit} in ${chunk}-byte chunks`,
        );
      }
    }
  });

  test("a 10 MB quoted field is cut at its first line without buffering more than the limit", async () => {
    const limit = 1 << 16;
    const big = 10 * (1 << 20);
    const head = Buffer.from('id,t\n1,"first\nsecond ');
    const tail = Buffer.from('"\n2,after\n');
    const total = head.length + big + tail.length;
    const chunkSize = 64 * 1024;
    const source = {
      async *[Symbol.asyncIterator]() {
        for (let p = 0; p < total; p += chunkSize) {
          const chunk = Buffer.alloc(Math.min(chunkSize, total - p), 0x78);
          for (let i = 0; i < chunk.length; i++) {
            const q = p + i;
            if (q < head.length) chunk[i] = head[q] as number;
            else if (q >= head.length + big) chunk[i] = tail[q - head.length - big] as number;
          }
          yield chunk;
        }
      },
    };
    const allocUnsafe = mock.method(Buffer, "allocUnsafe");
    const blocks: OwnedLines[] = [];
    try {
      for await (const b of readOwnedLines(source, {
        from: 0,
        fromIsRecordStart: true,
        end: total,
        maxLineBytes: limit,
        records: CSV,
      }))
        blocks.push(b);
    } finally {
      allocUnsafe.mock.restore();
    }
    const got = recordsOf(blocks);
    // `1,"first` is unterminated (cut at its first line); `second xxx…"` is a 10 MB line,
    // skipped as oversize (its quote is literal: not at a field start).
    assert.deepEqual(
      got.map((r) => [r.offset, r.text, r.lines, r.unterminated]),
      [
        [0, "id,t", 1, false],
        [5, '1,"first', 1, true],
        [14, null, 1, false],
        [total - 8, "2,after", 1, false],
      ],
    );
    const largest = Math.max(0, ...allocUnsafe.mock.calls.map((c) => Number(c.arguments[0] ?? 0)));
    assert.ok(largest <= limit + 2, `largest allocation ${largest} bytes`);
  });

  test("stops after the last owned record, not reading far past the partition end", async () => {
    const bytes = Buffer.from(`${'a,"x\ny"\n'.repeat(10)}${"z".repeat(100_000)}\n`);
    const source = chunkedSource(bytes, 0, () => 16);
    const blocks: OwnedLines[] = [];
    for await (const b of readOwnedLines(source, {
      from: 0,
      fromIsRecordStart: true,
      end: 20,
      maxLineBytes: 1 << 20,
      records: CSV,
    }))
      blocks.push(b);
    assert.deepEqual(
      recordsOf(blocks).map((r) => r.offset),
      [0, 8, 16],
    );
    assert.ok(source.destroyed);
    assert.ok(source.yielded <= 48, `read ${source.yielded} bytes`);
  });

  test("rejects a delimiter that can't delimit and an unknown record mode", async () => {
    const bad: ReadOwnedOptions[] = [
      { from: 0, fromIsRecordStart: true, end: 9, maxLineBytes: 9, records: CSV, delimiter: 0x22 },
      { from: 0, fromIsRecordStart: true, end: 9, maxLineBytes: 9, records: CSV, delimiter: 0x0a },
      { from: 0, fromIsRecordStart: true, end: 9, maxLineBytes: 9, records: CSV, delimiter: 300 },
      {
        from: 0,
        fromIsRecordStart: true,
        end: 9,
        maxLineBytes: 9,
        records: "tsv" as unknown as "csv",
      },
    ];
    for (const options of bad) {
      const source = chunkedSource(Buffer.from("a\n"), 0, () => 1);
      await assert.rejects(
        (async () => {
          for await (const _ of readOwnedLines(source, options)) {
            // nothing: the options are rejected first
          }
        })(),
        (err: unknown) => err instanceof PipelineError && err.code === "INVALID_ARGUMENT",
      );
      assert.ok(source.destroyed);
    }
  });

  test("a semicolon delimiter: quotes open after it, not after a comma", async () => {
    const got = await readAll('a;"x\ny";1\nb,"p\nq",2\n', { delimiter: 0x3b, chunk: 2 });
    assert.deepEqual(
      got.map((r) => r.text),
      ['a;"x\ny";1', 'b,"p', 'q",2'],
    );
  });

  test("readerFault names what the reader already knows is wrong", async () => {
    const blocks: OwnedLines[] = [];
    const bytes = Buffer.from('ok\n"open\nx\nplain,1\nc,defghijklmnopq\n');
    for await (const b of readOwnedLines(
      chunkedSource(bytes, 0, () => 64),
      {
        from: 0,
        fromIsRecordStart: true,
        end: bytes.length,
        maxLineBytes: 12,
        records: CSV,
      },
    ))
      blocks.push(b);
    const faults = blocks.flatMap((b) =>
      Array.from({ length: b.count }, (_, i) => readerFault(b, i, 12, CSV)),
    );
    assert.deepEqual(faults, [
      undefined,
      "unterminated quoted field",
      undefined,
      undefined,
      "record longer than 12 bytes",
    ]);
  });

  test("line mode fills the same stats", async () => {
    const bytes = Buffer.from("h\na\nbb\n\ncc");
    const stats = createReadStats();
    const options: ReadOwnedOptions = {
      from: 3,
      fromIsRecordStart: false,
      end: 8,
      maxLineBytes: 9,
      stats,
    };
    for await (const _ of readOwnedLines(
      chunkedSource(bytes, 2, () => 2),
      options,
    )) {
      // drain
    }
    assert.deepEqual(stats, {
      firstRecordStart: 4,
      nextRecordStart: 8,
      records: 2,
      physicalLines: 2,
      complete: true,
    });
  });

  test("stats: first and next record start, records and physical lines", async () => {
    const bytes = Buffer.from('h\n"a\nb"\nc\n"d\n\ne"\nf\n');
    const stats = createReadStats();
    const options: ReadOwnedOptions = {
      // Inside "a\nb" just after its newline: speculation takes 5 as a record start
      // (wrongly: the chaining check would re-read from 8).
      from: 5,
      fromIsRecordStart: false,
      end: 12,
      maxLineBytes: 100,
      records: CSV,
      stats,
    };
    const blocks: OwnedLines[] = [];
    for await (const b of readOwnedLines(
      chunkedSource(bytes, 4, () => 3),
      options,
    ))
      blocks.push(b);
    assert.deepEqual(stats, {
      firstRecordStart: 5,
      nextRecordStart: 17,
      records: 3,
      physicalLines: 5,
      complete: true,
    });
    assert.deepEqual(
      recordsOf(blocks).map((r) => r.text),
      ['b"', "c", '"d\n\ne"'],
    );
    // From 6 (the closing quote) the guess is right: the record after "a\nb" starts at 8.
    const right = await readCsvPartition(
      bytes,
      { from: 6, fromIsRecordStart: false, end: 12, maxLineBytes: 100 },
      () => 2,
    );
    assert.deepEqual(right.link, { firstRecordStart: 8, nextRecordStart: 17 });
    assert.equal(right.physicalLines, 4);
  });
});

// ---------------------------------------------------------------------------------------
// The boundary rule: speculation + chaining check, at every offset

/** Check a full partitioned read against the reference: every record once, exact lines. */
function assertReassembles(
  bytes: Buffer,
  dataStart: number,
  limit: number,
  result: Awaited<ReturnType<typeof readAllPartitions>>,
  label: string,
): void {
  const expected = referenceRecords(bytes, dataStart, limit);
  const got: RefRecord[] = [];
  result.reads.forEach((read, p) => {
    const range = result.ranges[p] as { start: number; end: number };
    for (const r of read.records) {
      assert.ok(
        r.offset >= range.start && r.offset < range.end,
        `${label}: record at ${r.offset} outside partition ${p}`,
      );
    }
    assert.equal(
      read.physicalLines,
      read.records.reduce((n, r) => n + r.lines, 0),
      `${label}: partition ${p} lines`,
    );
    got.push(...read.records);
  });
  assert.deepEqual(got, expected, label);
  // Reassembled byte for byte, and every record's line number from the counts alone.
  const whole = Buffer.concat(got.map((r) => bytes.subarray(r.offset, r.next)));
  assert.ok(whole.equals(bytes.subarray(dataStart)), `${label}: reassembled bytes differ`);
  let line = lineNumberAt(bytes, dataStart) - 1; // header lines
  for (const r of got) {
    assert.equal(
      line + 1,
      lineNumberAt(bytes, r.offset),
      `${label}: line number of record at ${r.offset}`,
    );
    line += r.lines;
  }
}

describe("partitions with quoted newlines at every boundary offset", () => {
  test("one cut at every byte offset, random chunkings", async () => {
    let rereads = 0;
    let cuts = 0;
    for (let round = 0; round < 25; round++) {
      await withSeed("every offset", 3000 + round, async (rng) => {
        const limit = rng.pick([6, 16, 40, 1 << 20]);
        const { bytes, dataStart } = withHeader(
          randomCsv(rng, { unterminated: rng.chance(0.5), long: rng.chance(0.3) ? 12 : 0 }).bytes,
          limit,
        );
        for (let p = dataStart; p <= bytes.length; p++) {
          const result = await readAllPartitions(bytes, dataStart, [p], limit, () =>
            rng.pick([1, 2, 5, 64, 1 << 16]),
          );
          assertReassembles(bytes, dataStart, limit, result, `cut at ${p}`);
          rereads += result.rereads.length;
          cuts++;
        }
      });
    }
    assert.ok(rereads > 0, "some cuts landed inside quoted newlines and were re-read");
    assert.ok(rereads < cuts, "most speculations were right");
  });

  test("several cuts at once around record boundaries and inside multi-line records", async () => {
    for (let round = 0; round < 150; round++) {
      await withSeed("multi cut", 4000 + round, async (rng) => {
        const limit = rng.pick([6, 16, 40, 1 << 20]);
        const { bytes, dataStart } = withHeader(
          randomCsv(rng, { unterminated: rng.chance(0.5), long: rng.chance(0.3) ? 12 : 0 }).bytes,
          limit,
        );
        const records = referenceRecords(bytes, dataStart, limit);
        // Interesting offsets: a window around each record boundary, and every offset
        // inside each multi-line record.
        const interesting = new Set<number>();
        for (const r of records) {
          for (let d = -3; d <= 3; d++) interesting.add(r.offset + d);
          if (r.lines > 1 || r.unterminated)
            for (let q = r.offset; q < r.next; q++) interesting.add(q);
        }
        const pool = [...interesting].filter((p) => p > dataStart && p < bytes.length);
        for (let k = 0; k < 20 && pool.length > 0; k++) {
          const cuts = Array.from({ length: rng.int(1, 6) }, () => rng.pick(pool));
          const result = await readAllPartitions(bytes, dataStart, cuts, limit, () =>
            rng.pick([1, 3, 8, 1 << 16]),
          );
          assertReassembles(bytes, dataStart, limit, result, `cuts ${cuts.join(",")}`);
        }
      });
    }
  });

  test("resuming from any record start (a checkpoint) gives the rest of the partition", async () => {
    for (let round = 0; round < 60; round++) {
      await withSeed("resume", 5000 + round, async (rng) => {
        const limit = rng.pick([8, 1 << 20]);
        const { bytes, dataStart } = withHeader(
          randomCsv(rng, { unterminated: true }).bytes,
          limit,
        );
        const start = rng.int(dataStart + 1, Math.max(dataStart + 1, bytes.length));
        const end = rng.int(start, bytes.length);
        const full = await readCsvPartition(
          bytes,
          { from: start, fromIsRecordStart: false, end, maxLineBytes: limit },
          () => rng.pick([1, 4, 1 << 16]),
        );
        for (let k = 0; k < full.records.length; k++) {
          const checkpoint = (full.records[k] as RefRecord).offset;
          for (const known of [true, false]) {
            const rest = await readCsvPartition(
              bytes,
              { from: checkpoint, fromIsRecordStart: known, end, maxLineBytes: limit },
              () => rng.pick([1, 4, 1 << 16]),
            );
            assert.deepEqual(rest.records, full.records.slice(k), `resume at ${checkpoint}`);
          }
        }
      });
    }
  });
});

describe("the chaining check", () => {
  test("findChainBreak names the first partition that disagrees, and where to re-read it", () => {
    const links = [
      { firstRecordStart: 10, nextRecordStart: 55 },
      { firstRecordStart: 55, nextRecordStart: 90 },
      { firstRecordStart: 93, nextRecordStart: 140 },
      { firstRecordStart: 150, nextRecordStart: 200 },
    ];
    assert.deepEqual(findChainBreak(links, 10), { index: 2, from: 90 });
    assert.deepEqual(findChainBreak(links, 0), { index: 0, from: 0 });
    assert.equal(findChainBreak(links.slice(0, 2), 10), undefined);
    assert.equal(findChainBreak([], 10), undefined);
    // A partition that owns nothing passes its predecessor's next record start on.
    assert.equal(
      findChainBreak(
        [
          { firstRecordStart: 0, nextRecordStart: 300 },
          { firstRecordStart: 300, nextRecordStart: 300 },
          { firstRecordStart: 300, nextRecordStart: 350 },
        ],
        0,
      ),
      undefined,
    );
    assert.throws(
      () => findChainBreak([{ firstRecordStart: -1, nextRecordStart: -1 }], 0),
      /record starts/,
    );
  });

  test("resolveChain re-reads down the chain until it holds", async () => {
    // Re-reading partition 1 moves its next record start, which breaks partition 2.
    const links = [
      { firstRecordStart: 0, nextRecordStart: 100 },
      { firstRecordStart: 104, nextRecordStart: 200 },
      { firstRecordStart: 200, nextRecordStart: 300 },
    ];
    const truth = new Map([
      [1, { firstRecordStart: 100, nextRecordStart: 210 }],
      [2, { firstRecordStart: 210, nextRecordStart: 300 }],
    ]);
    const calls: Array<[number, number]> = [];
    const rereads = await resolveChain(links, 0, async (index, from) => {
      calls.push([index, from]);
      return truth.get(index) as { firstRecordStart: number; nextRecordStart: number };
    });
    assert.deepEqual(calls, [
      [1, 100],
      [2, 210],
    ]);
    assert.deepEqual(rereads, [
      { index: 1, from: 100 },
      { index: 2, from: 210 },
    ]);
    await assert.rejects(
      resolveChain([{ firstRecordStart: 5, nextRecordStart: 9 }], 0, async () => ({
        firstRecordStart: 1,
        nextRecordStart: 9,
      })),
      /re-read it with from = 0/,
    );
  });
});
