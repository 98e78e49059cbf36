import { EventEmitter } from 'node:events';

/** What every daemon's service is: started once, stopped idempotently, asked for health. */
export interface Service {
  start(): Promise<void>;
  /** Idempotent: a second call returns the first call's promise. */
  stop(): Promise<void>;
  status(): Record<string, unknown>;
}

/** Memoise a stop function so a second call waits for the first. */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}

/**
 * A service that is one loop until stopped (the overdue check, the
 * missed-run notices): `start` begins `run(signal)`, `stop` aborts the
 * signal and waits for the loop to end. Events as the subclass declares.
 */
export abstract class LoopService<E extends Record<keyof E, unknown[]>>
  extends EventEmitter<E>
  implements Service
{
  protected readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  async start(): Promise<void> {
    this.loop ??= this.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  abstract status(): Record<string, unknown>;

  /** The loop; returns once `signal` is aborted. */
  protected abstract run(signal: AbortSignal): Promise<void>;
}
