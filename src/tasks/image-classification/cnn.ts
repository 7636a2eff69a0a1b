/**
 * A small image CNN as ONNX, built from explicit weights: three conv → ReLU →
 * max-pool stages, global average and max pooling, and a linear head. The first
 * stage is designed (oriented odd and even Gabor filters on luminance: edges and
 * bars at four angles, both polarities); the next two are seeded random filters;
 * the head is trained (scripts/gen-image-model.ts) on the pooled features. Random
 * deep features with a trained linear read-out classify simple shapes well and take
 * seconds to fit on a CPU.
 *
 * Two input forms share the same weights: uint8 NHWC with the normalisation inside
 * the graph (Cast, Transpose, Mul, Add), or float32 NCHW already normalised.
 */
import { InvalidArgumentError } from "../../core/errors.ts";
import { Rng } from "../../model/datasets.ts";
import { encodeOnnxModel, type OnnxNode, type OnnxTensor } from "../../model/onnx-writer.ts";

/** One conv layer: weight [out, in, k, k], bias [out]. */
export interface ConvLayer {
  out: number;
  in: number;
  k: number;
  weight: Float32Array;
  bias: Float32Array;
}

/** The feature extractor's layers. */
export interface CnnBody {
  convs: ConvLayer[];
  /** Width of the pooled feature vector (2 × last layer's channels). */
  features: number;
}

/** A linear read-out: weight [features, classes] (Gemm's B), bias [classes]. */
export interface CnnHead {
  weight: Float32Array;
  bias: Float32Array;
  classes: number;
}

/** Input form of the graph. */
export interface CnnInput {
  kind: "uint8-nhwc" | "float32-nchw";
  size: number;
  /** Graph input name (default "pixels" for uint8, "input" for float32). */
  name?: string;
  /** uint8 only: the graph computes (x/255 − mean) / std per channel. */
  mean?: number[];
  std?: number[];
}

const LUMA = [0.299, 0.587, 0.114];

/** Odd (edge) or even (bar) Gabor filter of size k at angle theta, zero mean, unit L2 norm. */
function gabor(k: number, theta: number, odd: boolean): Float32Array {
  const out = new Float32Array(k * k);
  const c = (k - 1) / 2;
  const sigma = k / 4;
  const freq = odd ? 0.5 / (k / 2) : 1 / (k / 2);
  let mean = 0;
  for (let y = 0; y < k; y++) {
    for (let x = 0; x < k; x++) {
      const dx = x - c;
      const dy = y - c;
      const u = dx * Math.cos(theta) + dy * Math.sin(theta);
      const env = Math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
      const v = env * (odd ? Math.sin(2 * Math.PI * freq * u) : Math.cos(2 * Math.PI * freq * u));
      out[y * k + x] = v;
      mean += v;
    }
  }
  mean /= k * k;
  let norm = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = (out[i] as number) - mean;
    norm += (out[i] as number) ** 2;
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / norm;
  return out;
}

function randomConv(rng: Rng, out: number, inCh: number, k: number): ConvLayer {
  const std = Math.sqrt(2 / (inCh * k * k));
  const weight = new Float32Array(out * inCh * k * k);
  for (let i = 0; i < weight.length; i++) weight[i] = std * rng.normal();
  const bias = new Float32Array(out);
  for (let i = 0; i < out; i++) bias[i] = 0.05 * rng.normal();
  return { out, in: inCh, k, weight, bias };
}

/** The shapes model's feature extractor: designed first stage, seeded random rest. */
export function shapeCnnBody(seed: number, widths: [number, number] = [32, 64]): CnnBody {
  const k1 = 5;
  const filters: Float32Array[] = [];
  for (let a = 0; a < 4; a++) {
    const theta = (a * Math.PI) / 4;
    for (const odd of [true, false]) {
      const g = gabor(k1, theta, odd);
      filters.push(
        g,
        g.map((v) => -v),
      );
    }
  }
  const out1 = filters.length;
  const w1 = new Float32Array(out1 * 3 * k1 * k1);
  filters.forEach((f, o) => {
    for (let c = 0; c < 3; c++)
      w1.set(
        f.map((v) => v * (LUMA[c] as number)),
        (o * 3 + c) * k1 * k1,
      );
  });
  const rng = new Rng(seed);
  const conv1: ConvLayer = { out: out1, in: 3, k: k1, weight: w1, bias: new Float32Array(out1) };
  const conv2 = randomConv(rng, widths[0], out1, 3);
  const conv3 = randomConv(rng, widths[1], widths[0], 3);
  return { convs: [conv1, conv2, conv3], features: 2 * widths[1] };
}

/** ONNX bytes of the CNN; without a head the output is the pooled "features". */
export function buildCnnModel(
  body: CnnBody,
  head: CnnHead | undefined,
  input: CnnInput,
  metadata?: Record<string, string>,
): Uint8Array {
  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [];
  const size = input.size;
  let x: string;
  let inputName: string;
  if (input.kind === "uint8-nhwc") {
    inputName = input.name ?? "pixels";
    const mean = input.mean ?? [0, 0, 0];
    const std = input.std ?? [1, 1, 1];
    if (mean.length !== 3 || std.length !== 3) {
      throw new InvalidArgumentError("mean and std need 3 values (RGB)");
    }
    inits.push(
      { name: "norm_mul", dims: [1, 3, 1, 1], data: Float32Array.from(std, (s) => 1 / (255 * s)) },
      {
        name: "norm_add",
        dims: [1, 3, 1, 1],
        data: Float32Array.from(mean, (m, c) => -m / (std[c] as number)),
      },
    );
    nodes.push(
      { opType: "Cast", inputs: [inputName], outputs: ["pixels_f"], attributes: { to: { i: 1 } } },
      {
        opType: "Transpose",
        inputs: ["pixels_f"],
        outputs: ["pixels_chw"],
        attributes: { perm: { ints: [0, 3, 1, 2] } },
      },
      { opType: "Mul", inputs: ["pixels_chw", "norm_mul"], outputs: ["scaled"] },
      { opType: "Add", inputs: ["scaled", "norm_add"], outputs: ["normalized"] },
    );
    x = "normalized";
  } else {
    inputName = input.name ?? "input";
    x = inputName;
  }
  body.convs.forEach((conv, l) => {
    const p = (conv.k - 1) / 2;
    inits.push(
      { name: `conv${l}_w`, dims: [conv.out, conv.in, conv.k, conv.k], data: conv.weight },
      { name: `conv${l}_b`, dims: [conv.out], data: conv.bias },
    );
    nodes.push(
      {
        opType: "Conv",
        inputs: [x, `conv${l}_w`, `conv${l}_b`],
        outputs: [`conv${l}`],
        attributes: { kernel_shape: { ints: [conv.k, conv.k] }, pads: { ints: [p, p, p, p] } },
      },
      { opType: "Relu", inputs: [`conv${l}`], outputs: [`relu${l}`] },
      {
        opType: "MaxPool",
        inputs: [`relu${l}`],
        outputs: [`pool${l}`],
        attributes: { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } },
      },
    );
    x = `pool${l}`;
  });
  nodes.push(
    { opType: "GlobalAveragePool", inputs: [x], outputs: ["gap"] },
    { opType: "GlobalMaxPool", inputs: [x], outputs: ["gmp"] },
    {
      opType: "Concat",
      inputs: ["gap", "gmp"],
      outputs: ["pooled"],
      attributes: { axis: { i: 1 } },
    },
    {
      opType: "Flatten",
      inputs: ["pooled"],
      outputs: ["features"],
      attributes: { axis: { i: 1 } },
    },
  );
  let output = "features";
  let outWidth = body.features;
  if (head) {
    if (head.weight.length !== body.features * head.classes || head.bias.length !== head.classes) {
      throw new InvalidArgumentError(
        `head must be [${body.features}, ${head.classes}] + [${head.classes}], got ${head.weight.length} + ${head.bias.length} values`,
      );
    }
    inits.push(
      { name: "head_w", dims: [body.features, head.classes], data: head.weight },
      { name: "head_b", dims: [head.classes], data: head.bias },
    );
    nodes.push({ opType: "Gemm", inputs: ["features", "head_w", "head_b"], outputs: ["logits"] });
    output = "logits";
    outWidth = head.classes;
  }
  const inputDims =
    input.kind === "uint8-nhwc" ? ["batch", size, size, 3] : ["batch", 3, size, size];
  return encodeOnnxModel({
    name: "shapes_cnn",
    docString: `${body.convs.length}-stage CNN, ${input.kind} ${size}x${size} input`,
    inputs: [
      { name: inputName, dims: inputDims, type: input.kind === "uint8-nhwc" ? "uint8" : "float32" },
    ],
    outputs: [{ name: output, dims: ["batch", outWidth] }],
    initializers: inits,
    nodes,
    metadata,
  });
}
