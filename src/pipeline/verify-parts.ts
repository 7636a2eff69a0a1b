import { createHash, type Hash } from "node:crypto";
import type { PartitionRecord } from "../core/records.ts";
import type { ObjectStore } from "../ports/object-store.ts";

/** What the merged output was checked against, and the first difference found. */
export interface PartsCheck {
  ok: boolean;
  detail: string;
  /** sha256 and size of the whole object, computed on the way. */
  sha256: string;
  bytes: number;
}

interface Segment {
  what: string;
  bytes: number;
  sha256: string;
}

/**
 * Check the merged output byte for byte against what the workers recorded in the
 * checkpoint store when they committed each part (its size and sha256), in merge
 * order after the header. The checkpoint rows are written by the workers at commit
 * time, not by whoever writes the output, so a changed score is caught even when
 * the manifest's checksum was re-signed to match. One pass, constant memory.
 */
export async function checkOutputAgainstParts(
  store: ObjectStore,
  bucket: string,
  object: string,
  header: string,
  partitions: PartitionRecord[],
  /** Bytes after the last part are the format's own (a Parquet footer), checked elsewhere. */
  options: { trailer?: boolean } = {},
): Promise<PartsCheck> {
  const segments: Segment[] = [];
  if (header) {
    segments.push({
      what: "the header",
      bytes: Buffer.byteLength(header),
      sha256: createHash("sha256").update(header).digest("hex"),
    });
  }
  for (const p of partitions) {
    if (p.state !== "done") continue;
    for (const ref of p.parts) {
      // A part merged by copying one section of it (Parquet) is checked on that section.
      const copied = ref.section ?? { bytes: ref.bytes, sha256: ref.sha256 };
      if (copied.bytes > 0) {
        segments.push({
          what: `partition ${p.index} part ${ref.seq}`,
          bytes: copied.bytes,
          sha256: copied.sha256,
        });
      }
    }
  }
  const whole = createHash("sha256");
  let total = 0;
  let k = 0;
  let inSegment = 0;
  let segmentStart = 0;
  let hash: Hash = createHash("sha256");
  let problem: string | undefined;
  const closeSegment = () => {
    const s = segments[k] as Segment;
    if (hash.digest("hex") !== s.sha256) {
      problem ??= `${s.what} (bytes ${segmentStart}..${segmentStart + s.bytes} of the output) differs from what its worker committed (sha256 ${s.sha256.slice(0, 16)}… in the checkpoint store)`;
    }
    segmentStart += s.bytes;
    k++;
    inSegment = 0;
    hash = createHash("sha256");
  };
  for await (const raw of await store.read(bucket, object)) {
    const chunk = raw as Buffer;
    whole.update(chunk);
    total += chunk.length;
    let at = 0;
    while (at < chunk.length && k < segments.length) {
      const s = segments[k] as Segment;
      const take = Math.min(s.bytes - inSegment, chunk.length - at);
      hash.update(chunk.subarray(at, at + take));
      inSegment += take;
      at += take;
      if (inSegment === s.bytes) closeSegment();
    }
  }
  const expected = segments.reduce((n, s) => n + s.bytes, 0);
  if (!problem && (options.trailer ? total < expected : total !== expected)) {
    problem = `the output has ${total} bytes; the committed parts make ${expected}`;
  }
  return {
    ok: problem === undefined,
    detail:
      problem ??
      `${segments.length - (header ? 1 : 0)} parts, each byte for byte as its worker committed it`,
    sha256: whole.digest("hex"),
    bytes: total,
  };
}
