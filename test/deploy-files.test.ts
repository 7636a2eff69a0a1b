/** Static checks of what can't run here (no Docker engine, no cluster): the image and manifests match the code. */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { WORKER_ENV } from "../src/runner/worker-config.ts";

const dockerfile = readFileSync("worker-image/Dockerfile", "utf8");
const deployment = readFileSync("worker-image/k8s/worker-deployment.yaml", "utf8");

describe("func.yaml", () => {
  it("follows the Fn schema and runs the functions bundle the build produces", () => {
    const yaml = readFileSync("func.yaml", "utf8");
    assert.match(yaml, /^schema_version: 20180708$/m);
    assert.match(yaml, /^runtime: node$/m);
    assert.match(yaml, /^entrypoint: node dist\/functions\.cjs$/m);
    assert.match(readFileSync("scripts/build.ts", "utf8"), /functions: "functions\/fn-entry\.ts"/);
    assert.match(yaml, /^ {2}BATCH_INFER_FUNCTION: (splitter|merger)$/m);
  });
});

describe("worker image and manifests", () => {
  it("the Dockerfile copies files that exist and runs the bundle the build produces", () => {
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(?:--\S+ )*(.+) \S+$/gm)) {
      for (const src of (m[1] ?? "").split(/\s+/))
        assert.ok(existsSync(src), `COPY source ${src} is missing`);
    }
    assert.match(dockerfile, /ENTRYPOINT \["node", "dist\/worker.js"\]/);
    assert.match(readFileSync("scripts/build.ts", "utf8"), /worker: "src\/runner\/worker-main.ts"/);
    // The GPU image is the one place that opts in to onnxruntime's CUDA download.
    assert.match(dockerfile, /ONNXRUNTIME_NODE_INSTALL=cuda12/);
    assert.match(readFileSync(".npmrc", "utf8"), /^onnxruntime-node-install=skip$/m);
  });

  it("every environment variable the image and Deployment set is one the worker reads", () => {
    const set = [
      ...[...dockerfile.matchAll(/^\s*(?:ENV )?([A-Z_]+)=\S+ ?\\?$/gm)].map((m) => m[1]),
      ...[...deployment.matchAll(/name: ([A-Z_]+), value:/g)].map((m) => m[1]),
    ].filter((n): n is string => Boolean(n) && n !== "ONNXRUNTIME_NODE_INSTALL");
    assert.ok(set.length >= 3, `found ${set.join(", ")}`);
    for (const name of set)
      assert.ok(
        (WORKER_ENV as readonly string[]).includes(name),
        `${name} is not read by the worker`,
      );
  });

  it("the Deployment starts at zero replicas on preemptible GPU nodes with time to hand back", () => {
    assert.match(deployment, /^kind: Deployment$/m);
    assert.match(deployment, /^ {2}replicas: 0$/m);
    assert.match(deployment, /oci\.oraclecloud\.com\/preemptible: "true"/);
    assert.match(deployment, /nvidia\.com\/gpu: "1"/);
    const grace = Number(/terminationGracePeriodSeconds: (\d+)/.exec(deployment)?.[1]);
    assert.ok(grace >= 30, "SIGTERM needs time to finish a batch and commit a checkpoint");
    assert.match(deployment, /runAsNonRoot: true/);
  });
});
