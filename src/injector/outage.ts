import type { EventEmitter } from 'node:events';
import { BrokerUnavailableError, isTransientDbError } from '../core/errors';
import { errorFields } from '../core/error-text';
import type { Logger } from '../core/logger';
import { asError } from '../core/async';
import type { InjectorEvents, OutageKind } from './events';

/** What failed a cycle: an outage that is waited out, or anything else ('error'). */
export type FailureKind = OutageKind | 'error';

export function classifyFailure(err: unknown): FailureKind {
  if (err instanceof BrokerUnavailableError) return 'broker';
  return isTransientDbError(err) ? 'database' : 'error';
}

/**
 * The injector's current outage, so each one is logged (and emitted) once
 * when it starts and once when it ends, however many cycles fail meanwhile:
 * a database or broker that is away for an hour is two log lines, not
 * thousands. Anything else that fails a cycle is logged every time.
 */
export class OutageTracker {
  private current: FailureKind | undefined;
  errors = 0;

  constructor(
    private readonly log: Logger,
    private readonly events: EventEmitter<InjectorEvents>,
  ) {}

  get kind(): FailureKind | undefined {
    return this.current;
  }

  /** The broker connection is down (after having been up once): claims pause until it is back. */
  brokerDown(): void {
    if (this.current === 'broker') return;
    this.current = 'broker';
    this.log.warn('broker unavailable: claims paused until it is back (due jobs stay due)');
    this.events.emit('outage', { kind: 'broker' });
  }

  /** A cycle failed with `err`; the loop retries after `delayMs`. */
  failed(err: unknown, delayMs: number): void {
    const kind = classifyFailure(err);
    const nextRetryAt = new Date(Date.now() + delayMs).toISOString();
    const { stack, ...fields } = { ...errorFields(err), nextRetryAt };
    this.errors += 1;
    if (kind === 'error') {
      this.log.error({ ...fields, stack }, 'injector cycle failed; retrying');
      this.current = kind;
      this.events.emit('cycle:failed', { error: asError(err) });
      return;
    }
    if (this.current === kind) {
      this.log.debug(fields, `${kind} still unavailable`);
      return;
    }
    this.log.warn(
      fields,
      kind === 'database'
        ? 'database unavailable; retrying with backoff'
        : 'publishing failed; retrying with backoff',
    );
    this.current = kind;
    this.events.emit('outage', { kind });
  }

  /** A cycle succeeded: whatever outage there was is over. */
  succeeded(): void {
    const after = this.current;
    if (after === undefined) return;
    this.current = undefined;
    this.log.info({ outage: after }, 'injector resumed');
    this.events.emit('recovered', { after });
  }
}
