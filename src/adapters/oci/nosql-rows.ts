/**
 * Rows of OCI NoSQL tables, as the checkpoint store needs them: conditional puts
 * (IF_ABSENT to create, `if-match: <etag>` to compare-and-set), ABSOLUTE reads, and
 * paged queries, each with a retry policy and the not-authorized retry. A retried
 * conditional write is ambiguous (the first attempt may have applied before its
 * response was lost); {@link NosqlRows.compareAndSet} resolves it by re-reading.
 */
import * as common from "oci-common";
import { models, type NosqlClient, requests } from "oci-nosql";
import { ConflictError, NotFoundError, StoreUnavailableError } from "../../core/errors.ts";
import { canonicalJson } from "../../core/ids.ts";
import type { Versioned } from "../../ports/checkpoint-store.ts";
import { type AuthzRetry, retryNotAuthorized } from "./authz-retry.ts";
import { mapOciError, type NotFoundReading, ociStatus } from "./errors.ts";

/** A row's columns as JSON. */
export type Json = Record<string, unknown>;

/** Result of one conditional put. */
export interface PutOutcome {
  /** The new row's version; undefined when the condition (if-match / IF_ABSENT) did not hold. */
  version: string | undefined;
  /** The row that made an IF_ABSENT put fail, when the service returned it. */
  existing: Versioned<Json> | undefined;
  /** The SDK sent the request more than once: an earlier attempt may have been applied. */
  retried: boolean;
}

/** JSON round trip: what the store hands back is exactly what a later read returns (no `undefined` fields). */
export function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Whether two values are the same JSON (canonical form). */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * An etag we can send as `if-match`: a row version is base64, and the NoSQL proxy
 * answers anything else with 400 (oracle/nosql httpproxy). A version of another
 * form (another store's, a caller's guess) can't be the row's: the compare-and-set
 * then re-reads and reports a conflict without sending it. The SDK also drops a
 * falsy header, which would turn a compare-and-set into an unconditional put.
 */
function usableVersion(version: unknown): version is string {
  return (
    typeof version === "string" &&
    version.length <= 512 &&
    version.length % 4 === 0 &&
    /^[A-Za-z0-9+/]+={0,2}$/.test(version)
  );
}

/** Percent-encode a value the SDK puts into the query string as is (it does not encode query values). */
export function queryValue(value: string): string {
  return encodeURIComponent(value);
}

/** What {@link NosqlRows} calls with. */
export interface NosqlRowsOptions {
  client: NosqlClient;
  compartmentId: string;
  /** `limit` per query page. */
  pageSize: number;
  retry: common.RetryConfiguration;
  /** Who calls, named in configuration errors. */
  principal: string | undefined;
  authzRetry: AuthzRetry;
}

/** Conditional writes, ABSOLUTE reads and paged queries on NoSQL tables (see the module comment). */
export class NosqlRows {
  private readonly client: NosqlClient;
  private readonly compartmentId: string;
  private readonly pageSize: number;
  private readonly retry: common.RetryConfiguration;
  private readonly principal: string | undefined;
  private readonly authzRetry: AuthzRetry;

  constructor(options: NosqlRowsOptions) {
    this.client = options.client;
    this.compartmentId = options.compartmentId;
    this.pageSize = options.pageSize;
    this.retry = options.retry;
    this.principal = options.principal;
    this.authzRetry = options.authzRetry;
  }

  /**
   * Every 404 from the NoSQL service is a configuration error: a missing row is a
   * 200 with `value: null` (oracle/nosql httpproxy), so a 404 means the table does
   * not exist in the compartment (`TableNotFound`) or the caller may not use it
   * (`NotAuthorizedOrNotFound`), never "no such job".
   */
  private reading(table: string): NotFoundReading {
    return {
      absent: [],
      principal: this.principal,
      resource: `NoSQL table ${table} in compartment ${this.compartmentId}`,
    };
  }

  /** The `record` column of a row as a versioned record. */
  recordOf<T>(row: Versioned<Json>, what: string): Versioned<T> {
    const record = row.value.record;
    if (!record || typeof record !== "object") {
      throw new StoreUnavailableError(`${what}: the row has no record column`, {
        retryable: false,
      });
    }
    return { value: record as T, version: row.version };
  }

  /**
   * The retry policy for one call, noting whether the SDK retried: its retrier
   * calls the delay strategy before every further attempt, whatever failed
   * (the retry condition is not consulted for network errors).
   */
  private trackedRetry(): { config: common.RetryConfiguration; retried: () => boolean } {
    let retried = false;
    const base = this.retry.delayStrategy ?? new common.ExponentialBackoffDelayStrategy(8);
    return {
      config: {
        ...this.retry,
        delayStrategy: {
          delay: (context) => {
            retried = true;
            return base.delay(context);
          },
        },
      },
      retried: () => retried,
    };
  }

  /** One conditional updateRow: `ifMatch` (compare-and-set) or IF_ABSENT (create); `what` names it in errors. */
  async put(
    table: string,
    row: Json,
    condition: { ifMatch?: string; ifAbsent?: boolean; returnRow?: boolean },
    what: string,
  ): Promise<PutOutcome> {
    return retryNotAuthorized(this.authzRetry, () => this.putOnce(table, row, condition, what));
  }

  private async putOnce(
    table: string,
    row: Json,
    condition: { ifMatch?: string; ifAbsent?: boolean; returnRow?: boolean },
    what: string,
  ): Promise<PutOutcome> {
    const retry = this.trackedRetry();
    try {
      const response = await this.client.updateRow({
        tableNameOrId: table,
        ifMatch: condition.ifMatch,
        updateRowDetails: {
          compartmentId: this.compartmentId,
          value: row,
          ...(condition.ifAbsent
            ? {
                option: models.UpdateRowDetails.Option.IfAbsent,
                isGetReturnRow: condition.returnRow ?? true,
              }
            : {}),
        },
        retryConfiguration: retry.config,
      });
      const result = response.updateRowResult;
      // The body's `version` is the success signal (absent when the condition did not
      // hold). The token handed out is the etag header, the same kind getRow returns;
      // that both carry the same value is assumed (UNCONFIRMED), hence the fallback.
      const version = result?.version ? response.etag || result.version : undefined;
      const existing =
        result?.existingValue && usableVersion(result.existingVersion)
          ? { value: result.existingValue, version: result.existingVersion }
          : undefined;
      return { version, existing, retried: retry.retried() };
    } catch (err) {
      // UNCONFIRMED: a failed condition may come back as 412 rather than 200 without
      // a version; both mean "not written", and the caller decides by re-reading.
      if (ociStatus(err) === 412) {
        return { version: undefined, existing: undefined, retried: retry.retried() };
      }
      throw mapOciError(err, what, this.reading(table));
    }
  }

  /**
   * Compare-and-set, resolving an ambiguous retry: when the SDK retried and the
   * condition then failed, the first attempt may have written our value before
   * its response was lost. If the row now holds exactly what we wrote, that write
   * was ours and succeeded. (If another writer changed the row after our lost
   * write, this reports a conflict: the caller re-reads, which is safe.)
   */
  async compareAndSet<T>(args: {
    table: string;
    row: Json;
    record: T;
    expectedVersion: string;
    key: string[];
    label: string;
    details: Record<string, unknown>;
  }): Promise<Versioned<T>> {
    const what = `updating ${args.label}`;
    let retried = false;
    if (usableVersion(args.expectedVersion)) {
      const out = await this.put(args.table, args.row, { ifMatch: args.expectedVersion }, what);
      if (out.version !== undefined) return { value: args.record, version: out.version };
      retried = out.retried;
    }
    const current = await this.getRow(args.table, args.key, `re-reading ${args.label}`);
    if (!current) {
      throw new NotFoundError(`${args.label} does not exist`, { details: args.details });
    }
    const stored = this.recordOf<T>(current, what);
    if (retried && sameJson(stored.value, args.record)) return stored;
    throw new ConflictError(
      `${args.label} changed: version is ${stored.version}, not ${args.expectedVersion}; re-read and retry`,
      {
        details: {
          ...args.details,
          expectedVersion: args.expectedVersion,
          currentVersion: stored.version,
        },
      },
    );
  }

  /** getRow with ABSOLUTE consistency; undefined for a missing row (200 with `value: null`). */
  async getRow(table: string, key: string[], what: string): Promise<Versioned<Json> | undefined> {
    const response = await retryNotAuthorized(this.authzRetry, async () => {
      try {
        return await this.client.getRow({
          tableNameOrId: table,
          compartmentId: this.compartmentId,
          key,
          consistency: requests.GetRowRequest.Consistency.Absolute,
          retryConfiguration: this.retry,
        });
      } catch (err) {
        throw mapOciError(err, what, this.reading(table));
      }
    });
    const value = response.row?.value;
    if (!value || Object.keys(value).length === 0) return undefined;
    if (!usableVersion(response.etag)) {
      throw new StoreUnavailableError(`${what}: the service returned a row without an etag`);
    }
    return { value, version: response.etag };
  }

  /** Run a query (ABSOLUTE), following `opc-next-page` to the end. */
  async *query(statement: string, variables: Json | undefined, what: string): AsyncGenerator<Json> {
    let page: string | undefined;
    do {
      const table = /\bFROM\s+(\w+)/i.exec(statement)?.[1] ?? "(query)";
      const response = await retryNotAuthorized(this.authzRetry, async () => {
        try {
          return await this.client.query({
            queryDetails: {
              compartmentId: this.compartmentId,
              statement,
              consistency: models.QueryDetails.Consistency.Absolute,
              ...(variables ? { variables } : {}),
            },
            limit: this.pageSize,
            ...(page ? { page: queryValue(page) } : {}),
            retryConfiguration: this.retry,
          });
        } catch (err) {
          throw mapOciError(err, what, this.reading(table));
        }
      });
      for (const item of response.queryResultCollection?.items ?? []) yield item;
      page = response.opcNextPage || undefined;
    } while (page);
  }
}
