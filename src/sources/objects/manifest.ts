/**
 * The object-list manifest: what the splitter writes when a job's input is "every
 * object under a prefix" (images, documents). One JSON line per object,
 * `["name",size,"etag"]`, in listing (name) order. The listing is streamed page by
 * page into the manifest object, so a million objects never sit in memory at once.
 *
 * Partitions are byte ranges of the manifest cut at line starts, by object count and
 * by the objects' total bytes; a position is the byte offset of a manifest line. So a
 * partition looks like a CSV partition (start, end, next offset) and a checkpoint
 * needs no index to resume: the source reads the manifest from the stored offset.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { InvalidArgumentError, PipelineError } from "../../core/errors.ts";
import type { ObjectInfo, ObjectStore } from "../../ports/object-store.ts";

/** One listed object. */
export interface ManifestEntry {
  name: string;
  size: number;
  etag: string;
}

/** A byte range of the manifest: the objects whose lines start in [start, end). */
export interface ManifestPartition {
  index: number;
  /** Byte offset of the partition's first manifest line (its first position). */
  start: number;
  /** Byte offset after its last line (exclusive; the next partition's start). */
  end: number;
  /** Line number (0-based) of the first object, for people and reports. */
  firstLine: number;
  objects: number;
  /** Sum of the objects' listed sizes. */
  objectBytes: number;
}

/** How to cut partitions: a partition closes when either limit would be crossed. */
export interface ManifestPlanOptions {
  /** Most objects per partition (default 1,000). */
  maxObjects?: number;
  /** Most listed bytes per partition (default 256 MiB); one bigger object still gets a partition. */
  maxBytes?: number;
}

/** What is listed: the objects under `prefix`, optionally filtered. */
export interface ObjectListing {
  bucket: string;
  prefix: string;
  /**
   * Keep an object? Default: everything except folder markers (names ending in "/").
   * Zero-byte and non-image objects are kept on purpose: they become bad records with
   * a reason instead of vanishing silently.
   */
  include?: (info: ObjectInfo) => boolean;
  /** Page size for `ObjectStore.list` (default 1,000, OCI's maximum). */
  pageSize?: number;
}

/** The manifest as written, with its partitions. */
export interface ObjectManifest {
  bucket: string;
  name: string;
  /** Etag of the manifest object (part of the job's input identity). */
  etag: string;
  /** Manifest size in bytes. */
  bytes: number;
  objects: number;
  objectBytes: number;
  /** sha256 of the manifest's bytes: the listing's identity (names, sizes, etags). */
  sha256: string;
  partitions: ManifestPartition[];
}

export const DEFAULT_MAX_OBJECTS = 1000;
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;
/** A partition is read whole into memory (its manifest range), so its line count is capped. */
export const MAX_OBJECTS_PER_PARTITION = 100_000;

/** The manifest line for an object (with its newline). */
export function encodeManifestLine(entry: ManifestEntry): string {
  return `${JSON.stringify([entry.name, entry.size, entry.etag])}\n`;
}

/** Parse one manifest line (without its newline). A malformed line means a damaged manifest. */
export function parseManifestLine(text: string): ManifestEntry {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (
    Array.isArray(value) &&
    value.length === 3 &&
    typeof value[0] === "string" &&
    Number.isSafeInteger(value[1]) &&
    (value[1] as number) >= 0 &&
    typeof value[2] === "string"
  ) {
    return { name: value[0], size: value[1] as number, etag: value[2] };
  }
  throw new PipelineError(
    "INTERNAL",
    `object manifest line is not ["name", size, "etag"]: ${JSON.stringify(text.slice(0, 120))}; the manifest was damaged — split the job again`,
  );
}

function defaultInclude(info: ObjectInfo): boolean {
  return !info.name.endsWith("/");
}

/** Cuts manifest lines into partitions as they stream past (also used by a corpus refresh). */
export class Partitioner {
  readonly partitions: ManifestPartition[] = [];
  private open: ManifestPartition | undefined;
  private readonly maxObjects: number;
  private readonly maxBytes: number;

  constructor(options: ManifestPlanOptions) {
    this.maxObjects = options.maxObjects ?? DEFAULT_MAX_OBJECTS;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    if (
      !Number.isSafeInteger(this.maxObjects) ||
      this.maxObjects < 1 ||
      this.maxObjects > MAX_OBJECTS_PER_PARTITION
    ) {
      throw new InvalidArgumentError(
        `maxObjects per partition must be 1..${MAX_OBJECTS_PER_PARTITION}, got ${this.maxObjects}`,
      );
    }
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes < 1) {
      throw new InvalidArgumentError(
        `maxBytes per partition must be a positive integer, got ${this.maxBytes}`,
      );
    }
  }

  /** Account for one line that starts at `offset` and is `length` bytes long. */
  add(line: number, offset: number, length: number, size: number): void {
    const p = this.open;
    if (p && p.objects < this.maxObjects && p.objectBytes + size <= this.maxBytes) {
      p.objects++;
      p.objectBytes += size;
      p.end = offset + length;
      return;
    }
    this.open = {
      index: this.partitions.length,
      start: offset,
      end: offset + length,
      firstLine: line,
      objects: 1,
      objectBytes: size,
    };
    this.partitions.push(this.open);
  }
}

/**
 * List `listing.prefix` page by page and stream the manifest into
 * `target.bucket/target.name`, cutting partitions on the way. Memory holds one page
 * of the listing and the partition list, never the whole listing.
 */
export async function writeManifest(
  store: ObjectStore,
  listing: ObjectListing,
  target: { bucket: string; name: string },
  plan: ManifestPlanOptions = {},
): Promise<ObjectManifest> {
  const partitioner = new Partitioner(plan);
  const include = listing.include ?? defaultInclude;
  let bytes = 0;
  let objects = 0;
  let objectBytes = 0;
  const hash = createHash("sha256");
  async function* lines(): AsyncGenerator<Buffer> {
    let start: string | undefined;
    do {
      const page = await store.list(listing.bucket, {
        prefix: listing.prefix,
        ...(start === undefined ? {} : { start }),
        limit: listing.pageSize ?? 1000,
      });
      const parts: Buffer[] = [];
      for (const info of page.objects) {
        if (!include(info)) continue;
        // The manifest must never list itself when it lives under the prefix.
        if (listing.bucket === target.bucket && info.name === target.name) continue;
        const line = Buffer.from(
          encodeManifestLine({ name: info.name, size: info.size, etag: info.etag }),
        );
        partitioner.add(objects, bytes, line.length, info.size);
        parts.push(line);
        bytes += line.length;
        objects++;
        objectBytes += info.size;
      }
      if (parts.length > 0) {
        const chunk = Buffer.concat(parts);
        hash.update(chunk);
        yield chunk;
      }
      start = page.nextStart;
    } while (start !== undefined);
  }
  const { etag } = await store.put(target.bucket, target.name, Readable.from(lines()), {
    contentType: "application/x-ndjson",
  });
  return {
    bucket: target.bucket,
    name: target.name,
    etag,
    bytes,
    objects,
    objectBytes,
    sha256: hash.digest("hex"),
    partitions: partitioner.partitions,
  };
}
