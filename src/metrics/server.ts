/**
 * A minimal HTTP server for Prometheus: `GET /metrics` answers the exposition
 * text; anything else is 404. No framework: one route does not need one.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { InvalidArgumentError } from "../core/errors.ts";

/** The Prometheus text exposition content type (version 0.0.4). */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The default port of a worker's `/metrics` (what the Deployment's scrape annotation names). */
export const DEFAULT_METRICS_PORT = 9464;

/** A running metrics server. */
export interface MetricsServer {
  /** The port it listens on (the real one when asked for port 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * The port from METRICS_PORT: undefined when unset or empty (no server);
 * 0 asks the OS for a free port (tests). Fails naming the variable otherwise.
 */
export function metricsPortFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env.METRICS_PORT;
  if (raw === undefined || raw.trim() === "") return undefined;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(
      `environment variable METRICS_PORT must be a port number 0-65535 (0 = any free port), got "${raw}"`,
    );
  }
  return port;
}

/**
 * Serve `render()` at `/metrics` on `port` (all interfaces by default: a pod is
 * scraped on its own IP). Resolves once listening.
 */
export async function startMetricsServer(options: {
  port: number;
  host?: string;
  render: () => Promise<string>;
  contentType?: string;
}): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const url = req.url?.split("?")[0];
    if (req.method !== "GET" || url !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: GET /metrics\n");
      return;
    }
    options.render().then(
      (body) => {
        res
          .writeHead(200, { "content-type": options.contentType ?? PROMETHEUS_CONTENT_TYPE })
          .end(body);
      },
      (err: unknown) => {
        res
          .writeHead(500, { "content-type": "text/plain" })
          .end(`metrics failed: ${String(err)}\n`);
      },
    );
  });
  // A scrape server must never keep a worker alive on its own.
  server.unref();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
