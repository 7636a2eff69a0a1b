/**
 * A small zip writer for tests: stored and deflated entries, optionally in zip64
 * form, and knobs to build broken archives (a wrong CRC-32, a Unix symlink entry). It holds the
 * archive in memory, which is fine for test fixtures and nothing else.
 */
import zlib from "node:zlib";

/** One file to put in the archive. */
export interface ZipInput {
  name: string;
  data: Buffer | string;
  /** Default "deflate". */
  method?: "store" | "deflate";
  /** Write this CRC-32 instead of the real one (a corrupted archive). */
  crc32?: number;
  /** Mark the entry as a Unix symbolic link (its data is the link target). */
  symlink?: boolean;
}

/** The CRC-32 of `data`. */
export function crc32Of(data: Buffer): number {
  return zlib.crc32(data) >>> 0;
}

/** DOS date/time for 2024-01-01 00:00:00: fixed so archives are reproducible. */
const DOS_TIME = 0;
const DOS_DATE = ((2024 - 1980) << 9) | (1 << 5) | 1;

/** Options for {@link buildZip}. */
export interface ZipOptions {
  /**
   * Write it the zip64 way even though nothing needs it (as `zip` does for piped
   * input): 32-bit fields saturated, real values in zip64 extra fields and a
   * zip64 End of Central Directory record with its locator.
   */
  zip64?: boolean;
}

function zip64Extra(values: number[]): Buffer {
  const extra = Buffer.alloc(4 + 8 * values.length);
  extra.writeUInt16LE(0x0001, 0);
  extra.writeUInt16LE(8 * values.length, 2);
  values.forEach((v, i) => {
    extra.writeBigUInt64LE(BigInt(v), 4 + 8 * i);
  });
  return extra;
}

/** Build a zip archive of `inputs`, in order. */
export function buildZip(inputs: ZipInput[], options: ZipOptions = {}): Buffer {
  const z64 = options.zip64 ?? false;
  const MAX32 = 0xffffffff;
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const input of inputs) {
    const data = Buffer.isBuffer(input.data) ? input.data : Buffer.from(input.data);
    const deflate = (input.method ?? "deflate") === "deflate";
    const body = deflate ? zlib.deflateRawSync(data) : data;
    const crc = input.crc32 ?? crc32Of(data);
    const name = Buffer.from(input.name, "utf8");
    const method = deflate ? 8 : 0;

    const localExtra = z64 ? zip64Extra([data.length, body.length]) : Buffer.alloc(0);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(z64 ? 45 : 20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(z64 ? MAX32 : body.length, 18);
    local.writeUInt32LE(z64 ? MAX32 : data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(localExtra.length, 28);
    locals.push(local, name, localExtra, body);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made on Unix, so the mode bits count
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(DOS_TIME, 12);
    central.writeUInt16LE(DOS_DATE, 14);
    central.writeUInt32LE(crc, 16);
    const centralExtra = z64 ? zip64Extra([data.length, body.length, offset]) : Buffer.alloc(0);
    central.writeUInt32LE(z64 ? MAX32 : body.length, 20);
    central.writeUInt32LE(z64 ? MAX32 : data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(centralExtra.length, 30);
    const mode = input.symlink ? 0o120777 : 0o100644;
    central.writeUInt32LE((mode << 16) >>> 0, 38);
    central.writeUInt32LE(z64 ? MAX32 : offset, 42);
    centrals.push(central, name, centralExtra);

    offset += local.length + name.length + localExtra.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(z64 ? 0xffff : inputs.length, 8);
  eocd.writeUInt16LE(z64 ? 0xffff : inputs.length, 10);
  eocd.writeUInt32LE(z64 ? MAX32 : cd.length, 12);
  eocd.writeUInt32LE(z64 ? MAX32 : offset, 16);
  if (!z64) return Buffer.concat([...locals, cd, eocd]);
  const record = Buffer.alloc(56);
  record.writeUInt32LE(0x06064b50, 0);
  record.writeBigUInt64LE(44n, 4); // size of the rest of the record
  record.writeUInt16LE(45, 12);
  record.writeUInt16LE(45, 14);
  record.writeBigUInt64LE(BigInt(inputs.length), 24);
  record.writeBigUInt64LE(BigInt(inputs.length), 32);
  record.writeBigUInt64LE(BigInt(cd.length), 40);
  record.writeBigUInt64LE(BigInt(offset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(offset + cd.length), 8);
  locator.writeUInt32LE(1, 16);
  return Buffer.concat([...locals, cd, record, locator, eocd]);
}
