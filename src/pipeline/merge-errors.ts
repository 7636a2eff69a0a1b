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
 * Newlines in [from, offsets[k]) for each offset (ascending), in one read of the input
 * up to the last one. Only for a job some of whose partitions did not finish (stopped
 * early on its threshold), never on the common path.
 */
async function newlinesBefore(
  deps: PipelineDeps,
  job: JobRecord,
  from: number,
  offsets: number[],
): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  const sorted = [...new Set(offsets)].sort((a, b) => a - b);
  const last = sorted.at(-1) ?? from;
  let k = 0;
  let seen = 0;
  let pos = from;
  while (k < sorted.length && (sorted[k] as number) <= from) counts.set(sorted[k++] as number, 0);
  if (k < sorted.length) {
    for await (const raw of await deps.store.read(job.input.bucket, job.input.object, {
      start: from,
      end: last,
    })) {
      const chunk = raw as Buffer;
      for (let i = chunk.indexOf(NL); i >= 0; i = chunk.indexOf(NL, i + 1)) {
        while (k < sorted.length && (sorted[k] as number) <= pos + i) {
          counts.set(sorted[k++] as number, seen);
        }
        seen++;
      }
      pos += chunk.length;
    }
    while (k < sorted.length) counts.set(sorted[k++] as number, seen);
  }
  return counts;
}

/**
 * The input line number before each partition's first record (the header's lines plus
 * every line before). While every earlier partition finished, their line counts add
 * up; past one that did not (failed, or running when the job stopped early), a
 * partition's base is counted from the input up to its first record start. Undefined
 * (for a partition, or for all when the input is no longer the job's) where it can't
 * be known: those errors give offsets alone rather than a wrong line.
 */
async function lineBases(
  deps: PipelineDeps,
  job: JobRecord,
  partitions: PartitionRecord[],
  needs: (p: PartitionRecord) => boolean,
): Promise<(number | undefined)[]> {
  const header =
    job.input.format === "csv" && job.input.dataStart > 0 ? (job.input.headerLines ?? 1) : 0;
  const bases: (number | undefined)[] = [];
  let base = header;
  let contiguous = true;
  for (const p of partitions) {
    bases.push(contiguous ? base : undefined);
    base += p.lines;
    if (p.state !== "done") contiguous = false;
  }
  if (job.input.format === "parquet") {
    // Positions are row indexes and every row is a record (one line): no reading needed.
    return partitions.map((p, k) => bases[k] ?? p.start);
  }
  if (job.input.format === "objects") return bases;
  const missing = partitions
    .map((p, k) => ({ p, k }))
    .filter(({ p, k }) => bases[k] === undefined && needs(p) && p.firstRecordStart !== undefined);
  if (missing.length === 0) return bases;
  const now = await deps.store.head(job.input.bucket, job.input.object);
  if (now?.etag !== job.input.etag) return bases.map(() => undefined);
  const counts = await newlinesBefore(
    deps,
    job,
    job.input.dataStart,
    missing.map(({ p }) => p.firstRecordStart as number),
  );
  for (const { p, k } of missing)
    bases[k] = header + (counts.get(p.firstRecordStart as number) ?? 0);
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
  const hasErrors = (p: PartitionRecord) => include(p) && p.parts.some((r) => r.errorBytes > 0);
  const bases = partitions.some(hasErrors)
    ? await lineBases(deps, job, partitions, hasErrors)
    : undefined;
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
