import { ModelError } from "../../core/errors.ts";
import type { TabularModel } from "../../model/descriptor.ts";
import type { ModelSession, ValueMeta } from "../../model/session.ts";
import type { Tensor } from "../task.ts";
import type { OutputReader } from "./decoder.ts";

const FLOAT_INPUTS = new Set(["float32", "float64"]);
const NUMERIC_OUTPUTS = new Map<string, OutputReader["kind"]>([
  ["float32", "float32"],
  ["float64", "float64"],
  ["float16", "float32"],
  ["int64", "int"],
  ["int32", "int"],
  ["int8", "int"],
  ["uint8", "int"],
  ["bool", "int"],
]);

function shapeText(shape: readonly (number | string)[] | undefined): string {
  return shape && shape.length > 0
    ? `[${shape.map((d) => (typeof d === "number" && d >= 0 ? d : "batch")).join(", ")}]`
    : "[?]";
}

/** A zero batch of `rows` rows in the input's element type. */
export function zeroFeeds(model: TabularModel, inputType: string, rows: number) {
  const size = rows * model.width;
  const data = inputType === "float64" ? new Float64Array(size) : new Float32Array(size);
  return {
    [model.descriptor.input.name]: {
      type: inputType === "float64" ? ("float64" as const) : ("float32" as const),
      data,
      dims: [rows, model.width],
    },
  };
}

/**
 * Check the descriptor against the model as onnxruntime sees it — input name, type
 * and width, each output's name and type — then run a two-row probe batch and check
 * each output's real shape against its `index`. Returns how to read each output.
 * Throws ModelError saying what to fix (nothing has been written yet).
 */
export async function checkTabularModel(
  model: TabularModel,
  session: ModelSession,
): Promise<{ inputType: "float32" | "float64"; readers: OutputReader[] }> {
  const d = model.descriptor;
  const where = model.onnxPath;
  const input = session.inputs.find((i) => i.name === d.input.name);
  if (!input) {
    throw new ModelError(
      `descriptor input "${d.input.name}" is not an input of ${where}; the model's inputs are ${JSON.stringify(session.inputs.map((i) => i.name))}`,
    );
  }
  if (input.isTensor && input.type && !FLOAT_INPUTS.has(input.type)) {
    throw new ModelError(
      `model input "${input.name}" of ${where} is ${input.type}; a tabular model takes float32 or float64 features`,
    );
  }
  const last = input.shape?.at(-1);
  if (typeof last === "number" && last > 0 && last !== model.width) {
    throw new ModelError(
      `model input "${input.name}" of ${where} has shape ${shapeText(input.shape)} but the descriptor's ${d.features.length} features make ${model.width} values: the features must match the model's columns, in order`,
    );
  }
  const inputType = input.type === "float64" ? "float64" : "float32";
  const metas = d.outputs.map((o) => {
    const meta = session.outputs.find((m) => m.name === o.name);
    if (!meta) {
      throw new ModelError(
        `descriptor output "${o.name}" is not an output of ${where}; the model's outputs are ${JSON.stringify(session.outputs.map((m) => m.name))}`,
      );
    }
    if (!meta.isTensor) {
      throw new ModelError(
        `model output "${o.name}" of ${where} is a sequence of maps (scikit-learn's ZipMap), not a tensor: convert the model with zipmap=False (skl2onnx: options={id(model): {"zipmap": False}}) and read "probabilities" with an index`,
      );
    }
    const kind = NUMERIC_OUTPUTS.get(meta.type ?? "float32");
    if (!kind) {
      throw new ModelError(
        `model output "${o.name}" of ${where} is ${meta.type}; a tabular output must be numeric`,
      );
    }
    return { meta, kind };
  });

  let outputs: Record<string, Tensor>;
  try {
    outputs = await session.run(zeroFeeds(model, inputType, 2));
  } catch (err) {
    throw new ModelError(
      `model ${where} does not accept a [batch, ${model.width}] ${inputType} "${d.input.name}" tensor (the descriptor's ${d.features.length} features make ${model.width} values): ${(err as Error).message}`,
      { cause: err },
    );
  }
  const readers = d.outputs.map((o, j) => {
    const t = outputs[o.name];
    const { meta, kind } = metas[j] as { meta: ValueMeta; kind: OutputReader["kind"] };
    const dims = t?.dims ?? [];
    const index = o.index ?? 0;
    if (dims[0] !== 2 || dims.length > 2) {
      throw new ModelError(
        `model output "${o.name}" of ${where} has shape ${shapeText(dims)} for 2 rows: a tabular output must be [batch] or [batch, k]`,
      );
    }
    const width = dims.length === 2 ? (dims[1] as number) : 1;
    if (!Number.isInteger(index) || index < 0 || index >= width) {
      throw new ModelError(
        `descriptor output "${o.name}" (column ${o.column}): index ${index} is past the output's width ${width} (shape ${shapeText(meta.shape?.length ? meta.shape : dims)}); use an index from 0 to ${width - 1}${width === 2 ? " (for a classifier's probabilities, 1 is P(class 1))" : ""}`,
      );
    }
    return { name: o.name, index, kind };
  });
  return { inputType, readers };
}
