/**
 * A minimal reader for zip archives on disk: what a model artifact needs and no
 * more. It reads the End of Central Directory record and the central directory
 * (zip-directory.ts) and each entry's local header; inflates stored and deflated entries; checks sizes
 * and CRC-32 while streaming; reads zip64 archives (what `zip` writes for piped
 * input and Python for large files); refuses encryption, multi-disk archives and
 * entry names that would escape the extraction directory (zip-slip).
 *
 * Terminology: the *central directory* (at the end of the file) is the archive's
 * table of contents; each entry also has a *local header* in front of its data.
 * The central directory is authoritative for sizes and CRC (a local header may
 * hold zeros when the writer streamed the entry).
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open } from "node:fs/promises";
import path from "node:path";
import { pipeline, Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline as pipelineAsync } from "node:stream/promises";
import zlib from "node:zlib";
import { PipelineError, UnsafePathError } from "../../core/errors.ts";
import {
  checkEntryName,
  readAt,
  readZipDirectory,
  type ZipEntry,
  zipError,
} from "./zip-directory.ts";

export type { ZipEntry } from "./zip-directory.ts";

const LOCAL_SIGNATURE = 0x04034b50;
const LOCAL_SIZE = 30;

/** Compression methods this reader supports. */
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;

/** The path `name` extracts to under `root`; throws UnsafePathError if it would leave `root`. */
export function entryPath(root: string, name: string): string {
  checkEntryName(name);
  const base = path.resolve(root);
  const target = path.resolve(base, ...name.split(/[/\\]/).filter(Boolean));
  if (target !== base && !target.startsWith(base + path.sep)) {
    throw new UnsafePathError(`zip entry ${JSON.stringify(name)} resolves outside ${base}`);
  }
  return target;
}

/** CRC-32 (IEEE) of `chunk` continuing from `crc`: node:zlib's native one when present (Node ≥ 20.15). */
const crc32: (chunk: Uint8Array, crc: number) => number =
  typeof zlib.crc32 === "function" ? (chunk, crc) => zlib.crc32(chunk, crc) : softwareCrc32;

let crcTable: Uint32Array | undefined;
function softwareCrc32(chunk: Uint8Array, crc: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~crc >>> 0;
  for (let i = 0; i < chunk.length; i++) {
    c = (crcTable[(c ^ (chunk[i] as number)) & 0xff] as number) ^ (c >>> 8);
  }
  return ~c >>> 0;
}

/** Counts bytes and computes CRC-32 as data passes; fails the stream on a mismatch or overrun. */
class VerifyEntry extends Transform {
  private crc = 0;
  private seen = 0;

  constructor(
    private readonly file: string,
    private readonly entry: ZipEntry,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    // Stop an inflate bomb as soon as it passes the size the directory declared.
    if (this.seen > this.entry.size) {
      done(
        zipError(
          this.file,
          `entry ${this.entry.name} inflates past its declared size ${this.entry.size}: the archive is corrupted`,
        ),
      );
      return;
    }
    this.crc = crc32(chunk, this.crc);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.seen !== this.entry.size) {
      done(
        zipError(
          this.file,
          `entry ${this.entry.name} has ${this.seen} bytes, the directory says ${this.entry.size}: the archive is corrupted`,
        ),
      );
      return;
    }
    if (this.crc !== this.entry.crc32) {
      done(
        zipError(
          this.file,
          `entry ${this.entry.name} fails its CRC-32 check (stored ${hex(this.entry.crc32)}, computed ${hex(this.crc)}): the archive is corrupted; upload it again`,
        ),
      );
      return;
    }
    done();
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/**
 * A zip archive opened for reading. Entries are listed from the central
 * directory at open time (every name is checked for zip-slip then, so a hostile
 * archive is refused before anything is written); data is streamed on demand.
 *
 * @example
 * const zip = await ZipReader.open("/tmp/artifact.zip");
 * const entry = zip.entry("descriptor.json");
 * if (entry) await zip.extract(entry, "/tmp/out");
 */
export class ZipReader {
  private readonly byName = new Map<string, ZipEntry>();

  private constructor(
    /** Path of the archive. */
    readonly file: string,
    /** Entries in central-directory order. */
    readonly entries: readonly ZipEntry[],
    private readonly dataLimit: number,
  ) {
    for (const e of entries) this.byName.set(e.name, e);
  }

  /** Read the archive's directory. Throws InvalidArgumentError for a malformed or unsupported archive, UnsafePathError for a zip-slip name. */
  static async open(file: string): Promise<ZipReader> {
    const { entries, dataLimit } = await readZipDirectory(file);
    return new ZipReader(file, entries, dataLimit);
  }

  /** The entry named exactly `name`, if any. */
  entry(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /** Stream an entry's uncompressed bytes; the stream errors if its size or CRC-32 is wrong. */
  async openStream(entry: ZipEntry): Promise<Readable> {
    if (entry.isDirectory) throw zipError(this.file, `entry ${entry.name} is a directory`);
    if (entry.isSymlink) {
      throw new UnsafePathError(
        `zip ${this.file}: entry ${entry.name} is a symbolic link; links are not extracted`,
      );
    }
    if (entry.method !== METHOD_STORED && entry.method !== METHOD_DEFLATE) {
      throw zipError(
        this.file,
        `entry ${entry.name} uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`,
      );
    }
    if (entry.method === METHOD_STORED && entry.compressedSize !== entry.size) {
      throw zipError(
        this.file,
        `stored entry ${entry.name} has different compressed and uncompressed sizes: the archive is corrupted`,
      );
    }
    const start = await this.dataOffset(entry);
    const raw =
      entry.compressedSize === 0
        ? Readable.from([])
        : createReadStream(this.file, { start, end: start + entry.compressedSize - 1 });
    const verify = new VerifyEntry(this.file, entry);
    // pipeline() destroys every stage on a failure and hands the error to the reader of `verify`.
    const done = () => undefined;
    return entry.method === METHOD_STORED
      ? pipeline(raw, verify, done)
      : pipeline(raw, zlib.createInflateRaw(), verify, done);
  }

  /** An entry's bytes in memory, for small entries (descriptors); refuses one larger than `maxBytes`. */
  async readBuffer(entry: ZipEntry, maxBytes: number): Promise<Buffer> {
    if (entry.size > maxBytes) {
      throw zipError(
        this.file,
        `entry ${entry.name} is ${entry.size} bytes; at most ${maxBytes} are read into memory`,
      );
    }
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of await this.openStream(entry)) chunks.push(chunk as Buffer);
    } catch (err) {
      throw this.readError(entry, err);
    }
    return Buffer.concat(chunks);
  }

  /**
   * Extract one file entry under `root` (directories created 0o700, the file
   * 0o600, failing if it exists). Each chunk passes through `onChunk` (hashing).
   * Returns the file's path.
   */
  async extract(entry: ZipEntry, root: string, onChunk?: (chunk: Buffer) => void): Promise<string> {
    const target = entryPath(root, entry.name);
    await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    const source = await this.openStream(entry);
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        onChunk?.(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipelineAsync(source, tap, createWriteStream(target, { flags: "wx", mode: 0o600 }));
    } catch (err) {
      throw this.readError(entry, err);
    }
    return target;
  }

  /** Our own errors as they are; zlib's ("invalid block type") said in terms of the archive. */
  private readError(entry: ZipEntry, err: unknown): Error {
    if (err instanceof PipelineError) return err;
    const code = (err as NodeJS.ErrnoException).code ?? "";
    if (code.startsWith("Z_") || code.startsWith("ERR_ZLIB")) {
      return zipError(
        this.file,
        `entry ${entry.name} does not inflate (${(err as Error).message}): the archive is corrupted`,
      );
    }
    return err as Error;
  }

  /** Where an entry's data starts: after its local header, whose name and extra lengths may differ from the directory's. */
  private async dataOffset(entry: ZipEntry): Promise<number> {
    const fh = await open(this.file, "r");
    try {
      const header = await readAt(fh, entry.localHeaderOffset, LOCAL_SIZE);
      if (header.length < LOCAL_SIZE || header.readUInt32LE(0) !== LOCAL_SIGNATURE) {
        throw zipError(
          this.file,
          `entry ${entry.name} has no local header at offset ${entry.localHeaderOffset}: the archive is corrupted`,
        );
      }
      const start =
        entry.localHeaderOffset + LOCAL_SIZE + header.readUInt16LE(26) + header.readUInt16LE(28);
      // Entry data always precedes the central directory.
      if (start + entry.compressedSize > this.dataLimit) {
        throw zipError(
          this.file,
          `entry ${entry.name} runs into the central directory: the archive is corrupted`,
        );
      }
      return start;
    } finally {
      await fh.close();
    }
  }
}
