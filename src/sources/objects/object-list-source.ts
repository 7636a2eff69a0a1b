/**
 * Record source over an object-list manifest: one object = one record. A partition
 * is a byte range of the manifest (see manifest.ts); `read(from)` reads the range
 * from `from` (a line start) in one ranged GET, then fetches the listed objects with
 * bounded concurrency and yields them in manifest order as {@link ObjectBlock}s.
 * Used by image classification and by the text task's document corpora.
 */
import { PipelineError } from "../../core/errors.ts";
import type { ObjectStore } from "../../ports/object-store.ts";
import { readBytes } from "../read-bytes.ts";
import type { ObjectBlock, RecordSource } from "../record-source.ts";
import { type ManifestEntry, parseManifestLine } from "./manifest.ts";
import {
  DEFAULT_MAX_OBJECT_BYTES,
  type FetchOptions,
  fetchInOrder,
  fetchObject,
} from "./ordered-fetch.ts";

/** Where the manifest and the objects are, and which range is this partition's. */
export interface ObjectListSourceOptions extends FetchOptions {
  store: ObjectStore;
  manifest: { bucket: string; name: string };
  /** Bucket the listed objects live in. */
  objectsBucket: string;
  /** The partition: manifest byte range [start, end). */
  start: number;
  end: number;
  /** Records per block at most (default 32). */
  blockRecords?: number;
}

/** Manifest lines of one range, with each line's byte offset. */
export function parseManifestRange(
  buf: Buffer,
  base: number,
): { entries: ManifestEntry[]; offsets: number[]; end: number } {
  const entries: ManifestEntry[] = [];
  const offsets: number[] = [];
  let at = 0;
  while (at < buf.length) {
    const nl = buf.indexOf(10, at);
    if (nl < 0) {
      throw new PipelineError(
        "INTERNAL",
        `object manifest range ends inside a line at byte ${base + at}; the partition does not match the manifest — split the job again`,
      );
    }
    entries.push(parseManifestLine(buf.toString("utf8", at, nl)));
    offsets.push(base + at);
    at = nl + 1;
  }
  return { entries, offsets, end: base + at };
}

/** A {@link RecordSource} of the objects a manifest range lists. */
export class ObjectListSource implements RecordSource {
  constructor(private readonly options: ObjectListSourceOptions) {}

  async *read(from: number): AsyncIterable<ObjectBlock> {
    const o = this.options;
    if (from < o.start || from > o.end) {
      throw new PipelineError(
        "INTERNAL",
        `position ${from} is outside the partition's manifest range [${o.start}, ${o.end})`,
      );
    }
    if (from === o.end) return;
    const buf = await readBytes(o.store, o.manifest.bucket, o.manifest.name, {
      start: from,
      end: o.end,
    });
    if (buf.length !== o.end - from) {
      throw new PipelineError(
        "INTERNAL",
        `object manifest ${o.manifest.name} is shorter than the partition (read ${buf.length} of ${o.end - from} bytes from ${from})`,
      );
    }
    const { entries, offsets } = parseManifestRange(buf, from);
    const maxObjectBytes = o.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES;
    const maxRun = o.blockRecords ?? 32;
    let i = 0;
    for await (const run of fetchInOrder(
      entries,
      (entry) => fetchObject(o.store, o.objectsBucket, entry, maxObjectBytes),
      { ...o, maxRun },
    )) {
      const count = run.length;
      const block: ObjectBlock = {
        kind: "objects",
        count,
        names: new Array<string>(count),
        bodies: new Array<Buffer | undefined>(count),
        problems: new Array<string | undefined>(count),
        positions: new Float64Array(count),
        nextPositions: new Float64Array(count),
      };
      for (let k = 0; k < count; k++, i++) {
        const fetched = run[k];
        block.names[k] = (entries[i] as ManifestEntry).name;
        block.bodies[k] = fetched?.body;
        block.problems[k] = fetched?.problem;
        block.positions[k] = offsets[i] as number;
        block.nextPositions[k] = i + 1 < offsets.length ? (offsets[i + 1] as number) : o.end;
      }
      yield block;
    }
  }
}
