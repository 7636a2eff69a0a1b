/**
 * Many objects of one bucket, read or deleted as a batch: the merge reads every
 * committed part of a job in order and then deletes them, hundreds of objects
 * of a few hundred KB each. One at a time, each costs its round trips (a local
 * open and stat, an HTTP request on OCI) in series; here they overlap.
 */
import type { Readable } from "node:stream";
import { PipelineError, TooLargeError } from "../core/errors.ts";
import type { ObjectStore } from "../ports/object-store.ts";

/** Objects opened ahead of the one being read (an open stream holds no data until read). */
export const READ_AHEAD = 8;
/** Objects up to this size are read whole, in one call, where the store can. */
export const WHOLE_READ_MAX = 4 * 1024 * 1024;
/** Bytes read whole ahead of the object being yielded, at most (always one object). */
export const AHEAD_BYTES = 8 * 1024 * 1024;
/** Deletes in flight at once. */
export const DELETE_CONCURRENCY = 16;

/**
 * The bytes of `objects`, in order, each opened up to `depth` ahead of the one being
 * read (its open, or its request, overlaps the reading of those before it). Objects
 * of up to WHOLE_READ_MAX bytes are read whole where the store can (one read, no
 * stream), while those held ahead come to AHEAD_BYTES or less. An object whose size
 * is not the `bytes` it was recorded with fails the read (it is not what was
 * committed). Streams opened ahead and never read (the consumer stopped, a read
 * failed) are closed.
 */
export async function* readInOrder(
  store: Pick<ObjectStore, "read" | "readBuffer">,
  bucket: string,
  objects: readonly { name: string; bytes: number }[],
  depth = READ_AHEAD,
): AsyncGenerator<Buffer> {
  type Opened = Promise<Readable | Buffer>;
  const opened: Opened[] = [];
  const whole = (bytes: number) => store.readBuffer !== undefined && bytes <= WHOLE_READ_MAX;
  let next = 0;
  let aheadBytes = 0;
  const fill = () => {
    while (next < objects.length && opened.length < depth) {
      const { name, bytes } = objects[next] as { name: string; bytes: number };
      if (whole(bytes) && opened.length > 0 && aheadBytes + bytes > AHEAD_BYTES) break;
      next++;
      if (whole(bytes)) aheadBytes += bytes;
      const got: Opened =
        store.readBuffer && whole(bytes)
          ? store.readBuffer(bucket, name, undefined, bytes).catch((err: unknown) => {
              if (err instanceof TooLargeError) throw changed(bucket, name, bytes, "longer");
              throw err;
            })
          : store.read(bucket, name);
      // Awaited in turn below; until then a failure must not be an unhandled rejection.
      got.catch(() => undefined);
      opened.push(got);
    }
  };
  try {
    fill();
    while (opened.length > 0) {
      const { name, bytes } = objects[next - opened.length] as { name: string; bytes: number };
      if (whole(bytes)) aheadBytes -= bytes;
      const got = await (opened.shift() as Opened);
      fill();
      let seen = 0;
      if (Buffer.isBuffer(got)) {
        seen = got.length;
        if (seen === bytes) yield got;
      } else {
        for await (const chunk of got) {
          seen += (chunk as Buffer).length;
          if (seen > bytes) break;
          yield chunk as Buffer;
        }
      }
      if (seen !== bytes) throw changed(bucket, name, bytes, seen > bytes ? "longer" : seen);
    }
  } finally {
    for (const got of opened)
      got.then(
        (s) => Buffer.isBuffer(s) || s.destroy(),
        () => undefined,
      );
  }
}

function changed(
  bucket: string,
  name: string,
  bytes: number,
  found: number | "longer",
): PipelineError {
  const is = found === "longer" ? "longer than" : `${found} bytes, not`;
  return new PipelineError(
    "PRECONDITION_FAILED",
    `object ${bucket}/${name} is ${is} the ${bytes} bytes it was committed with: it changed or was damaged after its commit`,
    { details: { bucket, name, bytes, found } },
  );
}

/**
 * Delete `names`, up to `concurrency` at a time. Every delete is attempted; the
 * first failure is thrown once all have settled.
 */
export async function deleteAll(
  store: Pick<ObjectStore, "delete">,
  bucket: string,
  names: readonly string[],
  concurrency = DELETE_CONCURRENCY,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (next < names.length) {
      const name = names[next++] as string;
      try {
        await store.delete(bucket, name);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, lane));
  if (failure) throw failure.error;
}
