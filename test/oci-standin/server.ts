/**
 * The OCI stand-in's core: a loopback HTTP server that checks every request's
 * OCI request signature (draft-cavage HTTP signatures, rsa-sha256) against a
 * test key, then routes it to a service module (object storage, queue, NoSQL,
 * streaming, ...). Services register routes with OCI's real paths; this file
 * knows nothing about any one service.
 */
import { createHash, createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import http, { type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Readable } from "node:stream";
import * as common from "oci-common";
import type { OciAuth } from "../../src/adapters/oci/auth.ts";
import { describePrincipal, type IamPolicies, type Principal } from "./iam.ts";
import { type OperationName, requirement } from "./iam-permissions.ts";

/** A request as a route handler sees it (body fully read). */
export interface StandInRequest {
  method: string;
  /** Raw (still percent-encoded) path, without the query. */
  rawPath: string;
  url: URL;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Path parameters, percent-decoded. `*name` captures the rest of the path. */
  params: Record<string, string>;
  /** The keyId that signed it. */
  keyId: string;
  /** Who that key belongs to (undefined: a key with no principal, refused when IAM is on). */
  principal: Principal | undefined;
  /** The endpoint it arrived on: `*` (the catch-all URL) or a service's, e.g. `queue:cell-2`. */
  endpoint: string;
}

/** What a handler returns. Objects are sent as JSON. */
export interface StandInResponse {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer | string | Readable | object;
}

/** A route handler. */
export type Handler = (req: StandInRequest) => StandInResponse | Promise<StandInResponse>;

/** Fault injection: return a response to short-circuit the request, or undefined to let it through. */
export type Injector = (req: StandInRequest) => StandInResponse | undefined;

/** OCI's error body: `{ code, message }`, with an opc-request-id header. */
export function ociError(status: number, code: string, message: string): StandInResponse {
  return { status, body: { code, message } };
}

/** API-key credentials the stand-in trusts (and that tests sign with). */
export interface TestCredentials {
  tenancy: string;
  user: string;
  fingerprint: string;
  region: string;
  privateKeyPem: string;
  publicKeyPem: string;
  /** `tenancy/user/fingerprint`: the keyId the SDK sends. */
  keyId: string;
  /** Write an `~/.oci/config`-style file (and the key beside it); returns the config path. */
  writeConfigFile(dir: string, profile?: string): string;
}

const cachedKeys = new Map<string, { privateKeyPem: string; publicKeyPem: string }>();

/**
 * An RSA key pair and the identity that signs with it (generated once per process
 * and name: 2048-bit generation takes ~100 ms). `name` gives each component its
 * own key (`splitter`, `worker`, ...); the default is the test harness's own.
 */
export function testCredentials(name = "standin"): TestCredentials {
  let keys = cachedKeys.get(name);
  if (!keys) {
    const pair = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    keys = { privateKeyPem: pair.privateKey, publicKeyPem: pair.publicKey };
    cachedKeys.set(name, keys);
  }
  const tenancy = "ocid1.tenancy.oc1..standintenancy";
  const user = `ocid1.user.oc1..${name.replace(/[^a-z0-9]/gi, "").toLowerCase()}user`;
  const fingerprint = "20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34";
  const { privateKeyPem, publicKeyPem } = keys;
  return {
    tenancy,
    user,
    fingerprint,
    region: "us-ashburn-1",
    privateKeyPem,
    publicKeyPem,
    keyId: `${tenancy}/${user}/${fingerprint}`,
    writeConfigFile(dir, profile = "DEFAULT") {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const keyFile = path.join(dir, "oci_api_key.pem");
      writeFileSync(keyFile, privateKeyPem, { mode: 0o600 });
      const configFile = path.join(dir, "config");
      writeFileSync(
        configFile,
        `[${profile}]\nuser=${user}\nfingerprint=${fingerprint}\ntenancy=${tenancy}\nregion=us-ashburn-1\nkey_file=${keyFile}\n`,
        { mode: 0o600 },
      );
      return configFile;
    },
  };
}

interface Route {
  method: string;
  segments: string[];
  handler: Handler;
  /** The service whose endpoint serves it (`*`: only the catch-all URL). */
  service: string;
}

/** One IAM refusal, for assertions and error messages. */
export interface Denial {
  keyId: string;
  principal: string;
  operation: string;
  missing: string[];
  target: Record<string, string>;
}

/** Requests the stand-in saw, for assertions (method, path, status). */
export interface RequestRecord {
  method: string;
  path: string;
  status: number;
  keyId?: string;
}

/** Allowed clock skew on the signed date, as OCI allows (5 minutes). */
const MAX_SKEW_MS = 5 * 60_000;

/** Parse `Signature version="1",keyId="...",...` into its fields. */
export function parseSignatureHeader(value: string): Record<string, string> | undefined {
  if (!value.startsWith("Signature ")) return undefined;
  const fields: Record<string, string> = {};
  const re = /(\w+)="([^"]*)"/g;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    const [, k, v] = m;
    if (k !== undefined && v !== undefined) fields[k] = v;
  }
  return fields;
}

/**
 * Is this request's body outside the signature? The SDK excludes binary object
 * bodies (PutObject, UploadPart) and Streaming's PutMessages (its client passes
 * `excludeBody` for that call).
 */
function bodyExcludedFromSignature(method: string, rawPath: string): boolean {
  return (
    (method === "PUT" && /^\/n\/[^/]+\/b\/[^/]+\/(o|u)\//.test(rawPath)) ||
    (method === "POST" && /^\/20180418\/streams\/[^/]+\/messages$/.test(rawPath))
  );
}

/**
 * Check the request's OCI signature. Returns the keyId, or a reason it is rejected.
 * Exported so other stand-ins (the Kubernetes API's token check) reuse it.
 */
export function verifyOciSignature(
  input: {
    method: string;
    rawPathAndQuery: string;
    headers: IncomingHttpHeaders;
    body?: Buffer;
    /** Whether body headers (content-length, content-type, x-content-sha256) must be signed. */
    requireBodySigning: boolean;
  },
  trustedKeys: Map<string, string>,
  now: number,
): { keyId: string } | { reason: string } {
  const auth = input.headers.authorization;
  if (typeof auth !== "string") return { reason: "missing Authorization header" };
  const sig = parseSignatureHeader(auth);
  if (!sig) return { reason: "Authorization is not an OCI Signature" };
  if (sig.version !== "1") return { reason: `unsupported signature version ${sig.version}` };
  if (sig.algorithm !== "rsa-sha256") return { reason: `unsupported algorithm ${sig.algorithm}` };
  const keyId = sig.keyId ?? "";
  const publicKey = trustedKeys.get(keyId);
  if (!publicKey) return { reason: `unknown keyId ${keyId}` };
  const signed = (sig.headers ?? "").split(" ").map((h) => h.toLowerCase());
  const required = ["(request-target)", "host"];
  if (!signed.includes("date") && !signed.includes("x-date")) {
    return { reason: "date or x-date must be signed" };
  }
  if (input.requireBodySigning) required.push("content-length", "content-type", "x-content-sha256");
  for (const h of required) {
    if (!signed.includes(h)) return { reason: `header ${h} must be signed` };
  }
  const dateHeader = input.headers["x-date"] ?? input.headers.date;
  const date = Date.parse(String(dateHeader));
  if (!Number.isFinite(date) || Math.abs(now - date) > MAX_SKEW_MS) {
    return { reason: `date ${String(dateHeader)} is missing or outside the allowed skew` };
  }
  if (signed.includes("x-content-sha256")) {
    const expected = createHash("sha256")
      .update(input.body ?? Buffer.alloc(0))
      .digest("base64");
    if (input.headers["x-content-sha256"] !== expected) {
      return { reason: "x-content-sha256 does not match the body" };
    }
  }
  const lines: string[] = [];
  for (const h of signed) {
    if (h === "(request-target)") {
      lines.push(`(request-target): ${input.method.toLowerCase()} ${input.rawPathAndQuery}`);
      continue;
    }
    const v = input.headers[h];
    if (v === undefined) return { reason: `signed header ${h} is absent` };
    lines.push(`${h}: ${Array.isArray(v) ? v.join(", ") : v}`);
  }
  const ok = verify(
    "RSA-SHA256",
    Buffer.from(lines.join("\n")),
    createPublicKey(publicKey),
    Buffer.from(sig.signature ?? "", "base64"),
  );
  return ok ? { keyId } : { reason: "signature does not verify" };
}

/** The loopback server every OCI service stand-in mounts on. */
export class OciStandIn {
  /** `http://127.0.0.1:PORT`: point every client's `endpoint` here. */
  url = "";
  readonly requests: RequestRecord[] = [];
  /** Requests refused for a missing or bad signature. */
  rejectedUnsigned = 0;
  private readonly routes: Route[] = [];
  private readonly trustedKeys = new Map<string, string>();
  private readonly injectors: Injector[] = [];
  private readonly principals = new Map<string, Principal>();
  private readonly endpoints = new Map<string, { server: http.Server; url: string }>();
  private iam: IamPolicies | undefined;
  /** IAM refusals so far (when IAM is enforced). */
  readonly denials: Denial[] = [];
  private server: http.Server | undefined;
  private nextId = 0;

  /** The principal a key signs as (each component has its own key). */
  principal(keyId: string, principal: Principal): this {
    this.principals.set(keyId, principal);
    return this;
  }

  /** Enforce these policies on every request (undefined: no IAM, every signed request passes). */
  enforce(iam: IamPolicies | undefined): this {
    this.iam = iam;
    return this;
  }

  /** The policies in force, if IAM is enforced. */
  get policies(): IamPolicies | undefined {
    return this.iam;
  }

  /**
   * May this request do `operation` on a resource in `compartmentId`? Without IAM,
   * yes. With IAM, an unmapped key or a missing permission is refused (and recorded);
   * the service then answers the 404 OCI gives for "not authorized or not found".
   */
  allows(
    req: { keyId: string; principal: Principal | undefined },
    operation: OperationName,
    compartmentId: string,
    target: Record<string, string> = {},
  ): boolean {
    if (!this.iam) return true;
    const principal = req.principal;
    const need = requirement(operation, compartmentId, target);
    const decision = principal
      ? this.iam.decide(principal, need)
      : { allowed: false as const, missing: ["(no principal for this key)"] };
    if (decision.allowed) return true;
    this.denials.push({
      keyId: req.keyId,
      principal: principal ? describePrincipal(principal) : "unknown",
      operation,
      missing: decision.missing,
      target,
    });
    return false;
  }

  /** The principal for a keyId, if one is mapped. */
  principalOf(keyId: string): Principal | undefined {
    return this.principals.get(keyId);
  }

  /**
   * The URL of `service`'s own endpoint: a listener that serves only that
   * service's routes, as each OCI service (and each queue cell, each stream's
   * messages endpoint) has its own host. A client pointed at the wrong one gets 404.
   */
  async endpoint(service: string): Promise<string> {
    const known = this.endpoints.get(service);
    if (known) return known.url;
    const server = http.createServer((req, res) => {
      this.handle(req, res, service).catch((err: unknown) => {
        if (!res.headersSent) {
          this.send(res, ociError(500, "InternalServerError", String(err)), req.method ?? "GET");
        } else res.destroy();
      });
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    this.endpoints.set(service, { server, url });
    return url;
  }

  /** Trust `credentials`' public key for its keyId. */
  trust(keyId: string, publicKeyPem: string): this {
    this.trustedKeys.set(keyId, publicKeyPem);
    return this;
  }

  /** Keys this server trusts (for stand-ins that verify tokens themselves). */
  get keys(): Map<string, string> {
    return this.trustedKeys;
  }

  /**
   * Register a handler. Pattern segments: literal, `:name` (one segment), `*name` (the rest).
   * `service` names the endpoint that serves it (see {@link endpoint}); the catch-all
   * URL serves every route.
   */
  route(method: string, pattern: string, handler: Handler, service = "*"): this {
    this.routes.push({ method, segments: pattern.split("/").filter(Boolean), handler, service });
    return this;
  }

  /** Add a fault injector (checked after the signature, before routing). Returns its remover. */
  inject(injector: Injector): () => void {
    this.injectors.push(injector);
    return () => {
      const i = this.injectors.indexOf(injector);
      if (i >= 0) this.injectors.splice(i, 1);
    };
  }

  /** Listen on 127.0.0.1 (port 0 = any free port). */
  async listen(port = 0): Promise<this> {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          this.send(res, ociError(500, "InternalServerError", String(err)), req.method ?? "GET");
        } else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve) => this.server?.listen(port, "127.0.0.1", resolve));
    const addr = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${addr.port}`;
    return this;
  }

  async close(): Promise<void> {
    const servers = [
      ...(this.server ? [this.server] : []),
      ...[...this.endpoints.values()].map((e) => e.server),
    ];
    this.server = undefined;
    this.endpoints.clear();
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private match(
    method: string,
    rawPath: string,
    service: string,
  ): { route: Route; params: Record<string, string> } | undefined {
    const parts = rawPath.split("/").filter(Boolean);
    outer: for (const route of this.routes) {
      if (route.method !== method) continue;
      // `queue:cell-2` is the queue service's endpoint in one cell: queue routes, that cell's queues.
      if (service !== "*" && route.service !== service.split(":")[0]) continue;
      const params: Record<string, string> = {};
      for (let i = 0; i < route.segments.length; i++) {
        const seg = route.segments[i] ?? "";
        if (seg.startsWith("*")) {
          const rest = parts.slice(i);
          if (rest.length === 0) continue outer;
          params[seg.slice(1)] = decodeURIComponent(rest.join("/"));
          return { route, params };
        }
        const part = parts[i];
        if (part === undefined) continue outer;
        if (seg.startsWith(":")) params[seg.slice(1)] = decodeURIComponent(part);
        else if (seg !== part) continue outer;
      }
      if (parts.length === route.segments.length) return { route, params };
    }
    return undefined;
  }

  private async handle(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    service = "*",
  ): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const method = req.method ?? "GET";
    const rawUrl = req.url ?? "/";
    const url = new URL(rawUrl, "http://127.0.0.1");
    const rawPath = rawUrl.split("?")[0] ?? "/";
    const checked = verifyOciSignature(
      {
        method,
        rawPathAndQuery: rawUrl,
        headers: req.headers,
        body,
        requireBodySigning:
          ["POST", "PUT", "PATCH"].includes(method) && !bodyExcludedFromSignature(method, rawPath),
      },
      this.trustedKeys,
      Date.now(),
    );
    if ("reason" in checked) {
      this.rejectedUnsigned++;
      this.requests.push({ method, path: rawPath, status: 401 });
      this.send(res, ociError(401, "NotAuthenticated", checked.reason), method);
      return;
    }
    const found = this.match(method, rawPath, service);
    const request: StandInRequest = {
      method,
      rawPath,
      url,
      headers: req.headers,
      body,
      params: found?.params ?? {},
      keyId: checked.keyId,
      principal: this.principals.get(checked.keyId),
      endpoint: service,
    };
    let response: StandInResponse | undefined;
    for (const inj of this.injectors) {
      response = inj(request);
      if (response) break;
    }
    if (!response) {
      response = found
        ? await found.route.handler(request)
        : ociError(404, "NotAuthorizedOrNotFound", `no stand-in route for ${method} ${rawPath}`);
    }
    this.requests.push({ method, path: rawPath, status: response.status, keyId: checked.keyId });
    this.send(res, response, method);
  }

  /** Send a response (exported for stand-ins that answer outside the route table). */
  send(res: http.ServerResponse, response: StandInResponse, method: string): void {
    const headers: Record<string, string> = {
      "opc-request-id": `standin-${++this.nextId}`,
      ...response.headers,
    };
    const body = response.body;
    if (body instanceof Readable) {
      res.writeHead(response.status, headers);
      body.pipe(res);
      return;
    }
    let payload: Buffer;
    if (body === undefined) payload = Buffer.alloc(0);
    else if (Buffer.isBuffer(body)) payload = body;
    else if (typeof body === "string") payload = Buffer.from(body);
    else {
      payload = Buffer.from(JSON.stringify(body));
      headers["content-type"] ??= "application/json";
    }
    if (headers["content-length"] === undefined) headers["content-length"] = String(payload.length);
    res.writeHead(response.status, headers);
    res.end(method === "HEAD" ? undefined : payload);
  }
}

/** Start a stand-in that trusts `credentials` (default: the shared test key). */
export async function startStandIn(credentials = testCredentials()): Promise<OciStandIn> {
  return new OciStandIn().trust(credentials.keyId, credentials.publicKeyPem).listen();
}

/** An oci-common auth for the stand-in's trusted key (what the tests' clients sign with). */
export function standInAuth(credentials = testCredentials()): OciAuth {
  return {
    mode: "config_file",
    provider: new common.SimpleAuthenticationDetailsProvider(
      credentials.tenancy,
      credentials.user,
      credentials.fingerprint,
      credentials.privateKeyPem,
      null,
      common.Region.fromRegionId(credentials.region),
    ),
    region: credentials.region,
  };
}
