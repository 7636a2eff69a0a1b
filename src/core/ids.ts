import { createHash, randomBytes } from "node:crypto";

/** JSON with object keys sorted, so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v as Record<string, unknown>).sort()) {
        sorted[k] = (v as Record<string, unknown>)[k];
      }
      return sorted;
    }
    return v;
  });
}

/** A descriptor without its `$comment` notes: editing a note is not a new model. */
export function withoutComments(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutComments);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => k !== "$comment")
      .map(([k, v]) => [k, withoutComments(v)]),
  );
}

/** Hex sha256 of a string or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * The job id: a hash of the input's identity (bucket, object, etag), the model's
 * content hash and the resolved spec. The same upload delivered twice maps to the
 * same id, which is what makes job creation idempotent.
 */
export function deriveJobId(parts: {
  bucket: string;
  object: string;
  etag: string;
  modelSha256: string;
  descriptorSha256?: string;
  spec: unknown;
}): string {
  return `job-${sha256Hex(canonicalJson(parts)).slice(0, 24)}`;
}

/** A unique id for a worker process or an attempt. */
export function newWorkerId(prefix = "w"): string {
  return `${prefix}-${process.pid}-${randomBytes(3).toString("hex")}`;
}
