/**
 * Objects under a prefix as a source kind: at split time the prefix is listed page
 * by page into a manifest (one line per object) in the output bucket; partitions
 * are byte ranges of that manifest. The job's input is the manifest, so its etag
 * fences the job like an input file's; the job id follows the listing's content.
 */
import { randomBytes } from "node:crypto";
import { InvalidArgumentError } from "../../core/errors.ts";
import type { SourceModule } from "../source-module.ts";
import { DEFAULT_MAX_OBJECTS, writeManifest } from "./manifest.ts";
import { ObjectListSource } from "./object-list-source.ts";

/** Where a new listing goes: unique, beside the jobs (the job id is known only after listing). */
function manifestName(outputPrefix: string, now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[^0-9]/g, "")
    .slice(0, 14);
  const name = `_listings/${stamp}-${randomBytes(6).toString("hex")}.jsonl`;
  return outputPrefix === "" ? name : `${outputPrefix}/${name}`;
}

/** The objects under `input.prefix`, one record each. */
export const objectListSourceModule: SourceModule = {
  formats: ["objects"],
  async plan(store, spec) {
    const bucket = spec.input.bucket;
    const prefix = spec.input.prefix ?? "";
    const out = spec.output;
    const outRoot = out.prefix === "" ? "" : `${out.prefix}/`;
    if (out.bucket === bucket && (outRoot.startsWith(prefix) || prefix.startsWith(outRoot))) {
      throw new InvalidArgumentError(
        `input prefix ${bucket}/${prefix} and the job outputs (${out.bucket}/${outRoot}) overlap: the listing would take in outputs; use another output bucket or prefix`,
      );
    }
    const target = { bucket: out.bucket, name: manifestName(out.prefix, new Date()) };
    const manifest = await writeManifest(store, { bucket, prefix }, target, {
      maxObjects: spec.partitionRecords ?? DEFAULT_MAX_OBJECTS,
      maxBytes: spec.partitionBytes,
    });
    const discard = () => store.delete(target.bucket, target.name);
    if (manifest.objects === 0) {
      await discard();
      throw new InvalidArgumentError(
        `no objects under ${bucket}/${prefix}: nothing to score (upload them first, or fix the prefix; it usually ends in "/")`,
      );
    }
    return {
      input: {
        bucket: target.bucket,
        object: target.name,
        etag: manifest.etag,
        size: manifest.bytes,
        format: "objects",
        columns: [],
        dataStart: 0,
        objects: {
          bucket,
          prefix,
          count: manifest.objects,
          bytes: manifest.objectBytes,
          sha256: manifest.sha256,
        },
      },
      identity: { bucket, object: prefix, etag: `listing-sha256:${manifest.sha256}` },
      ranges: manifest.partitions.map((p) => ({ start: p.start, end: p.end })),
      discard,
    };
  },
  open(store, job, partition) {
    const listed = job.input.objects;
    if (!listed) throw new Error(`job ${job.jobId} reads objects but records no listing`);
    return new ObjectListSource({
      store,
      manifest: { bucket: job.input.bucket, name: job.input.object },
      objectsBucket: listed.bucket,
      start: partition.start,
      end: partition.end,
    });
  },
};
