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
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { InvalidArgumentError, ModelError, NotFoundError } from "../../core/errors.ts";
import { sha256Hex } from "../../core/ids.ts";
import { type LoadedModel, loadModel } from "../../model/descriptor.ts";
import type { ObjectStore } from "../../ports/object-store.ts";
import { type ManifestFile, ModelCache } from "./model-cache.ts";
import { type DataScienceArtifactClient, resolveDataScience } from "./model-datascience.ts";
import {
  ChangedWhileReading,
  download,
  MAX_DESCRIPTOR_BYTES,
  withChangeRetries,
} from "./model-download.ts";
import { commonDirOf, pickReferenced, referencedFiles, relativeTo } from "./model-files.ts";

export { ModelCache } from "./model-cache.ts";
export type { DataScienceArtifactClient } from "./model-datascience.ts";

/** What the error for an unknown location lists. */
export const ACCEPTED_MODEL_LOCATIONS =
  "a local path to a descriptor JSON (or a file:// URL), " +
  "oci://<bucket>@<namespace>/<object name of the descriptor JSON>, " +
  "or an OCI Data Science model OCID (ocid1.datasciencemodel.<realm>.<region>.<id>)";

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
