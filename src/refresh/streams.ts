/**
 * Streaming reads and writes for the refresh's merge-joins: objects read line by
 * line (one block in memory), and several objects written together from one pass
 * (an embedding set, a delta and a state at once), each through its own put with
 * backpressure. Memory stays constant whatever the corpus size.
 */
import { PassThrough } from "node:stream";
import type { ObjectStore } from "../ports/object-store.ts";
import { readOwnedLines } from "../records/line-reader.ts";

/** One line of an object: bytes [start, end) of `buf` (valid until the next line is asked for). */
export interface LineRef {
  buf: Buffer;
  start: number;
  end: number;
}

/** The lines of an object in order (none when it is absent); memory: one block. */
export async function* objectLines(
  store: ObjectStore,
  bucket: string,
  object: string,
): AsyncGenerator<LineRef> {
  const info = await store.head(bucket, object);
  if (!info || info.size === 0) return;
  const source = await store.read(bucket, object, { start: 0, end: info.size });
  const options = {
    from: 0,
    fromIsRecordStart: true,
    end: info.size,
    maxLineBytes: 256 * 1024 * 1024,
    records: "lines" as const,
  };
  for await (const block of readOwnedLines(source, options)) {
    for (let i = 0; i < block.count; i++) {
      const start = block.starts[i] as number;
      const end = block.ends[i] as number;
      if (end > start) yield { buf: block.buf, start, end };
    }
  }
}

/** Parsed JSON lines of an object, in order. */
export async function* jsonLines<T>(
  store: ObjectStore,
  bucket: string,
  object: string,
): AsyncGenerator<T> {
  for await (const l of objectLines(store, bucket, object)) {
    yield JSON.parse(l.buf.toString("utf8", l.start, l.end)) as T;
  }
}

/** A sorted stream with one item of lookahead. */
export class Peekable<T> {
  private head: IteratorResult<T> | undefined;
  constructor(private readonly it: AsyncIterator<T>) {}

  static of<T>(iterable: AsyncIterable<T>): Peekable<T> {
    return new Peekable(iterable[Symbol.asyncIterator]());
  }

  /** The next item without taking it (undefined at the end). */
  async peek(): Promise<T | undefined> {
    this.head ??= await this.it.next();
    return this.head.done ? undefined : this.head.value;
  }

  /** Take the next item (undefined at the end). */
  async next(): Promise<T | undefined> {
    const v = await this.peek();
    this.head = undefined;
    return v;
  }

  async close(): Promise<void> {
    await this.it.return?.(undefined);
  }
}

const FLUSH_BYTES = 256 * 1024;

/** One object being written by a {@link MultiPut}. */
export class PutOut {
  /** Bytes written so far (what the next write's offset is). */
  bytes = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(readonly stream: PassThrough) {}

  /** Append text or bytes (copied: a caller's line buffer may be reused). */
  async write(data: string | Buffer): Promise<void> {
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data);
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    this.bytes += buf.length;
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  /** Append bytes [start, end) of `buf` followed by a newline. */
  async writeLine(buf: Buffer, start: number, end: number): Promise<void> {
    const line = Buffer.allocUnsafe(end - start + 1);
    buf.copy(line, 0, start, end);
    line[end - start] = 10;
    this.pending.push(line);
    this.pendingBytes += line.length;
    this.bytes += line.length;
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const chunk =
      this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.stream.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          this.stream.off("error", fail);
          resolve();
        };
        const fail = (err: Error) => {
          this.stream.off("drain", done);
          reject(err);
        };
        this.stream.once("drain", done);
        this.stream.once("error", fail);
      });
    }
  }
}

/**
 * Write several objects from one pass: `produce` writes to each output in turn; each
 * output is its own streaming put. A failure in any put or in `produce` fails all.
 */
export async function multiPut(
  store: ObjectStore,
  bucket: string,
  names: string[],
  produce: (outs: PutOut[]) => Promise<void>,
  contentType = "application/x-ndjson",
): Promise<{ etag: string; bytes: number }[]> {
  const streams = names.map(() => new PassThrough({ highWaterMark: 1024 * 1024 }));
  const outs = streams.map((s) => new PutOut(s));
  const puts = names.map((name, i) =>
    store.put(bucket, name, streams[i] as PassThrough, { contentType }),
  );
  // A put that fails stops the producer at its next write instead of leaving it blocked.
  const failed = Promise.all(puts).then(
    () => undefined,
    (err: unknown) => {
      for (const s of streams) s.destroy(err as Error);
      throw err;
    },
  );
  failed.catch(() => undefined);
  try {
    await produce(outs);
    for (const o of outs) await o.flush();
    for (const s of streams) s.end();
  } catch (err) {
    for (const s of streams) s.destroy(err as Error);
    await Promise.allSettled(puts);
    throw err;
  }
  await failed;
  const results = await Promise.all(puts);
  return results.map((r, i) => ({ etag: r.etag, bytes: (outs[i] as PutOut).bytes }));
}
