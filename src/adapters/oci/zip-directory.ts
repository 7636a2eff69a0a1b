/**
 * The central directory of a zip archive on disk (see zip-reader.ts): the End of
 * Central Directory record (or its zip64 form), the entries it lists, their zip64
 * sizes, and the entry-name check against zip-slip.
 */
import { type FileHandle, open } from "node:fs/promises";
import { InvalidArgumentError, UnsafePathError } from "../../core/errors.ts";

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIZE = 56;
const ZIP64_EXTRA_ID = 0x0001;
const CENTRAL_SIGNATURE = 0x02014b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const CENTRAL_SIZE = 46;

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

/** An InvalidArgumentError naming the archive. */
export function zipError(file: string, what: string): InvalidArgumentError {
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

/** Up to `length` bytes at `position` (fewer at the end of the file). */
export async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
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
 * Read the archive's central directory: its entries (every name checked for zip-slip)
 * and where entry data must end (the directory's offset). Throws InvalidArgumentError
 * for a malformed or unsupported archive, UnsafePathError for a zip-slip name.
 */
export async function readZipDirectory(
  file: string,
): Promise<{ entries: ZipEntry[]; dataLimit: number }> {
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
        throw zipError(file, `central directory entry ${n} is malformed: the archive is corrupted`);
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
    return { entries, dataLimit: dir.cdOffset };
  } finally {
    await fh.close();
  }
}
