/**
 * A minimal reader for zip archives on disk: what a model artifact needs and no
 * more. It reads the End of Central Directory record, the central directory and
 * each entry's local header; inflates stored and deflated entries; checks sizes
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
import { type FileHandle, mkdir, open } from "node:fs/promises";
import path from "node:path";
import { pipeline, Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline as pipelineAsync } from "node:stream/promises";
import zlib from "node:zlib";
import { InvalidArgumentError, PipelineError, UnsafePathError } from "../../core/errors.ts";

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIZE = 56;
const ZIP64_EXTRA_ID = 0x0001;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;

/** Compression methods this reader supports. */
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;

const FLAG_ENCRYPTED = 0x0001;
const FLAG_UTF8 = 0x0800;

/** Unix file-type bits in the high half of "external attributes" when the archive was made on Unix. */
const HOST_UNIX = 3;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** One entry of the central directory. */
export interface ZipEntry {
  /** Name as stored (forward slashes; a trailing slash marks a directory). */
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  crc32: number;
  compressedSize: number;
  /** Uncompressed size. */
  size: number;
  localHeaderOffset: number;
  isDirectory: boolean;
  isSymlink: boolean;
}

function zipError(file: string, what: string): InvalidArgumentError {
  return new InvalidArgumentError(`zip ${file}: ${what}`);
}

/**
 * Reject names that would land outside the extraction directory: absolute paths,
 * drive letters, `..` segments, NUL bytes. Backslashes count as separators because
 * some Windows tools write them and some extractors honour them.
 */
export function checkEntryName(name: string): void {
  const unsafe = (why: string) =>
    new UnsafePathError(
      `zip entry ${JSON.stringify(name)} ${why}: refusing the archive (zip-slip protection)`,
    );
  if (name === "") throw unsafe("has an empty name");
  if (name.includes("\0")) throw unsafe("contains a NUL byte");
  if (name.startsWith("/") || name.startsWith("\\")) throw unsafe("is an absolute path");
  if (/^[A-Za-z]:/.test(name)) throw unsafe("starts with a drive letter");
  if (name.split(/[/\\]/).some((seg) => seg === "..")) throw unsafe("contains a '..' segment");
}

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

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** Where the central directory is and how many entries it holds (from the EOCD, or the zip64 EOCD it points to). */
async function readDirectoryLocation(
  fh: FileHandle,
  file: string,
  size: number,
): Promise<{ cdOffset: number; cdSize: number; totalEntries: number }> {
  // The EOCD is the last 22 bytes plus a comment of up to 64 KiB: scan back for its signature.
  const tailLength = Math.min(size, EOCD_SIZE + MAX_COMMENT);
  const tailStart = size - tailLength;
  const tail = await readAt(fh, tailStart, tailLength);
  let eocd = -1;
  for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
    if (
      tail.readUInt32LE(i) === EOCD_SIGNATURE &&
      i + EOCD_SIZE + tail.readUInt16LE(i + 20) === tail.length
    ) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    throw zipError(file, "has no End of Central Directory record: not a zip archive, or truncated");
  }
  let disk = tail.readUInt16LE(eocd + 4);
  let cdDisk = tail.readUInt16LE(eocd + 6);
  let entriesOnDisk = tail.readUInt16LE(eocd + 8);
  let totalEntries = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  /** Where the central directory must end: the (zip64) EOCD record follows it. */
  let limit = tailStart + eocd;
  const hasLocator =
    eocd >= ZIP64_LOCATOR_SIZE &&
    tail.readUInt32LE(eocd - ZIP64_LOCATOR_SIZE) === ZIP64_LOCATOR_SIGNATURE;
  if (hasLocator) {
    const locator = eocd - ZIP64_LOCATOR_SIZE;
    const recordOffset = Number(tail.readBigUInt64LE(locator + 8));
    const record = await readAt(fh, recordOffset, ZIP64_EOCD_SIZE);
    if (record.length < ZIP64_EOCD_SIZE || record.readUInt32LE(0) !== ZIP64_EOCD_SIGNATURE) {
      throw zipError(
        file,
        "zip64 End of Central Directory record is missing: the archive is corrupted",
      );
    }
    disk = record.readUInt32LE(16);
    cdDisk = record.readUInt32LE(20);
    entriesOnDisk = Number(record.readBigUInt64LE(24));
    totalEntries = Number(record.readBigUInt64LE(32));
    cdSize = Number(record.readBigUInt64LE(40));
    cdOffset = Number(record.readBigUInt64LE(48));
    limit = recordOffset;
  } else if (totalEntries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    throw zipError(file, "says it is zip64 but has no zip64 locator: the archive is corrupted");
  }
  if (disk !== 0 || cdDisk !== 0 || entriesOnDisk !== totalEntries) {
    throw zipError(file, "spans several disks, which is not supported");
  }
  if (cdOffset + cdSize > limit || !Number.isSafeInteger(cdOffset + cdSize)) {
    throw zipError(
      file,
      "central directory lies outside the file: the archive is corrupted or truncated",
    );
  }
  return { cdOffset, cdSize, totalEntries };
}

/**
 * An entry's sizes and local header offset. Fields too large for 32 bits hold
 * 0xFFFFFFFF and the real value sits in the zip64 extra field (id 1), which
 * carries only the saturated ones, in the order uncompressed, compressed, offset.
 */
function entrySizes(
  cd: Buffer,
  p: number,
  extra: Buffer,
  file: string,
  name: string,
): { size: number; compressedSize: number; localHeaderOffset: number } {
  let size = cd.readUInt32LE(p + 24);
  let compressedSize = cd.readUInt32LE(p + 20);
  let localHeaderOffset = cd.readUInt32LE(p + 42);
  const needs = [size, compressedSize, localHeaderOffset].some((v) => v === 0xffffffff);
  if (!needs) return { size, compressedSize, localHeaderOffset };
  for (let q = 0; q + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(q);
    const length = extra.readUInt16LE(q + 2);
    const body = extra.subarray(q + 4, q + 4 + length);
    q += 4 + length;
    if (id !== ZIP64_EXTRA_ID) continue;
    let r = 0;
    const next = (): number => {
      if (r + 8 > body.length) {
        throw zipError(
          file,
          `entry ${name} has a short zip64 extra field: the archive is corrupted`,
        );
      }
      const v = Number(body.readBigUInt64LE(r));
      r += 8;
      return v;
    };
    if (size === 0xffffffff) size = next();
    if (compressedSize === 0xffffffff) compressedSize = next();
    if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
    return { size, compressedSize, localHeaderOffset };
  }
  throw zipError(
    file,
    `entry ${name} needs a zip64 extra field and has none: the archive is corrupted`,
  );
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
    const fh = await open(file, "r");
    try {
      const { size } = await fh.stat();
      if (size < EOCD_SIZE) throw zipError(file, `is ${size} bytes: too small to be a zip archive`);
      const dir = await readDirectoryLocation(fh, file, size);
      const cd = await readAt(fh, dir.cdOffset, dir.cdSize);
      const entries: ZipEntry[] = [];
      let p = 0;
      for (let n = 0; n < dir.totalEntries; n++) {
        if (p + CENTRAL_SIZE > cd.length || cd.readUInt32LE(p) !== CENTRAL_SIGNATURE) {
          throw zipError(
            file,
            `central directory entry ${n} is malformed: the archive is corrupted`,
          );
        }
        const madeBy = cd.readUInt16LE(p + 4);
        const flags = cd.readUInt16LE(p + 8);
        const method = cd.readUInt16LE(p + 10);
        const crc = cd.readUInt32LE(p + 16);
        const nameLength = cd.readUInt16LE(p + 28);
        const extraLength = cd.readUInt16LE(p + 30);
        const commentLength = cd.readUInt16LE(p + 32);
        const externalAttributes = cd.readUInt32LE(p + 38);
        const nameEnd = p + CENTRAL_SIZE + nameLength;
        if (nameEnd + extraLength + commentLength > cd.length) {
          throw zipError(
            file,
            `central directory entry ${n} runs past the directory: the archive is corrupted`,
          );
        }
        // Without the UTF-8 flag names are CP437; latin1 decodes its ASCII range the same.
        const name = cd.toString(flags & FLAG_UTF8 ? "utf8" : "latin1", p + CENTRAL_SIZE, nameEnd);
        checkEntryName(name);
        const sizes = entrySizes(cd, p, cd.subarray(nameEnd, nameEnd + extraLength), file, name);
        p = nameEnd + extraLength + commentLength;
        if (flags & FLAG_ENCRYPTED) {
          throw zipError(file, `entry ${name} is encrypted, which is not supported`);
        }
        const mode = madeBy >>> 8 === HOST_UNIX ? externalAttributes >>> 16 : 0;
        entries.push({
          name,
          method,
          crc32: crc,
          ...sizes,
          isDirectory: name.endsWith("/"),
          isSymlink: (mode & S_IFMT) === S_IFLNK,
        });
      }
      return new ZipReader(file, entries, dir.cdOffset);
    } finally {
      await fh.close();
    }
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
