/**
 * Decode and resize one image with sharp (libvips) into interleaved 8-bit pixels
 * (HWC, RGB or gray) of exactly the model's size. Everything that can be wrong with
 * an object — empty, not an image, a format the model does not accept, corrupt or
 * truncated, too many pixels (a decompression bomb) — comes back as a reason, never
 * as a thrown error: the record goes to the errors output and the job goes on.
 *
 * sharp runs each pipeline on a libuv thread-pool thread, so several decodes run at
 * once and overlap inference on the inference thread. See configureSharp.
 */
import sharp from "sharp";
import { DEFAULT_FORMATS, type ImageFormat, type ImagePreprocess } from "./descriptor.ts";
import { describeNonImage, sniffImageFormat } from "./sniff.ts";

/** A decoded image: `pixels` is height × width × channels, row-major. */
export interface DecodedImage {
  pixels: Buffer;
  width: number;
  height: number;
  channels: 1 | 3;
  format: ImageFormat;
}

/** Either pixels or why there are none. */
export type DecodeResult =
  | { image: DecodedImage; reason?: undefined }
  | { image?: undefined; reason: string };

let configured = false;

/**
 * Process-wide sharp settings for batch decoding: libvips threads per image (1:
 * parallelism comes from decoding several images at once on libuv's pool, which
 * UV_THREADPOOL_SIZE sizes), and no operation cache (every image is new).
 */
export function configureSharp(options: { vipsThreads?: number } = {}): void {
  sharp.concurrency(options.vipsThreads ?? 1);
  sharp.cache(false);
  configured = true;
}

const KERNELS = {
  nearest: sharp.kernel.nearest,
  linear: sharp.kernel.linear,
  cubic: sharp.kernel.cubic,
  mitchell: sharp.kernel.mitchell,
  lanczos2: sharp.kernel.lanczos2,
  lanczos3: sharp.kernel.lanczos3,
} as const;

/** True when the bytes end before the format's end marker (or declared size). */
function endsEarly(body: Buffer, format: ImageFormat): boolean {
  const n = body.length;
  switch (format) {
    case "jpeg":
      return !(body[n - 2] === 0xff && body[n - 1] === 0xd9);
    case "png":
      return body.subarray(Math.max(0, n - 12)).indexOf("IEND", 0, "latin1") < 0;
    case "gif":
      return body[n - 1] !== 0x3b;
    case "webp":
      return n < 12 || body.readUInt32LE(4) + 8 > n;
    default:
      return false;
  }
}

/**
 * Why a decode failed, from the bytes rather than libvips' message: libvips keeps
 * one error buffer per process, so with several images decoding at once its text
 * can belong to another image or be lost ("Unknown error"). A bad record's reason
 * must be the same on every run (a rerun's errors output is byte-identical).
 */
async function failureReason(
  body: Buffer,
  format: ImageFormat,
  maxInputPixels: number,
): Promise<string> {
  const meta = await sharp(body, { limitInputPixels: false })
    .metadata()
    .catch(() => undefined);
  if (meta?.width && meta.height && meta.width * meta.height > maxInputPixels) {
    return `image has more than ${maxInputPixels} pixels (maxInputPixels): refused as a possible decompression bomb`;
  }
  if (endsEarly(body, format)) {
    return `truncated ${format} image: ${body.length} bytes end before the image does`;
  }
  return `corrupt ${format} image: libvips could not decode it${meta ? "" : " (nor read its header)"}`;
}

/** Decode `body` and bring it to the model's size and channels. */
export async function decodeImage(body: Buffer, p: ImagePreprocess): Promise<DecodeResult> {
  if (!configured) configureSharp();
  if (body.length === 0) return { reason: "empty object (0 bytes)" };
  const format = sniffImageFormat(body);
  const accepted = p.formats ?? DEFAULT_FORMATS;
  if (format === undefined) {
    return { reason: `not an image: the object is ${describeNonImage(body)}` };
  }
  if (!accepted.includes(format)) {
    return {
      reason: `${format} images are not accepted by this model (formats: ${accepted.join(", ")})`,
    };
  }
  const gray = p.channels === "gray";
  const kernel = KERNELS[p.kernel];
  try {
    let img = sharp(body, {
      limitInputPixels: p.maxInputPixels,
      // Truncated files fail; recoverable warnings (stray bytes in a JPEG) don't.
      failOn: "truncated",
      sequentialRead: true,
      autoOrient: true,
    });
    if (p.resize === "crop" && p.shorterSide !== undefined) {
      // torchvision's Resize(shorter) + CenterCrop: the resized size needs the
      // (orientation-corrected) input size.
      const meta = await img.metadata();
      const w = meta.autoOrient?.width ?? meta.width;
      const h = meta.autoOrient?.height ?? meta.height;
      if (!w || !h) return { reason: `corrupt ${format} image: no dimensions in its header` };
      const s = p.shorterSide / Math.min(w, h);
      const rw = Math.max(p.width, Math.round(w * s));
      const rh = Math.max(p.height, Math.round(h * s));
      img = img.resize(rw, rh, { fit: "fill", kernel }).extract({
        left: Math.floor((rw - p.width) / 2),
        top: Math.floor((rh - p.height) / 2),
        width: p.width,
        height: p.height,
      });
    } else if (p.resize === "letterbox") {
      const [r, g, b] = p.padColor ?? [0, 0, 0];
      img = img.resize(p.width, p.height, {
        fit: "contain",
        kernel,
        background: { r, g, b, alpha: 1 },
      });
    } else {
      img = img.resize(p.width, p.height, {
        fit: p.resize === "crop" ? "cover" : "fill",
        position: "centre",
        kernel,
      });
    }
    img = gray ? img.toColourspace("b-w") : img.removeAlpha().toColourspace("srgb");
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    const channels = gray ? 1 : 3;
    if (info.width !== p.width || info.height !== p.height || info.channels !== channels) {
      return {
        reason: `decoded to ${info.width}x${info.height}x${info.channels}, expected ${p.width}x${p.height}x${channels}`,
      };
    }
    return { image: { pixels: data, width: info.width, height: info.height, channels, format } };
  } catch {
    return { reason: await failureReason(body, format, p.maxInputPixels) };
  }
}
