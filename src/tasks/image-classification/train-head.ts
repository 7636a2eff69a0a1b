/**
 * Fit the CNN's linear head: multinomial logistic regression on standardised
 * features, full-batch Adam with L2. The standardisation is folded into the
 * returned weights, so the head applies to raw pooled features.
 */
import type { CnnHead } from "./cnn.ts";

/** Training settings (defaults fit the shapes set in a few seconds). */
export interface HeadTraining {
  epochs?: number;
  learningRate?: number;
  l2?: number;
}

/** Train on `x` (rows × width, row-major) with labels `y` in [0, classes). */
export function trainSoftmaxHead(
  x: Float32Array,
  y: Int32Array,
  width: number,
  classes: number,
  options: HeadTraining = {},
): CnnHead {
  const n = y.length;
  const mean = new Float64Array(width);
  const std = new Float64Array(width);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < width; j++) mean[j] = (mean[j] as number) + (x[i * width + j] as number);
  }
  for (let j = 0; j < width; j++) mean[j] = (mean[j] as number) / n;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < width; j++)
      std[j] = (std[j] as number) + ((x[i * width + j] as number) - (mean[j] as number)) ** 2;
  }
  for (let j = 0; j < width; j++) std[j] = Math.sqrt((std[j] as number) / n) || 1;
  const z = new Float64Array(n * width);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < width; j++) {
      z[i * width + j] = ((x[i * width + j] as number) - (mean[j] as number)) / (std[j] as number);
    }
  }
  const epochs = options.epochs ?? 400;
  const lr = options.learningRate ?? 0.05;
  const l2 = options.l2 ?? 1e-3;
  const P = (width + 1) * classes; // weights then biases
  const w = new Float64Array(P);
  const m = new Float64Array(P);
  const v = new Float64Array(P);
  const grad = new Float64Array(P);
  const logits = new Float64Array(classes);
  for (let t = 1; t <= epochs; t++) {
    grad.fill(0);
    for (let i = 0; i < n; i++) {
      let max = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < classes; c++) {
        let s = w[width * classes + c] as number;
        for (let j = 0; j < width; j++)
          s += (z[i * width + j] as number) * (w[j * classes + c] as number);
        logits[c] = s;
        max = Math.max(max, s);
      }
      let sum = 0;
      for (let c = 0; c < classes; c++) {
        logits[c] = Math.exp((logits[c] as number) - max);
        sum += logits[c] as number;
      }
      for (let c = 0; c < classes; c++) {
        const d = (logits[c] as number) / sum - (c === y[i] ? 1 : 0);
        grad[width * classes + c] = (grad[width * classes + c] as number) + d;
        for (let j = 0; j < width; j++)
          grad[j * classes + c] =
            (grad[j * classes + c] as number) + d * (z[i * width + j] as number);
      }
    }
    for (let k = 0; k < P; k++) {
      const g = (grad[k] as number) / n + (k < width * classes ? l2 * (w[k] as number) : 0);
      m[k] = 0.9 * (m[k] as number) + 0.1 * g;
      v[k] = 0.999 * (v[k] as number) + 0.001 * g * g;
      const mh = (m[k] as number) / (1 - 0.9 ** t);
      const vh = (v[k] as number) / (1 - 0.999 ** t);
      w[k] = (w[k] as number) - (lr * mh) / (Math.sqrt(vh) + 1e-8);
    }
  }
  // Fold (x − mean) / std into the weights: W' = W / std, b' = b − Σ mean·W / std.
  const weight = new Float32Array(width * classes);
  const bias = new Float32Array(classes);
  for (let c = 0; c < classes; c++) {
    let b = w[width * classes + c] as number;
    for (let j = 0; j < width; j++) {
      const wj = (w[j * classes + c] as number) / (std[j] as number);
      weight[j * classes + c] = wj;
      b -= (mean[j] as number) * wj;
    }
    bias[c] = b;
  }
  return { weight, bias, classes };
}
