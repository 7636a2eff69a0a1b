/**
 * Refresh settings from configuration (the refresh function's BATCH_INFER_REFRESH),
 * validated against settings.schema.json, failing with the schema path.
 */
import { compileValidator } from "../core/schema.ts";
import type { RefreshSettings } from "./head.ts";
import schema from "./settings.schema.json" with { type: "json" };

const validate = compileValidator<RefreshSettings>("refresh settings", "INVALID_SPEC", schema);

/** Validate refresh settings (defaults filled in: output prefix "embeddings"). */
export function parseRefreshSettings(raw: unknown): RefreshSettings {
  const s = validate(structuredClone(raw));
  return { ...s, output: { bucket: s.output.bucket, prefix: s.output.prefix ?? "embeddings" } };
}
