/**
 * Model source: turns a model *location* into a local descriptor path that
 * `loadModel` can read, downloading into a node-local cache when the model lives
 * in OCI.
 *
 * Terminology:
 * - *location*: what a job spec names as its model. One of
 *   a local path (`models/churn/descriptor.json`, or a `file://` URL),
 *   `oci://<bucket>@<namespace>/<object name of the descriptor JSON>`, or
 *   an OCI Data Science model OCID (`ocid1.datasciencemodel.…`) whose artifact is
 *   a zip holding the descriptor JSON and the ONNX file it names.
 * - *model directory*: `<cacheDir>/<hash>/`, holding the descriptor and its ONNX
 *   file at their relative paths plus a manifest (each file's path, size and
 *   sha256). `<hash>` is the sha256 of that manifest, so it names the content:
 *   the same model reached twice (or through two locations) shares one directory.
 * - *index*: `<cacheDir>/.index/<sha256 of a lookup key>.json`, mapping what the
 *   service says identifies a version (a location plus its etag) to a model
 *   directory, so a warm node resolves with HEAD requests and no download.
 *
 * Several workers on one node may resolve the same model at once: every file is
 * written under a temporary name inside the cache and a model directory appears
 * by a single rename, so a reader never sees a half-written one. A model
 * directory is re-hashed before it is reused, which also catches a torn write
 * after a crash (the cache does not fsync).
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import type { DataScienceClient } from "oci-datascience";
import {
  InvalidArgumentError,
  ModelError,
  NotFoundError,
  PipelineError,
  StoreUnavailableError,
} from "../../core/errors.ts";
import { sha256Hex } from "../../core/ids.ts";
import { type LoadedModel, loadModel } from "../../model/descriptor.ts";
import type { ObjectStore } from "../../ports/object-store.ts";
import { mapOciError } from "./errors.ts";
import { hashingTap, type ManifestFile, ModelCache } from "./model-cache.ts";
import { commonDirOf, pickReferenced, referencedFiles, relativeTo } from "./model-files.ts";
import { type ZipEntry, ZipReader } from "./zip-reader.ts";

export { ModelCache } from "./model-cache.ts";

/** What the error for an unknown location lists. */
export const ACCEPTED_MODEL_LOCATIONS =
  "a local path to a descriptor JSON (or a file:// URL), " +
  "oci://<bucket>@<namespace>/<object name of the descriptor JSON>, " +
  "or an OCI Data Science model OCID (ocid1.datasciencemodel.<realm>.<region>.<id>)";

/** Descriptors are small; anything bigger is not one (and is not read into memory). */
const MAX_DESCRIPTOR_BYTES = 4 * 1024 * 1024;

/** Attempts when a remote model changes while it is being downloaded. */
const CHANGED_ATTEMPTS = 3;

/** The two Data Science calls the resolver makes (a full DataScienceClient fits). */
export type DataScienceArtifactClient = Pick<
  DataScienceClient,
  "headModelArtifact" | "getModelArtifactContent"
>;

/** Options for {@link createModelResolver}. */
export interface ModelResolverOptions {
  /** Node-local cache directory (created 0o700). */
  cacheDir: string;
  /** For `oci://` locations: an ObjectStore already bound to the namespace. */
  objectStore?: ObjectStore;
  /** For Data Science model OCIDs. */
  datascience?: DataScienceArtifactClient;
}

/** Resolves a model location to a local descriptor path. */
export type ModelResolver = (location: string) => Promise<string>;

/** A parsed model location. */
export type ModelLocation =
  | { kind: "local"; path: string }
  | { kind: "object-storage"; bucket: string; namespace: string; object: string }
  | { kind: "datascience"; modelId: string };

const OCI_URL = /^oci:\/\/([^@/]+)@([^/]+)\/(.+)$/;
const DS_MODEL_OCID = /^ocid1\.datasciencemodel\.[A-Za-z0-9._-]+$/;
const URL_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/** Parse a model location; InvalidArgumentError (listing the accepted forms) for anything else. */
export function parseModelLocation(location: string): ModelLocation {
  const unknown = (why: string) =>
    new InvalidArgumentError(
      `model location ${JSON.stringify(location)} ${why}; use ${ACCEPTED_MODEL_LOCATIONS}`,
    );
  if (typeof location !== "string" || location.trim() === "") throw unknown("is empty");
  if (location.startsWith("oci://")) {
    const m = OCI_URL.exec(location);
    const [, bucket, namespace, object] = m ?? [];
    if (!bucket || !namespace || !object || object.endsWith("/")) {
      throw unknown("is not oci://<bucket>@<namespace>/<object>");
    }
    return { kind: "object-storage", bucket, namespace, object };
  }
  if (location.startsWith("ocid1.")) {
    if (!DS_MODEL_OCID.test(location)) throw unknown("is an OCID but not a Data Science model's");
    return { kind: "datascience", modelId: location };
  }
  if (location.startsWith("file://")) return { kind: "local", path: fileURLToPath(location) };
  if (URL_SCHEME.test(location)) throw unknown("has an unsupported scheme");
  return { kind: "local", path: location };
}

/** Stream `source` into a new file (0o600), hashing it; returns size and digests. */
async function download(
  source: Readable,
  file: string,
  what: string,
): Promise<{ size: number; sha256: string; md5: string }> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const sha = createHash("sha256");
  const md5 = createHash("md5");
  const counter = { bytes: 0 };
  try {
    await pipeline(
      source,
      hashingTap([sha, md5], counter),
      createWriteStream(file, { flags: "wx", mode: 0o600 }),
    );
  } catch (err) {
    if (err instanceof PipelineError) throw err;
    throw new StoreUnavailableError(`downloading ${what}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { size: counter.bytes, sha256: sha.digest("hex"), md5: md5.digest("base64") };
}

/** Thrown inside a download when the remote object changed under it; the caller starts over. */
class ChangedWhileReading extends Error {}

async function withChangeRetries<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof ChangedWhileReading)) throw err;
      if (i >= CHANGED_ATTEMPTS) {
        throw new StoreUnavailableError(
          `${what} kept changing while it was downloaded (${i} attempts): try again once uploads to it have finished`,
        );
      }
    }
  }
}

/** `oci://` locations: descriptor and ONNX objects through the ObjectStore port. */
async function resolveObjectStorage(
  cache: ModelCache,
  store: ObjectStore,
  loc: Extract<ModelLocation, { kind: "object-storage" }>,
): Promise<string> {
  const { bucket, object } = loc;
  const where = `oci://${bucket}@${loc.namespace}/${object}`;
  const headOrThrow = async (name: string, what: string) => {
    const info = await store.head(bucket, name);
    if (!info)
      throw new NotFoundError(`${what} oci://${bucket}@${loc.namespace}/${name} does not exist`);
    return info;
  };
  return withChangeRetries(where, async () => {
    const descInfo = await headOrThrow(object, "model descriptor");
    const key = `${where}\n${descInfo.etag}`;
    const known = await cache.lookup(key);
    if (known?.objects !== undefined) {
      const infos = await Promise.all(known.objects.map((o) => store.head(bucket, o.name)));
      if (infos.every((info, i) => info?.etag === known.objects?.[i]?.etag)) {
        const hit = await cache.verified(known.hash);
        if (hit) return hit;
      }
    }
    if (descInfo.size > MAX_DESCRIPTOR_BYTES) {
      throw new ModelError(`model descriptor ${where} is ${descInfo.size} bytes: not a descriptor`);
    }
    const tmpDir = await cache.tempPath();
    try {
      // The descriptor is small: it is read into memory to learn the ONNX name first.
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const chunk of await store.read(bucket, object)) {
        total += (chunk as Buffer).length;
        if (total > MAX_DESCRIPTOR_BYTES)
          throw new ModelError(`model descriptor ${where} is too large`);
        chunks.push(chunk as Buffer);
      }
      const descBytes = Buffer.concat(chunks);
      const named = await pickReferenced(
        referencedFiles(descBytes, where),
        object,
        `bucket ${bucket}`,
        (name) => store.head(bucket, name),
        (what, name) =>
          `model descriptor ${where} names ${what} oci://${bucket}@${loc.namespace}/${name}, which does not exist`,
      );
      const base = commonDirOf([object, ...named.map((n) => n.name)]);
      const descRel = relativeTo(base, object);
      const files: ManifestFile[] = [
        { path: descRel, size: descBytes.length, sha256: sha256Hex(descBytes) },
      ];
      for (const n of named) {
        const rel = relativeTo(base, n.name);
        const got = await download(
          await store.read(bucket, n.name),
          path.join(tmpDir, ...rel.split("/")),
          `${n.what} oci://${bucket}@${loc.namespace}/${n.name}`,
        );
        if (got.size !== n.found.size) throw new ChangedWhileReading();
        files.push({ path: rel, size: got.size, sha256: got.sha256 });
      }
      const descFile = path.join(tmpDir, ...descRel.split("/"));
      await mkdir(path.dirname(descFile), { recursive: true, mode: 0o700 });
      await writeFile(descFile, descBytes, { mode: 0o600, flag: "wx" });
      // Etags checked again after reading: what was cached is then known to be that version.
      const after = await Promise.all([
        store.head(bucket, object),
        ...named.map((n) => store.head(bucket, n.name)),
      ]);
      if (
        after[0]?.etag !== descInfo.etag ||
        named.some((n, i) => after[i + 1]?.etag !== n.found.etag)
      ) {
        throw new ChangedWhileReading();
      }
      const { hash, descriptor } = await cache.commit(tmpDir, { descriptor: descRel, files });
      await cache.remember(key, {
        hash,
        descriptor: descRel,
        objects: named.map((n) => ({ name: n.name, etag: n.found.etag })),
      });
      return descriptor;
    } finally {
      await rm(tmpDir, { recursive: true, force: true });
    }
  });
}

/**
 * Which entry of an artifact is the descriptor: the one named `descriptor.json`
 * (the shallowest, when several are), else the single `*.json` with an "onnx" field.
 */
async function findDescriptor(
  zip: ZipReader,
  where: string,
): Promise<{ entry: ZipEntry; bytes: Buffer }> {
  const files = zip.entries.filter((e) => !e.isDirectory && !e.isSymlink);
  const depth = (e: ZipEntry) => e.name.split("/").length;
  const named = files
    .filter((e) => path.posix.basename(e.name) === "descriptor.json")
    .sort((a, b) => depth(a) - depth(b));
  const first = named[0];
  if (first && (named.length === 1 || depth(first) < depth(named[1] as ZipEntry))) {
    return { entry: first, bytes: await zip.readBuffer(first, MAX_DESCRIPTOR_BYTES) };
  }
  const candidates: { entry: ZipEntry; bytes: Buffer }[] = [];
  for (const entry of files) {
    if (!entry.name.endsWith(".json") || entry.size > MAX_DESCRIPTOR_BYTES) continue;
    const bytes = await zip.readBuffer(entry, MAX_DESCRIPTOR_BYTES);
    try {
      const raw = JSON.parse(bytes.toString("utf8")) as { onnx?: unknown } | null;
      if (typeof raw?.onnx === "string") candidates.push({ entry, bytes });
    } catch {
      // Not JSON: not the descriptor.
    }
  }
  const only = candidates[0];
  if (only && candidates.length === 1) return only;
  throw new ModelError(
    candidates.length === 0
      ? `model artifact ${where} holds no descriptor: expected descriptor.json, or one *.json with an "onnx" field; found ${JSON.stringify(files.map((e) => e.name).slice(0, 20))}`
      : `model artifact ${where} holds several descriptors (${candidates.map((c) => c.entry.name).join(", ")}): name the one to use descriptor.json`,
  );
}

/** Data Science model OCIDs: the artifact zip, downloaded to disk, then the descriptor and ONNX extracted. */
async function resolveDataScience(
  cache: ModelCache,
  client: DataScienceArtifactClient,
  modelId: string,
): Promise<string> {
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      // Data Science answers a refusal and a missing model alike (404
      // NotAuthorizedOrNotFound): a configuration error, retried, never "no model".
      throw mapOciError(err, `${what} ${modelId}`, {
        absent: [],
        resource: `Data Science model ${modelId} (read data-science-models)`,
      });
    }
  };
  return withChangeRetries(modelId, async () => {
    const head = await call("headModelArtifact", () => client.headModelArtifact({ modelId }));
    // UNCONFIRMED: that the service always sends an etag. Without one every
    // resolution downloads (the content-addressed directory still dedupes disk).
    const key = head.etag ? `${modelId}\n${head.etag}` : undefined;
    if (key) {
      const known = await cache.lookup(key);
      const hit = known && (await cache.verified(known.hash));
      if (hit) return hit;
    }
    const zipFile = await cache.tempPath(".zip");
    const tmpDir = await cache.tempPath();
    try {
      const response = await call("getModelArtifactContent", () =>
        client.getModelArtifactContent({ modelId }),
      );
      const body =
        response.value instanceof Readable
          ? response.value
          : Readable.fromWeb(response.value as import("node:stream/web").ReadableStream);
      const got = await download(body, zipFile, `model artifact ${modelId}`);
      if (head.etag && response.etag && response.etag !== head.etag)
        throw new ChangedWhileReading();
      const expected = Number(response.contentLength ?? head.contentLength);
      if (Number.isFinite(expected) && expected > 0 && got.size !== expected) {
        throw new StoreUnavailableError(
          `model artifact ${modelId}: got ${got.size} of ${expected} bytes (connection cut?); try again`,
        );
      }
      // RFC 1864 form (base64 of the MD5) is compared; UNCONFIRMED that the service
      // never sends another form, so anything else is ignored rather than refused.
      const md5 = response.contentMd5;
      if (md5 && /^[A-Za-z0-9+/]{22}==$/.test(md5) && md5 !== got.md5) {
        throw new StoreUnavailableError(
          `model artifact ${modelId}: content-md5 ${md5} != ${got.md5} of what arrived; try again`,
        );
      }
      let extracted: { hash: string; descriptor: string; descRel: string };
      try {
        extracted = await extractModel(zipFile, tmpDir, modelId, cache);
      } catch (err) {
        if (err instanceof InvalidArgumentError) {
          throw new ModelError(`model artifact ${modelId} is not a usable zip: ${err.message}`, {
            cause: err,
          });
        }
        throw err;
      }
      if (key) await cache.remember(key, { hash: extracted.hash, descriptor: extracted.descRel });
      return extracted.descriptor;
    } finally {
      await rm(zipFile, { force: true });
      await rm(tmpDir, { recursive: true, force: true });
    }
  });
}

/** Extract the descriptor and the files it names from an artifact zip into `tmpDir`, then commit it. */
async function extractModel(
  zipFile: string,
  tmpDir: string,
  where: string,
  cache: ModelCache,
): Promise<{ hash: string; descriptor: string; descRel: string }> {
  const zip = await ZipReader.open(zipFile);
  const { entry: descEntry, bytes: descBytes } = await findDescriptor(zip, where);
  const named = await pickReferenced(
    referencedFiles(descBytes, `${where}:${descEntry.name}`),
    descEntry.name,
    `artifact ${where}`,
    async (name) => {
      const entry = zip.entry(name);
      return entry && !entry.isDirectory ? entry : undefined;
    },
    (what, name) =>
      `model descriptor ${where}:${descEntry.name} names ${what} ${name}, which is not in the artifact`,
  );
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  const files: ManifestFile[] = [];
  for (const entry of [descEntry, ...named.map((n) => n.found)]) {
    const h = createHash("sha256");
    const target = await zip.extract(entry, tmpDir, (chunk) => h.update(chunk));
    // Where the file actually landed (the reader maps any backslash to a separator).
    files.push({ path: path.relative(tmpDir, target), size: entry.size, sha256: h.digest("hex") });
  }
  const descRel = (files[0] as ManifestFile).path;
  const committed = await cache.commit(tmpDir, { descriptor: descRel, files });
  return { ...committed, descRel };
}

/**
 * Build a resolver from model locations to local descriptor paths. A local path
 * is returned as is; `oci://` and Data Science locations are downloaded into
 * `cacheDir` once per version and reused afterwards.
 *
 * @example
 * const resolve = createModelResolver({ cacheDir: "/var/cache/models", objectStore, datascience });
 * const descriptorPath = await resolve("oci://models@mytenancy/churn/v3/descriptor.json");
 */
export function createModelResolver(options: ModelResolverOptions): ModelResolver {
  const cache = new ModelCache(options.cacheDir);
  return async (location) => {
    const loc = parseModelLocation(location);
    switch (loc.kind) {
      case "local":
        return loc.path;
      case "object-storage":
        if (!options.objectStore) {
          throw new InvalidArgumentError(
            `model location ${location} is in Object Storage, but no object store is configured`,
          );
        }
        return resolveObjectStorage(cache, options.objectStore, loc);
      case "datascience":
        if (!options.datascience) {
          throw new InvalidArgumentError(
            `model location ${location} is a Data Science model, but no Data Science client is configured`,
          );
        }
        return resolveDataScience(cache, options.datascience, loc.modelId);
    }
  };
}

/**
 * A `loadModel(location)` for PipelineDeps: resolve, then load. The identity
 * keeps the location the job named (not the node-local cache path), so job
 * records read the same on every node.
 */
export function createModelLoader(
  options: ModelResolverOptions,
): (location: string) => Promise<LoadedModel> {
  const resolve = createModelResolver(options);
  return async (location) => {
    const model = await loadModel(await resolve(location));
    return { ...model, identity: { ...model.identity, descriptor: location } };
  };
}
