/**
 * Ajv's standalone code for every schema the project validates with, as the source
 * of the module that replaces src/core/precompiled-validators.ts in the bundles: a
 * bundle then compiles no schema at run time.
 */
import { Ajv } from "ajv";
import standaloneCodeModule from "ajv/dist/standalone/index.js";

/** The modules that declare validators (`compileValidator` at their top level). */
export const VALIDATOR_MODULES = [
  "src/core/job-spec.ts",
  "src/model/descriptor.ts",
  "src/pipeline/events.ts",
  "src/pipeline/messages.ts",
  "src/pipeline/requests.ts",
  "src/refresh/settings.ts",
  "src/tasks/image-classification/descriptor.ts",
  "src/tasks/text-embedding/task-config.ts",
];

// CommonJS under ESM interop: the function is the module's `default` (or the module).
type StandaloneCode = (ajv: Ajv, refs: Record<string, string>) => string;
const standaloneModule = standaloneCodeModule as unknown as { default?: StandaloneCode };
const standaloneCode: StandaloneCode =
  standaloneModule.default ?? (standaloneCodeModule as unknown as StandaloneCode);

/** The module's source, and how many validators it holds. */
export async function precompiledValidatorsSource(
  root: string,
): Promise<{ source: string; count: number }> {
  for (const m of VALIDATOR_MODULES) await import(new URL(m, `file://${root}/`).href);
  const { AJV_OPTIONS, declaredSchemas, schemaKey } = await import(
    new URL("src/core/schema.ts", `file://${root}/`).href
  );
  const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true, esm: true } });
  const exportsByName: Record<string, string> = {};
  const entries: string[] = [];
  for (const schema of declaredSchemas as Record<string, unknown>[]) {
    const key = schemaKey(schema) as string;
    const name = `v_${key.slice(0, 24)}`;
    if (exportsByName[name]) continue;
    const id = `urn:batch-infer:schema:${key}`;
    ajv.addSchema(schema, id);
    exportsByName[name] = id;
    entries.push(`[${JSON.stringify(key)}, ${name}]`);
  }
  const code = standaloneCode(ajv, exportsByName);
  return {
    source: `${code}\nexport const PRECOMPILED = new Map([${entries.join(", ")}]);\n`,
    count: entries.length,
  };
}
