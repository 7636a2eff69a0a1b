/**
 * Fixtures for image jobs: the shapes classifier (trained once per machine, cached in
 * the OS temp dir like the churn model) and generated image libraries on disk.
 */
import { existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { writeShapeDataset } from "../../src/tasks/image-classification/shape-dataset.ts";
import {
  trainShapesModel,
  writeShapesModel,
} from "../../src/tasks/image-classification/shapes-model.ts";

const FIXTURE_ROOT = path.join(os.tmpdir(), "bi-test-fixtures");

/** The shapes model directory (shapes.json, shapes-f32.json, labels.txt), trained once (~5 s). */
export async function shapesModelDir(): Promise<string> {
  const dir = path.join(FIXTURE_ROOT, "shapes-model-v1");
  if (!existsSync(path.join(dir, "shapes.json"))) {
    const tmp = `${dir}.tmp-${process.pid}`;
    const model = await trainShapesModel({ trainImages: 400, testImages: 150, seed: 7 });
    await writeShapesModel(tmp, model);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir).catch(() => rm(tmp, { recursive: true, force: true }));
  }
  return dir;
}

/** A library of `count` shape images (true label in each name) plus, with `bad`, one of each bad object. */
export async function shapeLibrary(
  dir: string,
  options: { count: number; seed: number; bad?: boolean },
): Promise<{ name: string; label: string }[]> {
  await mkdir(dir, { recursive: true });
  return writeShapeDataset(
    async (name, bytes) => {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), bytes);
    },
    { count: options.count, seed: options.seed, bad: options.bad ?? false },
  );
}
