/**
 * A generated image library for demos, tests and the benchmark: shape images named
 * `<prefix><index>-<label>.<ext>` (the true label is in the name, so accuracy can be
 * read off the output) plus, on request, the bad objects a real library has — empty,
 * truncated, corrupt, not an image, and a decompression bomb.
 */
import { deflateSync } from "node:zlib";
import { extensionOf, renderShape, type ShapeOptions } from "./shapes.ts";

/** Where generated objects go (a bucket, a directory). */
export type PutObject = (name: string, bytes: Buffer) => Promise<void>;

/** What to generate. */
export interface ShapeDatasetOptions extends ShapeOptions {
  count: number;
  seed: number;
  /** Name prefix, e.g. "photos/" (default ""). */
  prefix?: string;
  /** Also write one of each kind of bad object (default false). */
  bad?: boolean;
  /** Images rendered at once (default 4). */
  concurrency?: number;
}

/** Names of the bad objects {@link writeShapeDataset} writes, by kind. */
export const BAD_OBJECTS = {
  empty: "bad-empty.jpg",
  truncated: "bad-truncated.jpg",
  corrupt: "bad-corrupt.png",
  text: "bad-text.jpg",
  bomb: "bad-bomb.png",
} as const;

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * A PNG that claims `width` × `height` RGB pixels in a few hundred bytes (its data
 * stops after a few rows): what a decompression bomb looks like to a decoder's
 * header check. Decoding it in full would need width × height × 3 bytes.
 */
export function pngBomb(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const rows = Buffer.alloc(4 * (1 + width * 3)); // filter byte + zero pixels, 4 rows
  return Buffer.concat([
    Buffer.from("\x89PNG\r\n\x1a\n", "latin1"),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", deflateSync(rows)),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Name of good image `i`. */
export function shapeObjectName(prefix: string, i: number, label: string, ext: string): string {
  return `${prefix}${String(i).padStart(6, "0")}-${label}.${ext}`;
}

/** The true label in a generated image's name, or undefined for other names. */
export function labelFromName(name: string): string | undefined {
  return /\d{6}-([a-z]+)\.(?:jpg|png|webp)$/.exec(name)?.[1];
}

/** Write the library through `put`; returns the good images' names and labels in order. */
export async function writeShapeDataset(
  put: PutObject,
  options: ShapeDatasetOptions,
): Promise<{ name: string; label: string; bytes: number }[]> {
  const prefix = options.prefix ?? "";
  const written: { name: string; label: string; bytes: number }[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < options.count) {
      const i = next++;
      const img = await renderShape(options.seed, i, options);
      const name = shapeObjectName(prefix, i, img.label, extensionOf(img.encoding));
      await put(name, img.bytes);
      written[i] = { name, label: img.label, bytes: img.bytes.length };
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
  if (options.bad) {
    const jpeg = (await renderShape(options.seed, 0, { ...options, encodings: ["jpeg"] })).bytes;
    const png = (await renderShape(options.seed, 1, { ...options, encodings: ["png"] })).bytes;
    const corrupt = Buffer.from(png);
    for (let k = 64; k < corrupt.length; k += 7) corrupt[k] = (corrupt[k] as number) ^ 0x5a;
    await put(`${prefix}${BAD_OBJECTS.empty}`, Buffer.alloc(0));
    await put(`${prefix}${BAD_OBJECTS.truncated}`, jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    await put(`${prefix}${BAD_OBJECTS.corrupt}`, corrupt);
    await put(`${prefix}${BAD_OBJECTS.text}`, Buffer.from("this is a caption, not a photo\n"));
    await put(`${prefix}${BAD_OBJECTS.bomb}`, pngBomb(30000, 30000));
  }
  return written;
}
