/**
 * The line formats of a refresh's objects, each sorted by document id (code-unit
 * order, as listings are):
 *
 * - plan line: `["id", "action", "etag", size, previousRows]`; action is `new`,
 *   `changed` (both: to embed), `keep` (same etag), `touched` (new etag, same content
 *   hash: carried over) or `delete` (gone from the listing).
 * - state line: `["id", "etag", size, "sha256", rows, offset, length]`: the object
 *   version last seen, the sha256 of the bytes its vectors were made from (what the
 *   worker read, not what was listed), its rows in the generation's embedding set and
 *   their byte range there. Keyed by id, never by hash: two documents may share content.
 * - embedding row: the job's output row as written, `{"id":…,["chunk":…,]"embedding":[…],"sha256":…}`.
 */
import { PipelineError } from "../core/errors.ts";
import type { LineRef } from "./streams.ts";

/** What a refresh does with one document. */
export type PlanAction = "new" | "changed" | "keep" | "touched" | "delete";

/** One plan line. */
export interface PlanLine {
  id: string;
  action: PlanAction;
  /** The listed etag and size (the previous state's for `delete`). */
  etag: string;
  size: number;
  /** Rows the document has in the previous generation (0 when none). */
  previousRows: number;
}

/** One state line. */
export interface StateEntry {
  id: string;
  etag: string;
  size: number;
  sha256: string;
  rows: number;
  offset: number;
  length: number;
}

const ACTIONS = new Set<PlanAction>(["new", "changed", "keep", "touched", "delete"]);

function damaged(what: string, line: string): PipelineError {
  return new PipelineError(
    "INTERNAL",
    `${what} line is not in the expected form: ${JSON.stringify(line.slice(0, 120))}; the refresh's objects were damaged — delete the corpus head to start over`,
  );
}

/** Encode a plan line (with its newline). */
export function encodePlanLine(p: PlanLine): string {
  return `${JSON.stringify([p.id, p.action, p.etag, p.size, p.previousRows])}\n`;
}

/** Parse a plan line. */
export function parsePlanLine(l: LineRef): PlanLine {
  const text = l.buf.toString("utf8", l.start, l.end);
  const v = JSON.parse(text) as unknown;
  if (
    !Array.isArray(v) ||
    typeof v[0] !== "string" ||
    !ACTIONS.has(v[1] as PlanAction) ||
    typeof v[2] !== "string" ||
    typeof v[3] !== "number" ||
    typeof v[4] !== "number"
  ) {
    throw damaged("plan", text);
  }
  return { id: v[0], action: v[1] as PlanAction, etag: v[2], size: v[3], previousRows: v[4] };
}

/** Encode a state line (with its newline). */
export function encodeStateLine(s: StateEntry): string {
  return `${JSON.stringify([s.id, s.etag, s.size, s.sha256, s.rows, s.offset, s.length])}\n`;
}

/** Parse a state line. */
export function parseStateLine(l: LineRef): StateEntry {
  const text = l.buf.toString("utf8", l.start, l.end);
  const v = JSON.parse(text) as unknown;
  if (
    !Array.isArray(v) ||
    v.length !== 7 ||
    typeof v[0] !== "string" ||
    typeof v[1] !== "string" ||
    typeof v[3] !== "string" ||
    !v.slice(4).every((n) => Number.isSafeInteger(n)) ||
    typeof v[2] !== "number"
  ) {
    throw damaged("state", text);
  }
  return {
    id: v[0],
    etag: v[1],
    size: v[2],
    sha256: v[3],
    rows: v[4] as number,
    offset: v[5] as number,
    length: v[6] as number,
  };
}

const ID_PREFIX = Buffer.from('{"id":"');
const SHA_KEY = Buffer.from('"sha256":"');

/** The id, chunk and content hash of an embedding row, read without parsing its vector. */
export function rowHead(l: LineRef): { id: string; chunk: number; sha256: string } {
  const { buf, start, end } = l;
  if (buf.compare(ID_PREFIX, 0, ID_PREFIX.length, start, start + ID_PREFIX.length) === 0) {
    // The id's closing quote: the first '"' not escaped by a backslash.
    let q = start + ID_PREFIX.length;
    while (q < end && buf[q] !== 0x22) q += buf[q] === 0x5c ? 2 : 1;
    const id = JSON.parse(buf.toString("utf8", start + ID_PREFIX.length - 1, q + 1)) as string;
    let chunk = 0;
    const chunkKey = ',"chunk":';
    if (buf.toString("latin1", q + 1, q + 1 + chunkKey.length) === chunkKey) {
      let e = q + 1 + chunkKey.length;
      let n = 0;
      while (
        e < end &&
        buf[e] !== undefined &&
        (buf[e] as number) >= 0x30 &&
        (buf[e] as number) <= 0x39
      ) {
        n = n * 10 + ((buf[e] as number) - 0x30);
        e++;
      }
      chunk = n;
    }
    const at = buf.lastIndexOf(SHA_KEY, end);
    const sha256 =
      at > q ? buf.toString("latin1", at + SHA_KEY.length, at + SHA_KEY.length + 64) : "";
    return { id, chunk, sha256 };
  }
  // Not the writer's own form (a hand-made row): parse it whole.
  const text = buf.toString("utf8", start, end);
  let v: { id?: unknown; chunk?: unknown; sha256?: unknown };
  try {
    v = JSON.parse(text) as typeof v;
  } catch {
    throw damaged("embedding", text);
  }
  if (typeof v.id !== "string") throw damaged("embedding", text);
  return {
    id: v.id,
    chunk: typeof v.chunk === "number" ? v.chunk : 0,
    sha256: typeof v.sha256 === "string" ? v.sha256 : "",
  };
}

/** A delta line that removes a document's vectors (all of them, or one chunk's). */
export function deleteLine(id: string, chunk?: number): string {
  return `${JSON.stringify(chunk === undefined ? { op: "delete", id } : { op: "delete", id, chunk })}\n`;
}

const UPSERT = Buffer.from('{"op":"upsert",');

/** The delta line that upserts an embedding row (`{"op":"upsert",` + the row after its `{`). */
export function upsertLine(l: LineRef): Buffer {
  const out = Buffer.allocUnsafe(UPSERT.length + (l.end - l.start - 1) + 1);
  UPSERT.copy(out, 0);
  l.buf.copy(out, UPSERT.length, l.start + 1, l.end);
  out[out.length - 1] = 10;
  return out;
}
