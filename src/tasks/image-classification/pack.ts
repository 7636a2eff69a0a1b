/**
 * Pack decoded HWC uint8 pixels into one batch slot of the model's input tensor:
 * NHWC uint8 is a plain copy (the model normalises in its graph); NCHW and float32
 * transpose, reorder channels and apply (x·scale − mean) / std here.
 */
import type { ImagePreprocess } from "./descriptor.ts";

/** Per-channel affine map x → x·mul[c] + add[c], channel order resolved. */
export interface PackPlan {
  channels: 1 | 3;
  /** Output channel c takes input channel src[c] (BGR swaps 0 and 2). */
  src: number[];
  mul: Float32Array;
  add: Float32Array;
  nchw: boolean;
  float: boolean;
  /** Values per image. */
  size: number;
}

/** Precompute the packing of one image for a preprocessing block. */
export function packPlan(p: ImagePreprocess): PackPlan {
  const channels = p.channels === "gray" ? 1 : 3;
  const scale = p.scale ?? 1 / 255;
  const mul = new Float32Array(channels);
  const add = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const mean = p.mean?.[c] ?? 0;
    const std = p.std?.[c] ?? 1;
    mul[c] = scale / std;
    add[c] = -mean / std;
  }
  return {
    channels,
    src: channels === 1 ? [0] : p.channels === "bgr" ? [2, 1, 0] : [0, 1, 2],
    mul,
    add,
    nchw: p.layout === "nchw",
    float: p.dtype === "float32",
    size: p.width * p.height * channels,
  };
}

/** Write image `slot` of a batch tensor from HWC pixels. */
export function packImage(
  plan: PackPlan,
  pixels: Uint8Array,
  out: Float32Array | Uint8Array,
  slot: number,
): void {
  const base = slot * plan.size;
  const C = plan.channels;
  const hw = plan.size / C;
  const identityOrder = C === 1 || plan.src[0] === 0;
  if (!plan.float && !plan.nchw && identityOrder) {
    out.set(pixels.subarray(0, plan.size), base);
    return;
  }
  for (let c = 0; c < C; c++) {
    const s = plan.src[c] as number;
    const mul = plan.mul[c] as number;
    const add = plan.add[c] as number;
    if (plan.nchw) {
      const o = base + c * hw;
      if (plan.float)
        for (let i = 0; i < hw; i++) out[o + i] = (pixels[i * C + s] as number) * mul + add;
      else for (let i = 0; i < hw; i++) out[o + i] = pixels[i * C + s] as number;
    } else if (plan.float) {
      for (let i = 0; i < hw; i++)
        out[base + i * C + c] = (pixels[i * C + s] as number) * mul + add;
    } else {
      for (let i = 0; i < hw; i++) out[base + i * C + c] = pixels[i * C + s] as number;
    }
  }
}
