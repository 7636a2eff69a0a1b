import type { Readable } from "node:stream";
import { PipelineError } from "../core/errors.ts";
import type { ByteRange, ObjectStore } from "../ports/object-store.ts";

/** Thrown by {@link readBytes} when an object is longer than the caller allows. */
export class TooLargeError extends PipelineError {
  constructor(message: string) {
    super("BAD_RECORD", message);
  }
}

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

/** Read an object, or a byte range of it, into memory. */
export async function readBytes(
  store: ObjectStore,
  bucket: string,
  name: string,
  range?: ByteRange,
  maxBytes?: number,
): Promise<Buffer> {
  return collect(await store.read(bucket, name, range), maxBytes);
}
