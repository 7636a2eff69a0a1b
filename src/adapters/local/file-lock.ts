import { randomBytes } from "node:crypto";
import { closeSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { readFile, rename, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { StoreUnavailableError } from "../../core/errors.ts";
import { createExclusive } from "./fs-primitives.ts";

/** Tuning for {@link withFileLock}. */
export interface FileLockOptions {
  /** Give up (StoreUnavailableError) after waiting this long. Default 10 s. */
  timeoutMs?: number;
  /** A lock whose holder can't be shown alive is broken after this age. Default 30 s. */
  staleMs?: number;
}

interface LockOwner {
  pid: number;
  host: string;
  token: string;
}

const HOST = hostname();

/** True when `pid` on this host is certainly gone (ESRCH); EPERM means alive, other user. */
function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}

async function readOwner(lockPath: string): Promise<LockOwner | undefined> {
  try {
    const parsed = JSON.parse(await readFile(lockPath, "utf8")) as Partial<LockOwner>;
    if (
      typeof parsed.pid === "number" &&
      typeof parsed.host === "string" &&
      typeof parsed.token === "string"
    ) {
      return parsed as LockOwner;
    }
  } catch {
    // Missing, or torn by a holder that died between create and write: judged by age.
  }
  return undefined;
}

/**
 * A lock is stale when its holder was on this host and its pid is gone, or when it
 * is older than `staleMs` (holders keep it for milliseconds: a stat and a rename).
 */
async function isStale(lockPath: string, staleMs: number): Promise<boolean> {
  let mtimeMs: number;
  try {
    mtimeMs = (await stat(lockPath)).mtimeMs;
  } catch {
    return false; // gone already: the next create attempt will tell
  }
  const owner = await readOwner(lockPath);
  if (owner && owner.host === HOST && owner.pid !== process.pid && processGone(owner.pid)) {
    return true;
  }
  return Date.now() - mtimeMs > staleMs;
}

/**
 * Run `fn` while holding an exclusive lock file, safe across processes on one host
 * (and on shared filesystems where O_EXCL is atomic).
 *
 * The lock is `open(lockPath, "wx")`, which fails atomically if it exists. A stale
 * lock is moved aside with `rename` so only one breaker removes it. Residual,
 * bounded race: if two processes judge the *same* stale lock at the same instant,
 * the slower one can rename away the lock the faster one has just created, and
 * both run `fn`. That needs a crashed holder (or one stalled past `staleMs`) plus
 * two waiters checking within the same few microseconds.
 *
 * Errors from creating the lock other than EEXIST (e.g. ENOENT for a missing
 * directory) propagate so the caller can create the directory and retry.
 */
export async function withFileLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: FileLockOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const staleMs = options.staleMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let backoffMs = 2;
  let held: HeldFileLock | undefined;
  for (;;) {
    // One event-loop turn for the create (see createExclusive); writing and closing the
    // lock file are microseconds of synchronous syscalls.
    held = await tryFileLock(lockPath, staleMs);
    if (held) break;
    if (await isStale(lockPath, staleMs)) {
      const aside = `${lockPath}.stale-${randomBytes(8).toString("hex")}`;
      try {
        await rename(lockPath, aside);
        await unlink(aside).catch(() => undefined);
      } catch {
        // Another waiter broke it first.
      }
      continue;
    }
    if (Date.now() >= deadline) {
      throw new StoreUnavailableError(
        `timed out after ${timeoutMs} ms waiting for lock ${lockPath}; if no process holds it, delete the file`,
        { details: { lockPath } },
      );
    }
    await sleep(backoffMs + Math.random() * backoffMs);
    backoffMs = Math.min(backoffMs * 2, 50);
  }
  try {
    return await fn();
  } finally {
    releaseFileLockSync(held);
  }
}

/** A lock file this process created. */
interface HeldFileLock {
  readonly path: string;
  readonly token: string;
  readonly takenAt: number;
  readonly staleMs: number;
}

/** Create the lock file if there is none ({@link createExclusive}), or undefined when one exists. */
async function tryFileLock(lockPath: string, staleMs: number): Promise<HeldFileLock | undefined> {
  const token = randomBytes(8).toString("hex");
  let fd: number;
  try {
    fd = await createExclusive(lockPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return undefined;
    throw err;
  }
  try {
    writeSync(fd, JSON.stringify({ pid: process.pid, host: HOST, token }));
  } finally {
    closeSync(fd);
  }
  return { path: lockPath, token, takenAt: Date.now(), staleMs };
}

/** Remove our lock file, unless it was broken as stale meanwhile (it is someone else's then). */
function releaseFileLockSync(lock: HeldFileLock): void {
  // A live holder's lock is broken only past staleMs of age (isStale): well within it,
  // the lock is certainly still ours, and reading it back would be one more file read.
  if (Date.now() - lock.takenAt >= lock.staleMs / 2) {
    let owner: Partial<LockOwner> | undefined;
    try {
      owner = JSON.parse(readFileSync(lock.path, "utf8")) as Partial<LockOwner>;
    } catch {
      return; // gone, or torn by whoever broke it
    }
    if (owner.token !== lock.token) return;
  }
  try {
    unlinkSync(lock.path);
  } catch {
    // Already removed.
  }
}
