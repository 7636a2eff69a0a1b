/**
 * The node-local, content-addressed model cache behind the model source
 * (model-source.ts explains its layout: model directories named by the sha256 of
 * their manifest, and an index from remote versions to them).
 */
import { createHash, type Hash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { Transform } from "node:stream";
import { InvalidArgumentError, ModelError, StoreUnavailableError } from "../../core/errors.ts";
import { canonicalJson, sha256Hex } from "../../core/ids.ts";

/** Name of the manifest inside a model directory. */
const MANIFEST = ".model-manifest.json";

/** One file of a model directory. */
export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

/** The manifest of a model directory; its canonical JSON's sha256 names the directory. */
interface Manifest {
  descriptor: string;
  files: ManifestFile[];
}

/** What an index entry remembers about one version of a location. */
export interface IndexEntry {
  hash: string;
  descriptor: string;
  /** Object Storage: the objects the descriptor named (ONNX, labels, tokenizer…) and their etags then. */
  objects?: { name: string; etag: string }[];
}

function manifestHash(manifest: Manifest): string {
  return sha256Hex(canonicalJson(manifest));
}

function randomSuffix(): string {
  return randomBytes(8).toString("hex");
}

/** Passes bytes through while hashing and counting them. */
export function hashingTap(hashes: Hash[], counter: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      counter.bytes += chunk.length;
      for (const h of hashes) h.update(chunk);
      done(null, chunk);
    },
  });
}

/**
 * The node-local, content-addressed model cache. Public so tests and tools can
 * inspect it; pipelines use {@link createModelResolver}.
 */
export class ModelCache {
  readonly dir: string;

  constructor(dir: string) {
    if (!dir) throw new InvalidArgumentError("model cache: cacheDir is required");
    this.dir = path.resolve(dir);
  }

  /** A fresh temporary path inside the cache (same filesystem, so renames are atomic). */
  async tempPath(suffix = ""): Promise<string> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    return path.join(this.dir, `.tmp-${randomSuffix()}${suffix}`);
  }

  /** Descriptor path of a model directory that exists and whose files still hash to its name. */
  async verified(hash: string): Promise<string | undefined> {
    const root = path.join(this.dir, hash);
    let manifest: Manifest;
    try {
      manifest = JSON.parse(await readFile(path.join(root, MANIFEST), "utf8")) as Manifest;
    } catch {
      return undefined;
    }
    if (manifestHash(manifest) !== hash) return undefined;
    for (const file of manifest.files) {
      const full = path.join(root, file.path);
      try {
        if ((await stat(full)).size !== file.size) return undefined;
        // Hash by reading the file straight through: a pass-through tap that nothing
        // reads stalls once its buffer fills (any file over ~100 KB never finished).
        const h = createHash("sha256");
        for await (const chunk of createReadStream(full)) h.update(chunk as Buffer);
        if (h.digest("hex") !== file.sha256) return undefined;
      } catch {
        return undefined;
      }
    }
    return path.join(root, manifest.descriptor);
  }

  /**
   * Write the manifest into a filled temporary directory and move it into place
   * as `<cacheDir>/<hash>`. When another worker got there first with the same
   * content, theirs is kept; a damaged one is replaced. Returns the descriptor path.
   */
  async commit(tmpDir: string, manifest: Manifest): Promise<{ hash: string; descriptor: string }> {
    if (manifest.files.some((f) => f.path === MANIFEST)) {
      throw new ModelError(`a model file may not be named ${MANIFEST}`);
    }
    manifest.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const hash = manifestHash(manifest);
    await writeFile(path.join(tmpDir, MANIFEST), canonicalJson(manifest), {
      mode: 0o600,
      flag: "wx",
    });
    const final = path.join(this.dir, hash);
    for (let attempt = 0; ; attempt++) {
      try {
        await rename(tmpDir, final);
        return { hash, descriptor: path.join(final, manifest.descriptor) };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
      }
      const existing = await this.verified(hash);
      if (existing) {
        await rm(tmpDir, { recursive: true, force: true });
        return { hash, descriptor: existing };
      }
      if (attempt >= 2) {
        throw new StoreUnavailableError(`model cache ${final} keeps failing verification`);
      }
      // A damaged directory (torn by a crash): move it aside, then try ours again.
      const aside = await this.tempPath(".damaged");
      await rename(final, aside).catch(() => undefined);
      await rm(aside, { recursive: true, force: true });
    }
  }

  /** The index entry for `key`, if any. */
  async lookup(key: string): Promise<IndexEntry | undefined> {
    try {
      const raw = JSON.parse(await readFile(this.indexPath(key), "utf8")) as IndexEntry & {
        key?: string;
      };
      return raw.key === key && typeof raw.hash === "string" ? raw : undefined;
    } catch {
      return undefined;
    }
  }

  /** Record `entry` for `key` (temp file + rename: concurrent writers leave one whole entry). */
  async remember(key: string, entry: IndexEntry): Promise<void> {
    const file = this.indexPath(key);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp-${randomSuffix()}`;
    await writeFile(tmp, JSON.stringify({ key, ...entry }), { mode: 0o600, flag: "wx" });
    await rename(tmp, file);
  }

  private indexPath(key: string): string {
    return path.join(this.dir, ".index", `${sha256Hex(key)}.json`);
  }
}
