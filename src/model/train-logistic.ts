/**
 * L2-regularized logistic regression in plain TypeScript, plus rank AUC.
 *
 * Newton's method (IRLS) on standardized features: with tens of features the
 * Hessian is tiny, it converges in a handful of passes, and it needs no learning
 * rate or shuffling, so the fit is fully deterministic (no seed needed at all).
 */

import { InvalidArgumentError } from "../core/errors.ts";

/** Training knobs. */
export interface LogisticOptions {
  /** L2 penalty on the (standardized) weights, per example; default 1e-4. The bias is not penalized. */
  l2?: number;
  /** Newton iterations at most; default 50. */
  maxIterations?: number;
  /** Stop when the largest parameter change is below this; default 1e-8. */
  tolerance?: number;
}

/**
 * A fitted model: p = sigmoid(((x - mean) * scale) · weights + bias). Stored as
 * float32, exactly what goes into the ONNX graph.
 */
export interface LogisticModel {
  mean: Float32Array;
  scale: Float32Array;
  weights: Float32Array;
  bias: number;
  iterations: number;
  /** Final regularized mean log-loss on the training rows. */
  loss: number;
}

/**
 * Column means and 1/std over `rows` row-major rows of `width`; a constant column
 * gets scale 1 (it carries no signal, and dividing by zero would poison the graph).
 */
export function fitStandardization(
  x: Float64Array,
  width: number,
): { mean: Float64Array; scale: Float64Array } {
  const rows = checkShape(x, width);
  const mean = new Float64Array(width);
  const sq = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    const o = r * width;
    for (let j = 0; j < width; j++) mean[j] = (mean[j] ?? 0) + (x[o + j] ?? 0);
  }
  for (let j = 0; j < width; j++) mean[j] = (mean[j] ?? 0) / rows;
  for (let r = 0; r < rows; r++) {
    const o = r * width;
    for (let j = 0; j < width; j++) {
      const d = (x[o + j] ?? 0) - (mean[j] ?? 0);
      sq[j] = (sq[j] ?? 0) + d * d;
    }
  }
  const scale = new Float64Array(width);
  for (let j = 0; j < width; j++) {
    const sd = Math.sqrt((sq[j] ?? 0) / rows);
    scale[j] = sd > 1e-12 ? 1 / sd : 1;
  }
  return { mean, scale };
}

function checkShape(x: Float64Array, width: number): number {
  if (!Number.isInteger(width) || width <= 0) {
    throw new InvalidArgumentError(`width must be a positive integer, got ${width}`);
  }
  if (x.length % width !== 0 || x.length === 0) {
    throw new InvalidArgumentError(`${x.length} values are not whole rows of width ${width}`);
  }
  return x.length / width;
}

/**
 * Fits logistic regression on row-major `x` (rows × width, raw feature values)
 * and 0/1 `labels`. Standardization is fitted here and returned with the model.
 */
export function trainLogistic(
  x: Float64Array,
  labels: Uint8Array,
  width: number,
  options: LogisticOptions = {},
): LogisticModel {
  const rows = checkShape(x, width);
  if (labels.length !== rows) {
    throw new InvalidArgumentError(`${labels.length} labels for ${rows} rows`);
  }
  for (let k = 0; k < x.length; k++) {
    if (!Number.isFinite(x[k])) throw new InvalidArgumentError(`non-finite feature value at ${k}`);
  }
  const l2 = options.l2 ?? 1e-4;
  const maxIterations = options.maxIterations ?? 50;
  const tolerance = options.tolerance ?? 1e-8;

  // Standardize through float32 so training sees exactly what the ONNX graph computes.
  const std = fitStandardization(x, width);
  const mean = Float32Array.from(std.mean);
  const scale = Float32Array.from(std.scale);
  const z = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    const o = r * width;
    for (let j = 0; j < width; j++) {
      z[o + j] = Math.fround(Math.fround((x[o + j] ?? 0) - (mean[j] ?? 0)) * (scale[j] ?? 0));
    }
  }

  // Parameters: theta[0..width) weights, theta[width] bias.
  const p = width + 1;
  const theta = new Float64Array(p);
  let positives = 0;
  for (let r = 0; r < rows; r++) positives += labels[r] ?? 0;
  const prior = Math.min(Math.max(positives / rows, 1e-6), 1 - 1e-6);
  theta[width] = Math.log(prior / (1 - prior));

  const lossAt = (t: Float64Array): number => {
    let total = 0;
    for (let r = 0; r < rows; r++) {
      const m = margin(z, r, width, t);
      // log(1 + e^m) - y m, in a form that doesn't overflow.
      total +=
        (m > 0 ? m + Math.log1p(Math.exp(-m)) : Math.log1p(Math.exp(m))) - (labels[r] ?? 0) * m;
    }
    let penalty = 0;
    for (let j = 0; j < width; j++) penalty += (t[j] ?? 0) ** 2;
    return total / rows + 0.5 * l2 * penalty;
  };

  let loss = lossAt(theta);
  let iterations = 0;
  const grad = new Float64Array(p);
  const hess = new Float64Array(p * p);
  const row = new Float64Array(p);
  row[width] = 1;
  for (; iterations < maxIterations; iterations++) {
    grad.fill(0);
    hess.fill(0);
    for (let r = 0; r < rows; r++) {
      const o = r * width;
      for (let j = 0; j < width; j++) row[j] = z[o + j] ?? 0;
      const prob = 1 / (1 + Math.exp(-margin(z, r, width, theta)));
      const residual = prob - (labels[r] ?? 0);
      const w = prob * (1 - prob);
      for (let a = 0; a < p; a++) {
        const ra = row[a] ?? 0;
        grad[a] = (grad[a] ?? 0) + residual * ra;
        const wa = w * ra;
        const base = a * p;
        for (let b = 0; b <= a; b++) hess[base + b] = (hess[base + b] ?? 0) + wa * (row[b] ?? 0);
      }
    }
    for (let a = 0; a < p; a++) {
      grad[a] = (grad[a] ?? 0) / rows + (a < width ? l2 * (theta[a] ?? 0) : 0);
      for (let b = 0; b <= a; b++) {
        const v = (hess[a * p + b] ?? 0) / rows + (a === b ? (a < width ? l2 : 1e-10) : 0);
        hess[a * p + b] = v;
        hess[b * p + a] = v;
      }
    }
    const step = solveSpd(hess, grad, p);
    // Damped Newton: halve the step until the loss goes down (rarely needed here).
    let t = 1;
    let next = theta;
    let nextLoss = loss;
    for (let tries = 0; tries < 30; tries++, t /= 2) {
      const candidate = new Float64Array(p);
      for (let a = 0; a < p; a++) candidate[a] = (theta[a] ?? 0) - t * (step[a] ?? 0);
      const l = lossAt(candidate);
      if (l <= loss) {
        next = candidate;
        nextLoss = l;
        break;
      }
    }
    let change = 0;
    for (let a = 0; a < p; a++)
      change = Math.max(change, Math.abs((next[a] ?? 0) - (theta[a] ?? 0)));
    theta.set(next);
    loss = nextLoss;
    if (change < tolerance) {
      iterations++;
      break;
    }
  }

  return {
    mean,
    scale,
    weights: Float32Array.from(theta.subarray(0, width)),
    bias: Math.fround(theta[width] ?? 0),
    iterations,
    loss,
  };
}

function margin(z: Float64Array, r: number, width: number, theta: Float64Array): number {
  let m = theta[width] ?? 0;
  const o = r * width;
  for (let j = 0; j < width; j++) m += (z[o + j] ?? 0) * (theta[j] ?? 0);
  return m;
}

/** Solves H s = g for symmetric positive definite H (Cholesky). */
function solveSpd(h: Float64Array, g: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = h[i * n + j] ?? 0;
      for (let k = 0; k < j; k++) sum -= (l[i * n + k] ?? 0) * (l[j * n + k] ?? 0);
      if (i === j) {
        if (!(sum > 0))
          throw new InvalidArgumentError("Hessian is not positive definite; raise l2");
        l[i * n + i] = Math.sqrt(sum);
      } else {
        l[i * n + j] = sum / (l[j * n + j] ?? 1);
      }
    }
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let sum = g[i] ?? 0;
    for (let k = 0; k < i; k++) sum -= (l[i * n + k] ?? 0) * (y[k] ?? 0);
    y[i] = sum / (l[i * n + i] ?? 1);
  }
  const s = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let sum = y[i] ?? 0;
    for (let k = i + 1; k < n; k++) sum -= (l[k * n + i] ?? 0) * (s[k] ?? 0);
    s[i] = sum / (l[i * n + i] ?? 1);
  }
  return s;
}

/** Probabilities for row-major `x`, computed in float64 from the float32 parameters. */
export function predictLogistic(
  model: LogisticModel,
  x: Float64Array,
  width: number,
): Float64Array {
  const rows = checkShape(x, width);
  if (model.weights.length !== width) {
    throw new InvalidArgumentError(`model has ${model.weights.length} weights, rows have ${width}`);
  }
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = model.bias;
    const o = r * width;
    for (let j = 0; j < width; j++) {
      m +=
        ((x[o + j] ?? 0) - (model.mean[j] ?? 0)) * (model.scale[j] ?? 0) * (model.weights[j] ?? 0);
    }
    out[r] = 1 / (1 + Math.exp(-m));
  }
  return out;
}

/**
 * Area under the ROC curve via the Mann-Whitney rank statistic; tied scores get
 * their average rank (so a constant scorer gets exactly 0.5). Labels are 0/1.
 */
export function auc(
  scores: Float64Array | Float32Array | number[],
  labels: Uint8Array | number[],
): number {
  const n = scores.length;
  if (labels.length !== n)
    throw new InvalidArgumentError(`${n} scores for ${labels.length} labels`);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(scores[i])) throw new InvalidArgumentError(`score ${i} is NaN`);
    order[i] = i;
  }
  order.sort((a, b) => {
    const sa = scores[a] ?? 0;
    const sb = scores[b] ?? 0;
    return sa < sb ? -1 : sa > sb ? 1 : 0;
  });
  let positives = 0;
  let rankSum = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    const s = scores[order[i] ?? 0];
    while (j + 1 < n && scores[order[j + 1] ?? 0] === s) j++;
    // Ranks i+1..j+1 share their mean.
    const avgRank = (i + j + 2) / 2;
    for (let k = i; k <= j; k++) {
      const label = labels[order[k] ?? 0];
      if (label === 1) {
        positives++;
        rankSum += avgRank;
      } else if (label !== 0) {
        throw new InvalidArgumentError(`label ${order[k]} is ${label}, expected 0 or 1`);
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) {
    throw new InvalidArgumentError("AUC needs at least one positive and one negative label");
  }
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}
