/**
 * Fetch many objects with a bounded number of GETs in flight and hand them out in
 * input order. Completions start the next GETs (not the consumer), so while the
 * consumer decodes or scores one block the following bodies keep arriving; a cap on
 * fetched-but-not-consumed bodies (count and bytes) keeps memory bounded when the
 * consumer is the slow side.
 */
import { NotFoundError } from "../../core/errors.ts";
import type { ObjectStore } from "../../ports/object-store.ts";
import { readBytes, TooLargeError } from "../read-bytes.ts";
import type { ManifestEntry } from "./manifest.ts";

/** Limits of the fetcher. */
export interface FetchOptions {
  /** Concurrent GETs (default 8). */
  concurrency?: number;
  /** Most bodies fetched ahead of the consumer (default 4 × concurrency). */
  maxAhead?: number;
  /** Most listed bytes fetched ahead of the consumer (default 64 MiB; one object always fits). */
  maxAheadBytes?: number;
  /** Larger objects are not fetched: they become bad records (default 64 MiB). */
  maxObjectBytes?: number;
}

/** An object's body, or why there is none. */
export interface Fetched {
  body: Buffer | undefined;
  problem: string | undefined;
}

export const DEFAULT_FETCH_CONCURRENCY = 8;
export const DEFAULT_MAX_OBJECT_BYTES = 64 * 1024 * 1024;

/** One GET, with the failures that belong to the record (not the job) turned into problems. */
export async function fetchObject(
  store: ObjectStore,
  bucket: string,
  entry: ManifestEntry,
  maxObjectBytes: number,
): Promise<Fetched> {
  if (entry.size > maxObjectBytes) {
    return {
      body: undefined,
      problem: `object is ${entry.size} bytes, over the limit of ${maxObjectBytes} (maxObjectBytes)`,
    };
  }
  // A zero-byte object needs no GET; the task says what an empty body means.
  if (entry.size === 0) return { body: Buffer.alloc(0), problem: undefined };
  try {
    const body = await readBytes(store, bucket, entry.name, undefined, maxObjectBytes);
    if (body.length !== entry.size) {
      return {
        body: undefined,
        problem: `object changed after it was listed (listed ${entry.size} bytes, read ${body.length})`,
      };
    }
    return { body, problem: undefined };
  } catch (err) {
    if (err instanceof NotFoundError) {
      return { body: undefined, problem: "object was deleted after it was listed" };
    }
    if (err instanceof TooLargeError) {
      return {
        body: undefined,
        problem: `object grew after it was listed, past the limit of ${maxObjectBytes} bytes`,
      };
    }
    // Anything else (store unavailable, throttled) fails the attempt: it is retried.
    throw err;
  }
}

interface Slot {
  done: boolean;
  value: Fetched | undefined;
  error: unknown;
  wait: Promise<void>;
}

/**
 * Yield `[index, fetched]` runs for `entries` in order, at most `maxRun` per run: the
 * head of the queue is awaited, then everything already fetched behind it joins it.
 */
export async function* fetchInOrder(
  entries: readonly ManifestEntry[],
  fetchOne: (entry: ManifestEntry) => Promise<Fetched>,
  options: FetchOptions & { maxRun: number },
): AsyncGenerator<Fetched[]> {
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_FETCH_CONCURRENCY);
  const maxAhead = Math.max(concurrency, options.maxAhead ?? 4 * concurrency);
  const maxAheadBytes = options.maxAheadBytes ?? 64 * 1024 * 1024;
  const slots: Slot[] = [];
  let launched = 0;
  let consumed = 0;
  let active = 0;
  let aheadBytes = 0;
  let stopped = false;

  const launch = (): void => {
    while (!stopped && launched < entries.length && active < concurrency) {
      const entry = entries[launched] as ManifestEntry;
      const ahead = launched - consumed;
      if (ahead >= maxAhead) return;
      if (ahead > 0 && aheadBytes + entry.size > maxAheadBytes) return;
      const slot: Slot = {
        done: false,
        value: undefined,
        error: undefined,
        wait: Promise.resolve(),
      };
      slot.wait = fetchOne(entry).then(
        (value) => {
          slot.value = value;
        },
        (error: unknown) => {
          slot.error = error ?? new Error("fetch failed");
        },
      );
      slot.wait = slot.wait.finally(() => {
        slot.done = true;
        active--;
        launch();
      });
      slots[launched] = slot;
      launched++;
      active++;
      aheadBytes += entry.size;
    }
  };

  try {
    launch();
    while (consumed < entries.length) {
      const head = slots[consumed] as Slot;
      await head.wait;
      const run: Fetched[] = [];
      while (consumed < entries.length && run.length < options.maxRun) {
        const slot = slots[consumed];
        if (!slot?.done) break;
        if (slot.error !== undefined) throw slot.error;
        run.push(slot.value as Fetched);
        aheadBytes -= (entries[consumed] as ManifestEntry).size;
        slots[consumed] = undefined as unknown as Slot; // let the body be collected
        consumed++;
      }
      launch();
      yield run;
    }
  } finally {
    stopped = true;
  }
}
