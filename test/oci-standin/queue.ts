/**
 * OCI Queue messages API on the stand-in: the routes `QueueClient` calls
 * (`/20210201/queues/{queueId}/...`), with the service's semantics kept in memory:
 * visibility timeouts, a fresh receipt per delivery, delivery counts, the per-queue
 * dead-letter queue, retention, channels and long polls.
 *
 * Where Oracle's documentation leaves the behaviour open (UNCONFIRMED), this
 * stand-in picks one answer and says so next to the code.
 *
 * Each queue lives in a cell with its own messages endpoint (`messagesEndpoint`):
 * that endpoint serves only its cell's queues. IAM (when enforced): GetStats needs
 * QUEUE_READ, PutMessages QUEUE_PRODUCE, the rest QUEUE_CONSUME, with
 * `target.queue.id` (https://docs.oracle.com/en-us/iaas/Content/queue/policy-reference.htm);
 * a refusal is the same 404 NotAuthorizedOrNotFound as a missing queue.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { OperationName } from "./iam-permissions.ts";
import { type OciStandIn, ociError, type StandInRequest, type StandInResponse } from "./server.ts";

/** Settings of a stand-in queue, as `CreateQueueDetails` names them. */
export interface QueueSettings {
  /** Deliveries before a message moves to the DLQ; 0 = never. */
  deadLetterQueueDeliveryCount: number;
  /** Default visibility for getMessages without `visibilityInSeconds`. Default 30. */
  visibilityInSeconds?: number;
  /** How long a message lives. Default 86400 (UNCONFIRMED service default). */
  retentionInSeconds?: number;
  /** Default long poll for getMessages without `timeoutInSeconds`. Default 20. */
  timeoutInSeconds?: number;
  /** Stored only: per-channel fairness is not modelled. */
  channelConsumptionLimit?: number;
  /** The queue's compartment (IAM). Default the stand-in's. */
  compartmentId?: string;
  /** The cell whose messages endpoint serves it. Default `cell-1`. */
  cell?: string;
}

/** A message as {@link QueueStandIn.messages} shows it (for debugging and assertions). */
export interface StandInMessage {
  id: number;
  content: string;
  channelId: string | undefined;
  customProperties: Record<string, string> | undefined;
  deliveryCount: number;
  state: "visible" | "inFlight" | "dlq";
  visibleAt: number;
  expireAt: number;
}

/** Handle on the queue stand-in. */
export interface QueueStandIn {
  /** Create an empty queue (and its DLQ). `messagesEndpoint` here is the catch-all URL. */
  createQueue(id: string, settings: QueueSettings): { id: string; messagesEndpoint: string };
  /** The queue's own messages endpoint (its cell's), as GetQueue reports it. */
  messagesEndpoint(queueId: string): Promise<string>;
  /** Move the stand-in's clock forward (visibility and retention), waking long polls. */
  advance(ms: number): void;
  /** Every message of a queue, main queue first then its DLQ, oldest first. */
  messages(queueId: string): StandInMessage[];
}

/** Largest `content` accepted, in UTF-8 bytes (UNCONFIRMED; the adapter assumes the same). */
const MAX_CONTENT_BYTES = 128 * 1024;
/** Most messages per putMessages and most a getMessages `limit` may be (UNCONFIRMED). */
const MAX_BATCH = 20;
const MAX_TIMEOUT_SECONDS = 20;
/** Longest visibility the service allows (12 hours; UNCONFIRMED). */
const MAX_VISIBILITY_SECONDS = 43_200;
/** How often a waiting long poll re-checks when nothing wakes it (visibility expiries). */
const LONG_POLL_TICK_MS = 50;

interface Message {
  id: number;
  content: string;
  channelId: string | undefined;
  customProperties: Record<string, string> | undefined;
  createdAt: number;
  expireAt: number;
  visibleAt: number;
  deliveryCount: number;
  receipt: string | undefined;
}

interface QueueState {
  settings: Required<Omit<QueueSettings, "compartmentId" | "cell">>;
  compartmentId: string;
  cell: string;
  /** Live messages by id; Map order = id order = FIFO. */
  live: Map<number, Message>;
  dlq: Map<number, Message>;
  /** Current receipts only: a redelivery replaces the message's entry. */
  receipts: Map<string, Message>;
  /** Long polls waiting for something to change. */
  waiters: Set<() => void>;
}

const RECEIPT_FORMAT = /^[A-Za-z0-9_-]{16,}$/;

function badParam(message: string): StandInResponse {
  return ociError(400, "InvalidParameter", message);
}

/** An integer query parameter, or undefined when absent; a string reason when invalid. */
function intParam(
  url: URL,
  name: string,
  min: number,
  max: number,
): number | undefined | { error: string } {
  const raw = url.searchParams.get(name);
  if (raw === null) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    return { error: `${name} must be an integer from ${min} to ${max}, got ${raw}` };
  }
  return value;
}

function parseJson(req: StandInRequest): unknown {
  try {
    return JSON.parse(req.body.toString("utf8"));
  } catch {
    return undefined;
  }
}

/**
 * Mount the Queue messages API on `server`. `now` is the base clock (default
 * `Date.now`); `advance` adds to it. Long-poll deadlines use real time, since an
 * injected clock may stand still.
 */
export function registerQueue(
  server: OciStandIn,
  options: { now?: () => number } = {},
): QueueStandIn {
  const queues = new Map<string, QueueState>();
  const baseNow = options.now ?? Date.now;
  let offsetMs = 0;
  const now = () => baseNow() + offsetMs;
  let nextId = 1;

  const wake = (q: QueueState) => {
    for (const w of q.waiters) w();
    q.waiters.clear();
  };

  /** Retention: drop expired messages (lazily, on every access). */
  const expire = (q: QueueState, at: number) => {
    for (const store of [q.live, q.dlq]) {
      for (const m of store.values()) {
        if (m.expireAt <= at) {
          store.delete(m.id);
          if (m.receipt) q.receipts.delete(m.receipt);
        }
      }
    }
  };

  const withQueue =
    (
      op: OperationName,
      handler: (q: QueueState, req: StandInRequest) => StandInResponse | Promise<StandInResponse>,
    ) =>
    (req: StandInRequest): StandInResponse | Promise<StandInResponse> => {
      const id = req.params.queueId ?? "";
      const q = queues.get(id);
      // Another cell's endpoint does not know the queue; the catch-all URL knows every queue.
      const elsewhere =
        q !== undefined && req.endpoint !== "*" && req.endpoint !== `queue:${q.cell}`;
      if (!q || elsewhere || !server.allows(req, op, q.compartmentId, { "target.queue.id": id })) {
        return ociError(404, "NotAuthorizedOrNotFound", `queue ${id} not found or not authorized`);
      }
      expire(q, now());
      return handler(q, req);
    };

  const toWire = (m: Message) => ({
    id: m.id,
    content: m.content,
    receipt: m.receipt,
    deliveryCount: m.deliveryCount,
    visibleAfter: new Date(m.visibleAt).toISOString(),
    expireAfter: new Date(m.expireAt).toISOString(),
    createdAt: new Date(m.createdAt).toISOString(),
    ...(m.channelId === undefined && m.customProperties === undefined
      ? {}
      : {
          metadata: {
            ...(m.channelId === undefined ? {} : { channelId: m.channelId }),
            ...(m.customProperties === undefined ? {} : { customProperties: m.customProperties }),
          },
        }),
  });

  /**
   * One delivery round. Without a channel filter the service serves one non-empty
   * channel per call ("a random non-empty channel"); the stand-in picks the channel
   * of the oldest deliverable message, so tests stay deterministic.
   */
  const deliver = (
    q: QueueState,
    limit: number,
    visibilitySeconds: number,
    channelFilter: string | undefined,
  ): Message[] => {
    const at = now();
    const out: Message[] = [];
    let channel = channelFilter;
    for (const m of q.live.values()) {
      if (out.length >= limit) break;
      if (m.visibleAt > at) continue;
      if (channelFilter !== undefined && m.channelId !== channelFilter) continue;
      const limitCount = q.settings.deadLetterQueueDeliveryCount;
      if (limitCount > 0 && m.deliveryCount >= limitCount) {
        // Delivered as often as allowed: it moves to the DLQ instead of going out again.
        q.live.delete(m.id);
        if (m.receipt) q.receipts.delete(m.receipt);
        m.receipt = undefined;
        q.dlq.set(m.id, m);
        continue;
      }
      if (channelFilter === undefined) {
        channel ??= m.channelId ?? "";
        if ((m.channelId ?? "") !== channel) continue;
      }
      if (m.receipt) q.receipts.delete(m.receipt);
      m.receipt = randomBytes(24).toString("base64url");
      q.receipts.set(m.receipt, m);
      m.deliveryCount++;
      // A lease never outlives the message's retention.
      m.visibleAt = Math.min(at + visibilitySeconds * 1000, m.expireAt);
      out.push(m);
    }
    return out;
  };

  const getMessages = withQueue("GetMessages", async (q, req) => {
    const visibility = intParam(req.url, "visibilityInSeconds", 0, MAX_VISIBILITY_SECONDS);
    const timeout = intParam(req.url, "timeoutInSeconds", 0, MAX_TIMEOUT_SECONDS);
    const limit = intParam(req.url, "limit", 1, MAX_BATCH);
    for (const p of [visibility, timeout, limit]) {
      if (typeof p === "object") return badParam(p.error);
    }
    const channelFilter = req.url.searchParams.get("channelFilter") ?? undefined;
    const visibilitySeconds = (visibility as number | undefined) ?? q.settings.visibilityInSeconds;
    const timeoutSeconds = (timeout as number | undefined) ?? q.settings.timeoutInSeconds;
    const max = (limit as number | undefined) ?? 1;
    const deadline = performance.now() + timeoutSeconds * 1000;
    for (;;) {
      expire(q, now());
      const got = deliver(q, max, visibilitySeconds, channelFilter);
      const left = deadline - performance.now();
      if (got.length > 0 || left <= 0) return { status: 200, body: { messages: got.map(toWire) } };
      // Woken by a put, a hand-back or a clock advance; the tick catches visibility expiries.
      const ac = new AbortController();
      let waiter = () => {};
      const woken = new Promise<void>((resolve) => {
        waiter = resolve;
      });
      q.waiters.add(waiter);
      await Promise.race([
        woken,
        sleep(Math.min(LONG_POLL_TICK_MS, left), undefined, {
          ref: false,
          signal: ac.signal,
        }).catch(() => undefined),
      ]);
      ac.abort();
      q.waiters.delete(waiter);
    }
  });

  const putMessages = withQueue("PutMessages", (q, req) => {
    const body = parseJson(req) as { messages?: unknown } | undefined;
    const entries = body?.messages;
    if (!Array.isArray(entries) || entries.length === 0) {
      return badParam("messages must be a non-empty array");
    }
    if (entries.length > MAX_BATCH) {
      return badParam(`at most ${MAX_BATCH} messages per request, got ${entries.length}`);
    }
    const parsed: Omit<Message, "id">[] = [];
    const at = now();
    for (const [i, e] of entries.entries()) {
      const entry = e as { content?: unknown; metadata?: unknown };
      if (typeof entry.content !== "string") {
        return badParam(`messages[${i}].content must be a string`);
      }
      const bytes = Buffer.byteLength(entry.content, "utf8");
      if (bytes > MAX_CONTENT_BYTES) {
        return badParam(
          `messages[${i}].content is ${bytes} bytes; the limit is ${MAX_CONTENT_BYTES}`,
        );
      }
      const metadata = entry.metadata as
        | { channelId?: unknown; customProperties?: unknown }
        | undefined;
      if (metadata?.channelId !== undefined && typeof metadata.channelId !== "string") {
        return badParam(`messages[${i}].metadata.channelId must be a string`);
      }
      const props = metadata?.customProperties;
      if (
        props !== undefined &&
        (typeof props !== "object" ||
          props === null ||
          Object.values(props).some((v) => typeof v !== "string"))
      ) {
        return badParam(`messages[${i}].metadata.customProperties must map strings to strings`);
      }
      parsed.push({
        content: entry.content,
        channelId: metadata?.channelId as string | undefined,
        customProperties: props as Record<string, string> | undefined,
        createdAt: at,
        expireAt: at + q.settings.retentionInSeconds * 1000,
        visibleAt: at,
        deliveryCount: 0,
        receipt: undefined,
      });
    }
    const stored = parsed.map((m) => {
      const message: Message = { ...m, id: nextId++ };
      q.live.set(message.id, message);
      return message;
    });
    wake(q);
    return {
      status: 200,
      body: {
        messages: stored.map((m) => ({
          id: m.id,
          expireAfter: new Date(m.expireAt).toISOString(),
        })),
      },
    };
  });

  /**
   * The message a receipt currently holds. UNCONFIRMED which status the service
   * gives a receipt that is no longer current: the stand-in answers 404 (and 400 for
   * one that is not a receipt at all). A receipt stays current until the message is
   * redelivered, deleted or dead-lettered, even after its visibility ran out.
   */
  const byReceipt = (q: QueueState, receipt: string): Message | StandInResponse => {
    if (!RECEIPT_FORMAT.test(receipt)) return badParam("Invalid receipt");
    const m = q.receipts.get(receipt);
    if (!m) {
      return ociError(
        404,
        "NotAuthorizedOrNotFound",
        "no message for this receipt (it was redelivered, deleted or moved to the DLQ)",
      );
    }
    return m;
  };

  const isMessage = (x: Message | StandInResponse): x is Message => "id" in x;

  const setVisibility = (q: QueueState, m: Message, seconds: number) => {
    m.visibleAt = Math.min(now() + seconds * 1000, m.expireAt);
    if (seconds === 0) wake(q);
    return { id: m.id, visibleAfter: new Date(m.visibleAt).toISOString() };
  };

  const visibilityOf = (value: unknown): number | undefined =>
    Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_VISIBILITY_SECONDS
      ? (value as number)
      : undefined;

  const updateMessage = withQueue("UpdateMessage", (q, req) => {
    const found = byReceipt(q, req.params.receipt ?? "");
    if (!isMessage(found)) return found;
    const body = parseJson(req) as { visibilityInSeconds?: unknown } | undefined;
    const seconds = visibilityOf(body?.visibilityInSeconds);
    if (seconds === undefined) {
      return badParam(`visibilityInSeconds must be an integer from 0 to ${MAX_VISIBILITY_SECONDS}`);
    }
    return { status: 200, body: setVisibility(q, found, seconds) };
  });

  const remove = (q: QueueState, m: Message) => {
    q.live.delete(m.id);
    if (m.receipt) q.receipts.delete(m.receipt);
  };

  const deleteMessage = withQueue("DeleteMessage", (q, req) => {
    const found = byReceipt(q, req.params.receipt ?? "");
    if (!isMessage(found)) return found;
    remove(q, found);
    return { status: 204 };
  });

  /** A batch call: per-entry outcomes, failures counted as the service counts them. */
  const batch = (
    req: StandInRequest,
    each: (entry: Record<string, unknown>) => Record<string, unknown> | StandInResponse,
  ): StandInResponse => {
    const body = parseJson(req) as { entries?: unknown } | undefined;
    const entries = body?.entries;
    if (!Array.isArray(entries) || entries.length === 0 || entries.length > MAX_BATCH) {
      return badParam(`entries must be an array of 1 to ${MAX_BATCH} items`);
    }
    let clientFailures = 0;
    const results = entries.map((entry: Record<string, unknown>) => {
      const r = each(entry);
      if ("status" in r && typeof r.status === "number") {
        clientFailures++;
        const err = r.body as { message?: string } | undefined;
        return { errorCode: r.status, errorMessage: err?.message ?? "failed" };
      }
      return r;
    });
    return { status: 200, body: { serverFailures: 0, clientFailures, entries: results } };
  };

  const updateMessages = withQueue("UpdateMessage", (q, req) =>
    batch(req, (entry) => {
      const found = byReceipt(q, String(entry.receipt ?? ""));
      if (!isMessage(found)) return found;
      const seconds = visibilityOf(entry.visibilityInSeconds);
      if (seconds === undefined) return badParam("visibilityInSeconds is out of range");
      return setVisibility(q, found, seconds);
    }),
  );

  const deleteMessages = withQueue("DeleteMessage", (q, req) =>
    batch(req, (entry) => {
      const found = byReceipt(q, String(entry.receipt ?? ""));
      if (!isMessage(found)) return found;
      remove(q, found);
      return {};
    }),
  );

  const getStats = withQueue("GetStats", (q, req) => {
    const at = now();
    const channelId = req.url.searchParams.get("channelId") ?? undefined;
    const count = (store: Map<number, Message>) => {
      const stats = { visibleMessages: 0, inFlightMessages: 0, sizeInBytes: 0 };
      for (const m of store.values()) {
        if (channelId !== undefined && m.channelId !== channelId) continue;
        if (m.visibleAt > at && store === q.live) stats.inFlightMessages++;
        else stats.visibleMessages++;
        stats.sizeInBytes += Buffer.byteLength(m.content, "utf8");
      }
      return stats;
    };
    return {
      status: 200,
      body: {
        queue: count(q.live),
        dlq: count(q.dlq),
        ...(channelId === undefined ? {} : { channelId }),
      },
    };
  });

  const base = "/20210201/queues/:queueId";
  server
    .route("GET", `${base}/messages`, getMessages, "queue")
    .route("POST", `${base}/messages`, putMessages, "queue")
    .route("PUT", `${base}/messages/:receipt`, updateMessage, "queue")
    .route("DELETE", `${base}/messages/:receipt`, deleteMessage, "queue")
    .route("POST", `${base}/messages/actions/updateMessages`, updateMessages, "queue")
    .route("POST", `${base}/messages/actions/deleteMessages`, deleteMessages, "queue")
    .route("GET", `${base}/stats`, getStats, "queue");

  return {
    createQueue(id, settings) {
      if (queues.has(id)) throw new Error(`stand-in queue ${id} already exists`);
      queues.set(id, {
        settings: {
          deadLetterQueueDeliveryCount: settings.deadLetterQueueDeliveryCount,
          visibilityInSeconds: settings.visibilityInSeconds ?? 30,
          retentionInSeconds: settings.retentionInSeconds ?? 86_400,
          timeoutInSeconds: settings.timeoutInSeconds ?? 20,
          channelConsumptionLimit: settings.channelConsumptionLimit ?? 100,
        },
        compartmentId: settings.compartmentId ?? "ocid1.compartment.oc1..standin",
        cell: settings.cell ?? "cell-1",
        live: new Map(),
        dlq: new Map(),
        receipts: new Map(),
        waiters: new Set(),
      });
      return { id, messagesEndpoint: server.url };
    },
    async messagesEndpoint(queueId) {
      const q = queues.get(queueId);
      if (!q) throw new Error(`stand-in queue ${queueId} does not exist`);
      return server.endpoint(`queue:${q.cell}`);
    },
    advance(ms) {
      offsetMs += ms;
      for (const q of queues.values()) wake(q);
    },
    messages(queueId) {
      const q = queues.get(queueId);
      if (!q) throw new Error(`stand-in queue ${queueId} does not exist`);
      const at = now();
      expire(q, at);
      const show = (m: Message, dead: boolean): StandInMessage => ({
        id: m.id,
        content: m.content,
        channelId: m.channelId,
        customProperties: m.customProperties,
        deliveryCount: m.deliveryCount,
        state: dead ? "dlq" : m.visibleAt > at ? "inFlight" : "visible",
        visibleAt: m.visibleAt,
        expireAt: m.expireAt,
      });
      return [
        ...[...q.live.values()].map((m) => show(m, false)),
        ...[...q.dlq.values()].map((m) => show(m, true)),
      ];
    },
  };
}
