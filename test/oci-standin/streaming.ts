/**
 * OCI Streaming stand-in (the messages endpoint, API 20180418): PutMessages,
 * CreateCursor and GetMessages, with the service's semantics: a message's
 * partition is a hash of its key (same key → same partition), offsets count up
 * by one per partition, and an oversized key or value fails that entry alone
 * (HTTP 200 with `error`/`errorMessage` on the entry and a `failures` count),
 * as the service reports per-message errors such as throttling ("429").
 *
 * Each stream is served on its own messages endpoint (`messagesEndpoint`).
 * IAM (when enforced): PutMessages needs STREAM_PRODUCE, cursors and GetMessages
 * STREAM_CONSUME, with `target.stream.id`
 * (https://docs.oracle.com/en-us/iaas/Content/Identity/policyreference/streamingpolicyreference.htm);
 * a refusal is the same 404 NotAuthorizedOrNotFound as a missing stream.
 */
import { createHash, randomBytes } from "node:crypto";
import type { OperationName } from "./iam-permissions.ts";
import {
  type Handler,
  type OciStandIn,
  ociError,
  type StandInRequest,
  type StandInResponse,
} from "./server.ts";

/** The service's largest key and value. */
export const MAX_KEY_BYTES = 256;
export const MAX_VALUE_BYTES = 1024 * 1024;
/** GetMessages' largest `limit`. UNCONFIRMED: the docs say up to 10000. */
const MAX_GET_LIMIT = 10_000;

/** A message as stored. */
export interface StoredMessage {
  partition: number;
  offset: number;
  key: Buffer;
  value: Buffer;
  timestamp: Date;
}

interface Stream {
  id: string;
  compartmentId: string;
  partitions: StoredMessage[][];
}

/** Handle for tests: create streams, read what was stored, inject per-entry failures. */
export interface StreamingStandIn {
  createStream(id: string, partitions: number, compartmentId?: string): void;
  /** The stream's own messages endpoint, as GetStream reports it. */
  messagesEndpoint(streamId: string): Promise<string>;
  /** Every message of the stream, partition by partition, in offset order. */
  messages(streamId: string): StoredMessage[];
  /** The partition a key lands on (the service's hash, exposed so tests can reason about it). */
  partitionOf(streamId: string, key: Buffer): number;
  /** Fail the next `count` entries with a per-entry error (default 429, as throttling does). */
  failNextEntries(count: number, error?: { code: string; message: string }): void;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64(value: unknown): Buffer | undefined {
  if (typeof value !== "string" || value.length % 4 !== 0 || !BASE64.test(value)) return undefined;
  return Buffer.from(value, "base64");
}

function partitionFor(key: Buffer, count: number): number {
  return createHash("sha256").update(key).digest().readUInt32BE(0) % count;
}

/** Cursors are opaque to clients; here they carry the position (stream, partition, next offset). */
function encodeCursor(streamId: string, partition: number, offset: number): string {
  return Buffer.from(JSON.stringify({ s: streamId, p: partition, o: offset })).toString("base64");
}

function decodeCursor(value: string): { s: string; p: number; o: number } | undefined {
  try {
    const c = JSON.parse(Buffer.from(value, "base64").toString("utf8")) as Record<string, unknown>;
    if (typeof c.s === "string" && Number.isInteger(c.p) && Number.isInteger(c.o)) {
      return c as { s: string; p: number; o: number };
    }
  } catch {
    // Not one of ours.
  }
  return undefined;
}

function parseJson(req: StandInRequest): Record<string, unknown> | undefined {
  try {
    const body = JSON.parse(req.body.toString("utf8")) as unknown;
    return body && typeof body === "object" ? (body as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Mount the Streaming message routes on `server`. */
export function registerStreaming(server: OciStandIn): StreamingStandIn {
  const streams = new Map<string, Stream>();
  const failures: { code: string; message: string }[] = [];

  const streamOf = (req: StandInRequest, op: OperationName): Stream | StandInResponse => {
    const id = req.params.streamId ?? "";
    const stream = streams.get(id);
    const elsewhere =
      stream !== undefined && req.endpoint !== "*" && req.endpoint !== `streaming:${id}`;
    if (
      !stream ||
      elsewhere ||
      !server.allows(req, op, stream.compartmentId, { "target.stream.id": id })
    ) {
      return ociError(404, "NotAuthorizedOrNotFound", `stream ${id} not found or not authorized`);
    }
    return stream;
  };

  const route = (method: string, pattern: string, handler: Handler) =>
    server.route(method, pattern, handler, "streaming");

  route("POST", "/20180418/streams/:streamId/messages", (req) => {
    const stream = streamOf(req, "StreamPutMessages");
    if (!("partitions" in stream)) return stream;
    const body = parseJson(req);
    const messages = body?.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      return ociError(400, "InvalidParameter", "messages must be a non-empty array");
    }
    // The whole request is checked for well-formedness first: a malformed one stores nothing.
    const decoded: { key: Buffer | undefined; value: Buffer }[] = [];
    for (const [i, m] of messages.entries()) {
      const entry = (m ?? {}) as { key?: unknown; value?: unknown };
      const value = decodeBase64(entry.value);
      if (!value) return ociError(400, "InvalidParameter", `messages[${i}].value is not base64`);
      let key: Buffer | undefined;
      if (entry.key !== undefined && entry.key !== null) {
        key = decodeBase64(entry.key);
        if (!key) return ociError(400, "InvalidParameter", `messages[${i}].key is not base64`);
      }
      decoded.push({ key, value });
    }
    let failed = 0;
    const entries = decoded.map(({ key, value }) => {
      const injected = failures.shift();
      if (injected) {
        failed++;
        return { error: injected.code, errorMessage: injected.message };
      }
      if (key && key.length > MAX_KEY_BYTES) {
        failed++;
        return {
          error: "400",
          errorMessage: `message key is ${key.length} bytes; the limit is ${MAX_KEY_BYTES}`,
        };
      }
      if (value.length > MAX_VALUE_BYTES) {
        failed++;
        return {
          error: "400",
          errorMessage: `message value is ${value.length} bytes; the limit is ${MAX_VALUE_BYTES}`,
        };
      }
      // No key: the service makes one up, so such messages spread over partitions.
      const k = key ?? randomBytes(16);
      const partition = partitionFor(k, stream.partitions.length);
      const log = stream.partitions[partition] as StoredMessage[];
      const stored: StoredMessage = {
        partition,
        offset: log.length,
        key: k,
        value,
        timestamp: new Date(),
      };
      log.push(stored);
      return {
        partition: String(partition),
        offset: stored.offset,
        timestamp: stored.timestamp.toISOString(),
      };
    });
    return { status: 200, body: { failures: failed, entries } };
  });

  route("POST", "/20180418/streams/:streamId/cursors", (req) => {
    const stream = streamOf(req, "CreateCursor");
    if (!("partitions" in stream)) return stream;
    const body = parseJson(req) ?? {};
    const partition = Number(body.partition);
    if (!Number.isInteger(partition) || partition < 0 || partition >= stream.partitions.length) {
      return ociError(
        400,
        "InvalidParameter",
        `partition ${String(body.partition)} does not exist`,
      );
    }
    const log = stream.partitions[partition] as StoredMessage[];
    const offset = Number(body.offset);
    let next: number;
    switch (body.type) {
      case "TRIM_HORIZON":
        next = 0;
        break;
      case "LATEST":
        next = log.length;
        break;
      case "AT_OFFSET":
      case "AFTER_OFFSET":
        if (!Number.isInteger(offset) || offset < 0) {
          return ociError(400, "InvalidParameter", `${body.type} needs an offset`);
        }
        next = body.type === "AT_OFFSET" ? offset : offset + 1;
        break;
      case "AT_TIME": {
        const time = Date.parse(String(body.time));
        if (Number.isNaN(time)) return ociError(400, "InvalidParameter", "AT_TIME needs a time");
        const i = log.findIndex((m) => m.timestamp.getTime() >= time);
        next = i < 0 ? log.length : i;
        break;
      }
      default:
        return ociError(400, "InvalidParameter", `unknown cursor type ${String(body.type)}`);
    }
    return { status: 200, body: { value: encodeCursor(stream.id, partition, next) } };
  });

  route("GET", "/20180418/streams/:streamId/messages", (req) => {
    const stream = streamOf(req, "StreamGetMessages");
    if (!("partitions" in stream)) return stream;
    const cursor = decodeCursor(req.url.searchParams.get("cursor") ?? "");
    const log = cursor && cursor.s === stream.id ? stream.partitions[cursor.p] : undefined;
    if (!cursor || !log) return ociError(400, "InvalidParameter", "cursor is missing or invalid");
    const limitParam = req.url.searchParams.get("limit");
    const limit = limitParam === null ? MAX_GET_LIMIT : Number(limitParam);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_GET_LIMIT) {
      return ociError(400, "InvalidParameter", `limit must be 1..${MAX_GET_LIMIT}`);
    }
    const batch = log.slice(cursor.o, cursor.o + limit);
    return {
      status: 200,
      headers: { "opc-next-cursor": encodeCursor(stream.id, cursor.p, cursor.o + batch.length) },
      body: batch.map((m) => ({
        stream: stream.id,
        partition: String(m.partition),
        key: m.key.toString("base64"),
        value: m.value.toString("base64"),
        offset: m.offset,
        timestamp: m.timestamp.toISOString(),
      })),
    };
  });

  return {
    createStream(id, partitions, compartmentId = "ocid1.compartment.oc1..standin") {
      if (!Number.isInteger(partitions) || partitions < 1) {
        throw new Error(`stream ${id}: partitions must be a positive integer`);
      }
      streams.set(id, {
        id,
        compartmentId,
        partitions: Array.from({ length: partitions }, () => []),
      });
    },
    messagesEndpoint(streamId) {
      if (!streams.has(streamId)) throw new Error(`no stream ${streamId}`);
      return server.endpoint(`streaming:${streamId}`);
    },
    messages(streamId) {
      const stream = streams.get(streamId);
      if (!stream) throw new Error(`no stream ${streamId}`);
      return stream.partitions.flat();
    },
    partitionOf(streamId, key) {
      const stream = streams.get(streamId);
      if (!stream) throw new Error(`no stream ${streamId}`);
      return partitionFor(key, stream.partitions.length);
    },
    failNextEntries(count, error) {
      for (let i = 0; i < count; i++) {
        failures.push(
          error ?? {
            code: "429",
            message:
              "Request was throttled because bytes limit exhausted, next request can be made in 100 ms",
          },
        );
      }
    },
  };
}
