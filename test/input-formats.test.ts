/**
 * Inputs people actually have: CSV with another delimiter (`;`, tab, `|`), named or
 * not by its extension, through every reader of a job (header, records with quoted
 * newlines across partition boundaries, fields, bad-record keys, verify); non-finite
 * numbers as bad records in CSV and JSON Lines alike; gzip files decompressed once
 * while `run` stages them, refused by the splitter; and a refused `run` that leaves
 * nothing behind.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import jobSpecSchema from "../events/schemas/job-spec.schema.json" with { type: "json" };
import { parseDelimiter, parseInputFormat } from "../src/cli/args.ts";
import { forUser } from "../src/cli/messages.ts";
import { InvalidArgumentError, ValidationError } from "../src/core/errors.ts";
import { deriveJobId } from "../src/core/ids.ts";
import { resolveJobSpec } from "../src/core/job-spec.ts";
import { silentLogger } from "../src/core/log.ts";
import { CSV_DELIMITERS, type JobRecord } from "../src/core/records.ts";
import { CUSTOMER_COLUMNS, type CustomerRecord, customerRecords } from "../src/model/datasets.ts";
import { loadTabularModel } from "../src/model/descriptor.ts";
import { checkColumns, createJsonlFeaturizer, delimiterHint } from "../src/model/featurizer.ts";
import { KeyBatch } from "../src/model/key-batch.ts";
import { PartitionWorker } from "../src/pipeline/partition-worker.ts";
import { splitJob } from "../src/pipeline/splitter.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import { churnModel, readOutputs, runJob, tempDir } from "./helpers/pipeline-fixture.ts";
import { assertNothingWritten } from "./helpers/poison.ts";

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;
before(async () => {
  root = await tempDir("bi-formats-");
  descriptor = await churnModel();
});
after(() => root.cleanup());

// ---------------------------------------------------------------------------------------
// Data: the same customers in every format

/** Rows whose age is a non-finite (or float32-overflowing) number, and how each is written. */
const NON_FINITE: Record<number, { csv: string; json: string }> = {
  3: { csv: "-Infinity", json: '"-Infinity"' },
  5: { csv: "inf", json: '"inf"' },
  7: { csv: "NaN", json: '"NaN"' },
  11: { csv: "1e999", json: "1e999" },
  13: { csv: "1e39", json: "1e39" },
  17: { csv: "-INF", json: '"-Infinity"' },
};

/** A customer's field as text (null: empty). */
function text(record: CustomerRecord, column: keyof CustomerRecord): string {
  const v = record[column];
  return v === null ? "" : String(v);
}

/**
 * `rows` customers as a table of texts (header first). Every 9th note gets a second
 * line holding `;`, `,`, `|`, a tab and quotes, so quoted fields span partition
 * boundaries whatever the delimiter; some ages are non-finite (NON_FINITE).
 */
function customerTable(
  rows: number,
  seed: number,
): { table: string[][]; records: CustomerRecord[] } {
  const records = [...customerRecords(seed, rows)];
  const table = [CUSTOMER_COLUMNS.map(String)];
  records.forEach((r, i) => {
    const row = CUSTOMER_COLUMNS.map((c) => text(r, c));
    if (i % 9 === 4) {
      row[CUSTOMER_COLUMNS.indexOf("notes")] =
        `${r.notes}\nfollow-up; call back, later | "ok"\tdone`;
    }
    const nonFinite = NON_FINITE[i];
    if (nonFinite) row[CUSTOMER_COLUMNS.indexOf("age")] = nonFinite.csv;
    table.push(row);
  });
  return { table, records };
}

/** RFC 4180 text with `delimiter`: a field is quoted when it holds it, a quote or a newline. */
function writeCsv(table: string[][], delimiter: string, eol = "\n"): Buffer {
  const field = (v: string) =>
    v.includes(delimiter) || /["\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
  return Buffer.from(`${table.map((row) => row.map(field).join(delimiter)).join(eol)}${eol}`);
}

/** The same customers as JSON Lines, non-finite ages written as JSON allows (strings, 1e999). */
function writeJsonl(table: string[][], records: CustomerRecord[]): Buffer {
  const lines = records.map((r, i) => {
    const notes = table[i + 1]?.[CUSTOMER_COLUMNS.indexOf("notes")] ?? "";
    let line = JSON.stringify({ ...r, notes });
    const nonFinite = NON_FINITE[i];
    if (nonFinite) line = line.replace(/"age":[^,]*,/, `"age":${nonFinite.json},`);
    return line;
  });
  return Buffer.from(`${lines.join("\n")}\n`);
}

/** One job scored in-process (small partitions, so boundaries fall inside quoted fields). */
async function scoreInProcess(
  name: string,
  bytes: Buffer,
  input: { format?: "csv" | "tsv" | "jsonl"; delimiter?: ";" | "\t" | "|" | "," } = {},
) {
  const dataDir = path.join(root.dir, `inproc-${name.replace(/\W/g, "_")}`);
  const p = openLocalPipeline(dataDir, { log: silentLogger });
  try {
    await p.store.put("input", name, bytes);
    const { jobId, partitions } = await splitJob(p, {
      input: { bucket: "input", object: name, ...input },
      output: { bucket: "output" },
      model: { descriptor },
      partitionBytes: 2048,
      checkpointEvery: 37,
      batchSize: 50,
    });
    await new PartitionWorker(p, {
      workerId: "w",
      receiveWaitSeconds: 0,
      scorer: { thread: false },
    }).run({ untilIdle: true });
    const job = (await p.checkpoints.getJob(jobId))?.value as JobRecord;
    assert.equal(job.state, "completed", job.error);
    const verified = await verifyJob(p, job);
    assert.ok(verified.ok, `${name}: ${JSON.stringify(verified.checks)}`);
    const outputs = await readOutputs(dataDir, job);
    const errors = outputs.errors
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { line: number; reason: string; key?: Record<string, string> });
    return { job, partitions, predictions: outputs.predictions, errors };
  } finally {
    p.close();
  }
}

// ---------------------------------------------------------------------------------------

describe("the delimiter in the job spec", () => {
  const spec = (input: Record<string, unknown>) => ({
    input: { bucket: "in", ...input },
    output: { bucket: "out" },
    model: { descriptor: "d.json" },
  });
  const rejects = (input: Record<string, unknown>, at: string, message: RegExp) =>
    assert.throws(
      () => resolveJobSpec(spec(input)),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError, String(err));
        assert.equal(err.details.instancePath, at);
        assert.match(err.schemaPath, /^#\/properties\/input\/properties\//);
        assert.match(err.message, message);
        return true;
      },
    );

  it(".tsv and format tsv are tab-separated CSV; a comma is not recorded, so it is the same job", () => {
    assert.deepEqual(resolveJobSpec(spec({ object: "a.tsv" })).input, {
      bucket: "in",
      object: "a.tsv",
      format: "csv",
      delimiter: "\t",
    });
    assert.equal(resolveJobSpec(spec({ object: "a.TAB" })).input.delimiter, "\t");
    assert.deepEqual(
      resolveJobSpec(spec({ object: "a.txt", format: "tsv" })).input,
      resolveJobSpec(spec({ object: "a.txt", format: "csv", delimiter: "\t" })).input,
    );
    const plain = resolveJobSpec(spec({ object: "a.csv" }));
    const comma = resolveJobSpec(spec({ object: "a.csv", delimiter: "," }));
    assert.deepEqual(comma, plain);
    const id = (s: unknown) =>
      deriveJobId({ bucket: "in", object: "a.csv", etag: "e", modelSha256: "m", spec: s });
    assert.equal(id(comma), id(plain));
    assert.equal(resolveJobSpec(spec({ object: "a.csv", delimiter: ";" })).input.delimiter, ";");
  });

  it("is validated with ajv, failing with the schema path; the schema lists the delimiters the code takes", () => {
    assert.throws(
      () => resolveJobSpec(spec({ object: "a.csv", delimiter: ";;" })),
      (err: unknown) =>
        err instanceof ValidationError &&
        err.schemaPath === "#/properties/input/properties/delimiter/enum" &&
        /job spec invalid at \/input\/delimiter: must be one of/.test(err.message),
    );
    assert.deepEqual(jobSpecSchema.properties.input.properties.delimiter.enum, [...CSV_DELIMITERS]);
    rejects(
      { object: "a.jsonl", delimiter: ";" },
      "/input/delimiter",
      /is for CSV input, and this input is jsonl/,
    );
    rejects(
      { object: "a.csv", format: "tsv", delimiter: ";" },
      "/input/delimiter",
      /format "tsv" is tab-separated/,
    );
    rejects(
      { object: "a.txt" },
      "/input/format",
      /name it \.csv, \.tsv, \.jsonl or \.parquet, or say it \(--format csv\|tsv\|jsonl\|parquet; input\.format in a job spec\)/,
    );
    // A delimiter alone says CSV.
    assert.equal(resolveJobSpec(spec({ object: "a.txt", delimiter: "|" })).input.format, "csv");
    // At the CLI the field is named by its flag.
    assert.match(
      forUser('job spec invalid at /input/format: cannot tell the input format of "a.txt"'),
      /^--format: job spec invalid at \/input\/format/,
    );
  });

  it("a gzip object is refused with what to do instead, not as a naming problem", () => {
    assert.throws(
      () => resolveJobSpec(spec({ object: "big.csv.gz" })),
      (err: unknown) =>
        err instanceof InvalidArgumentError &&
        !err.retryable &&
        /in\/big\.csv\.gz is gzip-compressed: a gzip stream can't be split into byte ranges.*batch-infer run --input FILE\.gz/.test(
          err.message,
        ),
    );
  });

  it("--format and --delimiter take what people type", () => {
    assert.equal(parseInputFormat("TSV"), "tsv");
    assert.throws(
      () => parseInputFormat("xml"),
      /--format must be one of csv, tsv, jsonl, parquet/,
    );
    for (const [typed, want] of [
      [";", ";"],
      ["tab", "\t"],
      ["\\t", "\t"],
      ["\t", "\t"],
      ["semicolon", ";"],
      ["PIPE", "|"],
      ["\\x01", "\u0001"],
      ["\\u001f", "\u001f"],
      ["space", " "],
    ] as const) {
      assert.equal(parseDelimiter(typed), want, typed);
    }
    for (const bad of ["ab", "", '"', "\\n", "a"]) {
      assert.throws(() => parseDelimiter(bad), /--delimiter must be one character of/, bad);
    }
  });

  it("a missing column whose header holds another delimiter says the delimiter is probably wrong", async () => {
    const model = await loadTabularModel(descriptor);
    const header = CUSTOMER_COLUMNS.map(String);
    assert.throws(
      () => checkColumns(model.descriptor, ["customer_id"], [header.join(";")]),
      /feature column "age" is not in the input; its columns are: customer_id;age;.*The header holds ';': the file is probably separated by ';', not ','; set --delimiter ';'/,
    );
    assert.throws(
      () => checkColumns(model.descriptor, [], [header.join("\t")], ";"),
      /separated by tabs, not ';'; set --delimiter tab/,
    );
    assert.throws(
      () => checkColumns(model.descriptor, [], [header.join(",")], ";"),
      /separated by ',', not ';'; set --delimiter ','/,
    );
    // A header that really lacks the column says nothing about delimiters.
    assert.equal(delimiterHint(["id", "amount"], ","), "");
    assert.equal(delimiterHint(["id", "a;b", "c"], ","), "");
  });
});

describe("non-finite numbers are bad records, in CSV and JSON Lines alike", () => {
  it("NaN, ±Infinity, 1e999 and values past float32 get a reason; an empty value takes `missing`", async () => {
    const model = await loadTabularModel(descriptor);
    const fz = createJsonlFeaturizer(model.descriptor, []);
    const out = new Float32Array(fz.width);
    const reason = (age: string) => {
      const line = Buffer.from(`{"age":${age}}`);
      return fz.featurize(line, 0, line.length, out, 0, new KeyBatch());
    };
    assert.match(reason('"-Infinity"') ?? "", /^field age: "-Infinity" is not a finite number/);
    assert.match(reason("1e999") ?? "", /^field age: "Infinity" is not a finite number/);
    assert.match(reason('"nan"') ?? "", /^field age: "nan" is not a finite number/);
    assert.match(reason("1e39") ?? "", /^field age: "1e\+39" is beyond float32's range/);
    assert.match(reason('"forty"') ?? "", /^field age: "forty" is not a number$/);
  });
});

describe("CSV with another delimiter through every reader of a job", () => {
  const { table, records } = customerTable(400, 77);
  let baseline: Awaited<ReturnType<typeof scoreInProcess>>;
  before(async () => {
    baseline = await scoreInProcess("customers.csv", writeCsv(table, ","));
  });

  it("';', tab (.tsv) and '|' (.txt with --format) score exactly as the comma file", async () => {
    assert.ok(baseline.partitions > 10, `${baseline.partitions} partitions`);
    assert.equal(baseline.job.input.delimiter, ",");
    assert.equal(baseline.job.spec.input.delimiter, undefined);
    const cases = [
      { name: "customers-semi.csv", delimiter: ";", input: { delimiter: ";" as const } },
      { name: "customers.tsv", delimiter: "\t", input: {} },
      {
        name: "customers.txt",
        delimiter: "|",
        input: { format: "csv" as const, delimiter: "|" as const },
      },
    ];
    for (const c of cases) {
      const eol = c.delimiter === "|" ? "\r\n" : "\n";
      const got = await scoreInProcess(c.name, writeCsv(table, c.delimiter, eol), c.input);
      assert.equal(got.job.input.delimiter, c.delimiter, c.name);
      assert.equal(got.job.spec.input.delimiter, c.delimiter, c.name);
      assert.equal(got.predictions, baseline.predictions, `${c.name}: predictions`);
      const strip = (e: { line: number; reason: string; key?: Record<string, string> }) => [
        e.line,
        e.reason,
        e.key,
      ];
      assert.deepEqual(got.errors.map(strip), baseline.errors.map(strip), `${c.name}: errors`);
    }
  });

  it("each non-finite age is a bad record with its reason; none is scored", () => {
    const byKey = new Map(baseline.errors.map((e) => [e.key?.customer_id, e.reason]));
    for (const [i, v] of Object.entries(NON_FINITE)) {
      const id = records[Number(i)]?.customer_id;
      const reason = byKey.get(id) ?? "";
      if (v.csv === "1e39") assert.match(reason, /^column age: "1e39" is beyond float32's range/);
      else assert.match(reason, new RegExp(`^column age: "${v.csv}" is not a finite number`));
      assert.ok(!baseline.predictions.includes(`"${id}"`), `${id} was scored`);
    }
  });

  it("JSON Lines of the same customers: the same scores and the same bad records", async () => {
    const got = await scoreInProcess("customers.jsonl", writeJsonl(table, records));
    assert.equal(got.predictions, baseline.predictions);
    const nonFinite = new Set(Object.keys(NON_FINITE).map((i) => records[Number(i)]?.customer_id));
    const reasons = (errors: typeof got.errors) =>
      new Map(
        errors.map((e) => {
          const id = e.key?.customer_id;
          // The value is quoted as each format wrote it (1e999 is Infinity once parsed).
          const reason = e.reason.replace(/^field /, "column ");
          return [id, nonFinite.has(id) ? reason.replace(/"[^"]*"/, "VALUE") : reason];
        }),
      );
    assert.deepEqual(reasons(got.errors), reasons(baseline.errors));
  });
});

describe("gzip inputs", () => {
  const { table } = customerTable(300, 91);
  const csv = writeCsv(table, ",");

  /** Nothing at all in the data dir's stores, and no decompressed copy left over. */
  async function assertNothingStaged(dataDir: string, what: string) {
    const p = openLocalPipeline(dataDir, { log: silentLogger });
    try {
      await assertNothingWritten(p, what);
      assert.deepEqual((await p.store.list("input")).objects, [], `${what}: an input was staged`);
      assert.deepEqual(await p.eventLog.read(), [], `${what}: an event was logged`);
    } finally {
      p.close();
    }
    const temp = path.join(dataDir, "state", "gunzip");
    if (existsSync(temp)) assert.deepEqual(await readdir(temp), [], `${what}: a copy was left`);
  }

  it("run decompresses a .csv.gz once into the input bucket; the plain file is then the same job", async () => {
    const dataDir = path.join(root.dir, "gz-run");
    const gz = path.join(root.dir, "customers.csv.gz");
    const plain = path.join(root.dir, "customers.csv");
    await writeFile(gz, gzipSync(csv));
    await writeFile(plain, csv);
    const first = await runJob({ dataDir, inputFile: gz, descriptor, workers: 1 });
    assert.equal(first.job.state, "completed");
    assert.match(first.job.input.object, /^[0-9a-f]{16}\/customers\.csv$/);
    const staged = path.join(dataDir, "buckets", "input", first.job.input.object);
    assert.deepEqual(await readFile(staged), csv);
    assert.equal((await stat(staged)).nlink, 1, "the decompressed copy is a file of its own");
    assert.deepEqual(await readdir(path.join(dataDir, "state", "gunzip")), []);
    const again = await runJob({ dataDir, inputFile: plain, descriptor, workers: 1 });
    assert.equal(again.split.created, false);
    assert.equal(again.job.jobId, first.job.jobId);
    // And the gzip file again: its decompressed hash is remembered, nothing is decompressed.
    const third = await runJob({ dataDir, inputFile: gz, descriptor, workers: 1 });
    assert.equal(third.job.jobId, first.job.jobId);
    const outputs = await readOutputs(dataDir, first.job);
    assert.equal(outputs.rows.length + outputs.errors.split("\n").filter(Boolean).length, 300);
  });

  it(".jsonl.gz and .tsv.gz are read as what they hold", async () => {
    const dataDir = path.join(root.dir, "gz-kinds");
    const tsv = path.join(root.dir, "customers.tsv.gz");
    await writeFile(tsv, gzipSync(writeCsv(table, "\t")));
    const got = await runJob({ dataDir, inputFile: tsv, descriptor, workers: 1 });
    assert.equal(got.job.state, "completed");
    assert.equal(got.job.input.delimiter, "\t");
    const jsonl = path.join(root.dir, "customers.jsonl.gz");
    const records = [...customerRecords(91, 300)];
    await writeFile(jsonl, gzipSync(writeJsonl(table, records)));
    const j = await runJob({ dataDir, inputFile: jsonl, descriptor, workers: 1 });
    assert.equal(j.job.input.format, "jsonl");
    assert.equal(
      (await readOutputs(dataDir, j.job)).predictions,
      (await readOutputs(dataDir, got.job)).predictions,
    );
  });

  it("a truncated or corrupt gzip file is refused with a clear error; nothing is staged, scored or logged", async () => {
    // Big enough that the header check (the first 1 MiB decompressed) passes and the
    // failure comes while staging, past the head.
    const big = writeCsv(customerTable(16000, 92).table, ",");
    const gz = gzipSync(big);
    assert.ok(big.length > 1.3 * 1024 * 1024, `${big.length} bytes`);
    const cases: [string, Buffer][] = [
      ["truncated-late.csv.gz", gz.subarray(0, Math.floor(gz.length * 0.8))],
      ["truncated-early.csv.gz", gzipSync(csv).subarray(0, 200)],
      [
        "corrupt.csv.gz",
        (() => {
          const bad = Buffer.from(gzipSync(csv));
          bad.writeUInt32LE(bad.readUInt32LE(bad.length - 8) ^ 0xffff, bad.length - 8); // CRC32
          return bad;
        })(),
      ],
    ];
    for (const [name, bytes] of cases) {
      const file = path.join(root.dir, name);
      await writeFile(file, bytes);
      const dataDir = path.join(root.dir, `bad-${name}`);
      await assert.rejects(
        runJob({ dataDir, inputFile: file, descriptor, workers: 1 }),
        (err: unknown) => {
          assert.ok(err instanceof InvalidArgumentError, String(err));
          assert.match(
            err.message,
            new RegExp(
              `input file .*${name.replaceAll(".", "\\.")} is not a complete gzip file \\(.*\\); nothing was staged or scored`,
            ),
          );
          return true;
        },
        name,
      );
      await assertNothingStaged(dataDir, name);
    }
    const fake = path.join(root.dir, "fake.csv.gz");
    await writeFile(fake, csv);
    const dataDir = path.join(root.dir, "bad-fake");
    await assert.rejects(
      runJob({ dataDir, inputFile: fake, descriptor, workers: 1 }),
      /is named \.gz but is not gzip data/,
    );
    await assertNothingStaged(dataDir, "fake gzip");
  });

  it("the splitter refuses a gzip object (by name or by its bytes): it can't be split by byte ranges", async () => {
    const p = openLocalPipeline(path.join(root.dir, "gz-split"), { log: silentLogger });
    try {
      await p.store.put("input", "c.csv.gz", gzipSync(csv));
      await p.store.put("input", "hidden.csv", gzipSync(csv));
      for (const [object, format] of [
        ["c.csv.gz", undefined],
        ["c.csv.gz", "csv"],
        ["hidden.csv", undefined],
      ] as const) {
        await assert.rejects(
          splitJob(p, {
            input: { bucket: "input", object, ...(format ? { format } : {}) },
            output: { bucket: "output" },
            model: { descriptor },
          }),
          (err: unknown) =>
            err instanceof InvalidArgumentError &&
            !err.retryable &&
            err.message.includes(`input object input/${object} is gzip-compressed`),
        );
      }
      await assertNothingWritten(p, "gzip objects");
    } finally {
      p.close();
    }
  });
});

describe("a refused run writes nothing", () => {
  it("a header without the model's columns (a ';' file read at commas): no object, no event, no job", async () => {
    const { table } = customerTable(50, 93);
    const file = path.join(root.dir, "semi.csv");
    await writeFile(file, writeCsv(table, ";"));
    const dataDir = path.join(root.dir, "refused-header");
    await assert.rejects(
      runJob({ dataDir, inputFile: file, descriptor, workers: 1 }),
      /feature column "age" is not in the input.*probably separated by ';'.*--delimiter ';'/,
    );
    const txt = path.join(root.dir, "semi.txt");
    await writeFile(txt, writeCsv(table, ";"));
    await assert.rejects(
      runJob({ dataDir, inputFile: txt, descriptor, workers: 1 }),
      /cannot tell the input format of "semi\.txt"/,
    );
    const p = openLocalPipeline(dataDir, { log: silentLogger });
    try {
      await assertNothingWritten(p, "refused header");
      assert.deepEqual((await p.store.list("input")).objects, []);
      assert.deepEqual(await p.eventLog.read(), []);
    } finally {
      p.close();
    }
  });
});
