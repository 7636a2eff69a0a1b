/**
 * Recognise an image format by its first bytes. Only formats the descriptor accepts
 * ever reach libvips: an SVG, a PDF or a text file is refused here, cheaply and
 * without giving a vector renderer untrusted input.
 */
import type { ImageFormat } from "./descriptor.ts";

function ascii(buf: Buffer, at: number, text: string): boolean {
  if (buf.length < at + text.length) return false;
  for (let i = 0; i < text.length; i++) if (buf[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** The format the bytes start like, or undefined. */
export function sniffImageFormat(buf: Buffer): ImageFormat | undefined {
  if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) return "jpeg";
  if (ascii(buf, 0, "\x89PNG\r\n\x1a\n")) return "png";
  if (ascii(buf, 0, "RIFF") && ascii(buf, 8, "WEBP")) return "webp";
  if (ascii(buf, 0, "GIF87a") || ascii(buf, 0, "GIF89a")) return "gif";
  if (ascii(buf, 0, "II*\0") || ascii(buf, 0, "MM\0*")) return "tiff";
  if (ascii(buf, 4, "ftypavif") || ascii(buf, 4, "ftypavis")) return "avif";
  return undefined;
}

/** What the bytes look like instead, for a bad record's reason. */
export function describeNonImage(buf: Buffer): string {
  const head = buf.subarray(0, 64).toString("latin1");
  if (/^\s*<(\?xml|svg)/i.test(head)) return "an SVG/XML document";
  if (head.startsWith("%PDF")) return "a PDF document";
  if (ascii(buf, 4, "ftyp")) return "an ISO media file (video or HEIF)";
  const printable = [...buf.subarray(0, 64)].every(
    (b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127),
  );
  if (printable) return "text";
  return `unknown bytes ${buf.subarray(0, 8).toString("hex")}`;
}
