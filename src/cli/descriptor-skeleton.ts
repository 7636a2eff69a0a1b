/**
 * A model descriptor drafted from what can be known without the person: the
 * ONNX graph's inputs and outputs (names, element types, shapes) and a sample
 * of the input (its columns and the values in them). Pure functions; reading
 * files and onnxruntime live in init-model.ts.
 *
 * Terminology: a *profile* is what the sample says about one column (its kind,
 * missing values, distinct values); a *skeleton* is the drafted descriptor plus
 * the notes a person should read before trusting it.
 */
import { ModelError } from "../core/errors.ts";
import type { Feature, ModelDescriptor, OutputMapping } from "../model/descriptor.ts";
import { featureWidth } from "../model/descriptor.ts";
import {
  type ColumnProfile,
  guessKeyColumn,
  MAX_CATEGORIES,
  MAX_TRACKED,
} from "./column-profile.ts";

export {
  type ColumnProfile,
  guessKeyColumn,
  MAX_CATEGORIES,
  profileColumns,
} from "./column-profile.ts";

/** One graph input or output, as onnxruntime describes it. */
export interface ValueSignature {
  name: string;
  /** False for maps and sequences (scikit-learn's ZipMap output). */
  isTensor: boolean;
  /** Element type: float32, int64, string, ... */
  type?: string;
  /** Dimensions: a number, or a name (or -1) for a free dimension such as the batch. */
  shape?: readonly (number | string)[];
}

/** The model's inputs and outputs. */
export interface ModelSignature {
  inputs: ValueSignature[];
  outputs: ValueSignature[];
}

const TARGET_NAME =
  /^(y|label|labels|target|class|outcome|churn|churned|default|defaulted|fraud|is_fraud|survived)$/i;

/** What `buildSkeleton` takes besides the model and the sample. */
export interface SkeletonOptions {
  /** Model name for the descriptor. */
  name: string;
  /** The ONNX file as the descriptor names it (relative to the descriptor). */
  onnx: string;
  /** Feature columns in training order (default: every usable column but keys and the label). */
  features?: string[];
  /** Key columns (default: guessed). */
  keyColumns?: string[];
}

/** A model descriptor with `$comment` notes where a person must check a guess. */
export type DescriptorDraft = Omit<ModelDescriptor, "outputs" | "label"> & {
  $comment?: string;
  outputs: (OutputMapping & { $comment?: string })[];
  label?: NonNullable<ModelDescriptor["label"]> & { $comment?: string };
};

/** The drafted descriptor and what to read before trusting it. */
export interface Skeleton {
  descriptor: DescriptorDraft;
  /** Sentences for the terminal: guesses made, columns left out, what to check. */
  notes: string[];
  /** Values per row the features make. */
  width: number;
  /** Values per row the model takes, when its input shape says so. */
  modelWidth?: number;
}

function isFree(d: number | string | undefined): boolean {
  return typeof d === "string" || (typeof d === "number" && d < 0);
}

function shapeText(s: ValueSignature): string {
  if (!s.isTensor) return "a map or sequence";
  const dims = (s.shape ?? []).map((d) => (isFree(d) ? (typeof d === "string" && d ? d : "N") : d));
  return `${s.type ?? "?"} [${dims.join(", ")}]`;
}

/** The one float32 [batch, width] input the pipeline feeds, and its width if fixed. */
function modelInput(sig: ModelSignature): { name: string; width?: number } {
  const inputs = sig.inputs;
  const list = inputs.map((i) => `${i.name} ${shapeText(i)}`).join(", ");
  if (inputs.length !== 1) {
    throw new ModelError(
      `the model has ${inputs.length} inputs (${list}); the pipeline feeds one float32 [batch, features] tensor. Export with a single input (skl2onnx: initial_types=[("float_input", FloatTensorType([None, n]))]; torch.onnx.export with one tensor argument)`,
    );
  }
  const input = inputs[0] as ValueSignature;
  if (!input.isTensor || input.type !== "float32") {
    throw new ModelError(
      `the model's input ${input.name} is ${shapeText(input)}; the pipeline feeds a float32 [batch, features] tensor. Export with a float input (skl2onnx: FloatTensorType([None, n]); torch: a float32 example tensor)`,
    );
  }
  const shape = input.shape ?? [];
  if (shape.length !== 2) {
    throw new ModelError(
      `the model's input ${input.name} is ${shapeText(input)}; the pipeline feeds rank 2, [batch, features]`,
    );
  }
  const w = shape[1];
  return typeof w === "number" && w > 0 ? { name: input.name, width: w } : { name: input.name };
}

function outputMappings(
  sig: ModelSignature,
  stem: string,
  taken: Set<string>,
  notes: string[],
): { outputs: (OutputMapping & { $comment?: string })[]; probability?: string } {
  const outputs: (OutputMapping & { $comment?: string })[] = [];
  let probability: string | undefined;
  const column = (want: string) => {
    let name = want;
    for (let i = 2; taken.has(name); i++) name = `${want}_${i}`;
    taken.add(name);
    return name;
  };
  for (const o of sig.outputs) {
    if (!o.isTensor) {
      notes.push(
        `output ${o.name} is a map or sequence (scikit-learn's ZipMap): left out. Export with options={id(model): {"zipmap": False}} (skl2onnx) to get a float [N, classes] probabilities tensor`,
      );
      continue;
    }
    if (o.type !== "float32") {
      notes.push(
        `output ${o.name} (${shapeText(o)}) left out: the pipeline reads float32 outputs.${o.type === "int64" ? " A predicted class is what the descriptor's label does (a threshold on P(class 1), as predict does for a binary classifier)." : ""}`,
      );
      continue;
    }
    const shape = o.shape ?? [];
    const last = shape.length >= 2 ? shape[shape.length - 1] : 1;
    if (shape.length > 2) {
      notes.push(
        `output ${o.name} (${shapeText(o)}) has more than two dimensions: left out; the pipeline reads [batch] or [batch, k] outputs`,
      );
      continue;
    }
    if (last === 2) {
      probability = column(`${stem}_probability`);
      outputs.push({
        name: o.name,
        column: probability,
        index: 1,
        $comment:
          "index 1 of a [N, 2] output is P(class 1), predict_proba(X)[:, 1]; index 0 would be P(class 0). If this output holds logits rather than probabilities, add a Softmax before export.",
      });
      notes.push(
        `output ${o.name} (${shapeText(o)}) → column ${probability}, index 1: P(class 1), the second column of predict_proba`,
      );
    } else if (typeof last === "number" && last > 2) {
      for (let i = 0; i < last; i++) {
        outputs.push({ name: o.name, column: column(`${o.name}_${i}`), index: i });
      }
      notes.push(
        `output ${o.name} (${shapeText(o)}) → one column per class (${o.name}_0 … ${o.name}_${last - 1}), in the order of the model's classes_`,
      );
    } else {
      const col = column(last === 1 || shape.length < 2 ? o.name : `${o.name}_0`);
      outputs.push({
        name: o.name,
        column: col,
        index: 0,
        ...(isFree(last) && shape.length === 2
          ? {
              $comment: `the output's last dimension is free (${String(last)}): index 0 is its first value; check it is the one you want`,
            }
          : {}),
      });
      notes.push(`output ${o.name} (${shapeText(o)}) → column ${col}, index 0`);
    }
  }
  if (outputs.length === 0) {
    throw new ModelError(
      `no output of the model is a float32 [batch] or [batch, k] tensor (outputs: ${sig.outputs.map((o) => `${o.name} ${shapeText(o)}`).join(", ")}); ${notes.join("; ")}`,
    );
  }
  return { outputs, ...(probability ? { probability } : {}) };
}

function featureOf(p: ColumnProfile, notes: string[]): Feature | undefined {
  const missing =
    p.missing > 0
      ? `; ${p.missing} of ${p.present + p.missing} sample rows are empty: add "missing" (the value the model was trained with) or those rows become bad records`
      : "";
  switch (p.kind) {
    case "number":
      if (missing) notes.push(`column ${p.name}: number${missing}`);
      return { column: p.name, type: "number" };
    case "boolean":
      if (missing) notes.push(`column ${p.name}: boolean${missing}`);
      return { column: p.name, type: "boolean" };
    case "category": {
      // Sorted, as pandas.get_dummies and scikit-learn's OneHotEncoder order categories.
      const categories = [...p.distinct].sort();
      notes.push(
        `column ${p.name}: category, one-hot over ${categories.length} values seen in the sample (${categories.slice(0, 8).join(", ")}${categories.length > 8 ? ", …" : ""}), sorted as get_dummies/OneHotEncoder sort them: use the categories and order the model was trained with${p.missing > 0 ? `; ${p.missing} empty values are unknown categories (all zeros)` : ""}`,
      );
      return { column: p.name, type: "category", categories };
    }
    default:
      return undefined;
  }
}

const width = (features: Feature[]) => features.reduce((n, f) => n + featureWidth(f), 0);

/**
 * Draft a descriptor: the model's input and outputs, the sample's columns as
 * features (keys and a label column left out), the width checked against the
 * model's. Throws ModelError when the model can't be fed by this pipeline at
 * all (several inputs, a non-float input, no float output).
 */
export function buildSkeleton(
  sig: ModelSignature,
  profiles: ColumnProfile[],
  options: SkeletonOptions,
): Skeleton {
  const notes: string[] = [];
  const input = modelInput(sig);
  const byName = new Map(profiles.map((p) => [p.name, p]));
  const columns = profiles.map((p) => p.name);
  for (const c of [...(options.features ?? []), ...(options.keyColumns ?? [])]) {
    if (!byName.has(c)) {
      throw new ModelError(
        `column "${c}" is not in the sample; its columns are: ${columns.slice(0, 40).join(", ")}`,
      );
    }
  }

  const guessedKey = options.keyColumns ? undefined : guessKeyColumn(profiles);
  const keyColumns = options.keyColumns ?? (guessedKey ? [guessedKey] : []);
  if (guessedKey) notes.push(`key column: ${guessedKey} (id-like, distinct in the sample)`);
  else if (keyColumns.length === 0)
    notes.push(
      "no key column found: output rows carry _offset (the record's byte offset); name one with --key",
    );

  let features: Feature[];
  let target: string | undefined;
  if (options.features) {
    features = [];
    for (const c of options.features) {
      const p = byName.get(c) as ColumnProfile;
      const f = featureOf(p, notes);
      if (!f) {
        throw new ModelError(
          `column ${c} can't be a feature: the sample holds ${p.kind === "empty" ? "no values" : `${p.distinct.length}${p.distinct.length >= MAX_TRACKED ? "+" : ""} distinct text values`} in it (numbers, true/false words or at most ${MAX_CATEGORIES} categories can)`,
        );
      }
      features.push(f);
    }
  } else {
    const usable = profiles.filter((p) => !keyColumns.includes(p.name));
    for (const p of usable) {
      if (p.kind === "text")
        notes.push(
          `column ${p.name} left out: text with ${p.distinct.length >= MAX_TRACKED ? "many" : p.distinct.length} distinct values in the sample (not a number, boolean or category)`,
        );
      if (p.kind === "empty") notes.push(`column ${p.name} left out: empty in the sample`);
    }
    let chosen = usable.filter((p) => p.kind !== "text" && p.kind !== "empty");
    // The label the model was trained to predict often travels with the data: leave it out
    // when the model's width says so (or when it is named like one and the width is unknown).
    const candidates = [
      ...chosen.filter((p) => TARGET_NAME.test(p.name)),
      ...chosen.slice(-1).filter((p) => p.distinct.length === 2 && !TARGET_NAME.test(p.name)),
    ];
    const quiet: string[] = [];
    const all = chosen.map((p) => featureOf(p, quiet) as Feature);
    for (const t of candidates) {
      const rest = chosen.filter((p) => p !== t);
      const restWidth = width(rest.map((p) => featureOf(p, []) as Feature));
      if (
        input.width === undefined
          ? TARGET_NAME.test(t.name)
          : width(all) !== input.width && restWidth === input.width
      ) {
        target = t.name;
        chosen = rest;
        notes.push(
          `column ${t.name} left out: it looks like the label the model predicts${input.width !== undefined ? ` (without it the features make the model's ${input.width} values)` : ""}; put it back with --features if it is a feature`,
        );
        break;
      }
    }
    features = chosen.map((p) => featureOf(p, notes) as Feature);
  }
  if (features.length === 0) {
    throw new ModelError(
      "no column of the sample can be a feature (numbers, true/false words or categories); name them with --features",
    );
  }

  const stem = target ?? "class_1";
  const taken = new Set(keyColumns);
  const { outputs, probability } = outputMappings(sig, stem, taken, notes);
  const w = width(features);
  if (input.width !== undefined && w !== input.width) {
    notes.push(
      `WIDTH MISMATCH: the model takes ${input.width} values per row; these ${features.length} features make ${w}. List the columns the model was trained on, in training order, with --features`,
    );
  } else if (input.width === undefined) {
    notes.push(
      `the model's input ${input.name} has a free second dimension: the ${features.length} features make ${w} values; check that is what it was trained on`,
    );
  }
  notes.push(
    "feature order matters: it must be the column order of the matrix the model was trained on (X.columns); reorder the features if it differs from the sample's",
  );

  const descriptor: DescriptorDraft = {
    $comment: `Drafted by batch-infer init-model from ${options.onnx} and a sample; read the notes it printed (and the $comment fields) and check features, their order, categories and outputs.`,
    name: options.name,
    version: "1",
    onnx: options.onnx,
    input: { name: input.name },
    ...(keyColumns.length > 0 ? { keyColumns } : {}),
    features,
    outputs,
    ...(probability
      ? {
          label: {
            $comment:
              "predict's rule for a binary classifier: class 1 when P(class 1) > 0.5; rename the labels to your classes",
            from: probability,
            threshold: 0.5,
            column: target ? `${target}_label` : "label",
            labels: ["0", "1"] as [string, string],
          },
        }
      : {}),
  };
  return {
    descriptor,
    notes,
    width: w,
    ...(input.width !== undefined ? { modelWidth: input.width } : {}),
  };
}
