/**
 * The deployment's own IAM (scripts/oci/iam-policies.json), with its
 * placeholders filled by the stand-in's resource ids: what the stand-in enforces,
 * so the tests run under exactly the policies a deployment creates.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { DynamicGroup } from "./iam.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const IAM_FILE = path.join(ROOT, "scripts", "oci", "iam-policies.json");

/** Placeholders of features a deployment may leave out: statements naming them are skipped when unset. */
const OPTIONAL = new Set([
  "CORPUS_BUCKET",
  "EMBED_SPLITTER_FUNCTION_OCID",
  "DATA_SCIENCE_COMPARTMENT_OCID",
  "SCALER_SCHEDULE_OCID",
]);

/** One statement of the file, filled, with the policy and component it belongs to. */
export interface DeployStatement {
  policy: string;
  component: string;
  text: string;
}

interface IamFileShape {
  dynamicGroups: { name: string; matchingRule: string }[];
  policies: { name: string; component: string; statements: string[] }[];
}

/** `${NAME}` → value; undefined when a placeholder has no value. */
function fillAll(text: string, vars: Record<string, string>): string | undefined {
  let unknown = false;
  const out = text.replace(/\$\{([A-Z][A-Z0-9_]*)\}/g, (_whole, name: string) => {
    const v = vars[name];
    if (v !== undefined) return v;
    if (!OPTIONAL.has(name)) {
      throw new Error(`iam-policies.json: no stand-in value for \${${name}} in: ${text}`);
    }
    unknown = true;
    return "";
  });
  return unknown ? undefined : out;
}

/** The file's statements and dynamic groups, filled with `vars` (optional features left out when unset). */
export function deployPolicies(vars: Record<string, string>): {
  statements: DeployStatement[];
  dynamicGroups: DynamicGroup[];
} {
  const file = JSON.parse(readFileSync(IAM_FILE, "utf8")) as IamFileShape;
  const dynamicGroups: DynamicGroup[] = [];
  for (const g of file.dynamicGroups) {
    const name = fillAll(g.name, vars);
    const matchingRule = fillAll(g.matchingRule, vars);
    if (name !== undefined && matchingRule !== undefined)
      dynamicGroups.push({ name, matchingRule });
  }
  const statements: DeployStatement[] = [];
  for (const p of file.policies) {
    for (const s of p.statements) {
      const text = fillAll(s, vars);
      if (text !== undefined) {
        statements.push({ policy: fillAll(p.name, vars) ?? p.name, component: p.component, text });
      }
    }
  }
  return { statements, dynamicGroups };
}
