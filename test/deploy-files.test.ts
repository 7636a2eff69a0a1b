/** Static checks of what can't run here (no Docker engine, no cluster): the image and manifests match the code. */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { renderWorkerDeployment } from "../scripts/oci/plan/render.ts";
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
    assert.match(deployment, /nvidia\.com\/gpu: "1"/);
    const grace = Number(/terminationGracePeriodSeconds: (\d+)/.exec(deployment)?.[1]);
    assert.ok(grace >= 30, "SIGTERM needs time to finish a batch and commit a checkpoint");
    assert.match(deployment, /runAsNonRoot: true/);
  });
});

// ---- Scheduling on OKE ------------------------------------------------------------------

interface Taint {
  key: string;
  value?: string;
  effect: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
}
interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
}

/**
 * A preemptible GPU worker node as OKE makes it. OKE docs, "Using Preemptible
 * Capacity" (https://docs.oracle.com/en-us/iaas/Content/ContEng/Tasks/contengusingpreemptiblecapacity.htm):
 * "Kubernetes Engine automatically adds a Kubernetes label
 * oci.oraclecloud.com/oke-is-preemptible=true" and "a Kubernetes taint
 * oci.oraclecloud.com/oke-is-preemptible"; GPU shapes carry the taint nvidia.com/gpu.
 * The taints' values and effects are not documented: every effect and an unknown
 * value are tried, so only a toleration that matches them all passes (stricter than a real node).
 */
function okePreemptibleGpuNodes(): { labels: Record<string, string>; taints: Taint[] }[] {
  const effects: Taint["effect"][] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
  return effects.map((effect) => ({
    labels: {
      "oci.oraclecloud.com/oke-is-preemptible": "true",
      "kubernetes.io/os": "linux",
      "kubernetes.io/arch": "amd64",
    },
    taints: [
      { key: "oci.oraclecloud.com/oke-is-preemptible", value: "undocumented", effect },
      { key: "nvidia.com/gpu", value: "undocumented", effect },
    ],
  }));
}

/** Kubernetes' toleration match (core/v1 Toleration.ToleratesTaint). */
function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key === undefined || t.key === "") return t.operator === "Exists";
  if (t.key !== taint.key) return false;
  return t.operator === "Exists" || (t.value ?? "") === (taint.value ?? "");
}

/** The pod template's nodeSelector and tolerations, read from the rendered manifest. */
function podPlacement(yaml: string): {
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
} {
  const lines = yaml.split("\n");
  const block = (key: string): string[] => {
    const at = lines.findIndex((l) => new RegExp(`^\\s+${key}:\\s*$`).test(l));
    if (at < 0) return [];
    const indent = (/^(\s*)/.exec(lines[at] ?? "")?.[1] ?? "").length;
    const out: string[] = [];
    for (const l of lines.slice(at + 1)) {
      if (l.trim() === "" || l.trim().startsWith("#")) continue;
      if ((/^(\s*)/.exec(l)?.[1] ?? "").length <= indent) break;
      out.push(l);
    }
    return out;
  };
  const unquote = (v: string) => v.trim().replace(/^"(.*)"$/, "$1");
  const nodeSelector = Object.fromEntries(
    block("nodeSelector").map((l) => {
      const [k, ...v] = l.trim().split(":");
      return [k ?? "", unquote(v.join(":"))];
    }),
  );
  const tolerations: Toleration[] = [];
  for (const l of block("tolerations")) {
    const m = /^\s*(-\s+)?(\w+):\s*(.*)$/.exec(l);
    if (!m) continue;
    if (m[1]) tolerations.push({});
    const current = tolerations.at(-1);
    if (current) (current as Record<string, string>)[m[2] ?? ""] = unquote(m[3] ?? "");
  }
  return { nodeSelector, tolerations };
}

describe("worker pods on OKE", () => {
  it("schedule on a preemptible GPU node as OKE labels and taints it", () => {
    const rendered = renderWorkerDeployment(deployment, "iad.ocir.io/ns/worker:1", []);
    const { nodeSelector, tolerations } = podPlacement(rendered);
    assert.ok(Object.keys(nodeSelector).length > 0, "the workers select preemptible nodes");
    for (const node of okePreemptibleGpuNodes()) {
      for (const [k, v] of Object.entries(nodeSelector)) {
        assert.equal(node.labels[k], v, `nodeSelector ${k}=${v}: OKE's nodes carry no such label`);
      }
      for (const taint of node.taints) {
        assert.ok(
          tolerations.some((t) => tolerates(t, taint)),
          `no toleration for the taint ${taint.key}:${taint.effect}`,
        );
      }
    }
  });

  it("the check refuses what would never schedule", () => {
    const wrongLabel = deployment.replace(
      /oci\.oraclecloud\.com\/oke-is-preemptible: "true"/,
      'oci.oraclecloud.com/preemptible: "true"',
    );
    const { nodeSelector } = podPlacement(wrongLabel);
    assert.ok(
      okePreemptibleGpuNodes().every(
        (n) =>
          n.labels["oci.oraclecloud.com/preemptible"] !==
          nodeSelector["oci.oraclecloud.com/preemptible"],
      ),
    );
    const onlyNoSchedule: Toleration = {
      key: "oci.oraclecloud.com/oke-is-preemptible",
      operator: "Exists",
      effect: "NoSchedule",
    };
    assert.ok(
      !tolerates(onlyNoSchedule, {
        key: "oci.oraclecloud.com/oke-is-preemptible",
        effect: "NoExecute",
      }),
    );
  });
});

// ---- The image builds with the npm it has -----------------------------------------------

interface NpmTable {
  baseImages: Record<string, string>;
  versions: Record<
    string,
    { commands: string[]; aliases: Record<string, string>; subcommands: Record<string, string[]> }
  >;
}
const npmTable = JSON.parse(readFileSync("worker-image/npm-commands.json", "utf8")) as NpmTable;

/**
 * Every `npm <command>` a Dockerfile's RUN lines use, with the npm version in
 * effect there: the base image's (npm-commands.json), or one a `npm install -g
 * npm@X` before it installed. Returns what npm would refuse as an unknown command.
 */
function npmProblems(dockerfile: string): string[] {
  const problems: string[] = [];
  let npm: string | undefined;
  const joined = dockerfile.replace(/\\\n/g, " ");
  for (const line of joined.split("\n")) {
    const from = /^FROM\s+(\S+)/i.exec(line);
    if (from) {
      const image = from[1] ?? "";
      const base = Object.keys(npmTable.baseImages).find(
        (b) => image === b || image.startsWith(`${b}-`) || image.startsWith(`${b}.`),
      );
      npm = base ? npmTable.baseImages[base] : undefined;
      continue;
    }
    if (!/^RUN\s/i.test(line)) continue;
    for (const part of line.replace(/^RUN\s+/i, "").split(/&&|;|\|\|/)) {
      const words = part.trim().split(/\s+/);
      if (words[0] !== "npm") continue;
      const version = npm && npmTable.versions[npm];
      if (!version) {
        problems.push(`"${part.trim()}": no known npm in this stage`);
        continue;
      }
      const command = words.slice(1).find((w) => !w.startsWith("-")) ?? "";
      const resolved = version.commands.includes(command) ? command : version.aliases[command];
      if (!resolved) {
        problems.push(`"${part.trim()}": npm ${npm} has no command "${command}"`);
        continue;
      }
      const subs = version.subcommands[resolved];
      const sub = words[words.indexOf(command) + 1];
      if (subs && !subs.includes(sub ?? "")) {
        problems.push(`"${part.trim()}": npm ${npm} ${resolved} has no "${sub}"`);
      }
      const pinned = /^npm@(\d+\.\d+\.\d+)$/.exec(words.find((w) => w.startsWith("npm@")) ?? "");
      if (resolved === "install" && words.includes("-g") && pinned) {
        npm = pinned[1];
        if (!npm || !npmTable.versions[npm])
          problems.push(`npm ${npm} is not in npm-commands.json`);
      }
    }
  }
  return problems;
}

describe("worker image build", () => {
  it("runs only npm commands the npm in effect has", () => {
    assert.deepEqual(npmProblems(dockerfile), []);
  });

  it("the check refuses install-scripts on the npm node:20 bundles", () => {
    const unpinned = dockerfile.replace(/^RUN npm install -g npm@\S+.*$/m, "");
    assert.match(npmProblems(unpinned).join(), /npm 10\.8\.2 has no command "install-scripts"/);
  });
});
