import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { open } from "node:fs/promises";

const CHUNK_BYTES = 4 << 20;

/**
 * sha256 (hex) of a file's content. Two reused buffers: the next read runs on the
 * thread pool while this one is hashed, and no chunk is allocated per read (a
 * stream of 1 MiB chunks left the hash waiting on reads and made garbage: ~25%
 * slower on a 300 MB input, the CLI's content identity before every run).
 * `noFollow` refuses a symbolic link in the last name segment (ELOOP).
 */
export async function sha256OfFile(path: string, noFollow = false): Promise<string> {
  const flags = constants.O_RDONLY | (noFollow ? (constants.O_NOFOLLOW ?? 0) : 0);
  const fh = await open(path, flags);
  try {
    const hash = createHash("sha256");
    // No larger than the file (plus one byte, to see its end in one read): a corpus of
    // small files is hashed one file at a time.
    const chunk = Math.min(CHUNK_BYTES, (await fh.stat()).size + 1);
    const buffers = [Buffer.allocUnsafeSlow(chunk), Buffer.allocUnsafeSlow(chunk)];
    let which = 0;
    let position = 0;
    let reading = fh.read(buffers[0] as Buffer, 0, chunk, 0);
    for (;;) {
      const { bytesRead, buffer } = await reading;
      if (bytesRead === 0) break;
      position += bytesRead;
      which ^= 1;
      reading = fh.read(buffers[which] as Buffer, 0, chunk, position);
      hash.update(buffer.subarray(0, bytesRead));
    }
    return hash.digest("hex");
  } finally {
    await fh.close().catch(() => undefined);
  }
}
