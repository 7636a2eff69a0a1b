/**
 * The two model shapes this project ships, as ONNX bytes: a logistic regression with
 * its standardization baked into the graph (so the pipeline feeds raw feature values),
 * and a seeded random MLP that exists to make inference compute-bound in benchmarks.
 */

import { InvalidArgumentError } from "../core/errors.ts";
import { Rng } from "./datasets.ts";
import { encodeOnnxModel, type OnnxNode, type OnnxTensor } from "./onnx-writer.ts";

/** Parameters of a standardized logistic regression (float32, as in the graph). */
export interface LogisticModelSpec {
  mean: Float32Array;
  scale: Float32Array;
  weights: Float32Array;
  bias: number;
  /** Graph input name; default "features". */
  inputName?: string;
  /** Graph output name; default "probability". */
  outputName?: string;
  /** Graph name; default "logistic". */
  name?: string;
  /** ONNX metadata_props. */
  metadata?: Record<string, string>;
}

/**
 * ONNX for p = sigmoid(((x - mean) * scale) · weights + bias):
 * input float32 [batch, width] → output float32 [batch, 1].
 */
export function buildLogisticModel(spec: LogisticModelSpec): Uint8Array {
  const width = spec.weights.length;
  if (width === 0 || spec.mean.length !== width || spec.scale.length !== width) {
    throw new InvalidArgumentError(
      `mean (${spec.mean.length}), scale (${spec.scale.length}) and weights (${width}) must have the same non-zero length`,
    );
  }
  if (!Number.isFinite(spec.bias)) throw new InvalidArgumentError("bias must be finite");
  const input = spec.inputName ?? "features";
  const output = spec.outputName ?? "probability";
  return encodeOnnxModel({
    name: spec.name ?? "logistic",
    docString: "sigmoid(((features - mean) * scale) @ weights + bias)",
    inputs: [{ name: input, dims: ["batch", width] }],
    outputs: [{ name: output, dims: ["batch", 1] }],
    initializers: [
      { name: "mean", dims: [width], data: spec.mean },
      { name: "scale", dims: [width], data: spec.scale },
      { name: "weights", dims: [width, 1], data: spec.weights },
      { name: "bias", dims: [1], data: Float32Array.of(spec.bias) },
    ],
    nodes: [
      { opType: "Sub", inputs: [input, "mean"], outputs: ["centered"] },
      { opType: "Mul", inputs: ["centered", "scale"], outputs: ["standardized"] },
      { opType: "Gemm", inputs: ["standardized", "weights", "bias"], outputs: ["logit"] },
      { opType: "Sigmoid", inputs: ["logit"], outputs: [output] },
    ],
    metadata: spec.metadata,
  });
}

/** MLP shape; weights come from `seed`. */
export interface MlpModelSpec {
  inputs: number;
  hidden: number[];
  seed: number;
  /** Graph input name; default "features". */
  inputName?: string;
  /** Graph output name; default "probability". */
  outputName?: string;
}

/** One dense layer: `weight` is row-major [inputs, outputs] (Gemm's B without transB). */
export interface DenseLayer {
  inputs: number;
  outputs: number;
  weight: Float32Array;
  bias: Float32Array;
}

/**
 * The MLP's layers, hidden ones then a 1-unit output. He-normal init for the ReLU
 * layers; the output layer is scaled down so sigmoid outputs stay spread across
 * (0, 1) rather than saturating, which keeps benchmark outputs meaningful.
 */
export function createMlpParameters(spec: MlpModelSpec): DenseLayer[] {
  const sizes = [spec.inputs, ...spec.hidden, 1];
  if (!sizes.every((s) => Number.isInteger(s) && s > 0)) {
    throw new InvalidArgumentError(
      `layer sizes must be positive integers, got [${sizes.join(",")}]`,
    );
  }
  const rng = new Rng(spec.seed);
  const layers: DenseLayer[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const inputs = sizes[l] as number;
    const outputs = sizes[l + 1] as number;
    const last = l + 2 === sizes.length;
    const std = last ? 0.5 / Math.sqrt(inputs) : Math.sqrt(2 / inputs);
    const weight = new Float32Array(inputs * outputs);
    for (let k = 0; k < weight.length; k++) weight[k] = std * rng.normal();
    const bias = new Float32Array(outputs);
    for (let k = 0; k < outputs; k++) bias[k] = 0.01 * rng.normal();
    layers.push({ inputs, outputs, weight, bias });
  }
  return layers;
}

/**
 * ONNX for the MLP: (Gemm → Relu) per hidden layer, then Gemm → Sigmoid;
 * input float32 [batch, inputs] → output float32 [batch, 1].
 */
export function buildMlpModel(spec: MlpModelSpec): Uint8Array {
  const layers = createMlpParameters(spec);
  const input = spec.inputName ?? "features";
  const output = spec.outputName ?? "probability";
  const initializers: OnnxTensor[] = [];
  const nodes: OnnxNode[] = [];
  let current = input;
  layers.forEach((layer, l) => {
    initializers.push(
      { name: `w${l}`, dims: [layer.inputs, layer.outputs], data: layer.weight },
      { name: `b${l}`, dims: [layer.outputs], data: layer.bias },
    );
    const last = l === layers.length - 1;
    const gemmOut = last ? "logit" : `dense${l}`;
    nodes.push({ opType: "Gemm", inputs: [current, `w${l}`, `b${l}`], outputs: [gemmOut] });
    if (last) {
      nodes.push({ opType: "Sigmoid", inputs: [gemmOut], outputs: [output] });
    } else {
      nodes.push({ opType: "Relu", inputs: [gemmOut], outputs: [`relu${l}`] });
      current = `relu${l}`;
    }
  });
  return encodeOnnxModel({
    name: "mlp",
    docString: `random MLP ${spec.inputs}-${spec.hidden.join("-")}-1 (seed ${spec.seed}) for benchmarks`,
    inputs: [{ name: input, dims: ["batch", spec.inputs] }],
    outputs: [{ name: output, dims: ["batch", 1] }],
    initializers,
    nodes,
    metadata: { seed: String(spec.seed) },
  });
}
