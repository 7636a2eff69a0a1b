import type { ValidateFunction } from "ajv";

/**
 * Validators compiled ahead of time, by schema key ({@link schemaKey} in schema.ts).
 * Empty in the source: `npm run build` replaces this module in the bundles with
 * Ajv's standalone code for every declared schema (scripts/build/validators.ts).
 */
export const PRECOMPILED: ReadonlyMap<string, ValidateFunction> = new Map();
