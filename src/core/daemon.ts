import { errorText } from './error-text';
import type { Logger } from './logger';

/**
 * One piece of a daemon: a resource to release, a step to take at start, or
 * both. A part without `start` is open from the moment it was built (a
 * connection pool, a client object), so it is always stopped; a part with
 * `start` is stopped only once its start has begun.
 */
export interface DaemonPart {
  name: string;
  /** `signal` aborts when the daemon is asked to stop: a start that waits must end its wait. */
  start?(signal: AbortSignal): Promise<unknown> | unknown;
  /**
   * Must cope with a start that failed or is still in progress: the daemon
   * does not wait for a start to end before stopping it (a start may be
   * waiting for a database that never comes).
   */
  stop?(): Promise<unknown> | unknown;
}

/** Where signals come from (the process; a plain emitter in tests). */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface DaemonOptions {
  logger: Logger;
  /** In the order they start; they stop in the reverse order. */
  parts: readonly DaemonPart[];
  /** Called on a second signal, before exiting: whatever must not outlive the process (the runner's jobs). */
  onSecondSignal?: () => void;
  exit?: (code: number) => void;
  signals?: SignalSource;
}

const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

/**
 * The composition root of every long-running CronQ process: build the
 * parts, start them in order, stop them in reverse order. A part that fails
 * to start stops the ones begun before it (itself included, as it may have
 * half-opened something) and the error goes on to the command, which exits
 * with it. The first SIGINT/SIGTERM stops everything and exits 0; a second
 * exits 130 at once.
 */
export class Daemon {
  private readonly begun = new Set<DaemonPart>();
  private readonly abort = new AbortController();
  private stopped: Promise<void> | undefined;

  constructor(private readonly opts: DaemonOptions) {}

  /** True once all parts have started; false when a stop came first. Rejects with a part's start error. */
  async start(): Promise<boolean> {
    for (const part of this.opts.parts) {
      if (this.abort.signal.aborted) return false;
      this.begun.add(part);
      try {
        await part.start?.(this.abort.signal);
      } catch (err) {
        // A stop in the middle of a start (a pool closed under a query) is a stop, not a failure.
        if (this.abort.signal.aborted) return false;
        this.opts.logger.debug({ part: part.name, err: errorText(err) }, 'start failed');
        await this.stop();
        throw err;
      }
    }
    return !this.abort.signal.aborted;
  }

  /** Stop every part in reverse order, each even if an earlier one failed. Idempotent; never rejects. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.abort.abort();
      for (const part of [...this.opts.parts].reverse()) {
        if (!part.stop || (part.start && !this.begun.has(part))) continue;
        try {
          await part.stop();
        } catch (err) {
          this.opts.logger.warn({ part: part.name, err: errorText(err) }, 'stopping failed');
        }
      }
    })();
    return this.stopped;
  }

  /**
   * Stop on the first SIGINT/SIGTERM and exit 0 once stopped; a second
   * signal exits 130 at once. Then start. Resolves as `start` does: the
   * process keeps running on what the parts started.
   */
  run(): Promise<boolean> {
    const signals = this.opts.signals ?? process;
    const exit = this.opts.exit ?? ((code: number) => process.exit(code));
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.stopped) {
        this.opts.logger.warn({ signal }, 'second signal: exiting now');
        this.opts.onSecondSignal?.();
        exit(130);
        return;
      }
      this.opts.logger.info({ signal }, 'stopping (send the signal again to exit at once)');
      void this.stop().then(() => exit(0));
    };
    for (const s of STOP_SIGNALS) signals.on(s, onSignal);
    return this.start().catch((err: unknown) => {
      for (const s of STOP_SIGNALS) signals.off(s, onSignal);
      throw err;
    });
  }
}
