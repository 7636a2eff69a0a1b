/**
 * Where a worker thread's entry module is: its .ts source under tsx (which a thread
 * does not inherit, so the code registers tsx first), or the .js that scripts/build.ts
 * bundles beside dist/cli.js. Undefined when this build has neither.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** How to start a thread: `new Worker(code, { eval })`. */
export interface ThreadEntry {
  code: string;
  eval: boolean;
}

/**
 * The entry of a thread whose source is `tsFile` (relative to `here`, the calling
 * module's import.meta.url) and whose bundle is `jsFile` in dist/ (looked up beside
 * `here` and one level up, as chunks live in dist/chunks/).
 */
export function threadEntry(here: string, tsFile: string, jsFile: string): ThreadEntry | undefined {
  if (here.endsWith(".ts")) {
    let api: string;
    try {
      api = import.meta.resolve("tsx/esm/api");
    } catch {
      return undefined;
    }
    const source = new URL(tsFile, here).href;
    const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(source)}); })`;
    return { code, eval: true };
  }
  for (const url of [new URL(`./${jsFile}`, here), new URL(`../${jsFile}`, here)]) {
    const file = fileURLToPath(url);
    if (existsSync(file)) return { code: file, eval: false };
  }
  return undefined;
}
