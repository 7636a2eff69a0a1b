import type { Readable } from "node:stream";
import { TooLargeError } from "../core/errors.ts";
import type { ByteRange, ObjectStore } from "../ports/object-store.ts";

export { TooLargeError };

/** Collect a stream into one Buffer; past `maxBytes` the stream is destroyed and TooLargeError thrown. */
export async function collect(
  stream: Readable,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      length += buf.length;
      if (length > maxBytes) throw new TooLargeError(`over ${maxBytes} bytes`);
      chunks.push(buf);
    }
  } finally {
    stream.destroy();
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length);
}

/**
 * Read an object, or a byte range of it, into memory: in one read where the store
 * can ({@link ObjectStore.readBuffer}), else by collecting its stream.
 */
export async function readBytes(
  store: ObjectStore,
  bucket: string,
  name: string,
  range?: ByteRange,
  maxBytes?: number,
): Promise<Buffer> {
  if (store.readBuffer) return store.readBuffer(bucket, name, range, maxBytes);
  return collect(await store.read(bucket, name, range), maxBytes);
}
