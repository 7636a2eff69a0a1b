/**
 * Which files a model descriptor names beside it (by its task), and the path rules
 * for naming them from a remote descriptor: relative, never above its root.
 */
import path from "node:path";
import { ModelError, UnsafePathError } from "../../core/errors.ts";
import { taskKindOf } from "../../model/descriptor.ts";

/**
 * A file a descriptor names, relative to it: `required` ones must exist; of a group
 * with the same `oneOf`, the first that exists is taken (a text model's ONNX file may
 * sit at the top of its directory or under onnx/, as an optimum export puts it).
 */
export interface Referenced {
  rel: string;
  what: string;
  required: boolean;
  oneOf?: string;
}

/**
 * The files a descriptor needs beside it, by its task (the rules the loaders follow:
 * src/model/descriptor.ts, src/tasks/text-embedding/model-dir.ts): a tabular model's
 * `onnx`; an image model's `onnx` and its labels file (unless the labels are inline);
 * a text model's directory (`task.modelDir`): config.json, tokenizer.json,
 * tokenizer_config.json when there is one, and model.onnx or onnx/model.onnx.
 */
export function referencedFiles(bytes: Buffer, where: string): Referenced[] {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new ModelError(`model descriptor ${where} is not valid JSON: ${(err as Error).message}`);
  }
  const d = (raw ?? {}) as { onnx?: unknown; labels?: unknown; task?: Record<string, unknown> };
  const kind = taskKindOf(raw);
  if (kind === "text-embedding") {
    const dir = typeof d.task?.modelDir === "string" ? d.task.modelDir : ".";
    const at = (name: string) => path.posix.join(dir, name);
    return [
      { rel: at("config.json"), what: "model config", required: true },
      { rel: at("tokenizer.json"), what: "tokenizer", required: true },
      { rel: at("tokenizer_config.json"), what: "tokenizer config", required: false },
      { rel: at("model.onnx"), what: "ONNX file", required: true, oneOf: "onnx" },
      { rel: at("onnx/model.onnx"), what: "ONNX file", required: true, oneOf: "onnx" },
    ];
  }
  const onnx = d.onnx;
  if (typeof onnx !== "string" || onnx === "") {
    throw new ModelError(
      `model descriptor ${where} has no "onnx" field naming the ONNX file (relative to the descriptor)`,
    );
  }
  const files: Referenced[] = [{ rel: onnx, what: "ONNX file", required: true }];
  const labels = kind === "image-classification" ? d.task?.labels : undefined;
  if (typeof labels === "string" && labels !== "") {
    files.push({ rel: labels, what: "labels file", required: true });
  }
  return files;
}

/**
 * Resolve `relative` (from a descriptor) against the directory of `from` (a
 * POSIX-style name inside a bucket or an archive). UnsafePathError when the
 * result is absolute or climbs above the root: a remote descriptor may only
 * name files beside or below the root it came from.
 */
export function resolveSibling(
  from: string,
  relative: string,
  root: string,
  what = "ONNX file",
): string {
  if (relative.startsWith("/") || /^[A-Za-z]:/.test(relative) || relative.includes("\\")) {
    throw new UnsafePathError(
      `model descriptor ${from} names ${what} ${JSON.stringify(relative)}: a remote descriptor must name its files by relative paths`,
    );
  }
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(from), relative));
  if (joined === ".." || joined.startsWith("../") || joined === ".") {
    throw new UnsafePathError(
      `model descriptor ${from} names ${what} ${JSON.stringify(relative)}, which is outside ${root}`,
    );
  }
  return joined;
}

/** The deepest directory holding both names (POSIX, "" for the root). */
function commonDir(a: string, b: string): string {
  const da = path.posix.dirname(a).split("/");
  const db = path.posix.dirname(b).split("/");
  const out: string[] = [];
  for (let i = 0; i < Math.min(da.length, db.length); i++) {
    if (da[i] !== db[i] || da[i] === ".") break;
    out.push(da[i] as string);
  }
  return out.join("/");
}

export function relativeTo(dir: string, name: string): string {
  return dir === "" ? name : name.slice(dir.length + 1);
}

/** The deepest directory holding every name. */
export function commonDirOf(names: string[]): string {
  let dir: string | undefined;
  for (const name of names) {
    dir = dir === undefined ? path.posix.dirname(name) : commonDir(`${dir}/x`, name);
    if (dir === ".") dir = "";
  }
  return dir ?? "";
}

/**
 * The files a descriptor at `from` names, found with `find` (an object's head, an
 * archive's entry): each required one, the first existing one of a `oneOf` group, and
 * optional ones that exist. Throws ModelError naming the first that is missing.
 */
export async function pickReferenced<T>(
  refs: Referenced[],
  from: string,
  root: string,
  find: (name: string) => Promise<T | undefined>,
  missing: (what: string, name: string) => string,
): Promise<{ name: string; what: string; found: T }[]> {
  const located = refs.map((r) => ({ ...r, name: resolveSibling(from, r.rel, root, r.what) }));
  const found = await Promise.all(located.map((r) => find(r.name)));
  const picked: { name: string; what: string; found: T }[] = [];
  const groups = new Set<string>();
  located.forEach((r, i) => {
    const f = found[i];
    if (r.oneOf !== undefined) {
      if (groups.has(r.oneOf)) return;
      if (f !== undefined) {
        groups.add(r.oneOf);
        picked.push({ name: r.name, what: r.what, found: f });
        return;
      }
      const alternatives = located.filter((o) => o.oneOf === r.oneOf);
      if (alternatives.at(-1) === r) {
        throw new ModelError(missing(r.what, alternatives.map((o) => o.name).join(" or ")));
      }
      return;
    }
    if (f !== undefined) picked.push({ name: r.name, what: r.what, found: f });
    else if (r.required) throw new ModelError(missing(r.what, r.name));
  });
  if (picked.some((p) => p.name === from)) {
    throw new ModelError(`model descriptor ${from} names itself as one of its files`);
  }
  return picked;
}
