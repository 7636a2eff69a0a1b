/**
 * Paths as the person typing the command means them. `npm run cli` runs the
 * CLI from the package root, whatever directory npm was started in; npm says
 * where that was in INIT_CWD, so relative paths resolve from there.
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { InvalidArgumentError } from "../core/errors.ts";

/** The directory relative paths on the command line are meant from. */
export function userCwd(env: NodeJS.ProcessEnv = process.env): string {
  // Only under `npm run cli`: any other npm script that spawns the CLI (the tests
  // under `npm test`) runs it from where it means to.
  if (env.npm_lifecycle_event === "cli" && env.INIT_CWD) return env.INIT_CWD;
  return process.cwd();
}

/** `p` made absolute from where the user stands. */
export function userPath(p: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(userCwd(env), p);
}

/** A model location that is a local path (not oci://… or a Data Science OCID). */
export function isLocalModelPath(location: string): boolean {
  return !/^oci:\/\//.test(location) && !/^ocid1\./.test(location);
}

/** An existing regular file named by `--flag`, or an error naming the absolute path tried. */
export function requireFile(flag: string, file: string, what: string): string {
  const abs = path.resolve(file);
  let isFile = false;
  try {
    isFile = statSync(abs).isFile();
  } catch {
    throw new InvalidArgumentError(`--${flag}: ${what} ${abs} does not exist`);
  }
  if (!isFile) throw new InvalidArgumentError(`--${flag}: ${what} ${abs} is not a file`);
  return abs;
}

/** An existing regular file or directory named by `--flag`, or an error naming the absolute path tried. */
export function requireFileOrDirectory(flag: string, target: string, what: string): string {
  const abs = path.resolve(target);
  let ok = false;
  try {
    const st = statSync(abs);
    ok = st.isFile() || st.isDirectory();
  } catch {
    throw new InvalidArgumentError(`--${flag}: ${what} ${abs} does not exist`);
  }
  if (!ok) throw new InvalidArgumentError(`--${flag}: ${what} ${abs} is not a file or directory`);
  return abs;
}

/**
 * `--output DIR`: a directory, or a path that does not exist yet (it is created).
 * An existing file there is refused before the job runs, not after.
 */
export function checkOutputDir(dir: string): void {
  const abs = path.resolve(dir);
  if (existsSync(abs) && !statSync(abs).isDirectory()) {
    throw new InvalidArgumentError(
      `--output ${abs} is a file; --output names a directory the outputs are placed in (e.g. --output results/)`,
    );
  }
}

/**
 * The embedded default's state directory for commands that only read it
 * (status, jobs, events, verify, rerun, resume, submit): a mistyped --data-dir
 * must not silently create an empty one.
 */
export function requireDataDir(dataDir: string): void {
  const abs = path.resolve(dataDir);
  if (!existsSync(abs)) {
    throw new InvalidArgumentError(
      `--data-dir ${abs} does not exist: nothing has run there yet. Jobs live where \`batch-infer run\` was given --data-dir (default .batch-infer in the directory it ran from)`,
    );
  }
  if (!statSync(abs).isDirectory()) {
    throw new InvalidArgumentError(`--data-dir ${abs} is not a directory`);
  }
}

/** ` --data-dir DIR` for a command to suggest, or "" when DIR is the default where the user stands. */
export function dataDirFlag(dataDir: string | undefined): string {
  if (dataDir === undefined || path.resolve(dataDir) === userPath(".batch-infer")) return "";
  const rel = path.relative(userCwd(), dataDir);
  return ` --data-dir ${rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : dataDir}`;
}
