/**
 * What every command that drives workers in the foreground (`run`, `resume`,
 * `rerun`, `refresh`) sets up the same way: a progress reporter on stderr, a logger
 * whose lines (this process's and the workers') print above the bar, and Ctrl-C
 * handling — the first SIGINT/SIGTERM asks the workers to checkpoint and hand back,
 * a second exits at once.
 */
import { createLogger, type Logger, type LogLevel } from "../core/log.ts";
import { createProgressReporter } from "./progress.ts";

/** The reporter, logger and stop signal of a foreground command. */
export interface Foreground {
  reporter: ReturnType<typeof createProgressReporter>;
  log: Logger;
  /** Aborted by the first Ctrl-C or SIGTERM. */
  signal: AbortSignal;
  /** Stop listening for signals (the command is done). */
  dispose(): void;
}

/** Set up a foreground command's output and signal handling (see the module comment). */
export function startForeground(logLevel: LogLevel | undefined): Foreground {
  const reporter = createProgressReporter(process.stderr);
  const log = createLogger({
    level: logLevel ?? "warn",
    write: (line) => reporter.log(line.trimEnd()),
  });
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    reporter.log("stopping: workers are checkpointing and handing back (Ctrl-C again to force)");
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    reporter,
    log,
    signal: controller.signal,
    dispose() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
