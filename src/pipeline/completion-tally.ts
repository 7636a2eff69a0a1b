/**
 * Which partitions of a job have finished (done or failed), kept on the job row so a
 * partition's completion costs one read and one compare-and-set of that row — not a
 * read of every partition row. Reading all P rows on each of P completions is P² row
 * reads per job (billed per row on OCI NoSQL: ~256 M for a 16,000-partition job).
 *
 * A bitmap rather than a counter: a completion is repeated when its worker dies
 * before deleting its message, and setting a bit twice counts once.
 */
import type { CompletionTally, JobRecord, PartitionRecord } from "../core/records.ts";

/** An empty tally for `partitions` partitions. */
export function emptyTally(partitions: number): CompletionTally {
  return {
    bitmap: Buffer.alloc(Math.ceil(partitions / 8)).toString("base64"),
    count: 0,
    errors: 0,
  };
}

function bits(t: CompletionTally, partitions: number): Buffer {
  const b = Buffer.from(t.bitmap, "base64");
  if (b.length >= Math.ceil(partitions / 8)) return b;
  const grown = Buffer.alloc(Math.ceil(partitions / 8));
  b.copy(grown);
  return grown;
}

/** True when partition `index` is counted in the tally. */
export function isCounted(t: CompletionTally | undefined, index: number): boolean {
  if (!t) return false;
  const b = Buffer.from(t.bitmap, "base64");
  return ((b[index >> 3] ?? 0) & (1 << (index & 7))) !== 0;
}

/**
 * The job with partition `p` counted as finished (its bad records added), or
 * undefined when it already was.
 */
export function countFinished(job: JobRecord, p: PartitionRecord): JobRecord | undefined {
  const tally = job.tally ?? emptyTally(job.partitionCount);
  if (isCounted(tally, p.index)) return undefined;
  const b = bits(tally, job.partitionCount);
  b[p.index >> 3] = (b[p.index >> 3] ?? 0) | (1 << (p.index & 7));
  return {
    ...job,
    tally: {
      bitmap: b.toString("base64"),
      count: tally.count + 1,
      errors: tally.errors + p.errors,
    },
  };
}

/**
 * The job with partition `p` no longer counted (it is back in play: `rerun --failed`,
 * or a CSV partition read again from another record start), or the job unchanged.
 */
export function uncount(job: JobRecord, p: PartitionRecord): JobRecord {
  const tally = job.tally;
  if (!tally || !isCounted(tally, p.index)) return job;
  const b = bits(tally, job.partitionCount);
  b[p.index >> 3] = (b[p.index >> 3] ?? 0) & ~(1 << (p.index & 7));
  return {
    ...job,
    tally: {
      bitmap: b.toString("base64"),
      count: tally.count - 1,
      errors: Math.max(0, tally.errors - p.errors),
    },
  };
}
