import type { createHash } from "node:crypto";
import type { JobRecord, PartitionRecord } from "../core/records.ts";
import type { PipelineDeps } from "./deps.ts";
import { errorPartName, type JobLayout } from "./layout.ts";
import type { ErrorTally } from "./report.ts";

type Digest = { hash: ReturnType<typeof createHash>; bytes: number };

/** One row of a chunk's errors part, as the worker wrote it. */
interface ChunkError {
  line: number;
  offset: number;
  reason: string;
  key: unknown;
  record: unknown;
}

const NL = 0x0a;

/**
 * Lines that start in [from, to) of the input: `from` itself when it starts a line
 * (it is dataStart, or follows a newline), and one after each newline before `to`-1.
 * Reads only that range: the merger calls it for the unread rest of a partition that
 * did not finish (a job stopped early), never on the common path.
 */
async function lineStartsIn(
  deps: PipelineDeps,
  job: JobRecord,
  from: number,
  to: number,
): Promise<number> {
  if (to <= from) return 0;
  // Parquet positions are row indexes: every row is a record.
  if (job.input.format === "parquet") return to - from;
  let count = 0;
  let readFrom = from;
  if (from === job.input.dataStart) {
    count = 1;
  } else {
    readFrom = from - 1; // byte from-1 says whether `from` starts a line
  }
  for await (const raw of await deps.store.read(job.input.bucket, job.input.object, {
    start: readFrom,
    end: to - 1,
  })) {
    const chunk = raw as Buffer;
    for (let i = chunk.indexOf(NL); i >= 0; i = chunk.indexOf(NL, i + 1)) count++;
  }
  return count;
}

/**
 * The input line number where each partition's records begin: the header's line
 * plus every line before. A partition that finished knows its lines; one that did
 * not (failed, or still running when the job stopped early) knows them only up to
 * its checkpoint, so the rest of its range is counted from the input. Undefined when
 * the input is no longer the job's (its lines can't be counted any more): the errors
 * then give offsets alone rather than a wrong line.
 */
async function lineBases(
  deps: PipelineDeps,
  job: JobRecord,
  partitions: PartitionRecord[],
): Promise<number[] | undefined> {
  let base = job.input.format === "csv" && job.input.dataStart > 0 ? 1 : 0;
  const bases: number[] = [];
  let inputChecked = false;
  for (const p of partitions) {
    bases.push(base);
    base += p.lines;
    if (p.state !== "done" && p.offset < p.end) {
      if (!inputChecked) {
        const now = await deps.store.head(job.input.bucket, job.input.object);
        if (now?.etag !== job.input.etag) return undefined;
        inputChecked = true;
      }
      base += await lineStartsIn(deps, job, p.offset, p.end);
    }
  }
  return bases;
}

/**
 * The job's errors output, streamed: each chunk's errors part in input order, its
 * chunk-relative line turned into the input's line number, the partition added.
 * `include` picks the partitions whose errors belong in the output (a failed
 * partition's are not: it is listed as unscored, and a rerun resumes it).
 */
export async function* mergedErrors(
  deps: PipelineDeps,
  layout: JobLayout,
  job: JobRecord,
  partitions: PartitionRecord[],
  include: (p: PartitionRecord) => boolean,
  digest: Digest,
  tally: ErrorTally,
): AsyncGenerator<Buffer> {
  const withErrors = partitions.some((p) => include(p) && p.parts.some((r) => r.errorBytes > 0));
  const bases = withErrors ? await lineBases(deps, job, partitions) : undefined;
  for (const [k, p] of partitions.entries()) {
    if (!include(p)) continue;
    let partBase = bases?.[k];
    for (const ref of p.parts) {
      if (ref.errorBytes > 0) {
        const name = errorPartName(layout, p.index, ref.seq, ref.epoch);
        const chunks: Buffer[] = [];
        for await (const c of await deps.store.read(layout.bucket, name)) chunks.push(c as Buffer);
        let out = "";
        for (const text of Buffer.concat(chunks).toString("utf8").split("\n")) {
          if (!text) continue;
          const e = JSON.parse(text) as ChunkError;
          const line = partBase === undefined ? null : partBase + e.line;
          // Counted on the way through for the job report: the errors output is read only once.
          tally.add(line ?? 0, e.reason, typeof e.record === "string" ? e.record : null);
          out += `${JSON.stringify({ line, offset: e.offset, partition: p.index, reason: e.reason, key: e.key, record: e.record })}\n`;
        }
        const b = Buffer.from(out);
        digest.hash.update(b);
        digest.bytes += b.length;
        yield b;
      }
      if (partBase !== undefined) partBase += ref.lines;
    }
  }
}
