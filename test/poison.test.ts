/**
 * Poison on the embedded default, through the real pipeline (upload event,
 * splitter, worker processes, SQLite, onnxruntime, merger):
 *
 * - poison records (bad numbers, wrong arity, invalid UTF-8, a 10 MB line, broken
 *   quoting, broken JSON) at the first and last line of partitions, across their
 *   boundaries and at the ends of the file, in CSV and JSONL: each lands in the
 *   errors output with its line and a reason, everything else is scored exactly as
 *   a clean run of the good rows, and verify passes; past the error threshold the
 *   job fails with ERROR_THRESHOLD_EXCEEDED and publishes no scores;
 * - poison partitions: a model onnxruntime refuses to run on some rows, and a
 *   record that kills its worker process every time: retried up to maxAttempts,
 *   dead-lettered, the job completed_with_errors naming the partition; then the
 *   ways back (rerun --failed with a fixed worker, a new job with a fixed model);
 * - requests rejected before anything is written: malformed events and specs,
 *   empty and missing objects, a model that isn't ONNX or doesn't fit.
 */
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import completionSchema from "../events/schemas/completion-event.schema.json" with { type: "json" };
import { main as cliMain } from "../src/cli/main.ts";
import { ModelError, NotFoundError, PipelineError } from "../src/core/errors.ts";
import type { JobSpecInput } from "../src/core/job-spec.ts";
import { silentLogger } from "../src/core/log.ts";
import type { JobRecord } from "../src/core/records.ts";
import { compileValidator } from "../src/core/schema.ts";
import { writeDataset } from "../src/model/datasets.ts";
import { encodeOnnxModel } from "../src/model/onnx-writer.ts";
import { EVENT_TYPES, objectCreatedEvent } from "../src/pipeline/events.ts";
import type { Manifest } from "../src/pipeline/manifest.ts";
import { PartitionWorker } from "../src/pipeline/partition-worker.ts";
import { rerunFailedPartitions } from "../src/pipeline/rerun.ts";
import {
  planPartitions,
  type SplitterDeps,
  splitFromEvent,
  splitJob,
} from "../src/pipeline/splitter.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import { uploadFile } from "../src/runner/local-runner.ts";
import { type LocalPipeline, openLocalPipeline } from "../src/runner/local-stores.ts";
import { openTabularSession } from "../src/tasks/tabular/tabular-task.ts";
import {
  churnModel,
  customerCsv,
  objectFile,
  readOutputs,
  runJob,
  tempDir,
} from "./helpers/pipeline-fixture.ts";
import {
  assertNothingWritten,
  CRASH_MARKER,
  crashWorkerCommand,
  isSchemaError,
  type LineSpan,
  lineSpans,
  ownerOf,
  writeChurnLikeModel,
} from "./helpers/poison.ts";

const validateCompletion = compileValidator("completion event", "INVALID_EVENT", completionSchema);

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;

before(async () => {
  root = await tempDir("bi-poison-");
  descriptor = await churnModel();
});
after(() => root.cleanup());

/** The job's manifest and completion events, read back from the stores. */
async function finished(dataDir: string, job: JobRecord) {
  const p = openLocalPipeline(dataDir, { log: silentLogger });
  try {
    const manifestObject = job.result?.manifest.object;
    assert.ok(manifestObject, `job ${job.jobId} has no manifest`);
    const manifest = JSON.parse(
      await readFile(objectFile(dataDir, "output", manifestObject), "utf8"),
    ) as Manifest;
    const completions = await p.eventLog.read({
      jobId: job.jobId,
      eventType: EVENT_TYPES.jobCompleted,
    });
    const failedEvents = await p.eventLog.read({
      jobId: job.jobId,
      eventType: EVENT_TYPES.partitionFailed,
    });
    const verified =
      job.state === "failed" ? undefined : await verifyJob(p, job).catch((e: unknown) => e);
    const outputs = (await p.store.list("output", { prefix: `jobs/${job.jobId}/` })).objects.map(
      (o) => o.name.slice(`jobs/${job.jobId}/`.length),
    );
    const partitions = (await p.checkpoints.listPartitions(job.jobId)).map((r) => r.value);
    const deadLetters = await p.tasks.listDeadLetters();
    return { manifest, completions, failedEvents, verified, outputs, partitions, deadLetters };
  } finally {
    p.close();
  }
}

// ---------------------------------------------------------------------------------------
// Poison records

/** A way to spoil one record without changing its length (so partition boundaries stay put). */
interface Spoiler {
  kind: string;
  /** The spoiled line, or undefined when this record has nothing to spoil this way. */
  apply(line: Buffer): Buffer | undefined;
  reason: RegExp;
  /** The errors output can still name the record's key. */
  keyKept?: boolean;
}

/** Byte ranges of a CSV line's fields (quotes excluded), for well-formed generated rows. */
function csvFields(line: Buffer): { start: number; end: number; quoted: boolean }[] {
  const out: { start: number; end: number; quoted: boolean }[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === 0x22) {
      let j = i + 1;
      while (j < line.length && !(line[j] === 0x22 && line[j + 1] !== 0x22))
        j += line[j] === 0x22 ? 2 : 1;
      out.push({ start: i + 1, end: j, quoted: true });
      i = j + 1;
    } else {
      let j = i;
      while (j < line.length && line[j] !== 0x2c) j++;
      out.push({ start: i, end: j, quoted: false });
      i = j;
    }
    if (i >= line.length) return out;
    i++; // the comma
  }
}

function patched(line: Buffer, at: number, bytes: number[]): Buffer {
  const copy = Buffer.from(line);
  bytes.forEach((b, k) => {
    copy[at + k] = b;
  });
  return copy;
}

const CSV_COLUMNS = 35;

const CSV_SPOILERS: Spoiler[] = [
  {
    kind: "bad number",
    reason: /^column age: "x\d*" is not a number$/,
    keyKept: true,
    apply(line) {
      const age = csvFields(line)[1];
      return age && age.end > age.start ? patched(line, age.start, [0x78]) : undefined;
    },
  },
  {
    kind: "wrong arity",
    reason: new RegExp(`^expected ${CSV_COLUMNS} fields, got ${CSV_COLUMNS - 1}$`),
    apply: (line) => patched(line, (csvFields(line)[0] as { end: number }).end, [0x3b]),
  },
  {
    kind: "invalid UTF-8 in a category",
    reason: /^invalid UTF-8 in column region \(byte 0xff at position \d+ of the line\)$/,
    keyKept: true,
    apply(line) {
      const region = csvFields(line)[5];
      return region && region.end > region.start ? patched(line, region.start, [0xff]) : undefined;
    },
  },
  {
    kind: "invalid UTF-8 in the key",
    reason: /^invalid UTF-8 in column customer_id \(byte 0xfe at position 2 of the line\)$/,
    apply: (line) => patched(line, 1, [0xfe]),
  },
  {
    kind: "invalid UTF-8 in a column the model ignores",
    reason: /^invalid UTF-8 in column city \(byte 0xc3 at position \d+ of the line\)$/,
    keyKept: true,
    apply(line) {
      const city = csvFields(line)[6];
      return city && city.end - city.start >= 2
        ? patched(line, city.start, [0xc3, 0x41])
        : undefined;
    },
  },
  {
    kind: "a multi-byte character cut off at the end of the line",
    reason: /^invalid UTF-8 in column churned \(byte 0xe2 at position \d+ of the line\)$/,
    keyKept: true,
    apply: (line) => patched(line, line.length - 1, [0xe2]),
  },
  // No "unterminated quote" spoiler: CSV is read as RFC 4180 records, so a quote left
  // open takes the lines after it up to the next quote (one bad record spanning several
  // lines, good rows inside it); csv-quoted.test.ts and csv-boundary.test.ts cover it.
  {
    kind: "text after a closing quote",
    reason: /^text after a closing quote$/,
    apply(line) {
      const city = csvFields(line)[6];
      return city?.quoted ? patched(line, city.end + 1, [0x78]) : undefined;
    },
  },
];

/** Replace a JSON member's value by text of the same length, or undefined when it isn't there. */
function jsonMember(line: Buffer, name: string, make: (value: string) => string | undefined) {
  const text = line.toString("latin1");
  const m = new RegExp(`"${name}":(null|true|false|-?[0-9.]+|"[^"]*")`).exec(text);
  if (!m) return undefined;
  const value = m[1] as string;
  const next = make(value);
  if (next === undefined || next.length !== value.length) return undefined;
  const at = m.index + name.length + 3;
  return Buffer.concat([
    line.subarray(0, at),
    Buffer.from(next, "latin1"),
    line.subarray(at + value.length),
  ]);
}

const JSONL_SPOILERS: Spoiler[] = [
  {
    kind: "invalid JSON",
    reason: /^invalid JSON: /,
    apply: (line) => patched(line, line.length - 1, [0x5d]),
  },
  {
    kind: "not an object",
    reason: /^JSON line is a string, not an object: each line must be \{\.\.\.\}$/,
    apply: (line) => Buffer.from(`"${"x".repeat(line.length - 2)}"`),
  },
  {
    kind: "bad number",
    reason: /^field credit_score: "x" is not a number$/,
    keyKept: true,
    apply: (line) =>
      jsonMember(line, "credit_score", (v) => (/^\d{3}$/.test(v) ? '"x"' : undefined)),
  },
  {
    kind: "missing value without imputation",
    reason: /^field senior: missing value$/,
    keyKept: true,
    apply: (line) =>
      jsonMember(line, "senior", (v) =>
        v === "true" ? "null" : v === "false" ? "null " : undefined,
      ),
  },
  {
    kind: "not a boolean",
    reason: /^field autopay: "z+" is not a boolean$/,
    keyKept: true,
    apply: (line) =>
      jsonMember(line, "autopay", (v) =>
        v === "true" || v === "false" ? `"${"z".repeat(v.length - 2)}"` : undefined,
      ),
  },
  {
    kind: "invalid UTF-8",
    reason: /^invalid UTF-8 in line$/,
    apply(line) {
      const at = line.indexOf('"city":"');
      return at < 0 ? undefined : patched(line, at + 8, [0xff]);
    },
  },
];

const HUGE_LINE_BYTES = 10 * 1024 * 1024;
/** "record" for CSV (records may span lines), "line" for JSON Lines. */
const HUGE_REASON = /^(record|line) longer than 1048576 bytes$/;

interface PoisonFile {
  file: string;
  clean: string;
  expected: {
    line: number;
    offset: number;
    partition: number;
    kind: string;
    reason: RegExp;
    key?: string;
  }[];
  goodRows: number;
  partitions: number;
}

/**
 * Spoil records of `source` at chosen places: the file's first and last records,
 * the first and last records of several partitions (the last one crossing into the
 * next partition where it can), records on both sides of one boundary, and around
 * a 10 MB line that spans many partitions. Also writes the clean file: the same
 * input without the spoiled records.
 */
async function poisonFile(
  source: string,
  format: "csv" | "jsonl",
  partitionBytes: number,
): Promise<PoisonFile> {
  const text = await readFile(source);
  const all = lineSpans(text).map((s) => text.subarray(s.start, s.end));
  const header = format === "csv" ? (all.shift() as Buffer) : undefined;
  const lines: Buffer[] = [...all];
  const hugeAt = Math.floor(lines.length * 0.6);
  const idKey = (line: Buffer) =>
    format === "csv"
      ? line.toString("latin1", 0, line.indexOf(0x2c))
      : (/"customer_id":"([^"]+)"/.exec(line.toString("latin1"))?.[1] ?? "");
  lines.splice(
    hugeAt,
    0,
    Buffer.from(
      format === "csv"
        ? `C99999999,${"7".repeat(HUGE_LINE_BYTES)}`
        : `{"customer_id":"C99999999","notes":"${"7".repeat(HUGE_LINE_BYTES)}"}`,
    ),
  );
  // Some CRLF and a blank line: they must not disturb line numbers or ownership.
  const terminators = lines.map((_, i) => (i % 13 === 5 ? "\r\n" : "\n"));
  lines.splice(40, 0, Buffer.alloc(0));
  terminators.splice(40, 0, "\n");
  const assemble = (body: Buffer[], ends: string[]) => {
    const parts: Buffer[] = header ? [header, Buffer.from("\n")] : [];
    body.forEach((l, i) => {
      parts.push(l);
      // The last line has no newline at all.
      if (i < body.length - 1) parts.push(Buffer.from(ends[i] as string));
    });
    return Buffer.concat(parts);
  };
  const bytes = assemble(lines, terminators);
  const dataStart = header ? header.length + 1 : 0;
  const spans = lineSpans(bytes, dataStart);
  assert.equal(spans.length, lines.length);
  const ranges = planPartitions(dataStart, bytes.length, partitionBytes);
  const owner = spans.map((s) => ownerOf(ranges, s.start));
  const hugeIndex = hugeAt + 1; // the blank line went in before it
  const special = (i: number) => i === hugeIndex || lines[i]?.length === 0;

  // Partitions whose lines are all ordinary records, with room for first, middle and last,
  // before the huge line (after it, the first record is a target of its own).
  const owned = ranges.map((_, k) => spans.flatMap((_, i) => (owner[i] === k ? [i] : [])));
  const hugeOwner = owner[hugeIndex] as number;
  const ordinary = owned
    .map((idx, k) => ({ k, idx }))
    .filter(({ k, idx }) => k < hugeOwner - 1 && idx.length >= 6 && !idx.some(special));
  assert.ok(ordinary.length >= 4, `only ${ordinary.length} ordinary partitions: use more rows`);
  const crosses = (i: number) =>
    (spans[i] as LineSpan).next > (ranges[owner[i] as number] as { end: number }).end;
  const a = ordinary[1] as { k: number; idx: number[] };
  const b = ordinary.find((o) => o.k === a.k + 1) ?? (ordinary[2] as { k: number; idx: number[] });
  const c = ordinary[ordinary.length - 1] as { k: number; idx: number[] };
  const afterHuge = owned.find((idx, k) => k > hugeOwner && idx.length > 0)?.[0];
  assert.ok(afterHuge !== undefined, "no records after the huge line");
  const targets = [
    0, // the first record of the file (and of partition 0)
    a.idx[0] as number,
    a.idx[a.idx.length - 1] as number, // last of a partition: it usually crosses the boundary
    b.idx[0] as number, // the record right after that boundary
    b.idx[Math.floor(b.idx.length / 2)] as number,
    b.idx[b.idx.length - 1] as number,
    c.idx[0] as number,
    c.idx[c.idx.length - 1] as number,
    hugeIndex - 1, // right before the huge line
    afterHuge, // the first record after it, in a partition that started inside it
    spans.length - 1, // the last line, without a newline
  ];
  assert.ok(
    targets.some((i) => !special(i) && crosses(i)),
    "no spoiled record crosses a boundary",
  );
  assert.equal(new Set(targets).size, targets.length, `targets collide: ${targets.join(",")}`);

  const spoilers = format === "csv" ? CSV_SPOILERS : JSONL_SPOILERS;
  const expected: PoisonFile["expected"] = [];
  const lineBase = header ? 2 : 1;
  targets.forEach((i, n) => {
    const original = lines[i] as Buffer;
    // Round robin over the kinds; a record a kind can't spoil takes the next kind.
    for (let k = 0; k < spoilers.length; k++) {
      const spoiler = spoilers[(n + k) % spoilers.length] as Spoiler;
      const spoiled = spoiler.apply(original);
      if (!spoiled) continue;
      assert.equal(spoiled.length, original.length, spoiler.kind);
      lines[i] = spoiled;
      expected.push({
        line: lineBase + i,
        offset: (spans[i] as LineSpan).start,
        partition: owner[i] as number,
        kind: spoiler.kind,
        reason: spoiler.reason,
        ...(spoiler.keyKept ? { key: idKey(original) } : {}),
      });
      return;
    }
    assert.fail(`no spoiler applies to line ${i}`);
  });
  expected.push({
    line: lineBase + hugeIndex,
    offset: (spans[hugeIndex] as LineSpan).start,
    partition: owner[hugeIndex] as number,
    kind: "10 MB line",
    reason: HUGE_REASON,
  });
  expected.sort((x, y) => x.offset - y.offset);
  const spoiledBytes = assemble(lines, terminators);
  assert.equal(spoiledBytes.length, bytes.length, "spoiling moved a boundary");

  const dropped = new Set([...targets, hugeIndex]);
  const keep = lines.map((_, i) => i).filter((i) => !dropped.has(i));
  const base = path.join(root.dir, `${path.basename(source)}.poisoned`);
  const file = `${base}.${format}`;
  const clean = `${base}-clean.${format}`;
  await writeFile(file, spoiledBytes);
  await writeFile(
    clean,
    assemble(
      keep.map((i) => lines[i] as Buffer),
      keep.map((i) => terminators[i] as string),
    ),
  );
  const goodRows = keep.filter((i) => (lines[i] as Buffer).length > 0).length;
  return { file, clean, expected, goodRows, partitions: ranges.length };
}

describe("poison records", () => {
  const spec = { partitionBytes: 256 * 1024, checkpointEvery: 400, batchSize: 128 };

  async function scoreBoth(poison: PoisonFile, name: string) {
    const { job, split } = await runJob({
      dataDir: path.join(root.dir, name),
      inputFile: poison.file,
      descriptor,
      spec,
    });
    const { job: cleanJob } = await runJob({
      dataDir: path.join(root.dir, `${name}-clean`),
      inputFile: poison.clean,
      descriptor,
      spec,
    });
    assert.equal(split.partitions, poison.partitions);
    assert.equal(cleanJob.state, "completed", cleanJob.error);
    return {
      job,
      out: await readOutputs(path.join(root.dir, name), job),
      clean: await readOutputs(path.join(root.dir, `${name}-clean`), cleanJob),
      ...(await finished(path.join(root.dir, name), job)),
    };
  }

  function assertEachInErrors(
    errorRows: Awaited<ReturnType<typeof readOutputs>>["errorRows"],
    expected: PoisonFile["expected"],
  ) {
    assert.deepEqual(
      errorRows.map((e) => [e.line, e.offset, e.partition]),
      expected.map((e) => [e.line, e.offset, e.partition]),
      "errors output: line, offset and partition of each spoiled record, in input order",
    );
    errorRows.forEach((e, i) => {
      const want = expected[i] as PoisonFile["expected"][number];
      assert.match(e.reason, want.reason, `line ${e.line} (${want.kind})`);
      if (want.key !== undefined) {
        assert.equal(Object.values(e.key ?? {})[0], want.key, `key of line ${e.line}`);
      }
      if (want.kind === "10 MB line") assert.equal(e.record, null, "a huge line is never buffered");
      else assert.equal(typeof e.record, "string", `line ${e.line} carries its text`);
    });
  }

  it("CSV: each spoiled record is in the errors with its line and reason; the rest equals a clean run", async () => {
    const poison = await poisonFile(
      await customerCsv(root.dir, 16_000, 91),
      "csv",
      spec.partitionBytes,
    );
    const { job, out, clean, verified, manifest } = await scoreBoth(poison, "csv-poison");
    assert.equal(job.state, "completed", job.error);
    assertEachInErrors(out.errorRows, poison.expected);
    assert.equal(out.rows.length, poison.goodRows);
    assert.equal(out.predictions, clean.predictions, "scores differ from the clean run");
    assert.ok(verified && !(verified instanceof Error), String(verified));
    assert.ok((verified as { ok: boolean }).ok, JSON.stringify(verified));
    assert.deepEqual(
      [(verified as { scored: number }).scored, (verified as { errors: number }).errors],
      [poison.goodRows, poison.expected.length],
    );
    assert.deepEqual(
      [manifest.counts.records, manifest.counts.errors],
      [poison.goodRows, poison.expected.length],
    );
  });

  it("JSONL: the same, with broken JSON, non-objects, wrong types and invalid UTF-8", async () => {
    const source = path.join(root.dir, "customers.jsonl");
    await writeDataset({ kind: "customers", rows: 5000, seed: 92, format: "jsonl", out: source });
    const poison = await poisonFile(source, "jsonl", spec.partitionBytes);
    const { job, out, clean, verified } = await scoreBoth(poison, "jsonl-poison");
    assert.equal(job.state, "completed", job.error);
    assertEachInErrors(out.errorRows, poison.expected);
    assert.equal(out.predictions, clean.predictions, "scores differ from the clean run");
    assert.ok((verified as { ok: boolean }).ok, JSON.stringify(verified));
    assert.equal((verified as { scored: number }).scored, poison.goodRows);
  });

  it("past errorThreshold the job fails with ERROR_THRESHOLD_EXCEEDED and publishes no scores", async () => {
    // "Nothing half-written", from the merger: a failed job writes no predictions
    // object (its parts stay staged under parts/, never merged), and what it does
    // write — errors.jsonl, manifest.json, report.html — is whole and says failed.
    const poison = await poisonFile(
      await customerCsv(root.dir, 16_000, 91),
      "csv",
      spec.partitionBytes,
    );
    const dataDir = path.join(root.dir, "threshold");
    const { job } = await runJob({
      dataDir,
      inputFile: poison.file,
      descriptor,
      spec: { ...spec, errorThreshold: { maxCount: 3 } },
    });
    assert.equal(job.state, "failed");
    assert.match(job.error ?? "", /^\d+ bad records exceed errorThreshold\.maxCount 3/);
    const { manifest, completions, outputs } = await finished(dataDir, job);
    assert.equal(completions.length, 1);
    const data = completions[0]?.data as Record<string, unknown>;
    assert.equal(data.status, "failed");
    assert.equal(data.errorCode, "ERROR_THRESHOLD_EXCEEDED");
    assert.equal(data.output, undefined, "a failed job announces no output");
    validateCompletion(completions[0]);
    assert.equal(manifest.status, "failed");
    assert.equal(manifest.errorCode, "ERROR_THRESHOLD_EXCEEDED");
    assert.equal(manifest.output, undefined);
    assert.deepEqual(
      outputs.filter((o) => !o.startsWith("parts/")),
      ["errors.jsonl", "manifest.json", "report.html"],
    );
    // The errors it did write are whole: each is a spoiled record, and the checksum holds.
    const out = await readOutputs(dataDir, job);
    assert.ok(out.errorRows.length > 3);
    const spoiled = new Map(poison.expected.map((e) => [e.offset, e]));
    for (const e of out.errorRows) {
      assert.equal(
        e.line,
        spoiled.get(e.offset)?.line,
        `error at offset ${e.offset} is not a spoiled record`,
      );
    }
    assert.equal(manifest.errorsOutput.bytes, Buffer.byteLength(out.errors));
  });
});

// ---------------------------------------------------------------------------------------
// Poison partitions

describe("poison partitions", () => {
  it("a model onnxruntime fails on: retried, dead-lettered, completed_with_errors; a changed model is refused, a new job with the fixed one completes", async () => {
    const modelDir = path.join(root.dir, "poison-model");
    const model = await writeChurnLikeModel({
      dir: modelDir,
      churnDescriptor: descriptor,
      failWhenAgeAbove: 95,
    });
    // An age of 98 in three consecutive batches of one partition: each makes onnxruntime throw.
    const source = await customerCsv(root.dir, 6000, 93);
    const original = await readFile(source);
    const rows = original.toString("latin1").split("\n");
    const partitionBytes = 128 * 1024;
    const batchSize = 128;
    const dataStart = original.indexOf(0x0a) + 1;
    const ranges = planPartitions(dataStart, original.length, partitionBytes);
    const spans = lineSpans(original, dataStart);
    const bad = ownerOf(ranges, (spans[3000] as LineSpan).start);
    const firstOwned = spans.findIndex((l) => ownerOf(ranges, l.start) === bad);
    // Data line i is rows[i + 1]; same-length edits keep every boundary where it was.
    const poisonRows = [10, 10 + batchSize, 10 + 2 * batchSize].map((k) => firstOwned + k + 1);
    for (const r of poisonRows) {
      // Generated ages are 18..90; 98 is over the model's limit of 95.
      const edited = (rows[r] as string).replace(/^(C\d+),\d\d,/, "$1,98,");
      assert.notEqual(edited, rows[r], `row ${r} has no two-digit age`);
      rows[r] = edited;
    }
    const input = path.join(root.dir, "aged.csv");
    await writeFile(input, rows.join("\n"), "latin1");
    const dataDir = path.join(root.dir, "poison-model-run");
    const jobSpec = { partitionBytes, checkpointEvery: 500, batchSize, maxAttempts: 2 };
    const { job } = await runJob({ dataDir, inputFile: input, descriptor: model, spec: jobSpec });
    const records = rows.filter(Boolean).length - 1;

    assert.equal(job.state, "completed_with_errors", job.error);
    assert.deepEqual(job.result?.failedPartitions, [bad]);
    assert.match(job.error ?? "", new RegExp(`partition ${bad} failed after 2 attempts`));
    const first = await finished(dataDir, job);
    const row = first.partitions[bad];
    assert.equal(row?.state, "failed");
    // Two real inference failures (not crashes: a rejected batch behind the failing one is handled).
    assert.deepEqual(
      row?.attempts.map((a) => a.outcome),
      ["error", "error"],
    );
    for (const a of row?.attempts ?? [])
      assert.match(a.detail ?? "", /INFERENCE_FAILED: .*Gather.*out of data bounds/);
    assert.match(
      row?.lastError ?? "",
      /^gave up after 2 failed attempts \(maxAttempts 2\); last error: INFERENCE_FAILED/,
    );
    assert.deepEqual(
      first.deadLetters
        .map((d) => JSON.parse(d.body) as { partition: number })
        .map((b) => b.partition),
      [bad],
    );
    assert.match(first.deadLetters[0]?.reason ?? "", /gave up after 2 failed attempts/);
    assert.deepEqual(
      first.failedEvents.map((e) => e.data.partition),
      [bad],
    );
    assert.deepEqual(
      first.completions.map((e) => [e.data.status, e.data.failedPartitions]),
      [["completed_with_errors", [bad]]],
    );
    assert.ok(first.partitions.every((p, i) => i === bad || p.state === "done"));
    const partial = first.verified as Awaited<ReturnType<typeof verifyJob>>;
    assert.ok(partial.ok, JSON.stringify(partial.checks));
    assert.ok(partial.inFailedPartitions > 0);
    assert.equal(partial.scored + partial.inFailedPartitions, records);

    // The fix: the good model at the same location. The job id pins the model's
    // sha256, so `rerun --failed` must not score the rest of the job with it:
    // the partition is refused again, and nothing from the new model is merged.
    const goodModel = await writeChurnLikeModel({ dir: modelDir, churnDescriptor: descriptor });
    assert.equal(goodModel, model);
    const p = openLocalPipeline(dataDir, { log: silentLogger });
    try {
      await rerunFailedPartitions(p, job.jobId);
      await new PartitionWorker(p, {
        workerId: "rerun",
        receiveWaitSeconds: 0,
        scorer: { thread: false },
      }).run({
        untilIdle: true,
      });
      const again = (await p.checkpoints.getJob(job.jobId))?.value;
      assert.equal(again?.state, "completed_with_errors");
      assert.equal(again?.runAttempt, 2);
      const refused = (await p.checkpoints.getPartition(job.jobId, bad))?.value;
      assert.match(
        refused?.lastError ?? "",
        /INVALID_MODEL: model .* changed since job .* was created/,
      );
      const stillPartial = await verifyJob(p, again as JobRecord);
      assert.ok(stillPartial.ok, JSON.stringify(stillPartial.checks));
      assert.equal(stillPartial.scored, partial.scored);
    } finally {
      p.close();
    }

    // The way back for a model fix is a new job (same input, the fixed model): it completes.
    const fixed = await runJob({ dataDir, inputFile: input, descriptor: model, spec: jobSpec });
    assert.notEqual(fixed.job.jobId, job.jobId);
    assert.equal(fixed.job.state, "completed", fixed.job.error);
    const whole = (await finished(dataDir, fixed.job)).verified as Awaited<
      ReturnType<typeof verifyJob>
    >;
    assert.ok(whole.ok && whole.scored === records, JSON.stringify(whole));
    // The poisoned graph only ever added 0: its scores for the other partitions are the fixed model's.
    const before = await readOutputs(dataDir, job);
    const afterFix = await readOutputs(dataDir, fixed.job);
    const firstBadId = (rows[poisonRows[0] as number] as string).split(",")[0];
    const beforeRows = new Set(before.rows);
    const missing = afterFix.rows.filter((r) => !beforeRows.has(r));
    assert.equal(missing.length, partial.inFailedPartitions);
    assert.ok(missing.some((r) => r.includes(`"${firstBadId}"`)));
  });

  it("a record that kills its worker every time: the partition is dead-lettered after maxAttempts, the others complete; rerun --failed with a fixed worker completes the job", async () => {
    const source = await customerCsv(root.dir, 6000, 94);
    const original = await readFile(source);
    const rows = original.toString("latin1").split("\n");
    const jobSpec = {
      partitionBytes: 128 * 1024,
      checkpointEvery: 300,
      batchSize: 128,
      maxAttempts: 2,
    };
    const dataStart = original.indexOf(0x0a) + 1;
    const ranges = planPartitions(dataStart, original.length, jobSpec.partitionBytes);
    const spans = lineSpans(original, dataStart);
    const bad = ownerOf(ranges, (spans[2500] as LineSpan).start);
    const owned = spans.flatMap((l, i) => (ownerOf(ranges, l.start) === bad ? [i] : []));
    // A record well inside its partition (no neighbour reads past it) with empty `notes`:
    // the marker goes in that free-text column, a perfectly good record otherwise.
    const middle = owned.slice(100, -100).find((i) => /,,\d$/.test(rows[i + 1] as string));
    assert.ok(middle !== undefined);
    const victimRow = middle + 1;
    const victim = rows[victimRow] as string;
    rows[victimRow] = `${victim.slice(0, -2)}${CRASH_MARKER},${victim.slice(-1)}`;
    const input = path.join(root.dir, "crashy.csv");
    await writeFile(input, rows.join("\n"), "latin1");
    const records = rows.filter(Boolean).length - 1;
    const dataDir = path.join(root.dir, "crash-run");
    const exits: { code: number | null; signal: NodeJS.Signals | null }[] = [];
    const { job } = await runJob({
      dataDir,
      inputFile: input,
      descriptor,
      spec: jobSpec,
      workerCommand: crashWorkerCommand(),
      onWorkerExit: (_m, code, signal) => {
        exits.push({ code, signal });
      },
    });

    assert.equal(job.state, "completed_with_errors", job.error);
    assert.deepEqual(job.result?.failedPartitions, [bad]);
    assert.equal(
      exits.filter((e) => e.signal === "SIGKILL").length,
      jobSpec.maxAttempts,
      `worker exits: ${JSON.stringify(exits)}`,
    );
    const first = await finished(dataDir, job);
    const row = first.partitions[bad];
    assert.equal(row?.state, "failed");
    assert.deepEqual(
      row?.attempts.map((a) => a.outcome),
      ["lost", "lost"],
    );
    assert.match(
      row?.lastError ?? "",
      /gave up after 2 failed attempts.*the worker died while processing it/,
    );
    // Delivered once per crash, then once more to the worker that gave it up.
    assert.equal(first.deadLetters.length, 1);
    assert.equal(first.deadLetters[0]?.deliveryCount, jobSpec.maxAttempts + 1);
    assert.ok(first.partitions.every((p, i) => i === bad || p.state === "done"));
    assert.deepEqual(
      first.failedEvents.map((e) => e.data.partition),
      [bad],
    );
    const partial = first.verified as Awaited<ReturnType<typeof verifyJob>>;
    assert.ok(partial.ok, JSON.stringify(partial.checks));
    assert.equal(partial.scored + partial.inFailedPartitions, records);

    // The fix: the real worker. `batch-infer rerun JOB --failed` puts the partition back and
    // drives the same job, by id, to completion.
    const code = await cliMain(["rerun", job.jobId, "--failed", "--data-dir", dataDir]);
    assert.equal(code, 0, "rerun --failed completes the job");
    const p = openLocalPipeline(dataDir, { log: silentLogger });
    const rerunJob = (await p.checkpoints.getJob(job.jobId))?.value;
    p.close();
    assert.ok(rerunJob);
    const rerun = { job: rerunJob };
    assert.equal(rerun.job.state, "completed", rerun.job.error);
    assert.equal(rerun.job.runAttempt, 2);
    const second = await finished(dataDir, rerun.job);
    const whole = second.verified as Awaited<ReturnType<typeof verifyJob>>;
    assert.ok(whole.ok && whole.scored === records, JSON.stringify(whole));
    assert.deepEqual(
      second.completions.map((e) => e.data.status),
      ["completed_with_errors", "completed"],
    );
  });
});

// ---------------------------------------------------------------------------------------
// Rejected before anything is written

describe("rejected before anything is written", () => {
  let n = 0;
  async function fresh(): Promise<LocalPipeline & SplitterDeps> {
    const p = openLocalPipeline(path.join(root.dir, `reject-${++n}`), { log: silentLogger });
    await uploadFile(p, "input", "c.csv", await customerCsv(root.dir, 200, 95));
    // As the local runner does: an onnxruntime dry run of the model before the job is created.
    return {
      ...p,
      checkModel: async (m) => (await openTabularSession(m, { thread: false })).session.close(),
    };
  }
  const spec = (extra: Partial<JobSpecInput> = {}): JobSpecInput => ({
    input: { bucket: "input", object: "c.csv" },
    output: { bucket: "output" },
    model: { descriptor },
    ...extra,
  });
  /** Models that can't be used: not ONNX, an input 5 values wide, an input under another name. */
  const unfit = { dir: "", narrow: "" };
  before(async () => {
    unfit.dir = path.join(root.dir, "unfit");
    const churn = JSON.parse(await readFile(descriptor, "utf8")) as Record<string, unknown>;
    await mkdir(unfit.dir, { recursive: true });
    await writeFile(path.join(unfit.dir, "not.onnx"), "PK\u0003\u0004 a zip file, not a model");
    await writeFile(
      path.join(unfit.dir, "not-onnx.json"),
      JSON.stringify({ ...churn, onnx: "not.onnx" }),
    );
    await writeFile(
      path.join(unfit.dir, "narrow.onnx"),
      encodeOnnxModel({
        name: "narrow",
        inputs: [{ name: "features", dims: ["batch", 5] }],
        outputs: [{ name: "probability", dims: ["batch", 1] }],
        initializers: [
          { name: "w", dims: [5, 1], data: new Float32Array(5).fill(0.1) },
          { name: "b", dims: [1], data: Float32Array.of(0) },
        ],
        nodes: [
          { opType: "Gemm", inputs: ["features", "w", "b"], outputs: ["logit"] },
          { opType: "Sigmoid", inputs: ["logit"], outputs: ["probability"] },
        ],
      }),
    );
    unfit.narrow = path.join(unfit.dir, "narrow.json");
    await writeFile(unfit.narrow, JSON.stringify({ ...churn, onnx: "narrow.onnx" }));
    await writeFile(
      path.join(unfit.dir, "renamed.json"),
      JSON.stringify({
        ...churn,
        onnx: path.join(path.dirname(descriptor), "model.onnx"),
        input: { name: "x" },
      }),
    );
  });

  it("malformed upload events and job specs: a ValidationError naming the schema path", async () => {
    const p = await fresh();
    try {
      const event = objectCreatedEvent({
        bucket: "input",
        object: "c.csv",
        etag: "e",
        eventId: "ev",
      });
      const defaults = { output: { bucket: "output" }, model: { descriptor } };
      const badEvents: [unknown, string | RegExp][] = [
        [null, "#/type"],
        ["createobject", "#/type"],
        [{}, "#/required"],
        [
          { ...event, eventType: "com.oraclecloud.objectstorage.deleteobject" },
          "#/properties/eventType/enum",
        ],
        [{ ...event, cloudEventsVersion: "1.0" }, "#/properties/cloudEventsVersion/const"],
        [
          { ...event, data: { additionalDetails: { bucketName: "input" } } },
          "#/properties/data/required",
        ],
        [
          { ...event, data: { ...event.data, additionalDetails: { bucketName: "in put" } } },
          /^#\/properties\/data\/properties\/additionalDetails/,
        ],
        [{ ...event, data: { ...event.data, resourceName: "" } }, /resourceName\/minLength$/],
      ];
      for (const [bad, schemaPath] of badEvents) {
        await assert.rejects(
          splitFromEvent(p, bad, defaults),
          isSchemaError("INVALID_EVENT", schemaPath),
        );
      }
      const badSpecs: [unknown, string | RegExp][] = [
        [undefined, "#/type"],
        [[], "#/type"],
        [{ ...spec(), input: undefined }, "#/required"],
        [spec({ batchSize: 0 }), "#/properties/batchSize/minimum"],
        [spec({ maxAttempts: 2.5 }), "#/properties/maxAttempts/type"],
        [{ ...spec(), priority: "high" }, "#/additionalProperties"],
        [spec({ output: { bucket: "output", format: "xlsx" as "csv" } }), /format\/enum$/],
        [spec({ errorThreshold: { maxFraction: 2 } }), /maxFraction\/maximum$/],
        [
          spec({ input: { bucket: "input", object: "c.txt" } }),
          "#/properties/input/properties/format",
        ],
      ];
      for (const [bad, schemaPath] of badSpecs) {
        await assert.rejects(splitJob(p, bad), isSchemaError("INVALID_SPEC", schemaPath));
      }
      await assertNothingWritten(p, "malformed events and specs");
    } finally {
      p.close();
    }
  });

  it("empty, header-only and missing objects, a file that isn't ONNX, a model that doesn't fit", async () => {
    const p = await fresh();
    try {
      await p.store.put("input", "empty.csv", "");
      await p.store.put("input", "header.csv", "customer_id,age\n");
      await p.store.put("input", "blank.jsonl", "");
      const dir = unfit.dir;
      const narrow = unfit.narrow;
      const cases: [Partial<JobSpecInput>, new (...a: never[]) => PipelineError, string, RegExp][] =
        [
          [
            spec({ input: { bucket: "input", object: "empty.csv" } }),
            PipelineError,
            "INVALID_ARGUMENT",
            /has no records \(0 bytes\)/,
          ],
          [
            spec({ input: { bucket: "input", object: "header.csv" } }),
            PipelineError,
            "INVALID_ARGUMENT",
            /has no records \(16 bytes, a header only\)/,
          ],
          [
            spec({ input: { bucket: "input", object: "blank.jsonl" } }),
            PipelineError,
            "INVALID_ARGUMENT",
            /has no records/,
          ],
          [
            spec({ input: { bucket: "input", object: "missing.csv" } }),
            NotFoundError,
            "NOT_FOUND",
            /input object input\/missing\.csv does not exist/,
          ],
          [
            spec({ model: { descriptor: path.join(dir, "nope.json") } }),
            ModelError,
            "INVALID_MODEL",
            /cannot read model descriptor/,
          ],
          [
            spec({ model: { descriptor: path.join(dir, "not-onnx.json") } }),
            ModelError,
            "INVALID_MODEL",
            /cannot load ONNX model .*not\.onnx/,
          ],
          [
            spec({ model: { descriptor: narrow } }),
            ModelError,
            "INVALID_MODEL",
            /has shape \[batch, \d+\] but the descriptor's \d+ features make \d+ values|does not accept a \[batch, \d+\] float32 "features" tensor/,
          ],
          [
            spec({ model: { descriptor: path.join(dir, "renamed.json") } }),
            ModelError,
            "INVALID_MODEL",
            /descriptor input "x" is not an input of .*; the model's inputs are \["features"\]/,
          ],
        ];
      for (const [bad, type, code, message] of cases) {
        await assert.rejects(splitJob(p, bad), (err: unknown) => {
          assert.ok(err instanceof type, `${String(err)} is not a ${type.name}`);
          assert.equal((err as PipelineError).code, code);
          assert.match((err as Error).message, message);
          return true;
        });
      }
      await assertNothingWritten(p, "unusable inputs and models");
    } finally {
      p.close();
    }
  });

  it("through the real entry point (run): a model that isn't ONNX is refused before the upload; nothing at all is written", async () => {
    const dataDir = path.join(root.dir, "reject-run");
    const dir = unfit.dir;
    await assert.rejects(
      runJob({
        dataDir,
        inputFile: await customerCsv(root.dir, 200, 95),
        descriptor: path.join(dir, "not-onnx.json"),
      }),
      /cannot load ONNX model/,
    );
    const p = openLocalPipeline(dataDir, { log: silentLogger });
    try {
      await assertNothingWritten(p, "run with a non-ONNX model");
      // `run` checks the model and the header before it stages the file: no upload, no event.
      assert.deepEqual((await p.store.list("input")).objects, []);
      assert.deepEqual(await p.eventLog.read(), []);
    } finally {
      p.close();
    }
  });
});
