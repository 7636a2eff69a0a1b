/**
 * OCI Data Science stand-in (API 20190101): the model catalog's artifact
 * download, HeadModelArtifact and GetModelArtifactContent, with etag,
 * content-length, content-md5, content-disposition, last-modified and single
 * byte ranges (206 / 416) as the SDK reads them.
 *
 * IAM (when enforced): both need DATA_SCIENCE_MODEL_READ (UNCONFIRMED, see
 * iam-permissions.ts); a refusal is the same 404 NotAuthorizedOrNotFound as a missing model.
 */
import { createHash, randomUUID } from "node:crypto";
import { type OciStandIn, ociError, type StandInRequest, type StandInResponse } from "./server.ts";

interface Artifact {
  compartmentId: string;
  bytes: Buffer;
  etag: string;
  md5: string;
  lastModified: Date;
  fileName: string;
}

/** Handle for tests. */
export interface DataScienceStandIn {
  /** Create the model (if new) and give it this artifact. */
  putModelArtifact(
    modelId: string,
    zipBytes: Buffer,
    fileName?: string,
    compartmentId?: string,
  ): void;
  /** GETs of a model's artifact content so far (HEADs not counted). */
  contentGets(modelId: string): number;
}

/** Parse `bytes=a-b`, `bytes=a-`, `bytes=-n` against `size`; undefined when unsatisfiable. */
function parseRange(header: string, size: number): { start: number; end: number } | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const [, a = "", b = ""] = m;
  if (a === "" && b === "") return undefined;
  if (a === "") {
    const n = Number(b);
    if (n === 0) return undefined;
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || end < start) return undefined;
  return { start, end };
}

/** Mount the Data Science artifact routes on `server`. */
export function registerDataScience(server: OciStandIn): DataScienceStandIn {
  const artifacts = new Map<string, Artifact>();
  const gets = new Map<string, number>();

  const headers = (a: Artifact): Record<string, string> => ({
    etag: a.etag,
    "content-md5": a.md5,
    "content-disposition": `attachment; filename=${a.fileName}`,
    "last-modified": a.lastModified.toUTCString(),
    "content-type": "application/octet-stream",
    "accept-ranges": "bytes",
  });

  const find = (req: StandInRequest): Artifact | StandInResponse => {
    const a = artifacts.get(req.params.modelId ?? "");
    const op = req.method === "HEAD" ? "HeadModelArtifact" : "GetModelArtifactContent";
    if (
      a &&
      server.allows(req, op, a.compartmentId, { "target.model.id": req.params.modelId ?? "" })
    ) {
      return a;
    }
    return ociError(
      404,
      "NotAuthorizedOrNotFound",
      `model ${req.params.modelId} or its artifact not found, or not authorized`,
    );
  };

  const path = "/20190101/models/:modelId/artifact/content";

  server.route("HEAD", path, headArtifact, "datascience");
  server.route("GET", path, getArtifact, "datascience");

  function headArtifact(req: StandInRequest): StandInResponse {
    const a = find(req);
    if (!("bytes" in a)) return a;
    return { status: 200, headers: { ...headers(a), "content-length": String(a.bytes.length) } };
  }

  function getArtifact(req: StandInRequest): StandInResponse {
    const a = find(req);
    if (!("bytes" in a)) return a;
    const id = req.params.modelId ?? "";
    gets.set(id, (gets.get(id) ?? 0) + 1);
    const rangeHeader = req.headers.range;
    if (typeof rangeHeader === "string" && rangeHeader !== "") {
      const range = parseRange(rangeHeader, a.bytes.length);
      if (!range) {
        return {
          status: 416,
          headers: { "content-range": `bytes */${a.bytes.length}` },
          body: { code: "InvalidRange", message: `range ${rangeHeader} is not satisfiable` },
        };
      }
      const body = a.bytes.subarray(range.start, range.end + 1);
      // UNCONFIRMED what content-md5 the service sends for a part: none here, so it can't mislead.
      const { "content-md5": _wholeMd5, ...partHeaders } = headers(a);
      return {
        status: 206,
        headers: {
          ...partHeaders,
          "content-range": `bytes ${range.start}-${range.end}/${a.bytes.length}`,
          "content-length": String(body.length),
        },
        body,
      };
    }
    return {
      status: 200,
      headers: { ...headers(a), "content-length": String(a.bytes.length) },
      body: a.bytes,
    };
  }

  return {
    putModelArtifact(
      modelId,
      zipBytes,
      fileName = "artifact.zip",
      compartmentId = "ocid1.compartment.oc1..standin",
    ) {
      artifacts.set(modelId, {
        compartmentId,
        bytes: Buffer.from(zipBytes),
        // Opaque, and new for every upload (even of the same bytes), like a service etag.
        etag: randomUUID(),
        md5: createHash("md5").update(zipBytes).digest("base64"),
        lastModified: new Date(),
        fileName,
      });
    },
    contentGets(modelId) {
      return gets.get(modelId) ?? 0;
    },
  };
}
