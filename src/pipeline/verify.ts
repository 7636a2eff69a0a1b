import { createHash } from "node:crypto";
import type { JobRecord } from "../core/records.ts";
import type { ObjectStore } from "../ports/object-store.ts";
import { createFieldSpans, decodeField, splitCsvLine } from "../records/csv-fields.ts";
import { parseJsonLine } from "../records/jsonl.ts";
import { readOwnedLines } from "../records/line-reader.ts";
import type { PipelineDeps } from "./deps.ts";
import { jobLayout } from "./layout.ts";
import type { Manifest } from "./merger.ts";
import { csvField } from "./output-rows.ts";
import { checkOutputAgainstParts } from "./verify-parts.ts";

/** One check `verify` ran. */
export interface VerifyCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** The verdict on a finished job. */
export interface VerifyReport {
  jobId: string;
  ok: boolean;
  checks: VerifyCheck[];
  /** Input records seen, and where each went. */
  inputRecords: number;
  scored: number;
  errors: number;
  /** Records in failed partitions (neither scored nor in errors, by design). */
  inFailedPartitions: number;
}

interface Line {
  buf: Buffer;
  start: number;
  end: number;
  offset: number;
  /** Too long to read: a bad record by itself, with no preview. */
  oversize: boolean;
  /** Physical lines the record spans (CSV records may hold newlines in quotes). */
  physical: number;
}

/**
 * Every record of an object (or of [from, size)), one at a time: lines, or CSV records
 * with the limit the workers used (it decides where unterminated records end).
 */
async function* lines(
  store: ObjectStore,
  bucket: string,
  object: string,
  from = 0,
  csv?: { maxRecordBytes: number },
): AsyncGenerator<Line> {
  const info = await store.head(bucket, object);
  if (!info || info.size <= from) return;
  const source = await store.read(bucket, object, { start: from, end: info.size });
  const options = {
    from,
    fromIsRecordStart: true,
    end: info.size,
    maxLineBytes: csv ? csv.maxRecordBytes : 64 * 1024 * 1024,
    records: csv ? ("csv" as const) : ("lines" as const),
  };
  for await (const block of readOwnedLines(source, options)) {
    for (let i = 0; i < block.count; i++) {
      yield {
        buf: block.buf,
        start: block.starts[i] as number,
        end: block.ends[i] as number,
        offset: block.offsets[i] as number,
        oversize: block.oversize[i] === 1,
        physical: block.lines[i] as number,
      };
    }
  }
}

async function sha256Of(store: ObjectStore, bucket: string, object: string) {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of await store.read(bucket, object)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), bytes };
}

/** Key values of a record or an output row, as the pipeline writes them. */
function keyReader(format: "csv" | "jsonl", columns: string[], keyNames: string[]) {
  const spans = createFieldSpans(Math.max(8, columns.length + 1));
  const index = keyNames.map((k) => columns.indexOf(k));
  return (line: Line): string[] | undefined => {
    try {
      if (format === "jsonl") {
        const obj = parseJsonLine(line.buf, line.start, line.end);
        return keyNames.map((k) => {
          const v = obj[k];
          return v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
        });
      }
      if (splitCsvLine(line.buf, line.start, line.end, spans) !== "ok") return undefined;
      return index.map((i) =>
        i < 0 || i >= spans.count
          ? ""
          : decodeField(
              line.buf,
              spans.starts[i] as number,
              spans.ends[i] as number,
              spans.kinds[i] as number,
            ),
      );
    } catch {
      return undefined;
    }
  };
}

/**
 * Prove the exactly-once property of a finished job from what it left behind:
 * the manifest's checksums and counts match the outputs, and a merge-join of the
 * input (read again, in order) against the predictions and errors (both in input
 * order) finds every input record exactly once — in the predictions with its
 * keys, or in the errors at its offset — and nothing else. Memory stays constant.
 */
export async function verifyJob(deps: PipelineDeps, job: JobRecord): Promise<VerifyReport> {
  const checks: VerifyCheck[] = [];
  const check = (name: string, ok: boolean, detail: string) => {
    checks.push({ name, ok, detail });
    return ok;
  };
  const report = (extra: Partial<VerifyReport> = {}): VerifyReport => ({
    jobId: job.jobId,
    ok: checks.every((c) => c.ok),
    checks,
    inputRecords: 0,
    scored: 0,
    errors: 0,
    inFailedPartitions: 0,
    ...extra,
  });
  const layout = jobLayout(job);
  if (
    !check(
      "job finished",
      job.state === "completed" || job.state === "completed_with_errors",
      `state ${job.state}`,
    )
  ) {
    return report();
  }
  const store = deps.store;
  const manifestInfo = await store.head(layout.bucket, layout.manifest);
  if (!check("manifest present", manifestInfo !== undefined, `${layout.bucket}/${layout.manifest}`))
    return report();
  let text = "";
  for await (const c of await store.read(layout.bucket, layout.manifest))
    text += (c as Buffer).toString("utf8");
  const manifest = JSON.parse(text) as Manifest;
  check("manifest is this job's", manifest.jobId === job.jobId, `manifest says ${manifest.jobId}`);

  // What the workers committed, from the checkpoint store: the writer of the output
  // can re-sign the manifest, not rewrite the rows each worker committed.
  const partitions = await deps.checkpoints.readPartitions(job.jobId);
  const header =
    job.spec.output.format === "csv" ? `${manifest.columns.map(csvField).join(",")}\n` : "";
  const out = await checkOutputAgainstParts(
    store,
    layout.bucket,
    layout.output,
    header,
    partitions,
  );
  check("predictions as the workers committed them", out.ok, out.detail);
  check(
    "predictions checksum",
    manifest.output?.sha256 === out.sha256 && manifest.output.bytes === out.bytes,
    `sha256 ${out.sha256.slice(0, 16)}…, ${out.bytes} bytes (manifest: ${manifest.output?.sha256.slice(0, 16)}…, ${manifest.output?.bytes})`,
  );
  check(
    "predictions match the job record",
    job.result?.output.sha256 === out.sha256,
    `job record: sha256 ${job.result?.output.sha256.slice(0, 16)}…`,
  );
  const errs = await sha256Of(store, layout.bucket, layout.errors);
  check(
    "errors checksum",
    manifest.errorsOutput.sha256 === errs.sha256 &&
      (job.result?.errorsOutput.sha256 === undefined ||
        job.result.errorsOutput.sha256 === errs.sha256),
    `sha256 ${errs.sha256.slice(0, 16)}… (manifest: ${manifest.errorsOutput.sha256.slice(0, 16)}…${job.result?.errorsOutput.sha256 ? `, job record: ${job.result.errorsOutput.sha256.slice(0, 16)}…` : ""})`,
  );

  const input = await store.head(job.input.bucket, job.input.object);
  if (
    !check(
      "input unchanged",
      input?.etag === job.input.etag,
      `etag now ${input?.etag ?? "(missing)"}, job ${job.input.etag}`,
    )
  ) {
    return report();
  }

  // Merge-join: input records against predictions and errors, all in input order.
  const keyNames = job.keyNames ?? [];
  const keysOk = keyNames.length > 0;
  const keysDetail = keysOk
    ? `output rows keyed by ${keyNames.join(", ")}`
    : "jobs created before key columns were recorded can't be verified: run the job again";
  if (!check("job records its key columns", keysOk, keysDetail)) {
    return report();
  }
  const offsetKeys = keyNames.length === 1 && keyNames[0] === "_offset";
  const inputKeys = keyReader(job.input.format, job.input.columns, offsetKeys ? [] : keyNames);
  const outputKeys = keyReader(job.spec.output.format, manifest.columns, keyNames);
  // Unscored ranges come from the checkpoint store too, not from the manifest.
  const failed = partitions
    .filter((p) => p.state === "failed")
    .map((p) => [p.start, p.end] as const);
  // CSV output quotes keys that hold newlines: read it as CSV records.
  const outIt = lines(
    store,
    layout.bucket,
    layout.output,
    0,
    job.spec.output.format === "csv" ? { maxRecordBytes: 64 * 1024 * 1024 } : undefined,
  );
  const errIt = lines(store, layout.bucket, layout.errors);
  if (job.spec.output.format === "csv") await outIt.next(); // header
  let nextOut = await outIt.next();
  let nextErr = await errIt.next();
  type ErrorRow = { offset: number; line: number | null; record: string | null };
  const errRow = (l: Line) => JSON.parse(l.buf.toString("utf8", l.start, l.end)) as ErrorRow;
  // The input line of the record in hand (the CSV header is line 1).
  let lineNo =
    job.input.format === "csv" && job.input.dataStart > 0 ? (job.input.headerLines ?? 1) : 0;
  let inputRecords = 0;
  let scored = 0;
  let errors = 0;
  let inFailed = 0;
  let problem: string | undefined;
  for await (const rec of lines(
    store,
    job.input.bucket,
    job.input.object,
    job.input.dataStart,
    job.input.csvRecords,
  )) {
    // The record's line is its first physical line.
    const recordLine = lineNo + 1;
    lineNo += rec.physical;
    if (
      !rec.oversize &&
      (rec.end === rec.start || (rec.end - rec.start === 1 && rec.buf[rec.start] === 13))
    )
      continue;
    inputRecords++;
    if (failed.some(([s, e]) => rec.offset >= s && rec.offset < e)) {
      inFailed++;
      continue;
    }
    const e = nextErr.done ? undefined : errRow(nextErr.value);
    if (e && e.offset === rec.offset) {
      const preview = rec.oversize
        ? null
        : rec.buf.toString("utf8", rec.start, Math.min(rec.end, rec.start + 512));
      // A record too long to preview (oversize) has no `record` in the errors row.
      if (
        (e.line !== null && e.line !== recordLine) ||
        (e.record !== null && e.record !== preview)
      ) {
        problem = `the errors row for the record at offset ${rec.offset} says line ${e.line} and record ${JSON.stringify(e.record?.slice(0, 40))}; the input has line ${recordLine}: ${JSON.stringify(preview?.slice(0, 40))}`;
        break;
      }
      errors++;
      nextErr = await errIt.next();
      continue;
    }
    if (nextOut.done) {
      problem = `input record at offset ${rec.offset} is in neither the predictions nor the errors`;
      break;
    }
    const want = offsetKeys ? [String(rec.offset)] : inputKeys(rec);
    const got = outputKeys(nextOut.value);
    if (!want || !got || want.join("\u0000") !== got.join("\u0000")) {
      problem = `input record at offset ${rec.offset} (keys ${JSON.stringify(want)}) does not match the next prediction row (keys ${JSON.stringify(got)}): a record is missing, duplicated or out of order`;
      break;
    }
    scored++;
    nextOut = await outIt.next();
  }
  if (!problem && !nextOut.done)
    problem = "the predictions have rows that match no input record (duplicates or extras)";
  if (!problem && !nextErr.done) problem = "the errors have rows that match no input record";
  await outIt.return(undefined);
  await errIt.return(undefined);
  check(
    "every input record exactly once",
    problem === undefined,
    problem ??
      `${inputRecords} input records: ${scored} scored, ${errors} in errors${
        inFailed
          ? `, ${inFailed} unscored in failed partitions ${partitions
              .filter((p) => p.state === "failed")
              .map((p) => `${p.index} [${p.start}, ${p.end})`)
              .join(", ")} (rerun ${job.jobId} --failed resumes them)`
          : ""
      }`,
  );
  if (!problem) {
    check(
      "counts match the manifest and the job record",
      scored === manifest.counts.records &&
        errors === manifest.counts.errors &&
        scored === job.result?.records &&
        errors === job.result?.errors,
      `found ${scored} scored and ${errors} bad; manifest: ${manifest.counts.records} and ${manifest.counts.errors}; job record: ${job.result?.records} and ${job.result?.errors}`,
    );
  }
  return report({ inputRecords, scored, errors, inFailedPartitions: inFailed });
}
