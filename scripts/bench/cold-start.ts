/**
 * The functions' cold start for the bench: scripts/cold-start.ts run in a child
 * process (5 starts per function), its per-function medians printed and returned.
 */
import { spawnSync } from "node:child_process";
import type { ColdStart } from "./figures.ts";

/** Each function's cold start (bundle load → first answer); empty when the script failed. */
export function measureColdStart(root: string): ColdStart[] {
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", "scripts/cold-start.ts", "--runs", "5", "--json"],
    { encoding: "utf8", cwd: root },
  );
  if (r.status !== 0) {
    console.log(`  cold start failed (exit ${r.status}): ${r.stderr.trim().split("\n").at(-1)}`);
    return [];
  }
  const coldStart = (
    JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as { coldStart: ColdStart[] }
  ).coldStart;
  for (const c of coldStart) {
    console.log(
      `  ${c.fn} (${c.backend}): socket ready ${c.readyMs.toFixed(0)} ms + first answer ${c.firstMs.toFixed(0)} ms = ${c.totalMs.toFixed(0)} ms`,
    );
  }
  return coldStart;
}
