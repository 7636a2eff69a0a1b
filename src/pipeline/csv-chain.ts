/**
 * The chaining check for CSV read as RFC 4180 records (src/records/partition-chain.ts
 * has the rule): run when every partition of a job is terminal, before the merge.
 */
import { ConflictError, describeError } from "../core/errors.ts";
import type { JobRecord, PartitionRecord } from "../core/records.ts";
import { delimiterByte } from "../records/csv-fields.ts";
import { createReadStats, openOffset, readOwnedLines } from "../records/line-reader.ts";
import { maxRecordBytes } from "../sources/line-source.ts";
import type { PipelineDeps } from "./deps.ts";
import { taskMessage } from "./messages.ts";

/**
 * Where a failed partition's records end, read from a known record start without
 * scoring anything: the next partition's records begin there.
 */
async function scanNextRecordStart(
  deps: PipelineDeps,
  job: JobRecord,
  p: PartitionRecord,
  from: number,
): Promise<number> {
  if (from >= p.end) return from;
  const stats = createReadStats();
  const options = {
    from,
    fromIsRecordStart: true,
    end: p.end,
    maxLineBytes: maxRecordBytes(job),
    records: "csv" as const,
    delimiter: delimiterByte(job.input.delimiter),
    stats,
  };
  const source = await deps.store.read(job.input.bucket, job.input.object, {
    start: openOffset(options),
    end: job.input.size,
  });
  for await (const _ of readOwnedLines(source, options)) {
    // Only the end matters.
  }
  return stats.nextRecordStart;
}

/**
 * Walk the partitions in order from the data start: a done partition must have begun
 * exactly where its predecessor's records ended (its speculated first record start was
 * right); a failed one is scanned to find where its records end. At the first
 * partition that began elsewhere (its start fell inside a quoted field), reset it to
 * read again from the right record start — its parts dropped, by compare-and-set — and
 * enqueue it. `waiting`: the job must wait for that re-read (or for a partition that is
 * not finished after all); `reset`: the partition this call put back in play, as it was.
 */
export async function rereadBrokenChain(
  deps: PipelineDeps,
  job: JobRecord,
  parts: PartitionRecord[],
): Promise<{ waiting: boolean; reset?: PartitionRecord }> {
  const sorted = [...parts].sort((a, b) => a.index - b.index);
  let expected = job.input.dataStart;
  for (const [k, p] of sorted.entries()) {
    if (p.state === "failed") {
      try {
        expected = await scanNextRecordStart(deps, job, p, expected);
      } catch (err) {
        // Its bytes can't be read (maybe why it failed). Waiting would hold the job
        // open for ever: take the next partition's own start instead, and say so.
        const next = sorted[k + 1]?.firstRecordStart ?? p.end;
        deps.log.warn(
          "failed partition could not be scanned for the CSV chaining check; the next partition's start is taken as read",
          { jobId: job.jobId, partition: p.index, error: describeError(err) },
        );
        expected = next;
      }
      continue;
    }
    if (p.state !== "done") return { waiting: true };
    if (p.firstRecordStart === expected && p.nextRecordStart !== undefined) {
      expected = p.nextRecordStart;
      continue;
    }
    if (p.firstRecordStart === undefined || p.nextRecordStart === undefined) {
      // Done before record starts were recorded (an older job): nothing to check against.
      return { waiting: false };
    }
    const reset = await resetToRecordStart(deps, job, p.index, expected);
    return reset ? { waiting: true, reset } : { waiting: true };
  }
  return { waiting: false };
}

/** Reset the partition to read again from `from`; returns it as it was, or undefined if someone else did. */
async function resetToRecordStart(
  deps: PipelineDeps,
  job: JobRecord,
  index: number,
  from: number,
): Promise<PartitionRecord | undefined> {
  const row = await deps.checkpoints.getPartition(job.jobId, index);
  if (row?.value.state !== "done" || row.value.firstRecordStart === from) {
    return undefined;
  }
  const at = new Date(deps.now()).toISOString();
  try {
    await deps.checkpoints.updatePartition(
      {
        ...row.value,
        state: "pending",
        owner: undefined,
        offset: from,
        startIsRecordStart: true,
        firstRecordStart: from,
        nextRecordStart: undefined,
        records: 0,
        errors: 0,
        lines: 0,
        parts: [],
        updatedAt: at,
      },
      row.version,
    );
  } catch (err) {
    if (err instanceof ConflictError) return undefined; // another worker reset it
    throw err;
  }
  deps.log.info("partition started inside a quoted field; reading it again", {
    jobId: job.jobId,
    partition: index,
    from,
  });
  await deps.queue.send([taskMessage({ kind: "partition", jobId: job.jobId, partition: index })]);
  return row.value;
}
