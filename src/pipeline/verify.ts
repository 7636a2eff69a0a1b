import { createHash } from "node:crypto";
import type { JobRecord } from "../core/records.ts";
import type { ObjectStore } from "../ports/object-store.ts";
import type { PipelineDeps } from "./deps.ts";
import { jobLayout } from "./layout.ts";
import type { Manifest } from "./manifest.ts";
import { outputHeader } from "./merge-output.ts";
import { checkOutputAgainstParts } from "./verify-parts.ts";
import { inputRecords, type Line, lines, outputKeys, parquetRowGroups } from "./verify-records.ts";

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

async function sha256Of(store: ObjectStore, bucket: string, object: string) {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of await store.read(bucket, object)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), bytes };
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
  const parquet = job.spec.output.format === "parquet";
  const out = await checkOutputAgainstParts(
    store,
    layout.bucket,
    layout.output,
    parquet ? "PAR1" : outputHeader(job, manifest.columns),
    partitions,
    { trailer: parquet },
  );
  check("predictions as the workers committed them", out.ok, out.detail);
  if (parquet) {
    // The footer (written by the merger) must describe exactly the committed parts' rows.
    const groups = await parquetRowGroups(store, layout.bucket, layout.output);
    const parts = partitions
      .filter((p) => p.state === "done")
      .flatMap((p) => p.parts.map((r) => r.records))
      .filter((n) => n > 0);
    check(
      "Parquet row groups are the committed parts",
      groups.join(",") === parts.join(","),
      `${groups.length} row groups of ${groups.reduce((a, b) => a + b, 0)} rows; the committed parts hold ${parts.length} chunks of ${parts.reduce((a, b) => a + b, 0)} rows`,
    );
  }
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
  // Unscored ranges come from the checkpoint store too, not from the manifest.
  const failed = partitions
    .filter((p) => p.state === "failed")
    .map((p) => [p.start, p.end] as const);
  // Chunked text embeddings write a row per chunk: a record's rows carry chunk 0, 1, ….
  const chunked = job.task === "text-embedding" && job.outputColumns.includes("chunk");
  const outIt = outputKeys(
    store,
    job,
    layout.bucket,
    layout.output,
    manifest.columns,
    chunked ? [...keyNames, "chunk"] : keyNames,
  );
  let chunkRows = 0;
  const errIt = lines(store, layout.bucket, layout.errors);
  let nextOut = await outIt.next();
  let nextErr = await errIt.next();
  type ErrorRow = { offset: number; line: number | null; record: string | null };
  const errRow = (l: Line) => JSON.parse(l.buf.toString("utf8", l.start, l.end)) as ErrorRow;
  // The input line of the record in hand (the CSV header is line 1; a manifest line or
  // a Parquet row counts as one).
  let lineNo =
    job.input.format === "csv" && job.input.dataStart > 0 ? (job.input.headerLines ?? 1) : 0;
  let inputRecordCount = 0;
  let scored = 0;
  let errors = 0;
  let inFailed = 0;
  let problem: string | undefined;
  for await (const rec of inputRecords(store, job, offsetKeys ? [] : keyNames)) {
    // The record's line is its first physical line.
    const recordLine = lineNo + 1;
    lineNo += rec.physical;
    if (rec.blank) continue;
    inputRecordCount++;
    if (failed.some(([s, e]) => rec.position >= s && rec.position < e)) {
      inFailed++;
      continue;
    }
    const e = nextErr.done ? undefined : errRow(nextErr.value);
    if (e && e.offset === rec.position) {
      // A record too long to preview (oversize) has no `record` in the errors row.
      if (
        (e.line !== null && e.line !== recordLine) ||
        (e.record !== null && e.record !== rec.preview)
      ) {
        problem = `the errors row for the record at position ${rec.position} says line ${e.line} and record ${JSON.stringify(e.record?.slice(0, 40))}; the input has line ${recordLine}: ${JSON.stringify(rec.preview?.slice(0, 40))}`;
        break;
      }
      errors++;
      nextErr = await errIt.next();
      continue;
    }
    if (nextOut.done) {
      problem = `input record at position ${rec.position} is in neither the predictions nor the errors`;
      break;
    }
    const want = offsetKeys ? [String(rec.position)] : rec.keys();
    const row = nextOut.value;
    const got = chunked ? row?.slice(0, -1) : row;
    if (!want || !got || want.join("\u0000") !== got.join("\u0000")) {
      problem = `input record at position ${rec.position} (keys ${JSON.stringify(want)}) does not match the next prediction row (keys ${JSON.stringify(got)}): a record is missing, duplicated or out of order`;
      break;
    }
    if (chunked && row?.at(-1) !== "0") {
      problem = `input record at position ${rec.position} (keys ${JSON.stringify(want)}): its first row is chunk ${row?.at(-1)}, not 0`;
      break;
    }
    scored++;
    nextOut = await outIt.next();
    // The record's further chunks follow it, numbered on; a repeat or a gap is a problem.
    for (let c = 1; chunked && !nextOut.done; c++) {
      const more = nextOut.value;
      if (!more || more.slice(0, -1).join("\u0000") !== want.join("\u0000")) break;
      if (more.at(-1) === "0") break; // the next record, with the same id
      if (more.at(-1) !== String(c)) {
        problem = `input record at position ${rec.position} (keys ${JSON.stringify(want)}): chunk ${more.at(-1)} where chunk ${c} was due`;
        break;
      }
      chunkRows++;
      nextOut = await outIt.next();
    }
    if (problem) break;
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
      `${inputRecordCount} input records: ${scored} scored${chunked ? ` (${scored + chunkRows} chunk rows)` : ""}, ${errors} in errors${
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
  return report({
    inputRecords: inputRecordCount,
    scored,
    errors,
    inFailedPartitions: inFailed,
  });
}
