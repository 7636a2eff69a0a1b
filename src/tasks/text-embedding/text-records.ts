/**
 * Records → (id, text): a JSON Lines object or CSV row with an id field and a text
 * field (or a template over several fields), one object per document (the object
 * name is the id), or a row of a columnar block. A record that can't give both gets a
 * reason instead: missing or empty id, missing or empty text, invalid UTF-8, …
 */
import { InvalidArgumentError } from "../../core/errors.ts";
import { BadRecordError } from "../../records/bad-record.ts";
import {
  createFieldSpans,
  decodeField,
  decodeUtf8Strict,
  type FieldSpans,
  splitCsvLine,
} from "../../records/csv-fields.ts";
import { parseJsonLine } from "../../records/jsonl.ts";
import type { RecordBlock } from "../../sources/record-source.ts";
import type { TextSource } from "./task-config.ts";
import { hasLoneSurrogate } from "./tokenizer.ts";

/** A record's id and text, or why it has none. */
export type TextRecord = { id: string; text: string } | { reason: string; id?: string };

/** Column names of a CSV input (from its header) and its delimiter. */
export interface CsvLayout {
  columns: string[];
  /** Delimiter byte (default `,`). */
  delimiter?: number;
}

type FieldGetter = (name: string) => unknown;

const MISSING = Symbol("missing");

function idOf(value: unknown, field: string): string | { reason: string } {
  if (value === MISSING || value === undefined || value === null) {
    return { reason: `missing id field "${field}"` };
  }
  if (typeof value === "string") {
    return value.trim() === "" ? { reason: `empty id field "${field}"` } : value;
  }
  if (typeof value === "number" && Number.isFinite(value)) {
    // JSON.parse has already rounded a larger integer: the id would silently change.
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
      return { reason: `id field "${field}" is an integer beyond 2^53: write it as a string` };
    }
    return String(value);
  }
  return { reason: `id field "${field}" is ${describe(value)}, not a string or number` };
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  return `a ${typeof value}`;
}

/** Build the text from a record's fields, per the task's text source. */
function textOf(get: FieldGetter, source: TextSource): string | { reason: string } {
  if (source.parts.length === 1 && "field" in (source.parts[0] as object)) {
    const field = source.fields[0] as string;
    const value = get(field);
    if (value === MISSING || value === undefined || value === null) {
      return { reason: `missing text field "${field}"` };
    }
    if (typeof value !== "string") {
      return { reason: `text field "${field}" is ${describe(value)}, not a string` };
    }
    return value;
  }
  let text = "";
  for (const part of source.parts) {
    if ("literal" in part) {
      text += part.literal;
      continue;
    }
    const value = get(part.field);
    if (value === MISSING || value === undefined || value === null) {
      if (source.missingFields === "empty") continue;
      return { reason: `missing field "${part.field}" (named by the text template)` };
    }
    if (typeof value === "string") text += value;
    else if (typeof value === "number" || typeof value === "boolean") text += String(value);
    else return { reason: `field "${part.field}" is ${describe(value)}, not text` };
  }
  return text;
}

function finish(id: string | { reason: string }, text: string | { reason: string }): TextRecord {
  if (typeof id !== "string") return id;
  if (typeof text !== "string") return { ...text, id };
  if (text.trim() === "") return { reason: "empty text", id };
  if (hasLoneSurrogate(text))
    return { reason: "text holds an unpaired surrogate (not valid Unicode)", id };
  return { id, text };
}

/** Reads (id, text) from records of any block kind. */
export class TextRecordReader {
  private readonly spans: FieldSpans;
  private readonly columnIndex: Map<string, number> | undefined;

  /**
   * @param csv the header of a CSV input; throws InvalidArgumentError when it lacks the
   *   id column or a text column.
   */
  constructor(
    private readonly idField: string,
    private readonly source: TextSource,
    private readonly csv?: CsvLayout,
  ) {
    this.spans = createFieldSpans(csv?.columns.length ?? 8);
    if (csv) {
      this.columnIndex = new Map(csv.columns.map((c, i) => [c, i]));
      const missing = [idField, ...(source.missingFields === "empty" ? [] : source.fields)].filter(
        (c) => !this.columnIndex?.has(c),
      );
      if (missing.length > 0) {
        throw new InvalidArgumentError(
          `the CSV input has no column ${missing.map((m) => JSON.stringify(m)).join(", ")} (its columns are ${JSON.stringify(csv.columns)}): set the task's idField / text to its columns`,
        );
      }
    }
  }

  /** Record `i` of `block`. */
  read(block: RecordBlock, i: number): TextRecord {
    switch (block.kind) {
      case "lines":
        return this.readLine(block, i);
      case "objects": {
        const name = block.names[i] as string;
        const problem = block.problems[i];
        const body = block.bodies[i];
        if (problem !== undefined || body === undefined) {
          return { reason: problem ?? "object could not be read", id: name };
        }
        let start = 0;
        if (body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) start = 3;
        const text = decodeUtf8Strict(body, start, body.length);
        if (text === undefined) return { reason: "invalid UTF-8 in object", id: name };
        return finish(name === "" ? { reason: "empty object name" } : name, text);
      }
      case "rows": {
        const get: FieldGetter = (f) => (f in block.columns ? block.columns[f]?.[i] : MISSING);
        return finish(idOf(get(this.idField), this.idField), textOf(get, this.source));
      }
    }
  }

  private readLine(block: Extract<RecordBlock, { kind: "lines" }>, i: number): TextRecord {
    const { lines } = block;
    if (lines.oversize[i]) return { reason: "line longer than the line limit" };
    const buf = lines.buf;
    const s = lines.starts[i] as number;
    const e = lines.ends[i] as number;
    if (e <= s) return { reason: "empty line" };
    if (block.format === "jsonl") {
      let obj: Record<string, unknown>;
      try {
        obj = parseJsonLine(buf, s, e);
      } catch (err) {
        if (err instanceof BadRecordError) return { reason: err.reason };
        throw err;
      }
      const get: FieldGetter = (f) => (Object.hasOwn(obj, f) ? obj[f] : MISSING);
      return finish(idOf(get(this.idField), this.idField), textOf(get, this.source));
    }
    const columns = this.csv?.columns;
    const index = this.columnIndex;
    if (!columns || !index) {
      throw new InvalidArgumentError(
        "a CSV input needs its header columns (TextRecordReader csv layout)",
      );
    }
    const status = splitCsvLine(buf, s, e, this.spans, this.csv?.delimiter);
    if (status !== "ok") {
      return {
        reason:
          status === "unterminated_quote" ? "unterminated quote" : "text after a closing quote",
      };
    }
    if (this.spans.count !== columns.length) {
      return { reason: `${this.spans.count} fields where the header has ${columns.length}` };
    }
    let bad: string | undefined;
    const get: FieldGetter = (f) => {
      const k = index.get(f);
      if (k === undefined) return MISSING;
      try {
        return decodeField(
          buf,
          this.spans.starts[k] as number,
          this.spans.ends[k] as number,
          this.spans.kinds[k] as number,
        );
      } catch (err) {
        if (err instanceof BadRecordError) bad ??= `${err.reason} "${f}"`;
        return MISSING;
      }
    };
    const id = idOf(get(this.idField), this.idField);
    const text = textOf(get, this.source);
    if (bad !== undefined) return { reason: bad, ...(typeof id === "string" ? { id } : {}) };
    return finish(id, text);
  }
}
