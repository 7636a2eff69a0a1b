/**
 * Models named by an OCI Data Science model OCID: the model's artifact zip is
 * downloaded, its descriptor found (descriptor.json, shallowest first), and the
 * descriptor and the files it names extracted into the node-local model cache.
 */
import { createHash } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import type { DataScienceClient } from "oci-datascience";
import { InvalidArgumentError, ModelError, StoreUnavailableError } from "../../core/errors.ts";
import { mapOciError } from "./errors.ts";
import type { ManifestFile, ModelCache } from "./model-cache.ts";
import {
  ChangedWhileReading,
  download,
  MAX_DESCRIPTOR_BYTES,
  withChangeRetries,
} from "./model-download.ts";
import { pickReferenced, referencedFiles } from "./model-files.ts";
import { type ZipEntry, ZipReader } from "./zip-reader.ts";

/** The two Data Science calls the resolver makes (a full DataScienceClient fits). */
export type DataScienceArtifactClient = Pick<
  DataScienceClient,
  "headModelArtifact" | "getModelArtifactContent"
>;

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
export async function resolveDataScience(
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
