/**
 * OCI NoSQL stand-in: tables of JSON rows with per-write etags, on the REST
 * paths `NosqlClient` (oci-nosql 20190828) calls:
 * - `PUT    /20190828/tables/{tableNameOrId}/rows`  updateRow (if-match, IF_ABSENT / IF_PRESENT)
 * - `GET    /20190828/tables/{tableNameOrId}/rows`  getRow (`key=col:value` repeated, compartmentId, consistency)
 * - `DELETE /20190828/tables/{tableNameOrId}/rows`  deleteRow (if-match, isGetReturnRow)
 * - `POST   /20190828/query`                        query (limit, page; opc-next-page)
 *
 * From the NoSQL proxy (oracle/nosql, httpproxy): `if-match` must be a base64 row
 * version, anything else is 400; with `if-match` present, `option`
 * (IF_ABSENT/IF_PRESENT) is ignored; a missing row is 200 with `value: null`;
 * ORDER BY in an unprepared query is rejected.
 *
 * How a failed if-match reports is UNCONFIRMED (412, or 200 with no version):
 * selectable, so the adapter is tested against either.
 *
 * IAM (when enforced): GetRow needs NOSQL_ROWS_READ, UpdateRow NOSQL_ROWS_INSERT,
 * DeleteRow NOSQL_ROWS_DELETE, Query NOSQL_ROWS_READ and NOSQL_TABLE_READ, with
 * `target.nosql-table.name` (see iam-permissions.ts); a refusal is 404
 * NotAuthorizedOrNotFound, a table that does not exist in the compartment 404 TableNotFound.
 */
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import type { OperationName } from "./iam-permissions.ts";
import {
  type Handler,
  type OciStandIn,
  ociError,
  type StandInRequest,
  type StandInResponse,
} from "./server.ts";

/** Behaviour switches for the UNCONFIRMED parts of the service. */
export interface NosqlStandInOptions {
  /** A failed if-match: `"412"` ETagMismatch (default) or `"empty-version"` (200, no version). */
  conditionFailure?: "412" | "empty-version";
  /** Most items a query page holds whatever `limit` asks (the real service also caps by read KB). Default 100. */
  maxPageSize?: number;
}

/** A stored row: its JSON value (key columns included) and its current etag. */
export interface StoredRow {
  value: Record<string, unknown>;
  etag: string;
}

/** What a write hook sees: the write the stand-in just applied. */
export interface AppliedWrite {
  table: string;
  value: Record<string, unknown>;
  etag: string;
  /** The if-match header the write carried, if any. */
  ifMatch: string | undefined;
  option: string | undefined;
}

/**
 * Called after a write is applied; returning a response replaces the real one
 * (e.g. {@link abortConnection} to lose the response of a write that happened).
 */
export type WriteHook = (write: AppliedWrite) => StandInResponse | undefined;

/** Test handle for the NoSQL stand-in's state. */
export interface NosqlStandIn {
  /** Create an empty table keyed by `primaryKey` (column names, shard key first). */
  createTable(name: string, primaryKey: string[], compartmentId?: string): void;
  /** Copies of a table's rows, in primary-key order. */
  rows(table: string): StoredRow[];
  /** Write a row directly (another writer), giving it a new etag; returns the etag. */
  put(table: string, value: Record<string, unknown>): string;
  /** Add a hook run after every applied write; returns its remover. */
  afterWrite(hook: WriteHook): () => void;
}

const API = "/20190828";

interface Table {
  primaryKey: string[];
  compartmentId: string;
  rows: Map<string, StoredRow>;
}

/** A body that tears the connection down instead of answering: the client sees a network error. */
class AbortingBody extends Readable {
  override _read(): void {}
  override pipe<T extends NodeJS.WritableStream>(destination: T): T {
    (destination as unknown as { destroy(): void }).destroy();
    this.destroy();
    return destination;
  }
}

/** A response that drops the connection before any byte is sent (the write, if any, stays applied). */
export function abortConnection(): StandInResponse {
  return { status: 200, body: new AbortingBody() };
}

/** A row version as the proxy hands it out: base64. */
function isRowVersion(value: string): boolean {
  return value.length > 0 && value.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(value);
}

function newEtag(): string {
  // Opaque, with characters (+ / =) that a client must not mangle in a header.
  return randomBytes(12).toString("base64");
}

function usage(
  read: number,
  write: number,
): { readUnitsConsumed: number; writeUnitsConsumed: number } {
  return { readUnitsConsumed: read, writeUnitsConsumed: write };
}

function badRequest(message: string): StandInResponse {
  return ociError(400, "InvalidParameter", message);
}

function parseJsonBody(req: StandInRequest): Record<string, unknown> | StandInResponse {
  try {
    const parsed: unknown = JSON.parse(req.body.toString("utf8"));
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
  } catch {
    // fall through to the 400 below
  }
  return badRequest("request body must be a JSON object");
}

function isResponse(x: unknown): x is StandInResponse {
  return (
    typeof x === "object" && x !== null && typeof (x as { status?: unknown }).status === "number"
  );
}

/** Compare column values as NoSQL orders them: numbers numerically, everything else as strings. */
function compareValues(a: unknown, b: unknown): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

// ---- The query subset --------------------------------------------------------------

interface ParsedQuery {
  projection: string[] | "*";
  table: string;
  where: Array<{ column: string; variable: string }>;
  orderBy: Array<{ column: string; desc: boolean }>;
  declared: Set<string>;
}

const IDENT = "[A-Za-z_][A-Za-z0-9_]*";

/**
 * Parse the statements the checkpoint adapter issues:
 * `[DECLARE $v TYPE; ...] SELECT * | a.col, ... FROM table [[AS] a] [WHERE a.col = $v [AND ...]] [ORDER BY a.col [ASC|DESC], ...]`.
 * Anything else is undefined (answered with 400 naming the statement).
 */
export function parseQuery(statement: string): ParsedQuery | undefined {
  let rest = statement.trim();
  const declared = new Set<string>();
  const declare = new RegExp(`^DECLARE\\s+((?:\\$${IDENT}\\s+${IDENT}\\s*;\\s*)+)`, "i").exec(rest);
  if (declare) {
    for (const m of (declare[1] ?? "").matchAll(
      new RegExp(`\\$(${IDENT})\\s+${IDENT}\\s*;`, "g"),
    )) {
      declared.add(`$${m[1]}`);
    }
    rest = rest.slice(declare[0].length);
  }
  const main = new RegExp(
    `^SELECT\\s+(.+?)\\s+FROM\\s+(${IDENT})(?:\\s+(?:AS\\s+)?(?!WHERE\\b|ORDER\\b)(${IDENT}))?` +
      "(?:\\s+WHERE\\s+(.+?))?(?:\\s+ORDER\\s+BY\\s+(.+?))?\\s*;?$",
    "is",
  ).exec(rest);
  if (!main) return undefined;
  const [, select = "", table = "", alias, where, order] = main;
  const qualifiers = new Set([table, ...(alias ? [alias] : [])]);
  const column = (text: string): string | undefined => {
    const m = new RegExp(`^(?:(${IDENT})\\.)?(${IDENT})$`).exec(text.trim());
    if (!m || (m[1] !== undefined && !qualifiers.has(m[1]))) return undefined;
    return m[2];
  };
  let projection: string[] | "*" = "*";
  if (select.trim() !== "*") {
    const cols = select.split(",").map(column);
    if (cols.some((c) => c === undefined)) return undefined;
    projection = cols as string[];
  }
  const conditions: ParsedQuery["where"] = [];
  for (const part of where ? where.split(/\s+AND\s+/i) : []) {
    const m = new RegExp(`^(.+?)\\s*=\\s*(\\$${IDENT})$`).exec(part.trim());
    const col = m?.[1] === undefined ? undefined : column(m[1]);
    if (!m || col === undefined || m[2] === undefined) return undefined;
    conditions.push({ column: col, variable: m[2] });
  }
  const orderBy: ParsedQuery["orderBy"] = [];
  for (const part of order ? order.split(",") : []) {
    const m = /^(.+?)(?:\s+(ASC|DESC))?$/i.exec(part.trim());
    const col = m?.[1] === undefined ? undefined : column(m[1]);
    if (!m || col === undefined) return undefined;
    orderBy.push({ column: col, desc: (m[2] ?? "").toUpperCase() === "DESC" });
  }
  return { projection, table, where: conditions, orderBy, declared };
}

// ---- Routes ----------------------------------------------------------------------

/** Mount the NoSQL routes on `server`; returns the handle tests use to create tables and look inside. */
export function registerNosql(server: OciStandIn, options: NosqlStandInOptions = {}): NosqlStandIn {
  const conditionFailure = options.conditionFailure ?? "412";
  const route = (method: string, pattern: string, handler: Handler) =>
    server.route(method, pattern, handler, "nosql");
  const maxPageSize = options.maxPageSize ?? 100;
  const tables = new Map<string, Table>();
  const hooks: WriteHook[] = [];

  const rowKey = (table: Table, value: Record<string, unknown>): string | undefined => {
    const parts: string[] = [];
    for (const col of table.primaryKey) {
      const v = value[col];
      if (v === undefined || v === null) return undefined;
      parts.push(String(v));
    }
    return JSON.stringify(parts);
  };

  /**
   * The table a request names in `compartmentId`, if the caller may do `op` on it.
   * Authorization comes first: a refused caller learns nothing about the table.
   */
  const findTable = (
    req: StandInRequest,
    name: string,
    compartmentId: unknown,
    op: OperationName,
  ): Table | StandInResponse => {
    if (typeof compartmentId !== "string" || compartmentId === "") {
      return badRequest("compartmentId is required when the table is given by name");
    }
    if (!server.allows(req, op, compartmentId, { "target.nosql-table.name": name })) {
      return ociError(
        404,
        "NotAuthorizedOrNotFound",
        "Authorization failed or requested resource not found",
      );
    }
    const table = tables.get(name);
    if (!table || table.compartmentId !== compartmentId) {
      return ociError(
        404,
        "TableNotFound",
        `table ${name} does not exist in compartment ${compartmentId}`,
      );
    }
    return table;
  };

  /** `key=col:value` query parameters → the row's key, requiring exactly the primary-key columns. */
  const keyFromQuery = (table: Table, url: URL): string | StandInResponse => {
    const value: Record<string, string> = {};
    for (const pair of url.searchParams.getAll("key")) {
      const colon = pair.indexOf(":");
      if (colon <= 0) return badRequest(`key ${pair} is not column:value`);
      value[pair.slice(0, colon)] = pair.slice(colon + 1);
    }
    const names = Object.keys(value).sort();
    if (names.join(",") !== [...table.primaryKey].sort().join(",")) {
      return badRequest(
        `key must name exactly the primary key columns ${table.primaryKey.join(", ")}`,
      );
    }
    return rowKey(table, value) ?? badRequest("key values must not be empty");
  };

  const applyWrite = (
    tableName: string,
    table: Table,
    key: string,
    value: Record<string, unknown>,
    info: { ifMatch: string | undefined; option: string | undefined },
  ): { etag: string; replaced: StandInResponse | undefined } => {
    const etag = newEtag();
    table.rows.set(key, { value: structuredClone(value), etag });
    let replaced: StandInResponse | undefined;
    for (const hook of [...hooks]) {
      replaced = hook({ table: tableName, value: structuredClone(value), etag, ...info });
      if (replaced) break;
    }
    return { etag, replaced };
  };

  route("PUT", `${API}/tables/:table/rows`, (req) => {
    const body = parseJsonBody(req);
    if (isResponse(body)) return body;
    const table = findTable(req, req.params.table ?? "", body.compartmentId, "UpdateRow");
    if (isResponse(table)) return table;
    const value = body.value;
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      return badRequest("value must be a JSON object");
    }
    const row = value as Record<string, unknown>;
    const key = rowKey(table, row);
    if (key === undefined) {
      return badRequest(`value lacks primary key columns ${table.primaryKey.join(", ")}`);
    }
    const option = body.option === undefined ? undefined : String(body.option);
    if (option !== undefined && option !== "IF_ABSENT" && option !== "IF_PRESENT") {
      return badRequest(`option ${option} is not IF_ABSENT or IF_PRESENT`);
    }
    const ifMatch =
      typeof req.headers["if-match"] === "string" ? req.headers["if-match"] : undefined;
    if (ifMatch !== undefined && !isRowVersion(ifMatch)) {
      return badRequest(`if-match ${ifMatch} is not a row version`);
    }
    const current = table.rows.get(key);
    const returnRow = body.isGetReturnRow === true;
    const existing =
      returnRow && current
        ? { existingVersion: current.etag, existingValue: structuredClone(current.value) }
        : {};
    if (ifMatch !== undefined && current?.etag !== ifMatch) {
      if (conditionFailure === "412") {
        return ociError(412, "ETagMismatch", "the row's etag does not match if-match");
      }
      return { status: 200, body: { ...existing, usage: usage(1, 0) } };
    }
    // With if-match the proxy ignores `option`: the version decides.
    if (
      ifMatch === undefined &&
      ((option === "IF_ABSENT" && current) || (option === "IF_PRESENT" && !current))
    ) {
      return { status: 200, body: { ...existing, usage: usage(1, 0) } };
    }
    const { etag, replaced } = applyWrite(req.params.table ?? "", table, key, row, {
      ifMatch,
      option,
    });
    return (
      replaced ?? { status: 200, headers: { etag }, body: { version: etag, usage: usage(0, 1) } }
    );
  });

  route("GET", `${API}/tables/:table/rows`, (req) => {
    const table = findTable(
      req,
      req.params.table ?? "",
      req.url.searchParams.get("compartmentId"),
      "GetRow",
    );
    if (isResponse(table)) return table;
    const consistency = req.url.searchParams.get("consistency");
    if (consistency !== null && consistency !== "ABSOLUTE" && consistency !== "EVENTUAL") {
      return badRequest(`consistency ${consistency} is not ABSOLUTE or EVENTUAL`);
    }
    const key = keyFromQuery(table, req.url);
    if (isResponse(key)) return key;
    const row = table.rows.get(key);
    if (!row) return { status: 200, body: { value: null, usage: usage(1, 0) } };
    return {
      status: 200,
      headers: { etag: row.etag },
      body: { value: structuredClone(row.value), usage: usage(1, 0) },
    };
  });

  route("DELETE", `${API}/tables/:table/rows`, (req) => {
    const table = findTable(
      req,
      req.params.table ?? "",
      req.url.searchParams.get("compartmentId"),
      "DeleteRow",
    );
    if (isResponse(table)) return table;
    const key = keyFromQuery(table, req.url);
    if (isResponse(key)) return key;
    const ifMatch =
      typeof req.headers["if-match"] === "string" ? req.headers["if-match"] : undefined;
    if (ifMatch !== undefined && !isRowVersion(ifMatch)) {
      return badRequest(`if-match ${ifMatch} is not a row version`);
    }
    const current = table.rows.get(key);
    const existing =
      req.url.searchParams.get("isGetReturnRow") === "true" && current
        ? { existingVersion: current.etag, existingValue: structuredClone(current.value) }
        : {};
    if (ifMatch !== undefined && current?.etag !== ifMatch) {
      if (conditionFailure === "412") {
        return ociError(412, "ETagMismatch", "the row's etag does not match if-match");
      }
      return { status: 200, body: { isSuccess: false, ...existing, usage: usage(1, 0) } };
    }
    if (!current) return { status: 200, body: { isSuccess: false, usage: usage(1, 0) } };
    table.rows.delete(key);
    return { status: 200, body: { isSuccess: true, ...existing, usage: usage(1, 1) } };
  });

  route("POST", `${API}/query`, (req) => {
    const body = parseJsonBody(req);
    if (isResponse(body)) return body;
    if (body.isPrepared === true) return badRequest("the stand-in runs only unprepared statements");
    const statement = typeof body.statement === "string" ? body.statement : "";
    const query = parseQuery(statement);
    if (!query) return badRequest(`the NoSQL stand-in does not support statement: ${statement}`);
    if (query.orderBy.length > 0) {
      return badRequest(`ORDER BY needs a prepared query: ${statement}`);
    }
    const table = findTable(req, query.table, body.compartmentId, "Query");
    if (isResponse(table)) return table;
    const variables = (body.variables ?? {}) as Record<string, unknown>;
    for (const { variable } of query.where) {
      if (!query.declared.has(variable)) {
        return badRequest(`external variable ${variable} is not declared in: ${statement}`);
      }
      // Bindings are keyed with the "$", as the NoSQL drivers' bindings are (UNCONFIRMED for REST).
      if (!(variable in variables)) return badRequest(`no value bound for ${variable}`);
    }

    const limitParam = req.url.searchParams.get("limit");
    const limit = limitParam === null ? maxPageSize : Number(limitParam);
    if (!Number.isSafeInteger(limit) || limit < 1)
      return badRequest(`limit ${limitParam} is invalid`);
    const pageSize = Math.min(limit, maxPageSize);
    // The page token pins the statement and bindings it was issued for.
    const fingerprint = createHash("sha256")
      .update(JSON.stringify([statement, variables]))
      .digest("hex")
      .slice(0, 16);
    let offset = 0;
    const page = req.url.searchParams.get("page");
    if (page !== null) {
      const decoded = decodePageToken(page);
      if (!decoded || decoded.fingerprint !== fingerprint) {
        return badRequest(`page token ${page} is not valid for this statement`);
      }
      offset = decoded.offset;
    }

    let matched = [...table.rows.values()]
      .map((r) => r.value)
      .filter((v) => query.where.every((c) => v[c.column] === variables[c.variable]));
    const order =
      query.orderBy.length > 0
        ? query.orderBy
        : table.primaryKey.map((column) => ({ column, desc: false }));
    matched = matched.sort((a, b) => {
      for (const { column, desc } of order) {
        const d = compareValues(a[column], b[column]);
        if (d !== 0) return desc ? -d : d;
      }
      return 0;
    });
    const slice = matched.slice(offset, offset + pageSize);
    const projection = query.projection;
    const items = slice.map((v) =>
      projection === "*"
        ? structuredClone(v)
        : Object.fromEntries(projection.map((c) => [c, structuredClone(v[c] ?? null)])),
    );
    const next = offset + slice.length;
    const headers: Record<string, string> =
      next < matched.length ? { "opc-next-page": encodePageToken(fingerprint, next) } : {};
    return { status: 200, headers, body: { items, usage: usage(slice.length + 1, 0) } };
  });

  return {
    createTable(name, primaryKey, compartmentId = "ocid1.compartment.oc1..standin") {
      if (primaryKey.length === 0) throw new Error(`table ${name} needs a primary key`);
      if (!tables.has(name)) {
        tables.set(name, { primaryKey: [...primaryKey], compartmentId, rows: new Map() });
      }
    },
    rows(name) {
      const table = tables.get(name);
      if (!table) throw new Error(`no stand-in table ${name}`);
      return [...table.rows.values()]
        .map((r) => ({ value: structuredClone(r.value), etag: r.etag }))
        .sort((a, b) => {
          for (const col of table.primaryKey) {
            const d = compareValues(a.value[col], b.value[col]);
            if (d !== 0) return d;
          }
          return 0;
        });
    },
    put(name, value) {
      const table = tables.get(name);
      if (!table) throw new Error(`no stand-in table ${name}`);
      const key = rowKey(table, value);
      if (key === undefined)
        throw new Error(`row lacks primary key ${table.primaryKey.join(", ")}`);
      const etag = newEtag();
      table.rows.set(key, { value: structuredClone(value), etag });
      return etag;
    },
    afterWrite(hook) {
      hooks.push(hook);
      return () => {
        const i = hooks.indexOf(hook);
        if (i >= 0) hooks.splice(i, 1);
      };
    },
  };
}

/**
 * Page tokens are opaque and deliberately carry `+`, `/` and `=`: a client that
 * puts one into the query string without percent-encoding it gets a 400.
 */
function encodePageToken(fingerprint: string, offset: number): string {
  return `p+/${Buffer.from(JSON.stringify({ f: fingerprint, o: offset })).toString("base64")}`;
}

function decodePageToken(token: string): { fingerprint: string; offset: number } | undefined {
  if (!token.startsWith("p+/")) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token.slice(3), "base64").toString("utf8")) as {
      f?: unknown;
      o?: unknown;
    };
    if (typeof parsed.f !== "string" || !Number.isSafeInteger(parsed.o)) return undefined;
    return { fingerprint: parsed.f, offset: parsed.o as number };
  } catch {
    return undefined;
  }
}
