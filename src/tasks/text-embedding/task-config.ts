/**
 * The text-embedding task's settings: the descriptor's `task` block
 * (task.schema.json), validated, with the template parsed. Defaults that depend on the
 * model directory (maxLength, pooling) are resolved by the loader (model-dir.ts).
 */
import { ModelError } from "../../core/errors.ts";
import { compileValidator } from "../../core/schema.ts";
import taskSchema from "./task.schema.json" with { type: "json" };

/** The `task` block as written (after schema defaults). */
export interface TextTaskConfig {
  kind: "text-embedding";
  modelDir: string;
  idField: string;
  text: { field: string } | { template: string; missingFields?: "error" | "empty" };
  output?: string;
  pooling?: "mean" | "cls" | "none";
  normalize: boolean;
  maxLength?: number;
  maxChars?: number;
  chunking?: { overlap: number };
  batching?: Partial<BatchingOptions>;
}

/** How sequences are grouped into model calls (never changes the vectors). */
export interface BatchingOptions {
  tokenBudget: number;
  attentionBudget: number;
  maxPadding: number;
  windowTokens: number;
  windowRecords: number;
}

/** Defaults (TEI's 16k padded tokens per call). */
export const DEFAULT_BATCHING: BatchingOptions = {
  tokenBudget: 16384,
  // rows × longest² per call. Measured on a MiniLM-shaped model (384 wide, 12 heads):
  // 2M cells peaked at 820 MB RSS, 256k at 406 MB and 10% less CPU (smaller tensors
  // stay in cache). A GPU worker wants both budgets larger.
  attentionBudget: 262144,
  maxPadding: 0.1,
  windowTokens: 65536,
  windowRecords: 4096,
};

/** One piece of a text template: literal text or a field's value. */
export type TemplatePart = { literal: string } | { field: string };

/** How a record's text is made. */
export interface TextSource {
  /** Fields read from the record, in template order, without repeats. */
  fields: string[];
  parts: TemplatePart[];
  missingFields: "error" | "empty";
}

const validateTask = compileValidator<TextTaskConfig>(
  "text-embedding task",
  "INVALID_MODEL",
  taskSchema,
);

/** Validate a descriptor's `task` block (defaults filled in place). Throws ValidationError. */
export function parseTextTask(raw: unknown): TextTaskConfig {
  const task = validateTask(raw);
  if (task.chunking && task.maxLength !== undefined && task.chunking.overlap >= task.maxLength) {
    throw new ModelError(
      `text-embedding task: chunking.overlap ${task.chunking.overlap} must be less than maxLength ${task.maxLength}`,
    );
  }
  if ("template" in task.text) parseTemplate(task.text.template);
  return task;
}

/** Split `{field}` placeholders from literal text; `{{` and `}}` are literal braces. */
export function parseTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let literal = "";
  for (let i = 0; i < template.length; i++) {
    const ch = template[i];
    const next = template[i + 1];
    if ((ch === "{" && next === "{") || (ch === "}" && next === "}")) {
      literal += ch;
      i++;
    } else if (ch === "{") {
      const close = template.indexOf("}", i + 1);
      const name = close < 0 ? "" : template.slice(i + 1, close);
      if (name === "" || name.includes("{")) {
        throw new ModelError(
          `text-embedding task: text.template has an unclosed or empty placeholder at character ${i}: write {field}, or {{ for a literal brace`,
        );
      }
      if (literal !== "") parts.push({ literal });
      literal = "";
      parts.push({ field: name });
      i = close;
    } else if (ch === "}") {
      throw new ModelError(
        `text-embedding task: text.template has a lone } at character ${i}: write }} for a literal brace`,
      );
    } else literal += ch;
  }
  if (literal !== "") parts.push({ literal });
  return parts;
}

/** The text source of a task. */
export function textSourceOf(task: TextTaskConfig): TextSource {
  if ("field" in task.text) {
    return {
      fields: [task.text.field],
      parts: [{ field: task.text.field }],
      missingFields: "error",
    };
  }
  const parts = parseTemplate(task.text.template);
  const fields: string[] = [];
  for (const p of parts) if ("field" in p && !fields.includes(p.field)) fields.push(p.field);
  return { fields, parts, missingFields: task.text.missingFields ?? "error" };
}

/** Batching options with defaults. */
export function batchingOf(task: Pick<TextTaskConfig, "batching">): BatchingOptions {
  return { ...DEFAULT_BATCHING, ...task.batching };
}
