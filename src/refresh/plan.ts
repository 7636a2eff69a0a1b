/**
 * Planning a refresh: list the corpus prefix page by page and merge-join it against
 * the previous generation's state (both sorted by id), deciding per document —
 * new, changed, unchanged (same etag), touched (new etag, same content hash: read and
 * hashed here, not embedded), or deleted. Writes the plan (every document) and the
 * manifest of the documents to embed (an object-list manifest, so the embedding job
 * is an ordinary job over objects). Memory: one listing page and one state block.
 *
 * A model change (any setting that changes a vector: model-dir.ts identity) makes
 * every listed document "changed": all are embedded again.
 */
import { createHash } from "node:crypto";
import { NotFoundError } from "../core/errors.ts";
import type { ObjectInfo, ObjectStore } from "../ports/object-store.ts";
import {
  DEFAULT_MAX_OBJECTS,
  encodeManifestLine,
  type ObjectManifest,
  Partitioner,
  parseManifestLine,
} from "../sources/objects/manifest.ts";
import type { ActiveRefresh, CorpusHead, EmbeddingModelRef } from "./head.ts";
import type { CorpusLayout, CorpusRef } from "./layout.ts";
import { encodePlanLine, type PlanLine, parseStateLine, type StateEntry } from "./lines.ts";
import { multiPut, objectLines, Peekable } from "./streams.ts";

/** What a plan holds. */
export interface WrittenPlan {
  plan: string;
  /** Absent when nothing is to be embedded. */
  manifest?: string;
  planned: NonNullable<ActiveRefresh["planned"]>;
}

/** The previous generation's state entries, in id order (none for a first refresh). */
export async function* stateEntries(
  store: ObjectStore,
  bucket: string,
  object: string | undefined,
): AsyncGenerator<StateEntry> {
  if (!object) return;
  for await (const l of objectLines(store, bucket, object)) yield parseStateLine(l);
}

/** The corpus listing, object by object, folder markers left out. */
async function* listing(store: ObjectStore, corpus: CorpusRef): AsyncGenerator<ObjectInfo[]> {
  let start: string | undefined;
  do {
    const page = await store.list(corpus.bucket, {
      prefix: corpus.prefix,
      ...(start === undefined ? {} : { start }),
      limit: 1000,
    });
    yield page.objects.filter((o) => !o.name.endsWith("/"));
    start = page.nextStart;
  } while (start !== undefined);
}

/** Run at most `limit` of the functions at once. */
function limiter(limit: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= limit) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

async function sha256OfObject(store: ObjectStore, bucket: string, name: string) {
  const hash = createHash("sha256");
  try {
    for await (const chunk of await store.read(bucket, name)) hash.update(chunk as Buffer);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
  return hash.digest("hex");
}

/**
 * List the corpus, join it with the previous state and write the plan and the manifest
 * of documents to embed under `dir` (layout.planDir).
 */
export async function writePlan(
  store: ObjectStore,
  args: {
    layout: CorpusLayout;
    corpus: CorpusRef;
    head: CorpusHead;
    model: EmbeddingModelRef;
    dir: string;
    /** Concurrent reads of documents whose etag changed (default 16). */
    hashConcurrency?: number;
  },
): Promise<WrittenPlan> {
  const { layout, corpus, head, model } = args;
  const sameModel = head.model?.identity === model.identity;
  const prev = Peekable.of(stateEntries(store, layout.bucket, head.current?.state));
  const limit = limiter(args.hashConcurrency ?? 16);
  const planned = { new: 0, changed: 0, unchanged: 0, deleted: 0, touched: 0 };
  const names = { plan: `${args.dir}/plan.jsonl`, manifest: `${args.dir}/embed.jsonl` };

  const deleted = (p: StateEntry): PlanLine => ({
    id: p.id,
    action: "delete",
    etag: p.etag,
    size: p.size,
    previousRows: p.rows,
  });
  const decide = (o: ObjectInfo, p: StateEntry): PlanLine | Promise<PlanLine> => {
    const line: PlanLine = {
      id: o.name,
      action: "changed",
      etag: o.etag,
      size: o.size,
      previousRows: p.rows,
    };
    if (!sameModel) return line;
    if (o.etag === p.etag && o.size === p.size) return { ...line, action: "keep" };
    if (o.size !== p.size) return line;
    // A new etag with the old size: rewritten, perhaps with the same bytes (a re-upload,
    // a sync tool). Only the content hash can tell; reading is far cheaper than embedding.
    return limit(async () => {
      const sha = await sha256OfObject(store, corpus.bucket, o.name);
      return { ...line, action: sha === p.sha256 ? "touched" : "changed" } as PlanLine;
    });
  };

  let toEmbed = 0;
  await multiPut(store, layout.bucket, [names.plan, names.manifest], async ([planOut, manOut]) => {
    if (!planOut || !manOut) return;
    const emit = async (line: PlanLine) => {
      await planOut.write(encodePlanLine(line));
      if (line.action === "new" || line.action === "changed") {
        toEmbed++;
        await manOut.write(encodeManifestLine({ name: line.id, size: line.size, etag: line.etag }));
      }
      if (line.action === "keep") planned.unchanged++;
      else if (line.action === "touched") {
        planned.unchanged++;
        planned.touched++;
      } else if (line.action === "delete") planned.deleted++;
      else planned[line.action]++;
    };
    for await (const page of listing(store, corpus)) {
      // Decisions of a page in order; the hashing ones run concurrently meanwhile.
      const decisions: (PlanLine | Promise<PlanLine>)[] = [];
      for (const o of page) {
        for (let p = await prev.peek(); p && p.id < o.name; p = await prev.peek()) {
          decisions.push(deleted((await prev.next()) as StateEntry));
        }
        const p = await prev.peek();
        if (p && p.id === o.name) {
          await prev.next();
          decisions.push(decide(o, p));
        } else {
          decisions.push({
            id: o.name,
            action: "new",
            etag: o.etag,
            size: o.size,
            previousRows: 0,
          });
        }
      }
      for (const d of decisions) {
        if (d instanceof Promise) d.catch(() => undefined);
      }
      for (const d of decisions) await emit(await d);
    }
    for (let p = await prev.next(); p; p = await prev.next()) await emit(deleted(p));
  });
  if (toEmbed === 0) await store.delete(layout.bucket, names.manifest);
  return { plan: names.plan, ...(toEmbed > 0 ? { manifest: names.manifest } : {}), planned };
}

/** A manifest's partitions, identity and totals, read back from the store. */
export type ManifestPlan = Omit<ObjectManifest, "bucket" | "name">;

/** Cut a written manifest into partitions, as the object-list source would have. */
export async function planManifest(
  store: ObjectStore,
  bucket: string,
  name: string,
  options: { maxObjects?: number; maxBytes?: number },
): Promise<ManifestPlan> {
  const info = await store.head(bucket, name);
  if (!info) throw new NotFoundError(`refresh manifest ${bucket}/${name} is missing`);
  const partitioner = new Partitioner({
    maxObjects: options.maxObjects ?? DEFAULT_MAX_OBJECTS,
    ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
  });
  const hash = createHash("sha256");
  let offset = 0;
  let objects = 0;
  let objectBytes = 0;
  for await (const l of objectLines(store, bucket, name)) {
    const entry = parseManifestLine(l.buf.toString("utf8", l.start, l.end));
    // Lines are "…\n" exactly as encodeManifestLine wrote them.
    const length = l.end - l.start + 1;
    hash.update(l.buf.subarray(l.start, l.end));
    hash.update("\n");
    partitioner.add(objects, offset, length, entry.size);
    offset += length;
    objects++;
    objectBytes += entry.size;
  }
  return {
    etag: info.etag,
    bytes: offset,
    objects,
    objectBytes,
    sha256: hash.digest("hex"),
    partitions: partitioner.partitions,
  };
}
