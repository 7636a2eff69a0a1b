/**
 * Generated images of shapes, for the demo model, tests and the benchmark: a
 * circle, square, triangle, star or cross of a random colour, size, rotation and
 * position on a random background, drawn as SVG and encoded with sharp as JPEG, PNG
 * or WebP. The shape always lies in the image's central square, so a centre crop
 * keeps it; the foreground always differs from the background in luminance.
 */
import sharp from "sharp";
import { Rng } from "../../model/datasets.ts";

export const SHAPE_LABELS = ["circle", "square", "triangle", "star", "cross"] as const;
/** One of {@link SHAPE_LABELS}. */
export type ShapeLabel = (typeof SHAPE_LABELS)[number];
/** Encodings the generator writes. */
export type ShapeEncoding = "jpeg" | "png" | "webp";

/** One generated image. */
export interface ShapeImage {
  label: ShapeLabel;
  encoding: ShapeEncoding;
  width: number;
  height: number;
  bytes: Buffer;
}

/** Size range and encodings of generated images. */
export interface ShapeOptions {
  minSide?: number;
  maxSide?: number;
  encodings?: readonly ShapeEncoding[];
}

/** Uniform integer in [lo, hi). */
function between(rng: Rng, lo: number, hi: number): number {
  return lo + rng.int(hi - lo);
}

function luminance([r, g, b]: number[]): number {
  return (0.299 * (r as number) + 0.587 * (g as number) + 0.114 * (b as number)) / 255;
}

function colour(rng: Rng): number[] {
  return [between(rng, 0, 256), between(rng, 0, 256), between(rng, 0, 256)];
}

function hex(c: number[]): string {
  return `#${c.map((v) => v.toString(16).padStart(2, "0")).join("")}`;
}

function polygon(points: [number, number][]): string {
  return points.map(([x, y]) => `${x.toFixed(2)},${y.toFixed(2)}`).join(" ");
}

/** SVG of one shape of radius `r` centred at the origin (rotation applied by the caller). */
function shapeSvg(label: ShapeLabel, r: number, fill: string): string {
  switch (label) {
    case "circle":
      return `<circle cx="0" cy="0" r="${r}" fill="${fill}"/>`;
    case "square": {
      const s = r * 0.85;
      return `<rect x="${-s}" y="${-s}" width="${2 * s}" height="${2 * s}" fill="${fill}"/>`;
    }
    case "triangle": {
      const pts: [number, number][] = [0, 1, 2].map((k) => {
        const a = -Math.PI / 2 + (k * 2 * Math.PI) / 3;
        return [r * 1.1 * Math.cos(a), r * 1.1 * Math.sin(a) + r * 0.15];
      });
      return `<polygon points="${polygon(pts)}" fill="${fill}"/>`;
    }
    case "star": {
      const pts: [number, number][] = [];
      for (let k = 0; k < 10; k++) {
        const a = -Math.PI / 2 + (k * Math.PI) / 5;
        const rr = k % 2 === 0 ? r * 1.05 : r * 0.42;
        pts.push([rr * Math.cos(a), rr * Math.sin(a)]);
      }
      return `<polygon points="${polygon(pts)}" fill="${fill}"/>`;
    }
    case "cross": {
      const a = r * 0.95;
      const w = r * 0.32;
      const pts: [number, number][] = [
        [-w, -a],
        [w, -a],
        [w, -w],
        [a, -w],
        [a, w],
        [w, w],
        [w, a],
        [-w, a],
        [-w, w],
        [-a, w],
        [-a, -w],
        [-w, -w],
      ];
      return `<polygon points="${polygon(pts)}" fill="${fill}"/>`;
    }
  }
}

/** The SVG of a random image of `label`. */
export function shapeScene(rng: Rng, label: ShapeLabel, width: number, height: number): string {
  const bg = colour(rng);
  let fg = colour(rng);
  while (Math.abs(luminance(fg) - luminance(bg)) < 0.3) fg = colour(rng);
  const bg2 = bg.map((v) => Math.max(0, Math.min(255, v + between(rng, -40, 41))));
  const side = Math.min(width, height);
  const r = side * (0.22 + 0.16 * rng.next());
  const free = side / 2 - r * 1.1;
  const cx = width / 2 + (rng.next() * 2 - 1) * Math.max(0, free);
  const cy = height / 2 + (rng.next() * 2 - 1) * Math.max(0, free);
  const angle = (rng.next() * 2 - 1) * 30;
  // A few small specks so the background is not perfectly clean.
  let specks = "";
  for (let k = between(rng, 0, 6); k > 0; k--) {
    const c = hex(colour(rng));
    specks += `<circle cx="${(rng.next() * width).toFixed(1)}" cy="${(rng.next() * height).toFixed(1)}" r="${(1 + rng.next() * side * 0.012).toFixed(1)}" fill="${c}"/>`;
  }
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">` +
    `<stop offset="0" stop-color="${hex(bg)}"/><stop offset="1" stop-color="${hex(bg2)}"/></linearGradient></defs>` +
    `<rect width="${width}" height="${height}" fill="url(#g)"/>${specks}` +
    `<g transform="translate(${cx.toFixed(2)} ${cy.toFixed(2)}) rotate(${angle.toFixed(1)})">${shapeSvg(label, r, hex(fg))}</g></svg>`
  );
}

/** Render and encode image `index` of the stream seeded by `seed` (labels cycle). */
export async function renderShape(
  seed: number,
  index: number,
  options: ShapeOptions = {},
): Promise<ShapeImage> {
  const rng = new Rng(seed * 1_000_003 + index);
  const label = SHAPE_LABELS[index % SHAPE_LABELS.length] as ShapeLabel;
  const minSide = options.minSide ?? 96;
  const maxSide = options.maxSide ?? 320;
  const width = between(rng, minSide, maxSide + 1);
  const height = between(rng, minSide, maxSide + 1);
  const encodings = options.encodings ?? ["jpeg", "png", "webp"];
  const encoding = encodings[rng.int(encodings.length)] as ShapeEncoding;
  const svg = Buffer.from(shapeScene(rng, label, width, height));
  const img = sharp(svg).removeAlpha();
  const bytes =
    encoding === "jpeg"
      ? await img.jpeg({ quality: between(rng, 70, 96) }).toBuffer()
      : encoding === "png"
        ? await img.png({ compressionLevel: 6 }).toBuffer()
        : await img.webp({ quality: between(rng, 70, 96) }).toBuffer();
  return { label, encoding, width, height, bytes };
}

/** File extension of an encoding. */
export function extensionOf(encoding: ShapeEncoding): string {
  return encoding === "jpeg" ? "jpg" : encoding;
}
