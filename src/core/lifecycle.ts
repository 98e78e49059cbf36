import type { Logger } from './logger';

/** What every daemon is: started once, stopped idempotently, asked for health. */
export interface Service {
  start(): Promise<void>;
  /** Idempotent: a second call returns the first call's promise. */
  stop(): Promise<void>;
  status(): Record<string, unknown>;
}

/**
 * Resources released in the reverse order they were opened. Every release
 * runs even when an earlier one fails (BullMQ's close, graphile's releasers).
 */
export class Releasers {
  private readonly items: Array<{ name: string; release: () => Promise<unknown> | unknown }> = [];
  private released: Promise<void> | undefined;

  constructor(private readonly logger?: Logger) {}

  add(name: string, release: () => Promise<unknown> | unknown): void {
    this.items.push({ name, release });
  }

  releaseAll(): Promise<void> {
    if (!this.released) {
      this.released = (async () => {
        for (const item of [...this.items].reverse()) {
          try {
            await item.release();
          } catch (err) {
            this.logger?.warn(
              { err: (err as Error).message, resource: item.name },
              'release failed',
            );
          }
        }
      })();
    }
    return this.released;
  }
}

/** Memoise a stop function so a second call waits for the first. */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}

/**
 * Stop `service` on the first SIGINT/SIGTERM and exit 0 once it has
 * stopped; a second signal exits at once with 130. Returns a promise that
 * settles when the service has stopped (by signal or by itself).
 */
export function stopOnSignals(
  stop: () => Promise<void>,
  logger: Logger,
  exit: (code: number) => void = (c) => process.exit(c),
): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      logger.warn({ signal }, 'second signal: exiting now');
      exit(130);
      return;
    }
    signalled = true;
    logger.info({ signal }, 'stopping (send the signal again to exit at once)');
    stop().then(
      () => exit(0),
      (err: unknown) => {
        logger.error({ err: (err as Error).message }, 'error while stopping');
        exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
