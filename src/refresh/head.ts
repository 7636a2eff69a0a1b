/**
 * The corpus head: one small JSON object per corpus (layout.ts) that says which
 * generation of embeddings is current, with which model, whether a refresh is in
 * flight and whether more events arrived meanwhile. Every change is a
 * compare-and-set on the object's etag (a conditional put), so two refreshers — two
 * function instances, two CLI runs, a worker finishing a job — never both advance it.
 */
import {
  ConflictError,
  NotFoundError,
  PipelineError,
  PreconditionFailedError,
} from "../core/errors.ts";
import type { ObjectStore } from "../ports/object-store.ts";
import { readBytes } from "../sources/read-bytes.ts";
import type { CorpusLayout, CorpusRef } from "./layout.ts";

/** What a refresh is run with (the CLI flags, or the refresh function's config). */
export interface RefreshSettings {
  corpus: CorpusRef;
  /** Where refresh objects go: `<bucket>/<prefix>/<corpus key>/` (layout.ts). */
  output: { bucket: string; prefix: string };
  /** The text-embedding model's descriptor location. */
  model: string;
  /** Job spec fields of the embedding jobs (partition and checkpoint sizes, leases, attempts). */
  job?: {
    partitionRecords?: number;
    checkpointEvery?: number;
    visibilitySeconds?: number;
    maxAttempts?: number;
  };
}

/** The model a generation's vectors come from. */
export interface EmbeddingModelRef {
  name: string;
  version: string;
  /** sha256 over the ONNX file and every setting that changes a vector (model-dir.ts). */
  identity: string;
  dimension: number;
}

/** Documents per outcome of one refresh. */
export interface RefreshCounts {
  /** Listed for the first time (or first time embedded), embedded now. */
  new: number;
  /** Content or model changed, embedded again now. */
  changed: number;
  /** Carried over: same content (etag, or content hash when only the etag changed) and model. */
  unchanged: number;
  /** Gone from the listing: removed from the set, a delete in the delta. */
  deleted: number;
  /** Could not be embedded now: in failed.jsonl, retried by the next refresh. */
  failed: number;
}

/** A finished generation. */
export interface GenerationRef {
  generation: number;
  embeddings: string;
  delta: string;
  state: string;
  failed: string;
  summary: string;
  documents: number;
  rows: number;
  counts: RefreshCounts;
  jobId?: string;
  completedAt: string;
  /** Outbox flag: the refresh.completed event has been published. */
  eventPublished: boolean;
}

/**
 * A refresh in flight. It is claimed before anything is listed (`planning`: one
 * planner at a time, whatever fires), then planned (the plan is durable), then its
 * embedding job runs; finishing it makes the next generation.
 */
export interface ActiveRefresh {
  /** The generation it makes. */
  generation: number;
  startedAt: string;
  settings: RefreshSettings;
  /** Set while listing and planning: who plans, and until when the claim holds. */
  planning?: { owner: string; until: number };
  /** The model the plan was made for. */
  model?: EmbeddingModelRef;
  /** The plan (one line per document of listing ∪ previous state), and when it was made. */
  plan?: string;
  plannedAt?: number;
  /** The documents to embed, as an object-list manifest (absent: nothing to embed). */
  manifest?: string;
  /** What the plan decided (new/changed = to embed; failures are known at the end). */
  planned?: { new: number; changed: number; unchanged: number; deleted: number; touched: number };
  /** The embedding job, once created. */
  jobId?: string;
}

/** The corpus head (head.json). */
export interface CorpusHead {
  format: 1;
  corpus: CorpusRef;
  /** The current generation (0 = none yet). */
  generation: number;
  /** The model of the current generation's vectors. */
  model?: EmbeddingModelRef;
  current?: GenerationRef;
  active?: ActiveRefresh;
  /** Events arrived while a refresh ran: one more refresh follows it. */
  dirty: boolean;
  /** Refresh requests seen (events, commands), for people. */
  requests: number;
  updatedAt: string;
}

/** The head as read, with the etag a compare-and-set needs (undefined: no head yet). */
export interface HeadRead {
  head: CorpusHead | undefined;
  etag: string | undefined;
}

/** A fresh head for a corpus that has never been refreshed. */
export function emptyHead(corpus: CorpusRef, now: Date): CorpusHead {
  return {
    format: 1,
    corpus,
    generation: 0,
    dirty: false,
    requests: 0,
    updatedAt: now.toISOString(),
  };
}

/** Read the head (head first, then body: a body newer than the etag fails the next put). */
export async function readHead(store: ObjectStore, layout: CorpusLayout): Promise<HeadRead> {
  const info = await store.head(layout.bucket, layout.head);
  if (!info) return { head: undefined, etag: undefined };
  let body: Buffer;
  try {
    body = await readBytes(store, layout.bucket, layout.head);
  } catch (err) {
    // Deleted between head and read: as if absent; the put's condition sorts it out.
    if (err instanceof NotFoundError) {
      return { head: undefined, etag: undefined };
    }
    throw err;
  }
  let head: CorpusHead;
  try {
    head = JSON.parse(body.toString("utf8")) as CorpusHead;
  } catch {
    throw new PipelineError(
      "INTERNAL",
      `corpus head ${layout.bucket}/${layout.head} is not JSON: it was damaged; delete it to start the corpus over (every document is embedded again)`,
    );
  }
  return { head, etag: info.etag };
}

/** Write `head` only if the stored head is still `etag` (absent: only if there is none). */
export async function putHead(
  store: ObjectStore,
  layout: CorpusLayout,
  head: CorpusHead,
  etag: string | undefined,
): Promise<string> {
  try {
    const res = await store.put(layout.bucket, layout.head, `${JSON.stringify(head, null, 1)}\n`, {
      contentType: "application/json",
      ...(etag === undefined ? { ifNoneMatch: "*" as const } : { ifMatch: etag }),
    });
    return res.etag;
  } catch (err) {
    if (err instanceof PreconditionFailedError) {
      throw new ConflictError(`corpus head ${layout.head} changed meanwhile`, { cause: err });
    }
    throw err;
  }
}

/**
 * Read-modify-write the head by compare-and-set, retried on conflict. `change` gets
 * the current head (or a fresh one) and returns the new head, or undefined to leave
 * it as it is. Returns the head as stored afterwards and whether this call changed it.
 */
export async function updateHead(
  store: ObjectStore,
  layout: CorpusLayout,
  corpus: CorpusRef,
  now: () => number,
  change: (head: CorpusHead) => CorpusHead | undefined,
): Promise<{ head: CorpusHead; changed: boolean }> {
  for (let attempt = 1; ; attempt++) {
    const read = await readHead(store, layout);
    const current = read.head ?? emptyHead(corpus, new Date(now()));
    const next = change(structuredClone(current));
    if (!next) return { head: current, changed: false };
    next.updatedAt = new Date(now()).toISOString();
    try {
      await putHead(store, layout, next, read.etag);
      return { head: next, changed: true };
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= 50) throw err;
      // Someone else changed it: read again and redo the change on their version.
      await new Promise((r) => setTimeout(r, Math.min(200, 5 * attempt)));
    }
  }
}
