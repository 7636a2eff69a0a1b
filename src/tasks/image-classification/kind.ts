/**
 * Image classification as a task kind: the objects under a prefix → decoded, resized
 * image batches on the inference thread → one row per image with its top-k labels.
 */
import { ModelError } from "../../core/errors.ts";
import { openModelSession } from "../../model/session.ts";
import type { RecordBlock } from "../../sources/record-source.ts";
import type { Tensor } from "../task.ts";
import type { OpenedModel, TaskModule } from "../task-module.ts";
import { imageOutputColumns } from "./decoder.ts";
import { DEFAULT_IMAGE_BATCH, IMAGE_CHECKPOINT_EVERY } from "./defaults.ts";
import type { LoadedImageModel } from "./descriptor.ts";
import { packPlan } from "./pack.ts";

/** An opened image model: its session and the task builder (loaded with sharp, in workers only). */
interface OpenedImageModel extends OpenedModel {
  createImageTask: typeof import("./task.ts").createImageTask;
}

/** One black image in the model's input form: the probe batch. */
function probeFeeds(model: LoadedImageModel): Record<string, Tensor> {
  const t = model.descriptor.task;
  const p = t.preprocess;
  const plan = packPlan(p);
  const dims =
    p.layout === "nchw"
      ? [1, plan.channels, p.height, p.width]
      : [1, p.height, p.width, plan.channels];
  return {
    [t.input]: plan.float
      ? { type: "float32", data: new Float32Array(plan.size), dims }
      : { type: "uint8", data: new Uint8Array(plan.size), dims },
  };
}

/**
 * Check the descriptor against the model as onnxruntime sees it: the input and output
 * names, then one probe image whose output must have one value per label.
 */
async function checkImageModel(model: LoadedImageModel, opened: OpenedModel): Promise<void> {
  const { session } = opened;
  const t = model.descriptor.task;
  const where = model.onnxPath;
  if (!session.inputs.some((i) => i.name === t.input)) {
    throw new ModelError(
      `descriptor task.input "${t.input}" is not an input of ${where}; the model's inputs are ${JSON.stringify(session.inputs.map((i) => i.name))}`,
    );
  }
  if (!session.outputs.some((o) => o.name === t.output)) {
    throw new ModelError(
      `descriptor task.output "${t.output}" is not an output of ${where}; the model's outputs are ${JSON.stringify(session.outputs.map((o) => o.name))}`,
    );
  }
  const p = t.preprocess;
  let out: Tensor | undefined;
  try {
    out = (await session.run(probeFeeds(model)))[t.output];
  } catch (err) {
    throw new ModelError(
      `model ${where} does not take a ${p.dtype} ${p.layout.toUpperCase()} ${p.width}x${p.height} "${t.input}" batch as task.preprocess describes: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const per = out?.data.length ?? 0;
  if (per !== model.labels.length) {
    throw new ModelError(
      `output "${t.output}" of ${where} has ${per} values per image but there are ${model.labels.length} labels; one label per class, in the model's class order`,
    );
  }
}

/** The image-classification task. */
export const imageClassificationTask: TaskModule<LoadedImageModel, OpenedImageModel> = {
  kind: "image-classification",
  inputs: ["objects"],
  inputHint:
    "an image model reads every image object under a prefix: give input.prefix (`submit --input BUCKET/PREFIX/`, or `run --input DIRECTORY`)",
  specDefaults: { checkpointEvery: IMAGE_CHECKPOINT_EVERY, batchSize: DEFAULT_IMAGE_BATCH },
  neededColumns: () => ({ columns: [], numeric: [] }),
  plan: (model) => ({ keyNames: ["object"], columns: imageOutputColumns(model.descriptor.task) }),
  async open(model, options) {
    // A batch of images blocks its thread for a long time: off the event loop, so
    // heartbeats and fetching go on (unless told otherwise, e.g. a dry run).
    const session = await openModelSession(model.onnxBytes, model.onnxPath, {
      ...(options.intraOpThreads !== undefined ? { intraOpThreads: options.intraOpThreads } : {}),
      ...(options.executionProviders ? { executionProviders: options.executionProviders } : {}),
      thread: options.thread !== false,
    });
    try {
      await checkImageModel(model, { session });
      // Decoding (sharp) loads here, not where the splitter only plans a job.
      const { createImageTask } = await import("./task.ts");
      return { session, createImageTask };
    } catch (err) {
      await session.close();
      throw err;
    }
  },
  runtime(job, model, opened) {
    const task = opened.createImageTask(model, { batchSize: job.spec.batchSize });
    return {
      session: opened.session,
      decoder: task.decoder,
      encoder: () => task.newEncoder(),
      outputColumns: task.outputColumns,
      keysOf: (block: RecordBlock, i: number) =>
        block.kind === "objects" ? { object: block.names[i] as string } : null,
      close: () => opened.session.close(),
    };
  },
};
