/**
 * Tensors as the pipeline passes them between a task and the model session: plain
 * typed arrays and shapes, independent of onnxruntime's own Tensor class.
 */

/** Element types onnxruntime takes and gives that the pipeline uses. */
export type TensorType = "float32" | "float64" | "int64" | "int32" | "uint8" | "bool";

/** The typed array that holds each tensor type (bool as Uint8Array, int64 as BigInt64Array). */
export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

/** A dense tensor: row-major data and its shape. */
export interface Tensor {
  type: TensorType;
  data: TensorData;
  dims: number[];
}

/** Named model inputs for one batch. */
export type Feeds = Record<string, Tensor>;
/** Named model outputs of one batch. */
export type Outputs = Record<string, Tensor>;
