import { type FileHandle, mkdir, open, readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { InvalidArgumentError, PipelineError, StoreUnavailableError } from "../../core/errors.ts";
import type { EventLog, EventSink, PipelineEvent } from "../../ports/event-sink.ts";
import { checkEventEnvelope } from "../port-contract.ts";
import { type FileLockOptions, withFileLock } from "./file-lock.ts";

/** Largest serialized event, like OCI Streaming's 1 MiB message limit. */
export const MAX_EVENT_BYTES = 1024 * 1024;

/** Options for {@link JsonlEventLog}. */
export interface JsonlEventLogOptions {
  /** The log file (created 0o600, its directory 0o700). */
  path: string;
  /** Append-lock tuning (tests shorten it). */
  lock?: FileLockOptions;
}

const NEWLINE = 0x0a;

function jobIdOf(event: PipelineEvent): unknown {
  return (event.data as Record<string, unknown> | undefined)?.jobId;
}

/**
 * Complete lines of `bytes` parsed as events; a line that doesn't parse (the torn
 * tail of a crashed append) is skipped. Returns the bytes consumed, up to and
 * including the last newline, so a tail still being written is read again later.
 */
function parseLines(bytes: Buffer, onEvent: (event: PipelineEvent) => void): number {
  let lineStart = 0;
  for (;;) {
    const nl = bytes.indexOf(NEWLINE, lineStart);
    if (nl < 0) return lineStart;
    const line = bytes.toString("utf8", lineStart, nl).trim();
    lineStart = nl + 1;
    if (line === "") continue;
    try {
      const event = JSON.parse(line) as PipelineEvent;
      if (event && typeof event === "object" && typeof event.eventID === "string") onEvent(event);
    } catch {
      // Torn line left by a crashed writer: not an event.
    }
  }
}

/**
 * Like {@link parseLines}, plus a last line without its newline, which counts if it
 * parses (a hand-edited file) and is skipped if not (a crashed writer's torn tail).
 * Returns true when there was such a line.
 */
function parseAll(bytes: Buffer, onEvent: (event: PipelineEvent) => void): boolean {
  const consumed = parseLines(bytes, onEvent);
  if (consumed === bytes.length) return false;
  parseLines(Buffer.concat([bytes.subarray(consumed), Buffer.from("\n")]), onEvent);
  return true;
}

/**
 * EventSink and EventLog over an append-only JSONL file, one CloudEvents envelope
 * per line. Publishing skips events whose eventID is already in the file, across
 * processes: appends take a lock file, and under it each instance reads only the
 * bytes appended since it last looked (by anyone) before writing its batch in a
 * single O_APPEND write followed by fsync.
 */
export class JsonlEventLog implements EventSink, EventLog {
  /** Absolute path of the log file. */
  readonly path: string;
  private readonly lockOptions: FileLockOptions;
  /** eventIDs in the file's first `scanned` bytes. */
  private readonly seen = new Set<string>();
  private scanned = 0;
  /** Inode the scan belongs to; a replaced file is rescanned from the start. */
  private scannedIno: bigint | undefined;

  constructor(options: JsonlEventLogOptions) {
    if (!options.path) throw new InvalidArgumentError("JsonlEventLog: path is required");
    this.path = resolve(options.path);
    this.lockOptions = options.lock ?? {};
  }

  /** Append the events not already in the log (by eventID), as one write. */
  async publish(events: PipelineEvent[]): Promise<void> {
    const lines: { id: string; line: string }[] = [];
    events.forEach((event, i) => {
      checkEventEnvelope(event, i);
      const line = `${JSON.stringify(event)}\n`;
      const bytes = Buffer.byteLength(line);
      if (bytes > MAX_EVENT_BYTES) {
        throw new InvalidArgumentError(
          `event ${i} (${event.eventID}) is ${bytes} bytes serialized; the limit is ${MAX_EVENT_BYTES}: put large payloads in the object store and reference them`,
        );
      }
      lines.push({ id: event.eventID, line });
    });
    if (lines.length === 0) return;
    try {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      await withFileLock(`${this.path}.lock`, () => this.appendNew(lines), this.lockOptions);
    } catch (err) {
      throw this.mapError(err, "publishing events");
    }
  }

  /** Events in log order, optionally only those of one job (`data.jobId`) or type. */
  async read(options: { jobId?: string; eventType?: string } = {}): Promise<PipelineEvent[]> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw this.mapError(err, "reading events");
    }
    const out: PipelineEvent[] = [];
    const keep = (event: PipelineEvent): void => {
      if (options.jobId !== undefined && jobIdOf(event) !== options.jobId) return;
      if (options.eventType !== undefined && event.eventType !== options.eventType) return;
      out.push(event);
    };
    parseAll(bytes, keep);
    return out;
  }

  /** Under the append lock: catch up on what others appended, then write what's new. */
  private async appendNew(lines: { id: string; line: string }[]): Promise<void> {
    const fh = await open(this.path, "a+", 0o600);
    try {
      const endsTorn = await this.catchUp(fh);
      const fresh: string[] = [];
      const batch = new Set<string>();
      for (const { id, line } of lines) {
        if (this.seen.has(id) || batch.has(id)) continue;
        batch.add(id);
        fresh.push(line);
      }
      if (fresh.length === 0) return;
      // A torn tail from a crashed writer gets its own line, so ours stays parseable.
      const data = Buffer.from((endsTorn ? "\n" : "") + fresh.join(""), "utf8");
      let offset = 0;
      while (offset < data.length) {
        const { bytesWritten } = await fh.write(data, offset, data.length - offset);
        offset += bytesWritten;
      }
      await fh.sync();
      for (const id of batch) this.seen.add(id);
      this.scanned += data.length;
    } finally {
      await fh.close();
    }
  }

  /**
   * Add the eventIDs appended since our last scan to `seen`. Returns true when the
   * file ends without a newline (under the lock, a crashed writer's torn line).
   */
  private async catchUp(fh: FileHandle): Promise<boolean> {
    const st = await fh.stat({ bigint: true });
    const size = Number(st.size);
    if (this.scannedIno !== st.ino || size < this.scanned) {
      this.seen.clear();
      this.scanned = 0;
      this.scannedIno = st.ino;
    }
    if (size === this.scanned) return false;
    const bytes = Buffer.alloc(size - this.scanned);
    let got = 0;
    while (got < bytes.length) {
      const { bytesRead } = await fh.read(bytes, got, bytes.length - got, this.scanned + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    const unterminated = parseAll(bytes.subarray(0, got), (event) => this.seen.add(event.eventID));
    // Step over an unterminated tail too: it is terminated before our lines go in.
    this.scanned += got;
    return unterminated;
  }

  private mapError(err: unknown, context: string): unknown {
    if (err instanceof PipelineError) return err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EIO" || code === "ENOSPC" || code === "EDQUOT" || code === "EMFILE") {
      return new StoreUnavailableError(`${context} (${this.path}): ${code}`, { cause: err });
    }
    return err;
  }
}

/** Factory for a JSONL event log at `path`. */
export function createJsonlEventLog(path: string): JsonlEventLog {
  return new JsonlEventLog({ path });
}
