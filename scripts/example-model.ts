/**
 * An example of bringing your own model: a loans CSV and a model shaped the way
 * skl2onnx exports a scikit-learn LogisticRegression with zipmap=False (float
 * input [None, n], int64 `label` [None], float `probabilities` [None, 2]; an
 * XGBoost classifier via onnxmltools has the same signature), written with the
 * project's ONNX writer, so no Python is needed to try `init-model`.
 *
 *   npm run example-model                    # .demo/loans/model.onnx and loans.csv
 *   npm run example-model -- --rows 50000 --dir DIR
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { Rng } from "../src/model/datasets.ts";
import { encodeOnnxModel } from "../src/model/onnx-writer.ts";

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

/** The example's model over income, age, owns_home, purpose (one-hot: car, education, home). */
export const LOANS_MODEL: BinaryLogistic = {
  weights: [-0.00004, -0.03, -0.6, 0.3, 0.5, -0.4],
  bias: 2.2,
};

const PURPOSES = ["home", "car", "education"] as const;

/**
 * A loans CSV: loan_id, income, age (a few empty), owns_home (yes/no), purpose,
 * a free-text note, and `defaulted` drawn from LOANS_MODEL's probability, the
 * label a model is trained to predict.
 */
export function loansCsv(rows: number, seed = 7): string {
  const rng = new Rng(seed);
  let csv = "loan_id,income,age,owns_home,purpose,notes,defaulted\n";
  for (let i = 0; i < rows; i++) {
    const income = Math.round(rng.uniform(18_000, 140_000));
    const age = 19 + rng.int(60);
    const owns = rng.bernoulli(0.45);
    const purpose = PURPOSES[rng.int(3)] as (typeof PURPOSES)[number];
    const x = [
      income,
      age,
      owns ? 1 : 0,
      ...["car", "education", "home"].map((c) => (c === purpose ? 1 : 0)),
    ];
    const z = x.reduce((s, v, k) => s + v * (LOANS_MODEL.weights[k] ?? 0), LOANS_MODEL.bias);
    const defaulted = rng.bernoulli(1 / (1 + Math.exp(-z))) ? 1 : 0;
    const shownAge = rng.bernoulli(0.01) ? "" : String(age);
    csv += `L${String(i + 1).padStart(7, "0")},${income},${shownAge},${owns ? "yes" : "no"},${purpose},"applied online, ref ${100000 + rng.int(900000)}",${defaulted}\n`;
  }
  return csv;
}

const invoked = process.argv[1] && /example-model\.ts$/.test(process.argv[1]);
if (invoked) {
  const { values } = parseArgs({
    options: {
      dir: { type: "string", default: ".demo/loans" },
      rows: { type: "string", default: "20000" },
    },
  });
  const dir = path.resolve(values.dir);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "model.onnx"), sklearnLogisticOnnx(LOANS_MODEL));
  await writeFile(path.join(dir, "loans.csv"), loansCsv(Number(values.rows)));
  console.log(
    `wrote ${path.relative(process.cwd(), path.join(dir, "model.onnx"))} (a LogisticRegression as skl2onnx exports it with zipmap=False) and ${path.relative(process.cwd(), path.join(dir, "loans.csv"))} (${Number(values.rows).toLocaleString("en-US")} loans)`,
  );
}
