/**
 * The script a data scientist would write: pandas `read_csv`, the logistic
 * model as numpy arithmetic, `to_json` lines. Timed from process start to exit
 * (interpreter and imports included, as our CLI's wall clock includes Node's
 * start), with the script's own split of read / score / write. Needs a Python
 * with pandas and numpy (Debian: `apt-get install -y python3-pandas
 * python3-numpy`, which installs them for /usr/bin/python3).
 */
import { spawnSync } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { RUNS_DIR } from "./data.ts";
import type { LogisticCoefficients } from "./onnx.ts";

const SCRIPT = `
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import pandas as pd
t_import = time.perf_counter()
coef = json.load(open(sys.argv[2]))
df = pd.read_csv(sys.argv[1])
t_read = time.perf_counter()
X = df[[f"f{k}" for k in range(32)]].fillna(0).to_numpy()
p = 1.0 / (1.0 + np.exp(-(X @ np.asarray(coef["weights"]) + coef["bias"])))
t_score = time.perf_counter()
pd.DataFrame({"id": df["id"], "score": p}).to_json(sys.argv[3], orient="records", lines=True)
t_write = time.perf_counter()
print(json.dumps({
    "rows": len(df), "pandas": pd.__version__, "numpy": np.__version__,
    "importSeconds": t_import - t0, "readSeconds": t_read - t_import,
    "scoreSeconds": t_score - t_read, "writeSeconds": t_write - t_score,
    "first": p[:3].tolist(),
}))
`;

/** A Python that has pandas and numpy, or why there is none. */
export function findPandasPython(): { python: string; version: string } | { missing: string } {
  const tried: string[] = [];
  for (const python of ["/usr/bin/python3", "python3"]) {
    const r = spawnSync(python, ["-c", "import pandas, numpy; print(pandas.__version__)"], {
      encoding: "utf8",
    });
    if (r.status === 0) return { python, version: r.stdout.trim() };
    tried.push(
      r.error
        ? `${python}: not found`
        : `${python}: ${r.stderr.trim().split("\n").at(-1) ?? `exit ${r.status}`}`,
    );
  }
  return {
    missing: `${tried.join("; ")} (Debian: apt-get install -y python3-pandas python3-numpy)`,
  };
}

/** One run of the pandas script. */
export interface PandasResult {
  rows: number;
  /** Process start to exit. */
  wallMs: number;
  rowsPerSec: number;
  pandas: string;
  importSeconds: number;
  readSeconds: number;
  scoreSeconds: number;
  writeSeconds: number;
  /** The first three scores (to check against onnxruntime's). */
  first: number[];
}

/** Run the pandas script over `inputFile` with the logistic model's coefficients. */
export async function measurePandas(
  python: string,
  inputFile: string,
  coefficients: LogisticCoefficients,
): Promise<PandasResult> {
  await mkdir(RUNS_DIR, { recursive: true });
  const coefFile = path.join(RUNS_DIR, `pandas-coef-${process.pid}.json`);
  const scriptFile = path.join(RUNS_DIR, `pandas-score-${process.pid}.py`);
  const outFile = path.join(RUNS_DIR, `pandas-out-${process.pid}.jsonl`);
  await writeFile(coefFile, JSON.stringify(coefficients));
  await writeFile(scriptFile, SCRIPT);
  try {
    const t0 = performance.now();
    const r = spawnSync(python, [scriptFile, inputFile, coefFile, outFile], {
      encoding: "utf8",
      maxBuffer: 1 << 20,
    });
    const wallMs = performance.now() - t0;
    if (r.status !== 0) throw new Error(`pandas script failed (exit ${r.status}): ${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as Omit<
      PandasResult,
      "wallMs" | "rowsPerSec"
    >;
    return { ...out, wallMs, rowsPerSec: (out.rows * 1000) / wallMs };
  } finally {
    await rm(coefFile, { force: true });
    await rm(scriptFile, { force: true });
    await rm(outFile, { force: true });
  }
}
