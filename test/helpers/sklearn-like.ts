/**
 * Models shaped the way converters export them, built with the project's ONNX
 * writer (no Python): skl2onnx's LogisticRegression with zipmap=False (XGBoost's
 * classifier via onnxmltools has the same signature) — a float input
 * [None, n], an int64 `label` [None] and a float `probabilities` [None, 2].
 */
import { encodeOnnxModel } from "../../src/model/onnx-writer.ts";

/** Weights of a binary logistic regression over `weights.length` features. */
export interface BinaryLogistic {
  weights: number[];
  bias: number;
}

/**
 * ONNX bytes: probabilities = softmax([0, x·w + b]) (so P(class 1) = sigmoid(x·w + b))
 * and label = argmax, with skl2onnx's names and shapes. The free batch dimension is
 * written unnamed, as skl2onnx writes `None`.
 */
export function sklearnLogisticOnnx(model: BinaryLogistic): Uint8Array {
  const n = model.weights.length;
  // Column 0 scores class 0 (always 0), column 1 class 1: softmax gives [1 - p, p].
  const w = new Float32Array(n * 2);
  model.weights.forEach((v, i) => {
    w[i * 2 + 1] = v;
  });
  return encodeOnnxModel({
    name: "LogisticRegression",
    producer: "skl2onnx",
    inputs: [{ name: "float_input", dims: ["", n] }],
    outputs: [
      { name: "label", dims: [""], type: "int64" },
      { name: "probabilities", dims: ["", 2] },
    ],
    initializers: [
      { name: "coef", dims: [n, 2], data: w },
      { name: "intercept", dims: [2], data: Float32Array.of(0, model.bias) },
    ],
    nodes: [
      { opType: "MatMul", inputs: ["float_input", "coef"], outputs: ["scores0"] },
      { opType: "Add", inputs: ["scores0", "intercept"], outputs: ["scores"] },
      {
        opType: "Softmax",
        inputs: ["scores"],
        outputs: ["probabilities"],
        attributes: { axis: { i: 1 } },
      },
      {
        opType: "ArgMax",
        inputs: ["probabilities"],
        outputs: ["label"],
        attributes: { axis: { i: 1 }, keepdims: { i: 0 } },
      },
    ],
  });
}
